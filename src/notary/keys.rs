//! Public keys in notary metadata (trust-formats.md §3.3, §3.4): key ids, the four key types,
//! the four signature methods, and the certificate rules for root-role keys.
//!
//! Every verification goes through `ring`. notary's ECDSA signatures are raw `r‖s` hashed
//! with SHA-256 whatever the curve; ring has a fixed-size verifier for P-256/SHA-256 only, so
//! P-384 signatures are re-encoded as DER for ring's P-384/SHA-256 verifier.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use der::asn1::ObjectIdentifier;
use der::oid::db::{rfc4519, rfc5280, rfc5912};
use der::{Decode, Tag, Tagged};
use sha2::{Digest as _, Sha256};
use spki::SubjectPublicKeyInfoRef;
use time::OffsetDateTime;
use x509_cert::ext::pkix::BasicConstraints;

use super::canonical;
use super::metadata::KeyJson;
use crate::sigstore::cert::Cert;

/// A PEM bundle in an x509 key holds the leaf and a few intermediates.
const MAX_CERTS_PER_KEY: usize = 8;
/// notary rejects RSA keys below this (`tuf/utils/x509.go`); ring rejects them too.
const MIN_RSA_BITS: usize = 2048;
/// notary allows certificates that start within a day, for clock skew (`certs.go`).
const NOT_BEFORE_LEEWAY: time::Duration = time::Duration::days(1);

const ECDSA_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("key id {listed} does not match its content (computed {computed})")]
    IdMismatch { listed: String, computed: String },
    #[error("unsupported key type {0:?}")]
    UnsupportedType(String),
    #[error("malformed {keytype} key: {detail}")]
    Malformed {
        keytype: &'static str,
        detail: String,
    },
}

