//! Public keys for `kind = "cosign-key"`: loading `cosign.pub`-style PEM files and checking a
//! signature over a payload with them (trust-formats.md §1.5, §1.6).
//!
//! Accepted files: `PUBLIC KEY` (SubjectPublicKeyInfo, what `cosign generate-key-pair` writes)
//! holding ECDSA P-256, ECDSA P-384, Ed25519 or RSA (2048–4096 bits), and `RSA PUBLIC KEY`
//! (PKCS#1), which cosign also reads. Signature encodings per key type, as cosign and
//! sigstore/sigstore `LoadVerifier` produce them:
//!
//! | key | signature | hash |
//! |---|---|---|
//! | P-256 | ASN.1 DER (or raw r‖s) | SHA-256 |
//! | P-384 | ASN.1 DER (or raw r‖s) | SHA-384, else SHA-256 (cosign's legacy default) |
//! | Ed25519 | 64 bytes | pure Ed25519, else Ed25519ph (SHA-512 pre-hash) |
//! | RSA | PKCS#1 v1.5 (cosign's default), else PSS with salt = 32 | SHA-256 |
//!
//! Go's ECDSA signer does not normalise S, so high-S signatures are genuine and must verify;
//! RustCrypto's P-256/P-384 verifiers accept them as they are (a test below proves it).
//!
//! A key id is the lowercase hex SHA-256 of the key's SPKI DER, so the same key has the same id
//! whichever PEM wrapping it came in. Not here: keyless certificates, encrypted private keys.

use std::fmt;
use std::path::Path;

use ed25519_dalek::Sha512;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256};
use spki::{DecodePublicKey as _, ObjectIdentifier, SubjectPublicKeyInfoRef};

/// RFC 5480 §2.1.1 `id-ecPublicKey`.
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// RFC 5480 §2.1.1.1 named curves.
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// RFC 8410 §3 `id-Ed25519`.
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// RFC 8017 Appendix C `rsaEncryption`.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// cosign supports RSA 2048, 3072 and 4096 (`pkg/cosign/keys.go` `SupportedKeyDetails`); the
/// `rsa` crate refuses keys over 4096 bits itself.
const MIN_RSA_BITS: usize = 2048;

/// Key files are a few hundred bytes; anything this large is not a key.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// A public key trusted to sign cosign payloads.
pub struct CosignPublicKey {
    id: KeyId,
    /// The DER SubjectPublicKeyInfo, which transparency-log entries are compared against.
    spki: Vec<u8>,
    verifier: KeyVerifier,
}

enum KeyVerifier {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa {
        bits: usize,
        pkcs1v15: rsa::pkcs1v15::VerifyingKey<Sha256>,
        pss: rsa::pss::VerifyingKey<Sha256>,
    },
}

/// Lowercase hex SHA-256 of the key's SPKI DER.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

/// Which signature scheme a signature verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    EcdsaP384Sha256,
    Ed25519,
    Ed25519ph,
    RsaPkcs1v15Sha256,
    RsaPssSha256,
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: larger than {limit} bytes, not a public key file")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: not a PEM public key: {detail}")]
    Pem { path: String, detail: String },
    #[error("{path}: PEM block is {label:?}, expected \"PUBLIC KEY\" (or \"RSA PUBLIC KEY\")")]
    Label { path: String, label: String },
    #[error(
        "{path}: unsupported key algorithm {oid} (supported: ECDSA P-256/P-384, Ed25519, RSA)"
    )]
    Algorithm { path: String, oid: String },
    #[error("{path}: unsupported elliptic curve {curve} (supported: P-256, P-384)")]
    Curve { path: String, curve: String },
    #[error("{path}: RSA key of {bits} bits is too small (at least {min})")]
    RsaTooSmall {
        path: String,
        bits: usize,
        min: usize,
    },
    #[error("{path}: invalid {what} key: {detail}")]
    Invalid {
        path: String,
        what: &'static str,
        detail: String,
    },
}

// === impl KeyId ===

