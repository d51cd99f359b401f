//! Zone transfers out over TCP: AXFR (RFC 5936) and IXFR (RFC 1995).
//! One zone version (`Arc<Zone>`) is held for the whole stream, so a
//! transfer is consistent even when an edit lands meanwhile, and no lock is
//! held: queries and other transfers go on.

use crate::catalog::Catalog;
use crate::query::edns;
use crate::query::request::{AA, QR, Request, TC, rcode};
use crate::query::writer::{ANSWER, Writer};
use crate::stats;
use crate::xfr::acl::{Channel, channel_refusal, transfer_allowed, zone_at_apex};
use crate::xfr::encode::{Encoder, OutRecord, Refused, SOFT_LIMIT};
use crate::xfr::journal;
use crate::xfr::tsig::{self, Keyring, Verified};
use crate::zone::diff::Rr;
use crate::zone::rdata::{self, Soa};
use crate::zone::{Records, Zone, name, rtype};
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// How long a transfer out may take: each message must be taken by the
/// reader within `message`, the whole stream within `whole`. A reader that
/// stops reading is cut off, and its slot and zone version freed.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub message: Duration,
    pub whole: Duration,
}

/// Room left in each message for its TSIG record.
const TSIG_ROOM: usize = 400;

impl<'a> From<&'a Rr> for OutRecord<'a> {
    fn from(r: &'a Rr) -> Self {
        OutRecord {
            owner: &r.owner,
            rtype: r.rtype,
            ttl: r.ttl,
            rdata: &r.rdata,
        }
    }
}

/// Every record of a zone, SOA first and last (RFC 5936 §2.2), the apex
/// SOA not repeated in between. A plain state machine rather than a chain
/// of adapters: it runs once per record of the zone.
struct AxfrRecords<'a> {
    soa: OutRecord<'a>,
    body: Records<'a>,
    /// Where the apex node's name is stored: its SOA is the one skipped.
    apex: &'a [u8],
    stage: u8,
}

impl<'a> AxfrRecords<'a> {
    fn new(zone: &'a Zone, soa: &'a Rr) -> Self {
        AxfrRecords {
            soa: OutRecord::from(soa),
            body: zone.records(),
            apex: zone.apex().name(),
            stage: 0,
        }
    }
}

impl<'a> Iterator for AxfrRecords<'a> {
    type Item = OutRecord<'a>;

    #[inline]
    fn next(&mut self) -> Option<OutRecord<'a>> {
        match self.stage {
            0 => {
                self.stage = 1;
                Some(self.soa)
            }
            1 => {
                for r in self.body.by_ref() {
                    if !(r.rtype == rtype::SOA && std::ptr::eq(r.owner, self.apex)) {
                        return Some(r);
                    }
                }
                self.stage = 2;
                Some(self.soa)
            }
            _ => None,
        }
    }
}

/// Writes a sequence of records as framed DNS messages, each as full as
/// 64 KiB allows, signing each one when the request was signed.
struct Stream<'w, W> {
    wr: &'w mut W,
    message_timeout: Duration,
    deadline: Instant,
    id: u16,
    flags: u16,
    question: Vec<u8>,
    sig: Option<(Verified, Option<Vec<u8>>)>,
    /// The OPT record the first message carries (the request had one).
    opt: Option<Vec<u8>>,
    buf: Vec<u8>,
    messages: usize,
    records: usize,
    bytes: usize,
}

impl<'w, W: AsyncWrite + Unpin> Stream<'w, W> {
    fn new(wr: &'w mut W, req: &Request, sig: Option<Verified>, limits: Deadlines) -> Self {
        Stream {
            wr,
            message_timeout: limits.message,
            deadline: Instant::now() + limits.whole,
            id: req.id,
            flags: QR | AA | (req.flags & 0x7800),
            question: req.question.to_vec(),
            sig: sig.map(|v| (v, None)),
            opt: None,
            buf: vec![0; 65535],
            messages: 0,
            records: 0,
            bytes: 0,
        }
    }

