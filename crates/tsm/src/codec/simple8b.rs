//! simple8b: unsigned values below 2^60 packed into 64-bit words. The top 4 bits select how
//! many values of how many bits the other 60 hold; value i sits at bit i*b from the low end.
//! Selectors 0 and 1 hold 240 and 120 copies of the value 1 with no payload.

use crate::error::{Result, corrupt};

/// Largest value simple8b can hold.
pub const MAX_VALUE: u64 = (1 << 60) - 1;

const N: [usize; 16] = [240, 120, 60, 30, 20, 15, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1];
const BITS: [u32; 16] = [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 60];

/// Whether the next `n` values of `src` exist and fit in `bits` bits (all equal 1 for 0 bits).
fn can_pack(src: &[u64], n: usize, bits: u32) -> bool {
    let Some(head) = src.get(..n) else {
        return false;
    };
    if bits == 0 {
        return head.iter().all(|v| *v == 1);
    }
    let max = (1u64 << bits) - 1;
    head.iter().all(|v| *v <= max)
}

/// Appends the words packing `src` (big-endian) to `out`, choosing for each word the first
/// selector that fits as influx does. Fails when a value exceeds [`MAX_VALUE`].
pub fn encode(src: &[u64], out: &mut Vec<u8>) -> Result<()> {
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        // Selectors narrower than the next value cannot fit; start at the first that can.
        let need = 64 - rest[0].leading_zeros();
        let first = match rest[0] {
            1 => 0,
            _ => (2..16).find(|&s| BITS[s] >= need).unwrap_or(16),
        };
        let sel = (first..16)
            .find(|&s| can_pack(rest, N[s], BITS[s]))
            .ok_or_else(|| {
                crate::TsmError::Unsupported(format!("value {} exceeds 2^60-1", rest[0]))
            })?;
        let mut word = (sel as u64) << 60;
        if BITS[sel] > 0 {
            for (j, v) in rest[..N[sel]].iter().enumerate() {
                word |= v << (j as u32 * BITS[sel]);
            }
        }
        out.extend_from_slice(&word.to_be_bytes());
        i += N[sel];
    }
    Ok(())
}

/// Number of values packed in `b` (a whole number of words), without decoding them.
pub fn count(b: &[u8]) -> Result<u64> {
    if !b.len().is_multiple_of(8) {
        return Err(corrupt("simple8b length not a multiple of 8"));
    }
    Ok(b.chunks_exact(8)
        .map(|w| N[usize::from(w[0] >> 4)] as u64)
        .sum())
}

/// Appends the values packed in `b` to `out`; fails before growing `out` past `max` values.
pub fn decode(b: &[u8], max: usize, out: &mut Vec<u64>) -> Result<()> {
    let n = super::check_count(count(b)?.saturating_add(out.len() as u64), max)?;
    out.reserve(n - out.len());
    for w in b.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let word = u64::from_be_bytes(a);
        let sel = (word >> 60) as usize;
        let bits = BITS[sel];
        if bits == 0 {
            out.extend(std::iter::repeat_n(1, N[sel]));
            continue;
        }
        let mask = (1u64 << bits) - 1;
        out.extend((0..N[sel] as u32).map(|i| (word >> (i * bits)) & mask));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_like_influx_and_round_trips() -> Result<()> {
        let mut b = Vec::new();
        encode(&[1; 240], &mut b)?;
        assert_eq!(b, vec![0; 8]);
        let vals: Vec<u64> = (0..1000)
            .map(|i| (i * 7919) % 5000)
            .chain([MAX_VALUE, 0, 1])
            .collect();
        let mut b = Vec::new();
        encode(&vals, &mut b)?;
        let mut out = Vec::new();
        decode(&b, 2000, &mut out)?;
        assert_eq!(out, vals);
        assert!(decode(&b, 10, &mut Vec::new()).is_err());
        assert!(encode(&[MAX_VALUE + 1], &mut Vec::new()).is_err());
        Ok(())
    }
}
