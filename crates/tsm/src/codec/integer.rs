//! Integer sections (signed; unsigned values are the same bytes reinterpreted). Values become
//! zigzagged deltas from a previous value of 0. Encodings (high nibble of the header): 0 raw
//! (8 bytes per zigzagged delta), 1 simple8b (first delta as 8 bytes, then packed), 2 RLE (first
//! delta as 8 bytes, uvarint repeated delta, uvarint count of deltas after the first).

use super::{check_count, put_uvarint, simple8b, u64_at, unzigzag, uvarint, zigzag};
use crate::error::{Result, corrupt};

const RAW: u8 = 0;
const PACKED: u8 = 1;
const RLE: u8 = 2;

/// Appends the encoded section for `vals` to `out`, picking RLE when there are more than two
/// values and every delta after the first is equal, raw when a delta does not fit simple8b,
/// else simple8b. Empty input writes a header with no values.
pub fn encode(vals: &[i64], out: &mut Vec<u8>) {
    let mut prev = 0i64;
    let zs: Vec<u64> = vals
        .iter()
        .map(|v| {
            let z = zigzag(v.wrapping_sub(prev));
            prev = *v;
            z
        })
        .collect();
    if zs.len() > 2 && zs[2..].iter().all(|z| *z == zs[1]) {
        out.push(RLE << 4);
        out.extend_from_slice(&zs[0].to_be_bytes());
        put_uvarint(out, zs[1]);
        put_uvarint(out, (zs.len() - 1) as u64);
        return;
    }
    if zs.iter().any(|z| *z > simple8b::MAX_VALUE) {
        out.push(RAW << 4);
        for z in &zs {
            out.extend_from_slice(&z.to_be_bytes());
        }
        return;
    }
    out.push(PACKED << 4);
    if let Some((z0, rest)) = zs.split_first() {
        out.extend_from_slice(&z0.to_be_bytes());
        // Every value fits, so packing cannot fail.
        let _ = simple8b::encode(rest, out);
    }
}

/// Decodes an integer section, refusing more than `max` values before allocating.
pub fn decode(b: &[u8], max: usize) -> Result<Vec<i64>> {
    let head = *b.first().ok_or_else(|| corrupt("empty integer section"))?;
    let zs: Vec<u64> = match head >> 4 {
        RAW => {
            if !(b.len() - 1).is_multiple_of(8) {
                return Err(corrupt("raw integer section not a multiple of 8 bytes"));
            }
            let n = check_count(((b.len() - 1) / 8) as u64, max)?;
            (0..n)
                .map(|i| u64_at(b, 1 + 8 * i))
                .collect::<Result<_>>()?
        }
        PACKED if b.len() == 1 => Vec::new(),
        PACKED => {
            let mut zs = vec![u64_at(b, 1)?];
            simple8b::decode(&b[9..], max, &mut zs)?;
            zs
        }
        RLE => {
            let z0 = u64_at(b, 1)?;
            let (z1, k) = uvarint(&b[9..])?;
            let (n, _) = uvarint(&b[9 + k..])?;
            let n = check_count(n.saturating_add(1), max)?;
            std::iter::once(z0)
                .chain(std::iter::repeat_n(z1, n - 1))
                .collect()
        }
        e => return Err(corrupt(format!("unknown integer encoding {e}"))),
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

/// Encodes unsigned values as the same bytes as their signed reinterpretation.
pub fn encode_unsigned(vals: &[u64], out: &mut Vec<u8>) {
    let signed: Vec<i64> = vals.iter().map(|v| *v as i64).collect();
    encode(&signed, out);
}

/// Decodes an unsigned section (see [`decode`]).
pub fn decode_unsigned(b: &[u8], max: usize) -> Result<Vec<u64>> {
    Ok(decode(b, max)?.into_iter().map(|v| v as u64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &[i64]) -> Result<u8> {
        let mut b = Vec::new();
        encode(v, &mut b);
        assert_eq!(decode(&b, 1 << 20)?, v);
        Ok(b[0])
    }

    #[test]
    fn picks_influx_encodings() -> Result<()> {
        let mut b = Vec::new();
        encode(&(0..=10).map(|i| i * 3).collect::<Vec<_>>(), &mut b);
        assert_eq!(b, [0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0x0A]);
        assert_eq!(round_trip(&[1, 5, 2, 100, -7])?, 0x10);
        assert_eq!(round_trip(&[i64::MIN, i64::MAX, 0])?, 0x00);
        assert_eq!(round_trip(&[7])?, 0x10);
        assert_eq!(round_trip(&[7, 9])?, 0x10);
        assert_eq!(round_trip(&[])?, 0x10);
        let mut b = Vec::new();
        encode_unsigned(&[u64::MAX, 0, 1 << 63], &mut b);
        assert_eq!(decode_unsigned(&b, 10)?, [u64::MAX, 0, 1 << 63]);
        Ok(())
    }

    #[test]
    fn hostile_sections_are_refused() {
        let mut b = vec![0x20, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decode(&b, 1000),
            Err(crate::TsmError::LimitExceeded { .. })
        ));
        assert!(decode(&[0x00, 1], 10).is_err());
        assert!(decode(&[0x30], 10).is_err());
        assert!(decode(&[0x10, 0, 0], 10).is_err());
    }
}
