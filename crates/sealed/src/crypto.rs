//! Master keys, per-file key derivation (HKDF-SHA256) and the crypto error type.

use std::path::Path;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// Length of a master key and of every derived key (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of a key id (a public fingerprint of the master key).
pub const KEY_ID_LEN: usize = 8;
/// Largest key file accepted (a hex key plus generous whitespace).
const MAX_KEY_FILE: u64 = 4096;

/// Why encryption, decryption or key loading failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The key file is not 32 raw bytes or 64 hex characters.
    #[error("key file {path}: {reason}")]
    BadKeyFile {
        /// The key file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The data does not start with the encrypted-file header.
    #[error("not an encrypted snapshotd file (bad magic)")]
    BadMagic,
    /// The header names a format version or algorithm this build does not know.
    #[error("unsupported encrypted-file format: {0}")]
    Unsupported(String),
    /// The file was encrypted with another master key.
    #[error(
        "wrong key: file was encrypted with key id {file_key_id}, the key given has id {our_key_id}"
    )]
    WrongKey {
        /// Key id recorded in the file header.
        file_key_id: String,
        /// Id of the key we were given.
        our_key_id: String,
    },
    /// A chunk failed authentication: tampered, reordered, swapped file or wrong context.
    #[error(
        "authentication failed at chunk {chunk}: data tampered with, reordered, truncated or moved"
    )]
    Authentication {
        /// Zero-based chunk index.
        chunk: u64,
    },
    /// The stream ended before its final chunk.
    #[error("encrypted stream truncated after {chunks} chunk(s)")]
    Truncated {
        /// Complete chunks seen.
        chunks: u64,
    },
    /// The stream exceeds the format's chunk counter.
    #[error("encrypted stream too long")]
    TooLong,
    /// Plaintext exceeds a caller-given bound.
    #[error("decrypted data exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The bound.
        limit: u64,
    },
}

impl CryptoError {
    /// Wraps this error into an `io::Error` of kind `InvalidData` (for Read/Write impls).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }

    /// Extracts a `CryptoError` from an `io::Error` produced by this crate's streams.
    pub fn from_io(err: &std::io::Error) -> Option<&CryptoError> {
        err.get_ref().and_then(|e| e.downcast_ref::<CryptoError>())
    }
}

/// A 256-bit master key, zeroized on drop. Never printed.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id {})", self.key_id())
    }
}

impl MasterKey {
    /// Wraps 32 raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key (tests, key generation).
    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }

    /// Parses key file contents: exactly 32 raw bytes, or 64 hex characters (surrounding
    /// whitespace allowed).
    pub fn from_key_file_contents(data: &[u8], path: &str) -> Result<Self, CryptoError> {
        let bad = |reason: &str| CryptoError::BadKeyFile {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = data.trim_ascii();
        if trimmed.len() == 2 * KEY_LEN && trimmed.iter().all(u8::is_ascii_hexdigit) {
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            hex::decode_to_slice(trimmed, out.as_mut_slice()).map_err(|_| bad("invalid hex"))?;
            return Ok(Self { bytes: out });
        }
        if data.len() == KEY_LEN {
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            out.copy_from_slice(data);
            return Ok(Self { bytes: out });
        }
        Err(bad(&format!(
            "expected 32 raw bytes or 64 hex characters, found {} bytes",
            data.len()
        )))
    }

    /// Reads a key file (32 raw bytes or 64 hex characters).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CryptoError> {
        use std::io::Read;
        let path = path.as_ref();
        let shown = path.display().to_string();
        let io_err = |e: std::io::Error| CryptoError::BadKeyFile {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut data = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE + 1)
            .read_to_end(&mut data)
            .map_err(io_err)?;
        if data.len() as u64 > MAX_KEY_FILE {
            return Err(CryptoError::BadKeyFile {
                path: shown,
                reason: "file too large for a key".into(),
            });
        }
        Self::from_key_file_contents(&data, &shown)
    }

    /// The public fingerprint of this key (16 hex chars), safe to store and display.
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id_bytes())
    }

    /// The key id as raw bytes.
    pub(crate) fn key_id_bytes(&self) -> [u8; KEY_ID_LEN] {
        let mut out = [0u8; KEY_ID_LEN];
        self.expand(None, &[b"snapshotd/v1/key-id"], &mut out);
        out
    }

    /// Derives the AES-256 key of one file from a per-file salt and the file's context
    /// (its name / backup id), so files cannot be swapped or renamed undetected.
    pub(crate) fn file_key(&self, salt: &[u8], context: &str) -> Zeroizing<[u8; KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        self.expand(
            Some(salt),
            &[b"snapshotd/v1/file-key\0", context.as_bytes()],
            out.as_mut_slice(),
        );
        out
    }

    fn expand(&self, salt: Option<&[u8]>, info: &[&[u8]], out: &mut [u8]) {
        let hk = Hkdf::<Sha256>::new(salt, self.bytes.as_slice());
        let mut joined = Vec::new();
        for part in info {
            joined.extend_from_slice(part);
        }
        // Output lengths used here (8 and 32 bytes) are far below HKDF's 255*32 limit.
        if hk.expand(&joined, out).is_err() {
            out.zeroize();
        }
    }
}
