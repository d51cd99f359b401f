//! One partition's names: every owner once (the first spelling read wins),
//! found by hash, each with its count of children. A name no record owns
//! (the apex of a zone without records there, an empty non-terminal) is
//! kept beside the logs, which hold every other name already.

use crate::zone::stage::{self, Run};
use hashbrown::HashTable;

/// A partition: the logs every stager wrote to it, and its names.
#[derive(Default)]
pub struct Part {
    /// One per stager, in stager order.
    pub logs: Vec<Vec<u8>>,
    pub index: Index,
}

#[derive(Default)]
pub struct Index {
    table: HashTable<u32>,
    pub nodes: Vec<NodeRef>,
    extra: Vec<u8>,
}

/// Where a node's name is, and what is known of the node.
#[derive(Clone, Copy)]
pub struct NodeRef {
    /// Hash of the lower-cased name.
    pub hash: u64,
    /// The stager whose log holds the name, or `EXTRA`.
    log: u32,
    off: u32,
    len: u8,
    pub children: u32,
}

const EXTRA: u32 = u32::MAX;

/// A log too large for the 32-bit offsets nodes keep.
#[derive(Debug, thiserror::Error)]
#[error("zone too large (a partition of its records exceeds 4 GiB)")]
pub struct TooLarge;

impl Index {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn name<'a>(&'a self, logs: &'a [Vec<u8>], id: u32) -> &'a [u8] {
        let n = &self.nodes[id as usize];
        let (buf, off) = match n.log {
            EXTRA => (&self.extra[..], n.off as usize),
            s => (&logs[s as usize][..], n.off as usize),
        };
        &buf[off..off + n.len as usize]
    }

    /// The node named `name` (any case) whose hash is `hash`.
    pub fn find(&self, logs: &[Vec<u8>], hash: u64, name: &[u8]) -> Option<u32> {
        self.table
            .find(hash, |&id| self.name(logs, id).eq_ignore_ascii_case(name))
            .copied()
    }

    fn push(&mut self, node: NodeRef) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(node);
        let nodes = &self.nodes;
        self.table
            .insert_unique(node.hash, id, |&i| nodes[i as usize].hash);
        id
    }

    /// Adds a node whose name is in no log (a copy is kept).
    pub fn push_extra(&mut self, hash: u64, name: &[u8], children: u32) -> Result<u32, TooLarge> {
        let off = u32::try_from(self.extra.len()).map_err(|_| TooLarge)?;
        self.extra.extend_from_slice(name);
        Ok(self.push(NodeRef {
            hash,
            log: EXTRA,
            off,
            len: name.len() as u8,
            children,
        }))
    }
}

/// Gives every owner in partition `p` of `runs` its node number (first
/// read, first numbered) and writes it over the owner's hash in the log,
/// so that laying out needs no second lookup.
pub fn index(part: &mut Part, p: usize, runs: &[Run]) -> Result<(), TooLarge> {
    for run in runs {
        let range = run.range(p);
        let s = run.stager;
        if range.end > u32::MAX as usize {
            return Err(TooLarge);
        }
        let mut pos = range.start;
        while pos < range.end {
            let at = stage::entry_at(&part.logs[s], pos);
            if let Some((key, name_at)) = at.owner {
                let log = &part.logs[s];
                let hash = stage::read_u64(log, key);
                let name = stage::owner_name(log, name_at);
                let id = match part.index.find(&part.logs, hash, name) {
                    Some(id) => id,
                    None => part.index.push(NodeRef {
                        hash,
                        log: s as u32,
                        off: name_at as u32,
                        len: name.len() as u8,
                        children: 0,
                    }),
                };
                part.logs[s][key..key + 8].copy_from_slice(&u64::from(id).to_le_bytes());
            }
            pos = at.next;
        }
    }
    Ok(())
}
