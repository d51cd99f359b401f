//! Transfers in: the SOA check and IXFR/AXFR over TCP or TLS (XoT, RFC
//! 9103), with TSIG on every message when the zone has a key, per-message
//! and whole-transfer timeouts, size limits, and the record stream checked
//! as it arrives (`reader`).
//!
//! A TLS primary is asked its SOA over TLS, not UDP (a plain-text query
//! would tell the path which zone is about to move), and the transfer that
//! follows reuses that connection. BIND skips the SOA query for TLS
//! primaries and asks IXFR at once; asking first keeps a secondary that is
//! up to date from opening a transfer at all.

pub use super::error::XfrError;
use super::reader::{Fetched, Parser, answers};
use crate::config::Primary;
use crate::tls::{ALPN_DOT, Connector};
use crate::zone::diff::{Rr, soa_serial};
use crate::zone::rdata::Soa;
use crate::zone::rtype;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigVerifier, TSigner};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// How long one message (or the SOA answer) may take to arrive.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection to a primary: TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Conn = Box<dyn Io>;

/// What the SOA check found: the primary's serial, the EXPIRE it sent
/// (RFC 7314), and for a TLS primary the connection to reuse.
pub struct SoaCheck {
    pub serial: u32,
    pub expire: Option<u32>,
    pub conn: Option<Conn>,
}

/// What a transfer brought, with the EXPIRE of its first message.
pub struct Transfer {
    pub fetched: Fetched,
    pub messages: usize,
    pub bytes: u64,
    pub expire: Option<u32>,
}

/// The EXPIRE option's value in a response (RFC 7314 §2: four octets).
pub fn expire_in(raw: &[u8]) -> Option<u32> {
    let o = crate::query::request::find_option(raw, crate::query::request::EDNS_EXPIRE)?;
    Some(u32::from_be_bytes(o.try_into().ok()?))
}

pub struct Client<'a> {
    pub apex: &'a [u8],
    pub key: Option<&'a TSigner>,
    /// For `tls://` primaries.
    pub tls: Option<&'a Connector>,
    pub max_records: usize,
    pub max_bytes: u64,
    pub timeout: Duration,
    /// Requests carry an OPT record asking for EXPIRE (RFC 7314); off for
    /// a primary that answered that with FORMERR (RFC 6891 §7).
    pub edns: bool,
}

fn hname(wire_name: &[u8]) -> Result<Name, XfrError> {
    super::hickory_name(wire_name).ok_or_else(|| XfrError::Malformed("bad name".into()))
}

fn soa_record(r: &Rr) -> Result<Record, XfrError> {
    let f = Soa::parse(&r.rdata).ok_or_else(|| XfrError::Malformed("SOA".into()))?;
    let soa = SOA::new(
        hname(f.mname)?,
        hname(f.rname)?,
        f.serial,
        f.refresh as i32,
        f.retry as i32,
        f.expire as i32,
        f.minimum,
    );
    Ok(Record::from_rdata(hname(&r.owner)?, r.ttl, RData::SOA(soa)))
}

