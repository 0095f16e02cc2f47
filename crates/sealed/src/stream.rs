//! Streaming AES-256-GCM encryption in fixed-size chunks with a STREAM-style nonce.
//!
//! Layout: a 64-byte header, then chunks of `chunk_size` plaintext bytes each sealed as
//! `ciphertext || 16-byte tag`; the final chunk is shorter (possibly empty) and is sealed
//! with the "last" flag set in its nonce. Nonce = 7-byte random prefix || u32 BE chunk
//! counter || last flag (0/1). The whole header is the associated data of every chunk.
//! See docs/checkpoint.md for the exact header.

use std::io::{self, Read, Write};

use crate::aead::ChunkCipher;
use crate::crypto::{CryptoError, KEY_ID_LEN, MasterKey};

/// Magic bytes at the start of every encrypted file.
pub const ENC_MAGIC: &[u8; 8] = b"SNAPENC\x01";
/// Size of the header.
pub const HEADER_LEN: usize = 64;
/// Size of each chunk's authentication tag.
pub const TAG_LEN: usize = 16;
/// Default plaintext bytes per chunk (1 MiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// Smallest chunk size accepted.
pub const MIN_CHUNK_SIZE: u32 = 1 << 10;
/// Largest chunk size accepted (bounds the reader's allocation).
pub const MAX_CHUNK_SIZE: u32 = 16 << 20;
/// Suffix given to encrypted files (the plain name is the key-derivation context).
pub const ENC_SUFFIX: &str = ".enc";

const VERSION: u8 = 1;
const ALG_AES256GCM: u8 = 1;
const SALT_LEN: usize = 32;
const PREFIX_LEN: usize = 7;

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

fn cipher_for(key: &MasterKey, salt: &[u8], context: &str) -> io::Result<ChunkCipher> {
    let k = key.file_key(salt, context);
    ChunkCipher::new(&k)
        .ok_or_else(|| CryptoError::Unsupported("AES-256-GCM key refused".into()).into_io())
}

/// Wraps a writer; everything written is encrypted. Call [`EncryptingWriter::finish`]:
/// a stream dropped without it lacks its final chunk and will not decrypt (truncation).
pub struct EncryptingWriter<W: Write> {
    inner: W,
    cipher: ChunkCipher,
    header: [u8; HEADER_LEN],
    prefix: [u8; PREFIX_LEN],
    chunk_size: usize,
    buf: Vec<u8>,
    counter: u32,
}

impl<W: Write> EncryptingWriter<W> {
    /// Starts an encrypted stream with the default 1 MiB chunks; writes the header now.
    /// `context` binds the file's identity (e.g. its plain relative name) into its key.
    pub fn new(inner: W, key: &MasterKey, context: &str) -> io::Result<Self> {
        Self::with_chunk_size(inner, key, context, DEFAULT_CHUNK_SIZE)
    }

    /// Like [`EncryptingWriter::new`] with an explicit chunk size (1 KiB ..= 16 MiB).
    pub fn with_chunk_size(
        mut inner: W,
        key: &MasterKey,
        context: &str,
        chunk_size: u32,
    ) -> io::Result<Self> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("chunk size {chunk_size} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"),
            ));
        }
        let salt: [u8; SALT_LEN] = rand::random();
        let prefix: [u8; PREFIX_LEN] = rand::random();
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(ENC_MAGIC);
        header[8] = VERSION;
        header[9] = ALG_AES256GCM;
        header[12..16].copy_from_slice(&chunk_size.to_be_bytes());
        header[16..16 + KEY_ID_LEN].copy_from_slice(&key.key_id_bytes());
        header[24..24 + SALT_LEN].copy_from_slice(&salt);
        header[56..56 + PREFIX_LEN].copy_from_slice(&prefix);
        inner.write_all(&header)?;
        let cap = chunk_size as usize;
        Ok(Self {
            inner,
            cipher: cipher_for(key, &salt, context)?,
            header,
            prefix,
            chunk_size: cap,
            buf: Vec::with_capacity(cap + TAG_LEN),
            counter: 0,
        })
    }

    fn seal_buffer(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last);
        let tag = self
            .cipher
            .seal(n, &self.header, &mut self.buf)
            .ok_or_else(|| CryptoError::TooLong.into_io())?;
        self.inner.write_all(&self.buf)?;
        self.inner.write_all(&tag)?;
        self.buf.clear();
        if !last {
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| CryptoError::TooLong.into_io())?;
        }
        Ok(())
    }

    /// Seals the final chunk, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_buffer(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full buffer is sealed only once more data arrives: the last chunk must carry
        // the "last" flag, so we never know a chunk is final until finish().
        if self.buf.len() == self.chunk_size {
            self.seal_buffer(false)?;
        }
        let room = self.chunk_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Wraps a reader of an encrypted stream and yields the plaintext. Any tampering,
/// truncation, reordering, wrong key or wrong context is an `InvalidData` error carrying
/// a [`CryptoError`] (see [`CryptoError::from_io`]).
pub struct DecryptingReader<R: Read> {
    inner: R,
    cipher: ChunkCipher,
    header: [u8; HEADER_LEN],
    prefix: [u8; PREFIX_LEN],
    /// One sealed chunk plus one lookahead byte; decrypted in place.
    raw: Vec<u8>,
    /// Bytes of `raw` holding data read from `inner`.
    filled: usize,
    /// Plaintext not yet handed out: `raw[pos..end]`.
    pos: usize,
    end: usize,
    /// A lookahead byte to move to the front before reading the next chunk.
    carry: Option<u8>,
    counter: u32,
    done: bool,
    /// Set after the first error: a damaged stream never yields more data.
    failed: bool,
}

