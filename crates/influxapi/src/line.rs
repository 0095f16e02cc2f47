//! Line protocol from TSM values: one line per field value, exact field types, precision ns.

use snapshotd_tsm::Values;

use crate::error::{Result, corrupt};

/// How unsigned (`u`) values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnsignedMode {
    /// The target accepts `123u` (influx 1.x built with unsigned support, 2.x).
    Native,
    /// The target does not: an unsigned value is an error naming the key.
    #[default]
    Refuse,
}

/// Appends a field key escaped as line protocol does (`,`, `=` and space).
pub fn push_field_key(out: &mut Vec<u8>, field: &[u8]) {
    for &b in field {
        if matches!(b, b',' | b'=' | b' ') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Appends a string field value: quoted, `"` and `\` escaped.
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends a float with full round-trip precision (shortest form that parses back to the same
/// bits); `None` for NaN and infinities, which line protocol cannot carry.
pub fn push_float(out: &mut Vec<u8>, v: f64) -> Option<()> {
    use std::io::Write;
    if !v.is_finite() {
        return None;
    }
    let a = v.abs();
    // Plain notation for everyday magnitudes, scientific (still shortest round-trip) for the
    // extremes so 1e300 is not written as 301 digits.
    let r = if a != 0.0 && !(1e-5..1e16).contains(&a) {
        write!(out, "{v:e}")
    } else {
        write!(out, "{v}")
    };
    r.ok()
}

/// Appends the value of point `i` of `vals` in line-protocol form and returns its time;
/// `key` names the TSM key in errors.
pub fn push_value(
    out: &mut Vec<u8>,
    vals: &Values,
    i: usize,
    unsigned: UnsignedMode,
    key: &dyn Fn() -> String,
) -> Result<i64> {
    use std::io::Write;
    let missing = || corrupt(key(), format!("no point {i}"));
    Ok(match vals {
        Values::Float(v) => {
            let &(t, x) = v.get(i).ok_or_else(missing)?;
            push_float(out, x)
                .ok_or_else(|| corrupt(key(), format!("non-finite float {x} at {t}")))?;
            t
        }
        Values::Integer(v) => {
            let &(t, x) = v.get(i).ok_or_else(missing)?;
            let _ = write!(out, "{x}i");
            t
        }
        Values::Unsigned(v) => {
            let &(t, x) = v.get(i).ok_or_else(missing)?;
            if unsigned == UnsignedMode::Refuse {
                return Err(corrupt(
                    key(),
                    "unsigned field: the target does not accept unsigned values (pass the \
                     option for targets that support `u`)",
                ));
            }
            let _ = write!(out, "{x}u");
            t
        }
        Values::Boolean(v) => {
            let &(t, x) = v.get(i).ok_or_else(missing)?;
            out.extend_from_slice(if x { b"true" } else { b"false" });
            t
        }
        Values::String(v) => {
            let (t, x) = v.get(i).ok_or_else(missing)?;
            push_string(out, x);
            *t
        }
    })
}

/// Appends one line per point of `vals` in `from..to`: `series field=value time\n`.
pub fn push_lines(
    out: &mut Vec<u8>,
    series: &[u8],
    field: &[u8],
    vals: &Values,
    from: usize,
    to: usize,
    unsigned: UnsignedMode,
) -> Result<()> {
    use std::io::Write;
    let key = || {
        format!(
            "key {}#!~#{}",
            String::from_utf8_lossy(series),
            String::from_utf8_lossy(field)
        )
    };
    for i in from..to {
        out.extend_from_slice(series);
        out.push(b' ');
        push_field_key(out, field);
        out.push(b'=');
        let t = push_value(out, vals, i, unsigned, &key)?;
        let _ = writeln!(out, " {t}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn lines(series: &[u8], field: &[u8], v: &Values) -> String {
        let mut out = Vec::new();
        push_lines(&mut out, series, field, v, 0, v.len(), UnsignedMode::Native).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_type_is_written_exactly() {
        let s = br"my\ cpu,host=a\,b";
        assert_eq!(
            lines(
                s,
                b"f v",
                &Values::Float(vec![(1, 0.1), (2, -3.0), (3, 1e300)])
            ),
            "my\\ cpu,host=a\\,b f\\ v=0.1 1\nmy\\ cpu,host=a\\,b f\\ v=-3 2\nmy\\ cpu,host=a\\,b f\\ v=1e300 3\n"
        );
        assert_eq!(
            lines(b"m", b"i", &Values::Integer(vec![(-5, i64::MIN)])),
            "m i=-9223372036854775808i -5\n"
        );
        assert_eq!(
            lines(b"m", b"u", &Values::Unsigned(vec![(0, u64::MAX)])),
            "m u=18446744073709551615u 0\n"
        );
        assert_eq!(
            lines(b"m", b"b", &Values::Boolean(vec![(7, true), (8, false)])),
            "m b=true 7\nm b=false 8\n"
        );
        assert_eq!(
            lines(
                b"m",
                b"a=b,c",
                &Values::String(vec![(9, "say \"hi\" \\ ok".into())])
            ),
            "m a\\=b\\,c=\"say \\\"hi\\\" \\\\ ok\" 9\n"
        );
    }

    #[test]
    fn unsigned_refused_and_nan_rejected() {
        let mut out = Vec::new();
        let v = Values::Unsigned(vec![(1, 1)]);
        assert!(push_lines(&mut out, b"m", b"u", &v, 0, 1, UnsignedMode::Refuse).is_err());
        let v = Values::Float(vec![(1, f64::NAN)]);
        let e = push_lines(&mut out, b"m", b"f", &v, 0, 1, UnsignedMode::Native).unwrap_err();
        assert!(e.to_string().contains("m#!~#f"), "{e}");
    }

    proptest! {
        #[test]
        fn floats_round_trip(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            let mut out = Vec::new();
            match push_float(&mut out, v) {
                None => prop_assert!(!v.is_finite()),
                Some(()) => {
                    let s = String::from_utf8(out).unwrap();
                    let back: f64 = s.parse().unwrap();
                    prop_assert_eq!(back.to_bits(), v.to_bits(), "{}", s);
                }
            }
        }
    }
}
