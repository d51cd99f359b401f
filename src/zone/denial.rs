//! The ordered view a signed zone needs to prove that a name or a type does
//! not exist (RFC 4035 §3.1.3, RFC 5155 §7.2): the NSEC owners in canonical
//! order, or the NSEC3 owner hashes sorted. Built when a signed version is
//! built, kept incrementally when an IXFR is applied; unsigned zones have
//! none and pay nothing.

use super::ordered::OrderedKeys;
use super::{Node, Zone, name, rtype};
use data_encoding::BASE32HEX_NOPAD;
use std::sync::atomic::{AtomicU16, Ordering};

/// SHA-1, the only NSEC3 hash algorithm (RFC 5155 §11).
const SHA1: u8 = 1;
const HASH_LEN: usize = 20;
/// Longest canonical key: every octet of a name escaped.
const MAX_KEY: usize = 2 * name::MAX_NAME;

/// RFC 9276 §3.2: iterations beyond this are refused (the zone does not
/// load; a transfer of it is rejected), as BIND 9.20 refuses to load such
/// zones. 150 is BIND's and Knot's validator limit: above it validators
/// treat the answers as insecure anyway.
static MAX_ITERATIONS: AtomicU16 = AtomicU16::new(150);

pub fn set_max_iterations(n: u16) {
    MAX_ITERATIONS.store(n, Ordering::Relaxed);
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DenialError {
    #[error(
        "NSEC3PARAM has {0} iterations, more than nsec3_max_iterations = {1} allows (RFC 9276)"
    )]
    TooManyIterations(u16, u16),
    #[error("NSEC3PARAM uses hash algorithm {0}; only 1 (SHA-1) is defined")]
    UnknownAlgorithm(u8),
    #[error("NSEC3PARAM rdata is malformed")]
    Malformed,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Nsec3Param {
    pub iterations: u16,
    pub salt: Box<[u8]>,
}

#[derive(Clone)]
pub enum Denial {
    /// Canonical keys (`canonical_key`) of every name owning an NSEC.
    Nsec(OrderedKeys),
    /// The raw hashes of every NSEC3 owner directly below the apex.
    Nsec3 {
        param: Nsec3Param,
        hashes: OrderedKeys,
    },
}

/// Which chain a version has, read from its apex: signed when it has a
/// DNSKEY; NSEC3 when it has an NSEC3PARAM, else NSEC when the apex owns one.
#[derive(PartialEq, Eq, Debug)]
enum Chain {
    Unsigned,
    SignedWithoutProofs,
    Nsec,
    Nsec3(Nsec3Param),
}

fn chain_of(zone: &Zone) -> Result<Chain, DenialError> {
    let apex = zone.apex();
    if apex.get(rtype::DNSKEY).is_none() {
        return Ok(Chain::Unsigned);
    }
    if let Some(p) = apex.get(rtype::NSEC3PARAM) {
        // An NSEC3PARAM with flags 0 says which chain answers (RFC 5155 §4.1.2).
        let rd = p
            .iter()
            .find(|rd| rd.get(1) == Some(&0))
            .or_else(|| p.iter().next())
            .ok_or(DenialError::Malformed)?;
        let (&alg, iterations, salt) = match rd {
            [alg, _flags, i0, i1, n, salt @ ..] if salt.len() == *n as usize => {
                (alg, u16::from_be_bytes([*i0, *i1]), salt)
            }
            _ => return Err(DenialError::Malformed),
        };
        if alg != SHA1 {
            return Err(DenialError::UnknownAlgorithm(alg));
        }
        let max = MAX_ITERATIONS.load(Ordering::Relaxed);
        if iterations > max {
            return Err(DenialError::TooManyIterations(iterations, max));
        }
        return Ok(Chain::Nsec3(Nsec3Param {
            iterations,
            salt: salt.into(),
        }));
    }
    if apex.get(rtype::NSEC).is_some() {
        return Ok(Chain::Nsec);
    }
    Ok(Chain::SignedWithoutProofs)
}

