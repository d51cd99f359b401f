//! A new version from an incremental change (IXFR), without copying the
//! zone: only the shards holding touched names are rebuilt; every other
//! shard is shared with the old version.

use super::diff::Rr;
use super::rdata::{self, Soa};
use super::{F_CNAME, F_DNAME, F_NS, Node, Shard, Zone, name, rtype};
use hashbrown::HashTable;
use indexmap::IndexSet;
use std::collections::HashMap;
use std::sync::Arc;

/// One RRset being edited: type, the type an RRSIG set covers, TTL, rdatas
/// (a set keeping their order: adding or deleting one is O(1), however
/// large the RRset).
#[derive(Clone)]
struct EditSet {
    rtype: u16,
    covered: u16,
    ttl: u32,
    rdatas: IndexSet<Box<[u8]>>,
}

/// A node being edited.
#[derive(Clone)]
struct Edit {
    name: Vec<u8>,
    children: i64,
    sets: Vec<EditSet>,
    removed: bool,
}

fn covered(t: u16, rd: &[u8]) -> u16 {
    if t == rtype::RRSIG && rd.len() >= 2 {
        u16::from_be_bytes([rd[0], rd[1]])
    } else {
        0
    }
}

fn decode(node: Node) -> Edit {
    let sets = node
        .rrsets()
        .map(|s| EditSet {
            rtype: s.rtype,
            covered: s.iter().next().map(|rd| covered(s.rtype, rd)).unwrap_or(0),
            ttl: s.ttl,
            rdatas: s.iter().map(Box::from).collect(),
        })
        .collect();
    Edit {
        name: node.name().to_vec(),
        children: node.children() as i64,
        sets,
        removed: false,
    }
}

fn lower(n: &[u8]) -> Vec<u8> {
    let mut v = n.to_vec();
    name::lowercase(&mut v);
    v
}

/// Appends a node in the shard layout (see `Node`).
fn encode(e: &Edit, out: &mut Vec<u8>) {
    out.push(e.name.len() as u8);
    out.extend_from_slice(&e.name);
    let mut flags = 0;
    let sets: Vec<&EditSet> = e.sets.iter().filter(|s| !s.rdatas.is_empty()).collect();
    for s in &sets {
        match s.rtype {
            rtype::NS => flags |= F_NS,
            rtype::CNAME => flags |= F_CNAME,
            rtype::DNAME => flags |= F_DNAME,
            _ => {}
        }
    }
    out.push(flags);
    out.extend_from_slice(&(e.children.max(0) as u32).to_le_bytes());
    out.extend_from_slice(&(sets.len() as u16).to_le_bytes());
    for s in sets {
        out.extend_from_slice(&s.rtype.to_be_bytes());
        out.extend_from_slice(&s.ttl.to_be_bytes());
        out.extend_from_slice(&(s.rdatas.len() as u16).to_be_bytes());
        let len: usize = s.rdatas.iter().map(|r| r.len() + 2).sum();
        out.extend_from_slice(&(len as u32).to_le_bytes());
        for r in &s.rdatas {
            out.extend_from_slice(&(r.len() as u16).to_be_bytes());
            out.extend_from_slice(r);
        }
    }
}

struct Editor<'z> {
    zone: &'z Zone,
    apex: Vec<u8>,
    touched: HashMap<Vec<u8>, Edit>,
    records_delta: i64,
    names_delta: i64,
    cuts_added: bool,
}

impl<'z> Editor<'z> {
    fn get(&mut self, owner: &[u8]) -> &mut Edit {
        let key = lower(owner);
        let zone = self.zone;
        self.touched
            .entry(key.clone())
            .or_insert_with(|| match zone.find(&key) {
                Some(n) => decode(n),
                None => Edit {
                    name: owner.to_vec(),
                    children: 0,
                    sets: Vec::new(),
                    removed: true,
                },
            })
    }

