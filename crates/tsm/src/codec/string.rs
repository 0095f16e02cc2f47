//! String sections (header 0x10): one Snappy block-format buffer holding, per value, a uvarint
//! byte length and the UTF-8 bytes.

use super::{check_count, put_uvarint, uvarint};
use crate::error::{Result, TsmError, corrupt};

/// Largest decompressed string section accepted.
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// Appends the section for `vals` to `out`.
pub fn encode<S: AsRef<str>>(vals: &[S], out: &mut Vec<u8>) -> Result<()> {
    let mut raw = Vec::with_capacity(vals.iter().map(|s| s.as_ref().len() + 2).sum());
    for s in vals {
        put_uvarint(&mut raw, s.as_ref().len() as u64);
        raw.extend_from_slice(s.as_ref().as_bytes());
    }
    out.push(0x10);
    let start = out.len();
    out.resize(start + snap::raw::max_compress_len(raw.len()), 0);
    let n = snap::raw::Encoder::new()
        .compress(&raw, &mut out[start..])
        .map_err(|e| TsmError::Unsupported(format!("string block: {e}")))?;
    out.truncate(start + n);
    Ok(())
}

/// Decodes a string section, refusing more than `max` values or more than
/// [`MAX_DECOMPRESSED`] bytes; invalid UTF-8 is corrupt.
pub fn decode(b: &[u8], max: usize) -> Result<Vec<String>> {
    if b.first().map(|h| h >> 4) != Some(1) {
        return Err(corrupt("unknown string encoding"));
    }
    let len = snap::raw::decompress_len(&b[1..]).map_err(|e| corrupt(format!("snappy: {e}")))?;
    if len > MAX_DECOMPRESSED {
        return Err(TsmError::LimitExceeded {
            what: "decompressed string block",
            limit: MAX_DECOMPRESSED as u64,
            got: len as u64,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&b[1..])
        .map_err(|e| corrupt(format!("snappy: {e}")))?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        check_count(out.len() as u64 + 1, max)?;
        let (n, k) = uvarint(&raw[i..])?;
        i += k;
        let s = usize::try_from(n)
            .ok()
            .and_then(|n| raw.get(i..i.checked_add(n)?))
            .ok_or_else(|| corrupt("string runs past the end of its block"))?;
        let s = std::str::from_utf8(s).map_err(|_| corrupt("string value is not UTF-8"))?;
        out.push(s.to_owned());
        i += s.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_input() -> Result<()> {
        let vals = ["", "a", "héllo wörld ✓", &"x".repeat(70_000), ""];
        let mut b = Vec::new();
        encode(&vals, &mut b)?;
        assert_eq!(decode(&b, 10)?, vals);
        assert!(decode(&b, 2).is_err());
        assert!(decode(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], 10).is_err());
        let mut bad = Vec::new();
        encode(&["ok"], &mut bad)?;
        let last = bad.len() - 1;
        bad[last] = 0xFF;
        assert!(decode(&bad, 10).is_err());
        // Literal "ab" then a copy of length 4 at offset 2: "ababab", which is not a length-prefixed list.
        assert!(decode(&[0x10, 6, 0x04, b'a', b'b', 0x01, 0x02], 10).is_err());
        Ok(())
    }
}
