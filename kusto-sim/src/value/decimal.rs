//! Fixed-point decimal: an `i128` mantissa with [`DECIMAL_SCALE`] fractional digits.
//!
//! .NET decimal (Kusto's) has up to 28 fractional digits; the simulator keeps 18, which is
//! also what it writes to parquet (`DECIMAL(38, 18)`). Literals with more fractional digits
//! are rejected rather than silently rounded.

/// Fractional digits kept for every decimal value.
pub const DECIMAL_SCALE: u32 = 18;

const ONE: i128 = 10i128.pow(DECIMAL_SCALE);

/// Parses `-123.456`, `1e3` is not accepted (Kusto decimal literals are plain digits).
pub fn parse(s: &str) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > DECIMAL_SCALE as usize {
        return None;
    }
    let int_value: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let mut frac_value: i128 = 0;
    for (i, b) in frac_trimmed.bytes().enumerate() {
        let weight = 10i128.pow(DECIMAL_SCALE - 1 - i as u32);
        frac_value += i128::from(b - b'0') * weight;
    }
    let v = int_value.checked_mul(ONE)?.checked_add(frac_value)?;
    Some(if neg { -v } else { v })
}

/// Formats without trailing fractional zeros (`1.5`, `-2`, `0.000001`).
pub fn format(v: i128) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let abs = v.unsigned_abs();
    let one = ONE.unsigned_abs();
    let int_part = abs / one;
    let frac = abs % one;
    if frac == 0 {
        return format!("{sign}{int_part}");
    }
    let frac_text = format!("{frac:0width$}", width = DECIMAL_SCALE as usize);
    format!("{sign}{int_part}.{}", frac_text.trim_end_matches('0'))
}

pub fn to_f64(v: i128) -> f64 {
    v as f64 / ONE as f64
}

pub fn from_i64(v: i64) -> Option<i128> {
    i128::from(v).checked_mul(ONE)
}

pub fn from_f64(v: f64) -> Option<i128> {
    if !v.is_finite() {
        return None;
    }
    parse(&format!("{v:.18}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text() {
        for s in [
            "0",
            "1.5",
            "-2",
            "0.000000000000000001",
            "123456789012345678.25",
        ] {
            assert_eq!(parse(s).map(format).as_deref(), Some(s));
        }
        assert_eq!(parse("1.50").map(format).as_deref(), Some("1.5"));
        assert_eq!(parse("0.0000000000000000001"), None);
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("."), None);
    }
}
