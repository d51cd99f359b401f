//! Collects records (from a file or, later, a transfer), checks them as
//! named-checkzone does, and lays them out as an immutable `Zone`.

use super::rdata::{self, Soa};
use super::{F_CNAME, F_NS, NameHasher, Shard, Zone, name, rtype};
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::Arc;

/// Where a record came from, for FILE:LINE errors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin {
    pub file: u16,
    pub line: u32,
}

struct Owner {
    off: u32,
    len: u8,
    hash: u64,
}

/// A record read but not yet stored: the builder sorts these, then lays
/// the store out from them.
struct Staged {
    owner: u32,
    rtype: u16,
    rdlen: u16,
    ttl: u32,
    rdata: usize,
    at: Origin,
}

/// A check failure: the message and, when a record caused it, where it was.
#[derive(Debug)]
pub struct BuildError {
    pub at: Option<Origin>,
    pub msg: String,
}

pub struct ZoneBuilder {
    origin: Vec<u8>,
    hasher: NameHasher,
    names: Vec<u8>,
    owners: Vec<Owner>,
    index: HashTable<u32>,
    recs: Vec<Staged>,
    rdata: Vec<u8>,
    lower: Vec<u8>,
    last_owner: Option<u32>,
    /// Non-fatal findings (TTL mismatches inside an RRset, duplicates).
    pub warnings: Vec<(Origin, String)>,
}

/// Nodes per shard a new version aims for: small enough that an IXFR touching
/// a few names copies little, large enough that a big zone has few shards.
const NODES_PER_SHARD: usize = 2048;

impl ZoneBuilder {
    pub fn new(origin: &[u8]) -> Self {
        ZoneBuilder {
            origin: origin.to_vec(),
            hasher: NameHasher::default(),
            names: Vec::new(),
            owners: Vec::new(),
            index: HashTable::new(),
            recs: Vec::new(),
            rdata: Vec::new(),
            lower: Vec::with_capacity(256),
            last_owner: None,
            warnings: Vec::new(),
        }
    }

    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    fn intern(&mut self, owner: &[u8]) -> u32 {
        if let Some(id) = self.last_owner {
            let o = &self.owners[id as usize];
            let stored = &self.names[o.off as usize..o.off as usize + o.len as usize];
            if stored.eq_ignore_ascii_case(owner) {
                return id;
            }
        }
        self.lower.clear();
        self.lower.extend_from_slice(owner);
        name::lowercase(&mut self.lower);
        let hash = self.hasher.hash_one(&self.lower[..]);
        let names = &self.names;
        let owners = &self.owners;
        let lower = &self.lower;
        let found = self.index.find(hash, |&id| {
            let o = &owners[id as usize];
            names[o.off as usize..o.off as usize + o.len as usize].eq_ignore_ascii_case(lower)
        });
        let id = match found {
            Some(&id) => id,
            None => {
                let id = self.owners.len() as u32;
                self.owners.push(Owner {
                    off: self.names.len() as u32,
                    len: owner.len() as u8,
                    hash,
                });
                self.names.extend_from_slice(owner);
                let owners = &self.owners;
                self.index
                    .insert_unique(hash, id, |&i| owners[i as usize].hash);
                id
            }
        };
        self.last_owner = Some(id);
        id
    }

    /// Adds one record. `owner` is an absolute wire name, `rdata` wire rdata.
    pub fn add(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        at: Origin,
    ) -> Result<(), String> {
        if !name::is_subdomain(owner, &self.origin) {
            return Err(format!(
                "{} {}: out of zone data (not below {})",
                name::to_text(owner),
                rtype::to_text(rtype),
                name::to_text(&self.origin)
            ));
        }
        if rtype::is_meta(rtype) {
            return Err(format!(
                "type {} cannot be zone data",
                rtype::to_text(rtype)
            ));
        }
        // The door: nothing enters the store that is not what its type says.
        rdata::validate(rtype, rdata)
            .map_err(|e| format!("{} {}: {e}", name::to_text(owner), rtype::to_text(rtype)))?;
        let rdlen =
            u16::try_from(rdata.len()).map_err(|_| "rdata longer than 65535 octets".to_string())?;
        let owner = self.intern(owner);
        self.recs.push(Staged {
            owner,
            rtype,
            rdlen,
            ttl,
            rdata: self.rdata.len(),
            at,
        });
        self.rdata.extend_from_slice(rdata);
        Ok(())
    }

    pub fn record_count(&self) -> usize {
        self.recs.len()
    }

    fn owner_name(&self, id: u32) -> &[u8] {
        let o = &self.owners[id as usize];
        &self.names[o.off as usize..o.off as usize + o.len as usize]
    }

    fn err(&self, at: Option<Origin>, msg: String) -> BuildError {
        BuildError { at, msg }
    }

    /// Checks the zone and lays it out. Consumes the builder.
    pub fn build(self) -> Result<Zone, BuildError> {
        self.build_with_warnings().map(|(z, _)| z)
    }

