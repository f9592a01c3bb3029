//! X.509-style signature verification: a SubjectPublicKeyInfo, an explicit signature
//! AlgorithmIdentifier (as found in a certificate's `signatureAlgorithm`, a CMS SignerInfo or
//! an SCT), the signed bytes and the signature.
//!
//! Unlike cosign keys (`trust::cosign::keys`), nothing is guessed here: the algorithm names
//! the hash and padding, and the key type must agree with it. Supported, as the Sigstore PKI
//! and common TSAs use them:
//!
//! | algorithm | key | signature encoding |
//! |---|---|---|
//! | ecdsa-with-SHA256/384/512 | P-256 or P-384 | DER `Ecdsa-Sig-Value` |
//! | sha256/384/512WithRSAEncryption | RSA 2048–4096 | PKCS#1 v1.5 |
//! | RSASSA-PSS (SHA-256/384/512, MGF1 with the same hash) | RSA 2048–4096 | PSS |
//! | Ed25519 | Ed25519 | 64 bytes, strict verification |
//!
//! Everything else (SHA-1, P-521, DSA, …) is an error: fail closed.

use der::asn1::{AnyRef, ObjectIdentifier};
use der::oid::db::{rfc5912, rfc8410};
use der::{Decode, Encode, Tag, Tagged};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};

/// RSA moduli below this are not accepted, whatever the algorithm says.
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed public key: {0}")]
    MalformedKey(String),
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    #[error("unsupported signature algorithm {0}")]
    UnsupportedAlgorithm(ObjectIdentifier),
    #[error("malformed parameters for signature algorithm {oid}: {detail}")]
    MalformedParameters {
        oid: ObjectIdentifier,
        detail: String,
    },
    #[error("signature algorithm {algorithm} does not fit a {key} key")]
    KeyMismatch {
        algorithm: &'static str,
        key: &'static str,
    },
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    #[error("signature does not verify")]
    Invalid,
}

/// The digests this module (and the timestamp code) accept; SHA-1 and SHA-224 are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    /// The hash named by a digest-algorithm OID (id-sha256/384/512), if it is one we accept.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlgorithm> {
        match *oid {
            rfc5912::ID_SHA_256 => Some(HashAlgorithm::Sha256),
            rfc5912::ID_SHA_384 => Some(HashAlgorithm::Sha384),
            rfc5912::ID_SHA_512 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha384 => Sha384::digest(data).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// What an AlgorithmIdentifier asks for, once its parameters are understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Ecdsa(HashAlgorithm),
    RsaPkcs1(HashAlgorithm),
    RsaPss {
        hash: HashAlgorithm,
        salt_len: usize,
    },
    Ed25519,
}

/// Verifies `signature` over `message` with the key `spki_der` (DER SubjectPublicKeyInfo)
/// under `algorithm`. Any parse failure, unsupported algorithm or key/algorithm mismatch is an
/// error, as is a signature that does not verify.
pub fn verify(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let scheme = scheme(algorithm)?;
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| SignatureError::MalformedKey(e.to_string()))?;
    match scheme {
        Scheme::Ecdsa(hash) => verify_ecdsa(&spki, spki_der, hash, message, signature),
        Scheme::RsaPkcs1(hash) => {
            let key = rsa_key(&spki, "RSA PKCS#1 v1.5")?;
            let scheme = match hash {
                HashAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
                HashAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                HashAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>(),
            };
            key.verify(scheme, &hash.digest(message), signature)
                .map_err(|_| SignatureError::Invalid)
        }
        Scheme::RsaPss { hash, salt_len } => {
            let key = rsa_key(&spki, "RSASSA-PSS")?;
            let scheme = match hash {
                HashAlgorithm::Sha256 => rsa::Pss::new_with_salt::<Sha256>(salt_len),
                HashAlgorithm::Sha384 => rsa::Pss::new_with_salt::<Sha384>(salt_len),
                HashAlgorithm::Sha512 => rsa::Pss::new_with_salt::<Sha512>(salt_len),
            };
            key.verify(scheme, &hash.digest(message), signature)
                .map_err(|_| SignatureError::Invalid)
        }
        Scheme::Ed25519 => verify_ed25519(&spki, message, signature),
    }
}

