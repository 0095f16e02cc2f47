//! Decoding of TSM1 blocks (influx-tsm-format.md §3): timestamps (raw, simple8b, RLE),
//! integers/unsigned (zigzag raw, simple8b, RLE), floats (Gorilla XOR), booleans (bit
//! packed) and strings (Snappy block format). Every count is bounded before allocating.

use super::write::Value;
use crate::error::{Result, StoreError};

/// Most values accepted from one block (influx writes at most 1000).
pub(crate) const MAX_BLOCK_VALUES: usize = 1 << 20;
/// Largest Snappy-decompressed string section accepted.
const MAX_SNAPPY_BYTES: usize = 64 * 1024 * 1024;

fn bad(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("TSM block: {msg}"))
}

fn uvarint(b: &[u8]) -> Result<(u64, usize)> {
    let mut x = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((x, i + 1));
        }
    }
    Err(bad("bad uvarint"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    let s = b.get(at..at + 8).ok_or_else(|| bad("truncated"))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_be_bytes(a))
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

const S8B_N: [usize; 16] = [240, 120, 60, 30, 20, 15, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1];
const S8B_BITS: [u32; 16] = [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 60];

fn simple8b(b: &[u8], out: &mut Vec<u64>) -> Result<()> {
    if !b.len().is_multiple_of(8) {
        return Err(bad("simple8b length not a multiple of 8"));
    }
    for w in b.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let word = u64::from_be_bytes(a);
        let sel = (word >> 60) as usize;
        let (n, bits) = (S8B_N[sel], S8B_BITS[sel]);
        if out.len() + n > MAX_BLOCK_VALUES {
            return Err(bad("too many values"));
        }
        if bits == 0 {
            out.extend(std::iter::repeat_n(1, n));
            continue;
        }
        let mask = (1u64 << bits) - 1;
        for i in 0..n as u32 {
            out.push((word >> (i * bits)) & mask);
        }
    }
    Ok(())
}

/// Decodes a timestamp section.
pub(crate) fn timestamps(b: &[u8]) -> Result<Vec<i64>> {
    let head = *b.first().ok_or_else(|| bad("empty timestamp section"))?;
    let div = 10u64
        .checked_pow(u32::from(head & 0x0f))
        .ok_or_else(|| bad("bad scale"))?;
    match head >> 4 {
        0 => {
            let n = (b.len() - 1) / 8;
            if n > MAX_BLOCK_VALUES {
                return Err(bad("too many timestamps"));
            }
            let mut out = Vec::with_capacity(n);
            let mut t = 0u64;
            for i in 0..n {
                let v = u64_at(b, 1 + 8 * i)?;
                t = if i == 0 { v } else { t.wrapping_add(v) };
                out.push(t as i64);
            }
            Ok(out)
        }
        1 => {
            let mut t = u64_at(b, 1)?;
            let mut deltas = Vec::new();
            simple8b(&b[9..], &mut deltas)?;
            let mut out = Vec::with_capacity(deltas.len() + 1);
            out.push(t as i64);
            for d in deltas {
                t = t.wrapping_add(d.wrapping_mul(div));
                out.push(t as i64);
            }
            Ok(out)
        }
        2 => {
            let t0 = u64_at(b, 1)?;
            let (delta, k) = uvarint(&b[9..])?;
            let (n, _) = uvarint(&b[9 + k..])?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_BLOCK_VALUES {
                return Err(bad("too many timestamps"));
            }
            let step = delta.wrapping_mul(div);
            Ok((0..n as u64)
                .map(|i| t0.wrapping_add(i.wrapping_mul(step)) as i64)
                .collect())
        }
        e => Err(bad(format!("unknown timestamp encoding {e}"))),
    }
}

fn integers(b: &[u8]) -> Result<Vec<i64>> {
    let head = *b.first().ok_or_else(|| bad("empty value section"))?;
    let zs: Vec<u64> = match head >> 4 {
        0 => {
            let n = (b.len() - 1) / 8;
            if n > MAX_BLOCK_VALUES {
                return Err(bad("too many values"));
            }
            (0..n)
                .map(|i| u64_at(b, 1 + 8 * i))
                .collect::<Result<_>>()?
        }
        1 => {
            let mut zs = vec![u64_at(b, 1)?];
            simple8b(&b[9..], &mut zs)?;
            zs
        }
        2 => {
            let z0 = u64_at(b, 1)?;
            let (z1, k) = uvarint(&b[9..])?;
            let (n, _) = uvarint(&b[9 + k..])?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n >= MAX_BLOCK_VALUES {
                return Err(bad("too many values"));
            }
            std::iter::once(z0)
                .chain(std::iter::repeat_n(z1, n))
                .collect()
        }
        e => return Err(bad(format!("unknown integer encoding {e}"))),
    };
    let mut v = 0i64;
    Ok(zs
        .into_iter()
        .map(|z| {
            v = v.wrapping_add(unzigzag(z));
            v
        })
        .collect())
}