    /// Sends `records` in as few messages as the encoder packs them into;
    /// names are compressed against `apex` among others.
    async fn send<'a>(
        &mut self,
        apex: &'a [u8],
        records: impl Iterator<Item = OutRecord<'a>>,
    ) -> std::io::Result<()> {
        let mut records = records.peekable();
        let hard = 65535
            - if self.sig.is_some() { TSIG_ROOM } else { 0 }
            - self.opt.as_ref().map_or(0, Vec::len);
        let mut enc = Encoder::new(apex);
        while records.peek().is_some() {
            enc.begin(
                self.id,
                self.flags,
                (self.messages == 0).then_some(&self.question[..]),
            );
            while let Some(r) = records.peek() {
                let limit = if enc.count() == 0 { hard } else { SOFT_LIMIT };
                match enc.record(r, limit) {
                    Ok(()) => {
                        records.next();
                    }
                    Err(Refused::Full) if enc.count() > 0 => break,
                    Err(why) => {
                        // A record that cannot fit any message: skip it, loudly.
                        if let Some(r) = records.next() {
                            let what = match why {
                                Refused::Full => "record too large for a transfer message",
                                Refused::BadName => "record with a malformed owner name",
                            };
                            crate::warn_limited!(owner = %name::to_text(r.owner), "{what}; skipped");
                        }
                    }
                }
            }
            if enc.count() == 0 {
                continue;
            }
            if self.messages == 0
                && let Some(opt) = self.opt.take()
            {
                enc.additional(&opt);
            }
            self.records += enc.count() as usize;
            let framed = enc.finish();
            if self.sig.is_some() {
                self.write(framed[2..].to_vec()).await?;
            } else {
                self.write_framed(framed).await?;
            }
        }
        Ok(())
    }

    /// Signs `msg` when the request was signed, frames it and writes it.
    async fn write(&mut self, mut msg: Vec<u8>) -> std::io::Result<()> {
        if let Some((v, prev)) = &mut self.sig {
            let now = crate::clock::unix_secs();
            let mac = match prev {
                None => tsig::sign_response(v, &mut msg, now),
                Some(p) => tsig::sign_next(v, p, &mut msg, now),
            };
            *prev = mac;
        }
        let mut framed = Vec::with_capacity(msg.len() + 2);
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(&msg);
        self.write_framed(&framed).await
    }

    /// Writes one framed message within the per-message and whole-transfer
    /// deadlines.
    async fn write_framed(&mut self, framed: &[u8]) -> std::io::Result<()> {
        let by = self.deadline.min(Instant::now() + self.message_timeout);
        // Flushed per message: TLS holds written data in its session.
        let sent = async {
            self.wr.write_all(framed).await?;
            self.wr.flush().await
        };
        match tokio::time::timeout_at(by, sent).await {
            Ok(r) => r?,
            Err(_) => {
                let what = if by == self.deadline {
                    "the whole-transfer deadline passed"
                } else {
                    "the reader took no message within the write deadline"
                };
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, what));
            }
        }
        self.messages += 1;
        self.bytes += framed.len();
        Ok(())
    }

    /// A one-message error answer (question echoed).
    async fn error(&mut self, rc: u16) -> std::io::Result<()> {
        let len = {
            let mut w = Writer::new(&mut self.buf, 512);
            w.header(self.id, (self.flags & !AA) | rc);
            let _ = w.question(&self.question);
            w.finish()
        };
        let msg = self.buf[..len].to_vec();
        self.write(msg).await
    }
}

/// The serial of the client's SOA in the IXFR request's authority
/// section, from where the request's parse found it.
fn client_serial(req: &[u8], parsed: &Request) -> Option<u32> {
    let (start, end) = parsed.authority_soa?;
    let rd = rdata::decompress(rtype::SOA, req, start, end)?;
    Soa::parse(&rd).map(|s| s.serial)
}

