//! The response under construction: records written whole or not at
//! all, names compressed where the type table allows (exact octets only),
//! the client's size limit kept, the OPT record appended.

use super::request::HEADER;
use crate::zone::rdata::{self, Compress, Field};
use crate::zone::{name, rtype};

/// The response under construction, in a caller-owned buffer.
pub struct Writer<'b> {
    pub buf: &'b mut [u8],
    pub len: usize,
    limit: usize,
    /// Offsets where names (or name suffixes) were written, for compression.
    names: [u16; 64],
    n_names: usize,
    counts: [u16; 4],
    /// Where the previous record's owner starts (with a label): records of
    /// one RRset, or one name in a transfer, point straight back to it.
    last_owner: Option<u16>,
    /// The EXPIRE option's value (RFC 7314), set by a body that answers a
    /// zone's SOA to a request that asked for it.
    pub expire: Option<u32>,
}

#[derive(Debug)]
pub struct Full;

#[derive(Clone, Copy)]
pub struct Mark {
    len: usize,
    n_names: usize,
    counts: [u16; 4],
    last_owner: Option<u16>,
}

pub const ANSWER: usize = 1;
pub const AUTHORITY: usize = 2;
pub const ADDITIONAL: usize = 3;

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut [u8], limit: usize) -> Self {
        let limit = limit.min(buf.len());
        Writer {
            buf,
            len: HEADER,
            limit,
            names: [0; 64],
            n_names: 0,
            counts: [0; 4],
            last_owner: None,
            expire: None,
        }
    }

    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(self.buf.len());
    }

    pub fn header(&mut self, id: u16, flags: u16) {
        self.buf[0..2].copy_from_slice(&id.to_be_bytes());
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
    }

    pub fn flags(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    pub fn set_flags(&mut self, flags: u16) {
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
    }

    pub fn mark(&self) -> Mark {
        Mark {
            len: self.len,
            n_names: self.n_names,
            counts: self.counts,
            last_owner: self.last_owner,
        }
    }

    pub fn rollback(&mut self, m: Mark) {
        self.len = m.len;
        self.n_names = m.n_names;
        self.counts = m.counts;
        self.last_owner = m.last_owner;
    }

    fn put(&mut self, b: &[u8]) -> Result<(), Full> {
        let end = self.len + b.len();
        if end > self.limit {
            return Err(Full);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }

    /// Copies the request's question (none for a cookie request, RFC 7873
    /// §5.4); its name becomes compression target 12.
    pub fn question(&mut self, q: &[u8]) -> Result<(), Full> {
        self.put(q)?;
        self.counts[0] = u16::from(!q.is_empty());
        let mut i = 0;
        while i < q.len() && q[i] != 0 && q[i] < 64 {
            self.remember(HEADER + i);
            i += q[i] as usize + 1;
        }
        Ok(())
    }

    fn remember(&mut self, off: usize) {
        if self.n_names < self.names.len() && off < 0x3fff {
            self.names[self.n_names] = off as u16;
            self.n_names += 1;
        }
    }

    fn name_at_eq(&self, off: usize, s: &[u8]) -> bool {
        name_at_eq(self.buf, off, s)
    }

    /// Writes an uncompressed wire name, compressing it against names
    /// already in the message. Anything but a well-formed wire name is
    /// refused (the store holds none; this keeps a bug from writing garbage).
    pub fn name(&mut self, n: &[u8]) -> Result<(), Full> {
        if name::wire_len(n) != Some(n.len()) {
            return Err(Full);
        }
        let mut i = 0;
        while n[i] != 0 {
            let suffix = &n[i..];
            let hit = self.names[..self.n_names]
                .iter()
                .copied()
                .find(|&off| self.name_at_eq(off as usize, suffix));
            if let Some(off) = hit {
                self.put_labels(&n[..i])?;
                return self.put(&(0xc000 | off).to_be_bytes());
            }
            i += n[i] as usize + 1;
        }
        self.put_labels(n)
    }

    fn put_labels(&mut self, labels: &[u8]) -> Result<(), Full> {
        let start = self.len;
        self.put(labels)?;
        let mut i = 0;
        while i < labels.len() && labels[i] != 0 {
            self.remember(start + i);
            i += labels[i] as usize + 1;
        }
        Ok(())
    }

    /// Writes one resource record, whole or not at all. Names inside
    /// RFC 1035 types are compressed.
    pub fn rr(
        &mut self,
        section: usize,
        owner: &[u8],
        t: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        self.rr_in_class(section, owner, t, 1, ttl, rdata)
    }

    /// As `rr`, in class `class` (CHAOS answers).
    pub fn rr_in_class(
        &mut self,
        section: usize,
        owner: &[u8],
        t: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        let m = self.mark();
        let r = self.rr_inner(section, owner, t, class, ttl, rdata);
        if r.is_err() {
            self.rollback(m);
        }
        r
    }

    fn rr_inner(
        &mut self,
        section: usize,
        owner: &[u8],
        t: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        let at = self.len;
        match self.last_owner {
            Some(off) if self.name_at_eq(off as usize, owner) => {
                self.put(&(0xc000 | off).to_be_bytes())?
            }
            _ => {
                self.name(owner)?;
                // Only a name that starts with a label may be pointed to.
                if self.buf[at] < 0xc0 && at < 0x3fff {
                    self.last_owner = Some(at as u16);
                }
            }
        }
        let mut fixed = [0u8; 10];
        fixed[0..2].copy_from_slice(&t.to_be_bytes());
        fixed[2..4].copy_from_slice(&class.to_be_bytes());
        fixed[4..8].copy_from_slice(&ttl.to_be_bytes());
        match rdata::info(t).filter(|i| i.compress) {
            None => {
                let rdlen = u16::try_from(rdata.len()).map_err(|_| Full)?;
                fixed[8..10].copy_from_slice(&rdlen.to_be_bytes());
                self.put(&fixed)?;
                self.put(rdata)?;
            }
            Some(info) => {
                self.put(&fixed)?;
                let rd_start = self.mark();
                for f in rdata::split(info, rdata) {
                    match f {
                        Ok((Field::Name(Compress::Yes), n)) => self.name(n)?,
                        Ok((_, bytes)) => self.put(bytes)?,
                        Err(_) => {
                            // Not what its type says (the store holds no such
                            // rdata): written as it is, uncompressed.
                            self.rollback(rd_start);
                            self.put(rdata)?;
                            break;
                        }
                    }
                }
                let rdlen = u16::try_from(self.len - rd_start.len).map_err(|_| Full)?;
                self.buf[rd_start.len - 2..rd_start.len].copy_from_slice(&rdlen.to_be_bytes());
            }
        }
        self.counts[section] += 1;
        Ok(())
    }

    /// Appends the OPT record (RFC 6891). Callers keep room for it.
    /// The OPT record carrying `options` (whole, encoded); with `pad_to` >
    /// 0, then a Padding option (RFC 7830, always last) that brings the
    /// message to a multiple of `pad_to` octets, as far as the limit allows.
    pub fn opt(
        &mut self,
        payload: u16,
        ext_rcode: u8,
        dnssec_ok: bool,
        options: &[u8],
        pad_to: usize,
    ) {
        let ttl: u32 = ((ext_rcode as u32) << 24) | if dnssec_ok { 0x8000 } else { 0 };
        let mut rr = [0u8; 11];
        rr[1..3].copy_from_slice(&rtype::OPT.to_be_bytes());
        rr[3..5].copy_from_slice(&payload.to_be_bytes());
        rr[5..9].copy_from_slice(&ttl.to_be_bytes());
        let end = self.len + 11 + options.len();
        if end > self.buf.len() {
            return;
        }
        let room = self.limit.min(self.buf.len());
        let pad = match pad_to {
            0 => None,
            _ if end + 4 > room => None,
            block => Some(((end + 4).next_multiple_of(block).min(room)) - end - 4),
        };
        let rdlen = options.len() + pad.map_or(0, |n| 4 + n);
        rr[9..11].copy_from_slice(&(rdlen as u16).to_be_bytes());
        self.buf[self.len..self.len + 11].copy_from_slice(&rr);
        self.buf[self.len + 11..end].copy_from_slice(options);
        self.len = end;
        self.counts[3] += 1;
        if let Some(n) = pad {
            let opt = &mut self.buf[end..end + 4 + n];
            opt[..2].copy_from_slice(&crate::query::request::EDNS_PADDING.to_be_bytes());
            opt[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            opt[4..].fill(0);
            self.len = end + 4 + n;
        }
    }

    /// Writes the section counts; returns the message length.
    pub fn finish(&mut self) -> usize {
        for (k, c) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * k..6 + 2 * k].copy_from_slice(&c.to_be_bytes());
        }
        self.len
    }
}

