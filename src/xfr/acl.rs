//! Who may transfer a zone: address lists (CIDR prefixes) and the zone's
//! key, as its policy says.

use crate::catalog::{Catalog, Served};
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