/// Answers an AXFR or IXFR request on a TCP or TLS connection.
#[allow(clippy::too_many_arguments)]
pub async fn respond<W: AsyncWrite + Unpin>(
    wr: &mut W,
    req: &[u8],
    parsed: &Request<'_>,
    catalog: &Catalog,
    peer: IpAddr,
    channel: Channel,
    keys: &Keyring,
    limits: Deadlines,
) -> std::io::Result<()> {
    let kind = if parsed.qtype == rtype::AXFR {
        "AXFR"
    } else {
        "IXFR"
    };
    let zname = name::to_text(parsed.qname);
    let kind_idx = if parsed.qtype == rtype::AXFR {
        stats::AXFR
    } else {
        stats::IXFR
    };
    let verified = if parsed.signed() {
        match tsig::verify(keys, req, parsed, crate::clock::unix_secs()) {
            Ok(v) => Some(v),
            Err(f) => {
                crate::warn_limited!(zone = %zname, %peer, kind, rcode = "NOTAUTH", "transfer refused: {}", f.describe());
                let mut s = Stream::new(wr, parsed, None, limits);
                let len = {
                    let mut w = Writer::new(&mut s.buf, 512);
                    w.header(parsed.id, QR | rcode::NOTAUTH);
                    let _ = w.question(parsed.question);
                    w.finish()
                };
                let mut msg = s.buf[..len].to_vec();
                tsig::error_response(&f, &mut msg, crate::clock::unix_secs());
                stats::transfer_out(kind_idx, false, 0);
                return s.write(msg).await;
            }
        }
    } else {
        None
    };
    let key = verified.as_ref().map(|v| v.key.clone());
    let mut s = Stream::new(wr, parsed, verified, limits);
    let Some(served) = zone_at_apex(catalog, parsed.qname) else {
        crate::warn_limited!(zone = %zname, %peer, kind, rcode = "NOTAUTH", "transfer refused: not a zone served here");
        stats::transfer_out(kind_idx, false, 0);
        return s.error(rcode::NOTAUTH).await;
    };
    if !transfer_allowed(served, peer, key.as_deref()) {
        let key = key.as_deref().map_or("none".to_string(), name::to_text);
        crate::warn_limited!(zone = %zname, %peer, kind, %key, rcode = "REFUSED", "transfer refused by allow_transfer/transfer_key");
        stats::transfer_out(kind_idx, false, 0);
        return s.error(rcode::REFUSED).await;
    }
    if let Some(why) = channel_refusal(served, channel) {
        crate::warn_limited!(zone = %zname, %peer, kind, rcode = "REFUSED", "{why}");
        stats::transfer_out(kind_idx, false, 0);
        return s.error(rcode::REFUSED).await;
    }
    let Some(zone) = served.zone.clone() else {
        stats::transfer_out(kind_idx, false, 0);
        return s.error(rcode::SERVFAIL).await;
    };
    // RFC 6891 §7: an OPT answers an OPT, in the first message; with the
    // zone's EXPIRE when asked (RFC 7314 §3).
    if let Some(e) = parsed.edns {
        let expire = e
            .expire
            .then(|| edns::zone_expire(served))
            .flatten()
            .map(edns::expire_option);
        s.opt = Some(edns::opt_record(
            crate::config::DEFAULT_UDP_PAYLOAD,
            expire.as_ref().map_or(&[][..], |o| &o[..]),
        ));
    }
    let soa = zone.soa_rr();
    let current = zone.serial();
    let started = std::time::Instant::now();
    crate::info_limited!(zone = %zname, %peer, kind, serial = current, "transfer out started");
    let style = if parsed.qtype == rtype::IXFR {
        match client_serial(req, parsed) {
            None => {
                crate::warn_limited!(zone = %zname, %peer, rcode = "FORMERR", "IXFR without the client's SOA");
                stats::transfer_out(kind_idx, false, 0);
                return s.error(rcode::FORMERR).await;
            }
            Some(c) if journal::up_to_date(c, current) => {
                served.status.follower_seen(peer, Some(c));
                s.send(zone.origin(), std::iter::once(OutRecord::from(&soa)))
                    .await?;
                stats::transfer_out(kind_idx, true, s.bytes as u64);
                crate::info_limited!(zone = %zname, %peer, client_serial = c, serial = current, "IXFR: client up to date");
                return Ok(());
            }
            Some(c) => match journal::chain(&served.history, c, current)
                .inspect(|_| served.status.follower_seen(peer, Some(c)))
            {
                Some(links) => {
                    let (deleted, added) = journal::condense(links);
                    let old_soa = links[0].from.clone();
                    let mut seq: Vec<OutRecord> =
                        Vec::with_capacity(deleted.len() + added.len() + 4);
                    seq.push(OutRecord::from(&soa));
                    seq.push(OutRecord::from(&old_soa));
                    seq.extend(deleted.iter().map(|r| OutRecord::from(*r)));
                    seq.push(OutRecord::from(&soa));
                    seq.extend(added.iter().map(|r| OutRecord::from(*r)));
                    seq.push(OutRecord::from(&soa));
                    s.send(zone.origin(), seq.into_iter()).await?;
                    format!(
                        "IXFR from serial {c} ({} deleted, {} added)",
                        deleted.len(),
                        added.len()
                    )
                }
                None => {
                    // RFC 1995 §4: the journal does not reach back; send the whole zone.
                    s.send(zone.origin(), AxfrRecords::new(&zone, &soa)).await?;
                    format!(
                        "IXFR from serial {c} answered AXFR-style (journal does not reach back)"
                    )
                }
            },
        }
    } else {
        s.send(zone.origin(), AxfrRecords::new(&zone, &soa)).await?;
        "AXFR".to_string()
    };
    stats::transfer_out(kind_idx, true, s.bytes as u64);
    served.status.follower_transferred(peer, current);
    crate::info_limited!(
        zone = %zname,
        %peer,
        serial = current,
        messages = s.messages,
        records = s.records,
        bytes = s.bytes,
        ms = started.elapsed().as_millis() as u64,
        "{style} sent"
    );
    Ok(())
}

/// IXFR over UDP (RFC 1995 §2), the body of the answer: the current SOA
/// alone; a client that is behind then comes back over TCP.
pub fn ixfr_over_udp(
    catalog: &Catalog,
    q: &Request,
    w: &mut Writer,
    peer: IpAddr,
    key: Option<&[u8]>,
) -> u16 {
    let Some(served) = zone_at_apex(catalog, q.qname) else {
        return rcode::NOTAUTH;
    };
    if !transfer_allowed(served, peer, key) || channel_refusal(served, Channel::Udp).is_some() {
        return rcode::REFUSED;
    }
    let Some(zone) = served.zone.as_deref() else {
        return rcode::SERVFAIL;
    };
    w.set_flags(w.flags() | AA);
    if q.edns.is_some_and(|e| e.expire) {
        w.expire = edns::zone_expire(served);
    }
    let soa = zone.soa_rr();
    if w.rr(ANSWER, q.qname, rtype::SOA, soa.ttl, &soa.rdata)
        .is_err()
    {
        w.set_flags(w.flags() | TC);
    }
    rcode::NOERROR
}
