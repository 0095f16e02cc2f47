//! Frame layout: an 8-byte little-endian length word (padding flag and count in the top
//! byte), the record bytes, then zero padding up to the next multiple of 8.

/// Size of the length word.
pub(crate) const LEN_WORD: u64 = 8;
/// Sector size used by the torn-write test.
pub(crate) const SECTOR: u64 = 512;
/// etcd 3.4's fixed record size limit (`maxWALEntrySizeLimit`, 10 MiB).
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 10 * 1024 * 1024;

/// Length word and padding for a record of `n` bytes.
pub(crate) fn encode_len(n: usize) -> (u64, usize) {
    let pad = (8 - n % 8) % 8;
    let mut word = n as u64;
    if pad != 0 {
        word |= (0x80 | pad as u64) << 56;
    }
    (word, pad)
}

/// Record length and padding announced by a length word.
pub(crate) fn decode_len(word: u64) -> (u64, u64) {
    let n = word & 0x00ff_ffff_ffff_ffff;
    let pad = if word >> 63 == 1 { (word >> 56) & 7 } else { 0 };
    (n, pad)
}

/// Torn-write test: split `body` (which starts at file offset `body_off`) at 512-byte file
/// sector boundaries; a frame is torn when any of those chunks is entirely zero.
pub(crate) fn is_torn(body: &[u8], body_off: u64) -> bool {
    let mut off = body_off;
    let mut rest = body;
    while !rest.is_empty() {
        let room = (SECTOR - off % SECTOR) as usize;
        let take = room.min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        if chunk.iter().all(|&b| b == 0) {
            return true;
        }
        off += take as u64;
        rest = tail;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_words() {
        assert_eq!(encode_len(4), (0x8400_0000_0000_0004, 4));
        assert_eq!(encode_len(32), (32, 0));
        assert_eq!(encode_len(14), (0x8200_0000_0000_000e, 2));
        assert_eq!(decode_len(0x8400_0000_0000_0004), (4, 4));
        // Padding bits are only honoured when the flag is set; bits 59..62 are ignored.
        assert_eq!(decode_len(0x0400_0000_0000_0004), (4, 0));
        assert_eq!(decode_len(0xfc00_0000_0000_0004), (4, 4));
    }

    #[test]
    fn torn_chunks_follow_file_sectors() {
        // Body starting at offset 504: first chunk is 8 bytes, then a full sector.
        let mut body = vec![1u8; 8 + 512];
        assert!(!is_torn(&body, 504));
        body[8..].fill(0);
        assert!(is_torn(&body, 504));
        body[8] = 1;
        assert!(!is_torn(&body, 504));
        body[..8].fill(0);
        assert!(is_torn(&body, 504));
        assert!(!is_torn(&[], 0));
    }
}