/// Whether `zone` is signed (apex DNSKEY), and its denial view if it has a
/// chain.
pub fn index(zone: &Zone) -> Result<(bool, Option<Denial>), DenialError> {
    let chain = chain_of(zone)?;
    let denial = match chain {
        Chain::Unsigned => return Ok((false, None)),
        Chain::SignedWithoutProofs => return Ok((true, None)),
        Chain::Nsec => {
            let mut keys = Vec::new();
            for n in zone.nodes() {
                if let Some(k) = nsec_key(zone, n) {
                    keys.push(k);
                }
            }
            Denial::Nsec(OrderedKeys::from_unsorted(keys))
        }
        Chain::Nsec3(param) => {
            let mut keys = Vec::new();
            for n in zone.nodes() {
                if let Some(h) = nsec3_key(zone, n, &param) {
                    keys.push(h.to_vec());
                }
            }
            Denial::Nsec3 {
                param,
                hashes: OrderedKeys::from_unsorted(keys),
            }
        }
    };
    Ok((true, Some(denial)))
}

/// The denial view of `new`, made from `old`'s (the version `new` was
/// applied to) by looking again at the names the change touched
/// (lower-cased). A change of chain or parameters builds it afresh.
pub fn update<'a>(
    old: &Zone,
    new: &Zone,
    touched: impl Iterator<Item = &'a [u8]>,
) -> Result<(bool, Option<Denial>), DenialError> {
    let chain = chain_of(new)?;
    let same_chain = match (&chain, old.denial()) {
        (Chain::Nsec, Some(Denial::Nsec(_))) => true,
        (Chain::Nsec3(p), Some(Denial::Nsec3 { param, .. })) => p == param,
        _ => false,
    };
    if !same_chain {
        return index(new);
    }
    let mut denial = old.denial().cloned();
    let mut key = [0u8; MAX_KEY];
    for lname in touched {
        let node = new.find(lname);
        match &mut denial {
            Some(Denial::Nsec(keys)) => {
                let k = canonical_key(lname, new.apex_key.len(), &mut key);
                match node.filter(|n| n.get(rtype::NSEC).is_some()) {
                    Some(_) => keys.insert(k),
                    None => keys.remove(k),
                }
            }
            Some(Denial::Nsec3 { hashes, param }) => {
                let Some(h) = hash_label(lname, &new.apex_key) else {
                    continue;
                };
                match node.filter(|n| of_chain(*n, param)) {
                    Some(_) => hashes.insert(&h),
                    None => hashes.remove(&h),
                }
            }
            None => {}
        }
    }
    Ok((true, denial))
}

fn nsec_key(zone: &Zone, n: Node) -> Option<Vec<u8>> {
    n.get(rtype::NSEC)?;
    let mut lname = [0u8; name::MAX_NAME];
    let l = lower_into(n.name(), &mut lname)?;
    let mut key = [0u8; MAX_KEY];
    Some(canonical_key(l, zone.apex_key.len(), &mut key).to_vec())
}

/// Whether `n` holds an NSEC3 of the chain `param` names: while an
/// NSEC3PARAM changes (a new chain built beside the old over several
/// IXFRs), the other chain's records must not be taken as proofs.
fn of_chain(n: Node, param: &Nsec3Param) -> bool {
    n.get(rtype::NSEC3).is_some_and(|set| {
        set.iter().any(|rd| match rd {
            [SHA1, _flags, i0, i1, len, rest @ ..] => {
                u16::from_be_bytes([*i0, *i1]) == param.iterations
                    && rest.get(..*len as usize) == Some(&param.salt[..])
            }
            _ => false,
        })
    })
}

fn nsec3_key(zone: &Zone, n: Node, param: &Nsec3Param) -> Option<[u8; HASH_LEN]> {
    if !of_chain(n, param) {
        return None;
    }
    let mut lname = [0u8; name::MAX_NAME];
    let l = lower_into(n.name(), &mut lname)?;
    hash_label(l, &zone.apex_key)
}

fn lower_into<'b>(n: &[u8], buf: &'b mut [u8; name::MAX_NAME]) -> Option<&'b [u8]> {
    let l = buf.get_mut(..n.len())?;
    l.copy_from_slice(n);
    name::lowercase(l);
    Some(l)
}

