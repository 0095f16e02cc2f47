//! Go `time.Duration` strings as influx prints them (`168h0m0s`, `1h0m0s`, `0s`, `1.5s`).

/// Parses a Go duration string into nanoseconds; `None` when malformed or out of range.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest.get(..num_end)?.parse().ok()?;
        rest = rest.get(num_end..)?;
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest.get(..unit_end)? {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = rest.get(unit_end..)?;
        total += num * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let v = total.round() as i64;
    Some(if neg { -v } else { v })
}

/// An InfluxQL duration literal for `ns` nanoseconds (`INF` for 0).
pub fn influxql_duration(ns: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
    ];
    if ns == 0 {
        return "INF".into();
    }
    for (scale, unit) in UNITS {
        if ns % scale == 0 {
            return format!("{}{unit}", ns / scale);
        }
    }
    format!("{}u", ns / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0s"), Some(0));
        assert_eq!(parse_go_duration("168h0m0s"), Some(168 * 3_600_000_000_000));
        assert_eq!(parse_go_duration("1h30m0s"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_go_duration("h"), None);
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(influxql_duration(0), "INF");
        assert_eq!(influxql_duration(7_200_000_000_000), "2h");
        assert_eq!(influxql_duration(90_000_000_000), "90s");
        assert_eq!(influxql_duration(1_500_000_000), "1500ms");
    }
}