impl KeyId {
    fn of_spki_der(der: &[u8]) -> KeyId {
        KeyId(hex::encode(Sha256::digest(der)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 16 hex digits, as identities and messages show a key.
    pub fn short(&self) -> &str {
        &self.0[..16.min(self.0.len())]
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

// === impl Scheme ===

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Scheme::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            Scheme::EcdsaP384Sha256 => "ecdsa-p384-sha256",
            Scheme::Ed25519 => "ed25519",
            Scheme::Ed25519ph => "ed25519ph",
            Scheme::RsaPkcs1v15Sha256 => "rsa-pkcs1v15-sha256",
            Scheme::RsaPssSha256 => "rsa-pss-sha256",
        }
    }
}

// === impl CosignPublicKey ===

impl CosignPublicKey {
    /// Loads a PEM public key file; any problem is a configuration error naming the file.
    pub fn load(path: &Path) -> Result<CosignPublicKey, KeyError> {
        let shown = path.display().to_string();
        let read = |source| KeyError::Read {
            path: shown.clone(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read)?.len();
        if len > MAX_KEY_FILE_BYTES {
            return Err(KeyError::TooLarge {
                path: shown,
                limit: MAX_KEY_FILE_BYTES,
            });
        }
        let text = std::fs::read(path).map_err(read)?;
        CosignPublicKey::from_pem(&text, &shown)
    }

    /// Parses PEM text; `path` only names the source in errors.
    pub fn from_pem(text: &[u8], path: &str) -> Result<CosignPublicKey, KeyError> {
        // RFC 7468 §2: text before the first boundary is not part of the PEM.
        let start = text
            .windows(b"-----BEGIN ".len())
            .position(|w| w == b"-----BEGIN ")
            .ok_or_else(|| KeyError::Pem {
                path: path.to_owned(),
                detail: "no -----BEGIN line".to_owned(),
            })?;
        let pem = text[start..].trim_ascii_end();
        let (label, der) = spki::der::pem::decode_vec(pem).map_err(|e| KeyError::Pem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        match label {
            "PUBLIC KEY" => CosignPublicKey::from_spki_der(&der, path),
            // PKCS#1, which cosign accepts too (trust-formats.md §1.6): re-encoded as SPKI so
            // the key id is the same as for the `PUBLIC KEY` form of the same key.
            "RSA PUBLIC KEY" => {
                let key =
                    rsa::RsaPublicKey::from_pkcs1_der(&der).map_err(|e| invalid(path, "RSA", e))?;
                let spki = key
                    .to_public_key_der()
                    .map_err(|e| invalid(path, "RSA", e))?;
                CosignPublicKey::from_spki_der(spki.as_bytes(), path)
            }
            other => Err(KeyError::Label {
                path: path.to_owned(),
                label: other.to_owned(),
            }),
        }
    }

    /// Parses a DER SubjectPublicKeyInfo, dispatching on its algorithm.
    pub fn from_spki_der(der: &[u8], path: &str) -> Result<CosignPublicKey, KeyError> {
        let info =
            SubjectPublicKeyInfoRef::try_from(der).map_err(|e| invalid(path, "public", e))?;
        let verifier = match info.algorithm.oid {
            ID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|e| invalid(path, "ECDSA", e))?;
                match curve {
                    SECP256R1 => KeyVerifier::P256(
                        p256::ecdsa::VerifyingKey::from_public_key_der(der)
                            .map_err(|e| invalid(path, "ECDSA P-256", e))?,
                    ),
                    SECP384R1 => KeyVerifier::P384(
                        p384::ecdsa::VerifyingKey::from_public_key_der(der)
                            .map_err(|e| invalid(path, "ECDSA P-384", e))?,
                    ),
                    other => {
                        return Err(KeyError::Curve {
                            path: path.to_owned(),
                            curve: other.to_string(),
                        })
                    }
                }
            }
            ID_ED25519 => KeyVerifier::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(der)
                    .map_err(|e| invalid(path, "Ed25519", e))?,
            ),
            RSA_ENCRYPTION => {
                let key = rsa::RsaPublicKey::from_public_key_der(der)
                    .map_err(|e| invalid(path, "RSA", e))?;
                let bits = key.size() * 8;
                if bits < MIN_RSA_BITS {
                    return Err(KeyError::RsaTooSmall {
                        path: path.to_owned(),
                        bits,
                        min: MIN_RSA_BITS,
                    });
                }
                KeyVerifier::Rsa {
                    bits,
                    pkcs1v15: rsa::pkcs1v15::VerifyingKey::new(key.clone()),
                    // Salt length = digest length, as Go's `rsa.PSSSaltLengthEqualsHash`.
                    pss: rsa::pss::VerifyingKey::new(key),
                }
            }
            other => {
                return Err(KeyError::Algorithm {
                    path: path.to_owned(),
                    oid: other.to_string(),
                })
            }
        };
        Ok(CosignPublicKey {
            id: KeyId::of_spki_der(der),
            spki: der.to_vec(),
            verifier,
        })
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key type as `check-config` shows it: `ecdsa-p256`, `ecdsa-p384`, `ed25519`,
    /// `rsa-3072`.
    pub fn kind(&self) -> String {
        match &self.verifier {
            KeyVerifier::P256(_) => "ecdsa-p256".to_owned(),
            KeyVerifier::P384(_) => "ecdsa-p384".to_owned(),
            KeyVerifier::Ed25519(_) => "ed25519".to_owned(),
            KeyVerifier::Rsa { bits, .. } => format!("rsa-{bits}"),
        }
    }

    /// Checks `signature` over the exact `message` bytes, trying each encoding and hash this
    /// key type is used with (module docs). `None` if none verifies.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Option<Scheme> {
        match &self.verifier {
            KeyVerifier::P256(vk) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature))
                    .ok()?;
                // ring does the arithmetic (several times faster; Sigstore evidence carries
                // several P-256 signatures per image), on the signature in DER whatever
                // encoding it arrived in.
                let point = vk.to_encoded_point(false);
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_ASN1,
                    point.as_bytes(),
                )
                .verify(message, sig.to_der().as_bytes())
                .ok()
                .map(|()| Scheme::EcdsaP256Sha256)
            }
            KeyVerifier::P384(vk) => {
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p384::ecdsa::Signature::from_slice(signature))
                    .ok()?;
                if vk.verify(message, &sig).is_ok() {
                    return Some(Scheme::EcdsaP384Sha384);
                }
                // cosign's legacy `.sig` path hashes with SHA-256 whatever the curve
                // (`--signature-digest-algorithm`, default sha256; trust-formats.md §1.5).
                vk.verify_prehash(&Sha256::digest(message), &sig)
                    .ok()
                    .map(|()| Scheme::EcdsaP384Sha256)
            }
            KeyVerifier::Ed25519(vk) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).ok()?;
                if vk.verify_strict(message, &sig).is_ok() {
                    return Some(Scheme::Ed25519);
                }
                // cosign signs with Ed25519ph when it uploads to the transparency log.
                let prehashed = Sha512::new().chain_update(message);
                vk.verify_prehashed_strict(prehashed, None, &sig)
                    .ok()
                    .map(|()| Scheme::Ed25519ph)
            }
            KeyVerifier::Rsa { pkcs1v15, pss, .. } => {
                let sig = rsa::pkcs1v15::Signature::try_from(signature).ok()?;
                if pkcs1v15.verify(message, &sig).is_ok() {
                    return Some(Scheme::RsaPkcs1v15Sha256);
                }
                let sig = rsa::pss::Signature::try_from(signature).ok()?;
                pss.verify(message, &sig)
                    .ok()
                    .map(|()| Scheme::RsaPssSha256)
            }
        }
    }
}

