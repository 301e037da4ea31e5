//! The module clock's wire format (`AT+CCLK`, 3GPP TS 27.007 §8.15): `"yy/MM/dd,hh:mm:ss±zz"`,
//! the local time followed by its zone in quarters of an hour (`+04` is UTC+1, `-08` UTC-2).
//!
//! The module keeps UTC (seconds since the Unix epoch) and, separately, the zone the host last
//! set (at-contract §1.1); [`format_cclk_zoned`] shows the local time in that zone.

/// The largest zone offset accepted, in quarters of an hour (±24 h).
///
/// # Security
/// Bounds the zone taken from the wire, so local time stays within a day of UTC.
pub const MAX_ZONE_QUARTERS: i64 = 96;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch to `(year, month, day, hour, minute, second)`, UTC.
pub fn civil_time(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// Formats the `+CCLK` value (without quotes) in UTC (zone `+00`).
pub fn format_cclk(unix: i64) -> String {
    format_cclk_zoned(unix, 0)
}

/// Formats the `+CCLK` value (without quotes): the local time of `unix` in the zone
/// `zone_quarters` (quarters of an hour east of UTC, clamped to ±[`MAX_ZONE_QUARTERS`]),
/// followed by the zone.
pub fn format_cclk_zoned(unix: i64, zone_quarters: i64) -> String {
    let zone = zone_quarters.clamp(-MAX_ZONE_QUARTERS, MAX_ZONE_QUARTERS);
    let (y, mo, d, h, mi, s) = civil_time(unix.saturating_add(zone * 15 * 60));
    let sign = if zone < 0 { '-' } else { '+' };
    format!(
        "{:02}/{mo:02}/{d:02},{h:02}:{mi:02}:{s:02}{sign}{:02}",
        y.rem_euclid(100),
        zone.abs()
    )
}

/// Parses a `+CCLK` value (2000-2099) to seconds since the Unix epoch, applying its zone.
pub fn parse_cclk(text: &str) -> Option<i64> {
    parse_cclk_zoned(text).map(|(unix, _)| unix)
}

/// Parses a `+CCLK` value (2000-2099) to seconds since the Unix epoch (UTC) and the zone it
/// was given in, in quarters of an hour (at most ±[`MAX_ZONE_QUARTERS`]).
pub fn parse_cclk_zoned(text: &str) -> Option<(i64, i64)> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[2] != b'/'
        || b[5] != b'/'
        || b[8] != b','
        || b[11] != b':'
        || b[14] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d, h, mi, s) = (
        num(0..2)?,
        num(3..5)?,
        num(6..8)?,
        num(9..11)?,
        num(12..14)?,
        num(15..17)?,
    );
    let sign = match b[17] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zone = num(18..20)?;
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || s > 59
        || zone > MAX_ZONE_QUARTERS
    {
        return None;
    }
    let days = days_from_civil(2000 + y, mo, d);
    if civil_from_days(days) != (2000 + y, mo, d) {
        return None;
    }
    let zone = sign * zone;
    Some((
        days * 86_400 + h * 3600 + mi * 60 + s - zone * 15 * 60,
        zone,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(format_cclk(0), "70/01/01,00:00:00+00");
        // 2026-11-25 15:08:49 UTC
        assert_eq!(format_cclk(1_795_619_329), "26/11/25,15:08:49+00");
        assert_eq!(parse_cclk("26/11/25,15:08:49+00"), Some(1_795_619_329));
        assert_eq!(parse_cclk("26/11/25,16:08:49+04"), Some(1_795_619_329));
        assert_eq!(
            parse_cclk("24/02/29,00:00:00+00")
                .map(format_cclk)
                .as_deref(),
            Some("24/02/29,00:00:00+00")
        );
        assert_eq!(parse_cclk("25/02/29,00:00:00+00"), None);
        assert_eq!(parse_cclk("garbage"), None);
    }

    #[test]
    fn zones_round_trip() {
        // The contract's example: 2026-12-01 06:58:29 at UTC+1 is 05:58:29 UTC.
        let (t, zone) = parse_cclk_zoned("26/12/01,06:58:29+04").unwrap();
        assert_eq!(zone, 4);
        assert_eq!(format_cclk(t), "26/12/01,05:58:29+00");
        assert_eq!(format_cclk_zoned(t, zone), "26/12/01,06:58:29+04");
        // Negative zones: UTC-2 crosses midnight backwards.
        let (t, zone) = parse_cclk_zoned("26/01/01,01:00:00-08").unwrap();
        assert_eq!(zone, -8);
        assert_eq!(format_cclk(t), "26/01/01,03:00:00+00");
        assert_eq!(format_cclk_zoned(t, zone), "26/01/01,01:00:00-08");
        assert_eq!(format_cclk_zoned(t, 0), "26/01/01,03:00:00+00");
        // Quarter hours (UTC+5:45) and a zone that moves the date forward.
        let (t, zone) = parse_cclk_zoned("26/12/31,23:50:00+23").unwrap();
        assert_eq!(format_cclk(t), "26/12/31,18:05:00+00");
        assert_eq!(format_cclk_zoned(t, zone), "26/12/31,23:50:00+23");
        assert_eq!(format_cclk_zoned(t, 48), "27/01/01,06:05:00+48");
        // "-00" is UTC, shown as "+00".
        assert_eq!(
            parse_cclk_zoned("26/11/25,15:08:49-00"),
            Some((1_795_619_329, 0))
        );
        // Out of range zones, and the clamp when formatting.
        assert_eq!(parse_cclk_zoned("26/11/25,15:08:49+97"), None);
        assert_eq!(parse_cclk_zoned("26/11/25,15:08:49-97"), None);
        assert!(parse_cclk_zoned("26/11/25,15:08:49-96").is_some());
        assert_eq!(format_cclk_zoned(0, -1000), "69/12/31,00:00:00-96");
    }

    /// The zone is volatile, like the clock offset: `AT+CFUN=16` (and a restart) forget both.
    #[test]
    fn a_reboot_forgets_the_zone() {
        use std::time::Instant;

        use crate::{Channel, Module, ModuleConfig};

        let dir = tempfile::tempdir().unwrap();
        let mut config = ModuleConfig::new(dir.path());
        config.kdf = sealcell_store::crypto::KdfPolicy::INSECURE_FAST_FOR_TESTS;
        let mut m = Module::open(config, crate::Now::virtual_start(Instant::now())).unwrap();
        let mut c = Channel::new(&mut m);
        let mut at = |m: &mut Module, line: &str| {
            let mut out = Vec::new();
            c.feed(
                m,
                format!("{line}\r").as_bytes(),
                crate::Now::virtual_start(Instant::now()),
                &mut out,
            );
            String::from_utf8(out).unwrap()
        };
        at(&mut m, "ATE0");
        assert_eq!(at(&mut m, "AT+CCLK=\"26/12/01,06:58:29-08\""), "\r\nOK\r\n");
        assert!(at(&mut m, "AT+CCLK?").ends_with("-08\"\r\n\r\nOK\r\n"));
        // A refused set changes neither the zone nor the time (read without a second check
        // of the seconds: the host clock runs on between two lines).
        assert_eq!(
            at(&mut m, "AT+CCLK=\"26/12/01,06:58:29+97\""),
            "\r\nERROR\r\n"
        );
        let read = at(&mut m, "AT+CCLK?");
        assert!(read.starts_with("\r\n+CCLK: \"26/12/01,06:5"), "{read:?}");
        assert!(read.ends_with("-08\"\r\n\r\nOK\r\n"), "{read:?}");
        at(&mut m, "AT+CFUN=16");
        at(&mut m, "ATE0");
        let read = at(&mut m, "AT+CCLK?");
        assert!(read.ends_with("+00\"\r\n\r\nOK\r\n"), "{read:?}");
    }
}