/// MSB-first bit reader.
struct Bits<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Result<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            let byte = *self
                .b
                .get(self.pos / 8)
                .ok_or_else(|| bad("float stream truncated"))?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }
}

fn floats(b: &[u8]) -> Result<Vec<f64>> {
    const END: u64 = 0x7FF8_0000_0000_0001;
    if b.first().map(|h| h >> 4) != Some(1) {
        return Err(bad("unknown float encoding"));
    }
    let mut r = Bits { b: &b[1..], pos: 0 };
    let mut prev = r.read(64)?;
    let mut out = Vec::new();
    let (mut lead, mut trail) = (0u32, 0u32);
    while prev != END {
        if out.len() >= MAX_BLOCK_VALUES {
            return Err(bad("too many values"));
        }
        out.push(f64::from_bits(prev));
        if r.read(1)? == 0 {
            continue; // same value again
        }
        if r.read(1)? == 1 {
            lead = r.read(5)? as u32;
            let mut sig = r.read(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            if lead + sig > 64 {
                return Err(bad("bad float window"));
            }
            trail = 64 - lead - sig;
        }
        let sig = 64 - lead - trail;
        let x = r.read(sig)?;
        prev ^= x.checked_shl(trail).unwrap_or(0);
    }
    Ok(out)
}

fn booleans(b: &[u8]) -> Result<Vec<bool>> {
    let (n, k) = uvarint(b.get(1..).ok_or_else(|| bad("empty value section"))?)?;
    let bits = &b[1 + k..];
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(bits.len() * 8);
    if n > MAX_BLOCK_VALUES {
        return Err(bad("too many values"));
    }
    Ok((0..n)
        .map(|i| bits[i / 8] >> (7 - i % 8) & 1 == 1)
        .collect())
}

fn snappy(b: &[u8]) -> Result<Vec<u8>> {
    let (len, mut i) = uvarint(b)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_SNAPPY_BYTES {
        return Err(bad("snappy length too large"));
    }
    let mut out = Vec::with_capacity(len);
    while i < b.len() {
        let tag = b[i];
        i += 1;
        let (n, off) = match tag & 3 {
            0 => {
                let mut n = usize::from(tag >> 2);
                if n >= 60 {
                    let extra = n - 59;
                    let s = b.get(i..i + extra).ok_or_else(|| bad("snappy truncated"))?;
                    n = s
                        .iter()
                        .rev()
                        .fold(0usize, |a, x| (a << 8) | usize::from(*x));
                    i += extra;
                }
                let lit = b.get(i..i + n + 1).ok_or_else(|| bad("snappy truncated"))?;
                out.extend_from_slice(lit);
                i += n + 1;
                continue;
            }
            1 => {
                let x = *b.get(i).ok_or_else(|| bad("snappy truncated"))?;
                i += 1;
                (
                    4 + usize::from((tag >> 2) & 7),
                    (usize::from(tag >> 5) << 8) | usize::from(x),
                )
            }
            2 => {
                let s = b.get(i..i + 2).ok_or_else(|| bad("snappy truncated"))?;
                i += 2;
                (
                    1 + usize::from(tag >> 2),
                    usize::from(u16::from_le_bytes([s[0], s[1]])),
                )
            }
            _ => {
                let s = b.get(i..i + 4).ok_or_else(|| bad("snappy truncated"))?;
                i += 4;
                let off = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                (1 + usize::from(tag >> 2), off as usize)
            }
        };
        if off == 0 || off > out.len() {
            return Err(bad("snappy copy offset out of range"));
        }
        for _ in 0..n {
            out.push(out[out.len() - off]);
        }
        if out.len() > len {
            return Err(bad("snappy output longer than declared"));
        }
    }
    if out.len() != len {
        return Err(bad("snappy output length mismatch"));
    }
    Ok(out)
}

fn strings(b: &[u8]) -> Result<Vec<String>> {
    if b.first().map(|h| h >> 4) != Some(1) {
        return Err(bad("unknown string encoding"));
    }
    let raw = snappy(&b[1..])?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let (n, k) = uvarint(&raw[i..])?;
        i += k;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let s = raw
            .get(i..i.saturating_add(n))
            .ok_or_else(|| bad("string truncated"))?;
        out.push(String::from_utf8_lossy(s).into_owned());
        i += n;
    }
    Ok(out)
}

