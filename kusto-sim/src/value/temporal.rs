//! datetime and timespan text forms. Both are 100 ns ticks; datetimes count from the Unix
//! epoch (negative before 1970), so 0001-01-01 still fits an `i64`.

use time::{Date, Month, OffsetDateTime};

pub const TICKS_PER_SECOND: i64 = 10_000_000;
pub const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SECOND;
/// Ticks between 0001-01-01 (the .NET epoch) and 1970-01-01.
pub const DOTNET_EPOCH_OFFSET: i64 = 621_355_968_000_000_000;

pub fn now_ticks() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 100) as i64
}

/// `2024-01-15`, `2024-01-15T10:00:00Z`, `2024-01-15 10:00:00.1234567`, `...+02:00`.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let date_len = s.find(['T', 't', ' ']).unwrap_or(s.len());
    let (date_text, rest) = s.split_at(date_len);
    let mut parts = date_text.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let days = i64::from(date.to_julian_day() - unix_epoch_julian_day());
    let rest = rest.get(1..).unwrap_or("");
    let (time_text, offset_ticks) = split_offset(rest)?;
    let time_ticks = if time_text.is_empty() {
        0
    } else {
        parse_clock(time_text, 23)?
    };
    Some(days * TICKS_PER_DAY + time_ticks - offset_ticks)
}

fn unix_epoch_julian_day() -> i32 {
    Date::from_calendar_date(1970, Month::January, 1)
        .map(|d| d.to_julian_day())
        .unwrap_or(2_440_588)
}

/// Splits a trailing `Z` or `±hh:mm` from a time of day; returns the offset in ticks.
fn split_offset(t: &str) -> Option<(&str, i64)> {
    if let Some(body) = t.strip_suffix(['Z', 'z']) {
        return Some((body, 0));
    }
    if let Some(pos) = t.rfind(['+', '-']).filter(|p| *p >= 5) {
        let (body, off) = t.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
        return Some((body, sign * minutes * 60 * TICKS_PER_SECOND));
    }
    Some((t, 0))
}

/// `hh:mm[:ss[.fffffff]]`, hours bounded by `max_hours`.
fn parse_clock(t: &str, max_hours: i64) -> Option<i64> {
    let mut parts = t.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec_text = parts.next().unwrap_or("0");
    let (whole, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let sec: i64 = whole.parse().ok()?;
    if h > max_hours || m > 59 || sec > 59 || frac.len() > 7 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_ticks: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<7}").parse().ok()?
    };
    Some(((h * 60 + m) * 60 + sec) * TICKS_PER_SECOND + frac_ticks)
}

/// ISO 8601 with seven fractional digits, as Kusto writes datetimes on the wire.
pub fn format_datetime(ticks: i64) -> String {
    format_datetime_with(ticks, true)
}

fn format_datetime_with(ticks: i64, fraction: bool) -> String {
    let days = ticks.div_euclid(TICKS_PER_DAY);
    let tod = ticks.rem_euclid(TICKS_PER_DAY);
    let Some(date) = i32::try_from(days)
        .ok()
        .and_then(|d| Date::from_julian_day(unix_epoch_julian_day() + d).ok())
    else {
        return String::new();
    };
    let secs = tod / TICKS_PER_SECOND;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let base = format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    if fraction {
        format!("{base}.{:07}Z", tod % TICKS_PER_SECOND)
    } else {
        format!("{base}Z")
    }
}

/// Renders a .NET custom datetime format (`yyyyMMdd`, `yyyy/MM/dd`, `HH`, ...), the subset
/// `datetime_pattern` needs; quoted text passes through.
pub fn format_pattern(ticks: i64, pattern: &str) -> String {
    let iso = format_datetime_with(ticks, false);
    let field = |from: usize, to: usize| iso.get(from..to).unwrap_or("").to_string();
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|x| **x == c).count();
        let piece = match (c, run) {
            ('y', 4) => field(0, 4),
            ('M', 2) => field(5, 7),
            ('d', 2) => field(8, 10),
            ('H', 2) => field(11, 13),
            ('m', 2) => field(14, 16),
            ('s', 2) => field(17, 19),
            ('\'', _) => {
                let end = chars[i + 1..].iter().position(|x| *x == '\'');
                let end = end.map_or(chars.len(), |e| i + 1 + e);
                out.extend(&chars[i + 1..end]);
                i = end + 1;
                continue;
            }
            _ => chars[i..i + run].iter().collect(),
        };
        out.push_str(&piece);
        i += run;
    }
    out
}

