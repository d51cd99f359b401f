//! DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries
//! answered in order, an idle timeout, and a cap on open connections.

use crate::answer::{self, Options, Transport};
use crate::catalog::SharedCatalog;
use crate::transfer;
use crate::wire;
use crate::zone::rtype;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::debug;

pub struct TcpSettings {
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

pub async fn serve(
    listener: TcpListener,
    catalog: SharedCatalog,
    opts: Arc<Options>,
    settings: TcpSettings,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let idle = settings.idle_timeout;
    loop {
        // Waiting for a slot before accepting leaves excess clients in the
        // kernel's backlog instead of spending memory on them.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let catalog = catalog.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer.ip(), catalog, opts, idle).await {
                debug!(%peer, error = %e, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: IpAddr,
    catalog: SharedCatalog,
    opts: Arc<Options>,
    idle: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut req = vec![0u8; 65535];
    let mut resp = vec![0u8; 65537];
    loop {
        let len = match tokio::time::timeout(idle, rd.read_u16()).await {
            Ok(Ok(l)) => l as usize,
            Ok(Err(_)) | Err(_) => return Ok(()), // closed, or idle too long
        };
        // Once a message has started, its body must follow promptly.
        match tokio::time::timeout(idle, rd.read_exact(&mut req[..len])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let request = &req[..len];
        if let Ok(parsed) = wire::parse_request(request)
            && parsed.opcode == wire::opcode::QUERY
            && matches!(parsed.qtype, rtype::AXFR | rtype::IXFR)
        {
            // The catalog snapshot (and with it the zone version) lives
            // as long as the transfer; edits publish new ones meanwhile.
            let cat = catalog.load_full();
            transfer::respond(&mut wr, request, &parsed, &cat, peer, &opts.keys.load()).await?;
            continue;
        }
        let answered = {
            let cat = catalog.load();
            answer::answer(&cat, request, &mut resp[2..], Transport::Tcp, peer, &opts)
        };
        if let Some(n) = answered {
            crate::stats::count_response(true, &resp[2..n + 2]);
            resp[..2].copy_from_slice(&(n as u16).to_be_bytes());
            wr.write_all(&resp[..n + 2]).await?;
        }
    }
}
