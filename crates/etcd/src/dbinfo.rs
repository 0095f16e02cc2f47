//! What a base needs to know about an etcd 3.4 backend (`member/snap/db`): the raft index
//! the keyspace represents (the `meta` bucket's `consistent_index`: etcd skips entries at or
//! below it on replay), the newest revision (the `key` bucket's greatest key, or the last
//! compaction's when that is newer) and the members (the `members` bucket, one JSON member per id).

use crate::bolt::Bolt;
use crate::error::{Error, Result};
use crate::membership::Member;

/// Facts read from an etcd backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    /// Last raft index applied to the keyspace.
    pub consistent_index: u64,
    /// Newest revision in the keyspace (1 when no key was ever written).
    pub revision: i64,
    /// Cluster members recorded in the backend.
    pub members: Vec<Member>,
}

/// Reads `data` (a bbolt file; `name` names it in errors).
pub fn read(data: &[u8], name: &str) -> Result<DbInfo> {
    let db = Bolt::open(data, name)?;
    let corrupt = |reason: String| Error::Corrupt {
        name: name.to_string(),
        reason,
    };
    let meta = db
        .bucket(b"meta")?
        .ok_or_else(|| corrupt("no meta bucket: not an etcd v3 backend".into()))?;
    let ci = db
        .get(meta, b"consistent_index")?
        .ok_or_else(|| corrupt("no consistent_index in the meta bucket".into()))?;
    let consistent_index = u64::from_be_bytes(
        ci.try_into()
            .map_err(|_| corrupt(format!("consistent_index is {} bytes, not 8", ci.len())))?,
    );
    let revision = match db.bucket(b"key")? {
        Some(b) => match db.last(b)? {
            // A revision key is the main revision (8 bytes big-endian), '_', the sub revision.
            Some((k, _)) if k.len() >= 8 => {
                i64::from_be_bytes(k[..8].try_into().unwrap_or_default())
            }
            Some((k, _)) => return Err(corrupt(format!("revision key of {} bytes", k.len()))),
            None => 1,
        },
        None => 1,
    };
    // A compaction can remove the newest keys (tombstones); etcd then resumes from the
    // compacted revision, stored in `meta` the same way.
    let compacted = match db.get(meta, b"finishedCompactRev")? {
        Some(v) if v.len() >= 8 => i64::from_be_bytes(v[..8].try_into().unwrap_or_default()),
        _ => 0,
    };
    let revision = revision.max(compacted);
    let mut members = Vec::new();
    if let Some(b) = db.bucket(b"members")? {
        for (k, v) in db.entries(b)? {
            let m: Member = serde_json::from_slice(v)
                .map_err(|e| corrupt(format!("member {}: {e}", String::from_utf8_lossy(k))))?;
            members.push(m);
        }
    }
    Ok(DbInfo {
        consistent_index,
        revision,
        members,
    })
}
