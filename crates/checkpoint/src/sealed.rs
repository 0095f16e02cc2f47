//! The envelope of every checkpoint object: plain with a SHA-256 trailer, or encrypted.

use sha2::{Digest, Sha256};

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::stream::{decrypt_bytes, encrypt_bytes, is_encrypted};

/// Magic of a plain (checksummed, unencrypted) checkpoint object.
pub const PLAIN_MAGIC: &[u8; 8] = b"SNAPCPT\x01";
const SHA_LEN: usize = 32;

/// Seals `body`: encrypted under `key` bound to `context`, else magic + body + SHA-256.
pub(crate) fn seal(key: Option<&MasterKey>, context: &str, body: &[u8]) -> Result<Vec<u8>> {
    match key {
        Some(k) => Ok(encrypt_bytes(k, context, body)?),
        None => {
            let mut out = Vec::with_capacity(PLAIN_MAGIC.len() + body.len() + SHA_LEN);
            out.extend_from_slice(PLAIN_MAGIC);
            out.extend_from_slice(body);
            let sum = Sha256::digest(&out);
            out.extend_from_slice(&sum);
            Ok(out)
        }
    }
}

/// Opens a sealed object; the error string says why it is not trustworthy.
pub(crate) fn unseal(
    key: Option<&MasterKey>,
    context: &str,
    data: &[u8],
    limit: u64,
) -> std::result::Result<Vec<u8>, String> {
    if is_encrypted(data) {
        let Some(k) = key else {
            return Err("object is encrypted but no key was given".into());
        };
        return decrypt_bytes(k, context, data, limit).map_err(|e| e.to_string());
    }
    if key.is_some() {
        return Err("unencrypted object in an encrypted checkpoint (not authentic)".into());
    }
    if data.len() < PLAIN_MAGIC.len() + SHA_LEN || &data[..PLAIN_MAGIC.len()] != PLAIN_MAGIC {
        return Err("not a checkpoint object (bad magic or too short)".into());
    }
    let (content, sum) = data.split_at(data.len() - SHA_LEN);
    if Sha256::digest(content).as_slice() != sum {
        return Err("checksum mismatch (corrupted or truncated)".into());
    }
    let body = &content[PLAIN_MAGIC.len()..];
    if body.len() as u64 > limit {
        return Err(format!("body larger than {limit} bytes"));
    }
    Ok(body.to_vec())
}

/// Reads an object whole, refusing more than `limit` bytes. `None` if absent.
pub(crate) async fn get_bounded(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
    limit: u64,
) -> Result<Option<Vec<u8>>> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let got = match store.get(path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::storage("get", path, e)),
    };
    let too_big = || Error::Corrupt {
        path: path.to_string(),
        reason: format!("object larger than the {limit}-byte limit"),
    };
    if got.meta.size > limit {
        return Err(too_big());
    }
    let mut out = Vec::with_capacity(usize::try_from(got.meta.size).unwrap_or(0));
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::storage("get", path, e))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}
