//! The difference between two versions of a zone, as IXFR carries it
//! (RFC 1995): the records deleted and added between two SOAs.

use super::rdata::Soa;
use super::{Node, Zone, name, rtype, workers};

/// One resource record, owner in wire form as written in the zone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rr {
    pub owner: Box<[u8]>,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Box<[u8]>,
}

impl Rr {
    /// Appends `owner ‖ type ‖ ttl ‖ rdlen ‖ rdata` (the journal's format).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.owner.len() as u8);
        out.extend_from_slice(&self.owner);
        out.extend_from_slice(&self.rtype.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        out.extend_from_slice(&(self.rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.rdata);
    }

    pub fn decode(b: &[u8], pos: &mut usize) -> Option<Rr> {
        let nlen = *b.get(*pos)? as usize;
        let owner = b.get(*pos + 1..*pos + 1 + nlen)?;
        if name::wire_len(owner) != Some(nlen) {
            return None;
        }
        let mut p = *pos + 1 + nlen;
        let fixed = b.get(p..p + 8)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let ttl = u32::from_be_bytes([fixed[2], fixed[3], fixed[4], fixed[5]]);
        let rdlen = u16::from_be_bytes([fixed[6], fixed[7]]) as usize;
        p += 8;
        let rdata = b.get(p..p + rdlen)?;
        *pos = p + rdlen;
        Some(Rr {
            owner: owner.into(),
            rtype,
            ttl,
            rdata: rdata.into(),
        })
    }

    /// The serial of an SOA record's rdata.
    pub fn soa_serial(&self) -> Option<u32> {
        soa_serial(&self.rdata)
    }
}

/// The serial field of SOA rdata.
pub fn soa_serial(rd: &[u8]) -> Option<u32> {
    Soa::parse(rd).map(|s| s.serial)
}

/// Changes from the version with SOA `from` to the version with SOA `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    pub from: Rr,
    pub to: Rr,
    pub deleted: Vec<Rr>,
    pub added: Vec<Rr>,
}

impl Diff {
    pub fn from_serial(&self) -> u32 {
        self.from.soa_serial().unwrap_or(0)
    }

    pub fn to_serial(&self) -> u32 {
        self.to.soa_serial().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.deleted.is_empty() && self.added.is_empty()
    }

    pub fn record_count(&self) -> usize {
        self.deleted.len() + self.added.len() + 2
    }
}

fn lower(n: &[u8]) -> Vec<u8> {
    let mut v = n.to_vec();
    name::lowercase(&mut v);
    v
}

fn has(node: Option<Node>, t: u16, ttl: u32, rd: &[u8]) -> bool {
    node.is_some_and(|n| {
        n.rrsets()
            .any(|s| s.rtype == t && s.ttl == ttl && s.iter().any(|r| r == rd))
    })
}

/// Records of `a` that are not in `b` (the apex SOA aside).
fn missing_from(a: &Zone, b: &Zone, out: &mut Vec<Rr>) {
    let apex = lower(a.origin());
    let mut buf = [0u8; name::MAX_NAME];
    for node in a.nodes() {
        let Some(key) = buf.get_mut(..node.name().len()) else {
            continue;
        };
        key.copy_from_slice(node.name());
        name::lowercase(key);
        let key = &*key;
        let other = b.find(key);
        for set in node.rrsets() {
            if set.rtype == rtype::SOA && *key == apex[..] {
                continue;
            }
            for rd in set.iter() {
                if !has(other, set.rtype, set.ttl, rd) {
                    out.push(Rr {
                        owner: node.name().into(),
                        rtype: set.rtype,
                        ttl: set.ttl,
                        rdata: rd.into(),
                    });
                }
            }
        }
    }
}

/// The difference `old` → `new`. A TTL change is a deletion and an addition.
pub fn diff(old: &Zone, new: &Zone) -> Diff {
    let mut deleted = Vec::new();
    let mut added = Vec::new();
    // The two halves on two cores: a reload's diff is on the path from a
    // save to the new version being served.
    std::thread::scope(|s| {
        s.spawn(|| missing_from(old, new, &mut deleted));
        missing_from(new, old, &mut added);
    });
    Diff {
        from: old.soa_rr(),
        to: new.soa_rr(),
        deleted,
        added,
    }
}

