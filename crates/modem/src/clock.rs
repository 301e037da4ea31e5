//! The module clock's wire format (`AT+CCLK`): `"yy/MM/dd,hh:mm:ss+zz"`, UTC here (zone 00;
//! the zone is in quarters of an hour, as 3GPP TS 27.007 defines it).

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

/// Formats the `+CCLK` value (without quotes).
pub fn format_cclk(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_time(unix);
    format!(
        "{:02}/{mo:02}/{d:02},{h:02}:{mi:02}:{s:02}+00",
        y.rem_euclid(100)
    )
}

/// Parses a `+CCLK` value (2000-2099) to seconds since the Unix epoch, applying its zone.
pub fn parse_cclk(text: &str) -> Option<i64> {
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
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 || zone > 96
    {
        return None;
    }
    let days = days_from_civil(2000 + y, mo, d);
    if civil_from_days(days) != (2000 + y, mo, d) {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + s - sign * zone * 15 * 60)
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
}
