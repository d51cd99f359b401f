//! Transfers in: the SOA check and IXFR/AXFR over TCP, with TSIG on every
//! message when the zone has a key, per-message and whole-transfer timeouts,
//! size limits, and the record stream checked as it arrives.

use crate::wire;
use crate::zone::diff::{Diff, Rr, soa_serial};
use crate::zone::rdata::{self, Soa};
use crate::zone::{name, rtype, serial::is_newer};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigVerifier, TSigner};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout, timeout_at};

/// How long one message (or the SOA answer) may take to arrive.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("answered {}{}", crate::wire::rcode::name(*.0), .1.as_deref().map(|t| format!(" (TSIG {t})")).unwrap_or_default())]
    Rcode(u16, Option<String>),
    #[error("TSIG: {0}")]
    Tsig(String),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("transfer larger than the limit ({0})")]
    TooLarge(String),
}

/// What a transfer brought.
pub enum Fetched {
    /// The primary has nothing newer.
    UpToDate,
    /// The whole zone: the SOA, then every other record.
    Full(Vec<Rr>),
    /// Differences, oldest first.
    Incremental(Vec<Diff>),
}

pub struct Client<'a> {
    pub apex: &'a [u8],
    pub key: Option<&'a TSigner>,
    pub max_records: usize,
    pub max_bytes: u64,
    pub timeout: Duration,
}

fn hname(wire_name: &[u8]) -> Result<Name, XfrError> {
    let mut labels = Vec::new();
    let mut i = 0;
    while i < wire_name.len() && wire_name[i] != 0 {
        let l = wire_name[i] as usize;
        labels.push(
            wire_name
                .get(i + 1..i + 1 + l)
                .ok_or_else(|| XfrError::Malformed("bad name".into()))?,
        );
        i += l + 1;
    }
    Name::from_labels(labels).map_err(|e| XfrError::Malformed(e.to_string()))
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
        let id = wire::random_id();
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(hname(self.apex)?, t));
        if let Some(soa) = client_soa {
            m.add_authority(soa_record(soa)?);
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

    /// The primary's current serial (SOA over UDP, over TCP if truncated).
    pub async fn soa_serial(&self, primary: SocketAddr) -> Result<u32, XfrError> {
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
        let mut buf = vec![0u8; 65535];
        let deadline = Instant::now() + Duration::from_secs(3);
        let raw = loop {
            let n = timeout_at(deadline, sock.recv(&mut buf))
                .await
                .map_err(|_| XfrError::Timeout)??;
            if n >= 12 && buf[..2] == id.to_be_bytes() {
                break buf[..n].to_vec();
            }
        };
        let raw = if raw[2] & 0x02 != 0 {
            let mut s = timeout(MESSAGE_TIMEOUT, TcpStream::connect(primary))
                .await
                .map_err(|_| XfrError::Timeout)??;
            let (req, v, id2) = self.request(RecordType::SOA, None)?;
            verifier = v;
            send(&mut s, &req).await?;
            let r = recv(&mut s, Instant::now() + MESSAGE_TIMEOUT).await?;
            self.check(&r, id2, &mut verifier)?;
            r
        } else {
            self.check(&raw, id, &mut verifier)?;
            raw
        };
        if raw[2] & 0x04 == 0 {
            return Err(XfrError::Malformed(
                "SOA answer is not authoritative".into(),
            ));
        }
        let answers = answers(&raw).map_err(|e| XfrError::Malformed(format!("SOA answer: {e}")))?;
        answers
            .iter()
            .find(|r| r.rtype == rtype::SOA && r.owner.eq_ignore_ascii_case(self.apex))
            .and_then(|r| soa_serial(&r.rdata))
            .ok_or_else(|| XfrError::Malformed("no SOA in the answer".into()))
    }

    /// IXFR from `current` (the SOA we serve), or AXFR when `current` is None.
    pub async fn fetch(
        &self,
        primary: SocketAddr,
        current: Option<&Rr>,
    ) -> Result<(Fetched, usize, u64), XfrError> {
        let t = if current.is_some() {
            RecordType::IXFR
        } else {
            RecordType::AXFR
        };
        let (req, mut verifier, id) = self.request(t, current)?;
        let deadline = Instant::now() + self.timeout;
        let mut s = timeout_at(deadline, TcpStream::connect(primary))
            .await
            .map_err(|_| XfrError::Timeout)??;
        send(&mut s, &req).await?;
        let client_serial = current.and_then(|c| soa_serial(&c.rdata));
        let mut parser = Parser::new(client_serial);
        let mut bytes = 0u64;
        let mut messages = 0usize;
        while !parser.done {
            let raw = recv(&mut s, deadline.min(Instant::now() + MESSAGE_TIMEOUT)).await?;
            bytes += raw.len() as u64 + 2;
            messages += 1;
            self.check(&raw, id, &mut verifier)?;
            let records = answers(&raw).map_err(XfrError::Malformed)?;
            if records.is_empty() {
                return Err(XfrError::Malformed("message with no records".into()));
            }
            for r in records {
                parser.push(r)?;
                if parser.count > self.max_records {
                    return Err(XfrError::TooLarge(format!("{} records", self.max_records)));
                }
            }
            if bytes > self.max_bytes {
                return Err(XfrError::TooLarge(format!("{} bytes", self.max_bytes)));
            }
            if !parser.done && parser.count == 1 && messages == 1 && parser.lone_soa_means_current()
            {
                return Ok((Fetched::UpToDate, messages, bytes));
            }
        }
        Ok((parser.finish()?, messages, bytes))
    }
}

