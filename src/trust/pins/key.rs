//! Ed25519 keys for pin files: generation, PEM files (PKCS#8 private, SPKI public) and key ids.
//!
//! A key id is the lowercase hex SHA-256 of the raw 32-byte public key, so it can be computed
//! from either file and does not depend on how the PEM was wrapped.

use std::fmt;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// A public key that may sign pin files, with its id.
#[derive(Clone, Debug)]
pub struct PinKey {
    pub id: KeyId,
    pub key: VerifyingKey,
}

/// Hex SHA-256 of the raw public key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not an Ed25519 {what} in PEM: {detail}")]
    Parse {
        path: String,
        what: &'static str,
        detail: String,
    },
    #[error("cannot encode key: {0}")]
    Encode(String),
}

// === impl KeyId ===

impl KeyId {
    pub fn of(key: &VerifyingKey) -> KeyId {
        KeyId(hex::encode(Sha256::digest(key.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 16 hex digits, enough to tell keys apart in messages.
    pub fn short(&self) -> &str {
        &self.0[..16.min(self.0.len())]
    }

    pub fn from_hex(s: &str) -> KeyId {
        KeyId(s.to_ascii_lowercase())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.short())
    }
}

// === impl PinKey ===

impl PinKey {
    pub fn new(key: VerifyingKey) -> PinKey {
        PinKey {
            id: KeyId::of(&key),
            key,
        }
    }

    /// Loads a `PUBLIC KEY` PEM file.
    pub fn load(path: &Path) -> Result<PinKey, KeyError> {
        let pem = read(path)?;
        let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| KeyError::Parse {
            path: path.display().to_string(),
            what: "public key",
            detail: e.to_string(),
        })?;
        Ok(PinKey::new(key))
    }
}

/// Generates a new signing key from the operating system's random source.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

/// The PKCS#8 PEM of a private key.
pub fn private_pem(key: &SigningKey) -> Result<String, KeyError> {
    key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map(|z| z.to_string())
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// The SPKI PEM of a public key.
pub fn public_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// Loads a `PRIVATE KEY` PEM file.
pub fn load_signing(path: &Path) -> Result<SigningKey, KeyError> {
    let pem = read(path)?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Parse {
        path: path.display().to_string(),
        what: "private key",
        detail: e.to_string(),
    })
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_key_id() {
        let dir = tempfile::tempdir().unwrap();
        let sk = generate();
        std::fs::write(dir.path().join("k.key"), private_pem(&sk).unwrap()).unwrap();
        std::fs::write(
            dir.path().join("k.pub"),
            public_pem(&sk.verifying_key()).unwrap(),
        )
        .unwrap();
        let loaded = load_signing(&dir.path().join("k.key")).unwrap();
        assert_eq!(loaded.to_bytes(), sk.to_bytes());
        let pk = PinKey::load(&dir.path().join("k.pub")).unwrap();
        assert_eq!(pk.id, KeyId::of(&sk.verifying_key()));
        assert_eq!(pk.id.as_str().len(), 64);
    }

    #[test]
    fn wrong_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk"), "not a key").unwrap();
        let e = PinKey::load(&dir.path().join("junk"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an Ed25519 public key"), "{e}");
        assert!(PinKey::load(&dir.path().join("missing")).is_err());
    }
}
