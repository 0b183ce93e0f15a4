//! Secrets at rest: AES-256-GCM with a random nonce stored before the ciphertext (the
//! crates.io pattern).
//!
//! The secret key (`SVYAZKA_SECRET_KEY` or `secret.key`) is never used directly: HKDF-SHA256
//! derives one key for stored secrets and another for the session cookie, so a weakness in
//! one use does not hand over the other. Stored secrets carry associated data naming what they
//! belong to (a provider and field), so a ciphertext copied to another row does not decrypt.
//! Values written before this scheme (encrypted with the raw key, without associated data)
//! are read by [`Crypto::decrypt_legacy`] once, when they are re-encrypted at start-up.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use std::path::Path;

const NONCE_LEN: usize = 12;
/// Marks values encrypted with the derived data key and associated data.
const V2: &str = "v2:";

#[derive(Clone)]
pub struct Crypto {
    /// The configured secret key; only HKDF input and the legacy format use it.
    master: [u8; 32],
    data: [u8; 32],
    cookie: [u8; 64],
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
        Ok(Self::from_master(key))
    }

    fn from_master(master: [u8; 32]) -> Self {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"svyazka"), &master);
        let mut data = [0u8; 32];
        let mut cookie = [0u8; 64];
        // Output lengths far below HKDF-SHA256's limit (255 × 32 bytes) cannot fail.
        let _ = hk.expand(b"svyazka/v2/stored-secrets", &mut data);
        let _ = hk.expand(b"svyazka/v2/session-cookie", &mut cookie);
        Self {
            master,
            data,
            cookie,
        }
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
                crate::data_dir::create_private_dir(dir).map_err(io)?;
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                write_private(&path, &B64.encode(key)).map_err(io)?;
                Ok(Self::from_master(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn for_testing() -> Self {
        Self::from_master([7u8; 32])
    }

    /// A stable secret for `label` (e.g. one webhook address), derived from the secret key:
    /// the same in every process and after restarts, unguessable without the key.
    pub fn derived_token(&self, label: &str) -> String {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"svyazka"), &self.master);
        let mut out = [0u8; 18];
        // 18 bytes are far below HKDF-SHA256's output limit, so expanding cannot fail.
        let _ = hk.expand(format!("svyazka/v2/token/{label}").as_bytes(), &mut out);
        hex::encode(out)
    }

    /// Key material for the session cookie (signing and encryption), derived for that use only.
    pub fn cookie_key(&self) -> &[u8; 64] {
        &self.cookie
    }

    /// Encrypts `plain` for the place named by `aad` (e.g. `provider:7:secrets`); it decrypts
    /// only with the same `aad`.
    pub fn encrypt(&self, plain: &str, aad: &str) -> String {
        let cipher = Aes256Gcm::new((&self.data).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: aad.as_bytes(),
        };
        // Encryption with a valid key and nonce length cannot fail for in-memory buffers.
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of an in-memory buffer"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{V2}{}", B64.encode(out))
    }

    pub fn decrypt(&self, stored: &str, aad: &str) -> Result<String, CryptoError> {
        let encoded = stored.strip_prefix(V2).ok_or(CryptoError::Decrypt)?;
        open(&self.data, encoded, aad.as_bytes())
    }

    /// Whether `stored` predates derived keys and associated data.
    pub fn is_legacy(stored: &str) -> bool {
        !stored.starts_with(V2)
    }

    /// Reads a value in the old format (raw key, no associated data), for re-encryption.
    pub fn decrypt_legacy(&self, stored: &str) -> Result<String, CryptoError> {
        open(&self.master, stored, b"")
    }

    #[cfg(test)]
    fn encrypt_legacy(&self, plain: &str) -> String {
        let cipher = Aes256Gcm::new((&self.master).into());
        let nonce = [1u8; NONCE_LEN];
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of an in-memory buffer"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }
}

fn open(key: &[u8; 32], encoded: &str, aad: &[u8]) -> Result<String, CryptoError> {
    let raw = B64.decode(encoded).map_err(|_| CryptoError::Decrypt)?;
    if raw.len() < NONCE_LEN {
        return Err(CryptoError::Decrypt);
    }
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(key.into());
    let plain = cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Decrypt)?;
    String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
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
        let enc = c.encrypt("super-secret-key", "provider:1:secrets");
        assert!(!enc.contains("super-secret-key"));
        assert_ne!(
            enc,
            c.encrypt("super-secret-key", "provider:1:secrets"),
            "nonce must differ"
        );
        assert_eq!(
            c.decrypt(&enc, "provider:1:secrets").expect("decrypt"),
            "super-secret-key"
        );
        let other = Crypto::from_base64(&B64.encode([9u8; 32])).expect("key");
        assert!(other.decrypt(&enc, "provider:1:secrets").is_err());
    }

    #[test]
    fn a_secret_is_bound_to_its_place() {
        let c = Crypto::for_testing();
        let enc = c.encrypt("key-of-provider-1", "provider:1:secrets");
        assert!(c.decrypt(&enc, "provider:2:secrets").is_err());
        assert!(c.decrypt(&enc, "provider:1:other").is_err());
        assert!(c.decrypt_legacy(&enc).is_err());
    }

    #[test]
    fn legacy_values_read_only_through_the_legacy_path() {
        let c = Crypto::for_testing();
        let old = c.encrypt_legacy("old-secret");
        assert!(Crypto::is_legacy(&old));
        assert!(c.decrypt(&old, "provider:1:secrets").is_err());
        assert_eq!(c.decrypt_legacy(&old).expect("legacy"), "old-secret");
    }

    #[test]
    fn cookie_and_data_keys_differ_from_the_secret_key_and_each_other() {
        let c = Crypto::for_testing();
        assert_ne!(&c.cookie_key()[..32], &c.data[..]);
        assert_ne!(&c.cookie_key()[..32], &c.master[..]);
        assert_ne!(c.data, c.master);
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        let a = Crypto::load_or_create(&data).expect("a");
        let b = Crypto::load_or_create(&data).expect("b");
        assert_eq!(a.master, b.master);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&data), 0o700);
            assert_eq!(mode(&data.join("secret.key")), 0o600);
        }
    }
}