/// The hash an NSEC3 owner `<base32hex>.<apex>` names, if it is one.
fn hash_label(lname: &[u8], apex: &[u8]) -> Option<[u8; HASH_LEN]> {
    let (&len, rest) = lname.split_first()?;
    let len = len as usize;
    if len != 32 || rest.get(len..)? != apex {
        return None;
    }
    let mut upper = [0u8; 32];
    upper.copy_from_slice(&rest[..32]);
    upper.make_ascii_uppercase();
    let mut h = [0u8; HASH_LEN];
    match BASE32HEX_NOPAD.decode_mut(&upper, &mut h) {
        Ok(HASH_LEN) => Some(h),
        _ => None,
    }
}

/// A key whose byte order is the canonical order of RFC 4034 §6.1 for the
/// names of one zone: the labels below the apex from the top down, each
/// lower-cased octets (0x00 written 01 01, 0x01 written 01 02) and ended by
/// 0x00, so a shorter label sorts first and a name before its children.
/// `lname` is lower-case and ends in the apex, `apex_len` octets long.
pub fn canonical_key<'b>(lname: &[u8], apex_len: usize, out: &'b mut [u8; MAX_KEY]) -> &'b [u8] {
    let mut starts = [0u8; 128];
    let mut n = 0;
    let mut i = 0;
    let rel = lname.len().saturating_sub(apex_len);
    while i < rel && n < starts.len() {
        starts[n] = i as u8;
        n += 1;
        i += lname[i] as usize + 1;
    }
    let mut w = 0;
    for &s in starts[..n].iter().rev() {
        let s = s as usize;
        let len = lname[s] as usize;
        for &c in lname.get(s + 1..s + 1 + len).unwrap_or(&[]) {
            match c {
                0 | 1 => {
                    out[w] = 1;
                    out[w + 1] = c + 1;
                    w += 2;
                }
                _ => {
                    out[w] = c;
                    w += 1;
                }
            }
        }
        out[w] = 0;
        w += 1;
    }
    &out[..w]
}

/// The lower-cased name a canonical key stands for, below `apex`.
fn name_of_key<'b>(key: &[u8], apex: &[u8], out: &'b mut [u8; name::MAX_NAME]) -> &'b [u8] {
    // Labels come top-down in the key; the name is written bottom-up.
    let mut labels = [(0u16, 0u16); 128];
    let mut n = 0;
    let mut start = 0;
    let mut i = 0;
    while i < key.len() && n < labels.len() {
        match key[i] {
            0 => {
                labels[n] = (start as u16, i as u16);
                n += 1;
                i += 1;
                start = i;
            }
            1 => i += 2,
            _ => i += 1,
        }
    }
    let mut w = 0;
    for &(s, e) in labels[..n].iter().rev() {
        // Keys are made from names, so they fit; a key that did not would
        // give a shorter name, never an index past the buffer.
        if w >= out.len() {
            break;
        }
        let len_at = w;
        w += 1;
        let mut j = s as usize;
        while j < e as usize && w < out.len() {
            if key[j] == 1 {
                out[w] = key.get(j + 1).map_or(0, |c| c - 1);
                j += 2;
            } else {
                out[w] = key[j];
                j += 1;
            }
            w += 1;
        }
        out[len_at] = (w - len_at - 1) as u8;
    }
    let end = (w + apex.len()).min(out.len());
    out[w..end].copy_from_slice(&apex[..end - w]);
    &out[..end]
}

