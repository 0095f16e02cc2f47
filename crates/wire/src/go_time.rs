//! `time.Time` as Go's `encoding/json` writes and reads it (RFC 3339, nanoseconds, offset kept).

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};

use crate::WireError;

/// A point in time with the UTC offset it was written with, encoded exactly as Go does.
///
/// Go writes `time.Time` as RFC 3339 with fractional seconds whose trailing zeros are dropped,
/// `Z` for a zero offset and `±hh:mm` otherwise. Go's *zero time* (`0001-01-01T00:00:00Z`) is
/// what influx clients send for every unused time field; [`GoTime::ZERO`] /
/// [`GoTime::default`] is that value and [`GoTime::is_zero`] tests for it.
///
/// Equality is on the instant *and* the offset (they encode differently); use
/// [`GoTime::unix_nanos`] or [`GoTime::as_datetime`] to compare instants only.
#[derive(Clone, Copy)]
pub struct GoTime(DateTime<FixedOffset>);

impl PartialEq for GoTime {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 && self.0.offset() == other.0.offset()
    }
}

impl Eq for GoTime {}

impl std::hash::Hash for GoTime {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.hash(h);
        self.0.offset().local_minus_utc().hash(h);
    }
}

/// The wire string of Go's zero time.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch.
const ZERO_UNIX_SECS: i64 = -62_135_596_800;

impl GoTime {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub const ZERO: GoTime = GoTime(DateTime::from_naive_utc_and_offset(
        match NaiveDate::from_ymd_opt(1, 1, 1) {
            Some(d) => d.and_time(NaiveTime::MIN),
            None => unreachable!(),
        },
        match FixedOffset::east_opt(0) {
            Some(o) => o,
            None => unreachable!(),
        },
    ));

    /// Wraps a chrono time; fails when Go could not write it as RFC 3339 (local year outside
    /// 0000–9999, an offset that is not a whole number of minutes or ≥ 24 h, a leap second).
    pub fn new(dt: DateTime<FixedOffset>) -> Result<GoTime, WireError> {
        let year = dt.naive_local().year();
        if !(0..=9999).contains(&year) {
            return Err(WireError::BadTime {
                reason: "year outside 0000-9999",
            });
        }
        let off = dt.offset().local_minus_utc();
        if off % 60 != 0 || off.abs() >= 24 * 3600 {
            return Err(WireError::BadTime {
                reason: "offset not whole minutes below 24h",
            });
        }
        if dt.nanosecond() >= 1_000_000_000 {
            return Err(WireError::BadTime {
                reason: "leap second",
            });
        }
        Ok(GoTime(dt))
    }

    /// A UTC time from Unix seconds and nanoseconds.
    pub fn from_unix(secs: i64, nanos: u32) -> Result<GoTime, WireError> {
        let dt = Utc
            .timestamp_opt(secs, nanos)
            .single()
            .ok_or(WireError::BadTime {
                reason: "unix time out of range",
            })?;
        GoTime::new(dt.fixed_offset())
    }

    /// A UTC time from Unix nanoseconds (the unit of influx shard-group bounds).
    pub fn from_unix_nanos(ns: i64) -> GoTime {
        // Every i64 nanosecond value lies within years 1677..2262, always representable.
        let dt = DateTime::from_timestamp_nanos(ns).fixed_offset();
        GoTime(dt)
    }

    /// The wrapped chrono value.
    pub fn as_datetime(&self) -> DateTime<FixedOffset> {
        self.0
    }

    /// Whether this is Go's zero instant (any offset), i.e. "not set".
    pub fn is_zero(&self) -> bool {
        self.0.timestamp() == ZERO_UNIX_SECS && self.0.timestamp_subsec_nanos() == 0
    }

    /// Unix nanoseconds, `None` when outside the i64 range (e.g. the zero time).
    pub fn unix_nanos(&self) -> Option<i64> {
        self.0.timestamp_nanos_opt()
    }

    /// Parses Go's RFC 3339 JSON form (without the quotes).
    pub fn parse(s: &str) -> Result<GoTime, WireError> {
        parse_rfc3339(s.as_bytes()).ok_or(WireError::BadTime {
            reason: "not RFC 3339 (YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm))",
        })
    }
}

