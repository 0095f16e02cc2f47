//! Whole blocks: type byte, uvarint timestamp-section length, timestamp section, value section.

use crate::codec::{boolean, float, integer, put_uvarint, string, timestamp, uvarint};
use crate::error::{Result, corrupt};
use crate::values::{BlockType, Values};

/// Encodes `values` (one block's worth) as block data, without the CRC.
pub fn encode_block(values: &Values, out: &mut Vec<u8>) -> Result<()> {
    encode_range(values, 0, values.len(), out)
}

/// Encodes the points `[from, to)` of `values` as block data, without the CRC.
pub(crate) fn encode_range(
    values: &Values,
    from: usize,
    to: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    let typ = values.block_type().byte();
    match values {
        Values::Float(v) => pack(typ, &v[from..to], out, |x, o| {
            float::encode(&x.iter().map(|p| p.1).collect::<Vec<_>>(), o)
        }),
        Values::Integer(v) => pack(typ, &v[from..to], out, |x, o| {
            integer::encode(&x.iter().map(|p| p.1).collect::<Vec<_>>(), o);
            Ok(())
        }),
        Values::Unsigned(v) => pack(typ, &v[from..to], out, |x, o| {
            integer::encode_unsigned(&x.iter().map(|p| p.1).collect::<Vec<_>>(), o);
            Ok(())
        }),
        Values::Boolean(v) => pack(typ, &v[from..to], out, |x, o| {
            boolean::encode(&x.iter().map(|p| p.1).collect::<Vec<_>>(), o);
            Ok(())
        }),
        Values::String(v) => pack(typ, &v[from..to], out, |x, o| {
            string::encode(&x.iter().map(|p| p.1.as_str()).collect::<Vec<_>>(), o)
        }),
    }
}

/// Writes the type byte, the timestamp section with its length, then the values by `enc`.
fn pack<T>(
    typ: u8,
    points: &[(i64, T)],
    out: &mut Vec<u8>,
    enc: impl FnOnce(&[(i64, T)], &mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let ts: Vec<i64> = points.iter().map(|p| p.0).collect();
    let mut tsb = Vec::with_capacity(16);
    timestamp::encode(&ts, &mut tsb);
    out.push(typ);
    put_uvarint(out, tsb.len() as u64);
    out.extend_from_slice(&tsb);
    enc(points, out)
}

/// Splits block data into (type, timestamp section, value section).
pub fn split_block(data: &[u8]) -> Result<(BlockType, &[u8], &[u8])> {
    let typ = *data.first().ok_or_else(|| corrupt("empty block"))?;
    let typ =
        BlockType::from_byte(typ).ok_or_else(|| corrupt(format!("unknown block type {typ}")))?;
    let (ts_len, k) = uvarint(&data[1..])?;
    let ts_end = usize::try_from(ts_len)
        .ok()
        .and_then(|l| (1 + k).checked_add(l))
        .filter(|e| *e <= data.len())
        .ok_or_else(|| corrupt("timestamp section runs past the block end"))?;
    Ok((typ, &data[1 + k..ts_end], &data[ts_end..]))
}

/// Number of points in block data, from its timestamp section alone.
pub fn block_count(data: &[u8]) -> Result<u64> {
    let (_, ts, _) = split_block(data)?;
    timestamp::count(ts)
}

/// Decodes block data (after the CRC) into typed values, refusing more than `max` points. The
/// timestamp and value counts must agree.
pub fn decode_block(data: &[u8], max: usize) -> Result<Values> {
    let (typ, tsb, vb) = split_block(data)?;
    let ts = timestamp::decode(tsb, max)?;
    fn zip<T>(ts: Vec<i64>, vals: Vec<T>) -> Result<Vec<(i64, T)>> {
        if ts.len() != vals.len() {
            return Err(corrupt(format!(
                "block has {} times but {} values",
                ts.len(),
                vals.len()
            )));
        }
        Ok(ts.into_iter().zip(vals).collect())
    }
    Ok(match typ {
        BlockType::Float => Values::Float(zip(ts, float::decode(vb, max)?)?),
        BlockType::Integer => Values::Integer(zip(ts, integer::decode(vb, max)?)?),
        BlockType::Unsigned => Values::Unsigned(zip(ts, integer::decode_unsigned(vb, max)?)?),
        BlockType::Boolean => Values::Boolean(zip(ts, boolean::decode(vb, max)?)?),
        BlockType::String => Values::String(zip(ts, string::decode(vb, max)?)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_count() -> Result<()> {
        let all = [
            Values::Float(vec![(1, 1.5), (2, -0.0)]),
            Values::Integer(vec![(-5, i64::MIN), (0, i64::MAX)]),
            Values::Unsigned(vec![(10, u64::MAX)]),
            Values::Boolean(vec![(1, true), (2, false), (3, true)]),
            Values::String(vec![(7, String::new()), (8, "ü".into())]),
        ];
        for v in all {
            let mut b = Vec::new();
            encode_block(&v, &mut b)?;
            assert_eq!(b[0], v.block_type().byte());
            assert_eq!(block_count(&b)?, v.len() as u64);
            assert_eq!(decode_block(&b, 1000)?, v);
        }
        assert!(decode_block(&[9, 0], 10).is_err());
        assert!(decode_block(&[0, 0xFF], 10).is_err());
        // Two times, one boolean: the counts disagree.
        let mut b = vec![2, 11];
        b.extend([0x2C, 0, 0, 0, 0, 0, 0, 0, 1, 2, 2]);
        b.extend([0x10, 1, 0x80]);
        assert!(decode_block(&b, 10).is_err());
        Ok(())
    }
}