/// Maps an AlgorithmIdentifier to a scheme, checking its parameters.
fn scheme(algorithm: &AlgorithmIdentifierOwned) -> Result<Scheme, SignatureError> {
    let oid = algorithm.oid;
    let params = algorithm.parameters.as_ref();
    let hash_only = |hash| -> Result<HashAlgorithm, SignatureError> {
        // RFC 5758 says ECDSA parameters are absent and RFC 4055 that RSA ones are NULL, but
        // encoders mix the two up; neither carries meaning, anything else is malformed.
        match params {
            None => Ok(hash),
            Some(p) if p.tag() == Tag::Null && p.value().is_empty() => Ok(hash),
            Some(_) => Err(SignatureError::MalformedParameters {
                oid,
                detail: "expected absent or NULL parameters".to_owned(),
            }),
        }
    };
    match oid {
        rfc5912::ECDSA_WITH_SHA_256 => Ok(Scheme::Ecdsa(hash_only(HashAlgorithm::Sha256)?)),
        rfc5912::ECDSA_WITH_SHA_384 => Ok(Scheme::Ecdsa(hash_only(HashAlgorithm::Sha384)?)),
        rfc5912::ECDSA_WITH_SHA_512 => Ok(Scheme::Ecdsa(hash_only(HashAlgorithm::Sha512)?)),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => {
            Ok(Scheme::RsaPkcs1(hash_only(HashAlgorithm::Sha256)?))
        }
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => {
            Ok(Scheme::RsaPkcs1(hash_only(HashAlgorithm::Sha384)?))
        }
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => {
            Ok(Scheme::RsaPkcs1(hash_only(HashAlgorithm::Sha512)?))
        }
        rfc5912::ID_RSASSA_PSS => pss_scheme(oid, params),
        rfc8410::ID_ED_25519 => match params {
            // RFC 8410 §3: parameters MUST be absent.
            None => Ok(Scheme::Ed25519),
            Some(_) => Err(SignatureError::MalformedParameters {
                oid,
                detail: "Ed25519 takes no parameters".to_owned(),
            }),
        },
        other => Err(SignatureError::UnsupportedAlgorithm(other)),
    }
}

/// RSASSA-PSS parameters (RFC 4055 §3.1). Absent fields default to SHA-1, which we reject, so
/// in practice every field must be present.
fn pss_scheme(oid: ObjectIdentifier, params: Option<&der::Any>) -> Result<Scheme, SignatureError> {
    let malformed = |detail: String| SignatureError::MalformedParameters { oid, detail };
    let params = params.ok_or_else(|| malformed("RSASSA-PSS needs parameters".to_owned()))?;
    let der = params.to_der().map_err(|e| malformed(e.to_string()))?;
    let pss =
        rsa::pkcs1::RsaPssParams::try_from(der.as_slice()).map_err(|e| malformed(e.to_string()))?;
    let hash = HashAlgorithm::from_oid(&pss.hash.oid)
        .ok_or_else(|| malformed(format!("unsupported PSS hash {}", pss.hash.oid)))?;
    if pss.mask_gen.oid != rfc5912::ID_MGF_1 {
        return Err(malformed(format!(
            "unsupported mask generation function {}",
            pss.mask_gen.oid
        )));
    }
    // The rsa crate's PSS uses MGF1 with the message hash; a different MGF1 hash would
    // verify against something the signer did not mean, so it is refused.
    let mgf_hash = pss
        .mask_gen
        .parameters
        .as_ref()
        .and_then(|p| HashAlgorithm::from_oid(&p.oid));
    if mgf_hash != Some(hash) {
        return Err(malformed(
            "MGF1 hash differs from the message hash".to_owned(),
        ));
    }
    Ok(Scheme::RsaPss {
        hash,
        salt_len: usize::from(pss.salt_len),
    })
}

fn verify_ecdsa(
    spki: &SubjectPublicKeyInfoRef<'_>,
    spki_der: &[u8],
    hash: HashAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    if spki.algorithm.oid != rfc5912::ID_EC_PUBLIC_KEY {
        return Err(SignatureError::KeyMismatch {
            algorithm: "ECDSA",
            key: key_name(&spki.algorithm.oid),
        });
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p: &AnyRef<'_>| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| SignatureError::MalformedKey("EC key without a named curve".to_owned()))?;
    // ring first: a keyless verification checks half a dozen ECDSA signatures, and ring's
    // P-384 is several times faster than RustCrypto's. ring has no SHA-512 variants and
    // takes uncompressed points only; those few cases go to RustCrypto below.
    let point = spki.subject_public_key.raw_bytes();
    let ring_alg: Option<&'static dyn ring::signature::VerificationAlgorithm> = match (curve, hash)
    {
        (rfc5912::SECP_256_R_1, HashAlgorithm::Sha256) => {
            Some(&ring::signature::ECDSA_P256_SHA256_ASN1)
        }
        (rfc5912::SECP_256_R_1, HashAlgorithm::Sha384) => {
            Some(&ring::signature::ECDSA_P256_SHA384_ASN1)
        }
        (rfc5912::SECP_384_R_1, HashAlgorithm::Sha256) => {
            Some(&ring::signature::ECDSA_P384_SHA256_ASN1)
        }
        (rfc5912::SECP_384_R_1, HashAlgorithm::Sha384) => {
            Some(&ring::signature::ECDSA_P384_SHA384_ASN1)
        }
        _ => None,
    };
    if let Some(alg) = ring_alg.filter(|_| point.first() == Some(&0x04)) {
        return ring::signature::UnparsedPublicKey::new(alg, point)
            .verify(message, signature)
            .map_err(|_| SignatureError::Invalid);
    }
    // The named hash, not the curve's natural one: a P-384 key may sign with SHA-256 (the
    // Sigstore TSA does). `verify_prehash` truncates or accepts the digest as FIPS 186 says.
    let prehash = hash.digest(message);
    match curve {
        rfc5912::SECP_256_R_1 => {
            use p256::pkcs8::DecodePublicKey as _;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| SignatureError::MalformedKey(e.to_string()))?;
            let sig = p256::ecdsa::Signature::from_der(signature)
                .map_err(|e| SignatureError::MalformedSignature(e.to_string()))?;
            key.verify_prehash(&prehash, &sig)
                .map_err(|_| SignatureError::Invalid)
        }
        rfc5912::SECP_384_R_1 => {
            use p384::pkcs8::DecodePublicKey as _;
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| SignatureError::MalformedKey(e.to_string()))?;
            let sig = p384::ecdsa::Signature::from_der(signature)
                .map_err(|e| SignatureError::MalformedSignature(e.to_string()))?;
            key.verify_prehash(&prehash, &sig)
                .map_err(|_| SignatureError::Invalid)
        }
        other => Err(SignatureError::UnsupportedKey(format!("EC curve {other}"))),
    }
}