/// `[-][d.]hh:mm:ss[.fffffff]`, the .NET constant format Kusto uses for timespans.
pub fn format_timespan(ticks: i64) -> String {
    let sign = if ticks < 0 { "-" } else { "" };
    let t = ticks.unsigned_abs();
    let tps = TICKS_PER_SECOND.unsigned_abs();
    let frac = t % tps;
    let secs = t / tps;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let days = if d > 0 {
        format!("{d}.")
    } else {
        String::new()
    };
    let fraction = if frac > 0 {
        format!(".{frac:07}")
    } else {
        String::new()
    };
    format!("{sign}{days}{h:02}:{m:02}:{s:02}{fraction}")
}

/// Parses `[-][d.]hh:mm[:ss[.f]]` (the text form) or a Kusto span literal like `5m`.
pub fn parse_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = parse_span_literal(s) {
        return Some(t);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (days, clock) = match body.split_once(':') {
        Some((head, _)) => match head.split_once('.') {
            Some((d, _)) => (d.parse::<i64>().ok()?, &body[d.len() + 1..]),
            None => (0, body),
        },
        None => (body.parse::<i64>().ok()?, "00:00"),
    };
    let t = days * TICKS_PER_DAY + parse_clock(clock, 23)?;
    Some(if neg { -t } else { t })
}

/// `5m`, `1.5h`, `100ms`, `2d`, `10tick`, `30seconds` ...: number then unit.
pub fn parse_span_literal(s: &str) -> Option<i64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_ticks: f64 = match unit.to_ascii_lowercase().as_str() {
        "d" | "day" | "days" => TICKS_PER_DAY as f64,
        "h" | "hr" | "hrs" | "hour" | "hours" => 36_000_000_000.0,
        "m" | "min" | "minute" | "minutes" => 600_000_000.0,
        "s" | "sec" | "second" | "seconds" => TICKS_PER_SECOND as f64,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 10_000.0,
        "microsecond" | "microseconds" => 10.0,
        "tick" | "ticks" => 1.0,
        _ => return None,
    };
    Some((n * unit_ticks).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_forms() {
        let a = parse_datetime("2024-01-15").unwrap();
        assert_eq!(format_datetime(a), "2024-01-15T00:00:00.0000000Z");
        let b = parse_datetime("2024-01-15 10:00:00.1234567").unwrap();
        assert_eq!(format_datetime(b), "2024-01-15T10:00:00.1234567Z");
        let c = parse_datetime("2024-01-15T12:00:00+02:00").unwrap();
        assert_eq!(format_datetime(c), "2024-01-15T10:00:00.0000000Z");
        let old = parse_datetime("0001-01-01T00:00:00Z").unwrap();
        assert_eq!(old, -DOTNET_EPOCH_OFFSET);
        assert_eq!(parse_datetime("2024-13-01"), None);
        assert_eq!(parse_datetime("garbage"), None);
    }

    #[test]
    fn timespan_forms() {
        assert_eq!(parse_timespan("5m"), Some(3_000_000_000));
        assert_eq!(
            parse_timespan("1.02:03:04").map(format_timespan).as_deref(),
            Some("1.02:03:04")
        );
        assert_eq!(format_timespan(-15_000_000), "-00:00:01.5000000");
        assert_eq!(parse_timespan("01:23:45.6789000"), Some(50_256_789_000));
    }

    #[test]
    fn patterns() {
        let t = parse_datetime("2024-01-05T07:08:09Z").unwrap();
        assert_eq!(format_pattern(t, "yyyyMMdd"), "20240105");
        assert_eq!(format_pattern(t, "yyyy/MM/dd/HH"), "2024/01/05/07");
        assert_eq!(format_pattern(t, "'d='yyyy"), "d=2024");
    }
}
