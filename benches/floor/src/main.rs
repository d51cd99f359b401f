//! The floor: what answering UDP costs with no DNS work at all. Every
//! query gets its own header and question back with QR/AA set and one fixed
//! A record, through the same socket path tandem uses (a SO_REUSEPORT socket
//! and thread per worker, recvmmsg/sendmmsg in batches of 32). Run beside a
//! server, its CPU per query is the kernel's and the loop's share.
//! usage: floor ADDR:PORT [WORKERS]
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

const BATCH: usize = 32;
const RR: [u8; 16] = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1];

fn worker(addr: String) {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    let one: libc::c_int = 1;
    let optlen = size_of::<libc::c_int>() as libc::socklen_t;
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&one as *const libc::c_int).cast(),
            optlen,
        )
    };
    let sock: UdpSocket = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    let sa = socket2_addr(&addr);
    assert_eq!(
        unsafe {
            libc::bind(
                fd,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            )
        },
        0,
        "bind {addr}"
    );
    let mut bufs = vec![[0u8; 1500]; BATCH];
    let mut names: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 1500,
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH)
        .map(|i| {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            m.msg_hdr.msg_iov = &mut iov[i];
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    loop {
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            iov[i].iov_len = 1500;
        }
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        for i in 0..n as usize {
            let len = msgs[i].msg_len as usize;
            let b = &mut bufs[i];
            // Header + the question (to its end), then the fixed record.
            let mut q = 12;
            while q < len && b[q] != 0 {
                q += b[q] as usize + 1;
            }
            let end = (q + 5).min(len);
            b[2] |= 0x84;
            b[3] = 0;
            b[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
            b[end..end + RR.len()].copy_from_slice(&RR);
            iov[i].iov_len = end + RR.len();
        }
        unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
    }
}

fn socket2_addr(addr: &str) -> libc::sockaddr_in {
    let a: std::net::SocketAddrV4 = addr.parse().expect("IPv4 ADDR:PORT");
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect("usage: floor ADDR:PORT [WORKERS]");
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let a = addr.clone();
            std::thread::spawn(move || worker(a))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
