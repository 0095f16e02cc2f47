//! Archive objects on the destination: put and get, with optional encryption and a
//! SHA-256 of the stored bytes.

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use snapshotd_checkpoint::{Destination, MasterKey, decrypt_bytes, encrypt_bytes};

use crate::error::{Error, Result};
use crate::layout::stored_name;

/// Largest object this crate reads back (chunks and `.snap` files).
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// A stored object: its name under DEST, size and digest.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Name relative to DEST (with `.enc` when encrypted).
    pub object: String,
    /// Stored size.
    pub size: u64,
    /// SHA-256 (hex) of the stored bytes.
    pub sha256: String,
}

/// Writes `plain` as `name` (encrypted to `name.enc` with the name as context when a key
/// is given). Overwrites: each name is written by one holder only.
pub async fn put(
    dest: &Destination,
    key: Option<&MasterKey>,
    name: &str,
    plain: Vec<u8>,
) -> Result<Stored> {
    let object = stored_name(name, key.is_some());
    let data = match key {
        Some(k) => encrypt_bytes(k, name, &plain).map_err(|e| Error::Checkpoint {
            context: format!("encrypt {object}"),
            source: Box::new(e.into()),
        })?,
        None => plain,
    };
    let sha256 = hex::encode(Sha256::digest(&data));
    let size = data.len() as u64;
    let path = dest.path(&object);
    dest.store()
        .put(&path, PutPayload::from(Bytes::from(data)))
        .await
        .map_err(|source| Error::Storage {
            op: "put",
            path: format!("{dest}/{object}"),
            source,
        })?;
    Ok(Stored {
        object,
        size,
        sha256,
    })
}

/// Reads `object`, checks its size and SHA-256 against the record, and decrypts it (its
/// name without `.enc` is the decryption context).
pub async fn get(dest: &Destination, key: Option<&MasterKey>, rec: &Stored) -> Result<Vec<u8>> {
    if rec.size > MAX_OBJECT_BYTES {
        return Err(corrupt(
            rec,
            format!("recorded size {} is over the limit", rec.size),
        ));
    }
    let path = dest.path(&rec.object);
    let storage = |source| Error::Storage {
        op: "get",
        path: format!("{dest}/{}", rec.object),
        source,
    };
    let got = dest.store().get(&path).await.map_err(storage)?;
    if got.meta.size != rec.size {
        return Err(corrupt(
            rec,
            format!("size {} (recorded {})", got.meta.size, rec.size),
        ));
    }
    let data = got.bytes().await.map_err(storage)?;
    let sha = hex::encode(Sha256::digest(&data));
    if sha != rec.sha256 {
        return Err(corrupt(
            rec,
            format!("sha256 {sha} (recorded {})", rec.sha256),
        ));
    }
    match key {
        Some(k) => decrypt_bytes(k, plain_name(rec), &data, MAX_OBJECT_BYTES)
            .map_err(|e| corrupt(rec, format!("decrypt: {e}"))),
        None if rec.object.ends_with(snapshotd_checkpoint::ENC_SUFFIX) => {
            Err(corrupt(rec, "is encrypted: pass --encrypt-key-file".into()))
        }
        None => Ok(data.to_vec()),
    }
}

/// The name `rec` was encrypted under: its stored name without `.enc`.
fn plain_name(rec: &Stored) -> &str {
    rec.object
        .trim_end_matches(snapshotd_checkpoint::ENC_SUFFIX)
}

fn corrupt(rec: &Stored, reason: String) -> Error {
    Error::Corrupt {
        name: rec.object.clone(),
        reason,
    }
}
