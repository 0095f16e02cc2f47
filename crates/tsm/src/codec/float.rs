//! Float sections (header 0x10): Gorilla XOR compression. The first value is stored as its 64
//! raw bits; each next value as its XOR with the previous one: `0` when equal, else `1` then
//! either `0` + the meaningful bits inside the previous leading/trailing-zero window, or `1` +
//! 5-bit leading-zero count + 6-bit meaningful-bit count (0 means 64) + those bits. The stream
//! ends with the NaN whose bits are [`END`] coded the same way, then zero padding.

use super::bits::{BitReader, BitWriter};
use super::check_count;
use crate::error::{Result, TsmError, corrupt};

/// The end-of-stream marker; a value with exactly these bits cannot be stored.
pub const END: u64 = 0x7FF8_0000_0000_0001;

/// Appends the section for `vals` to `out`. Any bit pattern (NaN payloads included) is kept
/// exactly, except the [`END`] marker itself, which is refused.
pub fn encode(vals: &[f64], out: &mut Vec<u8>) -> Result<()> {
    if vals.iter().any(|v| v.to_bits() == END) {
        return Err(TsmError::Unsupported(format!(
            "the float with bits {END:#018x} is the TSM end marker"
        )));
    }
    out.push(0x10);
    let mut w = BitWriter::new(out);
    let mut it = vals.iter().map(|v| v.to_bits()).chain([END]);
    let mut prev = it.next().unwrap_or(END);
    w.write(prev, 64);
    let mut window: Option<(u32, u32)> = None;
    for bits in it {
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.write(0, 1);
            continue;
        }
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        match window {
            Some((l, t)) if lead >= l && trail >= t => {
                w.write(0b10, 2);
                w.write(x >> t, 64 - l - t);
            }
            _ => {
                window = Some((lead, trail));
                let sig = 64 - lead - trail;
                w.write(0b11, 2);
                w.write(u64::from(lead), 5);
                w.write(u64::from(sig & 63), 6);
                w.write(x >> trail, sig);
            }
        }
    }
    w.finish();
    Ok(())
}

/// Decodes a float section, refusing more than `max` values.
pub fn decode(b: &[u8], max: usize) -> Result<Vec<f64>> {
    if b.first().map(|h| h >> 4) != Some(1) {
        return Err(corrupt("unknown float encoding"));
    }
    let mut r = BitReader::new(&b[1..]);
    let mut prev = r.read(64)?;
    // Every value after the first takes at least one bit.
    let bound = check_count(1 + r.remaining() as u64, max).unwrap_or(max);
    let mut out = Vec::with_capacity(bound.min(1024));
    let (mut lead, mut trail) = (0u32, 0u32);
    while prev != END {
        check_count(out.len() as u64 + 1, max)?;
        out.push(f64::from_bits(prev));
        if r.read(1)? == 0 {
            continue;
        }
        if r.read(1)? == 1 {
            lead = r.read(5)? as u32;
            let sig = match r.read(6)? as u32 {
                0 => 64,
                s => s,
            };
            if lead + sig > 64 {
                return Err(corrupt("float window wider than 64 bits"));
            }
            trail = 64 - lead - sig;
        }
        let x = r.read(64 - lead - trail)?;
        prev ^= x.checked_shl(trail).unwrap_or(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bit_exact_and_refuses_the_marker() -> Result<()> {
        let vals = [
            63.943,
            63.943,
            1.5,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7FF0_0000_0000_0001),
            f64::from_bits(0xFFF8_DEAD_BEEF_0000),
            f64::MIN_POSITIVE,
            f64::MAX,
            1e-300,
            5e-324,
        ];
        let mut b = Vec::new();
        encode(&vals, &mut b)?;
        assert_eq!(
            &b[..9],
            &[0x10, 0x40, 0x4F, 0xF8, 0xB4, 0x39, 0x58, 0x10, 0x62]
        );
        let got = decode(&b, 100)?;
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&vals));
        assert!(decode(&b, 3).is_err());
        let mut e = Vec::new();
        encode(&[], &mut e)?;
        assert!(decode(&e, 1)?.is_empty());
        assert!(encode(&[f64::from_bits(END)], &mut Vec::new()).is_err());
        assert!(decode(&b[..b.len() - 3], 100).is_err());
        Ok(())
    }
}
