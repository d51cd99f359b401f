//! The transfer encoder: records packed into framed DNS messages for AXFR
//! and IXFR, names compressed by exact octets.
//!
//! Why not `query::writer::Writer`: it compresses each name by comparing it
//! with up to 64 names already written, octet by octet. That is right for
//! an answer of a few records, but a transfer writes millions of names, and
//! that scan was two thirds of the time of a large AXFR (perf: memcmp and
//! `Writer::name`). Names in a zone are nearly all "leading labels + the
//! apex", and records of one name follow each other, so this encoder tries,
//! per name, only two candidates found by one suffix comparison each:
//!
//! - the previous owner (the same node goes on, or a name just below it,
//!   as the `ns.sub` target of `sub NS`);
//! - the apex, written once per message and pointed to ever after;
//!
//! and only names that are neither (names outside the zone, or spelled in
//! another case than the apex) go to a hash table of every suffix written,
//! looked up once per suffix. Matching is exact, octet for octet, as in the
//! Writer: a name compressed against another spelling would change case on
//! the wire (RFC 4343), and a transfer must carry the zone exactly.
//!
//! Which rdata names are compressed is the Writer's rule, from the same
//! type table: `Name(Compress::Yes)` fields of RFC 1035 types only
//! (RFC 3597 §4); every other rdata is copied as stored.
//!
//! Messages are about 16 KiB, as NSD's and Knot's: a compression pointer
//! reaches only the first 16 KiB of a message, so in 64 KiB messages three
//! quarters of the names could not be pointed to (10% more octets for the
//! same zone). Each message is built after two octets kept for its TCP
//! length, so an unsigned one goes out without being copied (a signed one
//! is copied once, for hickory's TSIG signer).

use crate::query::request::HEADER;
use crate::zone::rdata::{self, Compress, Field};
use std::hash::BuildHasher;

/// One record to send, borrowed from a zone or a journal entry.
pub use crate::zone::Record as OutRecord;

/// Where a message ends when records keep coming: names up to here can be
/// pointed to (14-bit offsets).
pub const SOFT_LIMIT: usize = 0x4000;

/// Suffix table size (a power of two); at most half of it is filled, which
/// covers every name a 16 KiB message can hold in practice.
const SLOTS: usize = 4096;
const MAX_ENTRIES: usize = SLOTS / 2;

/// Why a record was not written.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not enough room left in this message.
    Full,
    /// The owner is not a well-formed wire name (the store holds none).
    BadName,
}

/// State to restore when a record is taken back.
#[derive(Clone, Copy)]
struct Mark<'a> {
    len: usize,
    apex_at: Option<u16>,
    prev: Option<(&'a [u8], u16)>,
    logged: usize,
}

pub struct Encoder<'a> {
    /// Two octets for the TCP length, then the message.
    buf: Box<[u8]>,
    /// End of the message so far, counted from `buf[2]` (message offsets).
    len: usize,
    ancount: u16,
    apex: &'a [u8],
    /// Where the apex starts with a label in this message.
    apex_at: Option<u16>,
    /// The last owner written and where it starts with a label.
    prev: Option<(&'a [u8], u16)>,
    /// Suffix table for the other names: `tag << 16 | (offset + 1)`, 0 empty.
    slots: Box<[u32]>,
    /// Slots filled in this message, in order, so a record can be taken back.
    log: Vec<u16>,
    hasher: foldhash::fast::FixedState,
}

/// Byte `i` of the message (after the length octets).
#[inline]
fn at(buf: &[u8], i: usize) -> Option<u8> {
    buf.get(2 + i).copied()
}

impl<'a> Encoder<'a> {
    /// An encoder for names under `apex` (exact octets as stored).
    pub fn new(apex: &'a [u8]) -> Self {
        Encoder {
            buf: vec![0u8; 2 + 65535].into_boxed_slice(),
            len: 0,
            ancount: 0,
            apex,
            apex_at: None,
            prev: None,
            slots: vec![0u32; SLOTS].into_boxed_slice(),
            log: Vec::with_capacity(MAX_ENTRIES),
            hasher: foldhash::fast::FixedState::with_seed(0x7a9d_3c1e),
        }
    }

