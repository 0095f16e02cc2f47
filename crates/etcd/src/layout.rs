//! Names of the archive's objects and checkpoint records under DEST.
//!
//! ```text
//! chunks/<first:020>-<last:020>-e<epoch>.wal[.enc]  committed entries first..=last, one segment
//! snap/<term:016x>-<index:016x>.snap[.enc]  a member's raft snapshot file, as etcd wrote it
//! checkpoints/...                           lock, fences and the trusted records (checkpoint crate)
//! bases/db/<index:020>-e<epoch>.db[.enc]    a base: the keyspace (bbolt db) as of raft index
//! bases/checkpoints/...                     the bases' own lock and records
//! ```
//!
//! Record keys: `chunk/<first:020>` (payload [`crate::ChunkInfo`]), `snap/<file name>`
//! (payload [`crate::SnapInfo`]), `gap/<from:020>` (payload [`crate::GapInfo`]).

/// Sub-directory of DEST holding base backups and their own checkpoint (own lease, so a
/// base can be taken while an archiver holds the archive's).
pub const BASES: &str = "bases";

/// Object name (under [`BASES`]) of the base at raft index `index`, taken by lock `epoch`.
pub fn base_name(index: u64, epoch: u64) -> String {
    format!("db/{index:020}-e{epoch}.db")
}

/// Record key (in the bases checkpoint) of the base at `index`.
pub fn base_key(index: u64) -> String {
    format!("base/{index:020}")
}

/// Object name of the chunk holding `first..=last`, written by the holder of lock `epoch`
/// (only that holder ever writes this name, so a retry may overwrite it).
pub fn chunk_name(first: u64, last: u64, epoch: u64) -> String {
    format!("chunks/{first:020}-{last:020}-e{epoch}.wal")
}

/// Record key of the chunk starting at `first`.
pub fn chunk_key(first: u64) -> String {
    format!("chunk/{first:020}")
}

/// Object name of an archived `.snap` file.
pub fn snap_name(file: &str) -> String {
    format!("snap/{file}")
}

/// Record key of an archived `.snap` file.
pub fn snap_key(file: &str) -> String {
    format!("snap/{file}")
}

/// Record key of a gap starting at `from`.
pub fn gap_key(from: u64) -> String {
    format!("gap/{from:020}")
}

/// Parses `<term:016x>-<index:016x>.snap` (etcd's snapshot file name) into (term, index).
pub fn parse_snap_file(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".snap")?;
    let (t, i) = stem.split_once('-')?;
    if t.len() != 16 || i.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(t, 16).ok()?,
        u64::from_str_radix(i, 16).ok()?,
    ))
}

/// Name under which a stored object sits when encrypted.
pub fn stored_name(name: &str, encrypted: bool) -> String {
    if encrypted {
        snapshotd_checkpoint::encrypted_name(name)
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            chunk_name(1, 12, 3),
            "chunks/00000000000000000001-00000000000000000012-e3.wal"
        );
        assert_eq!(
            parse_snap_file("0000000000000002-0000000000000065.snap"),
            Some((2, 0x65))
        );
        assert_eq!(parse_snap_file("2-65.snap"), None);
        assert_eq!(
            parse_snap_file("0000000000000002-0000000000000065.snap.db"),
            None
        );
    }
}
