//! Block section codecs: each section starts with a header byte whose high nibble names the
//! encoding. Decoders take the most values they may return and check it before allocating.

mod bits;
pub mod boolean;
pub mod float;
pub mod integer;
pub mod simple8b;
pub mod string;
pub mod timestamp;

use crate::error::{Result, corrupt};

/// Appends `x` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Reads an unsigned LEB128 varint (at most 10 bytes); returns it and its length.
pub(crate) fn uvarint(b: &[u8]) -> Result<(u64, usize)> {
    let mut x = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        if i == 9 && *byte > 1 {
            return Err(corrupt("uvarint overflows 64 bits"));
        }
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((x, i + 1));
        }
    }
    Err(corrupt("truncated or overlong uvarint"))
}

/// The big-endian u64 at `at`.
pub(crate) fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    let s = b
        .get(at..at.saturating_add(8))
        .ok_or_else(|| corrupt("section truncated"))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_be_bytes(a))
}

/// ZigZag-maps a signed value so small magnitudes become small unsigned values.
pub(crate) fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Fails with a limit error when `n` exceeds `max`.
pub(crate) fn check_count(n: u64, max: usize) -> Result<usize> {
    if n > max as u64 {
        return Err(crate::TsmError::LimitExceeded {
            what: "block value count",
            limit: max as u64,
            got: n,
        });
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_and_uvarint_round_trip() -> Result<()> {
        for x in [0, -1, 1, -2, 2, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(x)), x);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(2), 4);
        for x in [0, 1, 127, 128, 300, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, x);
            assert_eq!(uvarint(&b)?, (x, b.len()));
        }
        assert!(uvarint(&[0x80; 10]).is_err());
        assert!(uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).is_err());
        Ok(())
    }
}