async fn send(s: &mut TcpStream, msg: &[u8]) -> Result<(), XfrError> {
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    s.write_all(&framed).await?;
    Ok(())
}

async fn recv(s: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, XfrError> {
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

/// Reads the record stream of an AXFR or IXFR answer (RFC 1995 §4, RFC 5936 §2.2).
struct Parser {
    client_serial: Option<u32>,
    first: Option<Rr>,
    serial: u32,
    mode: Mode,
    body: Vec<Rr>,
    diffs: Vec<Diff>,
    cur: Option<Diff>,
    count: usize,
    done: bool,
}

#[derive(PartialEq, Eq)]
enum Mode {
    Start,
    Axfr,
    Deleting,
    Adding,
}

impl Parser {
    fn new(client_serial: Option<u32>) -> Parser {
        Parser {
            client_serial,
            first: None,
            serial: 0,
            mode: Mode::Start,
            body: Vec::new(),
            diffs: Vec::new(),
            cur: None,
            count: 0,
            done: false,
        }
    }

    fn lone_soa_means_current(&self) -> bool {
        matches!(self.client_serial, Some(c) if !is_newer(self.serial, c))
    }

    fn push(&mut self, r: Rr) -> Result<(), XfrError> {
        if self.done {
            return Err(XfrError::Malformed("records after the closing SOA".into()));
        }
        self.count += 1;
        let soa = if r.rtype == rtype::SOA {
            soa_serial(&r.rdata)
        } else {
            None
        };
        if self.first.is_none() {
            let s = soa.ok_or_else(|| {
                XfrError::Malformed(format!(
                    "first record is {} {}, not the SOA",
                    name::to_text(&r.owner),
                    rtype::to_text(r.rtype)
                ))
            })?;
            self.serial = s;
            self.first = Some(r);
            return Ok(());
        }
        match self.mode {
            Mode::Start => {
                // A second SOA that is not the new one starts an incremental answer.
                if let (Some(s), Some(_)) = (soa, self.client_serial)
                    && s != self.serial
                {
                    self.start_diff(r);
                    return Ok(());
                }
                self.mode = Mode::Axfr;
                self.push_axfr(r, soa)
            }
            Mode::Axfr => self.push_axfr(r, soa),
            Mode::Deleting => {
                let cur = self
                    .cur
                    .as_mut()
                    .ok_or_else(|| XfrError::Malformed("IXFR".into()))?;
                match soa {
                    Some(_) => {
                        cur.to = r;
                        self.mode = Mode::Adding;
                    }
                    None => cur.deleted.push(r),
                }
                Ok(())
            }
            Mode::Adding => {
                let Some(s) = soa else {
                    self.cur
                        .as_mut()
                        .ok_or_else(|| XfrError::Malformed("IXFR".into()))?
                        .added
                        .push(r);
                    return Ok(());
                };
                let cur = self
                    .cur
                    .take()
                    .ok_or_else(|| XfrError::Malformed("IXFR".into()))?;
                let reached = cur.to_serial() == self.serial;
                self.diffs.push(cur);
                if reached && s == self.serial {
                    self.done = true;
                } else {
                    self.start_diff(r);
                }
                Ok(())
            }
        }
    }

    /// An SOA that opens the next difference (its deletions follow).
    fn start_diff(&mut self, from: Rr) {
        let to = from.clone();
        self.cur = Some(Diff {
            from,
            to,
            deleted: vec![],
            added: vec![],
        });
        self.mode = Mode::Deleting;
    }

    fn push_axfr(&mut self, r: Rr, soa: Option<u32>) -> Result<(), XfrError> {
        match soa {
            Some(s)
                if r.owner.eq_ignore_ascii_case(
                    &self
                        .first
                        .as_ref()
                        .map(|f| f.owner.clone())
                        .unwrap_or_default(),
                ) =>
            {
                if s != self.serial {
                    return Err(XfrError::Malformed(format!(
                        "first SOA has serial {} but the closing one {s}",
                        self.serial
                    )));
                }
                self.done = true;
            }
            _ => self.body.push(r),
        }
        Ok(())
    }

    fn finish(self) -> Result<Fetched, XfrError> {
        let first = self
            .first
            .ok_or_else(|| XfrError::Malformed("empty transfer".into()))?;
        if self.mode == Mode::Axfr {
            let mut all = Vec::with_capacity(self.body.len() + 1);
            all.push(first);
            all.extend(self.body);
            Ok(Fetched::Full(all))
        } else {
            Ok(Fetched::Incremental(self.diffs))
        }
    }
}

/// Reads a transfer answer already received as `messages` (no network, no
/// TSIG): the checks `fetch` makes on the record stream. For fuzzing and tests.
pub fn parse_messages(
    messages: &[Vec<u8>],
    client_serial: Option<u32>,
    max_records: usize,
) -> Result<Fetched, XfrError> {
    let mut parser = Parser::new(client_serial);
    for (i, raw) in messages.iter().enumerate() {
        if parser.done {
            break;
        }
        let records = answers(raw).map_err(XfrError::Malformed)?;
        if records.is_empty() {
            return Err(XfrError::Malformed("message with no records".into()));
        }
        for r in records {
            parser.push(r)?;
            if parser.count > max_records {
                return Err(XfrError::TooLarge(format!("{max_records} records")));
            }
        }
        if !parser.done && parser.count == 1 && i == 0 && parser.lone_soa_means_current() {
            return Ok(Fetched::UpToDate);
        }
    }
    if !parser.done {
        return Err(XfrError::Malformed(
            "the primary closed the connection mid-transfer".into(),
        ));
    }
    parser.finish()
}

/// Reads one resource record at `pos`: owner, type, class, TTL and rdata,
/// with names inside the rdata of the types that may carry compression
/// (RFC 3597 §4) decompressed. The error says what was wrong with it.
fn read_rr(msg: &[u8], pos: usize) -> Result<(Rr, u16, usize), String> {
    let (owner, p) = name::read_compressed(msg, pos).ok_or("an owner name that cannot be read")?;
    let what = || name::to_text(&owner);
    let fixed = msg
        .get(p..p + 10)
        .ok_or_else(|| format!("{}: the message ends inside the record", what()))?;
    let t = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let start = p + 10;
    let end = start + rdlen;
    if end > msg.len() {
        return Err(format!("{}: the message ends inside the record", what()));
    }
    let rdata = rdata::decompress(t, msg, start, end).ok_or_else(|| {
        format!(
            "{} {}: rdata does not hold the type's fields",
            what(),
            rtype::to_text(t)
        )
    })?;
    // RFC 2181 §8: a TTL with the top bit set is taken as zero.
    let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
    Ok((
        Rr {
            owner: owner.into(),
            rtype: t,
            ttl,
            rdata: rdata.into(),
        },
        class,
        end,
    ))
}

/// The answer records of a response message (question skipped).
fn answers(msg: &[u8]) -> Result<Vec<Rr>, String> {
    let (Some(qd), Some(an)) = (wire::u16_at(msg, 4), wire::u16_at(msg, 6)) else {
        return Err("a message shorter than its header".into());
    };
    let mut pos = wire::HEADER;
    for _ in 0..qd {
        pos = wire::skip_name(msg, pos).ok_or("a question that cannot be read")? + 4;
    }
    let mut out = Vec::with_capacity(an as usize);
    for i in 0..an {
        let (rr, class, next) = read_rr(msg, pos).map_err(|e| format!("record {}: {e}", i + 1))?;
        if class != 1 {
            return Err(format!("record {}: class {class}, not IN", i + 1));
        }
        out.push(rr);
        pos = next;
    }
    Ok(out)
}
