//! Empty non-terminals and child counts. Every ancestor of a name up to
//! the apex is a node, so the closest encloser of any name is found by
//! exact lookups; every node counts the names directly below it, so a later
//! version can drop a node that became empty and has no children.
//!
//! A name's parent may be in any partition, so this goes in rounds: each
//! partition sends the parents of its new names to their partitions, which
//! count them and add the missing ones as new names; the next round sends
//! those names' parents, until a round adds none.

use super::index::{Part, TooLarge};
use crate::zone::stage::{PARTITIONS, partition_of};
use crate::zone::{NameHasher, name, workers};
use std::hash::BuildHasher;

/// Parents sent to one partition: consecutive names with one parent (the
/// usual order of a zone) make one item.
#[derive(Default)]
struct Outbox {
    names: Vec<u8>,
    items: Vec<Item>,
}

struct Item {
    hash: u64,
    at: u32,
    len: u8,
    count: u32,
}

impl Outbox {
    fn name(&self, item: &Item) -> &[u8] {
        &self.names[item.at as usize..item.at as usize + item.len as usize]
    }
}

/// Completes the names of `parts`: `apex` is (partition, node) of the apex,
/// the one name whose parent is not counted.
pub fn complete(
    parts: &mut [Part],
    apex: (usize, u32),
    hasher: &NameHasher,
    threads: usize,
) -> Result<(), TooLarge> {
    let mut from = vec![0usize; parts.len()];
    loop {
        let to: Vec<usize> = parts.iter().map(|p| p.index.len()).collect();
        if from == to {
            return Ok(());
        }
        let shared: &[Part] = parts;
        let outs: Vec<Vec<Outbox>> = workers::map(0..shared.len(), threads, |p| {
            let skip = (apex.0 == p).then_some(apex.1);
            parents(&shared[p], from[p]..to[p], skip, hasher)
        });
        let done = workers::map(parts.iter_mut().enumerate(), threads, |(q, part)| {
            for out in &outs {
                let outbox = &out[q];
                for item in &outbox.items {
                    let parent = outbox.name(item);
                    match part.index.find(&part.logs, item.hash, parent) {
                        Some(id) => part.index.nodes[id as usize].children += item.count,
                        None => {
                            part.index.push_extra(item.hash, parent, item.count)?;
                        }
                    }
                }
            }
            Ok(())
        });
        done.into_iter().collect::<Result<(), TooLarge>>()?;
        from = to;
    }
}

/// The parents of nodes `ids` of a partition, by the partition each is in.
fn parents(
    part: &Part,
    ids: std::ops::Range<usize>,
    skip: Option<u32>,
    hasher: &NameHasher,
) -> Vec<Outbox> {
    let mut outs: Vec<Outbox> = (0..PARTITIONS).map(|_| Outbox::default()).collect();
    let mut lower = Vec::with_capacity(name::MAX_NAME);
    for id in ids {
        let id = id as u32;
        if Some(id) == skip {
            continue;
        }
        let Some(parent) = name::parent(part.index.name(&part.logs, id)) else {
            continue;
        };
        lower.clear();
        lower.extend_from_slice(parent);
        name::lowercase(&mut lower);
        let hash = hasher.hash_one(&lower[..]);
        let out = &mut outs[partition_of(hash)];
        if let Some(last) = out.items.last()
            && last.hash == hash
            && out.name(last).eq_ignore_ascii_case(parent)
            && let Some(last) = out.items.last_mut()
        {
            last.count += 1;
            continue;
        }
        let at = out.names.len() as u32;
        out.names.extend_from_slice(parent);
        out.items.push(Item {
            hash,
            at,
            len: parent.len() as u8,
            count: 1,
        });
    }
    outs
}