// === impl CosignPublicKey: pre-hashed ===

impl CosignPublicKey {
    /// Checks `signature` given only the SHA-256 digest of the signed message, as when a
    /// Sigstore bundle is verified against an artifact digest rather than its bytes.
    /// Pure Ed25519 and SHA-384 ECDSA cannot be checked this way, so they are `None`: a
    /// signature that cannot be checked is not verified.
    pub fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Option<Scheme> {
        match &self.verifier {
            KeyVerifier::P256(vk) => {
                let sig = p256::ecdsa::Signature::from_der(signature).ok()?;
                vk.verify_prehash(digest, &sig)
                    .ok()
                    .map(|()| Scheme::EcdsaP256Sha256)
            }
            KeyVerifier::P384(vk) => {
                let sig = p384::ecdsa::Signature::from_der(signature).ok()?;
                vk.verify_prehash(digest, &sig)
                    .ok()
                    .map(|()| Scheme::EcdsaP384Sha256)
            }
            KeyVerifier::Ed25519(_) => None,
            KeyVerifier::Rsa { pkcs1v15, pss, .. } => {
                let sig = rsa::pkcs1v15::Signature::try_from(signature).ok()?;
                if pkcs1v15.verify_prehash(digest, &sig).is_ok() {
                    return Some(Scheme::RsaPkcs1v15Sha256);
                }
                let sig = rsa::pss::Signature::try_from(signature).ok()?;
                pss.verify_prehash(digest, &sig)
                    .ok()
                    .map(|()| Scheme::RsaPssSha256)
            }
        }
    }
}

impl fmt::Debug for CosignPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignPublicKey({} {})", self.kind(), self.id.short())
    }
}

