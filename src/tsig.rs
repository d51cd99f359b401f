//! TSIG (RFC 8945) on top of hickory-proto: verifying signed requests,
//! signing responses (chained across the messages of a transfer), signing
//! outgoing requests, and the error answers BADKEY, BADSIG and BADTIME.

use crate::config::{Algorithm, Key};
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use std::str::FromStr;

/// Seconds of clock difference tolerated (RFC 8945 recommends 300).
pub const FUDGE: u16 = 300;

/// The configured keys, each with its name in lower-cased wire form (how
/// zones name the key they want: compared in wire form, not as spelled).
/// Swapped whole on config reload; whoever signs looks the key up when it
/// signs, so a new secret reaches every zone at once.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Vec<(Box<[u8]>, TSigner)>,
}

/// The keyring every part of the server reads, swapped on reload.
pub type SharedKeyring = std::sync::Arc<arc_swap::ArcSwap<Keyring>>;

/// A key name as lower-cased wire form.
pub fn wire_key_name(canonical: &str) -> Option<Box<[u8]>> {
    let mut w = crate::zone::name::parse_absolute(canonical).ok()?;
    crate::zone::name::lowercase(&mut w);
    Some(w.into())
}

impl Keyring {
    pub fn from_config(keys: &[Key]) -> Result<Keyring, String> {
        let mut ring = Keyring::default();
        for k in keys {
            let alg = match k.algorithm {
                Algorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
                Algorithm::HmacSha384 => TsigAlgorithm::HmacSha384,
                Algorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
            };
            let name = Name::from_str(&k.name).map_err(|e| format!("key {}: {e}", k.name))?;
            let signer = TSigner::new(k.secret.clone(), alg, name, FUDGE)
                .map_err(|e| format!("key {}: {e}", k.name))?;
            let wire = wire_key_name(&k.name).ok_or_else(|| format!("key {}: bad name", k.name))?;
            ring.keys.push((wire, signer));
        }
        Ok(ring)
    }

    /// The key whose lower-cased wire name is `wire`.
    pub fn get(&self, wire: &[u8]) -> Option<&TSigner> {
        self.keys.iter().find(|(w, _)| **w == *wire).map(|(_, s)| s)
    }

    fn find(&self, name: &Name, alg: &TsigAlgorithm) -> Option<(&[u8], &TSigner)> {
        self.keys
            .iter()
            .find(|(_, s)| s.signer_name() == name && s.algorithm() == alg)
            .map(|(w, s)| (&w[..], s))
    }
}

/// A request whose TSIG verified.
#[derive(Clone)]
pub struct Verified {
    pub signer: TSigner,
    /// The key's lower-cased wire name.
    pub key: Box<[u8]>,
    pub mac: Vec<u8>,
    pub id: u16,
}

impl Verified {
    pub fn key_name(&self) -> String {
        self.signer.signer_name().to_string()
    }
}

/// Why a signed request was not accepted.
pub enum Failure {
    /// Not even readable as a message with a final TSIG: FORMERR.
    Malformed,
    BadKey {
        key_name: Name,
        id: u16,
    },
    BadSig {
        signer: TSigner,
        id: u16,
    },
    BadTime {
        signer: TSigner,
        mac: Vec<u8>,
        id: u16,
        time: u64,
    },
}

impl Failure {
    pub fn describe(&self) -> String {
        match self {
            Failure::Malformed => "malformed TSIG".into(),
            Failure::BadKey { key_name, .. } => format!("unknown TSIG key {key_name} (BADKEY)"),
            Failure::BadSig { signer, .. } => format!(
                "TSIG MAC does not verify with key {} (BADSIG)",
                signer.signer_name()
            ),
            Failure::BadTime { signer, .. } => format!(
                "TSIG time outside the fudge with key {} (BADTIME)",
                signer.signer_name()
            ),
        }
    }
}

/// Verifies the TSIG that ends `req` (RFC 8945 §5.2).
pub fn verify(keys: &Keyring, req: &[u8], now: u64) -> Result<Verified, Failure> {
    let msg = Message::from_vec(req).map_err(|_| Failure::Malformed)?;
    let sig = msg.signature().ok_or(Failure::Malformed)?;
    let id = msg.metadata.id;
    let Some((key, signer)) = keys.find(&sig.name, &sig.data.algorithm) else {
        return Err(Failure::BadKey {
            key_name: sig.name.clone(),
            id,
        });
    };
    let (mac, time, range) = match signer.verify_message_byte(req, None, true) {
        Ok(v) => v,
        Err(_) => {
            return Err(Failure::BadSig {
                signer: signer.clone(),
                id,
            });
        }
    };
    if !range.contains(&now) && now != range.end {
        return Err(Failure::BadTime {
            signer: signer.clone(),
            mac,
            id,
            time,
        });
    }
    Ok(Verified {
        signer: signer.clone(),
        key: key.into(),
        mac,
        id,
    })
}

/// Appends a record to a message (hickory's encoder writes from offset 0,
/// so the record is encoded on its own first).
fn append_record(msg: &mut Vec<u8>, rr: &hickory_proto::rr::Record<TSIG>) -> bool {
    let mut bytes = Vec::new();
    if rr.emit(&mut BinEncoder::new(&mut bytes)).is_err() || msg.len() < 12 {
        return false;
    }
    msg.extend_from_slice(&bytes);
    let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
    true
}