/// An RSA key from either an rsaEncryption or an id-RSASSA-PSS SubjectPublicKeyInfo; both
/// carry a PKCS#1 RSAPublicKey.
fn rsa_key(
    spki: &SubjectPublicKeyInfoRef<'_>,
    algorithm: &'static str,
) -> Result<rsa::RsaPublicKey, SignatureError> {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    if spki.algorithm.oid != rfc5912::RSA_ENCRYPTION && spki.algorithm.oid != rfc5912::ID_RSASSA_PSS
    {
        return Err(SignatureError::KeyMismatch {
            algorithm,
            key: key_name(&spki.algorithm.oid),
        });
    }
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SignatureError::MalformedKey("unused bits in RSA key".to_owned()))?;
    // `from_pkcs1_der` also enforces the crate's 4096-bit maximum.
    let key = rsa::RsaPublicKey::from_pkcs1_der(bits)
        .map_err(|e| SignatureError::MalformedKey(e.to_string()))?;
    if key.n().bits() < MIN_RSA_BITS {
        return Err(SignatureError::UnsupportedKey(format!(
            "RSA key of {} bits (minimum {MIN_RSA_BITS})",
            key.n().bits()
        )));
    }
    Ok(key)
}

fn verify_ed25519(
    spki: &SubjectPublicKeyInfoRef<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    if spki.algorithm.oid != rfc8410::ID_ED_25519 {
        return Err(SignatureError::KeyMismatch {
            algorithm: "Ed25519",
            key: key_name(&spki.algorithm.oid),
        });
    }
    let raw: [u8; 32] = spki
        .subject_public_key
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignatureError::MalformedKey("Ed25519 key is not 32 bytes".to_owned()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
        .map_err(|e| SignatureError::MalformedKey(e.to_string()))?;
    let sig = ed25519_dalek::Signature::from_slice(signature)
        .map_err(|e| SignatureError::MalformedSignature(e.to_string()))?;
    // Strict: rejects small-order keys and non-canonical signatures, which a plain `verify`
    // would let through.
    key.verify_strict(message, &sig)
        .map_err(|_| SignatureError::Invalid)
}

fn key_name(oid: &ObjectIdentifier) -> &'static str {
    match *oid {
        rfc5912::ID_EC_PUBLIC_KEY => "EC",
        rfc5912::RSA_ENCRYPTION | rfc5912::ID_RSASSA_PSS => "RSA",
        rfc8410::ID_ED_25519 => "Ed25519",
        _ => "unsupported",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Any;
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    use p256::ecdsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
    use spki::EncodePublicKey as _;

    const MSG: &[u8] = b"tbs bytes";

    fn alg(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        }
    }

    #[test]
    fn ecdsa_p256_and_p384_with_the_named_hash() {
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let spki = p256::PublicKey::from(sk.verifying_key())
            .to_public_key_der()
            .unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(MSG);
        let der = sig.to_der().to_vec();
        verify(
            spki.as_bytes(),
            &alg(rfc5912::ECDSA_WITH_SHA_256),
            MSG,
            &der,
        )
        .unwrap();
        // Same signature claimed as SHA-384: a different prehash, must fail.
        assert!(verify(
            spki.as_bytes(),
            &alg(rfc5912::ECDSA_WITH_SHA_384),
            MSG,
            &der
        )
        .is_err());
        assert!(verify(
            spki.as_bytes(),
            &alg(rfc5912::ECDSA_WITH_SHA_256),
            b"other",
            &der
        )
        .is_err());
        // Raw r‖s is not DER: X.509 signatures are always DER.
        assert!(matches!(
            verify(
                spki.as_bytes(),
                &alg(rfc5912::ECDSA_WITH_SHA_256),
                MSG,
                &sig.to_vec()
            ),
            Err(SignatureError::MalformedSignature(_) | SignatureError::Invalid)
        ));

        // A P-384 key signing a SHA-256 prehash (what the Sigstore TSA does).
        let sk = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let spki = p384::PublicKey::from(sk.verifying_key())
            .to_public_key_der()
            .unwrap();
        let sig: p384::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(MSG)).unwrap();
        let der = sig.to_der().to_vec();
        verify(
            spki.as_bytes(),
            &alg(rfc5912::ECDSA_WITH_SHA_256),
            MSG,
            &der,
        )
        .unwrap();
        assert!(verify(
            spki.as_bytes(),
            &alg(rfc5912::ECDSA_WITH_SHA_384),
            MSG,
            &der
        )
        .is_err());
    }

    #[test]
    fn rsa_pkcs1_and_pss() {
        let sk = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let spki = sk.to_public_key().to_public_key_der().unwrap();

        let signer = rsa::pkcs1v15::SigningKey::<Sha384>::new(sk.clone());
        let sig = signer.sign(MSG).to_vec();
        verify(
            spki.as_bytes(),
            &alg(rfc5912::SHA_384_WITH_RSA_ENCRYPTION),
            MSG,
            &sig,
        )
        .unwrap();
        assert!(verify(
            spki.as_bytes(),
            &alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION),
            MSG,
            &sig
        )
        .is_err());

        let signer = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(sk, 32);
        let sig = signer.sign_with_rng(&mut rand_core::OsRng, MSG).to_vec();
        let params = rsa::pkcs1::RsaPssParams::new::<Sha256>(32)
            .to_der()
            .unwrap();
        let pss = AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSASSA_PSS,
            parameters: Some(Any::from_der(&params).unwrap()),
        };
        verify(spki.as_bytes(), &pss, MSG, &sig).unwrap();
        // The wrong salt length in the parameters fails.
        let params = rsa::pkcs1::RsaPssParams::new::<Sha256>(20)
            .to_der()
            .unwrap();
        let wrong_salt = AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSASSA_PSS,
            parameters: Some(Any::from_der(&params).unwrap()),
        };
        assert!(verify(spki.as_bytes(), &wrong_salt, MSG, &sig).is_err());
        // PSS without parameters would mean SHA-1: refused.
        assert!(matches!(
            verify(spki.as_bytes(), &alg(rfc5912::ID_RSASSA_PSS), MSG, &sig),
            Err(SignatureError::MalformedParameters { .. })
        ));
    }

    #[test]
    fn ed25519_pure() {
        use ed25519_dalek::Signer as _;
        let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let spki = sk.verifying_key().to_public_key_der().unwrap();
        let sig = sk.sign(MSG).to_bytes();
        verify(spki.as_bytes(), &alg(rfc8410::ID_ED_25519), MSG, &sig).unwrap();
        assert!(verify(spki.as_bytes(), &alg(rfc8410::ID_ED_25519), b"x", &sig).is_err());
    }

    #[test]
    fn unsupported_or_mismatched_algorithms_fail_closed() {
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let spki = p256::PublicKey::from(sk.verifying_key())
            .to_public_key_der()
            .unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(MSG);
        let der = sig.to_der().to_vec();
        // ecdsa-with-SHA1 and sha1WithRSAEncryption.
        for oid in ["1.2.840.10045.4.1", "1.2.840.113549.1.1.5"] {
            let oid = ObjectIdentifier::new(oid).unwrap();
            assert!(matches!(
                verify(spki.as_bytes(), &alg(oid), MSG, &der),
                Err(SignatureError::UnsupportedAlgorithm(_))
            ));
        }
        // An EC key under an RSA or Ed25519 algorithm.
        for oid in [rfc5912::SHA_256_WITH_RSA_ENCRYPTION, rfc8410::ID_ED_25519] {
            assert!(matches!(
                verify(spki.as_bytes(), &alg(oid), MSG, &der),
                Err(SignatureError::KeyMismatch { .. })
            ));
        }
        // Parameters where none belong.
        let odd = AlgorithmIdentifierOwned {
            oid: rfc5912::ECDSA_WITH_SHA_256,
            parameters: Some(Any::from_der(&[0x02, 0x01, 0x01]).unwrap()),
        };
        assert!(verify(spki.as_bytes(), &odd, MSG, &der).is_err());
        assert!(verify(b"junk", &alg(rfc5912::ECDSA_WITH_SHA_256), MSG, &der).is_err());
    }
}
