//! DNS over TCP (RFC 7766) and over TLS (RFC 7858, XoT RFC 9103): 2-byte
//! length framing, pipelined queries answered in order, an idle timeout, a
//! cap on open connections and on concurrent transfers out (per
//! listener). When more than half the connections are in use the timeouts
//! shrink to a second, so connections that hold a slot without sending
//! (slow-loris) cannot keep others out for long. A TLS listener runs the
//! same loop once its handshake is done.

use crate::catalog::SharedCatalog;
use crate::query::Transport;
use crate::query::request::{self, rcode};
use crate::query::writer::Writer;
use crate::server::dispatch::{self, Options};
use crate::supervise;
use crate::xfr::acl::{self, Channel, zone_at_apex};
use crate::xfr::out as transfer;
use crate::zone::rtype;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::debug;

pub struct TcpSettings {
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_transfers_out: usize,
    pub transfer_deadlines: transfer::Deadlines,
}

/// How long a transfer request waits for one of the `max_transfers_out`
/// slots before it is refused.
const TRANSFER_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The timeout used while the connection table is more than half full.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

struct Shared {
    catalog: SharedCatalog,
    opts: Arc<Options>,
    idle: Duration,
    max: usize,
    active: AtomicUsize,
    transfers: Arc<Semaphore>,
    deadlines: transfer::Deadlines,
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

/// Serves DNS on `listener`: over TCP, or over TLS when `tls` (the
/// certificate is `opts.tls` at each handshake).
pub async fn serve(
    listener: TcpListener,
    catalog: SharedCatalog,
    opts: Arc<Options>,
    settings: TcpSettings,
    tls: bool,
) {
    let shared = Arc::new(Shared {
        catalog,
        opts,
        idle: settings.idle_timeout,
        max: settings.max_connections,
        active: AtomicUsize::new(0),
        transfers: Arc::new(Semaphore::new(settings.max_transfers_out)),
        deadlines: settings.transfer_deadlines,
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
        let slot = Slot(shared.clone());
        // The connection runs in a task of its own, so that a panic in it
        // (a transfer, a query) ends that connection only, is counted and
        // logged, and still gives its slot back.
        let conn = if tls {
            tokio::spawn(tls_connection(stream, peer.ip(), shared.clone()))
        } else {
            tokio::spawn(tcp_connection(stream, peer.ip(), shared.clone()))
        };
        tokio::spawn(async move {
            let _slot = slot;
            match conn.await {
                Ok(Err(e)) => debug!(%peer, error = %e, "tcp connection ended"),
                Err(e) if e.is_panic() => {
                    supervise::count(supervise::Path::Tcp);
                    crate::error_limited!(%peer, "TCP connection closed after a panic");
                }
                _ => {}
            }
        });
    }
}

/// A connection's place in the count, given back however it ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

async fn tcp_connection(stream: TcpStream, peer: IpAddr, sh: Arc<Shared>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    connection(rd, wr, peer, sh, Channel::Tcp).await
}

/// The handshake (within the idle timeout), then the same loop as TCP.
async fn tls_connection(stream: TcpStream, peer: IpAddr, sh: Arc<Shared>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let Some(config) = sh.opts.tls.load_full() else {
        return Ok(());
    };
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    let stream = match tokio::time::timeout(sh.timeout(), accept).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            crate::info_limited!(%peer, "TLS handshake failed: {e}");
            return Ok(());
        }
        Err(_) => return Ok(()),
    };
    let certified = stream.get_ref().1.peer_certificates().is_some();
    let (rd, wr) = tokio::io::split(stream);
    connection(rd, wr, peer, sh, Channel::Tls { certified }).await
}

async fn connection<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: R,
    mut wr: W,
    peer: IpAddr,
    sh: Arc<Shared>,
    channel: Channel,
) -> std::io::Result<()> {
    let transport = match channel {
        Channel::Tls { .. } => Transport::Tls,
        _ => Transport::Tcp,
    };
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
        if let Ok(parsed) = request::parse_request(request)
            && parsed.opcode == request::opcode::QUERY
            && matches!(parsed.qtype, rtype::AXFR | rtype::IXFR)
        {
            // Over the cap, a transfer waits its turn for a while rather than
            // being refused at once: after a NOTIFY every follower asks at
            // the same moment, and one refused would wait for its SOA retry
            // timer (minutes). IXFRs take milliseconds, so the queue drains.
            // A peer outside the zone's allow_transfer does not queue with
            // the followers: `respond` refuses it without a slot.
            let listed = zone_at_apex(&sh.catalog.load(), parsed.qname)
                .is_some_and(|z| acl::allows(&z.policy.allow_transfer, peer));
            let slot = if listed {
                tokio::time::timeout(
                    TRANSFER_QUEUE_WAIT.min(sh.idle),
                    sh.transfers.clone().acquire_owned(),
                )
                .await
                .map(|r| r.map(Some))
            } else {
                Ok(Ok(None))
            };
            let Ok(Ok(_permit)) = slot else {
                crate::warn_limited!(%peer, zone = %crate::zone::name::to_text(parsed.qname), rcode = "REFUSED", "transfer refused: too many transfers out at once (waited for a slot)");
                let n = {
                    let mut w = Writer::new(&mut resp[2..], 512);
                    w.header(parsed.id, 0x8000 | (parsed.flags & 0x7800) | rcode::REFUSED);
                    let _ = w.question(parsed.question);
                    w.finish()
                };
                resp[..2].copy_from_slice(&(n as u16).to_be_bytes());
                wr.write_all(&resp[..n + 2]).await?;
                wr.flush().await?;
                continue;
            };
            // The catalog snapshot (and with it the zone version) lives
            // as long as the transfer; edits publish new ones meanwhile.
            let cat = sh.catalog.load_full();
            let keys = sh.opts.keys.load();
            if let Err(e) = transfer::respond(
                &mut wr,
                request,
                &parsed,
                &cat,
                peer,
                channel,
                &keys,
                sh.deadlines,
            )
            .await
            {
                crate::warn_limited!(%peer, zone = %crate::zone::name::to_text(parsed.qname), "transfer out abandoned: {e}");
                return Err(e);
            }
            continue;
        }
        let answered = {
            let cat = sh.catalog.load();
            let out = &mut resp[2..];
            supervise::supervised(|| {
                dispatch::answer(&cat, request, out, transport, peer, &sh.opts)
            })
            .unwrap_or_else(|msg| {
                supervise::caught(supervise::Path::Tcp, &msg, request);
                None
            })
        };
        if let Some(n) = answered {
            crate::stats::count_response(true, &resp[2..n + 2]);
            resp[..2].copy_from_slice(&(n as u16).to_be_bytes());
            wr.write_all(&resp[..n + 2]).await?;
            // TLS holds written data in its session until flushed; for TCP
            // this does nothing.
            wr.flush().await?;
        }
    }
}
