//! Most-significant-bit-first bit streams used by the float codec.

use crate::error::{Result, corrupt};

/// Appends bits to a byte vector, high bit of each byte first, 8 bytes at a time.
pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Pending bits in the low `n` bits (higher bits are already flushed).
    acc: u128,
    n: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer appending to `out`.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Writes the low `n` (<= 64) bits of `v`, most significant first.
    #[inline]
    pub(crate) fn write(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let v = v & (u64::MAX >> (64 - n));
        self.acc = (self.acc << n) | u128::from(v);
        self.n += n;
        if self.n >= 64 {
            self.n -= 64;
            self.out
                .extend_from_slice(&((self.acc >> self.n) as u64).to_be_bytes());
        }
    }

    /// Flushes the pending bits, padding the last byte with zero bits.
    pub(crate) fn finish(self) {
        let bytes = self.n.div_ceil(8);
        let v = (self.acc << (bytes * 8 - self.n)) as u64;
        for i in (0..bytes).rev() {
            self.out.push((v >> (i * 8)) as u8);
        }
    }
}

/// Reads bits from a byte slice, high bit of each byte first.
pub(crate) struct BitReader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the start of `b`.
    pub(crate) fn new(b: &'a [u8]) -> Self {
        BitReader { b, pos: 0 }
    }

    /// Bits not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.b.len() * 8 - self.pos
    }

    /// Reads `n` (<= 64) bits as the low bits of the result.
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64> {
        if (n as usize) > self.remaining() {
            return Err(corrupt("float stream truncated"));
        }
        if n == 0 {
            return Ok(0);
        }
        let at = self.pos / 8;
        let shift = (self.pos % 8) as u32;
        let word = match self
            .b
            .get(at..at + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
        {
            Some(w) => w,
            None => {
                let mut w = [0u8; 8];
                let avail = self.b.len() - at;
                w[..avail].copy_from_slice(&self.b[at..]);
                w
            }
        };
        let mut v = (u64::from_be_bytes(word) << shift) >> (64 - n);
        // A read crossing into a 9th byte takes its remaining low bits from there.
        if shift + n > 64 {
            let k = shift + n - 64;
            v |= u64::from(self.b[at + 8]) >> (8 - k);
        }
        self.pos += n as usize;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() -> Result<()> {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        let items = [
            (1u64, 1u32),
            (0b101, 3),
            (u64::MAX, 64),
            (0x1234, 13),
            (0, 0),
            (7, 5),
        ];
        for (v, n) in items {
            w.write(v, n);
        }
        w.finish();
        let mut r = BitReader::new(&out);
        for (v, n) in items {
            let mask = if n == 0 { 0 } else { u64::MAX >> (64 - n) };
            assert_eq!(r.read(n)?, v & mask);
        }
        assert!(r.remaining() < 8);
        assert!(r.read(9).is_err());
        Ok(())
    }
}
