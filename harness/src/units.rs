//! Numbers for people: byte sizes and counts as a reader wants them.

/// `1536` → `1.5 KiB`; exact below 1 KiB (`512 B`).
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if value < 1024 {
        return format!("{value} B");
    }
    let mut scaled = value as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    let digits = if scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.digits$} {}", UNITS[unit])
}

/// `1234567` → `1,234,567`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `value` with four significant digits, and a k suffix from 10,000 on, M
/// and G from a million and a billion: `35.28M`, `12.35k`, `912.4`,
/// `0.1235`.
pub fn significant(value: f64) -> String {
    with_digits(value, 4)
}

/// `value` with `digits` significant digits (and the suffix as
/// [`significant`] has it).
pub fn with_digits(value: f64, digits: usize) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e4 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    format!("{}{suffix}", unscaled(scaled, digits))
}

/// `value` with `digits` significant digits and no suffix, never in
/// exponent form (a value with more whole digits keeps them all):
/// `912.4`, `0.1235`, `123457`.
pub fn unscaled(value: f64, digits: usize) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    let magnitude = value.abs().log10().floor() as i64;
    let decimals = (digits as i64 - 1 - magnitude).clamp(0, 17) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_have_four_significant_digits_and_a_suffix_when_large() {
        assert_eq!(significant(35_283_000.0), "35.28M");
        assert_eq!(significant(912.44), "912.4");
        assert_eq!(significant(0.123456), "0.1235");
        assert_eq!(significant(12_345.0), "12.35k");
        assert_eq!(significant(1.0), "1.000");
        assert_eq!(significant(2.5e10), "25.00G");
        assert_eq!(significant(8e6), "8.000M");
        assert_eq!(significant(0.0), "0");
    }

    #[test]
    fn sizes_and_counts_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(10 << 20), "10.0 MiB");
        assert_eq!(bytes(300 << 30), "300 GiB");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }
}
