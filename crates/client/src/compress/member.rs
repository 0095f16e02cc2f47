//! One gzip member per chunk, and the "is it worth deflating" probe.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, GzBuilder, Status};

use super::MIN_SAVING_PERCENT;

/// Appends one complete gzip member holding `data` to `out` (header, deflate data at
/// `level`, CRC-32 and ISIZE trailer). `filename` goes into the header's `FNAME` field.
pub fn encode_member(
    data: &[u8],
    level: u32,
    filename: Option<&[u8]>,
    out: Vec<u8>,
) -> io::Result<Vec<u8>> {
    let mut b = GzBuilder::new().operating_system(255);
    if let Some(name) = filename {
        b = b.filename(name);
    }
    let mut gz = b.write(out, Compression::new(level.min(9)));
    gz.write_all(data)?;
    gz.finish()
}

/// Whether deflating `sample` at `level` saves at least [`MIN_SAVING_PERCENT`] of it.
/// `scratch` is reused between calls.
pub fn shrinks_enough(sample: &[u8], level: u32, scratch: &mut Vec<u8>) -> bool {
    if sample.is_empty() || level == 0 {
        return false;
    }
    let len = sample.len() as u64;
    // Output beyond this size is not a useful saving, so the deflater may stop there.
    let budget = len - len * MIN_SAVING_PERCENT / 100;
    scratch.clear();
    scratch.reserve(usize::try_from(budget).unwrap_or(usize::MAX));
    let mut c = Compress::new(Compression::new(level.min(9)), false);
    loop {
        let (fed_before, out_before) = (c.total_in(), c.total_out());
        let fed = usize::try_from(fed_before)
            .unwrap_or(usize::MAX)
            .min(sample.len());
        match c.compress_vec(&sample[fed..], scratch, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return c.total_out() <= budget,
            Ok(_) => {}
            Err(_) => return false,
        }
        let stuck = c.total_in() == fed_before && c.total_out() == out_before;
        if stuck || c.total_out() >= budget {
            return false;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    /// Bytes that deflate cannot shrink (xorshift output).
    pub(crate) fn noise(n: usize, mut seed: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    /// Line-protocol-like text: very compressible.
    pub(crate) fn text(n: usize) -> Vec<u8> {
        let mut s = String::new();
        let mut i = 0u64;
        while s.len() < n {
            s.push_str(&format!(
                "cpu,host=h{} usage={}.{} {}\n",
                i % 50,
                i % 97,
                i % 10,
                i
            ));
            i += 1;
        }
        s.truncate(n);
        s.into_bytes()
    }

    fn le32(b: &[u8]) -> u32 {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn member_has_header_crc_and_isize_of_its_chunk() {
        let data = text(300_000);
        let m = encode_member(&data, 1, Some(b"x.tar"), Vec::new()).unwrap();
        assert_eq!(&m[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(m[3] & 0x08, 0x08, "FNAME flag");
        let n = m.len();
        assert_eq!(le32(&m[n - 4..]), data.len() as u32, "ISIZE");
        let mut crc = flate2::Crc::new();
        crc.update(&data);
        assert_eq!(le32(&m[n - 8..n - 4]), crc.sum(), "CRC-32");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&m[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn stored_member_is_barely_larger_than_its_data() {
        let data = noise(1 << 20, 7);
        let m = encode_member(&data, 0, None, Vec::new()).unwrap();
        assert!(m.len() > data.len());
        assert!(m.len() < data.len() + 200, "{} bytes", m.len());
    }

    #[test]
    fn text_shrinks_and_noise_does_not() {
        let mut scratch = Vec::new();
        assert!(shrinks_enough(&text(128 * 1024), 1, &mut scratch));
        assert!(!shrinks_enough(&noise(128 * 1024, 3), 1, &mut scratch));
        assert!(!shrinks_enough(&text(128 * 1024), 0, &mut scratch));
        assert!(!shrinks_enough(&[], 1, &mut scratch));
    }

    #[test]
    fn the_threshold_separates_a_small_saving_from_a_useful_one() {
        // A quarter noise and the rest zeros saves ~75 %: worth it. 60 % noise saves ~40 %
        // (like TSM of values with few decimals), under the bar.
        let mut quarter = noise(32 * 1024, 5);
        quarter.extend(vec![0u8; 96 * 1024]);
        let mut scratch = Vec::new();
        assert!(shrinks_enough(&quarter, 1, &mut scratch));
        let mut most = noise(77 * 1024, 9);
        most.extend(vec![0u8; 51 * 1024]);
        assert!(!shrinks_enough(&most, 1, &mut scratch));
    }
}
