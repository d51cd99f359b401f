//! Lays out one unit of a zone — some partitions and the shards their names
//! hash to — and frees the unit's logs: gathers each node's records in
//! reading order, makes named-checkzone's checks that concern one node,
//! drops duplicates, writes the shards. What the zone-wide checks need
//! (the SOAs, the apex's NS) is reported for the caller to decide.

use super::BuildError;
use super::index::Part;
use crate::zone::rdata::Soa;
use crate::zone::stage::{self, Origin, Run};
use crate::zone::{F_CNAME, F_DNAME, F_NS, NameHasher, Shard, name, rtype};
use hashbrown::HashTable;

/// Reading order of a record: its run, then its line. The first of several
/// failures in this order is the one reported, whatever the hash seeds.
pub type Key = u64;

fn key(run: usize, line: u32) -> Key {
    ((run as u64) << 32) | u64::from(line)
}

/// What one unit gives back.
#[derive(Default)]
pub struct Laid {
    /// (shard number, shard).
    pub shards: Vec<(usize, Shard)>,
    pub records: usize,
    pub has_cuts: bool,
    /// The apex SOA's TTL, serial and minimum, when the apex is here.
    pub soa: Option<(u32, u32, u32)>,
    /// Every SOA at the apex, in reading order.
    pub apex_soas: Vec<Origin>,
    pub apex_ns: bool,
    /// The first SOA read that is not at the apex.
    pub misplaced_soa: Option<(Key, BuildError)>,
    /// The failed check of the node read first.
    pub error: Option<(Key, BuildError)>,
    pub warnings: Vec<(Key, Origin, String)>,
}

/// Where a gathered record is: which of the unit's partitions, which log,
/// which offset, which run.
struct Loc {
    part: u32,
    log: u32,
    off: u32,
    run: u32,
}

/// The shape of the zone being laid out.
pub struct Plan<'a> {
    pub runs: &'a [Run],
    /// Number of shards (a power of two).
    pub shards: usize,
    /// Number of units (a power of two, at most `shards`).
    pub units: usize,
    /// (partition, node) of the apex.
    pub apex: (usize, u32),
    pub hasher: &'a NameHasher,
}

/// Lays out unit `u` from its partitions (`(partition number, partition)`).
pub fn lay_out(plan: &Plan, u: usize, mut parts: Vec<(usize, &mut Part)>) -> Laid {
    let laid = lay_out_parts(plan, u, &parts);
    for (_, part) in parts.iter_mut() {
        **part = Part::default();
    }
    laid
}

