//! LOC (RFC 1876) in presentation form:
//! `d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]`.

type R<T> = Result<T, String>;

/// 2^31: the equator and the prime meridian (RFC 1876 §2).
const EQUATOR: u32 = 1 << 31;
/// Altitudes are counted from 100,000 m below the reference spheroid, in cm.
const ALT_BASE: i64 = 10_000_000;

/// A decimal with up to `places` fraction digits, scaled to an integer.
fn decimal(t: &[u8], places: u32) -> Option<i64> {
    let s = std::str::from_utf8(t).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > places as usize
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
        || int.len() > 10
    {
        return None;
    }
    let mut v: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    for i in 0..places {
        let d = frac.as_bytes().get(i as usize).map(|c| (c - b'0') as i64);
        v = v * 10 + d.unwrap_or(0);
    }
    Some(if neg { -v } else { v })
}

/// Centimetres as RFC 1876's mantissa/exponent octet.
fn precision(cm: i64) -> u8 {
    let mut e = 0;
    let mut p: i64 = 1;
    while e < 9 && cm >= p * 10 {
        p *= 10;
        e += 1;
    }
    let m = (cm / p).clamp(0, 9);
    ((m as u8) << 4) | e
}

fn meters(t: &[u8], what: &str) -> R<i64> {
    let t = t.strip_suffix(b"m").unwrap_or(t);
    decimal(t, 2).ok_or_else(|| format!("bad LOC {what} '{}'", String::from_utf8_lossy(t)))
}

/// Degrees, optional minutes and seconds, then a hemisphere letter; the
/// offset from `EQUATOR` in thousandths of a second of arc.
fn angle(words: &[&[u8]], i: &mut usize, max_deg: i64, hemis: [u8; 2]) -> R<u32> {
    let mut parts = [0i64; 3];
    let mut n = 0;
    let mut hemi = None;
    while let Some(w) = words.get(*i) {
        *i += 1;
        if w.len() == 1 && hemis.contains(&w[0].to_ascii_uppercase()) {
            hemi = Some(w[0].to_ascii_uppercase());
            break;
        }
        if n == 3 {
            break;
        }
        parts[n] = if n == 2 { decimal(w, 3) } else { decimal(w, 0) }
            .filter(|v| *v >= 0)
            .ok_or_else(|| format!("bad LOC coordinate '{}'", String::from_utf8_lossy(w)))?;
        n += 1;
    }
    let hemi = hemi.ok_or("LOC coordinate without N/S or E/W")?;
    let [d, m, s] = parts;
    if n == 0 || d > max_deg || m >= 60 || s >= 60_000 || (d == max_deg && (m > 0 || s > 0)) {
        return Err("LOC coordinate out of range".into());
    }
    let v = (d * 3600 + m * 60) * 1000 + s;
    Ok(if hemi == hemis[0] {
        EQUATOR + v as u32
    } else {
        EQUATOR - v as u32
    })
}

pub fn parse(words: Vec<&[u8]>, out: &mut Vec<u8>) -> R<()> {
    let mut i = 0;
    let lat = angle(&words, &mut i, 90, [b'N', b'S'])?;
    let lon = angle(&words, &mut i, 180, [b'E', b'W'])?;
    let alt = meters(words.get(i).ok_or("LOC without an altitude")?, "altitude")?;
    i += 1;
    if !(-ALT_BASE..=u32::MAX as i64 - ALT_BASE).contains(&alt) {
        return Err("LOC altitude out of range".into());
    }
    // Defaults: size 1 m, horizontal precision 10 km, vertical 10 m.
    let mut prec = [100i64, 1_000_000, 1000];
    for (k, what) in ["size", "horizontal precision", "vertical precision"]
        .iter()
        .enumerate()
    {
        if let Some(w) = words.get(i) {
            prec[k] = meters(w, what)?;
            if !(0..=9_000_000_000).contains(&prec[k]) {
                return Err(format!("LOC {what} out of range"));
            }
            i += 1;
        }
    }
    if let Some(w) = words.get(i) {
        return Err(format!(
            "unexpected extra data '{}'",
            String::from_utf8_lossy(w)
        ));
    }
    out.push(0);
    out.extend(prec.iter().map(|&cm| precision(cm)));
    out.extend_from_slice(&lat.to_be_bytes());
    out.extend_from_slice(&lon.to_be_bytes());
    out.extend_from_slice(&((alt + ALT_BASE) as u32).to_be_bytes());
    Ok(())
}

fn cm_text(cm: i64) -> String {
    let sign = if cm < 0 { "-" } else { "" };
    let cm = cm.abs();
    format!("{sign}{}.{:02}m", cm / 100, cm % 100)
}

fn angle_text(v: u32, hemis: [char; 2]) -> String {
    let (off, h) = if v >= EQUATOR {
        (v - EQUATOR, hemis[0])
    } else {
        (EQUATOR - v, hemis[1])
    };
    let ms = off % 1000;
    let s = off / 1000;
    format!("{} {} {}.{ms:03} {h}", s / 3600, s / 60 % 60, s % 60)
}

/// The presentation form of version-0 LOC rdata (16 octets, validated).
pub fn text(rd: &[u8]) -> Option<String> {
    if rd.len() != 16 || rd[0] != 0 {
        return None;
    }
    let prec = |b: u8| (b >> 4) as i64 * 10i64.pow((b & 0xf) as u32);
    let u = |i: usize| u32::from_be_bytes([rd[i], rd[i + 1], rd[i + 2], rd[i + 3]]);
    let (lat, lon) = (u(4), u(8));
    // Only coordinates on the globe read back.
    let max = |deg: u32| deg * 3_600_000;
    if lat.abs_diff(EQUATOR) > max(90) || lon.abs_diff(EQUATOR) > max(180) {
        return None;
    }
    Some(format!(
        "{} {} {} {} {} {}",
        angle_text(lat, ['N', 'S']),
        angle_text(lon, ['E', 'W']),
        cm_text(u(12) as i64 - ALT_BASE),
        cm_text(prec(rd[1])),
        cm_text(prec(rd[2])),
        cm_text(prec(rd[3])),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> R<Vec<u8>> {
        let mut out = Vec::new();
        parse(s.split_whitespace().map(str::as_bytes).collect(), &mut out).map(|_| out)
    }

    #[test]
    fn rfc1876_example_round_trips() {
        let rd = enc("42 21 54 N 71 06 18 W -24m 30m").unwrap();
        assert_eq!(
            rd,
            [
                0x00, 0x33, 0x16, 0x13, 0x89, 0x17, 0x2d, 0xd0, 0x70, 0xbe, 0x15, 0xf0, 0x00, 0x98,
                0x8d, 0x20
            ]
        );
        let t = text(&rd).unwrap();
        assert_eq!(
            t,
            "42 21 54.000 N 71 6 18.000 W -24.00m 30.00m 10000.00m 10.00m"
        );
        assert_eq!(enc(&t).unwrap(), rd);
        assert!(enc("91 N 0 E 0m").is_err());
        assert!(enc("1 N 0 E").is_err());
    }
}
