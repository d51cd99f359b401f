//! TSIG (RFC 8945) on top of hickory-proto: verifying signed requests,
//! signing responses (chained across the messages of a transfer), signing
//! outgoing requests, and the error answers BADKEY, BADSIG and BADTIME.

use crate::config::{self, Algorithm};
use crate::query::request::Request;
use crate::zone::name;
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
    keys: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    /// The key's name, lower-cased wire form.
    name: Box<[u8]>,
    /// The algorithm's name (`hmac-sha256.`), lower-cased wire form.
    algorithm: Box<[u8]>,
    /// Octets of a whole MAC (shorter, truncated ones are refused).
    mac_len: usize,
    signer: TSigner,
}

/// The keyring every part of the server reads, swapped on reload.
pub type SharedKeyring = std::sync::Arc<arc_swap::ArcSwap<Keyring>>;

/// A key name as lower-cased wire form.
pub fn wire_key_name(canonical: &str) -> Option<Box<[u8]>> {
    name::lower_wire(canonical)
}

impl Keyring {
    pub fn from_config(keys: &[config::Key]) -> Result<Keyring, String> {
        let mut ring = Keyring::default();
        for k in keys {
            let (alg, mac_len) = match k.algorithm {
                Algorithm::HmacSha256 => (TsigAlgorithm::HmacSha256, 32),
                Algorithm::HmacSha384 => (TsigAlgorithm::HmacSha384, 48),
                Algorithm::HmacSha512 => (TsigAlgorithm::HmacSha512, 64),
            };
            let name = Name::from_str(&k.name).map_err(|e| format!("key {}: {e}", k.name))?;
            let signer = TSigner::new(k.secret.clone(), alg, name, FUDGE)
                .map_err(|e| format!("key {}: {e}", k.name))?;
            let wire = wire_key_name(&k.name).ok_or_else(|| format!("key {}: bad name", k.name))?;
            let algorithm = name::lower_wire(&signer.algorithm().to_name().to_string())
                .ok_or_else(|| format!("key {}: bad algorithm name", k.name))?;
            ring.keys.push(Key {
                name: wire,
                algorithm,
                mac_len,
                signer,
            });
        }
        Ok(ring)
    }

    /// The key whose lower-cased wire name is `wire`.
    pub fn get(&self, wire: &[u8]) -> Option<&TSigner> {
        self.keys
            .iter()
            .find(|k| *k.name == *wire)
            .map(|k| &k.signer)
    }

    /// The key with this name and algorithm (lower-cased wire names).
    fn find(&self, name: &[u8], algorithm: &[u8]) -> Option<&Key> {
        self.keys
            .iter()
            .find(|k| *k.name == *name && *k.algorithm == *algorithm)
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

/// Verifies the TSIG that ends `req` (RFC 8945 §5.2), from where the
/// request's parse found it: the record is read once, the MAC checked over
/// the message as it was before signing, in constant time.
pub fn verify(keys: &Keyring, req: &[u8], parsed: &Request, now: u64) -> Result<Verified, Failure> {
    let at = parsed.tsig.ok_or(Failure::Malformed)?;
    let (mut key_name, _) = name::read_compressed(req, at.record).ok_or(Failure::Malformed)?;
    name::lowercase(&mut key_name);
    let (rd_start, rd_end) = at.rdata;
    let (mut algorithm, p) = name::read_compressed(req, rd_start).ok_or(Failure::Malformed)?;
    name::lowercase(&mut algorithm);
    let fields = req.get(p..rd_end).ok_or(Failure::Malformed)?;
    let u16_at = |i: usize| {
        fields
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let time_signed = fields
        .get(..6)
        .map(|b| b.iter().fold(0u64, |t, &o| (t << 8) | o as u64))
        .ok_or(Failure::Malformed)?;
    let fudge = u16_at(6).ok_or(Failure::Malformed)?;
    let mac_len = u16_at(8).ok_or(Failure::Malformed)? as usize;
    let mac = fields.get(10..10 + mac_len).ok_or(Failure::Malformed)?;
    let rest = &fields[10 + mac_len..];
    let original_id = rest
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(Failure::Malformed)?;
    // Error, other length and other data: 6 octets and up, to the end.
    let other_len = rest
        .get(4..6)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        .ok_or(Failure::Malformed)?;
    if rest.len() != 6 + other_len {
        return Err(Failure::Malformed);
    }
    let Some(key) = keys.find(&key_name, &algorithm) else {
        return Err(Failure::BadKey {
            key_name: super::hickory_name(&key_name).ok_or(Failure::Malformed)?,
            id: parsed.id,
        });
    };
    // RFC 8945 §4.3.3: the message with the original ID and without the
    // TSIG record, then the TSIG variables (names in canonical form).
    let mut tbv = Vec::with_capacity(at.record + key_name.len() + algorithm.len() + 32);
    tbv.extend_from_slice(&original_id.to_be_bytes());
    tbv.extend_from_slice(&req[2..10]);
    let ar = u16::from_be_bytes([req[10], req[11]]).wrapping_sub(1);
    tbv.extend_from_slice(&ar.to_be_bytes());
    tbv.extend_from_slice(&req[12..at.record]);
    tbv.extend_from_slice(&key_name);
    tbv.extend_from_slice(&255u16.to_be_bytes());
    tbv.extend_from_slice(&0u32.to_be_bytes());
    tbv.extend_from_slice(&algorithm);
    tbv.extend_from_slice(&fields[..8]);
    tbv.extend_from_slice(&rest[2..]);
    // Truncated MACs (RFC 8945 §5.2.2.1) are refused, as hickory does.
    if mac.len() < key.mac_len || key.signer.verify(&tbv, mac).is_err() {
        return Err(Failure::BadSig {
            signer: key.signer.clone(),
            id: parsed.id,
        });
    }
    if now.abs_diff(time_signed) > fudge as u64 {
        return Err(Failure::BadTime {
            signer: key.signer.clone(),
            mac: mac.to_vec(),
            id: parsed.id,
            time: time_signed,
        });
    }
    Ok(Verified {
        signer: key.signer.clone(),
        key: key.name.clone(),
        mac: mac.to_vec(),
        id: parsed.id,
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
        let mut msg = crate::xfr::notify_out::message(b"\x01t\x00", &soa, 77);
        let unsigned = msg.clone();
        sign_request(&signer, &mut msg, crate::clock::unix_secs()).unwrap();
        let (tbs, _) =
            hickory_proto::rr::rdata::tsig::signed_bitmessage_to_buf(&msg, None, true).unwrap();
        assert_eq!(&tbs[..unsigned.len()], &unsigned[..], "message part");
        signer.verify_message_byte(&msg, None, true).unwrap();
    }
}