    /// Starts a message: header, and the question when given (RFC 5936
    /// §2.2: in the first message only).
    pub fn begin(&mut self, id: u16, flags: u16, question: Option<&[u8]>) {
        for &s in &self.log {
            self.slots[s as usize] = 0;
        }
        self.log.clear();
        self.apex_at = None;
        self.prev = None;
        self.ancount = 0;
        let h = &mut self.buf[2..2 + HEADER];
        h.fill(0);
        h[0..2].copy_from_slice(&id.to_be_bytes());
        h[2..4].copy_from_slice(&flags.to_be_bytes());
        self.len = HEADER;
        if let Some(q) = question {
            self.put(q);
            self.buf[2 + 5] = 1;
            // The question's name is the apex when spelled the same.
            if q.starts_with(self.apex) {
                self.apex_at = Some(HEADER as u16);
            }
        }
    }

    /// Records written in this message.
    pub fn count(&self) -> u16 {
        self.ancount
    }

    /// Appends one record, as written, to the additional section (the OPT
    /// record of a transfer's first message); the caller kept room for it.
    pub fn additional(&mut self, rr: &[u8]) {
        if 2 + self.len + rr.len() > self.buf.len() {
            return;
        }
        self.put(rr);
        let ar = u16::from_be_bytes([self.buf[2 + 10], self.buf[2 + 11]]).saturating_add(1);
        self.buf[2 + 10..2 + 12].copy_from_slice(&ar.to_be_bytes());
    }

    /// Ends the message: its counts and length prefix set; the framed bytes.
    pub fn finish(&mut self) -> &[u8] {
        self.buf[2 + 6..2 + 8].copy_from_slice(&self.ancount.to_be_bytes());
        self.buf[0..2].copy_from_slice(&(self.len as u16).to_be_bytes());
        &self.buf[..2 + self.len]
    }