/// Does the (possibly compressed) name at offset `off` of message `msg`
/// equal `s`, octet for octet? Case counts: compressing `NS1.Example.`
/// against `ns1.example.` would hand the reader the other spelling (RFC 4343
/// asks servers to preserve case; a transfer then carries the zone exactly).
/// Shared by this writer and the transfer encoder (`xfr::encode`).
pub fn name_at_eq(msg: &[u8], mut off: usize, s: &[u8]) -> bool {
    let mut i = 0;
    for _ in 0..128 {
        let Some(&l) = msg.get(off) else {
            return false;
        };
        if l >= 0xc0 {
            let Some(&lo) = msg.get(off + 1) else {
                return false;
            };
            off = (((l & 0x3f) as usize) << 8) | lo as usize;
            continue;
        }
        let l = l as usize;
        if s.get(i) != Some(&(l as u8)) {
            return false;
        }
        if l == 0 {
            return true;
        }
        let (Some(a), Some(b)) = (msg.get(off + 1..off + 1 + l), s.get(i + 1..i + 1 + l)) else {
            return false;
        };
        if a != b {
            return false;
        }
        off += l + 1;
        i += l + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::rtype;

    #[test]
    fn compresses_names() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 512);
        w.question(b"\x03www\x07example\x00\x00\x01\x00\x01")
            .unwrap();
        w.rr(
            ANSWER,
            b"\x03www\x07example\x00",
            rtype::CNAME,
            60,
            b"\x01a\x07example\x00",
        )
        .unwrap();
        let n = w.finish();
        // owner → pointer to 12; rdata "a" + pointer to "example" at 16.
        assert_eq!(&buf[29..31], &[0xc0, 12]);
        assert_eq!(&buf[41..n], b"\x01a\xc0\x10");
        // Another spelling is not folded into the first one.
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 512);
        w.question(b"\x03www\x07example\x00\x00\x01\x00\x01")
            .unwrap();
        w.rr(
            ANSWER,
            b"\x03WWW\x07example\x00",
            rtype::A,
            60,
            &[1, 2, 3, 4],
        )
        .unwrap();
        let n = w.finish();
        assert_eq!(&buf[29..35], b"\x03WWW\xc0\x10");
        assert_eq!(n, 35 + 14);
    }
}