impl<R: Read> DecryptingReader<R> {
    /// Reads and checks the header (magic, version, chunk size, key id).
    pub fn new(mut inner: R, key: &MasterKey, context: &str) -> io::Result<Self> {
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut header)?;
        if got < ENC_MAGIC.len() || &header[..8] != ENC_MAGIC {
            return Err(CryptoError::BadMagic.into_io());
        }
        if got < HEADER_LEN {
            return Err(CryptoError::Truncated { chunks: 0 }.into_io());
        }
        if header[8] != VERSION || header[9] != ALG_AES256GCM {
            return Err(CryptoError::Unsupported(format!(
                "version {} algorithm {}",
                header[8], header[9]
            ))
            .into_io());
        }
        if header[10..12] != [0, 0] || header[63] != 0 {
            return Err(CryptoError::Unsupported("reserved header bytes set".into()).into_io());
        }
        let mut cs = [0u8; 4];
        cs.copy_from_slice(&header[12..16]);
        let chunk_size = u32::from_be_bytes(cs);
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(
                CryptoError::Unsupported(format!("chunk size {chunk_size} out of range")).into_io(),
            );
        }
        let file_key_id = &header[16..16 + KEY_ID_LEN];
        let ours = key.key_id_bytes();
        if file_key_id != ours {
            return Err(CryptoError::WrongKey {
                file_key_id: hex::encode(file_key_id),
                our_key_id: hex::encode(ours),
            }
            .into_io());
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&header[56..56 + PREFIX_LEN]);
        let cipher = cipher_for(key, &header[24..24 + SALT_LEN], context)?;
        let chunk_size = chunk_size as usize;
        Ok(Self {
            inner,
            cipher,
            header,
            prefix,
            raw: vec![0u8; chunk_size + TAG_LEN + 1],
            filled: 0,
            pos: 0,
            end: 0,
            carry: None,
            counter: 0,
            done: false,
            failed: false,
        })
    }

    /// Reads, authenticates and decrypts the next chunk in place.
    fn next_chunk(&mut self) -> io::Result<()> {
        let want = self.raw.len();
        self.filled = 0;
        if let Some(b) = self.carry.take() {
            self.raw[0] = b;
            self.filled = 1;
        }
        while self.filled < want {
            match self.inner.read(&mut self.raw[self.filled..]) {
                Ok(0) => break,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let last = self.filled < want;
        let sealed_len = if last { self.filled } else { want - 1 };
        if sealed_len < TAG_LEN {
            return Err(CryptoError::Truncated {
                chunks: u64::from(self.counter),
            }
            .into_io());
        }
        let ct_len = sealed_len - TAG_LEN;
        let chunk = u64::from(self.counter);
        let n = nonce(&self.prefix, self.counter, last);
        self.cipher
            .open(n, &self.header, &mut self.raw[..sealed_len])
            .ok_or_else(|| CryptoError::Authentication { chunk }.into_io())?;
        self.pos = 0;
        self.end = ct_len;
        if last {
            self.done = true;
        } else {
            self.carry = Some(self.raw[want - 1]);
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| CryptoError::TooLong.into_io())?;
        }
        Ok(())
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.end {
            if self.done {
                return Ok(0);
            }
            if self.failed {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "encrypted stream already failed",
                ));
            }
            if let Err(e) = self.next_chunk() {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                return Err(e);
            }
        }
        let n = (self.end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.raw[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// True when `data` starts with the encrypted-file magic.
pub fn is_encrypted(data: &[u8]) -> bool {
    data.len() >= ENC_MAGIC.len() && &data[..ENC_MAGIC.len()] == ENC_MAGIC
}

/// Encrypts a whole buffer (small objects such as checkpoint records).
pub fn encrypt_bytes(key: &MasterKey, context: &str, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let out = Vec::with_capacity(plain.len() + HEADER_LEN + 2 * TAG_LEN);
    let run = || -> io::Result<Vec<u8>> {
        let mut w = EncryptingWriter::new(out, key, context)?;
        w.write_all(plain)?;
        w.finish()
    };
    run().map_err(|e| match e.into_inner() {
        Some(inner) => match inner.downcast::<CryptoError>() {
            Ok(c) => *c,
            Err(other) => CryptoError::Unsupported(other.to_string()),
        },
        None => CryptoError::TooLong,
    })
}

/// Decrypts a whole buffer, refusing plaintext larger than `limit` bytes.
pub fn decrypt_bytes(
    key: &MasterKey,
    context: &str,
    data: &[u8],
    limit: u64,
) -> Result<Vec<u8>, CryptoError> {
    let run = || -> io::Result<Vec<u8>> {
        let r = DecryptingReader::new(data, key, context)?;
        let mut out = Vec::new();
        r.take(limit.saturating_add(1)).read_to_end(&mut out)?;
        Ok(out)
    };
    let out = run().map_err(|e| match e.into_inner() {
        Some(inner) => match inner.downcast::<CryptoError>() {
            Ok(c) => *c,
            Err(other) => CryptoError::Unsupported(other.to_string()),
        },
        None => CryptoError::Truncated { chunks: 0 },
    })?;
    if out.len() as u64 > limit {
        return Err(CryptoError::TooLarge { limit });
    }
    Ok(out)
}
