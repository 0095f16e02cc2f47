//! The AES-256-GCM primitive under the stream format: aws-lc-rs with feature `fast-aes`,
//! else RustCrypto's pure-Rust aes-gcm. Both produce identical bytes.

use crate::crypto::KEY_LEN;

/// Length of an AES-GCM tag.
pub(crate) const TAG: usize = 16;

/// One file's AES-256-GCM key, ready to seal/open chunks.
pub(crate) struct ChunkCipher {
    #[cfg(feature = "fast-aes")]
    key: aws_lc_rs::aead::LessSafeKey,
    #[cfg(not(feature = "fast-aes"))]
    key: aes_gcm::Aes256Gcm,
}

impl ChunkCipher {
    /// A cipher for `key` (`None` only if the backend refuses a 32-byte key).
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Option<Self> {
        #[cfg(feature = "fast-aes")]
        {
            use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
            let unbound = UnboundKey::new(&AES_256_GCM, key).ok()?;
            Some(Self {
                key: LessSafeKey::new(unbound),
            })
        }
        #[cfg(not(feature = "fast-aes"))]
        {
            use aes_gcm::aead::KeyInit;
            let arr = aes_gcm::Key::<aes_gcm::Aes256Gcm>::from(*key);
            Some(Self {
                key: aes_gcm::Aes256Gcm::new(&arr),
            })
        }
    }

    /// Encrypts `buf` in place, returning the tag.
    pub(crate) fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> Option<[u8; TAG]> {
        #[cfg(feature = "fast-aes")]
        {
            use aws_lc_rs::aead::{Aad, Nonce};
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    buf,
                )
                .ok()?;
            tag.as_ref().try_into().ok()
        }
        #[cfg(not(feature = "fast-aes"))]
        {
            use aes_gcm::aead::{AeadInOut, Nonce};
            let n = Nonce::<aes_gcm::Aes256Gcm>::from(nonce);
            let tag = self.key.encrypt_inout_detached(&n, aad, buf.into()).ok()?;
            tag.as_slice().try_into().ok()
        }
    }

    /// Authenticates and decrypts `sealed` (= ciphertext ‖ tag) in place; on success the
    /// plaintext is `sealed[..sealed.len() - TAG]`.
    pub(crate) fn open(&self, nonce: [u8; 12], aad: &[u8], sealed: &mut [u8]) -> Option<()> {
        let ct_len = sealed.len().checked_sub(TAG)?;
        #[cfg(feature = "fast-aes")]
        {
            use aws_lc_rs::aead::{Aad, Nonce};
            let _ = ct_len;
            self.key
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
                .ok()?;
            Some(())
        }
        #[cfg(not(feature = "fast-aes"))]
        {
            use aes_gcm::aead::{AeadInOut, Nonce, Tag};
            let (ct, tag) = sealed.split_at_mut(ct_len);
            let tag = Tag::<aes_gcm::Aes256Gcm>::try_from(&*tag).ok()?;
            let n = Nonce::<aes_gcm::Aes256Gcm>::from(nonce);
            self.key
                .decrypt_inout_detached(&n, aad, ct.into(), &tag)
                .ok()
        }
    }
}

#[cfg(all(test, feature = "fast-aes"))]
mod tests {
    use aes_gcm::aead::{AeadInOut, KeyInit, Nonce};

    use super::*;

    /// aws-lc-rs and aes-gcm must agree byte for byte (the format does not depend on
    /// which one a build uses).
    #[test]
    fn backends_agree() {
        let key = [9u8; 32];
        let nonce = [3u8; 12];
        let aad = b"header";
        let plain: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let fast = ChunkCipher::new(&key).unwrap();
        let mut a = plain.clone();
        let tag = fast.seal(nonce, aad, &mut a).unwrap();
        let rc = aes_gcm::Aes256Gcm::new(&aes_gcm::Key::<aes_gcm::Aes256Gcm>::from(key));
        let mut b = plain.clone();
        let tag_b = rc
            .encrypt_inout_detached(
                &Nonce::<aes_gcm::Aes256Gcm>::from(nonce),
                aad,
                b.as_mut_slice().into(),
            )
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(&tag[..], tag_b.as_slice());
        let mut sealed = [a, tag.to_vec()].concat();
        fast.open(nonce, aad, &mut sealed).unwrap();
        assert_eq!(&sealed[..plain.len()], &plain[..]);
        sealed[7] ^= 1;
        assert!(fast.open(nonce, aad, &mut sealed).is_none());
    }
}
