//! Address-based access lists (CIDR prefixes).

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
