//! Points in time given on the command line: milliseconds since the Unix epoch, or an
//! RFC 3339 date-time (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.250+02:00`; a date-time
//! without an offset is taken as UTC, so that a command means the same on every machine).

/// Parses `s` as epoch milliseconds or an RFC 3339 date-time.
pub fn parse_time_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        if ms < 0 {
            return Err(format!(
                "'{s}': a time before 1970 is not a record timestamp"
            ));
        }
        return Ok(ms);
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("'{s}': expected milliseconds since the epoch or an RFC 3339 date-time")
    })
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        let digits = &s[start..at];
        if digits.is_empty() {
            return None;
        }
        let first3: String = digits.chars().chain("000".chars()).take(3).collect();
        millis = first3.parse().ok()?;
    }
    let offset_minutes = match &s[at..] {
        "" | "Z" | "z" => 0,
        zone => {
            let zb = zone.as_bytes();
            if zb.len() != 6 || !matches!(zb[0], b'+' | b'-') || zb[3] != b':' {
                return None;
            }
            let h = num(at + 1, 2)?;
            let m = num(at + 4, 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if zb[0] == b'-' { -1 } else { 1 };
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_rfc3339_parse() {
        assert_eq!(parse_time_ms("1700000000123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.123Z"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_time_ms("2023-11-15T00:13:20.1234+02:00"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(parse_time_ms("2024-02-29T00:00:00"), Ok(1_709_164_800_000));
        for bad in [
            "",
            "yesterday",
            "2023-02-29T00:00:00Z",
            "2023-11-14T25:00:00Z",
            "-5",
        ] {
            assert!(parse_time_ms(bad).is_err(), "{bad}");
        }
    }
}
