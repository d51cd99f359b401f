//! DNSSEC-signed test zones made at test time with BIND's `dnssec-keygen`
//! and `dnssec-signzone` (ECDSAP256SHA256, signatures valid for ten years):
//! a parent zone `<flavour>.judge.` with a secure child (signed, DS in the
//! parent) and two insecure children (no DS, one of them under an empty
//! non-terminal), in three flavours: NSEC, NSEC3 (no salt, 0 iterations,
//! RFC 9276) and NSEC3 with opt-out.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Nsec,
    Nsec3,
    Nsec3OptOut,
}

impl Flavour {
    pub const ALL: [Flavour; 3] = [Flavour::Nsec, Flavour::Nsec3, Flavour::Nsec3OptOut];

    /// The first label of the parent zone's name.
    pub fn label(self) -> &'static str {
        match self {
            Flavour::Nsec => "nsec",
            Flavour::Nsec3 => "nsec3",
            Flavour::Nsec3OptOut => "optout",
        }
    }

    fn signzone_args(self) -> &'static [&'static str] {
        match self {
            Flavour::Nsec => &[],
            // No salt, no extra iterations (RFC 9276 §3.1).
            Flavour::Nsec3 => &["-3", "-", "-H", "0"],
            Flavour::Nsec3OptOut => &["-3", "-", "-H", "0", "-A"],
        }
    }
}

/// The parent zone's records (relative to its origin; SOA and DNSKEY are
/// added when it is written, the secure child's DS when it is signed).
/// `b.c` and `c` are empty non-terminals, `*.w` a wildcard with a real
/// sibling `x.w`; `secure` is a signed child, `insecure` and `d.ent` are
/// unsigned ones (`ent`, above `d.ent` only, is an empty non-terminal that
/// opt-out leaves without an NSEC3). Names below `dn` and `dnw` are
/// redirected by DNAME to below the empty non-terminal `c` and to the
/// wildcard's parent `w`.
pub const PARENT_BODY: &str = "\
@ NS ns1
@ MX 10 mail
@ TXT \"apex of the judged zone\"
ns1 A 127.0.0.1
mail A 192.0.2.25
www A 192.0.2.80
www AAAA 2001:db8::80
www TXT \"www\"
a.b.c A 192.0.2.3
a.b.c AAAA 2001:db8::3
*.w A 192.0.2.99
*.w TXT \"wildcard\"
x.w A 192.0.2.98
cname CNAME www
dangling CNAME nothere
wcname CNAME foo.w
dn DNAME c
dnw DNAME w
secure NS ns.secure
ns.secure A 127.0.0.1
insecure NS ns.insecure
ns.insecure A 127.0.0.1
d.ent NS ns.d.ent
ns.d.ent A 127.0.0.1
";

/// Every child zone's records (relative to its origin); `b` is an empty
/// non-terminal.
pub const CHILD_BODY: &str = "\
@ NS ns
ns A 127.0.0.1
www A 192.0.2.10
a.b A 192.0.2.11
";

/// The children: (first labels below the parent, signed).
pub const CHILDREN: &[(&str, bool)] = &[("secure", true), ("insecure", false), ("d.ent", false)];

/// One zone as written: origin, file, whether it is signed, and the owner
/// names of its records (absolute, lower case, empty non-terminals not
/// included).
#[derive(Clone, Debug)]
pub struct TestZone {
    pub origin: String,
    pub file: PathBuf,
    pub signed: bool,
    pub owners: Vec<String>,
}

/// A signed set of zones: the parent first, then its children.
#[derive(Clone, Debug)]
pub struct SignedZones {
    pub flavour: Flavour,
    pub parent: String,
    pub zones: Vec<TestZone>,
    /// The parent's DS, as Unbound's `trust-anchor:` takes it.
    pub trust_anchors: Vec<String>,
}

impl SignedZones {
    /// (origin, file) of every zone, for a server's configuration.
    pub fn files(&self) -> Vec<(&str, PathBuf)> {
        self.zones
            .iter()
            .map(|z| (z.origin.as_str(), z.file.clone()))
            .collect()
    }

    /// The owner names of the NSEC3 records of `origin`'s signed file.
    pub fn nsec3_owners(&self, origin: &str) -> Vec<String> {
        let z = self
            .zones
            .iter()
            .find(|z| z.origin == origin)
            .expect("zone in the set");
        let text = std::fs::read_to_string(&z.file).expect("read signed zone");
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let owner = f.next()?;
                f.any(|t| t == "NSEC3")
                    .then(|| owner.to_ascii_lowercase())
                    .filter(|o| o.ends_with(origin))
            })
            .collect()
    }
}

/// A change to the parent's records before it is signed again.
#[derive(Clone, Debug, Default)]
pub struct Edit {
    /// Records (relative owner names) added.
    pub add: Vec<String>,
    /// Owner names (relative) whose records are all removed.
    pub remove: Vec<String>,
}

/// Keys for one flavour's zones, made once, and the folder the signed
/// files are written to.
pub struct Signer {
    pub flavour: Flavour,
    pub parent: String,
    dir: PathBuf,
    keys: PathBuf,
    children: std::cell::RefCell<std::collections::BTreeMap<String, TestZone>>,
}

