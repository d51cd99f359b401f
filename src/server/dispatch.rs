//! Every request the sockets receive, routed: parsed once
//! (`query::request`), its TSIG verified from that parse when it carries
//! one (`xfr::tsig`), then answered by the query path, NOTIFY-in
//! (`xfr::notify_in`) or, for IXFR over UDP, the transfer side; a signed
//! request gets a signed answer. AXFR and IXFR over TCP are streamed by
//! `tcp.rs` through `xfr::out` from the same parse.

use crate::catalog::Catalog;
use crate::query::edns::Cookie;
use crate::query::request::{self, QR, Reject, Request, opcode, rcode};
use crate::query::writer::Writer;
use crate::query::{self, Transport};
use crate::xfr::tsig::{self, SharedKeyring};
use crate::xfr::{acl, notify_in, out};
use crate::zone::rtype;
use std::net::IpAddr;

/// What answering needs besides the catalog: the query path's options,
/// the keyring and the TLS listener's certificate, all swapped on config
/// reload.
#[derive(Default)]
pub struct Options {
    pub query: query::Options,
    pub keys: SharedKeyring,
    /// New TLS connections use what is here at their handshake; those in
    /// flight keep theirs.
    pub tls: arc_swap::ArcSwapOption<rustls::ServerConfig>,
}

/// Answers one request into `out` (at least 65535 bytes for TCP). Returns the
/// response length, or `None` when the request must be dropped.
pub fn answer(
    catalog: &Catalog,
    req: &[u8],
    out: &mut [u8],
    tr: Transport,
    peer: IpAddr,
    opts: &Options,
) -> Option<usize> {
    answer_judged(catalog, req, out, tr, peer, opts).map(|a| a.len)
}

/// A response, and what the request proved.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub len: usize,
    /// The request carried a valid server cookie of ours (RFC 7873 §5.2.3):
    /// its source address is not spoofed, so rate limiting lets it through.
    pub cookie_valid: bool,
}

/// As `answer`, saying also whether the request's server cookie was valid.
pub fn answer_judged(
    catalog: &Catalog,
    req: &[u8],
    out: &mut [u8],
    tr: Transport,
    peer: IpAddr,
    opts: &Options,
) -> Option<Answered> {
    let parsed = match request::parse_request(req) {
        Ok(r) => r,
        Err(Reject::Drop) => return None,
        Err(Reject::Rcode(rc)) => {
            return Some(Answered {
                len: query::bare_error(req, out, rc),
                cookie_valid: false,
            });
        }
    };
    let cookie = Cookie::check(&parsed, peer, &opts.query);
    let len = if parsed.signed() {
        answer_signed(catalog, req, &parsed, out, tr, peer, opts, &cookie)?
    } else {
        route(catalog, &parsed, out, tr, peer, opts, &cookie, None)
    };
    Some(Answered {
        len,
        cookie_valid: cookie.valid(),
    })
}

/// The reply to an unsigned request, or to a signed one whose TSIG verified
/// with the key `key` (lower-cased wire name).
#[allow(clippy::too_many_arguments)]
fn route(
    catalog: &Catalog,
    q: &Request,
    out: &mut [u8],
    tr: Transport,
    peer: IpAddr,
    opts: &Options,
    cookie: &Cookie,
    key: Option<&[u8]>,
) -> usize {
    let signed = key.is_some();
    query::respond(q, out, tr, &opts.query, signed, cookie, |w| {
        match cookie {
            Cookie::Malformed => return rcode::FORMERR,
            // RFC 7873 §5.4: no question, only a cookie: NOERROR with the
            // server cookie, as BIND answers it (before any BADCOOKIE).
            _ if q.question.is_empty() => return rcode::NOERROR,
            // As BIND's `require-server-cookie`: over UDP, a client that
            // sent a cookie but no valid server cookie gets BADCOOKIE and
            // the server cookie to retry with (RFC 7873 §5.2.3); TCP proves
            // the address already.
            Cookie::Answer { valid: false, .. }
                if tr == Transport::Udp && opts.query.edns.load().require_server_cookie =>
            {
                return rcode::BADCOOKIE;
            }
            _ => {}
        }
        match (q.opcode, q.qtype) {
            (opcode::NOTIFY, _) => notify_in::answer(catalog, q, w, peer, key),
            (_, rtype::IXFR) => out::ixfr_over_udp(catalog, q, w, peer, key),
            _ => {
                note_follower(catalog, q, peer);
                query::lookup(catalog, q, w, tr, &opts.query)
            }
        }
    })
}

/// A host allowed to transfer the zone that asks its SOA is a follower
/// checking its serial: `status` shows when it last did. Resolvers asking
/// SOA are not counted, so they cannot fill the table.
fn note_follower(catalog: &Catalog, q: &Request, peer: IpAddr) {
    if q.qtype == rtype::SOA
        && let Some(served) = acl::zone_at_apex(catalog, q.qname)
        && acl::allows(&served.policy.allow_transfer, peer)
    {
        served.status.follower_seen(peer, None);
    }
}

/// The slow path for TSIG-signed requests: verify, answer, sign.
#[allow(clippy::too_many_arguments)]
fn answer_signed(
    catalog: &Catalog,
    req: &[u8],
    parsed: &Request,
    out: &mut [u8],
    tr: Transport,
    peer: IpAddr,
    opts: &Options,
    cookie: &Cookie,
) -> Option<usize> {
    let now = crate::clock::unix_secs();
    let mut msg = match tsig::verify(&opts.keys.load(), req, parsed, now) {
        Ok(v) => {
            let n = route(catalog, parsed, out, tr, peer, opts, cookie, Some(&v.key));
            let mut msg = out[..n].to_vec();
            tsig::sign_response(&v, &mut msg, now)?;
            msg
        }
        Err(f) => {
            crate::warn_limited!(%peer, "refused signed request: {}", f.describe());
            let rc = if matches!(f, tsig::Failure::Malformed) {
                rcode::FORMERR
            } else {
                rcode::NOTAUTH
            };
            let mut w = Writer::new(out, 512);
            w.header(parsed.id, QR | (parsed.flags & 0x7800) | rc);
            let _ = w.question(parsed.question);
            let n = w.finish();
            let mut msg = out[..n].to_vec();
            tsig::error_response(&f, &mut msg, now);
            msg
        }
    };
    msg.truncate(out.len());
    out[..msg.len()].copy_from_slice(&msg);
    Some(msg.len())
}
