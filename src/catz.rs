//! Catalog zones (RFC 9432): the member zones a version of a catalog zone
//! lists, with their properties, or why the version is not a valid catalog.
//! `lifecycles/members.rs` turns them into served zones.

use crate::zone::diff::Diff;
use crate::zone::{Node, Zone, name, rtype};
use std::collections::BTreeMap;

/// One member zone as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// The unique id: the label under `zones` (lower case).
    pub id: String,
    /// The member zone's name (canonical: lower case, trailing dot).
    pub name: String,
    /// `group.<id>.zones` (RFC 9432 §4.4.2), its first string.
    pub group: Option<String>,
    /// `coo.<id>.zones` (RFC 9432 §4.4.1): the catalog taking it over.
    pub coo: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("no version property (version.{0} TXT \"2\"); not a catalog (RFC 9432 §4.2.1)")]
    NoVersion(String),
    #[error("catalog version {0}: only version 2 (RFC 9432) is supported")]
    Version(String),
    #[error("member id {0}: {1} PTR records; a member has exactly one (RFC 9432 §4.3)")]
    PtrCount(String, usize),
    #[error("member {0} is listed under two ids ({1} and {2}) (RFC 9432 §4.3)")]
    Duplicate(String, String, String),
    #[error("member id {0} names the catalog zone itself")]
    ItsOwnMember(String),
}

/// The members `zone` (a version of catalog zone) lists, by name.
pub fn members(zone: &Zone) -> Result<BTreeMap<String, Member>, CatalogError> {
    let apex = zone.apex_key();
    let catalog = name::to_text(apex);
    let mut version: Option<String> = None;
    let mut by_id: BTreeMap<String, Member> = BTreeMap::new();
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    let mut coos: BTreeMap<String, String> = BTreeMap::new();
    for node in zone.nodes() {
        let mut lname = node.name().to_vec();
        name::lowercase(&mut lname);
        let Some(rel) = relative_labels(&lname, apex) else {
            continue;
        };
        match rel.as_slice() {
            [v] if v == "version" => version = first_txt(node),
            [id, z] if z == "zones" => {
                let ptrs: Vec<&[u8]> = node
                    .get(rtype::PTR)
                    .map(|s| s.iter().collect())
                    .unwrap_or_default();
                if ptrs.len() != 1 {
                    if ptrs.is_empty() && node.is_empty() {
                        continue;
                    }
                    return Err(CatalogError::PtrCount(id.clone(), ptrs.len()));
                }
                let mut target = ptrs[0].to_vec();
                name::lowercase(&mut target);
                if target == apex {
                    return Err(CatalogError::ItsOwnMember(id.clone()));
                }
                by_id.insert(
                    id.clone(),
                    Member {
                        id: id.clone(),
                        name: name::to_text(&target),
                        group: None,
                        coo: None,
                    },
                );
            }
            [p, id, z] if z == "zones" && p == "group" => {
                if let Some(g) = first_txt(node) {
                    groups.insert(id.clone(), g);
                }
            }
            [p, id, z] if z == "zones" && p == "coo" => {
                if let Some(t) = node.get(rtype::PTR).and_then(|s| s.iter().next()) {
                    let mut t = t.to_vec();
                    name::lowercase(&mut t);
                    coos.insert(id.clone(), name::to_text(&t));
                }
            }
            _ => {}
        }
    }
    match version.as_deref() {
        Some("2") => {}
        Some(v) => return Err(CatalogError::Version(v.to_string())),
        None => return Err(CatalogError::NoVersion(catalog)),
    }
    let mut by_name: BTreeMap<String, Member> = BTreeMap::new();
    for (id, mut m) in by_id {
        m.group = groups.remove(&id);
        m.coo = coos.remove(&id);
        if let Some(other) = by_name.get(&m.name) {
            return Err(CatalogError::Duplicate(
                m.name.clone(),
                other.id.clone(),
                id,
            ));
        }
        by_name.insert(m.name.clone(), m);
    }
    Ok(by_name)
}

/// The text of a produced catalog zone `catalog` listing `members` (name,
/// group): version 2, one PTR per member under a unique id that is the
/// first 64 bits of the SHA-256 of its name, so it stays the same across
/// restarts and a member removed and added again keeps its id. Serial 1:
/// the primary's serial policy moves it on when the content changes.
pub fn produce(catalog: &str, members: &[(String, Option<String>)]) -> String {
    let mut t = format!(
        "; written by tandem: the catalog of the primary zones that name it\n$ORIGIN {catalog}\n$TTL 0\n\
         @ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\nversion TXT \"2\"\n"
    );
    for (name, group) in members {
        let id = member_id(name);
        t += &format!("{id}.zones PTR {name}\n");
        if let Some(g) = group {
            // Printable ASCII only: the text goes into a zone file.
            let g: String = g
                .chars()
                .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '"' && *c != '\\')
                .collect();
            t += &format!("group.{id}.zones TXT \"{g}\"\n");
        }
    }
    t
}

/// A member's unique id in a produced catalog.
pub fn member_id(name: &str) -> String {
    let h = ring::digest::digest(&ring::digest::SHA256, name.to_ascii_lowercase().as_bytes());
    data_encoding::HEXLOWER.encode(&h.as_ref()[..8])
}