fn lay_out_parts(plan: &Plan, u: usize, parts: &[(usize, &mut Part)]) -> Laid {
    let mut out = Laid::default();
    // Unit-wide node numbers: each partition's, after the previous ones'.
    let mut base = Vec::with_capacity(parts.len());
    let mut nodes = 0u32;
    let mut apex = None;
    for (p, part) in parts {
        if *p == plan.apex.0 {
            apex = Some(nodes + plan.apex.1);
        }
        base.push(nodes);
        nodes += part.index.len() as u32;
    }

    // Every record, keyed (node, type, covered type, reading order): sorted,
    // records group by node and RRset and keep their order inside it.
    // RRSIGs are grouped by the type they cover: each group is its own
    // RRset with its own TTL (RFC 4035 §2.2 — an NSEC's RRSIG has the NSEC's TTL).
    let mut order: Vec<(u32, u16, u16, u32)> = Vec::new();
    let mut locs: Vec<Loc> = Vec::new();
    let mut first = vec![Key::MAX; nodes as usize];
    for (ri, run) in plan.runs.iter().enumerate() {
        for (k, (p, part)) in parts.iter().enumerate() {
            let range = run.range(*p);
            let log = &part.logs[run.stager];
            let mut pos = range.start;
            let mut node = 0;
            while pos < range.end {
                let at = stage::entry_at(log, pos);
                if let Some((k8, _)) = at.owner {
                    node = base[k] + stage::read_u64(log, k8) as u32;
                }
                let r = stage::record_at(log, at.rec);
                let covered = if r.rtype == rtype::RRSIG && r.rdata.len() >= 2 {
                    u16::from_be_bytes([r.rdata[0], r.rdata[1]])
                } else {
                    0
                };
                let f = &mut first[node as usize];
                *f = (*f).min(key(ri, r.line));
                order.push((node, r.rtype, covered, locs.len() as u32));
                locs.push(Loc {
                    part: k as u32,
                    log: run.stager as u32,
                    off: at.rec as u32,
                    run: ri as u32,
                });
                pos = at.next;
            }
        }
    }
    order.sort_unstable();
    let record = |i: u32| {
        let l = &locs[i as usize];
        let r = stage::record_at(
            &parts[l.part as usize].1.logs[l.log as usize],
            l.off as usize,
        );
        let at = plan.runs[l.run as usize].origin(r.line);
        (r, at, key(l.run as usize, r.line))
    };

    // Zone-wide checks, reported.
    for &(node, t, _, i) in &order {
        if t == rtype::SOA {
            let (_, at, k) = record(i);
            if Some(node) == apex {
                out.apex_soas.push(at);
            } else if out.misplaced_soa.as_ref().is_none_or(|(m, _)| k < *m) {
                let owner = node_name(parts, &base, node);
                out.misplaced_soa = Some((
                    k,
                    BuildError {
                        at: Some(at),
                        msg: format!("{}: SOA record not at top of zone", name::to_text(owner)),
                    },
                ));
            }
        }
        if t == rtype::NS && Some(node) == apex {
            out.apex_ns = true;
        }
    }

    let mut spans = vec![(0u32, 0u32); nodes as usize];
    let mut i = 0;
    while i < order.len() {
        let o = order[i].0;
        let s = i;
        while i < order.len() && order[i].0 == o {
            i += 1;
        }
        spans[o as usize] = (s as u32, i as u32);
    }

    // The unit's shards are those whose number is `u` modulo the units.
    let per_unit = plan.shards / plan.units;
    let mut per_shard: Vec<Vec<u32>> = vec![Vec::new(); per_unit];
    for (k, (_, part)) in parts.iter().enumerate() {
        for (id, n) in part.index.nodes.iter().enumerate() {
            let s = ((n.hash >> 32) as usize) & (plan.shards - 1);
            debug_assert_eq!(s & (plan.units - 1), u);
            per_shard[s / plan.units].push(base[k] + id as u32);
        }
    }

    // Inside a shard, nodes go in the order they were first read (so a
    // transfer of a small zone starts with the apex, as it was written).
    // A partition numbers its nodes in that order already; a shard made of
    // several partitions (a small zone) is put in that order here.
    if parts.len() > 1 {
        for ids in &mut per_shard {
            ids.sort_by_key(|&id| (first[id as usize], id));
        }
    }

    let mut rdset: Vec<&[u8]> = Vec::new();
    let fail = |out: &mut Laid, node: u32, e: BuildError| {
        let k = first[node as usize];
        if out.error.as_ref().is_none_or(|(m, _)| k < *m) {
            out.error = Some((k, e));
        }
    };
    for (j, ids) in per_shard.into_iter().enumerate() {
        let mut data = Vec::new();
        let mut table = HashTable::with_capacity(ids.len());
        'node: for id in ids {
            let (k, local) = locate(&base, id);
            let part = &parts[k].1;
            let hash = part.index.nodes[local as usize].hash;
            let children = part.index.nodes[local as usize].children;
            let owner = part.index.name(&part.logs, local);
            let off = data.len() as u32;
            data.push(owner.len() as u8);
            data.extend_from_slice(owner);
            let flags_at = data.len();
            data.push(0);
            data.extend_from_slice(&children.to_le_bytes());
            let count_at = data.len();
            data.extend_from_slice(&[0, 0]);
            let (s, e) = spans[id as usize];
            let keys = &order[s as usize..e as usize];
            let mut flags = 0u8;
            let mut nsets = 0u16;
            if keys.iter().any(|k| k.1 == rtype::CNAME) {
                if let Some(&(_, t, _, ri)) = keys
                    .iter()
                    .find(|k| !matches!(k.1, rtype::CNAME | rtype::RRSIG | rtype::NSEC))
                {
                    let (_, at, _) = record(ri);
                    let msg = format!(
                        "{}: CNAME and other data ({})",
                        name::to_text(owner),
                        rtype::to_text(t)
                    );
                    fail(&mut out, id, BuildError { at: Some(at), msg });
                    continue 'node;
                }
                flags |= F_CNAME;
            }
            let mut k = 0;
            while k < keys.len() {
                let (t, covered) = (keys[k].1, keys[k].2);
                let (first_rec, first_at, _) = record(keys[k].3);
                let ttl = first_rec.ttl;
                rdset.clear();
                // Duplicates: a scan for small RRsets, a hash set for
                // large ones (an RRset of 25,000 records took a minute
                // to load with the scan alone).
                let mut seen: Option<hashbrown::HashSet<&[u8], NameHasher>> = None;
                while k < keys.len() && keys[k].1 == t && keys[k].2 == covered {
                    let (r, at, rk) = record(keys[k].3);
                    let rd = r.rdata;
                    let dup = match seen.as_mut() {
                        Some(set) => !set.insert(rd),
                        None => {
                            let dup = rdset.contains(&rd);
                            if !dup && rdset.len() >= 16 {
                                let mut set = hashbrown::HashSet::with_hasher(plan.hasher.clone());
                                set.extend(rdset.iter().copied());
                                set.insert(rd);
                                seen = Some(set);
                            }
                            dup
                        }
                    };
                    if dup {
                        out.warnings.push((
                            rk,
                            at,
                            format!(
                                "{} {}: duplicate record ignored",
                                name::to_text(owner),
                                rtype::to_text(t)
                            ),
                        ));
                    } else {
                        if r.ttl != ttl {
                            out.warnings.push((
                                rk,
                                at,
                                format!(
                                    "{} {}: TTL {} differs from the RRset's {}; using {}",
                                    name::to_text(owner),
                                    rtype::to_text(t),
                                    r.ttl,
                                    ttl,
                                    ttl
                                ),
                            ));
                        }
                        rdset.push(rd);
                    }
                    k += 1;
                }
                if rdset.len() > u16::MAX as usize {
                    let msg = format!(
                        "{} {}: more than 65,535 records in one RRset",
                        name::to_text(owner),
                        rtype::to_text(t)
                    );
                    fail(
                        &mut out,
                        id,
                        BuildError {
                            at: Some(first_at),
                            msg,
                        },
                    );
                    continue 'node;
                }
                if t == rtype::CNAME && rdset.len() > 1 {
                    let msg = format!("{}: multiple CNAME records", name::to_text(owner));
                    fail(
                        &mut out,
                        id,
                        BuildError {
                            at: Some(first_at),
                            msg,
                        },
                    );
                    continue 'node;
                }
                if t == rtype::NS {
                    flags |= F_NS;
                    if Some(id) != apex {
                        out.has_cuts = true;
                    }
                }
                if t == rtype::DNAME {
                    flags |= F_DNAME;
                    out.has_cuts = true;
                }
                if t == rtype::SOA
                    && Some(id) == apex
                    && let Some(s) = Soa::parse(rdset[0])
                {
                    // Validated when staged: an SOA always parses.
                    out.soa = Some((ttl, s.serial, s.minimum));
                }
                data.extend_from_slice(&t.to_be_bytes());
                data.extend_from_slice(&ttl.to_be_bytes());
                data.extend_from_slice(&(rdset.len() as u16).to_be_bytes());
                let len_at = data.len();
                data.extend_from_slice(&[0; 4]);
                for &rd in &rdset {
                    data.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                    data.extend_from_slice(rd);
                }
                let len = (data.len() - len_at - 4) as u32;
                data[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
                out.records += rdset.len();
                let Some(n) = nsets.checked_add(1) else {
                    let msg = format!("{}: too many RRsets", name::to_text(owner));
                    fail(
                        &mut out,
                        id,
                        BuildError {
                            at: Some(first_at),
                            msg,
                        },
                    );
                    continue 'node;
                };
                nsets = n;
            }
            data[flags_at] = flags;
            data[count_at..count_at + 2].copy_from_slice(&nsets.to_le_bytes());
            table.insert_unique(hash, off, |_| unreachable_rehash());
        }
        out.shards.push((
            j * plan.units + u,
            Shard {
                table,
                data: data.into_boxed_slice(),
            },
        ));
    }
    out
}

/// (index in the unit's partitions, node number there) of a unit-wide node.
fn locate(base: &[u32], id: u32) -> (usize, u32) {
    let k = base.partition_point(|&b| b <= id) - 1;
    (k, id - base[k])
}

fn node_name<'a>(parts: &'a [(usize, &mut Part)], base: &[u32], id: u32) -> &'a [u8] {
    let (k, local) = locate(base, id);
    let part = &parts[k].1;
    part.index.name(&part.logs, local)
}

/// Tables are created with their final capacity, so inserting never rehashes.
fn unreachable_rehash() -> u64 {
    0
}
