//! The zone store: one immutable version of a zone.
//!
//! Names are nodes in hash shards keyed by the lower-cased wire name; empty
//! non-terminals are nodes too, so the closest encloser of any name is found
//! by stripping labels until a node exists. Each node is one run of bytes in
//! its shard's buffer holding the owner name and its RRsets in wire form, so
//! answers are copied out, not re-encoded. A later version shares every shard
//! it does not change (`Arc<Shard>`), which keeps an IXFR from copying the zone.

pub mod apply;
pub mod build;
pub mod denial;
pub mod diff;
pub mod file;
pub mod name;
pub mod ordered;
pub mod rdata;
pub mod records;
pub mod rtype;
pub mod serial;
pub mod stage;
pub mod workers;

use hashbrown::HashTable;
use std::sync::Arc;

pub use build::{BuildError, ZoneBuilder};
pub use file::load::{Loaded, ZoneError, load_zone_file, load_zone_str};

pub type NameHasher = hashbrown::DefaultHashBuilder;

/// Node flag: the node owns an NS RRset (a zone cut unless it is the apex).
pub const F_NS: u8 = 1;
/// Node flag: the node owns a CNAME.
pub const F_CNAME: u8 = 2;
/// Node flag: the node owns a DNAME (names below it are redirected).
pub const F_DNAME: u8 = 4;

#[derive(Default)]
pub struct Shard {
    table: HashTable<u32>,
    data: Box<[u8]>,
}

pub struct Zone {
    origin: Box<[u8]>,
    /// `origin` lower-cased: the apex's key (negative answers look it up).
    apex_key: Box<[u8]>,
    hasher: NameHasher,
    shards: Box<[Arc<Shard>]>,
    shard_mask: u64,
    /// A zone cut or a DNAME below the apex (or a DNAME at it): a name
    /// must be walked from the apex down, where the first of them wins.
    has_cuts: bool,
    soa_ttl: u32,
    serial: u32,
    minimum: u32,
    names: usize,
    records: usize,
    /// The apex has a DNSKEY: answers with DO carry RRSIGs and proofs.
    signed: bool,
    /// The NSEC/NSEC3 order of a signed zone (`denial.rs`).
    denial: Option<Arc<denial::Denial>>,
}

/// A borrowed node: the owner name and its RRsets.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    bytes: &'a [u8],
}

/// A borrowed RRset: type, TTL and its rdatas, each as `len(u16 BE) ‖ rdata`.
#[derive(Clone, Copy)]
pub struct RRset<'a> {
    pub rtype: u16,
    pub ttl: u32,
    pub count: u16,
    pub rdatas: &'a [u8],
}

impl<'a> RRset<'a> {
    /// Each rdata, without its length prefix.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut rest = self.rdatas;
        std::iter::from_fn(move || {
            if rest.len() < 2 {
                return None;
            }
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let (rd, tail) = rest[2..].split_at(len);
            rest = tail;
            Some(rd)
        })
    }
}

impl<'a> Node<'a> {
    fn name_len(&self) -> usize {
        self.bytes[0] as usize
    }

    /// The owner name as written in the zone (case preserved).
    pub fn name(&self) -> &'a [u8] {
        &self.bytes[1..1 + self.name_len()]
    }

    pub fn flags(&self) -> u8 {
        self.bytes[1 + self.name_len()]
    }

    /// Byte length of the whole node (to step to the next one in a shard).
    fn total_len(&self) -> usize {
        let mut it = self.rrsets_raw();
        while it.next().is_some() {}
        self.bytes.len() - it.rest.len()
    }

    /// How many names exist directly below this one (an empty node with no
    /// children is no node at all: it is removed).
    pub fn children(&self) -> u32 {
        let at = 2 + self.name_len();
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    fn rrsets_raw(&self) -> RRsetIter<'a> {
        let at = 6 + self.name_len();
        let n = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]);
        RRsetIter {
            rest: &self.bytes[at + 2..],
            left: n,
        }
    }

    pub fn rrsets(&self) -> impl Iterator<Item = RRset<'a>> + use<'a> {
        self.rrsets_raw()
    }

    pub fn is_empty(&self) -> bool {
        self.rrsets_raw().left == 0
    }

    pub fn get(&self, rtype: u16) -> Option<RRset<'a>> {
        self.rrsets_raw().find(|r| r.rtype == rtype)
    }

    /// The RRSIGs covering `covered` (stored as their own RRset per type).
    pub fn sigs(&self, covered: u16) -> Option<RRset<'a>> {
        self.rrsets_raw().find(|r| {
            r.rtype == rtype::RRSIG && r.rdatas.get(2..4) == Some(&covered.to_be_bytes()[..])
        })
    }
}

