//! DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries
//! answered in order, an idle timeout, a cap on open connections and on
//! concurrent transfers out. When more than half the connections are in use
//! the timeouts shrink to a second, so connections that hold a slot without
//! sending (slow-loris) cannot keep others out for long.

use crate::answer::{self, Options, Transport};
use crate::catalog::SharedCatalog;
use crate::transfer;
use crate::wire::{self, Writer, rcode};
use crate::zone::rtype;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

pub struct TcpSettings {
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_transfers_out: usize,
}

/// The timeout used while the connection table is more than half full.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

struct Shared {
    catalog: SharedCatalog,
    opts: Arc<Options>,
    idle: Duration,
    max: usize,
    active: AtomicUsize,
    transfers: Arc<Semaphore>,
}

impl Shared {
    fn timeout(&self) -> Duration {
        if self.active.load(Relaxed) * 2 > self.max {
            self.idle.min(BUSY_TIMEOUT)
        } else {
            self.idle
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    catalog: SharedCatalog,
    opts: Arc<Options>,
    settings: TcpSettings,
) {
    let shared = Arc::new(Shared {
        catalog,
        opts,
        idle: settings.idle_timeout,
        max: settings.max_connections,
        active: AtomicUsize::new(0),
        transfers: Arc::new(Semaphore::new(settings.max_transfers_out)),
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Over the cap: close at once rather than let the backlog grow.
        if shared.active.fetch_add(1, Relaxed) >= shared.max {
            shared.active.fetch_sub(1, Relaxed);
            debug!(%peer, "tcp connection refused: connection limit reached");
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer.ip(), &shared).await {
                debug!(%peer, error = %e, "tcp connection ended");
            }
            shared.active.fetch_sub(1, Relaxed);
        });
    }
}

async fn connection(stream: TcpStream, peer: IpAddr, sh: &Shared) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut req = vec![0u8; 65535];
    let mut resp = vec![0u8; 65537];
    loop {
        let len = match tokio::time::timeout(sh.timeout(), rd.read_u16()).await {
            Ok(Ok(l)) => l as usize,
            Ok(Err(_)) | Err(_) => return Ok(()), // closed, or idle too long
        };
        // Once a message has started, its body must follow promptly.
        match tokio::time::timeout(sh.timeout(), rd.read_exact(&mut req[..len])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let request = &req[..len];
        if let Ok(parsed) = wire::parse_request(request)
            && parsed.opcode == wire::opcode::QUERY
            && matches!(parsed.qtype, rtype::AXFR | rtype::IXFR)
        {
            let Ok(_permit) = sh.transfers.clone().try_acquire_owned() else {
                warn!(%peer, zone = %crate::zone::name::to_text(parsed.qname), "transfer refused: too many transfers out at once");
                let n = {
                    let mut w = Writer::new(&mut resp[2..], 512);
                    w.header(parsed.id, 0x8000 | (parsed.flags & 0x7800) | rcode::REFUSED);
                    let _ = w.question(parsed.question);
                    w.finish()
                };
                resp[..2].copy_from_slice(&(n as u16).to_be_bytes());
                wr.write_all(&resp[..n + 2]).await?;
                continue;
            };
            // The catalog snapshot (and with it the zone version) lives
            // as long as the transfer; edits publish new ones meanwhile.
            let cat = sh.catalog.load_full();
            transfer::respond(&mut wr, request, &parsed, &cat, peer, &sh.opts.keys.load()).await?;
            continue;
        }
        let answered = {
            let cat = sh.catalog.load();
            answer::answer(
                &cat,
                request,
                &mut resp[2..],
                Transport::Tcp,
                peer,
                &sh.opts,
            )
        };
        if let Some(n) = answered {
            crate::stats::count_response(true, &resp[2..n + 2]);
            resp[..2].copy_from_slice(&(n as u16).to_be_bytes());
            wr.write_all(&resp[..n + 2]).await?;
        }
    }
}