    /// Makes sure `owner` is a node, creating it and any missing ancestors.
    fn ensure_node(&mut self, owner: &[u8]) {
        let mut cur = owner.to_vec();
        loop {
            let e = self.get(&cur);
            if !e.removed {
                return;
            }
            e.removed = false;
            self.names_delta += 1;
            match name::parent(&cur) {
                Some(p) if p.len() >= self.apex.len() => {
                    let p = p.to_vec();
                    self.get(&p).children += 1;
                    cur = p;
                }
                _ => return,
            }
        }
    }

    fn delete(&mut self, r: &Rr) -> Result<(), String> {
        let e = self.get(&r.owner);
        let found = !e.removed
            && e.sets.iter_mut().any(|s| {
                if s.rtype != r.rtype || s.covered != covered(r.rtype, &r.rdata) {
                    return false;
                }
                s.rdatas.swap_remove(&r.rdata[..])
            });
        if !found {
            return Err(format!(
                "deletes {} {} that the zone does not hold",
                name::to_text(&r.owner),
                rtype::to_text(r.rtype)
            ));
        }
        e.sets.retain(|s| !s.rdatas.is_empty());
        self.records_delta -= 1;
        Ok(())
    }

    fn add(&mut self, r: &Rr) -> Result<(), String> {
        if !name::is_subdomain(&r.owner, &self.apex) {
            return Err(format!(
                "{} {} is outside the zone",
                name::to_text(&r.owner),
                rtype::to_text(r.rtype)
            ));
        }
        if rtype::is_meta(r.rtype) {
            return Err(format!(
                "type {} cannot be zone data",
                rtype::to_text(r.rtype)
            ));
        }
        // The door for IXFR and journal replay, as the builder is for whole zones.
        rdata::validate(r.rtype, &r.rdata).map_err(|e| {
            format!(
                "{} {}: {e}",
                name::to_text(&r.owner),
                rtype::to_text(r.rtype)
            )
        })?;
        self.ensure_node(&r.owner);
        let apex = self.apex.clone();
        let cov = covered(r.rtype, &r.rdata);
        let e = self.get(&r.owner);
        let is_apex = e.name.eq_ignore_ascii_case(&apex);
        match e
            .sets
            .iter_mut()
            .find(|s| s.rtype == r.rtype && s.covered == cov)
        {
            Some(s) => {
                // One TTL per RRset (RFC 2181 §5.2): the newest wins.
                s.ttl = r.ttl;
                if s.rdatas.len() >= u16::MAX as usize && !s.rdatas.contains(&r.rdata) {
                    return Err(format!(
                        "{} {}: more than 65,535 records in one RRset",
                        name::to_text(&r.owner),
                        rtype::to_text(r.rtype)
                    ));
                }
                if !s.rdatas.insert(r.rdata.clone()) {
                    return Ok(());
                }
            }
            None => e.sets.push(EditSet {
                rtype: r.rtype,
                covered: cov,
                ttl: r.ttl,
                rdatas: IndexSet::from([r.rdata.clone()]),
            }),
        }
        if (r.rtype == rtype::NS && !is_apex) || r.rtype == rtype::DNAME {
            self.cuts_added = true;
        }
        self.records_delta += 1;
        Ok(())
    }

    /// Drops nodes left empty with nothing below them, up the tree.
    fn prune(&mut self) {
        let mut work: Vec<Vec<u8>> = self.touched.keys().cloned().collect();
        while let Some(key) = work.pop() {
            let Some(e) = self.touched.get_mut(&key) else {
                continue;
            };
            if e.removed || !e.sets.is_empty() || e.children > 0 || key == self.apex {
                continue;
            }
            e.removed = true;
            self.names_delta -= 1;
            let Some(parent) = name::parent(&key).map(<[u8]>::to_vec) else {
                continue;
            };
            let p = self.get(&parent);
            p.children -= 1;
            work.push(parent);
        }
    }
}