struct RRsetIter<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for RRsetIter<'a> {
    type Item = RRset<'a>;
    fn next(&mut self) -> Option<RRset<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let h = self.rest;
        let rtype = u16::from_be_bytes([h[0], h[1]]);
        let ttl = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
        let count = u16::from_be_bytes([h[6], h[7]]);
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let rdatas = &h[12..12 + len];
        self.rest = &h[12 + len..];
        Some(RRset {
            rtype,
            ttl,
            count,
            rdatas,
        })
    }
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "Zone({} serial {}, {} names)",
            name::to_text(&self.origin),
            self.serial,
            self.names
        )
    }
}

impl Zone {
    /// The apex name as written in the zone file.
    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// TTL of negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    pub fn negative_ttl(&self) -> u32 {
        self.soa_ttl.min(self.minimum)
    }

    pub fn has_cuts(&self) -> bool {
        self.has_cuts
    }

    /// Signed (the apex has a DNSKEY): only then do answers carry DNSSEC
    /// records, whatever the DO bit says, as NSD and Knot answer.
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    pub fn denial(&self) -> Option<&denial::Denial> {
        self.denial.as_deref()
    }

    /// The lower-cased apex name.
    pub fn apex_key(&self) -> &[u8] {
        &self.apex_key
    }

    pub fn name_count(&self) -> usize {
        self.names
    }

    pub fn record_count(&self) -> usize {
        self.records
    }

    pub fn hash(&self, lower_name: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(lower_name)
    }

    /// Looks up a lower-cased wire name.
    #[inline]
    pub fn find(&self, lower_name: &[u8]) -> Option<Node<'_>> {
        let hash = self.hash(lower_name);
        // hashbrown takes its bucket from the low bits and its tag from the top
        // seven: the shard comes from the bits in between.
        let shard = &self.shards[((hash >> 32) & self.shard_mask) as usize];
        let data = &shard.data[..];
        shard
            .table
            .find(hash, |&off| {
                let off = off as usize;
                let len = data[off] as usize;
                data[off + 1..off + 1 + len].eq_ignore_ascii_case(lower_name)
            })
            .map(|&off| Node {
                bytes: &data[off as usize..],
            })
    }

    pub fn apex(&self) -> Node<'_> {
        // The builder refuses a zone without an apex node.
        self.find(&self.apex_key).unwrap_or(Node {
            bytes: &[0, 0, 0, 0, 0, 0, 0, 0, 0],
        })
    }

    /// The apex SOA as a record (owner as written).
    pub fn soa_rr(&self) -> diff::Rr {
        let apex = self.apex();
        let (ttl, rdata) = apex
            .get(rtype::SOA)
            .and_then(|s| s.iter().next().map(|rd| (s.ttl, rd)))
            .unwrap_or((0, &[]));
        diff::Rr {
            owner: self.origin.clone(),
            rtype: rtype::SOA,
            ttl,
            rdata: rdata.into(),
        }
    }

    /// A copy of this version whose SOA carries `serial`. Only the apex's
    /// shard is copied; every other shard is shared.
    pub fn with_serial(&self, serial: u32) -> Zone {
        let lower = &self.apex_key;
        let hash = self.hash(lower);
        let idx = ((hash >> 32) & self.shard_mask) as usize;
        let shard = &self.shards[idx];
        let mut data = shard.data.to_vec();
        let found = self.find(lower).and_then(|node| {
            let node_at = node.bytes.as_ptr() as usize - shard.data.as_ptr() as usize;
            let mut it = node.rrsets_raw();
            loop {
                let before = node.bytes.len() - it.rest.len();
                let set = it.next()?;
                if set.rtype == rtype::SOA {
                    // rrset header (12) + rdata length (2), then MNAME, RNAME, serial.
                    let rd_at = node_at + before + 14;
                    let rd = set.iter().next()?;
                    return Some(rd_at + rdata::Soa::parse(rd)?.serial_offset());
                }
            }
        });
        if let Some(at) = found {
            data[at..at + 4].copy_from_slice(&serial.to_be_bytes());
        }
        let mut shards = self.shards.to_vec();
        shards[idx] = Arc::new(Shard {
            table: shard.table.clone(),
            data: data.into_boxed_slice(),
        });
        Zone {
            origin: self.origin.clone(),
            apex_key: self.apex_key.clone(),
            hasher: self.hasher.clone(),
            shards: shards.into_boxed_slice(),
            shard_mask: self.shard_mask,
            has_cuts: self.has_cuts,
            soa_ttl: self.soa_ttl,
            serial,
            minimum: self.minimum,
            names: self.names,
            records: self.records,
            signed: self.signed,
            denial: self.denial.clone(),
        }
    }

    /// Every record, in storage order (for transfers).
    pub fn records(&self) -> Records<'_> {
        Records {
            shards: self.shards.iter(),
            rest: &[],
            owner: &[],
            sets_left: 0,
            rtype: 0,
            ttl: 0,
            rdatas: &[],
        }
    }

    /// Every node, in no particular order (for transfers and checks).
    pub fn nodes(&self) -> impl Iterator<Item = Node<'_>> {
        self.node_groups().flatten()
    }

    /// Every node, in groups (one per shard) that can be walked in parallel.
    pub fn node_groups(
        &self,
    ) -> impl ExactSizeIterator<Item = impl Iterator<Item = Node<'_>> + Send> + Send {
        self.shards.iter().map(|s| {
            let mut rest = &s.data[..];
            std::iter::from_fn(move || {
                if rest.is_empty() {
                    return None;
                }
                let node = Node { bytes: rest };
                rest = &rest[node.total_len()..];
                Some(node)
            })
        })
    }
}