    /// As `build`, also returning the non-fatal findings.
    pub fn build_with_warnings(mut self) -> Result<(Zone, Vec<(Origin, String)>), BuildError> {
        let mut origin_lower = self.origin.clone();
        name::lowercase(&mut origin_lower);
        // Every ancestor of an owner up to the apex becomes a node (empty
        // non-terminals), so closest-encloser search only needs exact lookups.
        let apex = self.intern(&origin_lower.clone());
        let n_real = self.owners.len();
        for id in 0..n_real as u32 {
            let mut cur = self.owner_name(id).to_vec();
            while let Some(p) = name::parent(&cur) {
                if p.len() < self.origin.len() {
                    break;
                }
                let p = p.to_vec();
                let before = self.owners.len();
                self.intern(&p);
                if self.owners.len() == before {
                    break;
                }
                cur = p;
            }
        }

        // Each node counts the names directly below it, so that a later
        // version can drop a node that became empty and has no children.
        let mut children = vec![0u32; self.owners.len()];
        for id in 0..self.owners.len() as u32 {
            if id == apex {
                continue;
            }
            let Some(parent) = name::parent(self.owner_name(id)).map(<[u8]>::to_vec) else {
                continue;
            };
            let pid = self.intern(&parent);
            if let Some(c) = children.get_mut(pid as usize) {
                *c += 1;
            }
        }

        // Group by owner then type, keeping file order inside an RRset.
        // RRSIGs are grouped by the type they cover: each group is its own
        // RRset with its own TTL (RFC 4035 §2.2 — an NSEC's RRSIG has the NSEC's TTL).
        let mut order: Vec<(u32, u16, u16, u32)> = self
            .recs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let covered = if r.rtype == rtype::RRSIG && r.rdlen >= 2 {
                    u16::from_be_bytes([self.rdata[r.rdata], self.rdata[r.rdata + 1]])
                } else {
                    0
                };
                (r.owner, r.rtype, covered, i as u32)
            })
            .collect();
        order.sort_unstable();

        // Checks named-checkzone makes.
        let soas: Vec<&(u32, u16, u16, u32)> = order.iter().filter(|k| k.1 == rtype::SOA).collect();
        for k in &soas {
            if k.0 != apex {
                let r = &self.recs[k.3 as usize];
                return Err(self.err(
                    Some(r.at),
                    format!(
                        "{}: SOA record not at top of zone",
                        name::to_text(self.owner_name(k.0))
                    ),
                ));
            }
        }
        match soas.len() {
            0 => {
                return Err(self.err(
                    None,
                    format!("{}: has no SOA record", name::to_text(&self.origin)),
                ));
            }
            1 => {}
            _ => {
                let r = &self.recs[soas[1].3 as usize];
                return Err(self.err(Some(r.at), "multiple SOA records at the zone apex".into()));
            }
        }
        if !order.iter().any(|k| k.0 == apex && k.1 == rtype::NS) {
            return Err(self.err(
                None,
                format!(
                    "{}: has no NS records at the zone apex",
                    name::to_text(&self.origin)
                ),
            ));
        }

        // Per-owner spans in `order`.
        let mut spans = vec![(0u32, 0u32); self.owners.len()];
        let mut i = 0;
        while i < order.len() {
            let o = order[i].0;
            let s = i;
            while i < order.len() && order[i].0 == o {
                i += 1;
            }
            spans[o as usize] = (s as u32, i as u32);
        }

        let n = self.owners.len();
        let shard_count = (n / NODES_PER_SHARD)
            .max(1)
            .next_power_of_two()
            .min(1 << 12);
        let mask = shard_count as u64 - 1;
        let mut per_shard: Vec<Vec<u32>> = vec![Vec::new(); shard_count];
        for (id, o) in self.owners.iter().enumerate() {
            per_shard[((o.hash >> 32) & mask) as usize].push(id as u32);
        }

        let mut has_cuts = false;
        let mut records = 0usize;
        let mut soa = (0u32, 0u32, 0u32);
        let mut shards = Vec::with_capacity(shard_count);
        let mut rdset: Vec<(usize, u16)> = Vec::new();
        for ids in per_shard {
            let mut data = Vec::new();
            let mut table = HashTable::with_capacity(ids.len());
            for id in ids {
                let off = data.len() as u32;
                let owner = self.owner_name(id).to_vec();
                data.push(owner.len() as u8);
                data.extend_from_slice(&owner);
                let flags_at = data.len();
                data.push(0);
                data.extend_from_slice(&children[id as usize].to_le_bytes());
                let count_at = data.len();
                data.extend_from_slice(&[0, 0]);
                let (s, e) = spans[id as usize];
                let keys = &order[s as usize..e as usize];
                let mut flags = 0u8;
                let mut nsets = 0u16;
                let mut k = 0;
                let types: Vec<u16> = keys.iter().map(|k| k.1).collect();
                if types.contains(&rtype::CNAME) {
                    if let Some(&(_, t, _, ri)) = keys
                        .iter()
                        .find(|k| !matches!(k.1, rtype::CNAME | rtype::RRSIG | rtype::NSEC))
                    {
                        let r = &self.recs[ri as usize];
                        return Err(self.err(
                            Some(r.at),
                            format!(
                                "{}: CNAME and other data ({})",
                                name::to_text(&owner),
                                rtype::to_text(t)
                            ),
                        ));
                    }
                    flags |= F_CNAME;
                }
                while k < keys.len() {
                    let (t, covered) = (keys[k].1, keys[k].2);
                    let first = &self.recs[keys[k].3 as usize];
                    let ttl = first.ttl;
                    rdset.clear();
                    // Duplicates: a scan for small RRsets, a hash set for
                    // large ones (an RRset of 25,000 records took a minute
                    // to load with the scan alone).
                    let mut seen: Option<hashbrown::HashSet<&[u8], NameHasher>> = None;
                    while k < keys.len() && keys[k].1 == t && keys[k].2 == covered {
                        let r = &self.recs[keys[k].3 as usize];
                        let rd = &self.rdata[r.rdata..r.rdata + r.rdlen as usize];
                        let dup = match seen.as_mut() {
                            Some(set) => !set.insert(rd),
                            None => {
                                let dup = rdset
                                    .iter()
                                    .any(|&(o, l)| &self.rdata[o..o + l as usize] == rd);
                                if !dup && rdset.len() >= 16 {
                                    let mut set =
                                        hashbrown::HashSet::with_hasher(NameHasher::default());
                                    set.extend(
                                        rdset.iter().map(|&(o, l)| &self.rdata[o..o + l as usize]),
                                    );
                                    set.insert(rd);
                                    seen = Some(set);
                                }
                                dup
                            }
                        };
                        if dup {
                            self.warnings.push((
                                r.at,
                                format!(
                                    "{} {}: duplicate record ignored",
                                    name::to_text(&owner),
                                    rtype::to_text(t)
                                ),
                            ));
                        } else {
                            if r.ttl != ttl {
                                self.warnings.push((
                                    r.at,
                                    format!(
                                        "{} {}: TTL {} differs from the RRset's {}; using {}",
                                        name::to_text(&owner),
                                        rtype::to_text(t),
                                        r.ttl,
                                        ttl,
                                        ttl
                                    ),
                                ));
                            }
                            rdset.push((r.rdata, r.rdlen));
                        }
                        k += 1;
                    }
                    if rdset.len() > u16::MAX as usize {
                        return Err(self.err(
                            Some(first.at),
                            format!(
                                "{} {}: more than 65,535 records in one RRset",
                                name::to_text(&owner),
                                rtype::to_text(t)
                            ),
                        ));
                    }
                    if t == rtype::CNAME && rdset.len() > 1 {
                        return Err(self.err(
                            Some(first.at),
                            format!("{}: multiple CNAME records", name::to_text(&owner)),
                        ));
                    }
                    if t == rtype::NS {
                        flags |= F_NS;
                        if id != apex {
                            has_cuts = true;
                        }
                    }
                    if t == rtype::SOA {
                        let rd = &self.rdata[rdset[0].0..rdset[0].0 + rdset[0].1 as usize];
                        // Validated when added: an SOA always parses.
                        if let Some(s) = Soa::parse(rd) {
                            soa = (ttl, s.serial, s.minimum);
                        }
                    }
                    data.extend_from_slice(&t.to_be_bytes());
                    data.extend_from_slice(&ttl.to_be_bytes());
                    data.extend_from_slice(&(rdset.len() as u16).to_be_bytes());
                    let len_at = data.len();
                    data.extend_from_slice(&[0; 4]);
                    for &(o, l) in &rdset {
                        data.extend_from_slice(&l.to_be_bytes());
                        data.extend_from_slice(&self.rdata[o..o + l as usize]);
                    }
                    let len = (data.len() - len_at - 4) as u32;
                    data[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
                    records += rdset.len();
                    nsets = nsets.checked_add(1).ok_or_else(|| {
                        self.err(
                            Some(first.at),
                            format!("{}: too many RRsets", name::to_text(&owner)),
                        )
                    })?;
                }
                data[flags_at] = flags;
                data[count_at..count_at + 2].copy_from_slice(&nsets.to_le_bytes());
                let hash = self.owners[id as usize].hash;
                table.insert_unique(hash, off, |_| unreachable_rehash());
            }
            shards.push(Arc::new(Shard {
                table,
                data: data.into_boxed_slice(),
            }));
        }
        let origin = self.owner_name(apex).to_vec().into_boxed_slice();
        let apex_key = origin_lower.into_boxed_slice();
        Ok((
            Zone {
                origin,
                apex_key,
                hasher: self.hasher,
                shards: shards.into_boxed_slice(),
                shard_mask: mask,
                has_cuts,
                soa_ttl: soa.0,
                serial: soa.1,
                minimum: soa.2,
                names: n,
                records,
            },
            self.warnings,
        ))
    }
}

/// Tables are created with their final capacity, so inserting never rehashes.
fn unreachable_rehash() -> u64 {
    0
}
