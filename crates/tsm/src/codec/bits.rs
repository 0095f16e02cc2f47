//! Most-significant-bit-first bit streams used by the float codec.

use crate::error::{Result, corrupt};

/// Appends bits to a byte vector, high bit of each byte first.
pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer appending to `out`.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Writes the low `n` (<= 64) bits of `v`, most significant first.
    pub(crate) fn write(&mut self, v: u64, n: u32) {
        if n > 32 {
            self.write(v >> 32, n - 32);
            self.write(v & 0xFFFF_FFFF, 32);
            return;
        }
        let v = if n == 0 {
            0
        } else {
            v & (u64::MAX >> (64 - n))
        };
        self.acc = (self.acc << n) | v;
        self.n += n;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
    }

    /// Pads the last byte with zero bits.
    pub(crate) fn finish(self) {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
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
    pub(crate) fn read(&mut self, n: u32) -> Result<u64> {
        if (n as usize) > self.remaining() {
            return Err(corrupt("float stream truncated"));
        }
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.b[self.pos / 8];
            let used = (self.pos % 8) as u32;
            let take = (8 - used).min(left);
            let bits = (u64::from(byte) >> (8 - used - take)) & ((1u64 << take) - 1);
            v = if take == 64 { bits } else { (v << take) | bits };
            self.pos += take as usize;
            left -= take;
        }
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