/// Signs the single response (or first message of a stream) to a verified
/// request; returns the MAC for chaining.
pub fn sign_response(v: &Verified, msg: &mut Vec<u8>, now: u64) -> Option<Vec<u8>> {
    let ctx = TSigResponseContext::new(v.id, now, v.signer.clone(), v.mac.clone(), None);
    let rr = ctx.sign(msg).ok()?;
    let mac = rr.data.mac.clone();
    append_record(msg, &rr).then_some(mac)
}

/// Signs a later message of a multi-message response (RFC 8945 §5.3.1): the
/// MAC covers the previous MAC, this message and the timers only.
pub fn sign_next(v: &Verified, prev_mac: &[u8], msg: &mut Vec<u8>, now: u64) -> Option<Vec<u8>> {
    let mut tbs = Vec::with_capacity(msg.len() + prev_mac.len() + 10);
    tbs.extend_from_slice(&(prev_mac.len() as u16).to_be_bytes());
    tbs.extend_from_slice(prev_mac);
    tbs.extend_from_slice(msg);
    tbs.extend_from_slice(&((now >> 32) as u16).to_be_bytes());
    tbs.extend_from_slice(&(now as u32).to_be_bytes());
    tbs.extend_from_slice(&FUDGE.to_be_bytes());
    let mac = v.signer.sign(&tbs).ok()?;
    let tsig = TSIG::new(
        v.signer.algorithm().clone(),
        now,
        FUDGE,
        mac.clone(),
        v.id,
        None,
        Vec::new(),
    );
    let rr = make_tsig_record(v.signer.signer_name().clone(), tsig);
    append_record(msg, &rr).then_some(mac)
}

/// Signs an outgoing request (a NOTIFY, later SOA/IXFR/AXFR queries); returns
/// the MAC the response will be chained to.
pub fn sign_request(signer: &TSigner, msg: &mut Vec<u8>, now: u64) -> Option<Vec<u8>> {
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let stub = TSIG::new(
        signer.algorithm().clone(),
        now,
        signer.fudge(),
        Vec::new(),
        id,
        None,
        Vec::new(),
    );
    // hickory's encoder writes from offset 0: encode the variables apart.
    let mut vars = Vec::new();
    stub.emit_tsig_for_mac(&mut BinEncoder::new(&mut vars), signer.signer_name())
        .ok()?;
    let mut tbs = msg.clone();
    tbs.extend_from_slice(&vars);
    let mac = signer.sign(&tbs).ok()?;
    let rr = make_tsig_record(signer.signer_name().clone(), stub.set_mac(mac.clone()));
    append_record(msg, &rr).then_some(mac)
}

/// Completes an error response (header and question already in `msg`, rcode
/// NOTAUTH) with the TSIG the RFC asks for: unsigned for BADKEY and BADSIG,
/// signed with the server's time in Other Data for BADTIME.
pub fn error_response(f: &Failure, msg: &mut Vec<u8>, now: u64) {
    match f {
        Failure::Malformed => {}
        Failure::BadKey { key_name, id } => {
            if let Ok(rr) = TSigResponseContext::unknown_key(*id, now, key_name.clone()).sign(msg) {
                append_record(msg, &rr);
            }
        }
        Failure::BadSig { signer, id } => {
            if let Ok(rr) = TSigResponseContext::bad_signature(*id, now, signer.clone()).sign(msg) {
                append_record(msg, &rr);
            }
        }
        Failure::BadTime {
            signer,
            mac,
            id,
            time,
        } => {
            let other = now.to_be_bytes()[2..].to_vec();
            let stub = TSIG::new(
                signer.algorithm().clone(),
                *time,
                FUDGE,
                Vec::new(),
                *id,
                Some(TsigError::BadTime),
                other,
            );
            let Ok(tbs) = signer.encode_response_tbs(mac, msg, &stub) else {
                return;
            };
            let Ok(m) = signer.sign(&tbs) else { return };
            let rr = make_tsig_record(signer.signer_name().clone(), stub.set_mac(m));
            append_record(msg, &rr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify() {
        let signer = TSigner::new(
            b"secret".to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_str("k.").unwrap(),
            FUDGE,
        )
        .unwrap();
        let soa = crate::zone::diff::Rr {
            owner: (*b"\x01t\x00").into(),
            rtype: 6,
            ttl: 60,
            rdata: (*b"\x02ns\x01t\x00\x01h\x01t\x00\x00\x00\x00\x07\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01").into(),
        };
        let mut msg = crate::primary::notify::message(b"\x01t\x00", &soa, 77);
        let unsigned = msg.clone();
        sign_request(&signer, &mut msg, crate::clock::unix_secs()).unwrap();
        let (tbs, _) =
            hickory_proto::rr::rdata::tsig::signed_bitmessage_to_buf(&msg, None, true).unwrap();
        assert_eq!(&tbs[..unsigned.len()], &unsigned[..], "message part");
        signer.verify_message_byte(&msg, None, true).unwrap();
    }
}
