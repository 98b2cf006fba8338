//! Secret sealing: AES-256-GCM with a random 96-bit nonce per value, the secret's identity
//! (scope and name) as associated data so a ciphertext cannot be moved to another row, and a
//! key id (a digest prefix of the key) stored beside each value so rotation knows what sealed it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{ServiceError, ServiceResult};

/// A 256-bit key with its id. Its `Debug` shows the id only.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Aes256Gcm,
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> ServiceResult<SecretKey> {
        if bytes.len() != 32 {
            return Err(ServiceError::invalid(format!(
                "a secrets key is 32 bytes (base64 of 32 bytes in a file or CAIRN_SECRETS_KEY), not {}",
                bytes.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| ServiceError::invalid("unusable secrets key"))?;
        let id = hex::encode(Sha256::digest([b"cairn-secrets-key:".as_slice(), bytes].concat()))
            [..16]
            .to_string();
        Ok(SecretKey { cipher, id })
    }

    /// A key from its base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> ServiceResult<SecretKey> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| ServiceError::invalid("the secrets key is not valid base64"))?;
        Self::from_bytes(&bytes)
    }

    /// A fresh random key's base64 text.
    pub fn generate_base64() -> String {
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `value` bound to `identity`: base64 nonce and ciphertext.
    pub fn seal(&self, identity: &str, value: &[u8]) -> ServiceResult<(String, String)> {
        let mut nonce = [0_u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: value, aad: identity.as_bytes() })
            .map_err(|_| ServiceError::internal("sealing a secret failed"))?;
        Ok((STANDARD.encode(nonce), STANDARD.encode(ciphertext)))
    }

    /// Opens a value sealed by this key for `identity`.
    pub fn open(&self, identity: &str, nonce: &str, ciphertext: &str) -> ServiceResult<Vec<u8>> {
        let broken = || {
            ServiceError::internal(format!(
                "secret '{identity}' cannot be opened with key {}",
                self.id
            ))
        };
        let nonce = STANDARD.decode(nonce).map_err(|_| broken())?;
        let ciphertext = STANDARD.decode(ciphertext).map_err(|_| broken())?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| broken())?;
        self.cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: &ciphertext, aad: identity.as_bytes() })
            .map_err(|_| broken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_identity() {
        let key = SecretKey::from_base64(&SecretKey::generate_base64()).unwrap();
        let (nonce, sealed) = key.seal("project:1/TOKEN", b"s3cr3t").unwrap();
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(key.open("project:1/TOKEN", &nonce, &sealed).unwrap(), b"s3cr3t");
        assert!(key.open("project:2/TOKEN", &nonce, &sealed).is_err());
        let other = SecretKey::from_base64(&SecretKey::generate_base64()).unwrap();
        assert_ne!(other.id(), key.id());
        assert!(other.open("project:1/TOKEN", &nonce, &sealed).is_err());
        let (second_nonce, _) = key.seal("project:1/TOKEN", b"s3cr3t").unwrap();
        assert_ne!(nonce, second_nonce);
    }

    #[test]
    fn keys_must_be_32_bytes_and_never_print() {
        assert!(SecretKey::from_bytes(&[1; 16]).is_err());
        assert!(SecretKey::from_base64("not base64!").is_err());
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        assert_eq!(format!("{key:?}"), format!("SecretKey({})", key.id()));
    }
}
