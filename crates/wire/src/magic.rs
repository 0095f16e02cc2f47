//! 8-byte big-endian magics and small helpers shared by the framed replies.

/// Magic of the meta-backup frame and the shard-id map (`00 00 00 00 59 59 01 01`).
pub const BACKUP_MAGIC: u64 = 0x5959_0101;

/// Magic of snapshotd's in-band error reply (`00 00 00 00 59 59 0B AD`); see [`ErrorReply`](crate::ErrorReply).
pub const ERROR_MAGIC: u64 = 0x5959_0BAD;

/// Magic of snapshotd's shard-upload acknowledgement (`00 00 00 00 59 59 0A CC`); see [`UploadAck`](crate::UploadAck).
pub const UPLOAD_ACK_MAGIC: u64 = 0x5959_0ACC;

/// Reads a big-endian u64 at `at`, `None` when fewer than 8 bytes are there.
pub(crate) fn be_u64(buf: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Whether `buf` (shorter than 8 bytes) could still become `magic`.
pub(crate) fn is_prefix_of(buf: &[u8], magic: u64) -> bool {
    let m = magic.to_be_bytes();
    buf.len() < 8 && m.starts_with(buf)
}

/// Largest single reservation made on behalf of an announced length: memory then grows with
/// the bytes that actually arrive, not with what a (possibly hostile) peer announced.
pub(crate) const RESERVE_STEP: usize = 256 * 1024;

/// Reserves room toward a frame of `total` bytes, at most [`RESERVE_STEP`] at a time.
pub(crate) fn reserve_toward(buf: &mut bytes::BytesMut, total: usize) {
    let missing = total.saturating_sub(buf.len());
    buf.reserve(missing.min(RESERVE_STEP));
}
