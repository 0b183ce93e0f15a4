//! Secrets at rest: AES-256-GCM with a random nonce stored before the ciphertext (the
//! crates.io pattern). The same master key also derives the session cookie key.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use std::path::Path;

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Crypto {
    key: [u8; 32],
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Crypto(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("SVYAZKA_SECRET_KEY: expected base64 of 32 bytes")]
    BadKey,
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("stored secret cannot be decrypted (was the secret key changed?)")]
    Decrypt,
}

impl Crypto {
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let bytes = B64.decode(s.trim()).map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self { key })
    }

    /// Embedded mode: read `secret.key` under the data directory, creating it (mode 0600) on
    /// first start so a fresh install needs no set-up.
    pub fn load_or_create(dir: &Path) -> Result<Self, CryptoError> {
        let path = dir.join("secret.key");
        let io = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => Self::from_base64(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                write_private(&path, &B64.encode(key)).map_err(io)?;
                Ok(Self { key })
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn for_testing() -> Self {
        Self { key: [7u8; 32] }
    }

    pub fn master_key(&self) -> &[u8; 32] {
        &self.key
    }

    pub fn encrypt(&self, plain: &str) -> String {
        let cipher = Aes256Gcm::new((&self.key).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce length cannot fail for in-memory buffers.
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of an in-memory buffer"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let raw = B64.decode(stored).map_err(|_| CryptoError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new((&self.key).into());
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
    }
}

/// A random URL-safe token (webhook secrets, CSRF tokens).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Constant-time string comparison for secrets from requests.
pub fn secure_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_no_plaintext() {
        let c = Crypto::for_testing();
        let enc = c.encrypt("super-secret-key");
        assert!(!enc.contains("super-secret-key"));
        assert_ne!(enc, c.encrypt("super-secret-key"), "nonce must differ");
        assert_eq!(c.decrypt(&enc).expect("decrypt"), "super-secret-key");
        let other = Crypto::from_base64(&B64.encode([9u8; 32])).expect("key");
        assert!(other.decrypt(&enc).is_err());
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = Crypto::load_or_create(dir.path()).expect("a");
        let b = Crypto::load_or_create(dir.path()).expect("b");
        assert_eq!(a.master_key(), b.master_key());
    }
}
