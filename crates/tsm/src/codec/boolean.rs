//! Boolean sections (header 0x10): uvarint count, then one bit per value, first value in the
//! high bit of the first byte, zero padding.

use super::{check_count, put_uvarint, uvarint};
use crate::error::{Result, corrupt};

/// Appends the section for `vals` to `out`.
pub fn encode(vals: &[bool], out: &mut Vec<u8>) {
    out.push(0x10);
    put_uvarint(out, vals.len() as u64);
    for chunk in vals.chunks(8) {
        let byte = chunk
            .iter()
            .enumerate()
            .fold(0u8, |acc, (i, v)| acc | (u8::from(*v) << (7 - i)));
        out.push(byte);
    }
}

/// Decodes a boolean section, refusing more than `max` values. A count larger than the bits
/// present is clamped to them, as influx does.
pub fn decode(b: &[u8], max: usize) -> Result<Vec<bool>> {
    if b.first().map(|h| h >> 4) != Some(1) {
        return Err(corrupt("unknown boolean encoding"));
    }
    let (n, k) = uvarint(&b[1..])?;
    let bits = &b[1 + k..];
    let n = check_count(n.min(bits.len() as u64 * 8), max)?;
    Ok((0..n)
        .map(|i| bits[i / 8] >> (7 - i % 8) & 1 == 1)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_influx() -> Result<()> {
        let mut b = Vec::new();
        encode(&[true; 50], &mut b);
        assert_eq!(b, [0x10, 0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC0]);
        let v: Vec<bool> = (0..1000).map(|i| i % 3 == 0).collect();
        let mut b = Vec::new();
        encode(&v, &mut b);
        assert_eq!(decode(&b, 1000)?, v);
        assert!(decode(&b, 999).is_err());
        assert!(decode(&[0x20, 1, 0], 10).is_err());
        assert_eq!(decode(&[0x10, 0x7F, 0x80], 10)?.len(), 8);
        Ok(())
    }
}
