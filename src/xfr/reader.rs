//! The transfer-message reader: the records of each message of an AXFR or
//! IXFR answer (names decompressed only where the type table allows; an
//! unreadable record named), and the record stream checked as it arrives
//! (RFC 1995 §4, RFC 5936 §2.2): SOA first and last, the differences of an
//! incremental answer, the size limit.

use super::error::XfrError;
use crate::query::request as wire;
use crate::zone::diff::{Diff, Rr, soa_serial};
use crate::zone::rdata;
use crate::zone::records::Records;
use crate::zone::{name, rtype, serial::is_newer};

/// What a transfer brought.
pub enum Fetched {
    /// The primary has nothing newer.
    UpToDate,
    /// The whole zone: the SOA, then every other record.
    Full(Records),
    /// Differences, oldest first.
    Incremental(Vec<Diff>),
}

/// Reads the record stream of an AXFR or IXFR answer (RFC 1995 §4, RFC 5936 §2.2).
pub struct Parser {
    client_serial: Option<u32>,
    max_records: usize,
    messages: usize,
    /// A lone SOA in the first message: the client is current.
    up_to_date: bool,
    first: Option<Rr>,
    serial: u32,
    mode: Mode,
    /// A full answer's records, the first SOA first.
    body: Records,
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
    pub fn new(client_serial: Option<u32>, max_records: usize) -> Parser {
        Parser {
            client_serial,
            max_records,
            messages: 0,
            up_to_date: false,
            first: None,
            serial: 0,
            mode: Mode::Start,
            body: Records::new(),
            diffs: Vec::new(),
            cur: None,
            count: 0,
            done: false,
        }
    }

    /// Takes one message of the answer; true once the answer is complete
    /// (the closing SOA came, or a lone SOA said the client is current).
    pub fn message(&mut self, raw: &[u8]) -> Result<bool, XfrError> {
        let records = answers(raw).map_err(XfrError::Malformed)?;
        if records.is_empty() {
            return Err(XfrError::Malformed("message with no records".into()));
        }
        self.messages += 1;
        for r in records {
            self.push(r)?;
            if self.count > self.max_records {
                return Err(XfrError::TooLarge(format!("{} records", self.max_records)));
            }
        }
        if !self.done && self.count == 1 && self.messages == 1 && self.lone_soa_means_current() {
            self.up_to_date = true;
        }
        Ok(self.done || self.up_to_date)
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
                if let Some(f) = &self.first {
                    self.body.push(&f.owner, f.rtype, f.ttl, &f.rdata);
                }
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
            _ => self.body.push(&r.owner, r.rtype, r.ttl, &r.rdata),
        }
        Ok(())
    }

    /// What the answer brought; an error if it stopped before its end.
    pub fn finish(self) -> Result<Fetched, XfrError> {
        if self.up_to_date {
            return Ok(Fetched::UpToDate);
        }
        if !self.done {
            return Err(XfrError::Malformed(
                "the primary closed the connection mid-transfer".into(),
            ));
        }
        if self.first.is_none() {
            return Err(XfrError::Malformed("empty transfer".into()));
        }
        if self.mode == Mode::Axfr {
            Ok(Fetched::Full(self.body))
        } else {
            Ok(Fetched::Incremental(self.diffs))
        }
    }
}

/// Reads a transfer answer already received as `messages` (no network, no
/// TSIG): the checks `client::fetch` makes on the record stream. For
/// fuzzing and tests.
pub fn parse_messages(
    messages: &[Vec<u8>],
    client_serial: Option<u32>,
    max_records: usize,
) -> Result<Fetched, XfrError> {
    let mut parser = Parser::new(client_serial, max_records);
    for raw in messages {
        if parser.message(raw)? {
            break;
        }
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
pub fn answers(msg: &[u8]) -> Result<Vec<Rr>, String> {
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
