//! `serial_policy`: how the served serial moves when a zone file changes.
//! `unixtime` and `dateserial` behave as in Knot DNS: the candidate is used
//! when it is newer than the served serial, else the served serial + 1.

use crate::config::SerialPolicy;
use crate::zone::serial::is_newer;

/// The serial for a changed zone whose file says `file`, replacing `served`.
pub fn next(policy: SerialPolicy, file: u32, served: u32, unix_now: u64) -> Result<u32, String> {
    let bump = served.wrapping_add(1);
    match policy {
        SerialPolicy::Keep if is_newer(file, served) => Ok(file),
        SerialPolicy::Keep => Err(format!(
            "zone changed but its serial {file} is not greater than the served {served} (serial_policy = keep)"
        )),
        SerialPolicy::Increment => Ok(if is_newer(file, served) { file } else { bump }),
        SerialPolicy::UnixTime => {
            let c = unix_now as u32;
            Ok(if is_newer(c, served) { c } else { bump })
        }
        SerialPolicy::DateSerial => {
            let c = date_serial(unix_now);
            Ok(if is_newer(c, served) { c } else { bump })
        }
    }
}

/// YYYYMMDD00 for a Unix time (UTC).
fn date_serial(unix: u64) -> u32 {
    let d = time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    (d.year() as u32) * 1_000_000 + (d.month() as u32) * 10_000 + d.day() as u32 * 100
}

#[cfg(test)]
mod tests {
    use super::*;
    use SerialPolicy::*;

    #[test]
    fn policies() {
        assert_eq!(next(Keep, 5, 4, 0), Ok(5));
        assert!(next(Keep, 4, 4, 0).is_err());
        assert_eq!(next(Increment, 9, 4, 0), Ok(9));
        assert_eq!(next(Increment, 3, 4, 0), Ok(5));
        assert_eq!(next(Increment, 1, u32::MAX, 0), Ok(1), "RFC 1982 wrap");
        assert_eq!(next(UnixTime, 1, 4, 1_700_000_000), Ok(1_700_000_000));
        assert_eq!(
            next(UnixTime, 1, 1_700_000_005, 1_700_000_000),
            Ok(1_700_000_006)
        );
        // 2026-11-26
        assert_eq!(date_serial(1_795_680_000), 2026112600);
        assert_eq!(
            next(DateSerial, 1, 2026112600, 1_795_680_000),
            Ok(2026112601)
        );
    }
}
