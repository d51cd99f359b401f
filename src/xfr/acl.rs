//! Who may transfer a zone: address lists (CIDR prefixes), the zone's
//! key and the channel the request came on, as its policy says.

use crate::catalog::{Catalog, Served};
use crate::config::TransferTls;
use crate::zone::name;
use ipnet::IpNet;
use std::net::IpAddr;

/// True when `ip` lies in one of `nets`. An IPv4-mapped IPv6 peer is
/// checked as the IPv4 address it carries.
pub fn allows(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

/// The zone a transfer or NOTIFY names, if the name is exactly a zone apex.
pub fn zone_at_apex<'c>(catalog: &'c Catalog, qname: &[u8]) -> Option<&'c Served> {
    let mut lower = [0u8; name::MAX_NAME];
    let l = lower.get_mut(..qname.len())?;
    l.copy_from_slice(qname);
    name::lowercase(l);
    catalog.get(l)
}

/// May `peer`, whose request was signed with `key` (if any), transfer the zone?
pub fn transfer_allowed(served: &Served, peer: IpAddr, key: Option<&[u8]>) -> bool {
    allows(&served.policy.allow_transfer, peer) && served.policy.key_ok(key)
}

/// What a request arrived over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Udp,
    Tcp,
    /// `certified`: the client showed a certificate the listener's
    /// `tls_client_ca` verified.
    Tls {
        certified: bool,
    },
}

/// Why the zone's `transfer_tls` refuses a transfer over `ch`, if it does.
pub fn channel_refusal(served: &Served, ch: Channel) -> Option<&'static str> {
    match (served.policy.transfer_tls, ch) {
        (TransferTls::Optional, _) => None,
        (_, Channel::Udp | Channel::Tcp) => Some(
            "transfer refused: transfer_tls = \"required\" and the request came over plain TCP/UDP",
        ),
        (TransferTls::RequiredWithCertificate, Channel::Tls { certified: false }) => Some(
            "transfer refused: transfer_tls = \"required\" with tls_client_ca, and the client showed no certificate",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let nets: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        assert!(allows(&nets, "127.0.0.1".parse().unwrap()));
        assert!(!allows(&nets, "127.0.0.2".parse().unwrap()));
        assert!(allows(&nets, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(allows(&nets, "2001:db8::5".parse().unwrap()));
        assert!(!allows(&[], "127.0.0.1".parse().unwrap()));
    }
}
