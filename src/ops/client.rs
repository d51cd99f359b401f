//! The CLI's side of the control API: one HTTP/1.1 request per command,
//! with hyper's client (already in the tree for the server side).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

/// Connecting must be quick; an action may wait up to 30 s for its outcome.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the control API at {addr} ({source}); is `tandem serve` running with `control` set?"
    )]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("control API at {0}: {1}")]
    Protocol(SocketAddr, String),
}

/// Sends `method path` and returns (status code, body).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), ClientError> {
    send(addr, method, path, token, None)
}

/// As `request`, with `json` as the body, if any.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> Result<(u16, String), ClientError> {
    let proto = |e: &dyn std::fmt::Display| ClientError::Protocol(addr, e.to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| proto(&e))?;
    rt.block_on(async {
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
                Err(_) => {
                    return Err(ClientError::Connect {
                        addr,
                        source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                    });
                }
            };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| proto(&e))?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string());
        if let Some(t) = token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if json.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let body = Full::new(Bytes::from(json.unwrap_or("").to_owned()));
        let req = req.body(body).map_err(|e| proto(&e))?;
        let resp = tokio::time::timeout(ANSWER_TIMEOUT, sender.send_request(req))
            .await
            .map_err(|_| proto(&"no answer in time"))?
            .map_err(|e| proto(&e))?;
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| proto(&e))?
            .to_bytes();
        Ok((code, String::from_utf8_lossy(&body).into_owned()))
    })
}
