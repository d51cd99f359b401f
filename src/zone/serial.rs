//! RFC 1982 serial number arithmetic on 32-bit SOA serials.

use std::cmp::Ordering;

/// Compares two serials; `None` when they are exactly 2^31 apart (undefined).
pub fn compare(a: u32, b: u32) -> Option<Ordering> {
    if a == b {
        return Some(Ordering::Equal);
    }
    let d = b.wrapping_sub(a);
    match d {
        0x8000_0000 => None,
        d if d < 0x8000_0000 => Some(Ordering::Less),
        _ => Some(Ordering::Greater),
    }
}

/// True when `new` is strictly greater than `old`.
pub fn is_newer(new: u32, old: u32) -> bool {
    compare(new, old) == Some(Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps() {
        assert!(is_newer(2, 1));
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(1, 2));
        assert!(is_newer(0x7fff_ffff, 0));
        assert_eq!(compare(0, 0x8000_0000), None);
        assert!(!is_newer(5, 5));
    }
}