/// Why a root-role certificate is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertRuleError {
    #[error("not an x509 key")]
    NotX509,
    #[error("certificate CN {cn:?} does not match the GUN {gun}")]
    WrongCn { cn: String, gun: String },
    #[error("certificate is signed with SHA-1")]
    Sha1,
    #[error("RSA key of {0} bits, at least {MIN_RSA_BITS} required")]
    WeakRsa(usize),
    #[error("certificate is not valid at {at} (valid {not_before} to {not_after})")]
    NotValid {
        at: String,
        not_before: String,
        not_after: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn scalar_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

#[derive(Debug, Clone)]
enum Material {
    Ecdsa {
        curve: Curve,
        point: Vec<u8>,
    },
    /// PKCS#1 `RSAPublicKey` DER, what ring takes.
    Rsa {
        pkcs1: Vec<u8>,
        bits: usize,
    },
    Ed25519([u8; 32]),
}

/// A parsed public key whose id was recomputed from its content.
#[derive(Debug, Clone)]
pub struct PublicKey {
    id: String,
    keytype: String,
    material: Material,
    /// The x509 leaf (then intermediates) for `*-x509` keys.
    certs: Vec<Cert>,
    spki_der: Vec<u8>,
}

/// `hex(sha256(canonical {"keytype","keyval":{"private":null,"public"}}))` (`TUFKey.ID`).
pub fn key_id(keytype: &str, public: &str) -> String {
    let v = serde_json::json!({
        "keytype": keytype,
        "keyval": {"private": null, "public": public},
    });
    // Only strings and null: the canonical writer cannot fail on this value.
    let bytes = canonical(&v).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

impl PublicKey {
    /// Parses the key listed under `listed_id`; the id must be the key's own.
    pub fn parse(listed_id: &str, key: &KeyJson) -> Result<PublicKey, KeyError> {
        let computed = key_id(&key.keytype, &key.keyval.public);
        if !computed.eq_ignore_ascii_case(listed_id) {
            return Err(KeyError::IdMismatch {
                listed: listed_id.to_owned(),
                computed,
            });
        }
        let keytype = key.keytype.as_str();
        let raw = STANDARD
            .decode(&key.keyval.public)
            .map_err(|e| malformed(keytype, format!("base64: {e}")))?;
        let (certs, spki_der) = match keytype {
            "ecdsa" | "rsa" => (Vec::new(), raw.clone()),
            "ecdsa-x509" | "rsa-x509" => {
                let certs = parse_bundle(keytype, &raw)?;
                let spki = certs
                    .first()
                    .map(|c| c.spki_der())
                    .transpose()
                    .map_err(|e| malformed(keytype, e.to_string()))?
                    .unwrap_or_default();
                (certs, spki)
            }
            "ed25519" => {
                let raw: [u8; 32] = raw
                    .try_into()
                    .map_err(|_| malformed("ed25519", "not 32 bytes".to_owned()))?;
                return Ok(PublicKey {
                    id: computed,
                    keytype: keytype.to_owned(),
                    material: Material::Ed25519(raw),
                    certs: Vec::new(),
                    spki_der: Vec::new(),
                });
            }
            other => return Err(KeyError::UnsupportedType(other.to_owned())),
        };
        let want_ec = keytype.starts_with("ecdsa");
        let material = spki_material(static_type(keytype), &spki_der, want_ec)?;
        Ok(PublicKey {
            id: computed,
            keytype: keytype.to_owned(),
            material,
            certs,
            spki_der,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// For x509 keys, the id of the bare public key (`CanonicalKeyID`, used for pinning by
    /// certificate key); otherwise the key id itself.
    pub fn canonical_id(&self) -> String {
        match self.keytype.as_str() {
            "ecdsa-x509" => key_id("ecdsa", &STANDARD.encode(&self.spki_der)),
            "rsa-x509" => key_id("rsa", &STANDARD.encode(&self.spki_der)),
            _ => self.id.clone(),
        }
    }

    /// Whether `sig` (as decoded from base64) by `method` verifies over `message`. Any
    /// mismatch between method and key type, or a malformed signature, is `false`.
    pub fn verify(&self, method: &str, message: &[u8], sig: &[u8]) -> bool {
        use ring::signature as rs;
        let method = method.to_ascii_lowercase();
        match (&self.material, method.as_str()) {
            (Material::Ecdsa { curve, point }, "ecdsa") => {
                if sig.len() != 2 * curve.scalar_len() {
                    return false;
                }
                match curve {
                    Curve::P256 => rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, point)
                        .verify(message, sig)
                        .is_ok(),
                    Curve::P384 => {
                        let (r, s) = sig.split_at(curve.scalar_len());
                        rs::UnparsedPublicKey::new(&rs::ECDSA_P384_SHA256_ASN1, point)
                            .verify(message, &ecdsa_der(r, s))
                            .is_ok()
                    }
                }
            }
            // PyCrypto's PSS is the same scheme with the same salt length (hash length, 32).
            (Material::Rsa { pkcs1, .. }, "rsapss" | "pycrypto-pkcs#1 pss") => {
                rs::UnparsedPublicKey::new(&rs::RSA_PSS_2048_8192_SHA256, pkcs1)
                    .verify(message, sig)
                    .is_ok()
            }
            (Material::Rsa { pkcs1, .. }, "rsapkcs1v15") => {
                rs::UnparsedPublicKey::new(&rs::RSA_PKCS1_2048_8192_SHA256, pkcs1)
                    .verify(message, sig)
                    .is_ok()
            }
            (Material::Ed25519(raw), "eddsa") => rs::UnparsedPublicKey::new(&rs::ED25519, raw)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }

    /// The rules for a root-role key (`trustpinning/certs.go` `validRootLeafCerts`): an x509
    /// leaf whose CN is the GUN (or a `prefix*` wildcard of it), not SHA-1 signed, RSA at
    /// least 2048 bits; and, when `valid_at` is given (first bootstrap only), unexpired.
    pub fn check_root_cert(
        &self,
        gun: &str,
        valid_at: Option<OffsetDateTime>,
    ) -> Result<(), CertRuleError> {
        let leaf = self.certs.first().ok_or(CertRuleError::NotX509)?;
        let cn = common_name(leaf).unwrap_or_default();
        let matches = match cn.strip_suffix('*') {
            Some(prefix) => gun.starts_with(prefix),
            None => cn == gun,
        };
        if !matches {
            return Err(CertRuleError::WrongCn {
                cn,
                gun: gun.to_owned(),
            });
        }
        for cert in &self.certs {
            let alg = cert.parsed().signature_algorithm.oid;
            if alg == rfc5912::SHA_1_WITH_RSA_ENCRYPTION
                || alg == ECDSA_WITH_SHA1
                || alg == rfc5912::DSA_WITH_SHA_1
            {
                return Err(CertRuleError::Sha1);
            }
        }
        if let Material::Rsa { bits, .. } = self.material {
            if bits < MIN_RSA_BITS {
                return Err(CertRuleError::WeakRsa(bits));
            }
        }
        if let Some(now) = valid_at {
            if now + NOT_BEFORE_LEEWAY < leaf.not_before() || now > leaf.not_after() {
                return Err(CertRuleError::NotValid {
                    at: rfc3339(now),
                    not_before: rfc3339(leaf.not_before()),
                    not_after: rfc3339(leaf.not_after()),
                });
            }
        }
        Ok(())
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn malformed(keytype: &str, detail: String) -> KeyError {
    KeyError::Malformed {
        keytype: static_type(keytype),
        detail,
    }
}

fn static_type(keytype: &str) -> &'static str {
    match keytype {
        "ecdsa" => "ecdsa",
        "rsa" => "rsa",
        "ecdsa-x509" => "ecdsa-x509",
        "rsa-x509" => "rsa-x509",
        "ed25519" => "ed25519",
        _ => "unknown",
    }
}

/// The certificates of an x509 key: the leaf (not a CA) first, then CA intermediates.
fn parse_bundle(keytype: &str, pem: &[u8]) -> Result<Vec<Cert>, KeyError> {
    let certs = Cert::from_pem_chain(pem).map_err(|e| malformed(keytype, e.to_string()))?;
    if certs.is_empty() {
        return Err(malformed(keytype, "no certificate".to_owned()));
    }
    if certs.len() > MAX_CERTS_PER_KEY {
        return Err(malformed(
            keytype,
            format!("more than {MAX_CERTS_PER_KEY} certificates"),
        ));
    }
    for (i, cert) in certs.iter().enumerate() {
        let ca = is_ca(cert).map_err(|e| malformed(keytype, e))?;
        if (i == 0) == ca {
            let detail = if i == 0 {
                "first certificate is a CA, not a leaf"
            } else {
                "more than one leaf certificate"
            };
            return Err(malformed(keytype, detail.to_owned()));
        }
    }
    Ok(certs)
}

fn is_ca(cert: &Cert) -> Result<bool, String> {
    let exts = cert.parsed().tbs_certificate.extensions.as_deref();
    for ext in exts.unwrap_or_default() {
        if ext.extn_id == rfc5280::ID_CE_BASIC_CONSTRAINTS {
            let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                .map_err(|e| format!("basic constraints: {e}"))?;
            return Ok(bc.ca);
        }
    }
    Ok(false)
}

fn common_name(cert: &Cert) -> Option<String> {
    let subject = &cert.parsed().tbs_certificate.subject;
    subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == rfc4519::CN)
        .and_then(|atv| match atv.value.tag() {
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
                String::from_utf8(atv.value.value().to_vec()).ok()
            }
            _ => None,
        })
}

/// The signing material from a DER SubjectPublicKeyInfo of the expected family.
fn spki_material(
    keytype: &'static str,
    spki_der: &[u8],
    want_ec: bool,
) -> Result<Material, KeyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| malformed(keytype, format!("public key: {e}")))?;
    let oid = spki.algorithm.oid;
    let bits = spki.subject_public_key.raw_bytes();
    if want_ec {
        if oid != rfc5912::ID_EC_PUBLIC_KEY {
            return Err(malformed(keytype, "not an EC public key".to_owned()));
        }
        let curve_oid = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let curve = match curve_oid {
            Some(rfc5912::SECP_256_R_1) => Curve::P256,
            Some(rfc5912::SECP_384_R_1) => Curve::P384,
            _ => return Err(malformed(keytype, "curve is not P-256 or P-384".to_owned())),
        };
        return Ok(Material::Ecdsa {
            curve,
            point: bits.to_vec(),
        });
    }
    if oid != rfc5912::RSA_ENCRYPTION {
        return Err(malformed(keytype, "not an RSA public key".to_owned()));
    }
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::RsaPublicKey::from_pkcs1_der(bits)
        .map_err(|e| malformed(keytype, format!("RSA key: {e}")))?;
    Ok(Material::Rsa {
        pkcs1: bits.to_vec(),
        bits: key.n().bits(),
    })
}

/// DER `ECDSA-Sig-Value` from fixed-size big-endian `r` and `s`.
fn ecdsa_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(x: &[u8], out: &mut Vec<u8>) {
        let start = x
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(x.len().saturating_sub(1));
        let x = &x[start..];
        let pad = x.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        // At most 49 bytes for P-384: short-form lengths suffice.
        out.push((x.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(x);
    }
    let mut body = Vec::with_capacity(r.len() + s.len() + 6);
    int(r, &mut body);
    int(s, &mut body);
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(0x30);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notary::metadata::KeyVal;

    fn key(keytype: &str, public: String) -> PublicKey {
        let json = KeyJson {
            keytype: keytype.to_owned(),
            keyval: KeyVal { public },
        };
        PublicKey::parse(&key_id(keytype, &json.keyval.public), &json).unwrap()
    }

    const MSG: &[u8] = br#"{"_type":"Targets","version":1}"#;

    #[test]
    fn p384_raw_signature_over_sha256() {
        use p384::ecdsa::signature::hazmat::PrehashSigner as _;
        let sk = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        // SubjectPublicKeyInfo for id-ecPublicKey/secp384r1, then the uncompressed point.
        let mut spki = hex::decode("3076301006072a8648ce3d020106052b81040022036200").unwrap();
        spki.extend_from_slice(sk.verifying_key().to_encoded_point(false).as_bytes());
        let k = key("ecdsa", STANDARD.encode(&spki));
        // Several signatures so both r/s encodings (high bit set or not) are exercised.
        for i in 0..8u8 {
            let msg = [MSG, &[i]].concat();
            let sig: p384::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(&msg)).unwrap();
            let raw = sig.to_bytes();
            assert_eq!(raw.len(), 96);
            assert!(k.verify("ECDSA", &msg, &raw));
            assert!(!k.verify("ecdsa", MSG, &raw));
            assert!(!k.verify("ecdsa", &msg, &raw[..64]));
            assert!(!k.verify("rsapss", &msg, &raw));
        }
    }

    #[test]
    fn rsa_pss_and_pkcs1v15() {
        use rsa::pkcs8::EncodePublicKey as _;
        use rsa::signature::RandomizedSigner as _;
        use rsa::signature::SignatureEncoding as _;
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let spki = private.to_public_key().to_public_key_der().unwrap();
        let k = key("rsa", STANDARD.encode(spki.as_bytes()));
        let pss = rsa::pss::SigningKey::<Sha256>::new(private.clone())
            .sign_with_rng(&mut rand_core::OsRng, MSG)
            .to_vec();
        assert!(k.verify("rsapss", MSG, &pss));
        assert!(k.verify("pycrypto-pkcs#1 pss", MSG, &pss));
        assert!(!k.verify("rsapkcs1v15", MSG, &pss));
        assert!(!k.verify("ecdsa", MSG, &pss));
        let v15 = rsa::pkcs1v15::SigningKey::<Sha256>::new(private)
            .sign_with_rng(&mut rand_core::OsRng, MSG)
            .to_vec();
        assert!(k.verify("rsapkcs1v15", MSG, &v15));
        assert!(!k.verify("rsapss", MSG, &v15));
        assert!(!k.verify("rsapkcs1v15", b"other", &v15));
        // Bare keys are not certificates: never acceptable as root keys.
        assert_eq!(k.check_root_cert("g", None), Err(CertRuleError::NotX509));
    }

    #[test]
    fn ed25519_raw_key() {
        use ring::signature::{Ed25519KeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let k = key("ed25519", STANDARD.encode(pair.public_key().as_ref()));
        let sig = pair.sign(MSG);
        assert!(k.verify("eddsa", MSG, sig.as_ref()));
        assert!(!k.verify("ecdsa", MSG, sig.as_ref()));
        assert!(!k.verify("eddsa", b"x", sig.as_ref()));
        assert_eq!(k.canonical_id(), k.id());
    }

    #[test]
    fn listed_id_must_be_the_content_id() {
        let json = KeyJson {
            keytype: "ed25519".to_owned(),
            keyval: KeyVal {
                public: STANDARD.encode([1u8; 32]),
            },
        };
        let e = PublicKey::parse(&"00".repeat(32), &json).unwrap_err();
        assert!(matches!(e, KeyError::IdMismatch { .. }), "{e}");
        let json = KeyJson {
            keytype: "dsa".to_owned(),
            keyval: KeyVal {
                public: String::new(),
            },
        };
        let e = PublicKey::parse(&key_id("dsa", ""), &json).unwrap_err();
        assert_eq!(e, KeyError::UnsupportedType("dsa".to_owned()));
        let json = KeyJson {
            keytype: "ed25519".to_owned(),
            keyval: KeyVal {
                public: STANDARD.encode([1u8; 31]),
            },
        };
        let e = PublicKey::parse(&key_id("ed25519", &json.keyval.public), &json).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e}");
    }

    #[test]
    fn x509_bundle_needs_a_leaf_first() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "ca");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&ca_key).unwrap();
        let e = PublicKey::parse(
            &key_id("ecdsa-x509", &STANDARD.encode(ca.pem())),
            &KeyJson {
                keytype: "ecdsa-x509".to_owned(),
                keyval: KeyVal {
                    public: STANDARD.encode(ca.pem()),
                },
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("is a CA"), "{e}");

        // Leaf + its CA is fine; the signing key is the leaf's.
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "gun/x");
        let leaf = p.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let k = key("ecdsa-x509", STANDARD.encode(leaf.pem() + &ca.pem()));
        assert_eq!(k.check_root_cert("gun/x", None), Ok(()));
        assert!(matches!(
            k.check_root_cert("gun/y", None),
            Err(CertRuleError::WrongCn { .. })
        ));
        // The canonical id is the bare public key's id.
        assert_eq!(
            k.canonical_id(),
            key_id("ecdsa", &STANDARD.encode(leaf_key.public_key_der()))
        );
    }

    #[test]
    fn ecdsa_der_encoding() {
        let r = [0u8; 48];
        let mut s = [0u8; 48];
        s[0] = 0x80;
        let der = ecdsa_der(&r, &s);
        assert_eq!(&der[..5], &[0x30, 3 + 51, 0x02, 1, 0]);
        assert_eq!(&der[5..8], &[0x02, 49, 0]);
        assert_eq!(der.len(), 2 + 3 + 51);
    }
}
