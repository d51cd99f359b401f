//! Records in master-file format, for the secondary's copy of a zone. Known
//! types are written as people read them (the type table's printer); the
//! rest in RFC 3597 generic form (`TYPEnnn \# len hex`). Both read back exactly.

use crate::zone::diff::Rr;
use crate::zone::rdata::print;
use crate::zone::{Zone, name, rtype};
use std::fmt::Write;

/// One record as a master-file line (absolute owner, TTL, IN, type, rdata).
pub fn record_line(r: &Rr, out: &mut String) {
    let _ = write!(out, "{} {} IN ", name::to_text(&r.owner), r.ttl);
    print::type_and_rdata(r.rtype, &r.rdata, out);
    out.push('\n');
}

/// The whole zone, SOA first.
pub fn zone_text(z: &Zone) -> String {
    let mut out = String::with_capacity(z.record_count() * 48 + 64);
    out.push_str("; written by tandem: the secondary's copy of the zone\n");
    record_line(&z.soa_rr(), &mut out);
    let mut apex = z.origin().to_vec();
    name::lowercase(&mut apex);
    for node in z.nodes() {
        let at_apex = node.name().eq_ignore_ascii_case(&apex);
        for set in node.rrsets() {
            if at_apex && set.rtype == rtype::SOA {
                continue;
            }
            for rd in set.iter() {
                let r = Rr {
                    owner: node.name().into(),
                    rtype: set.rtype,
                    ttl: set.ttl,
                    rdata: rd.into(),
                };
                record_line(&r, &mut out);
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