    #[inline]
    fn put(&mut self, b: &[u8]) {
        let start = 2 + self.len;
        self.buf[start..start + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    #[inline]
    fn pointer(&mut self, off: u16) {
        self.put(&(0xc000 | off).to_be_bytes());
    }

    fn mark(&self) -> Mark<'a> {
        Mark {
            len: self.len,
            apex_at: self.apex_at,
            prev: self.prev,
            logged: self.log.len(),
        }
    }

    fn rollback(&mut self, m: Mark<'a>) {
        // Linear probing undone newest first leaves the table as it was.
        while self.log.len() > m.logged {
            if let Some(s) = self.log.pop() {
                self.slots[s as usize] = 0;
            }
        }
        self.len = m.len;
        self.apex_at = m.apex_at;
        self.prev = m.prev;
    }

    /// Writes one record whole, within `limit` octets of message, or
    /// nothing. Its uncompressed size must fit: the few octets compression
    /// might have saved at the end of a message are not worth a second try.
    pub fn record(&mut self, r: &OutRecord<'a>, limit: usize) -> Result<(), Refused> {
        if self.len + r.owner.len() + 10 + r.rdata.len() > limit.min(65535) {
            return Err(Refused::Full);
        }
        let rdlen = u16::try_from(r.rdata.len()).map_err(|_| Refused::Full)?;
        let m = self.mark();
        self.owner(r.owner).inspect_err(|_| self.rollback(m))?;
        let mut fixed = [0u8; 10];
        fixed[0..2].copy_from_slice(&r.rtype.to_be_bytes());
        fixed[2..4].copy_from_slice(&1u16.to_be_bytes());
        fixed[4..8].copy_from_slice(&r.ttl.to_be_bytes());
        fixed[8..10].copy_from_slice(&rdlen.to_be_bytes());
        self.put(&fixed);
        match rdata::info(r.rtype).filter(|i| i.compress) {
            None => self.put(r.rdata),
            Some(info) => {
                let start = self.mark();
                let mut whole = true;
                for f in rdata::split(info, r.rdata) {
                    match f {
                        Ok((Field::Name(Compress::Yes), n)) if self.name(n).is_ok() => {}
                        Ok((Field::Name(Compress::Yes), _)) | Err(_) => {
                            whole = false;
                            break;
                        }
                        Ok((_, bytes)) => self.put(bytes),
                    }
                }
                if !whole {
                    // Not what its type says (the store holds no such
                    // rdata): written as it is, uncompressed, as the Writer does.
                    self.rollback(start);
                    self.put(r.rdata);
                }
                let n = (self.len - start.len) as u16;
                self.buf[2 + start.len - 2..2 + start.len].copy_from_slice(&n.to_be_bytes());
            }
        }
        self.ancount += 1;
        Ok(())
    }

    /// The owner: a pointer when the previous record had the same one.
    fn owner(&mut self, n: &'a [u8]) -> Result<(), Refused> {
        if let Some((p, off)) = self.prev
            && (std::ptr::eq(p, n) || p == n)
        {
            self.pointer(off);
            return Ok(());
        }
        let start = self.len;
        self.name(n)?;
        // Only a name that starts with a label may be pointed to.
        if start < 0x4000 && at(&self.buf, start).is_some_and(|b| b < 0xc0) {
            self.prev = Some((n, start as u16));
        }
        Ok(())
    }

    /// Writes an uncompressed wire name, compressed against the previous
    /// owner, the apex, or any suffix the table holds.
    fn name(&mut self, n: &'a [u8]) -> Result<(), Refused> {
        if n.len() > crate::zone::name::MAX_NAME {
            return Err(Refused::BadName);
        }
        // The one label boundary where the previous owner or the apex could
        // begin: found by length, confirmed by walking the labels.
        let prev_cut = self
            .prev
            .filter(|(p, _)| n.len() >= p.len() && n.ends_with(p))
            .map(|(p, off)| (n.len() - p.len(), off));
        let apex_cut = (n.len() >= self.apex.len() && n.ends_with(self.apex))
            .then(|| n.len() - self.apex.len());
        let mut i = 0;
        loop {
            let Some(&l) = n.get(i) else {
                return Err(Refused::BadName);
            };
            if l > 63 || i + 1 + l as usize > n.len() {
                return Err(Refused::BadName);
            }
            if let Some((cut, off)) = prev_cut
                && cut == i
            {
                self.put(&n[..i]);
                self.pointer(off);
                return Ok(());
            }
            if apex_cut == Some(i) {
                if let Some(off) = self.apex_at {
                    self.put(&n[..i]);
                    self.pointer(off);
                } else {
                    let start = self.len;
                    self.put(n);
                    if start + i < 0x4000 {
                        self.apex_at = Some((start + i) as u16);
                    }
                }
                return Ok(());
            }
            if l == 0 {
                break;
            }
            i += 1 + l as usize;
        }
        if i + 1 != n.len() {
            return Err(Refused::BadName);
        }
        self.other_name(n);
        Ok(())
    }

    /// A name outside the apex (or spelled otherwise): compressed against
    /// the longest suffix in the table; its new suffixes go in.
    fn other_name(&mut self, n: &[u8]) {
        let mut i = 0;
        let mut hit = None;
        while n[i] != 0 {
            if let Some(off) = self.find(&n[i..]) {
                hit = Some(off);
                break;
            }
            i += 1 + n[i] as usize;
        }
        let start = self.len;
        self.put(&n[..i]);
        match hit {
            Some(off) => self.pointer(off),
            None => self.put(&[0]),
        }
        let mut j = 0;
        while j < i {
            self.remember(&n[j..], start + j);
            j += 1 + n[j] as usize;
        }
    }

    fn slot_of(&self, suffix: &[u8]) -> (usize, u32) {
        let h = self.hasher.hash_one(suffix);
        ((h as usize) & (SLOTS - 1), (h >> 48) as u32)
    }

    fn find(&self, suffix: &[u8]) -> Option<u16> {
        if self.log.is_empty() {
            return None;
        }
        let (mut s, tag) = self.slot_of(suffix);
        loop {
            let e = self.slots[s];
            if e == 0 {
                return None;
            }
            let off = (e & 0xffff) as usize - 1;
            if e >> 16 == tag && self.name_at_eq(off, suffix) {
                return Some(off as u16);
            }
            s = (s + 1) & (SLOTS - 1);
        }
    }

    fn remember(&mut self, suffix: &[u8], off: usize) {
        if off >= 0x4000 || self.log.len() >= MAX_ENTRIES {
            return;
        }
        let (mut s, tag) = self.slot_of(suffix);
        while self.slots[s] != 0 {
            s = (s + 1) & (SLOTS - 1);
        }
        self.slots[s] = (tag << 16) | (off as u32 + 1);
        self.log.push(s as u16);
    }

    /// Does the (possibly compressed) name at message offset `off` equal
    /// `s`, octet for octet? (The message starts after the 2-octet length.)
    fn name_at_eq(&self, off: usize, s: &[u8]) -> bool {
        crate::query::writer::name_at_eq(self.buf.get(2..).unwrap_or_default(), off, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{name, rtype};

    const APEX: &[u8] = b"\x07Example\x04test\x00";

    fn wire(text: &str) -> Vec<u8> {
        name::parse_absolute(text).expect("name")
    }

    type Owned = (Vec<u8>, u16, u32, Vec<u8>);

    /// As `Stream::send` does: messages of about 16 KiB, a record too
    /// large for that alone in a message of up to 64 KiB.
    fn encode_all(records: &[Owned]) -> Vec<Vec<u8>> {
        let mut enc = Encoder::new(APEX);
        let mut out = Vec::new();
        let mut it = records
            .iter()
            .map(|(o, t, ttl, rd)| OutRecord {
                owner: o,
                rtype: *t,
                ttl: *ttl,
                rdata: rd,
            })
            .peekable();
        let question = b"\x07example\x04test\x00\x00\xfc\x00\x01";
        while it.peek().is_some() {
            enc.begin(7, 0x8400, out.is_empty().then_some(&question[..]));
            while let Some(r) = it.peek() {
                let limit = if enc.count() == 0 { 65535 } else { SOFT_LIMIT };
                match enc.record(r, limit) {
                    Ok(()) => {
                        it.next();
                    }
                    Err(Refused::Full) if enc.count() > 0 => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            let framed = enc.finish();
            assert_eq!(
                u16::from_be_bytes([framed[0], framed[1]]) as usize,
                framed.len() - 2
            );
            out.push(framed[2..].to_vec());
        }
        out
    }

    /// Every answer of a message, names decompressed by the transfer-in code.
    fn decode(msg: &[u8]) -> Vec<Owned> {
        let an = u16::from_be_bytes([msg[6], msg[7]]);
        let qd = u16::from_be_bytes([msg[4], msg[5]]);
        let mut pos = 12;
        for _ in 0..qd {
            pos = name::read_compressed(msg, pos).expect("question").1 + 4;
        }
        let mut out = Vec::new();
        for _ in 0..an {
            let (owner, next) = name::read_compressed(msg, pos).expect("owner");
            let f = &msg[next..next + 10];
            let t = u16::from_be_bytes([f[0], f[1]]);
            assert_eq!(&f[2..4], &[0, 1], "class IN");
            let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
            let len = u16::from_be_bytes([f[8], f[9]]) as usize;
            let start = next + 10;
            // Rdata not as its type says is sent as stored: taken as it is.
            let rd = rdata::decompress(t, msg, start, start + len)
                .unwrap_or_else(|| msg[start..start + len].to_vec());
            out.push((owner, t, ttl, rd));
            pos = start + len;
        }
        assert_eq!(pos, msg.len(), "octets after the last record");
        out
    }

    fn rr(owner: &str, t: u16, rd: Vec<u8>) -> Owned {
        (wire(owner), t, 300, rd)
    }

    fn mx(pref: u16, target: &str) -> Vec<u8> {
        let mut v = pref.to_be_bytes().to_vec();
        v.extend(wire(target));
        v
    }

    fn sample() -> Vec<Owned> {
        let mut soa = wire("ns.Example.test.");
        soa.extend(wire("Host.Master.example.net."));
        soa.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
        let mut srv = vec![0, 1, 0, 2, 0x13, 0xc4];
        srv.extend(wire("Sip.Example.test."));
        let mut nsec = wire("b.Example.test.");
        nsec.extend_from_slice(&[0, 1, 0x40]);
        let mut https = vec![0, 1];
        https.extend(wire("svc.Example.test."));
        let mut v = vec![
            rr("Example.test.", rtype::SOA, soa),
            rr("Example.test.", rtype::NS, wire("ns.Example.test.")),
            rr("Example.test.", rtype::NS, wire("NS2.elsewhere.NET.")),
            rr("sub.Example.test.", rtype::NS, wire("ns.sub.Example.test.")),
            rr("ns.sub.Example.test.", rtype::A, vec![192, 0, 2, 1]),
            rr("WWW.Example.test.", rtype::A, vec![192, 0, 2, 2]),
            rr("www.Example.test.", rtype::A, vec![192, 0, 2, 3]),
            rr("www.EXAMPLE.test.", rtype::CNAME, wire("www.EXAMPLE.test.")),
            rr(
                "mail.example.TEST.",
                rtype::MX,
                mx(10, "Mail.elsewhere.net."),
            ),
            rr(
                "mail2.example.TEST.",
                rtype::MX,
                mx(20, "mail.elsewhere.net."),
            ),
            rr("x.Example.test.", rtype::MX, mx(30, "Mail.elsewhere.net.")),
            rr("_sip._tcp.Example.test.", rtype::SRV, srv),
            rr("a.Example.test.", rtype::NSEC, nsec),
            rr("a.Example.test.", rtype::HTTPS, https),
            rr("a.Example.test.", 65280, wire("Example.test.")),
            rr("c.Example.test.", rtype::DNAME, wire("Example.test.")),
            rr(".", rtype::NS, wire("Example.test.")),
        ];
        for i in 0..3000 {
            let owner = format!("h{i}.Example.test.");
            v.push(rr(&owner, rtype::A, vec![10, 0, (i >> 8) as u8, i as u8]));
            v.push(rr(&owner, rtype::TXT, b"\x05hello".to_vec()));
            if i % 7 == 0 {
                let target = format!("mx{i}.Provider{}.example.", i % 5);
                v.push(rr(&owner, rtype::MX, mx(5, &target)));
            }
        }
        v
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_octets() {
        let records = sample();
        let msgs = encode_all(&records);
        assert!(msgs.len() > 3, "{} messages", msgs.len());
        for m in &msgs[..msgs.len() - 1] {
            assert!(m.len() <= SOFT_LIMIT, "{}", m.len());
        }
        let back: Vec<Owned> = msgs.iter().flat_map(|m| decode(m)).collect();
        assert_eq!(back, records);
        let plain: usize = records
            .iter()
            .map(|(o, _, _, rd)| o.len() + 10 + rd.len())
            .sum();
        let sent: usize = msgs.iter().map(|m| m.len()).sum();
        assert!(sent * 3 < plain * 2, "compressed: {sent} of {plain}");
    }

    /// Where `what` first occurs in `msg`.
    fn find(msg: &[u8], what: &[u8]) -> Option<usize> {
        msg.windows(what.len()).position(|w| w == what)
    }

    #[test]
    fn names_are_compressed_only_where_the_type_table_allows() {
        let records = sample();
        let msg = &encode_all(&records)[0];
        // Names of later types, and of types only decompressed, stay whole.
        assert!(find(msg, b"\x03Sip\x07Example\x04test\x00").is_some());
        assert!(find(msg, b"\x01b\x07Example\x04test\x00\x00\x01\x40").is_some());
        assert!(find(msg, b"\x03svc\x07Example\x04test\x00").is_some());
        // An opaque type's rdata as stored, though it looks like a name.
        assert!(find(msg, b"\x00\x0e\x07Example\x04test\x00").is_some());
        // `ns.sub` below the previous owner `sub`: one label and a pointer.
        let sub = find(msg, b"\x03sub\xc0").expect("sub written");
        let ns = [&b"\x02ns"[..], &(0xc000 | sub as u16).to_be_bytes()].concat();
        assert!(
            find(msg, &ns).is_some(),
            "NS target compressed against its owner"
        );
    }

    #[test]
    fn case_is_kept_and_never_folded_into_another_spelling() {
        let records = vec![
            rr("Example.test.", rtype::A, vec![1, 1, 1, 1]),
            rr("WWW.Example.test.", rtype::A, vec![1, 2, 3, 4]),
            rr("www.Example.test.", rtype::A, vec![1, 2, 3, 5]),
            rr("www.EXAMPLE.TEST.", rtype::A, vec![1, 2, 3, 6]),
            rr("x.example.test.", rtype::CNAME, wire("www.EXAMPLE.TEST.")),
        ];
        let msgs = encode_all(&records);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        // The question is spelled `example.test`: not a target for `Example`.
        assert_eq!(&m[30..44], b"\x07Example\x04test\x00");
        assert!(find(m, b"\x03WWW\xc0").is_some());
        assert!(find(m, b"\x03www\xc0").is_some());
        assert!(find(m, b"\x03www\x07EXAMPLE\x04TEST\x00").is_some());
        assert_eq!(
            msgs.iter().flat_map(|m| decode(m)).collect::<Vec<_>>(),
            records
        );
    }

    #[test]
    fn a_record_too_large_for_16_kib_goes_alone_in_a_larger_message() {
        let mut big = Vec::new();
        for _ in 0..200 {
            big.push(255);
            big.extend_from_slice(&[b'x'; 255]);
        }
        let records = vec![
            rr("a.Example.test.", rtype::A, vec![1, 2, 3, 4]),
            rr("big.Example.test.", rtype::TXT, big),
            rr("b.Example.test.", rtype::MX, mx(1, "a.Example.test.")),
        ];
        let msgs = encode_all(&records);
        assert_eq!(msgs.len(), 3);
        assert!(msgs[1].len() > SOFT_LIMIT);
        assert_eq!(
            msgs.iter().flat_map(|m| decode(m)).collect::<Vec<_>>(),
            records
        );
        // Nothing is written that no message can hold.
        let mut enc = Encoder::new(APEX);
        enc.begin(1, 0, None);
        let huge = vec![0u8; 65535];
        let r = OutRecord {
            owner: APEX,
            rtype: 65280,
            ttl: 0,
            rdata: &huge,
        };
        assert_eq!(enc.record(&r, 65535), Err(Refused::Full));
        assert_eq!(enc.count(), 0);
    }

    #[test]
    fn rdata_not_as_its_type_says_is_copied_and_compression_state_undone() {
        // An MX whose name is followed by stray octets: written as stored
        // (as the Writer does), and nothing it held becomes a pointer target.
        let mut bad = mx(1, "q.elsewhere.net.");
        bad.push(9);
        let records = vec![
            rr("Example.test.", rtype::A, vec![1, 1, 1, 1]),
            rr("m.Example.test.", rtype::MX, bad.clone()),
            rr("n.Example.test.", rtype::MX, mx(2, "q.elsewhere.net.")),
        ];
        let msgs = encode_all(&records);
        let m = &msgs[0];
        assert!(find(m, &bad).is_some(), "copied as stored");
        let whole = b"\x01q\x09elsewhere\x03net\x00";
        assert_eq!(m.windows(whole.len()).filter(|w| w == whole).count(), 2);
        assert_eq!(
            msgs.iter().flat_map(|m| decode(m)).collect::<Vec<_>>(),
            records
        );
    }

    #[test]
    fn a_malformed_owner_is_refused_whole() {
        let mut enc = Encoder::new(APEX);
        enc.begin(1, 0, None);
        for owner in [&b"\x05ab\x00"[..], b"\x40aaaa\x00", b"", b"\x01a"] {
            let r = OutRecord {
                owner,
                rtype: rtype::A,
                ttl: 0,
                rdata: &[1, 2, 3, 4],
            };
            assert_eq!(enc.record(&r, 65535), Err(Refused::BadName), "{owner:?}");
            assert_eq!(enc.count(), 0);
        }
        assert_eq!(enc.finish().len(), 2 + HEADER);
    }
}
