//! tandem reads every test zone to the same records as BIND: each file is
//! compared with its `named-checkzone -D` expansion (one absolute record per
//! line, $GENERATE and $INCLUDE already applied by BIND).

mod common;

use common::peers::expand_zone;
use common::*;
use std::collections::BTreeSet;
use tandem::zone::{Zone, load_zone_file, name};

fn records(z: &Zone) -> BTreeSet<(String, u16, u32, Vec<u8>)> {
    let mut out = BTreeSet::new();
    for node in z.nodes() {
        let owner = name::to_text(node.name()).to_ascii_lowercase();
        for set in node.rrsets() {
            for rd in set.iter() {
                out.insert((owner.clone(), set.rtype, set.ttl, rd.to_vec()));
            }
        }
    }
    out
}

#[test]
#[ignore = "needs bind9-utils (named-checkzone)"]
fn every_test_zone_reads_as_bind_reads_it() {
    let work = tempfile::tempdir().unwrap();
    let mut zones: Vec<(&str, &str)> = TEST_ZONES.to_vec();
    zones.push(("signed.test.", "nsec3.signed.test.zone"));
    for (origin, file) in zones {
        let apex = name::parse_absolute(origin).unwrap();
        let ours = load_zone_file(&data(file), &apex).unwrap().zone;
        let expanded = work.path().join(file);
        expand_zone(origin, &data(file), &expanded);
        let bind = load_zone_file(&expanded, &apex).unwrap().zone;
        let (a, b) = (records(&ours), records(&bind));
        let only_ours: Vec<_> = a.difference(&b).take(5).collect();
        let only_bind: Vec<_> = b.difference(&a).take(5).collect();
        assert!(
            only_ours.is_empty() && only_bind.is_empty(),
            "{file}: only tandem {only_ours:?}, only BIND {only_bind:?}"
        );
        assert_eq!(ours.serial(), bind.serial());
        assert!(a.len() > 3, "{file}");
    }
}