/// One record as stored: the owner as written, type, TTL and rdata.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub owner: &'a [u8],
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: &'a [u8],
}

/// Every record of a zone in storage order (node by node, the records of
/// one RRset together), read straight from the shards' buffers: a transfer
/// of millions of records spent more time in nested iterator adapters
/// (nodes, then RRsets, then rdatas, each node's length found by a walk of
/// its own) than in encoding them.
pub struct Records<'a> {
    shards: std::slice::Iter<'a, Arc<Shard>>,
    /// The current shard from the next RRset (or node) on.
    rest: &'a [u8],
    owner: &'a [u8],
    /// RRsets of the current node not yet begun.
    sets_left: u16,
    rtype: u16,
    ttl: u32,
    /// Rdatas of the current RRset not yet given, each `len(u16 BE) ‖ rdata`.
    rdatas: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        loop {
            if let [hi, lo, tail @ ..] = self.rdatas {
                let (rdata, after) = tail.split_at(u16::from_be_bytes([*hi, *lo]) as usize);
                self.rdatas = after;
                return Some(Record {
                    owner: self.owner,
                    rtype: self.rtype,
                    ttl: self.ttl,
                    rdata,
                });
            }
            if self.sets_left > 0 {
                // As `RRsetIter`: type, TTL, count, then the rdatas' length.
                let h = self.rest;
                self.sets_left -= 1;
                self.rtype = u16::from_be_bytes([h[0], h[1]]);
                self.ttl = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
                let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
                self.rdatas = &h[12..12 + len];
                self.rest = &h[12 + len..];
                continue;
            }
            if let [name_len, ..] = self.rest {
                // As `Node`: name, flags, children, then the RRset count.
                let n = *name_len as usize;
                let node = self.rest;
                self.owner = &node[1..1 + n];
                self.sets_left = u16::from_le_bytes([node[6 + n], node[7 + n]]);
                self.rest = &node[8 + n..];
                continue;
            }
            self.rest = &self.shards.next()?.data[..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_finds() {
        let text = "$ORIGIN example.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n NS ns\nns A 192.0.2.1\nWww.A.b A 192.0.2.2\n";
        let z = load_zone_str(text, "t.zone", b"\x07example\x00").unwrap();
        assert_eq!(z.serial(), 1);
        assert_eq!(z.record_count(), 4);
        // apex, ns, www.a.b, and the empty non-terminals a.b and b.
        assert_eq!(z.name_count(), 5);
        let n = z.find(b"\x03www\x01a\x01b\x07example\x00").unwrap();
        assert_eq!(n.name(), b"\x03Www\x01A\x01b\x07example\x00");
        assert_eq!(
            n.get(rtype::A).unwrap().iter().next().unwrap(),
            [192, 0, 2, 2]
        );
        assert!(z.find(b"\x01b\x07example\x00").unwrap().is_empty());
        assert!(z.find(b"\x01c\x07example\x00").is_none());
        assert_eq!(z.nodes().count(), 5);
        // Nodes as first read: a transfer starts with the apex.
        assert_eq!(z.nodes().next().unwrap().name(), b"\x07example\x00");
        // The same records, node by node, as the nodes hold them.
        let by_nodes: Vec<(Vec<u8>, u16, u32, Vec<u8>)> = z
            .nodes()
            .flat_map(|n| {
                n.rrsets().flat_map(move |s| {
                    s.iter()
                        .map(move |rd| (n.name().to_vec(), s.rtype, s.ttl, rd.to_vec()))
                })
            })
            .collect();
        let flat: Vec<(Vec<u8>, u16, u32, Vec<u8>)> = z
            .records()
            .map(|r| (r.owner.to_vec(), r.rtype, r.ttl, r.rdata.to_vec()))
            .collect();
        assert_eq!(flat, by_nodes);
        assert_eq!(flat.len(), 4);
        assert_eq!(z.negative_ttl(), 5);
        let z2 = z.with_serial(99);
        assert_eq!(z2.serial(), 99);
        assert_eq!(z2.soa_rr().soa_serial(), Some(99));
        assert_eq!(z.soa_rr().soa_serial(), Some(1));
        assert!(z2.find(b"\x02ns\x07example\x00").is_some());
    }
}