impl Zone {
    /// The version after deleting `deleted` and adding `added` (in that
    /// order, as one IXFR difference), with `soa` as the new SOA. Fails,
    /// leaving `self` untouched, on a deletion of a record the zone does not
    /// hold, data outside the zone, or a CNAME beside other data.
    pub fn apply(&self, deleted: &[Rr], added: &[Rr], soa: &Rr) -> Result<Zone, String> {
        let apex = lower(self.origin());
        let mut ed = Editor {
            zone: self,
            apex: apex.clone(),
            touched: HashMap::new(),
            records_delta: 0,
            names_delta: 0,
            cuts_added: false,
        };
        for r in deleted.iter().filter(|r| r.rtype != rtype::SOA) {
            ed.delete(r)?;
        }
        for r in added.iter().filter(|r| r.rtype != rtype::SOA) {
            ed.add(r)?;
        }
        if soa.rtype != rtype::SOA || !soa.owner.eq_ignore_ascii_case(&apex) {
            return Err("the new SOA is not the zone's".into());
        }
        let Some(new_soa) = Soa::parse(&soa.rdata) else {
            return Err("the new SOA's rdata is malformed".into());
        };
        let a = ed.get(&apex);
        a.sets.retain(|s| s.rtype != rtype::SOA);
        a.sets.push(EditSet {
            rtype: rtype::SOA,
            covered: 0,
            ttl: soa.ttl,
            rdatas: IndexSet::from([soa.rdata.clone()]),
        });
        a.sets.sort_by_key(|s| (s.rtype, s.covered));
        ed.prune();
        for (key, e) in &ed.touched {
            if e.removed {
                continue;
            }
            let has_cname = e.sets.iter().any(|s| s.rtype == rtype::CNAME);
            if has_cname
                && e.sets
                    .iter()
                    .any(|s| !matches!(s.rtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC))
            {
                return Err(format!("{}: CNAME and other data", name::to_text(key)));
            }
        }
        if !ed
            .touched
            .get(&apex)
            .is_some_and(|a| a.sets.iter().any(|s| s.rtype == rtype::NS))
        {
            return Err("the zone would have no NS records at its apex".into());
        }

        // Rebuild the touched shards only.
        let mut by_shard: HashMap<usize, Vec<(&Vec<u8>, &Edit)>> = HashMap::new();
        for (key, e) in &ed.touched {
            let idx = ((self.hash(key) >> 32) & self.shard_mask) as usize;
            by_shard.entry(idx).or_default().push((key, e));
        }
        let mut shards = self.shards.to_vec();
        for (idx, edits) in by_shard {
            let old = &self.shards[idx];
            let edited: HashMap<&[u8], &Edit> =
                edits.iter().map(|(k, e)| (k.as_slice(), *e)).collect();
            let mut data = Vec::with_capacity(old.data.len() + 256);
            let mut table = HashTable::with_capacity(old.table.len() + edits.len());
            // Nodes nobody touched are copied as they are; edited ones are
            // encoded again.
            let mut rest = &old.data[..];
            let mut key = Vec::with_capacity(name::MAX_NAME);
            while !rest.is_empty() {
                let node = Node { bytes: rest };
                let len = node.total_len();
                key.clear();
                key.extend_from_slice(node.name());
                name::lowercase(&mut key);
                if !edited.contains_key(&key[..]) {
                    let off = data.len() as u32;
                    data.extend_from_slice(&rest[..len]);
                    table.insert_unique(self.hash(&key), off, |_| 0);
                }
                rest = &rest[len..];
            }
            for (key, e) in edits {
                if !e.removed {
                    let off = data.len() as u32;
                    encode(e, &mut data);
                    table.insert_unique(self.hash(key), off, |_| 0);
                }
            }
            shards[idx] = Arc::new(Shard {
                table,
                data: data.into_boxed_slice(),
            });
        }
        let (serial, minimum) = (new_soa.serial, new_soa.minimum);
        let mut zone = Zone {
            origin: self.origin.clone(),
            apex_key: self.apex_key.clone(),
            hasher: self.hasher.clone(),
            shards: shards.into_boxed_slice(),
            shard_mask: self.shard_mask,
            has_cuts: self.has_cuts || ed.cuts_added,
            soa_ttl: soa.ttl,
            serial,
            minimum,
            names: (self.names as i64 + ed.names_delta).max(0) as usize,
            records: (self.records as i64 + ed.records_delta).max(0) as usize,
            signed: false,
            denial: None,
        };
        let touched = ed.touched.keys().map(Vec::as_slice);
        let (signed, denial) =
            super::denial::update(self, &zone, touched).map_err(|e| e.to_string())?;
        zone.signed = signed;
        zone.denial = denial.map(Arc::new);
        Ok(zone)
    }
}

