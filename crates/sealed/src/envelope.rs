//! The envelope of every checkpoint object: plain with a SHA-256 trailer, or encrypted.

use sha2::{Digest, Sha256};

use crate::crypto::{CryptoError, MasterKey};
use crate::stream::{decrypt_bytes, encrypt_bytes, is_encrypted};

/// Magic of a plain (checksummed, unencrypted) checkpoint object.
pub const PLAIN_MAGIC: &[u8; 8] = b"SNAPCPT\x01";
const SHA_LEN: usize = 32;

/// Why a sealed object cannot be trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// The object is encrypted and no key was given.
    #[error("object is encrypted but no key was given")]
    NoKey,
    /// A key was given but the object is plain, so nothing proves who wrote it.
    #[error("unencrypted object in an encrypted checkpoint (not authentic)")]
    NotAuthentic,
    /// The object is neither encrypted nor a plain sealed object.
    #[error("not a checkpoint object (bad magic or too short)")]
    BadMagic,
    /// The plain object's SHA-256 trailer does not match its content.
    #[error("checksum mismatch (corrupted or truncated)")]
    Checksum,
    /// The body is above the caller's limit.
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Decryption failed (wrong key, tampering, truncation, ...).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Seals `body`: encrypted under `key` bound to `context`, else magic + body + SHA-256.
pub fn seal(key: Option<&MasterKey>, context: &str, body: &[u8]) -> Result<Vec<u8>, CryptoError> {
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

/// Opens a sealed object of at most `limit` body bytes, bound to `context`; the error says
/// why it is not trustworthy. With a key only encrypted objects are accepted.
pub fn unseal(
    key: Option<&MasterKey>,
    context: &str,
    data: &[u8],
    limit: u64,
) -> Result<Vec<u8>, UnsealError> {
    if is_encrypted(data) {
        let Some(k) = key else {
            return Err(UnsealError::NoKey);
        };
        return Ok(decrypt_bytes(k, context, data, limit)?);
    }
    if key.is_some() {
        return Err(UnsealError::NotAuthentic);
    }
    if data.len() < PLAIN_MAGIC.len() + SHA_LEN || &data[..PLAIN_MAGIC.len()] != PLAIN_MAGIC {
        return Err(UnsealError::BadMagic);
    }
    let (content, sum) = data.split_at(data.len() - SHA_LEN);
    if Sha256::digest(content).as_slice() != sum {
        return Err(UnsealError::Checksum);
    }
    let body = &content[PLAIN_MAGIC.len()..];
    if body.len() as u64 > limit {
        return Err(UnsealError::TooLarge { limit });
    }
    Ok(body.to_vec())
}
