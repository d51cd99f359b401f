//! Zone transfers and NOTIFY, in and out, whatever the zone's role: the
//! transfer side of the server. The query path (`query/`) knows nothing of
//! it; the lifecycles (`primary/`, `secondary/`) use it.

pub mod acl;
pub mod client;
pub mod encode;
pub mod error;
pub mod follower;
pub mod journal;
pub mod notify_in;
pub mod notify_out;
pub mod out;
pub mod reader;
pub mod tsig;

/// A message ID for a query or NOTIFY of ours: from the OS's random source,
/// so that nobody can predict it from the clock (RFC 5452 §4.3).
pub fn message_id() -> u16 {
    let mut b = [0u8; 2];
    // getrandom fails only where the OS has no random source at all.
    if getrandom::getrandom(&mut b).is_err() {
        b = (crate::clock::unix_secs() as u16).to_be_bytes();
    }
    u16::from_be_bytes(b)
}

/// A wire name (uncompressed, as the store keeps it) as hickory's `Name`,
/// for the messages hickory encodes: SOA queries, TSIG records.
pub fn hickory_name(wire: &[u8]) -> Option<hickory_proto::rr::Name> {
    let mut labels = Vec::new();
    let mut i = 0;
    while *wire.get(i)? != 0 {
        let l = wire[i] as usize;
        labels.push(wire.get(i + 1..i + 1 + l)?);
        i += l + 1;
    }
    hickory_proto::rr::Name::from_labels(labels).ok()
}