/// Decodes one block's data (after its CRC) into (time, value) pairs.
pub(crate) fn block(data: &[u8]) -> Result<Vec<(i64, Value)>> {
    let typ = *data.first().ok_or_else(|| bad("empty block"))?;
    let (ts_len, k) = uvarint(data.get(1..).ok_or_else(|| bad("truncated"))?)?;
    let ts_end = usize::try_from(ts_len)
        .ok()
        .and_then(|l| (1 + k).checked_add(l))
        .filter(|e| *e <= data.len())
        .ok_or_else(|| bad("timestamp section past block end"))?;
    let ts = timestamps(&data[1 + k..ts_end])?;
    let vals = &data[ts_end..];
    let values: Vec<Value> = match typ {
        0 => floats(vals)?.into_iter().map(Value::Float).collect(),
        1 => integers(vals)?.into_iter().map(Value::Integer).collect(),
        2 => booleans(vals)?.into_iter().map(Value::Boolean).collect(),
        3 => strings(vals)?.into_iter().map(Value::String).collect(),
        4 => integers(vals)?
            .into_iter()
            .map(|v| Value::Unsigned(v as u64))
            .collect(),
        t => return Err(bad(format!("unknown block type {t}"))),
    };
    Ok(ts.into_iter().zip(values).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_decode() -> Result<()> {
        // §3.1: RLE, div 10^9, t0 = 2021-01-01, delta 24192 s, 11 timestamps.
        let ts = timestamps(&[
            0x29, 0x16, 0x55, 0xF2, 0x9D, 0x78, 0x7C, 0x00, 0x00, 0x80, 0xBD, 0x01, 0x0B,
        ])?;
        assert_eq!(ts.len(), 11);
        assert_eq!(ts[0], 1_609_459_200_000_000_000);
        assert_eq!(ts[1] - ts[0], 24_192_000_000_000);
        // §3.3: int RLE 0,3,…,30.
        let v = integers(&[0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0x0A])?;
        assert_eq!(v, (0..=10).map(|i| i * 3).collect::<Vec<i64>>());
        // §3.5: 50 × true.
        let b = booleans(&[0x10, 0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC0])?;
        assert_eq!(b, vec![true; 50]);
        Ok(())
    }

    #[test]
    fn raw_and_simple8b_sections_decode() -> Result<()> {
        let be = |v: u64| v.to_be_bytes();
        // Raw timestamps: t0 then deltas.
        let mut b = vec![0x00];
        b.extend(be(1_000));
        b.extend(be(u64::MAX)); // delta of -1 (wrapping)
        assert_eq!(timestamps(&b)?, vec![1_000, 999]);
        // simple8b timestamps, div 10^3: one selector-15 word holding 5, one selector-0 word.
        let mut b = vec![0x13];
        b.extend(be(7));
        b.extend(be((15u64 << 60) | 5));
        b.extend(be(0));
        let ts = timestamps(&b)?;
        assert_eq!(ts.len(), 1 + 1 + 240);
        assert_eq!(&ts[..3], &[7, 5_007, 6_007]);
        // Raw integers: zigzag deltas from 0.
        let mut b = vec![0x00];
        b.extend(be(4)); // +2
        b.extend(be(3)); // -2
        assert_eq!(integers(&b)?, vec![2, 0]);
        // simple8b integers with selector 2 (60 × 1 bit).
        let mut b = vec![0x10];
        b.extend(be(2)); // +1
        b.extend(be((2u64 << 60) | 0b10)); // +0 then -1 (zz 1), rest +0
        let v = integers(&b)?;
        assert_eq!((v.len(), v[1], v[2], v[60]), (61, 1, 0, 0));
        // Snappy: literal "ab" then copy len 4 offset 2 => "ababab".
        assert_eq!(snappy(&[6, 0x04, b'a', b'b', 0x01, 0x02])?, b"ababab");
        Ok(())
    }

    #[test]
    fn hostile_counts_are_refused() {
        // RLE timestamp count of 2^40.
        let mut b = vec![0x20, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
        assert!(timestamps(&b).is_err());
        assert!(snappy(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).is_err());
        assert!(block(&[0, 0xFF]).is_err());
    }
}
