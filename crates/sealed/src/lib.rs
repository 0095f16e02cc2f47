//! Sealed files: the at-rest format of everything snapshotd encrypts.
//!
//! * [`MasterKey`]: a 32-byte key loaded from a file (raw or hex), with a public key id;
//!   per-file keys are derived from it with HKDF-SHA256 and the file's context.
//! * [`EncryptingWriter`] / [`DecryptingReader`]: chunked AES-256-GCM streams (64-byte
//!   header, then fixed-size chunks each with its own tag; truncation, reordering and
//!   tampering are detected), and [`encrypt_bytes`] / [`decrypt_bytes`] for whole buffers.
//! * [`seal`] / [`unseal`]: the envelope of small objects — encrypted, or plain with a
//!   magic and a SHA-256 trailer ([`PLAIN_MAGIC`]).
//!
//! Synchronous and storage-agnostic: knows nothing of destinations, checkpoints or backups.
//!
//! ```
//! use snapshotd_sealed::{MasterKey, decrypt_bytes, encrypt_bytes, seal, unseal};
//!
//! let key = MasterKey::generate();
//! let sealed = encrypt_bytes(&key, "shard/1", b"points").unwrap();
//! assert_eq!(decrypt_bytes(&key, "shard/1", &sealed, 1 << 20).unwrap(), b"points");
//! // Bound to its context: the same bytes under another name do not decrypt.
//! assert!(decrypt_bytes(&key, "shard/2", &sealed, 1 << 20).is_err());
//!
//! let plain = seal(None, "meta", b"{}").unwrap();
//! assert_eq!(unseal(None, "meta", &plain, 1024).unwrap(), b"{}");
//! ```

mod aead;
mod crypto;
mod envelope;
mod stream;

pub use crypto::{CryptoError, KEY_ID_LEN, KEY_LEN, MasterKey};
pub use envelope::{PLAIN_MAGIC, UnsealError, seal, unseal};
pub use stream::{
    DEFAULT_CHUNK_SIZE, DecryptingReader, ENC_MAGIC, ENC_SUFFIX, EncryptingWriter, HEADER_LEN,
    MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, TAG_LEN, decrypt_bytes, encrypt_bytes, is_encrypted,
};
