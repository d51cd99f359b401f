//! NOTIFY in (RFC 1996): for a secondary zone, from a source its policy
//! allows (with the zone's key, if it has one), the zone's task is told to
//! check its primary now. Anything else is refused and logged (rate-limited).

use crate::catalog::Catalog;
use crate::query::request::{AA, Request, rcode};
use crate::query::writer::Writer;
use crate::stats::METRICS;
use crate::xfr::acl;
use crate::zone::name;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

/// The body of the answer to a NOTIFY; returns the rcode.
pub fn answer(
    catalog: &Catalog,
    q: &Request,
    w: &mut Writer,
    peer: IpAddr,
    key: Option<&[u8]>,
) -> u16 {
    let zname = || name::to_text(q.qname);
    let Some(served) = acl::zone_at_apex(catalog, q.qname) else {
        crate::warn_limited!(zone = %zname(), %peer, rcode = "NOTAUTH", "NOTIFY for a zone not served here");
        return rcode::NOTAUTH;
    };
    let Some(to_secondary) = served.notify_in.as_ref() else {
        crate::warn_limited!(zone = %zname(), %peer, rcode = "NOTAUTH", "NOTIFY for a primary zone");
        return rcode::NOTAUTH;
    };
    if !acl::allows(&served.policy.allow_notify, peer) || !served.policy.key_ok(key) {
        let key = key.map_or("none".to_string(), name::to_text);
        crate::warn_limited!(zone = %zname(), %peer, %key, rcode = "REFUSED", "NOTIFY from a source not in allow_notify (or without the zone's key); ignored");
        METRICS.notify_refused.fetch_add(1, Relaxed);
        return rcode::REFUSED;
    }
    METRICS.notify_received.fetch_add(1, Relaxed);
    let _ = to_secondary.send(peer);
    w.set_flags(w.flags() | AA);
    rcode::NOERROR
}