impl Signer {
    /// Makes a key for the parent and for each signed child in `dir/keys`.
    pub fn new(dir: &Path, flavour: Flavour) -> Signer {
        let keys = dir.join("keys");
        std::fs::create_dir_all(&keys).expect("keys dir");
        std::fs::create_dir_all(dir.join("stage")).expect("stage dir");
        let s = Signer {
            flavour,
            parent: format!("{}.judge.", flavour.label()),
            dir: dir.to_path_buf(),
            keys,
            children: Default::default(),
        };
        for origin in s.signed_origins() {
            let out = run(
                Command::new("dnssec-keygen")
                    .args([
                        "-q",
                        "-a",
                        "ECDSAP256SHA256",
                        "-f",
                        "KSK",
                        "-n",
                        "ZONE",
                        "-K",
                    ])
                    .arg(&s.keys)
                    .arg(&origin),
                "dnssec-keygen (bind9-utils)",
            );
            let base = out.trim();
            std::fs::write(s.keys.join(format!("{origin}base")), base).expect("key name");
        }
        s
    }

    fn signed_origins(&self) -> Vec<String> {
        let mut v = vec![self.parent.clone()];
        for (label, signed) in CHILDREN {
            if *signed {
                v.push(format!("{label}.{}", self.parent));
            }
        }
        v
    }

    /// The key file (`K….key`) of `origin`.
    fn key_file(&self, origin: &str) -> PathBuf {
        let base = std::fs::read_to_string(self.keys.join(format!("{origin}base")))
            .expect("key made for this zone");
        self.keys.join(format!("{base}.key"))
    }

    fn ds(&self, origin: &str) -> String {
        run(
            Command::new("dnssec-dsfromkey")
                .args(["-2"])
                .arg(self.key_file(origin)),
            "dnssec-dsfromkey (bind9-utils)",
        )
        .trim()
        .to_string()
    }

    /// Writes every zone (the parent at `serial` with `edit` applied, the
    /// children at serial 1 the first time only: they never change),
    /// signing the signed ones; each file is written in
    /// `stage/` and renamed into place, so a server watching it never reads
    /// half a file.
    pub fn sign(&self, serial: u32, edit: &Edit) -> SignedZones {
        let mut zones = Vec::new();
        let mut body = String::new();
        for line in PARENT_BODY.lines() {
            let owner = line.split_whitespace().next().unwrap_or("");
            if !edit.remove.iter().any(|r| r == owner) {
                body.push_str(line);
                body.push('\n');
            }
        }
        for line in &edit.add {
            body.push_str(line);
            body.push('\n');
        }
        for (label, signed) in CHILDREN {
            if *signed {
                body.push_str(&self.ds(&format!("{label}.{}", self.parent)));
                body.push('\n');
            }
        }
        zones.push(self.write_zone(&self.parent, serial, &body, true));
        for (label, signed) in CHILDREN {
            let origin = format!("{label}.{}", self.parent);
            zones.push(match self.children.borrow().get(&origin) {
                Some(z) => z.clone(),
                None => self.write_zone(&origin, 1, CHILD_BODY, *signed),
            });
        }
        for z in &zones[1..] {
            self.children
                .borrow_mut()
                .insert(z.origin.clone(), z.clone());
        }
        let anchor = self.ds(&self.parent);
        SignedZones {
            flavour: self.flavour,
            parent: self.parent.clone(),
            zones,
            trust_anchors: vec![anchor],
        }
    }

    fn write_zone(&self, origin: &str, serial: u32, body: &str, signed: bool) -> TestZone {
        let soa = if origin == self.parent {
            "@ SOA ns1 hostmaster"
        } else {
            "@ SOA ns hostmaster"
        };
        let mut text =
            format!("$ORIGIN {origin}\n$TTL 300\n{soa} {serial} 3600 600 86400 60\n{body}");
        let owners = owners(origin, &text);
        let file = self.dir.join(format!("{origin}zone"));
        let stage = self.dir.join("stage");
        let staged = stage.join(format!("{origin}signed"));
        if signed {
            let key = self.key_file(origin);
            text.push_str(&std::fs::read_to_string(&key).expect("read key"));
            let unsigned = stage.join(format!("{origin}unsigned"));
            std::fs::write(&unsigned, text).expect("write unsigned zone");
            run(
                Command::new("dnssec-signzone")
                    .args(["-q", "-z", "-e", "+315360000", "-N", "keep", "-d"])
                    // dsset- files go there, not to the current directory.
                    .arg(&stage)
                    .args(self.flavour.signzone_args())
                    .arg("-K")
                    .arg(&self.keys)
                    .args(["-o", origin, "-f"])
                    .arg(&staged)
                    .arg(&unsigned)
                    .arg(&key),
                "dnssec-signzone (bind9-utils)",
            );
        } else {
            std::fs::write(&staged, text).expect("write zone");
        }
        std::fs::rename(&staged, &file).expect("rename zone into place");
        TestZone {
            origin: origin.to_string(),
            file,
            signed,
            owners,
        }
    }
}

/// The owner names of a zone text's records (first field; `@` is the origin).
fn owners(origin: &str, text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('$') && !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(|o| match o {
            "@" => origin.to_string(),
            o if o.ends_with('.') => o.to_ascii_lowercase(),
            o => format!("{}.{origin}", o.to_ascii_lowercase()),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Runs a tool; its stdout, or a panic with its stderr.
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} is installed: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
