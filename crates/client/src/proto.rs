//! Glue between the wire crate's types and the client's records.

use bytes::{Bytes, BytesMut};
use snapshotd_wire::portable::{
    Manifest, ManifestFile, ManifestMeta, MetaSummary, PortableData, SnapshotdInfo,
};
use snapshotd_wire::{
    InfoCodec, Limits, MetaBackupCodec, ShardIdMapCodec, UploadAckCodec, WireError,
};
use tokio_util::codec::Decoder;

use crate::conn::Window;
use crate::error::ClientError;
use crate::layout::{FileRecord, ManifestDraft, MetaRecord, ParsedManifest};

/// The client's version, recorded in manifests.
pub const TOOL_VERSION: &str = concat!("snapshotd ", env!("CARGO_PKG_VERSION"));

/// Decodes one complete reply held in memory, rejecting trailing bytes.
fn decode_whole<C: Decoder<Error = WireError>>(
    mut codec: C,
    raw: &[u8],
    frame: &'static str,
) -> Result<C::Item, WireError> {
    let mut buf = BytesMut::from(raw);
    let item = codec.decode_eof(&mut buf)?.ok_or(WireError::Truncated {
        frame,
        buffered: buf.len(),
    })?;
    // A second call checks that nothing but permitted whitespace follows.
    codec.decode_eof(&mut buf)?;
    Ok(item)
}

/// The client error for a reply that did not decode: the server's own in-band error when it
/// sent one, a reply cut short by the connection closing (an I/O error, worth retrying),
/// else a protocol violation.
pub fn reply_error(what: &str, e: WireError) -> ClientError {
    match e {
        WireError::Remote(r) => ClientError::Remote {
            what: what.to_string(),
            code: r.code,
            message: r.message,
        },
        e @ WireError::Truncated { .. } => ClientError::io(
            format!("{what}: reply cut short"),
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e.to_string()),
        ),
        e => ClientError::protocol(what, e),
    }
}

/// The `meta.Data` blob of a type-1 reply.
pub fn decode_meta_frame(raw: &[u8], limits: &Limits) -> Result<Bytes, WireError> {
    decode_whole(MetaBackupCodec::new(*limits), raw, "meta-backup frame").map(|m| m.meta)
}

/// The shard paths of a type-3/4 reply.
pub fn decode_info(raw: &[u8], limits: &Limits) -> Result<Vec<String>, WireError> {
    decode_whole(InfoCodec::new(*limits), raw, "info response").map(|i| i.paths)
}

/// The pairs of a type-6 reply.
pub fn decode_id_map(raw: &[u8], limits: &Limits) -> Result<Vec<(u64, u64)>, WireError> {
    decode_whole(ShardIdMapCodec::new(*limits), raw, "shard-id map").map(|m| m.pairs)
}

/// The number of files an acknowledging server restored (its in-band error otherwise).
pub fn decode_upload_ack(raw: &[u8], limits: &Limits) -> Result<u64, WireError> {
    decode_whole(UploadAckCodec::new(*limits), raw, "upload ack").map(|a| a.files)
}

/// The `.meta` file for a blob.
pub fn encode_portable_meta(blob: &Bytes) -> Vec<u8> {
    PortableData::new(blob.clone()).to_file_bytes()
}

/// The blob inside a `.meta` file.
pub fn decode_portable_meta(file: &[u8]) -> Result<Vec<u8>, WireError> {
    PortableData::from_file_bytes(file, &Limits::default()).map(|p| p.data.to_vec())
}

/// A one-line description of a `meta.Data` blob.
pub fn summarize_meta(blob: &[u8]) -> Result<String, WireError> {
    let s = MetaSummary::decode_blob(blob, &Limits::default())?;
    let dbs: Vec<&str> = s.databases.iter().map(|d| d.name.as_str()).collect();
    Ok(format!(
        "meta decodes: {} database(s) [{}], {} user(s), {} shard(s), max shard id {}",
        s.databases.len(),
        dbs.join(", "),
        s.users.len(),
        s.shards().count(),
        s.max_shard_id
    ))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The manifest file for a finished backup.
pub fn encode_manifest(d: &ManifestDraft) -> Result<Vec<u8>, WireError> {
    let (since, start, end) = match d.window {
        Window::Full => (None, None, None),
        Window::Since(t) => (Some(t.to_string()), None, None),
        Window::Export { start, end } => (None, Some(start.to_string()), Some(end.to_string())),
    };
    let m = Manifest {
        meta: ManifestMeta {
            file_name: d.meta.file_name.clone(),
            size: i64_of(d.meta.size),
            sha256: d.meta.sha256.clone(),
            bytes: d.meta.bytes,
        },
        limited: false,
        files: d
            .files
            .iter()
            .map(|f| ManifestFile {
                database: f.db.clone(),
                policy: f.rp.clone(),
                shard_id: f.shard_id,
                file_name: f.file_name.clone(),
                size: i64_of(f.size),
                last_modified: 0,
                sha256: f.sha256.clone(),
                bytes: f.bytes,
            })
            .collect(),
        database: String::new(),
        policy: String::new(),
        shard_id: 0,
        snapshotd: Some(SnapshotdInfo {
            version: TOOL_VERSION.to_string(),
            database: d.request.db.clone().unwrap_or_default(),
            retention_policy: d.request.rp.clone().unwrap_or_default(),
            shard_id: d.request.shard,
            since,
            start,
            end,
            complete: true,
        }),
    };
    m.to_bytes()
}

/// Reads a manifest into the client's records.
pub fn decode_manifest(name: &str, raw: &[u8]) -> Result<ParsedManifest, String> {
    let m = Manifest::from_bytes(raw).map_err(|e| e.to_string())?;
    let size =
        |v: i64, what: &str| u64::try_from(v).map_err(|_| format!("negative size {v} for {what}"));
    let files = m
        .files
        .iter()
        .map(|f| {
            Ok(FileRecord {
                db: f.database.clone(),
                rp: f.policy.clone(),
                shard_id: f.shard_id,
                file_name: f.file_name.clone(),
                size: size(f.size, &f.file_name)?,
                sha256: f.sha256.clone(),
                bytes: f.bytes,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ParsedManifest {
        name: name.to_string(),
        meta: MetaRecord {
            file_name: m.meta.file_name.clone(),
            size: size(m.meta.size, &m.meta.file_name)?,
            sha256: m.meta.sha256.clone(),
            bytes: m.meta.bytes,
        },
        files,
        by_snapshotd: m.snapshotd.is_some(),
        whole: m
            .snapshotd
            .as_ref()
            .is_some_and(SnapshotdInfo::holds_whole_shards),
    })
}
