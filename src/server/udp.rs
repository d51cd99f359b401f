//! The UDP query path. Each worker thread owns one SO_REUSEPORT socket and
//! moves packets in batches with recvmmsg/sendmmsg: no task spawn, no lock,
//! no allocation and no log line per query.

use crate::catalog::SharedCatalog;
use crate::query::Transport;
use crate::server::dispatch::{self, Options};
use crate::server::rrl::{self, Rrl, RrlConfig, Verdict};
use crate::supervise;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const BATCH: usize = 32;
/// Largest request we read; longer datagrams arrive truncated and are dropped.
const RECV_SIZE: usize = 4096;
/// Largest UDP response (the `udp_payload` limit is at most this).
const SEND_SIZE: usize = 4096;

pub fn bind(addr: SocketAddr) -> std::io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_port(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // A deep receive queue absorbs bursts while a worker is busy.
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    // Lets the worker notice shutdown while idle.
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    sock.bind(&addr.into())?;
    Ok(sock)
}

/// Buffers for one batch, boxed so the pointers inside the headers stay put.
struct Batch {
    recv: [[u8; RECV_SIZE]; BATCH],
    send: [[u8; SEND_SIZE]; BATCH],
    addrs: [libc::sockaddr_storage; BATCH],
    iov_in: [libc::iovec; BATCH],
    iov_out: [libc::iovec; BATCH],
    hdr_in: [libc::mmsghdr; BATCH],
    hdr_out: [libc::mmsghdr; BATCH],
}

/// Runs one worker until `stop` is set. A panic outside the per-query
/// supervision restarts the loop on the same socket.
pub fn run_worker(
    sock: Socket,
    catalog: SharedCatalog,
    opts: Arc<Options>,
    stop: Arc<AtomicBool>,
    rrl: Option<RrlConfig>,
) {
    while !stop.load(Ordering::Relaxed) {
        let r = supervise::supervised(|| worker_loop(&sock, &catalog, &opts, &stop, rrl));
        if let Err(msg) = r {
            supervise::count(supervise::Path::Udp);
            crate::error_limited!("UDP worker restarted after a panic: {msg}");
        }
    }
}

fn worker_loop(
    sock: &Socket,
    catalog: &SharedCatalog,
    opts: &Options,
    stop: &AtomicBool,
    rrl: Option<RrlConfig>,
) {
    let mut rrl = rrl.map(Rrl::new);
    // SAFETY: every field is plain old data for which all-zero bytes are valid.
    let mut b: Box<Batch> = unsafe { Box::new_zeroed().assume_init() };
    let fd = sock.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        for i in 0..BATCH {
            b.iov_in[i] = libc::iovec {
                iov_base: b.recv[i].as_mut_ptr().cast(),
                iov_len: RECV_SIZE,
            };
            let h = &mut b.hdr_in[i].msg_hdr;
            h.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_iov = &mut b.iov_in[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            b.hdr_in[i].msg_len = 0;
        }
        // SAFETY: the headers point into `b`, which outlives the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                b.hdr_in.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue; // timeout (shutdown check), EINTR, or a transient error
        }
        let n = n as usize;
        let cat = catalog.load();
        let mut m = 0;
        for i in 0..n {
            let len = b.hdr_in[i].msg_len as usize;
            let Some(peer) = peer_ip(&b.addrs[i]) else {
                continue;
            };
            if b.hdr_in[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            let (recv, send) = (&b.recv[i][..len], &mut b.send[m]);
            let answered = supervise::supervised(|| {
                dispatch::answer_judged(&cat, recv, send, Transport::Udp, peer, opts)
            })
            .unwrap_or_else(|msg| {
                supervise::caught(supervise::Path::Udp, &msg, recv);
                None
            });
            if let Some(a) = answered {
                let mut rlen = a.len;
                crate::stats::count_response(false, &b.send[m][..rlen]);
                // A valid server cookie proves the source address: no
                // reflection to limit (RFC 7873 §5.2.3, as BIND's RRL).
                if let Some(r) = rrl.as_mut().filter(|_| !a.cookie_valid) {
                    match r.check(peer) {
                        Verdict::Send => {}
                        Verdict::Slip => rlen = rrl::truncate(&mut b.send[m], rlen),
                        Verdict::Drop => continue,
                    }
                }
                b.iov_out[m] = libc::iovec {
                    iov_base: b.send[m].as_mut_ptr().cast(),
                    iov_len: rlen,
                };
                let h = &mut b.hdr_out[m].msg_hdr;
                h.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = b.hdr_in[i].msg_hdr.msg_namelen;
                h.msg_iov = &mut b.iov_out[m];
                h.msg_iovlen = 1;
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
                h.msg_flags = 0;
                m += 1;
            }
        }
        drop(cat);
        let mut sent = 0;
        while sent < m {
            // SAFETY: as above; only the first `m` headers were filled in.
            let r =
                unsafe { libc::sendmmsg(fd, b.hdr_out[sent..].as_mut_ptr(), (m - sent) as u32, 0) };
            if r <= 0 {
                // Skip the message the kernel refused (e.g. unreachable destination).
                sent += 1;
            } else {
                sent += r as usize;
            }
        }
    }
}

/// The sender's address; `None` for port 0, which cannot be answered.
fn peer_ip(a: &libc::sockaddr_storage) -> Option<IpAddr> {
    match a.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel filled in a sockaddr_in for AF_INET.
            let v4 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            (v4.sin_port != 0).then(|| IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel filled in a sockaddr_in6 for AF_INET6.
            let v6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            (v6.sin6_port != 0).then(|| IpAddr::from(v6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}
