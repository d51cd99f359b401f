//! Records in master-file format, for the secondary's copy of a zone. Known
//! types are written as people read them (the type table's printer); the
//! rest in RFC 3597 generic form (`TYPEnnn \# len hex`). Both read back exactly.

use crate::zone::diff::Rr;
use crate::zone::rdata::print;
use crate::zone::{Node, Zone, build, name, rtype, workers};
use std::fmt::Write as _;
use std::io::{self, Write};

/// One record as a master-file line (absolute owner, TTL, IN, type, rdata).
pub fn record_line(r: &Rr, out: &mut String) {
    let _ = write!(out, "{} {} IN ", name::to_text(&r.owner), r.ttl);
    print::type_and_rdata(r.rtype, &r.rdata, out);
    out.push('\n');
}

/// Shards whose text is made at once (in parallel), then written: enough
/// to keep every core busy, few enough that the text in memory stays small.
const SHARDS_AT_ONCE: usize = 64;

/// The whole zone, SOA first.
pub fn zone_text(z: &Zone) -> String {
    let mut out = Vec::with_capacity(z.record_count() * 48 + 64);
    // Writing to memory cannot fail.
    let _ = write_zone(z, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The whole zone, SOA first, written to `out` (text made on every core).
pub fn write_zone(z: &Zone, out: &mut dyn Write) -> io::Result<()> {
    let mut head = String::from("; written by tandem: the secondary's copy of the zone\n");
    record_line(&z.soa_rr(), &mut head);
    out.write_all(head.as_bytes())?;
    let mut apex = z.origin().to_vec();
    name::lowercase(&mut apex);
    let threads = if z.record_count() >= build::PARALLEL_FROM_RECORDS {
        workers::threads()
    } else {
        1
    };
    let mut groups = z.node_groups();
    loop {
        let batch: Vec<_> = groups.by_ref().take(SHARDS_AT_ONCE).collect();
        if batch.is_empty() {
            return Ok(());
        }
        for text in workers::map(batch, threads, |nodes| nodes_text(nodes, &apex)) {
            out.write_all(text.as_bytes())?;
        }
    }
}

/// The records of `nodes` (the apex SOA aside: it goes first).
fn nodes_text<'a>(nodes: impl Iterator<Item = Node<'a>>, apex: &[u8]) -> String {
    let mut out = String::new();
    for node in nodes {
        let at_apex = node.name().eq_ignore_ascii_case(apex);
        let owner = name::to_text(node.name());
        for set in node.rrsets() {
            if at_apex && set.rtype == rtype::SOA {
                continue;
            }
            for rd in set.iter() {
                let _ = write!(out, "{owner} {} IN ", set.ttl);
                print::type_and_rdata(set.rtype, rd, &mut out);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::diff::content_hash;
    use crate::zone::load_zone_str;

    #[test]
    fn every_test_zone_reads_back_the_same() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        for (origin, file) in [
            ("example.test.", "example.test.zone"),
            ("signed.test.", "signed.test.zone"),
            ("signed.test.", "nsec3.signed.test.zone"),
        ] {
            let apex = name::parse_absolute(origin).unwrap();
            let z =
                crate::zone::load_zone_file(std::path::Path::new(&format!("{dir}{file}")), &apex)
                    .unwrap()
                    .zone;
            let text = zone_text(&z);
            let back = load_zone_str(&text, "copy", &apex)
                .unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
            assert_eq!(content_hash(&back), content_hash(&z), "{file}");
            assert_eq!(back.serial(), z.serial());
            assert_eq!(back.record_count(), z.record_count());
        }
    }
}
