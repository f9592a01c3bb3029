//! Content digests (`algorithm:hex`): parsing per the OCI image spec and incremental hashing.
//!
//! Only the registered algorithms `sha256` and `sha512` are accepted; anything else is a parse
//! error, so a digest that reaches the proxy can always be recomputed and compared.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A validated content digest such as `sha256:2c26b4…`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    /// Lowercase hex, of exactly the algorithm's length.
    hex: String,
}

/// The digest algorithms pullgate can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

/// Why a string is not an acceptable digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {0:?} has no algorithm separator ':'")]
    MissingSeparator(String),
    #[error("digest algorithm {0:?} is not supported (sha256, sha512)")]
    UnsupportedAlgorithm(String),
    #[error("digest {0:?} is not {1} lowercase hex characters")]
    BadEncoding(String, usize),
}

// === impl Algorithm ===

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

// === impl Digest ===

impl Digest {
    /// The sha256 digest of `bytes`: what a registry calls the content's digest.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` with this digest's algorithm, to compare against it.
    pub fn recompute(&self, bytes: &[u8]) -> Digest {
        let mut hasher = DigestHasher::new(self.algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded part after the colon.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The raw 32 bytes of a sha256 digest (signatures and statements name manifests by
    /// them); `None` for other algorithms.
    pub fn sha256_bytes(&self) -> Option<[u8; 32]> {
        if self.algorithm != Algorithm::Sha256 {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.hex, &mut out).ok()?;
        Some(out)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::MissingSeparator(s.to_owned()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::UnsupportedAlgorithm(alg.to_owned())),
        };
        // The OCI spec requires lowercase hex for the registered algorithms; accepting
        // uppercase would give one blob two names.
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(DigestError::BadEncoding(s.to_owned(), algorithm.hex_len()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Incremental hasher for streamed content, in the algorithm of the digest it is checked against.
pub enum DigestHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

// === impl DigestHasher ===

impl DigestHasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => DigestHasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => DigestHasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            DigestHasher::Sha256(h) => h.update(bytes),
            DigestHasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            DigestHasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            DigestHasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays_registered_algorithms() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(d, Digest::sha256_of(b""));
        let long = format!("sha512:{}", "a".repeat(128));
        assert_eq!(long.parse::<Digest>().unwrap().to_string(), long);
    }

    #[test]
    fn rejects_malformed_digests() {
        let cases = [
            ("sha256", "separator"),
            ("md5:d41d8cd98f00b204e9800998ecf8427e", "algorithm"),
            ("sha256:abc", "length"),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "uppercase",
            ),
            (
                "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "non-hex",
            ),
            ("", "empty"),
        ];
        for (input, why) in cases {
            assert!(
                input.parse::<Digest>().is_err(),
                "{why}: {input:?} accepted"
            );
        }
    }

    #[test]
    fn streaming_hash_equals_one_shot_hash() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        let mut h = DigestHasher::new(d.algorithm());
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), Digest::sha256_of(b"hello world"));
        assert_eq!(
            d.recompute(b"hello world"),
            Digest::sha256_of(b"hello world")
        );
    }
}