#[cfg(test)]
mod tests {
    use crate::zone::diff::{self, content_hash};
    use crate::zone::load_zone_str;

    const O: &[u8] = b"\x01t\x00";

    fn z(serial: u32, body: &str) -> crate::zone::Zone {
        load_zone_str(
            &format!("$TTL 60\n@ SOA ns h {serial} 1 1 1 1\n NS ns\nns A 192.0.2.1\n{body}"),
            "t",
            O,
        )
        .unwrap()
    }

    #[test]
    fn applying_a_diff_gives_the_target_version() {
        let cases = [
            (
                "a.b.c A 192.0.2.1\nx A 192.0.2.2\n",
                "x A 192.0.2.3\nnew.deep.er TXT \"n\"\n*.w A 192.0.2.4\n",
            ),
            (
                "gone.away A 192.0.2.1\nkeep A 192.0.2.1\n",
                "keep 90 A 192.0.2.1\nsub NS ns.sub\nns.sub A 192.0.2.9\n",
            ),
            ("", "a.b.c.d.e.f A 192.0.2.1\n"),
        ];
        for (before, after) in cases {
            let old = z(1, before);
            let new = z(2, after);
            let d = diff::diff(&old, &new);
            let got = old.apply(&d.deleted, &d.added, &d.to).unwrap();
            assert_eq!(got.serial(), 2);
            assert_eq!(
                content_hash(&got),
                content_hash(&new),
                "{before:?} -> {after:?}"
            );
            assert_eq!(
                got.name_count(),
                new.name_count(),
                "names {before:?} -> {after:?}"
            );
            assert_eq!(got.record_count(), new.record_count());
            // Every node of the result, with its child count, as a fresh load has it.
            for n in new.nodes() {
                let mut k = n.name().to_vec();
                k.make_ascii_lowercase();
                let g = got.find(&k).expect("node present");
                assert_eq!(
                    g.children(),
                    n.children(),
                    "{}",
                    crate::zone::name::to_text(n.name())
                );
            }
            // Going back works too.
            let back = diff::diff(&new, &old);
            let again = got.apply(&back.deleted, &back.added, &back.to).unwrap();
            assert_eq!(content_hash(&again), content_hash(&old));
            assert_eq!(again.name_count(), old.name_count());
        }
    }

    #[test]
    fn bad_changes_are_refused() {
        let old = z(1, "x A 192.0.2.2\n");
        let soa = z(2, "").soa_rr();
        let missing = diff::Rr {
            owner: (*b"\x01x\x01t\x00").into(),
            rtype: 1,
            ttl: 60,
            rdata: vec![1, 2, 3, 4].into(),
        };
        assert!(
            old.apply(std::slice::from_ref(&missing), &[], &soa)
                .unwrap_err()
                .contains("does not hold")
        );
        let outside = diff::Rr {
            owner: (*b"\x01x\x01u\x00").into(),
            ..missing.clone()
        };
        assert!(
            old.apply(&[], &[outside], &soa)
                .unwrap_err()
                .contains("outside")
        );
        let cname = diff::Rr {
            owner: (*b"\x01x\x01t\x00").into(),
            rtype: 5,
            ttl: 60,
            rdata: (*b"\x02ns\x01t\x00").into(),
        };
        assert!(
            old.apply(&[], &[cname], &soa)
                .unwrap_err()
                .contains("CNAME")
        );
    }
}
