//! Timestamp sections. Times become the first time plus deltas, scaled down by the largest
//! power of ten (up to 10^12) dividing every delta. Encodings (high nibble of the header; the
//! low nibble is log10 of the scale): 0 raw (first time, then unscaled deltas, 8 bytes each),
//! 1 simple8b (first time, then packed scaled deltas), 2 RLE (first time, uvarint scaled delta,
//! uvarint count of times). All arithmetic wraps as u64.

use super::{check_count, put_uvarint, simple8b, u64_at, uvarint};
use crate::error::{Result, corrupt};

const RAW: u8 = 0;
const PACKED: u8 = 1;
const RLE: u8 = 2;

/// Appends the encoded section for `ts` (any order; wrapping deltas) to `out`, picking RLE when
/// all deltas are equal, raw when a scaled delta exceeds 2^60-1, else simple8b. Empty input
/// appends nothing.
pub fn encode(ts: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = ts.first() else { return };
    let deltas: Vec<u64> = ts
        .windows(2)
        .map(|w| (w[1] as u64).wrapping_sub(w[0] as u64))
        .collect();
    let mut div = 1_000_000_000_000u64;
    let mut log = 12u8;
    let mut last = None;
    for d in &deltas {
        // A repeated delta (the common case) is already known to divide.
        if last == Some(*d) {
            continue;
        }
        last = Some(*d);
        while div > 1 && d % div != 0 {
            div /= 10;
            log -= 1;
        }
    }
    let rle = deltas.windows(2).all(|w| w[0] == w[1]);
    if rle && !deltas.is_empty() {
        out.push(RLE << 4 | log);
        out.extend_from_slice(&(first as u64).to_be_bytes());
        put_uvarint(out, deltas[0] / div);
        put_uvarint(out, ts.len() as u64);
        return;
    }
    let mut last: Option<(u64, u64)> = None;
    let scaled: Vec<u64> = deltas
        .iter()
        .map(|d| match last {
            Some((prev, q)) if prev == *d => q,
            _ => {
                let q = d / div;
                last = Some((*d, q));
                q
            }
        })
        .collect();
    let start = out.len();
    out.push(PACKED << 4 | log);
    out.extend_from_slice(&(first as u64).to_be_bytes());
    if simple8b::encode(&scaled, out).is_err() {
        out.truncate(start);
        out.push(RAW << 4);
        out.extend_from_slice(&(first as u64).to_be_bytes());
        for d in &deltas {
            out.extend_from_slice(&d.to_be_bytes());
        }
    }
}

fn scale(head: u8) -> Result<u64> {
    10u64
        .checked_pow(u32::from(head & 0x0f))
        .filter(|_| head & 0x0f <= 12)
        .ok_or_else(|| corrupt(format!("timestamp scale 10^{}", head & 0x0f)))
}

/// Number of timestamps in a section, read from its structure alone.
pub fn count(b: &[u8]) -> Result<u64> {
    let head = *b
        .first()
        .ok_or_else(|| corrupt("empty timestamp section"))?;
    match head >> 4 {
        RAW if (b.len() - 1).is_multiple_of(8) && b.len() > 1 => Ok(((b.len() - 1) / 8) as u64),
        PACKED if b.len() >= 9 => Ok(1 + simple8b::count(&b[9..])?),
        RLE => {
            let (_, k) = uvarint(
                b.get(9..)
                    .ok_or_else(|| corrupt("RLE timestamps truncated"))?,
            )?;
            Ok(uvarint(&b[9 + k..])?.0)
        }
        e => Err(corrupt(format!(
            "timestamp encoding {e} with {} bytes",
            b.len()
        ))),
    }
}

/// Decodes a timestamp section, refusing more than `max` times before allocating.
pub fn decode(b: &[u8], max: usize) -> Result<Vec<i64>> {
    let n = check_count(count(b)?, max)?;
    let head = b[0];
    let div = scale(head)?;
    let mut t = u64_at(b, 1)?;
    let mut out = Vec::with_capacity(n);
    out.push(t as i64);
    match head >> 4 {
        RAW => {
            for i in 1..n {
                t = t.wrapping_add(u64_at(b, 1 + 8 * i)?);
                out.push(t as i64);
            }
        }
        PACKED => {
            let mut deltas = Vec::with_capacity(n - 1);
            simple8b::decode(&b[9..], max, &mut deltas)?;
            for d in deltas {
                t = t.wrapping_add(d.wrapping_mul(div));
                out.push(t as i64);
            }
        }
        _ => {
            if n == 0 {
                return Err(corrupt("RLE timestamps with count 0"));
            }
            let (d, _) = uvarint(&b[9..])?;
            let step = d.wrapping_mul(div);
            for _ in 1..n {
                t = t.wrapping_add(step);
                out.push(t as i64);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ts: &[i64]) -> Result<Vec<u8>> {
        let mut b = Vec::new();
        encode(ts, &mut b);
        assert_eq!(decode(&b, 1 << 20)?, ts);
        assert_eq!(count(&b)?, ts.len() as u64);
        Ok(b)
    }

    #[test]
    fn picks_influx_encodings() -> Result<()> {
        // Spec example: RLE, 10^9 scale, 11 times 24192 s apart.
        let t0 = 1_609_459_200_000_000_000i64;
        let ts: Vec<i64> = (0..11).map(|i| t0 + i * 24_192_000_000_000).collect();
        let b = round_trip(&ts)?;
        assert_eq!(hex(&b), "291655f29d787c000080bd010b");
        // A single time: simple8b, no words, scale 10^12.
        assert_eq!(round_trip(&[5])?, [0x1C, 0, 0, 0, 0, 0, 0, 0, 5]);
        // Irregular nanosecond times: simple8b, scale 1.
        assert_eq!(round_trip(&[1, 2, 4, 7, 100])?[0], 0x10);
        // A delta over 2^60: raw.
        assert_eq!(round_trip(&[i64::MIN, 0, 1, i64::MAX])?[0], 0x00);
        // Equal and negative times still round-trip.
        round_trip(&[-5, -5, -5])?;
        round_trip(&[-3_000, -2_000, 0, 1_000])?;
        // Deltas of -1 (u64::MAX as unsigned) then a jump: raw, every delta kept (fuzz find).
        round_trip(&[10, 9, 8, 7, 1 << 50])?;
        Ok(())
    }

    #[test]
    fn hostile_sections_are_refused() {
        let mut b = vec![0x20, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
        assert!(matches!(
            decode(&b, 1000),
            Err(crate::TsmError::LimitExceeded { .. })
        ));
        assert!(decode(&[0x1D, 0, 0, 0, 0, 0, 0, 0, 0], 10).is_err());
        assert!(decode(&[0x00, 1, 2], 10).is_err());
        assert!(decode(&[0x30], 10).is_err());
        assert!(decode(&[], 10).is_err());
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