/// The `coo` properties (member id → new owner catalog) added by
/// `changes` (oldest first; a later one wins) to the catalog at `apex`
/// (lower-cased wire form). A consumer reads only the latest version of a
/// catalog, so a `coo` that was added and then removed with its member
/// between two looks would otherwise never be seen (RFC 9432 §5.6).
pub fn coo_added(apex: &[u8], changes: &[std::sync::Arc<Diff>]) -> BTreeMap<String, String> {
    let mut coo = BTreeMap::new();
    for rr in changes.iter().flat_map(|d| d.added.iter()) {
        if rr.rtype != rtype::PTR {
            continue;
        }
        let mut owner = rr.owner.to_vec();
        name::lowercase(&mut owner);
        if let Some(labels) = relative_labels(&owner, apex)
            && let [p, id, z] = labels.as_slice()
            && p == "coo"
            && z == "zones"
        {
            let mut target = rr.rdata.to_vec();
            name::lowercase(&mut target);
            coo.insert(id.clone(), name::to_text(&target));
        }
    }
    coo
}

/// The labels of `lname` above `apex`, top-down from the apex (`a.b.apex`
/// gives `[a, b]`), as text; None outside or at the apex.
fn relative_labels(lname: &[u8], apex: &[u8]) -> Option<Vec<String>> {
    if lname.len() <= apex.len() || !lname.ends_with(apex) {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 0;
    while i < lname.len() - apex.len() {
        let len = lname[i] as usize;
        let label = lname.get(i + 1..i + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        i += len + 1;
    }
    Some(labels)
}

fn first_txt(node: Node) -> Option<String> {
    let rd = node.get(rtype::TXT)?.iter().next()?;
    let len = *rd.first()? as usize;
    Some(String::from_utf8_lossy(rd.get(1..1 + len)?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::load_zone_str;

    fn cat(body: &str) -> Result<BTreeMap<String, Member>, CatalogError> {
        let z = load_zone_str(
            &format!("$TTL 0\n@ SOA invalid. h 1 1 1 1 1\n NS invalid.\n{body}"),
            "cat",
            b"\x03cat\x00",
        )
        .unwrap();
        members(&z)
    }

    #[test]
    fn members_groups_and_coo_are_read() {
        let m = cat("version TXT \"2\"\nx1.zones PTR A.example.\ngroup.x1.zones TXT \"blue\"\nx2.zones PTR b.example.\ncoo.x2.zones PTR other.cat.\n").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["a.example."].id, "x1");
        assert_eq!(m["a.example."].group.as_deref(), Some("blue"));
        assert_eq!(m["b.example."].coo.as_deref(), Some("other.cat."));
    }

    #[test]
    fn coo_added_by_changes_is_found() {
        let rr = |owner: &[u8], rtype: u16, rdata: &[u8]| crate::zone::diff::Rr {
            owner: owner.into(),
            rtype,
            ttl: 0,
            rdata: rdata.into(),
        };
        let soa = rr(b"\x03cat\x00", rtype::SOA, b"");
        let change = Diff {
            from: soa.clone(),
            to: soa,
            deleted: vec![],
            added: vec![
                rr(
                    b"\x03COO\x02x2\x05zones\x03cat\x00",
                    rtype::PTR,
                    b"\x05Other\x03cat\x00",
                ),
                // Not a coo: a member PTR, and a coo of another catalog.
                rr(b"\x02x3\x05zones\x03cat\x00", rtype::PTR, b"\x01c\x00"),
                rr(
                    b"\x03coo\x02x4\x05zones\x03dog\x00",
                    rtype::PTR,
                    b"\x01d\x00",
                ),
            ],
        };
        let coo = coo_added(b"\x03cat\x00", &[std::sync::Arc::new(change)]);
        assert_eq!(coo.len(), 1, "{coo:?}");
        assert_eq!(coo["x2"], "other.cat.");
    }

    #[test]
    fn a_produced_catalog_reads_back_with_stable_ids() {
        let text = produce(
            "cat.",
            &[
                ("a.example.".into(), Some("blue".into())),
                ("b.example.".into(), None),
            ],
        );
        let z = load_zone_str(&text, "cat", b"\x03cat\x00").unwrap();
        let m = members(&z).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["a.example."].group.as_deref(), Some("blue"));
        assert_eq!(m["a.example."].id, member_id("A.example."));
        assert_ne!(m["a.example."].id, m["b.example."].id);
    }

    #[test]
    fn invalid_catalogs_say_why() {
        assert!(matches!(
            cat("x.zones PTR a.example.\n"),
            Err(CatalogError::NoVersion(_))
        ));
        assert_eq!(
            cat("version TXT \"1\"\n"),
            Err(CatalogError::Version("1".into()))
        );
        assert!(matches!(
            cat("version TXT \"2\"\nx.zones PTR a.example.\ny.zones PTR A.example.\n"),
            Err(CatalogError::Duplicate(..))
        ));
        assert!(matches!(
            cat("version TXT \"2\"\nx.zones PTR a.example.\nx.zones PTR b.example.\n"),
            Err(CatalogError::PtrCount(..))
        ));
        assert!(matches!(
            cat("version TXT \"2\"\nx.zones PTR cat.\n"),
            Err(CatalogError::ItsOwnMember(_))
        ));
        assert_eq!(cat("version TXT \"2\"\n").map(|m| m.len()), Ok(0));
    }
}