impl Default for GoTime {
    fn default() -> Self {
        GoTime::ZERO
    }
}

impl fmt::Display for GoTime {
    /// Exactly Go's `time.RFC3339Nano` layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.0.naive_local();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            l.year(),
            l.month(),
            l.day(),
            l.hour(),
            l.minute(),
            l.second()
        )?;
        let ns = l.nanosecond();
        if ns != 0 {
            let digits = format!("{ns:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        let off = self.0.offset().local_minus_utc();
        if off == 0 {
            f.write_str("Z")
        } else {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs() / 60;
            write!(f, "{sign}{:02}:{:02}", a / 60, a % 60)
        }
    }
}

impl fmt::Debug for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoTime({self})")
    }
}

impl serde::Serialize for GoTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for GoTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = GoTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GoTime, E> {
                GoTime::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

fn parse_rfc3339(b: &[u8]) -> Option<GoTime> {
    let year = digits(b, 0, 4)?;
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    expect(b, 10, b'T')?;
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let min = digits(b, 14, 2)?;
    expect(b, 16, b':')?;
    let sec = digits(b, 17, 2)?;
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(b, start, n)? * 10u32.pow(u32::try_from(9 - n).ok()?);
    }
    let offset = match b.get(i)? {
        b'Z' => {
            i += 1;
            0
        }
        s @ (b'+' | b'-') => {
            let oh = digits(b, i + 1, 2)?;
            expect(b, i + 3, b':')?;
            let om = digits(b, i + 4, 2)?;
            if oh >= 24 || om >= 60 {
                return None;
            }
            i += 6;
            let v = i32::try_from(oh * 3600 + om * 60).ok()?;
            if *s == b'-' { -v } else { v }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, min, sec, nanos)?;
    if sec >= 60 {
        return None;
    }
    let off = FixedOffset::east_opt(offset)?;
    let dt = off.from_local_datetime(&date.and_time(time)).single()?;
    GoTime::new(dt).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_time_round_trips() {
        assert_eq!(GoTime::ZERO.to_string(), GO_ZERO_TIME);
        let t = GoTime::parse(GO_ZERO_TIME).unwrap();
        assert!(t.is_zero());
        assert_eq!(t, GoTime::ZERO);
        assert_eq!(t.unix_nanos(), None);
    }

    #[test]
    fn fractions_and_offsets_as_go_writes_them() {
        for s in [
            "2021-01-05T00:00:00Z",
            "2021-01-05T00:00:00.5Z",
            "2021-01-05T00:00:00.123456789+02:00",
            "1999-12-31T23:59:59.00001-07:30",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert_eq!(GoTime::parse(s).unwrap().to_string(), s);
        }
        // Go normalises a zero offset to Z and drops trailing zeros.
        assert_eq!(
            GoTime::parse("2021-01-05T00:00:00.500+00:00")
                .unwrap()
                .to_string(),
            "2021-01-05T00:00:00.5Z"
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2021-01-05",
            "2021-01-05T00:00:00",
            "2021-02-30T00:00:00Z",
            "2021-01-05T24:00:00Z",
            "2021-01-05T00:00:60Z",
            "2021-01-05T00:00:00.Z",
            "2021-01-05T00:00:00.1234567890Z",
            "2021-01-05T00:00:00+24:00",
            "2021-01-05T00:00:00Zjunk",
            "2021-01-05 00:00:00Z",
        ] {
            assert!(GoTime::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn equality_includes_the_offset() {
        let a = GoTime::parse("2021-01-05T02:00:00+02:00").unwrap();
        let b = GoTime::parse("2021-01-05T00:00:00Z").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.unix_nanos(), b.unix_nanos());
        assert!(
            GoTime::parse("0001-01-01T01:00:00+01:00")
                .unwrap()
                .is_zero()
        );
    }

    #[test]
    fn unix_nanos_matches_chrono() {
        let t = GoTime::parse("2021-01-05T00:00:00Z").unwrap();
        assert_eq!(t.unix_nanos(), Some(1_609_804_800_000_000_000));
        assert_eq!(GoTime::from_unix_nanos(1_609_804_800_000_000_000), t);
    }
}