impl Client<'_> {
    fn request(
        &self,
        t: RecordType,
        client_soa: Option<&Rr>,
    ) -> Result<(Vec<u8>, Option<TSigVerifier>, u16), XfrError> {
        let id = crate::xfr::message_id();
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(hname(self.apex)?, t));
        if let Some(soa) = client_soa {
            m.add_authority(soa_record(soa)?);
        }
        // RFC 7314 §4: ask the EXPIRE, so that a copy taken from another
        // secondary expires when that one's would.
        if self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            edns.options_mut().insert(EdnsOption::Unknown(
                crate::query::request::EDNS_EXPIRE,
                Vec::new(),
            ));
            m.set_edns(edns);
        }
        let verifier = match self.key {
            Some(k) => m
                .finalize(k, crate::clock::unix_secs())
                .map_err(|e| XfrError::Tsig(e.to_string()))?,
            None => None,
        };
        let bytes = m.to_vec().map_err(|e| XfrError::Malformed(e.to_string()))?;
        Ok((bytes, verifier, id))
    }

    fn check(
        &self,
        raw: &[u8],
        id: u16,
        verifier: &mut Option<TSigVerifier>,
    ) -> Result<(), XfrError> {
        if raw.len() < 12 || raw[..2] != id.to_be_bytes() || raw[2] & 0x80 == 0 {
            return Err(XfrError::Malformed("not an answer to our request".into()));
        }
        let rcode = (raw[3] & 0xf) as u16;
        if rcode != 0 {
            // A NOTAUTH names the TSIG error (BADKEY, BADSIG, BADTIME) in
            // the TSIG record it carries.
            let tsig = Message::from_vec(raw)
                .ok()
                .and_then(|m| m.signature().and_then(|s| s.data.error))
                .map(|e| format!("{e:?}").to_uppercase());
            return Err(XfrError::Rcode(rcode, tsig));
        }
        match (verifier.as_mut(), self.key) {
            (Some(v), _) => v
                .verify(raw)
                .map(|_| ())
                .map_err(|e| XfrError::Tsig(e.to_string())),
            (None, None) => Ok(()),
            (None, Some(_)) => Err(XfrError::Tsig("no verifier".into())),
        }
    }

    /// A connection to `primary`, TLS verified (certificate, name, ALPN)
    /// when the primary is `tls://`.
    pub async fn connect(&self, primary: Primary, deadline: Instant) -> Result<Conn, XfrError> {
        let tcp = timeout_at(deadline, TcpStream::connect(primary.addr))
            .await
            .map_err(|_| XfrError::Timeout)??;
        let _ = tcp.set_nodelay(true);
        if !primary.tls {
            return Ok(Box::new(tcp));
        }
        let tls = self
            .tls
            .ok_or_else(|| XfrError::Tls("no TLS settings for this zone".into()))?;
        let name = tls.server_name(primary.addr);
        let s = timeout_at(
            deadline,
            tokio_rustls::TlsConnector::from(tls.config.clone()).connect(name.clone(), tcp),
        )
        .await
        .map_err(|_| XfrError::Timeout)?
        .map_err(|e| {
            XfrError::Tls(format!(
                "handshake with {primary} (as {}): {e}",
                name.to_str()
            ))
        })?;
        // RFC 9103 §7.1: XoT needs the "dot" ALPN; a server that does not
        // agree to it is not one to transfer from (BIND refuses it too).
        if s.get_ref().1.alpn_protocol() != Some(ALPN_DOT) {
            return Err(XfrError::Tls(format!(
                "{primary} did not agree to ALPN \"dot\" (RFC 9103 §7.1)"
            )));
        }
        Ok(Box::new(s))
    }

    /// The primary's current serial, and for a TLS primary the connection
    /// it was asked on (for the transfer to reuse). Plain primaries are
    /// asked over UDP, and again over TCP when that answer is truncated or
    /// REFUSED (the TCP connection then goes to the transfer).
    pub async fn soa_serial(&self, primary: Primary) -> Result<SoaCheck, XfrError> {
        if primary.tls {
            let deadline = Instant::now() + MESSAGE_TIMEOUT;
            let mut conn = self.connect(primary, deadline).await?;
            let (req, mut verifier, id) = self.request(RecordType::SOA, None)?;
            send(&mut conn, &req).await?;
            let raw = recv(&mut conn, deadline).await?;
            self.check(&raw, id, &mut verifier)?;
            return Ok(SoaCheck {
                serial: self.serial_in(&raw)?,
                expire: expire_in(&raw),
                conn: Some(conn),
            });
        }
        let primary = primary.addr;
        let (req, mut verifier, id) = self.request(RecordType::SOA, None)?;
        let bind: SocketAddr = if primary.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).await?;
        // Connected: a closed port comes back as "connection refused", not
        // as a timeout.
        sock.connect(primary).await?;
        sock.send(&req).await?;
        // The query offers 1232 octets (512 without EDNS). 64 KiB here was
        // 64 KiB per zone waiting on an unreachable primary: 10,000 catalog
        // members restarted with their primary down held 150 MB of these.
        // An answer that fills the buffer was cut: asked again over TCP.
        let mut buf = vec![0u8; 4097];
        let deadline = Instant::now() + Duration::from_secs(3).min(self.timeout);
        let raw = loop {
            let n = timeout_at(deadline, sock.recv(&mut buf))
                .await
                .map_err(|_| XfrError::Timeout)??;
            if n >= 12 && buf[..2] == id.to_be_bytes() {
                break buf[..n].to_vec();
            }
        };
        let cut = raw.len() == buf.len();
        // Over TCP when the UDP answer is truncated, or REFUSED: Knot 3.2
        // refuses every UDP query to a catalog zone (generated or
        // interpreted) and answers over TCP those its ACL lets transfer
        // it. BIND would skip the SOA and ask for the transfer; we ask the
        // SOA over TCP, as Knot's own secondaries do, so that a secondary
        // that is up to date still opens no transfer. The connection is
        // kept for the transfer that may follow. (The follower check of a
        // primary asks the same way, so a Knot consumer of our catalog is
        // seen in sync.)
        let refused = raw[3] & 0xf == 5;
        if raw[2] & 0x02 != 0 || refused || cut {
            // Within the caller's time (a follower check waits 2 s).
            let deadline = Instant::now() + self.timeout.min(MESSAGE_TIMEOUT);
            let over_tcp = async {
                let tcp = timeout_at(deadline, TcpStream::connect(primary))
                    .await
                    .map_err(|_| XfrError::Timeout)??;
                let _ = tcp.set_nodelay(true);
                let mut conn: Conn = Box::new(tcp);
                let (req, mut verifier, id) = self.request(RecordType::SOA, None)?;
                send(&mut conn, &req).await?;
                let raw = recv(&mut conn, deadline).await?;
                self.check(&raw, id, &mut verifier)?;
                Ok(SoaCheck {
                    serial: self.serial_in(&raw)?,
                    expire: expire_in(&raw),
                    conn: Some(conn),
                })
            }
            .await;
            return match over_tcp {
                // TCP unreachable after a REFUSED: the REFUSED is the answer
                // (reachable, not serving it), not a timeout.
                Err(XfrError::Timeout | XfrError::Io(_)) if refused => {
                    self.check(&raw, id, &mut verifier)?;
                    Err(XfrError::Timeout)
                }
                other => other,
            };
        }
        self.check(&raw, id, &mut verifier)?;
        Ok(SoaCheck {
            serial: self.serial_in(&raw)?,
            expire: expire_in(&raw),
            conn: None,
        })
    }

    /// The serial of the zone's SOA in an answer to our SOA query.
    fn serial_in(&self, raw: &[u8]) -> Result<u32, XfrError> {
        if raw[2] & 0x04 == 0 {
            return Err(XfrError::Malformed(
                "SOA answer is not authoritative".into(),
            ));
        }
        let answers = answers(raw).map_err(|e| XfrError::Malformed(format!("SOA answer: {e}")))?;
        answers
            .iter()
            .find(|r| r.rtype == rtype::SOA && r.owner.eq_ignore_ascii_case(self.apex))
            .and_then(|r| soa_serial(&r.rdata))
            .ok_or_else(|| XfrError::Malformed("no SOA in the answer".into()))
    }

    /// IXFR from `current` (the SOA we serve), or AXFR when `current` is
    /// None; on `conn` when the SOA check left one open.
    pub async fn fetch(
        &self,
        primary: Primary,
        current: Option<&Rr>,
        conn: Option<Conn>,
    ) -> Result<Transfer, XfrError> {
        let t = if current.is_some() {
            RecordType::IXFR
        } else {
            RecordType::AXFR
        };
        let (req, mut verifier, id) = self.request(t, current)?;
        let deadline = Instant::now() + self.timeout;
        let mut s = match conn {
            Some(c) => c,
            None => self.connect(primary, deadline).await?,
        };
        send(&mut s, &req).await?;
        let client_serial = current.and_then(|c| soa_serial(&c.rdata));
        let mut parser = Parser::new(client_serial, self.max_records);
        let mut bytes = 0u64;
        let mut messages = 0usize;
        let mut expire = None;
        loop {
            let raw = recv(&mut s, deadline.min(Instant::now() + MESSAGE_TIMEOUT)).await?;
            bytes += raw.len() as u64 + 2;
            messages += 1;
            self.check(&raw, id, &mut verifier)?;
            if messages == 1 {
                expire = expire_in(&raw);
            }
            let complete = parser.message(&raw)?;
            if bytes > self.max_bytes {
                return Err(XfrError::TooLarge(format!("{} bytes", self.max_bytes)));
            }
            if complete {
                break;
            }
        }
        Ok(Transfer {
            fetched: parser.finish()?,
            messages,
            bytes,
            expire,
        })
    }
}

async fn send<S: AsyncWrite + Unpin + ?Sized>(s: &mut S, msg: &[u8]) -> Result<(), XfrError> {
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    s.write_all(&framed).await?;
    // TLS holds written data in its session until flushed.
    s.flush().await?;
    Ok(())
}

async fn recv<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    deadline: Instant,
) -> Result<Vec<u8>, XfrError> {
    let len = timeout_at(deadline, s.read_u16())
        .await
        .map_err(|_| XfrError::Timeout)?
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                XfrError::Malformed("the primary closed the connection mid-transfer".into())
            } else {
                XfrError::Io(e)
            }
        })?;
    let mut buf = vec![0u8; len as usize];
    timeout_at(deadline, s.read_exact(&mut buf))
        .await
        .map_err(|_| XfrError::Timeout)??;
    Ok(buf)
}