fn invalid(path: &str, what: &'static str, e: impl fmt::Display) -> KeyError {
    KeyError::Invalid {
        path: path.to_owned(),
        what,
        detail: e.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    use p256::ecdsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
    use spki::der::pem::LineEnding;

    /// `../shared/testdata/<rel>`, panicking with the path when it is missing.
    pub(crate) fn shared(rel: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata")
            .join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("test fixture {} missing: {e}", p.display()))
    }

    fn spki_pem(key: &impl spki::EncodePublicKey) -> String {
        key.to_public_key_pem(LineEnding::LF).unwrap()
    }

    fn load(pem: &str) -> CosignPublicKey {
        CosignPublicKey::from_pem(pem.as_bytes(), "test.pub").unwrap()
    }

    const MSG: &[u8] = br#"{"critical":{"type":"cosign container image signature"}}"#;

    #[test]
    fn the_lab_cosign_pub_loads_as_p256_with_a_sha256_spki_key_id() {
        let pem = shared("cosign/cosign.pub");
        let k = CosignPublicKey::from_pem(&pem, "cosign.pub").unwrap();
        assert_eq!(k.kind(), "ecdsa-p256");
        let (_, der) = spki::der::pem::decode_vec(&pem).unwrap();
        assert_eq!(k.id().as_str(), hex::encode(Sha256::digest(&der)));
        assert_eq!(k.id().short().len(), 16);
    }

    #[test]
    fn p256_accepts_der_raw_and_high_s_signatures() {
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let k = load(&spki_pem(&p256::PublicKey::from(sk.verifying_key())));
        let signed: p256::ecdsa::Signature = sk.sign(MSG);
        // Whatever S the signer chose, test both the low-S and the high-S (n - s) form: Go
        // signers leave S as it comes, so real cosign signatures are high-S half the time.
        let sig = signed.normalize_s().unwrap_or(signed);
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert!(high.normalize_s().is_some(), "negated S is not high");
        for (what, bytes) in [
            ("der", sig.to_der().to_vec()),
            ("raw", sig.to_bytes().to_vec()),
            ("high-s der", high.to_der().to_vec()),
            ("high-s raw", high.to_vec()),
        ] {
            assert_eq!(
                k.verify(MSG, &bytes),
                Some(Scheme::EcdsaP256Sha256),
                "{what}"
            );
            assert_eq!(k.verify(b"other", &bytes), None, "{what}");
        }
    }

    #[test]
    fn p384_accepts_sha384_and_cosigns_legacy_sha256() {
        let sk = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let k = load(&spki_pem(&p384::PublicKey::from(sk.verifying_key())));
        assert_eq!(k.kind(), "ecdsa-p384");
        let sig: p384::ecdsa::Signature = sk.sign(MSG);
        assert_eq!(
            k.verify(MSG, &sig.to_der().to_vec()),
            Some(Scheme::EcdsaP384Sha384)
        );
        let legacy: p384::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(MSG)).unwrap();
        assert_eq!(
            k.verify(MSG, &legacy.to_der().to_vec()),
            Some(Scheme::EcdsaP384Sha256)
        );
        let (r, s) = legacy.split_scalars();
        let high = p384::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert_eq!(k.verify(MSG, &high.to_vec()), Some(Scheme::EcdsaP384Sha256));
        assert_eq!(k.verify(b"other", &sig.to_der().to_vec()), None);
    }

    #[test]
    fn ed25519_accepts_pure_and_prehashed() {
        let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let k = load(&spki_pem(&sk.verifying_key()));
        assert_eq!(k.kind(), "ed25519");
        let pure = sk.sign(MSG);
        assert_eq!(k.verify(MSG, &pure.to_bytes()), Some(Scheme::Ed25519));
        let ph = sk
            .sign_prehashed(Sha512::new().chain_update(MSG), None)
            .unwrap();
        assert_eq!(k.verify(MSG, &ph.to_bytes()), Some(Scheme::Ed25519ph));
        assert_eq!(k.verify(b"other", &pure.to_bytes()), None);
        assert_eq!(k.verify(MSG, &pure.to_bytes()[..63]), None);
    }

    #[test]
    fn rsa_accepts_pkcs1v15_and_pss_from_spki_and_pkcs1_files() {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        let sk = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let pk = sk.to_public_key();
        let k = load(&spki_pem(&pk));
        assert_eq!(k.kind(), "rsa-2048");
        let pkcs1 = spki::der::pem::encode_string(
            "RSA PUBLIC KEY",
            LineEnding::LF,
            pk.to_pkcs1_der().unwrap().as_bytes(),
        )
        .unwrap();
        let k1 = load(&pkcs1);
        assert_eq!(k1.id(), k.id(), "PKCS#1 and SPKI files give one key id");

        let v15 = rsa::pkcs1v15::SigningKey::<Sha256>::new(sk.clone()).sign(MSG);
        let pss = rsa::pss::BlindedSigningKey::<Sha256>::new(sk)
            .sign_with_rng(&mut rand_core::OsRng, MSG);
        for key in [&k, &k1] {
            assert_eq!(
                key.verify(MSG, &v15.to_vec()),
                Some(Scheme::RsaPkcs1v15Sha256)
            );
            assert_eq!(key.verify(MSG, &pss.to_vec()), Some(Scheme::RsaPssSha256));
            assert_eq!(key.verify(b"other", &v15.to_vec()), None);
            assert_eq!(key.verify(b"other", &pss.to_vec()), None);
        }
    }

    /// The private keys in `../shared/testdata/sigstore/keys/` (sigstore-rs test data, PKCS#8;
    /// trust-formats.md §6 #6): their public halves, written as cosign would, verify what the
    /// private keys sign.
    #[test]
    fn public_halves_of_the_sigstore_rs_test_keys_verify_their_signatures() {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let text = |f: &str| String::from_utf8(shared(&format!("sigstore/keys/{f}"))).unwrap();

        let ec = p256::ecdsa::SigningKey::from_pkcs8_pem(&text("ecdsa_private.key")).unwrap();
        let k = load(&spki_pem(&p256::PublicKey::from(ec.verifying_key())));
        let sig: p256::ecdsa::Signature = ec.sign(MSG);
        assert_eq!(
            k.verify(MSG, &sig.to_der().to_vec()),
            Some(Scheme::EcdsaP256Sha256)
        );

        let ed = ed25519_dalek::SigningKey::from_pkcs8_pem(&text("ed25519_private.key")).unwrap();
        let k = load(&spki_pem(&ed.verifying_key()));
        assert_eq!(
            k.verify(MSG, &ed.sign(MSG).to_bytes()),
            Some(Scheme::Ed25519)
        );

        // This one is PKCS#1 (`RSA PRIVATE KEY`).
        let pem = text("rsa_private.key");
        let (label, der) = spki::der::pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, "RSA PRIVATE KEY");
        let rsa = rsa::RsaPrivateKey::from_pkcs1_der(&der).unwrap();
        let k = load(&spki_pem(&rsa.to_public_key()));
        assert!(k.kind().starts_with("rsa-"), "{}", k.kind());
        let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa).sign(MSG);
        assert_eq!(
            k.verify(MSG, &sig.to_vec()),
            Some(Scheme::RsaPkcs1v15Sha256)
        );
        // A key of one type never verifies another type's signature.
        assert_eq!(k.verify(MSG, &ed.sign(MSG).to_bytes()), None);
    }

    #[test]
    fn unusable_key_files_are_clear_errors() {
        let truncated = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
        let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024)
            .unwrap()
            .to_public_key();
        let cases: Vec<(String, &str)> = vec![
            ("not a key".to_owned(), "no -----BEGIN line"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
                "expected \"PUBLIC KEY\"",
            ),
            (truncated.to_owned(), "invalid"),
            (spki_pem(&small), "1024 bits is too small"),
            (
                // A P-521 key: valid SPKI, unsupported curve.
                "-----BEGIN PUBLIC KEY-----\nMIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAp4+wvOZVqn8z8otZvSqwVAJuqLFu\nukTNKgCjQjAeDtEMOGKBCElJuW58LgEVOYZwjQOhjvgkxZ9cZGpzbFTow5QBywmw\nQ9pJvOCUtntOTRgSXFoQCTec2BHvoQeo8iG0vjnE3pgLnUMuzlPrhxlKxMzVxk+E\nTrZw24WVjELIVcHc6e0=\n-----END PUBLIC KEY-----\n".to_owned(),
                "unsupported elliptic curve 1.3.132.0.35",
            ),
            (
                // X25519: a key-agreement key, not a signing key.
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEABPP+vGeJH1SdcOgONlVv74QSKr17JarpdfnU4vJOJXk=\n-----END PUBLIC KEY-----\n".to_owned(),
                "unsupported key algorithm 1.3.101.110",
            ),
        ];
        for (text, want) in cases {
            let e = CosignPublicKey::from_pem(text.as_bytes(), "k.pub")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.starts_with("k.pub: "),
                "{e:?} lacks {want:?}"
            );
        }
        let e = CosignPublicKey::load(Path::new("/nonexistent/k.pub")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/k.pub: "), "{e}");
    }
}