/// A hash of a zone's content, SOA serial excluded and record order
/// ignored, stable across processes: tells whether a file changed while
/// the server was down.
pub fn content_hash(z: &Zone) -> u64 {
    let apex = lower(z.origin());
    // A sum, so shards can be hashed apart, on every core.
    workers::map(z.node_groups(), workers::threads(), |nodes| {
        let mut total: u64 = 0;
        let mut owner = Vec::with_capacity(name::MAX_NAME);
        for node in nodes {
            owner.clear();
            owner.extend_from_slice(node.name());
            name::lowercase(&mut owner);
            let at_apex = owner == apex;
            // FNV runs left to right: the owner's part is the same for
            // every record of the node.
            let h_owner = fnv(0xcbf2_9ce4_8422_2325, &owner);
            for set in node.rrsets() {
                let mut h_set = fnv(h_owner, &set.rtype.to_be_bytes());
                h_set = fnv(h_set, &set.ttl.to_be_bytes());
                for rd in set.iter() {
                    let h = if set.rtype == rtype::SOA && at_apex {
                        // Everything but the serial.
                        let at = Soa::parse(rd).map_or(0, |s| s.serial_offset());
                        fnv(fnv(h_set, &rd[..at]), rd.get(at + 4..).unwrap_or(&[]))
                    } else {
                        fnv(h_set, rd)
                    };
                    total = total.wrapping_add(mix(h));
                }
            }
        }
        total
    })
    .into_iter()
    .fold(0, u64::wrapping_add)
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser, so that summing hashes does not cancel structure.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::load_zone_str;

    const O: &[u8] = b"\x01t\x00";

    fn z(serial: u32, body: &str) -> Zone {
        load_zone_str(
            &format!("$TTL 60\n@ SOA ns h {serial} 1 1 1 1\n NS ns\nns A 192.0.2.1\n{body}"),
            "t",
            O,
        )
        .unwrap()
    }

    #[test]
    fn finds_deletions_additions_and_ttl_changes() {
        let a = z(1, "x A 192.0.2.1\ny A 192.0.2.2\nk TXT \"same\"\n");
        let b = z(
            2,
            "x A 192.0.2.9\ny 30 A 192.0.2.2\nk TXT \"same\"\nnew.deep AAAA ::1\n",
        );
        let d = diff(&a, &b);
        assert_eq!((d.from_serial(), d.to_serial()), (1, 2));
        assert_eq!(d.deleted.len(), 2, "{:?}", d.deleted);
        assert_eq!(d.added.len(), 3, "{:?}", d.added);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn content_hash_ignores_serial_and_order() {
        let a = z(1, "x A 192.0.2.1\ny A 192.0.2.2\n");
        let b = z(7, "y A 192.0.2.2\nx A 192.0.2.1\n");
        let c = z(1, "x A 192.0.2.1\ny A 192.0.2.3\n");
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
    }

    /// The hash is persisted: it must not change with how it is computed.
    #[test]
    fn content_hash_is_the_persisted_one() {
        fn reference(z: &Zone) -> u64 {
            let apex = lower(z.origin());
            let mut total: u64 = 0;
            for node in z.nodes() {
                let owner = lower(node.name());
                for set in node.rrsets() {
                    for rd in set.iter() {
                        let mut h = fnv(0xcbf2_9ce4_8422_2325, &owner);
                        h = fnv(h, &set.rtype.to_be_bytes());
                        h = fnv(h, &set.ttl.to_be_bytes());
                        if set.rtype == rtype::SOA && owner == apex {
                            let at = Soa::parse(rd).map_or(0, |s| s.serial_offset());
                            h = fnv(h, &rd[..at]);
                            h = fnv(h, rd.get(at + 4..).unwrap_or(&[]));
                        } else {
                            h = fnv(h, rd);
                        }
                        total = total.wrapping_add(mix(h));
                    }
                }
            }
            total
        }
        let mut text = String::new();
        for i in 0..5000 {
            text += &format!("H{i} A 192.0.2.{}\n TXT \"t{i}\"\n", i % 250);
        }
        let a = z(3, &text);
        assert!(a.node_groups().len() > 1);
        assert_eq!(content_hash(&a), reference(&a));
        assert_eq!(content_hash(&a), 6_738_862_265_115_459_852);
    }

    #[test]
    fn rr_round_trips() {
        let r = Rr {
            owner: (*b"\x01a\x00").into(),
            rtype: 1,
            ttl: 5,
            rdata: (*b"\x01\x02\x03\x04").into(),
        };
        let mut v = Vec::new();
        r.encode(&mut v);
        let mut p = 0;
        assert_eq!(Rr::decode(&v, &mut p), Some(r));
        assert_eq!(p, v.len());
        assert_eq!(Rr::decode(&v[..5], &mut 0), None);
    }
}
