//! Records in the order a full transfer brought them, kept compactly — an
//! owner is written once for the records that follow it, as a transfer
//! groups them — in blocks that can be staged in parallel and freed one by
//! one. A vector of `Rr`s took about 100 bytes and two allocations per
//! record; this takes the record's own bytes and about 10 more.

/// Bytes a block grows to before the next one starts.
const BLOCK: usize = 1 << 20;

/// One record, borrowed from a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub owner: &'a [u8],
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: &'a [u8],
}

#[derive(Default)]
pub struct Records {
    blocks: Vec<Block>,
    count: usize,
    /// Where the last owner is in the last block.
    last_owner: Option<(usize, usize)>,
}

/// Records `first..first + count` of a transfer.
#[derive(Default)]
pub struct Block {
    first: usize,
    count: usize,
    // Entries: owner length (0: the previous entry's owner) and owner,
    // then type, TTL, rdata length (little-endian) and rdata.
    bytes: Vec<u8>,
}

impl Records {
    pub fn new() -> Records {
        Records::default()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends a record (`owner` a wire name of at most 255 octets, `rdata`
    /// at most 65535).
    pub fn push(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        if self.blocks.last().is_none_or(|b| b.bytes.len() >= BLOCK) {
            self.blocks.push(Block {
                first: self.count,
                count: 0,
                bytes: Vec::with_capacity(BLOCK + 1024),
            });
            self.last_owner = None;
        }
        let Some(block) = self.blocks.last_mut() else {
            return;
        };
        let same = self
            .last_owner
            .is_some_and(|(at, len)| block.bytes[at..at + len] == *owner);
        if same {
            block.bytes.push(0);
        } else {
            block.bytes.push(owner.len() as u8);
            self.last_owner = Some((block.bytes.len(), owner.len()));
            block.bytes.extend_from_slice(owner);
        }
        block.bytes.extend_from_slice(&rtype.to_le_bytes());
        block.bytes.extend_from_slice(&ttl.to_le_bytes());
        block
            .bytes
            .extend_from_slice(&(rdata.len() as u16).to_le_bytes());
        block.bytes.extend_from_slice(rdata);
        block.count += 1;
        self.count += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        self.blocks.iter().flat_map(Block::iter)
    }

    pub fn into_blocks(self) -> Vec<Block> {
        self.blocks
    }
}

impl Block {
    /// The number of this block's first record (from 0).
    pub fn first(&self) -> usize {
        self.first
    }

    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        let b = &self.bytes[..];
        let mut pos = 0;
        let mut owner: &[u8] = &[];
        std::iter::from_fn(move || {
            let len = *b.get(pos)? as usize;
            pos += 1;
            if len > 0 {
                owner = &b[pos..pos + len];
                pos += len;
            }
            let f = &b[pos..pos + 8];
            let rdlen = u16::from_le_bytes([f[6], f[7]]) as usize;
            let r = Record {
                owner,
                rtype: u16::from_le_bytes([f[0], f[1]]),
                ttl: u32::from_le_bytes([f[2], f[3], f[4], f[5]]),
                rdata: &b[pos + 8..pos + 8 + rdlen],
            };
            pos += 8 + rdlen;
            Some(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_across_blocks() {
        let mut rs = Records::new();
        let big = vec![7u8; 60_000];
        let mut want = Vec::new();
        for i in 0..100u32 {
            let owner: &[u8] = if i % 3 == 0 {
                b"\x01a\x00"
            } else {
                b"\x01b\x00"
            };
            let rdata = if i % 4 == 0 { &big[..] } else { &big[..4] };
            rs.push(owner, 1, i, rdata);
            want.push((owner.to_vec(), i, rdata.len()));
        }
        assert_eq!(rs.len(), 100);
        let got: Vec<_> = rs
            .iter()
            .map(|r| (r.owner.to_vec(), r.ttl, r.rdata.len()))
            .collect();
        assert_eq!(got, want);
        let blocks = rs.into_blocks();
        assert!(blocks.len() > 1);
        let mut n = 0;
        for b in &blocks {
            assert_eq!(b.first(), n);
            n += b.iter().count();
        }
        assert_eq!(n, 100);
    }
}
