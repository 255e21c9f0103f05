//! RFC 3339 timestamps for CRI log lines, without a date-time crate.
//!
//! Three formats matter here:
//! - the writer uses Go's `time.RFC3339Nano`, like containerd's CRI logger
//!   (`internal/cri/io/logger.go`: `timestampFormat = time.RFC3339Nano`): UTC,
//!   nanoseconds with trailing zeros trimmed, and no fraction at all when it is zero;
//! - `--timestamps` output uses the kubelet's `RFC3339NanoFixed`
//!   (`2006-01-02T15:04:05.000000000Z07:00`, pkg/kubelet/kuberuntime/logs/logs.go
//!   `timeFormatOut`): always nine digits;
//! - the reader parses leniently (the kubelet's `RFC3339NanoLenient`): any number
//!   of fraction digits, `Z` or a `±hh:mm` offset.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// Seconds (floored) and nanoseconds since the Unix epoch; handles times before it.
fn split(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let secs = -(d.as_secs() as i64);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day)
/// in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

fn civil(t: SystemTime) -> Civil {
    let (secs, nanos) = split(t);
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let sod = secs.rem_euclid(SECS_PER_DAY) as u32;
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
        nanos,
    }
}

fn date_time(c: &Civil) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Go's `time.RFC3339Nano` in UTC, as containerd writes CRI log lines:
/// `2026-11-26T21:04:52.12345Z` (trailing zeros of the fraction trimmed; no
/// fraction when the nanoseconds are zero).
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let c = civil(t);
    let mut s = date_time(&c);
    if c.nanos != 0 {
        let frac = format!("{:09}", c.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// The kubelet's `RFC3339NanoFixed` in UTC, as `kubectl logs --timestamps` prints:
/// always nine fraction digits (`2026-11-26T21:04:52.123450000Z`).
pub fn format_rfc3339_nano_fixed(t: SystemTime) -> String {
    let c = civil(t);
    format!("{}.{:09}Z", date_time(&c), c.nanos)
}

/// The kubelet's rotated-log suffix, Go layout `20060102-150405`
/// (pkg/kubelet/logs/container_log_manager.go `timestampFormat`), in UTC.
pub fn format_rotation_suffix(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// The kubelet's AtomicWriter data-directory stamp, Go layout
/// `2006_01_02_15_04_05` (pkg/volume/util/atomic_writer.go), in UTC.
pub fn format_atomic_writer(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{:04}_{:02}_{:02}_{:02}_{:02}_{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Parses an RFC 3339 timestamp leniently, like the kubelet's `RFC3339NanoLenient`:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. Returns `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i64::from(digits(&b[0..4])?);
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        // Digits past the ninth are below a nanosecond: dropped, as Go does.
        let kept = &frac[..n.min(9)];
        nanos = digits(kept)? * 10u32.pow(9 - kept.len() as u32);
        rest = &frac[n..];
    }
    let offset: i64 = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = i64::from(digits(&[*h1, *h2])?);
            let m = i64::from(digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * SECS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset;
    let t = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    Some(t + Duration::from_nanos(u64::from(nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    // 2026-11-26T21:04:52Z
    const T: u64 = 1_795_727_092;

    #[test]
    fn formats_rfc3339_nano_with_all_nine_digits() {
        assert_eq!(
            format_rfc3339_nano(at(T, 123_456_789)),
            "2026-11-26T21:04:52.123456789Z"
        );
    }

    #[test]
    fn rfc3339_nano_trims_trailing_zeros_like_go() {
        assert_eq!(
            format_rfc3339_nano(at(T, 120_000_000)),
            "2026-11-26T21:04:52.12Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(T, 1)),
            "2026-11-26T21:04:52.000000001Z"
        );
        assert_eq!(format_rfc3339_nano(at(T, 0)), "2026-11-26T21:04:52Z");
    }

    #[test]
    fn fixed_format_always_has_nine_digits() {
        assert_eq!(
            format_rfc3339_nano_fixed(at(T, 120_000_000)),
            "2026-11-26T21:04:52.120000000Z"
        );
        assert_eq!(
            format_rfc3339_nano_fixed(at(T, 0)),
            "2026-11-26T21:04:52.000000000Z"
        );
    }

    #[test]
    fn formats_epoch_leap_day_and_before_epoch() {
        assert_eq!(format_rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2024-02-29T23:59:59.5Z
        assert_eq!(
            format_rfc3339_nano(at(1_709_251_199, 500_000_000)),
            "2024-02-29T23:59:59.5Z"
        );
        assert_eq!(
            format_rfc3339_nano(UNIX_EPOCH - Duration::from_nanos(1)),
            "1969-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn rotation_suffix_matches_kubelet_layout() {
        assert_eq!(format_rotation_suffix(at(T, 999)), "20261126-210452");
    }

    #[test]
    fn parse_round_trips_and_accepts_offsets() {
        for t in [at(T, 123_456_789), at(T, 0), at(T, 5), UNIX_EPOCH] {
            assert_eq!(parse_rfc3339(&format_rfc3339_nano(t)), Some(t));
            assert_eq!(parse_rfc3339(&format_rfc3339_nano_fixed(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-26T22:04:52.5+01:00"),
            Some(at(T, 500_000_000))
        );
        assert_eq!(parse_rfc3339("2026-11-26T20:34:52-00:30"), Some(at(T, 0)));
    }

    #[test]
    fn parse_rejects_garbage() {
        for s in [
            "",
            "hello world, this is not a time",
            "2026-11-26 21:04:52Z",
            "2026-02-30T21:04:52Z",
            "2026-11-26T24:04:52Z",
            "2026-11-26T21:04:52.Z",
            "2026-11-26T21:04:52",
            "2026-11-26T21:04:52+0100",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
    }
}