impl Denial {
    /// NSEC zones: the NSEC whose owner is the greatest name `<= lname`,
    /// which covers `lname` when it does not exist (or is an empty
    /// non-terminal).
    pub fn nsec_at_or_before<'z>(&self, zone: &'z Zone, lname: &[u8]) -> Option<Node<'z>> {
        let Denial::Nsec(keys) = self else {
            return None;
        };
        let mut key = [0u8; MAX_KEY];
        let k = canonical_key(lname, zone.apex_key.len(), &mut key);
        let owner_key = keys.at_or_below(k).or_else(|| keys.last())?;
        let mut owner = [0u8; name::MAX_NAME];
        zone.find(name_of_key(owner_key, &zone.apex_key, &mut owner))
    }

    /// NSEC3 zones: the hash of `lname` (lower-cased) with the zone's
    /// parameters (RFC 5155 §5).
    pub fn nsec3_hash(&self, lname: &[u8]) -> Option<[u8; HASH_LEN]> {
        let Denial::Nsec3 { param, .. } = self else {
            return None;
        };
        let alg = &ring::digest::SHA1_FOR_LEGACY_USE_ONLY;
        let mut ctx = ring::digest::Context::new(alg);
        ctx.update(lname);
        ctx.update(&param.salt);
        let mut h = [0u8; HASH_LEN];
        h.copy_from_slice(ctx.finish().as_ref());
        for _ in 0..param.iterations {
            let mut ctx = ring::digest::Context::new(alg);
            ctx.update(&h);
            ctx.update(&param.salt);
            h.copy_from_slice(ctx.finish().as_ref());
        }
        Some(h)
    }

    fn nsec3_node<'z>(zone: &'z Zone, hash: &[u8]) -> Option<Node<'z>> {
        let mut owner = [0u8; name::MAX_NAME];
        let apex = &zone.apex_key;
        let total = 33 + apex.len();
        if total > owner.len() {
            return None;
        }
        owner[0] = 32;
        BASE32HEX_NOPAD.encode_mut(hash, &mut owner[1..33]);
        owner[1..33].make_ascii_lowercase();
        owner[33..total].copy_from_slice(apex);
        zone.find(&owner[..total])
    }

    /// NSEC3 zones: the NSEC3 whose hash is `lname`'s, if there is one.
    pub fn nsec3_matching<'z>(&self, zone: &'z Zone, lname: &[u8]) -> Option<Node<'z>> {
        let Denial::Nsec3 { param, .. } = self else {
            return None;
        };
        let h = self.nsec3_hash(lname)?;
        Self::nsec3_node(zone, &h).filter(|n| of_chain(*n, param))
    }

    /// NSEC3 zones: the NSEC3 covering `lname`'s hash: the greatest hash
    /// below it, or the last one, whose next hash wraps around.
    pub fn nsec3_covering<'z>(&self, zone: &'z Zone, lname: &[u8]) -> Option<Node<'z>> {
        let Denial::Nsec3 { hashes, .. } = self else {
            return None;
        };
        let h = self.nsec3_hash(lname)?;
        let owner = hashes.below(&h).or_else(|| hashes.last())?;
        Self::nsec3_node(zone, owner)
    }

    pub fn is_nsec3(&self) -> bool {
        matches!(self, Denial::Nsec3 { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::load_zone_str;

    fn key(n: &[u8], apex_len: usize) -> Vec<u8> {
        let mut b = [0u8; MAX_KEY];
        canonical_key(n, apex_len, &mut b).to_vec()
    }

    #[test]
    fn canonical_keys_sort_as_rfc_4034_says() {
        // RFC 4034 §6.1's example, in order, below "example.".
        let names: [&[u8]; 9] = [
            b"\x07example\x00",
            b"\x01a\x07example\x00",
            b"\x08yljkjljk\x01a\x07example\x00",
            b"\x01z\x01a\x07example\x00",
            b"\x04zabc\x01a\x07example\x00",
            b"\x01z\x07example\x00",
            b"\x01\x01\x01z\x07example\x00",
            b"\x01*\x01z\x07example\x00",
            b"\x01\xc8\x01z\x07example\x00",
        ];
        let apex = names[0].len();
        let keys: Vec<Vec<u8>> = names.iter().map(|n| key(n, apex)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (n, k) in names.iter().zip(&keys) {
            let mut out = [0u8; name::MAX_NAME];
            assert_eq!(name_of_key(k, names[0], &mut out), *n);
        }
        // A zero octet inside a label sorts after the shorter label.
        assert!(
            key(b"\x01a\x01z\x07example\x00", apex) < key(b"\x02a\x00\x01z\x07example\x00", apex)
        );
    }

    #[test]
    fn nsec3_hash_matches_rfc_5155_appendix_a() {
        // RFC 5155 Appendix A: salt aabbccdd, 12 iterations.
        let z = load_zone_str(
            "$TTL 60\n@ SOA ns h 1 1 1 1 1\n NS ns\n DNSKEY 257 3 13 AAAA\n NSEC3PARAM 1 0 12 aabbccdd\nns A 192.0.2.1\n",
            "t",
            b"\x07example\x00",
        )
        .unwrap();
        let d = z.denial().expect("an NSEC3 view");
        let h = d.nsec3_hash(b"\x07example\x00").unwrap();
        assert_eq!(
            BASE32HEX_NOPAD.encode(&h).to_ascii_lowercase(),
            "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"
        );
        let h = d.nsec3_hash(b"\x01a\x07example\x00").unwrap();
        assert_eq!(
            BASE32HEX_NOPAD.encode(&h).to_ascii_lowercase(),
            "35mthgpgcu1qg68fab165klnsnk3dpvl"
        );
    }

    #[test]
    fn too_many_iterations_are_refused() {
        let r = load_zone_str(
            "$TTL 60\n@ SOA ns h 1 1 1 1 1\n NS ns\n DNSKEY 257 3 13 AAAA\n NSEC3PARAM 1 0 151 -\nns A 192.0.2.1\n",
            "t",
            b"\x07example\x00",
        );
        assert!(r.is_err_and(|e| e.to_string().contains("151 iterations")));
    }

    fn keys_of(z: &Zone) -> Vec<Vec<u8>> {
        match z.denial() {
            Some(Denial::Nsec(k)) | Some(Denial::Nsec3 { hashes: k, .. }) => {
                k.iter().map(<[u8]>::to_vec).collect()
            }
            None => Vec::new(),
        }
    }

    #[test]
    fn only_the_chain_nsec3param_names_is_indexed() {
        // A rollover in progress: the new chain (salt ab) beside the old.
        let h = |c: char| c.to_string().repeat(32);
        let text = format!(
            "$TTL 60\n@ SOA ns h 1 1 1 1 1\n NS ns\n DNSKEY 257 3 13 AAAA\n NSEC3PARAM 1 0 0 -\nns A 192.0.2.1\n\
             {} NSEC3 1 0 0 - {} A\n{} NSEC3 1 0 0 - {} A\n{} NSEC3 1 0 0 ab {} A\n",
            h('1'),
            h('5'),
            h('5'),
            h('1'),
            h('3'),
            h('3')
        );
        let z = load_zone_str(&text, "t", b"\x01t\x00").unwrap();
        let keys = keys_of(&z);
        assert_eq!(keys.len(), 2, "the other chain's owner is not a proof");
        let d = z.denial().unwrap();
        // Whatever the name, its cover is one of the chain's own two.
        for n in [&b"\x01a\x01t\x00"[..], b"\x01b\x01t\x00", b"\x01c\x01t\x00"] {
            let c = d.nsec3_covering(&z, n).unwrap();
            assert!(!c.name().starts_with(b"\x2033333"), "{:?}", c.name());
        }
    }

    #[test]
    fn an_applied_change_keeps_the_order_a_fresh_build_has() {
        let head = "$TTL 60\n@ SOA ns h SERIAL 1 1 1 1\n NS ns\n DNSKEY 257 3 13 AAAA\n";
        let nsec = |names: &[&str]| {
            let mut t = format!("{head} NSEC a A NSEC\n");
            for n in names {
                t += &format!("{n} A 192.0.2.1\n NSEC x A NSEC\n");
            }
            t + "ns A 192.0.2.1\n"
        };
        let h = |c: char| c.to_string().repeat(32);
        let nsec3 = |hashes: &[char]| {
            let mut t = format!("{head} NSEC3PARAM 1 0 0 -\n");
            for c in hashes {
                t += &format!("{} NSEC3 1 0 0 - {} A\n", h(*c), h('v'));
            }
            t + "ns A 192.0.2.1\n"
        };
        let cases = [
            (nsec(&["a", "b.c", "d"]), nsec(&["a", "b.c", "e", "f.g.h"])),
            (nsec3(&['0', '1', '2']), nsec3(&['0', '3', 'a', 'b'])),
            (nsec(&["a"]), nsec3(&['0', '1'])),
            (nsec3(&['0']), nsec(&["a"]).replace("DNSKEY", "TXT")),
        ];
        for (before, after) in cases {
            let old = load_zone_str(&before.replace("SERIAL", "1"), "t", b"\x01t\x00").unwrap();
            let new = load_zone_str(&after.replace("SERIAL", "2"), "t", b"\x01t\x00").unwrap();
            let d = crate::zone::diff::diff(&old, &new);
            let got = old.apply(&d.deleted, &d.added, &d.to).unwrap();
            assert_eq!(got.is_signed(), new.is_signed());
            assert_eq!(keys_of(&got), keys_of(&new), "{before} -> {after}");
            assert!(!keys_of(&new).is_empty() || !new.is_signed());
        }
    }
}
