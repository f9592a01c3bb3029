//! A test-only Sigstore: a Fulcio-like certificate authority (a root and an intermediate CA),
//! a certificate-transparency log key, a Rekor v1 log key (ECDSA P-256), a Rekor v2 log key
//! (Ed25519) and an RFC 3161 timestamp authority (`sigstore_tsa`), all made in the test, and
//! the `trusted_root.json` that trusts them (trust-formats.md §2.1).
//!
//! It stands in for Fulcio, the CT log, Rekor (v1 and v2, rekor-tiles) and Sigstore's
//! timestamp authority because none of them can run here: the real
//! services need OIDC tokens from a real identity provider, are reached over the internet (the
//! test machine has no network but loopback), and a self-hosted stack (Trillian, MySQL,
//! ctfe, Fulcio, Rekor) is far too heavy for a test. Nothing pullgate verifies talks to those
//! services anyway: it checks what they leave behind (certificates, SCTs, signed entry
//! timestamps, inclusion proofs and checkpoints) offline against the trusted root. So this
//! module issues exactly those artefacts, byte for byte in the formats pullgate reads:
//!
//! - leaf certificates like Fulcio's (trust-formats.md §2.2): empty subject, critical SAN
//!   with the identity, EKU codeSigning, the OIDC issuer in extensions 1.3.6.1.4.1.57264.1.8
//!   (DER UTF8String) and .1.1 (raw), ten minutes of validity, and an embedded SCT (§2.4)
//!   signed by the CT key over the precertificate TBS. x509-cert builds that in two steps —
//!   the TBS without the SCT list is signed by the CT log, then the list is added and the final
//!   TBS is signed by the intermediate — which rcgen alone cannot do;
//! - cosign `.sig` layer annotations for a simple-signing payload (§1.3, §1.7): the leaf's
//!   ECDSA signature, the leaf PEM, and the Rekor bundle of a `hashedrekord` 0.0.1 entry with
//!   its signed entry timestamp;
//! - v0.3 Sigstore bundles (§2.8) of a DSSE in-toto statement, logged as a `dsse` 0.0.1 entry
//!   with a signed entry timestamp and an inclusion proof in a one-leaf tree whose checkpoint
//!   (§2.5) the Rekor key signs;
//! - v0.3 message-signature bundles of a `hashedrekord` entry, so the `.sig` entry format is
//!   checked through `pullgate verify-bundle` too;
//! - v0.3 DSSE bundles logged in Rekor v2 style (§2.6): a `hashedrekord` 0.0.2 entry over
//!   SHA-256 of the PAE, an inclusion proof and a C2SP checkpoint whose origin is the log's
//!   host, signed with Ed25519 — and no signed entry timestamp, no integrated time. Such an
//!   entry proves the signature was logged but not *when*, so pullgate's only trusted time is
//!   an RFC 3161 timestamp in `timestampVerificationData` (verify.rs: "no trusted time"
//!   otherwise). That is the shape whose certificate check rests on the TSA alone, which is
//!   why it is the one the TSA tests use; Rekor v1 entries (with a SET) can carry timestamps
//!   too, and then the certificate must be valid at both times.
//!
//! The `#[test]`s here run what this module makes through `pullgate verify-bundle`, so a format
//! mistake shows up here rather than as a refused pull in `cosign_keyless`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use der::asn1::{BitString, Ia5String, ObjectIdentifier, OctetString, UtcTime};
use der::{Decode as _, Encode as _};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use spki::EncodePublicKey as _;
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::sigstore_tsa::TestTsa;
use crate::support::*;

pub(crate) const REKOR_URL: &str = "https://rekor.pullgate.test";
/// The checkpoint origin: the log's host and a (made-up) Trillian tree ID.
pub(crate) const CHECKPOINT_ORIGIN: &str = "rekor.pullgate.test - 1234";
const REKOR_KEY_NAME: &str = "rekor.pullgate.test";
/// The Rekor v2 log: its checkpoint origin is this URL's host (no tree ID).
pub(crate) const REKOR2_URL: &str = "https://log2026.rekor.pullgate.test";
const REKOR2_ORIGIN: &str = "log2026.rekor.pullgate.test";
/// The trusted timestamp authority.
pub(crate) const TSA_URL: &str = "https://tsa.pullgate.test/api/v1/timestamp";
pub(crate) const CT_URL: &str = "https://ctfe.pullgate.test";
pub(crate) const FULCIO_URL: &str = "https://fulcio.pullgate.test";
/// The OIDC issuer the trusted identities name.
pub(crate) const ISSUER: &str = "https://issuer.pullgate.test";
/// The workflow identity the tests trust.
pub(crate) const IDENTITY: &str =
    "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
pub(crate) const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";
pub(crate) const IN_TOTO: &str = "application/vnd.in-toto+json";
/// When the trusted root starts trusting every key: long before any test runs.
const TRUSTED_SINCE: &str = "2020-01-01T00:00:00Z";

const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
const OID_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

/// The CA, CT log and Rekor keys, and the CA certificates.
pub(crate) struct MiniSigstore {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    /// The intermediate's subject: every leaf's issuer name.
    intermediate_name: Name,
    /// The intermediate's DER SPKI, whose SHA-256 is the SCT's issuer key hash.
    intermediate_spki: Vec<u8>,
    intermediate_key: SigningKey,
    ct_key: SigningKey,
    ct_log_id: [u8; 32],
    rekor_key: SigningKey,
    /// SHA-256 of the Rekor key's DER SPKI: `logID` / `logId.keyId`.
    rekor_log_id: [u8; 32],
    rekor2_key: ed25519_dalek::SigningKey,
    /// The C2SP note key ID of the Rekor v2 key, which is its `logId.keyId`.
    rekor2_log_id: [u8; 32],
    tsa: TestTsa,
}

/// Where a bundle's signature is logged.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Log {
    /// Rekor v1: a `dsse` 0.0.1 entry with a signed entry timestamp at this integrated time
    /// (a trusted time) and an inclusion proof.
    V1 { integrated_time: i64 },
    /// Rekor v2: a `hashedrekord` 0.0.2 entry with an inclusion proof only (no trusted time).
    V2,
}

/// A Fulcio-like leaf certificate and its private key.
pub(crate) struct Leaf {
    pub der: Vec<u8>,
    pub pem: String,
    key: SigningKey,
}

/// One entry in the test Rekor, with what proves it.
struct LogEntry {
    body: Vec<u8>,
    kind: &'static str,
    integrated_time: i64,
    /// The signed entry timestamp (DER ECDSA by the Rekor key).
    set: Vec<u8>,
    /// The one-leaf tree's root: the entry's leaf hash.
    root_hash: [u8; 32],
    /// The signed note for that tree.
    checkpoint: String,
}

fn p256_spki_der(key: &SigningKey) -> Vec<u8> {
    p256::PublicKey::from(key.verifying_key())
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// DER SPKI of an Ed25519 key: the fixed RFC 8410 prefix, then the 32 key bytes.
fn ed25519_spki_der(key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    let prefix = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    [prefix.as_slice(), key.verifying_key().as_bytes()].concat()
}

/// A one-leaf tree's root hash (RFC 6962 leaf hash of the entry body).
fn leaf_root_hash(body: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(body)
        .finalize()
        .into()
}

/// The bytes a DSSE signature covers for an in-toto `statement` (PAE, trust-formats.md §2.8).
pub(crate) fn pae(statement: &[u8]) -> Vec<u8> {
    [
        format!("DSSEv1 {} {IN_TOTO} {} ", IN_TOTO.len(), statement.len()).as_bytes(),
        statement,
    ]
    .concat()
}

fn sign_der(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: Signature = key.sign(message);
    sig.to_der().as_bytes().to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn utc(t: OffsetDateTime) -> Time {
    let secs = u64::try_from(t.unix_timestamp()).unwrap();
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap())
}

fn extension(oid: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

/// A CA key made by rcgen (which signs the CA certificates) and the same key for p256 (which
/// signs what rcgen cannot: the leaves).
fn ca_key() -> (rcgen::KeyPair, SigningKey) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let sk = SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
    (kp, sk)
}

fn ca_params(cn: &str, constraint: rcgen::BasicConstraints) -> rcgen::CertificateParams {
    use rcgen::{DnType, IsCa, KeyUsagePurpose};
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::OrganizationName, "pullgate.test");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(constraint);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = OffsetDateTime::now_utc() - time::Duration::days(30);
    p.not_after = OffsetDateTime::now_utc() + time::Duration::days(365);
    p
}

// === impl MiniSigstore ===

impl MiniSigstore {
    pub(crate) fn new() -> MiniSigstore {
        let (root_kp, _) = ca_key();
        let root = ca_params(
            "pullgate test sigstore root",
            rcgen::BasicConstraints::Unconstrained,
        )
        .self_signed(&root_kp)
        .unwrap();
        let (inter_kp, intermediate_key) = ca_key();
        // Like Fulcio's intermediate: may only issue code-signing certificates.
        let mut inter = ca_params(
            "pullgate test sigstore intermediate",
            rcgen::BasicConstraints::Constrained(0),
        );
        inter.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        let inter = inter.signed_by(&inter_kp, &root, &root_kp).unwrap();
        let parsed = Certificate::from_der(inter.der()).unwrap();

        let ct_key = SigningKey::random(&mut rand_core::OsRng);
        let rekor_key = SigningKey::random(&mut rand_core::OsRng);
        let rekor2_key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        // C2SP signed-note key ID: SHA-256(name ‖ "\n" ‖ 0x01 (Ed25519) ‖ public key); its
        // first four bytes are the checkpoint signature's key hint.
        let rekor2_log_id: [u8; 32] = Sha256::new()
            .chain_update(REKOR2_ORIGIN.as_bytes())
            .chain_update([b'\n', 0x01])
            .chain_update(rekor2_key.verifying_key().as_bytes())
            .finalize()
            .into();
        MiniSigstore {
            root_der: root.der().to_vec(),
            intermediate_der: inter.der().to_vec(),
            intermediate_name: parsed.tbs_certificate.subject.clone(),
            intermediate_spki: parsed
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .unwrap(),
            intermediate_key,
            ct_log_id: Sha256::digest(p256_spki_der(&ct_key)).into(),
            ct_key,
            rekor_log_id: Sha256::digest(p256_spki_der(&rekor_key)).into(),
            rekor_key,
            rekor2_key,
            rekor2_log_id,
            tsa: TestTsa::new(TSA_URL),
        }
    }

    /// The timestamp authority the trusted root trusts.
    pub(crate) fn tsa(&self) -> &TestTsa {
        &self.tsa
    }

    /// `trusted_root.json` (v0.1 media type) trusting this CA, CT log, both Rekor logs and
    /// the TSA.
    pub(crate) fn trusted_root(&self) -> Value {
        let log = |url: &str, spki: Vec<u8>, details: &str, id: &[u8; 32]| {
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(spki),
                    "keyDetails": details,
                    "validFor": { "start": TRUSTED_SINCE },
                },
                "logId": { "keyId": STANDARD.encode(id) },
            })
        };
        let p256 = "PKIX_ECDSA_P256_SHA_256";
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [
                log(REKOR_URL, p256_spki_der(&self.rekor_key), p256, &self.rekor_log_id),
                log(
                    REKOR2_URL,
                    ed25519_spki_der(&self.rekor2_key),
                    "PKIX_ED25519",
                    &self.rekor2_log_id,
                ),
            ],
            "certificateAuthorities": [{
                "subject": { "organization": "pullgate.test", "commonName": "pullgate test sigstore" },
                "uri": FULCIO_URL,
                "certChain": { "certificates": [
                    { "rawBytes": STANDARD.encode(&self.intermediate_der) },
                    { "rawBytes": STANDARD.encode(&self.root_der) },
                ] },
                "validFor": { "start": TRUSTED_SINCE },
            }],
            "ctlogs": [log(CT_URL, p256_spki_der(&self.ct_key), p256, &self.ct_log_id)],
            "timestampAuthorities": [self.tsa.authority()],
        })
    }

    pub(crate) fn write_trusted_root(&self, path: &Path) {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&self.trusted_root()).unwrap(),
        )
        .unwrap();
    }

    /// A leaf for `identity` (a URI, or an email when it has no scheme) from OIDC `issuer`,
    /// valid for ten minutes from `not_before`, as Fulcio issues them.
    pub(crate) fn leaf(&self, identity: &str, issuer: &str, not_before: OffsetDateTime) -> Leaf {
        self.leaf_valid(
            identity,
            issuer,
            not_before,
            not_before + time::Duration::minutes(10),
        )
    }

    /// A leaf with the given validity.
    pub(crate) fn leaf_valid(
        &self,
        identity: &str,
        issuer: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Leaf {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let name = Ia5String::new(identity).unwrap();
        let san = if identity.contains("://") {
            GeneralName::UniformResourceIdentifier(name)
        } else {
            GeneralName::Rfc822Name(name)
        };
        let extensions = vec![
            extension(
                OID_KEY_USAGE,
                true,
                KeyUsage(KeyUsages::DigitalSignature.into())
                    .to_der()
                    .unwrap(),
            ),
            extension(
                OID_EKU,
                false,
                ExtendedKeyUsage(vec![OID_CODE_SIGNING]).to_der().unwrap(),
            ),
            extension(
                OID_BASIC_CONSTRAINTS,
                true,
                BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                }
                .to_der()
                .unwrap(),
            ),
            // Fulcio's subject is empty, so the SAN is critical (RFC 5280 §4.2.1.6).
            extension(OID_SAN, true, SubjectAltName(vec![san]).to_der().unwrap()),
            extension(OID_ISSUER_V1, false, issuer.as_bytes().to_vec()),
            extension(
                OID_ISSUER_V2,
                false,
                der::asn1::Utf8StringRef::new(issuer)
                    .unwrap()
                    .to_der()
                    .unwrap(),
            ),
        ];
        let algorithm = AlgorithmIdentifierOwned {
            oid: OID_ECDSA_SHA256,
            parameters: None,
        };
        let mut serial = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
        serial[0] = (serial[0] & 0x7f) | 0x10; // positive, no leading zero octet
        let mut tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&serial).unwrap(),
            signature: algorithm.clone(),
            issuer: self.intermediate_name.clone(),
            validity: Validity {
                not_before: utc(not_before),
                not_after: utc(not_after),
            },
            subject: Name::default(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&p256_spki_der(&key))
                .unwrap(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };

        // Step 1: the CT log signs the precertificate — this TBS, without the SCT list.
        let precert = tbs.to_der().unwrap();
        let sct = self.sct(&precert, not_before);
        let mut list = Vec::new();
        list.extend_from_slice(&u16::try_from(sct.len() + 2).unwrap().to_be_bytes());
        list.extend_from_slice(&u16::try_from(sct.len()).unwrap().to_be_bytes());
        list.extend_from_slice(&sct);
        let value = OctetString::new(list).unwrap().to_der().unwrap();
        tbs.extensions
            .as_mut()
            .unwrap()
            .push(extension(OID_SCT_LIST, false, value));

        // Step 2: the intermediate signs the final TBS.
        let signature = sign_der(&self.intermediate_key, &tbs.to_der().unwrap());
        let cert = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: algorithm,
            signature: BitString::from_bytes(&signature).unwrap(),
        };
        let der = cert.to_der().unwrap();
        Leaf {
            pem: pem("CERTIFICATE", &der),
            der,
            key,
        }
    }

    /// One serialized SCT (RFC 6962 §3.2) by the CT key over `precert_tbs` at `at`.
    fn sct(&self, precert_tbs: &[u8], at: OffsetDateTime) -> Vec<u8> {
        let ms = u64::try_from(at.unix_timestamp()).unwrap() * 1000;
        let tbs_len = u32::try_from(precert_tbs.len()).unwrap().to_be_bytes();
        let mut signed = vec![0u8, 0u8]; // v1, certificate_timestamp
        signed.extend_from_slice(&ms.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes()); // precert_entry
        signed.extend_from_slice(&Sha256::digest(&self.intermediate_spki));
        signed.extend_from_slice(&tbs_len[1..]);
        signed.extend_from_slice(precert_tbs);
        signed.extend_from_slice(&0u16.to_be_bytes()); // no extensions
        let sig = sign_der(&self.ct_key, &signed);

        let mut sct = vec![0u8]; // v1
        sct.extend_from_slice(&self.ct_log_id);
        sct.extend_from_slice(&ms.to_be_bytes());
        sct.extend_from_slice(&0u16.to_be_bytes());
        sct.push(4); // sha256
        sct.push(3); // ecdsa
        sct.extend_from_slice(&u16::try_from(sig.len()).unwrap().to_be_bytes());
        sct.extend_from_slice(&sig);
        sct
    }

    /// Logs `body` at index 0 of a fresh one-leaf tree at `integrated_time`.
    fn log(&self, kind: &'static str, body: Value, integrated_time: i64) -> LogEntry {
        let body = serde_json::to_vec(&body).unwrap();
        // The SET covers the canonical JSON of these four fields, keys sorted (§1.7).
        let promise = format!(
            r#"{{"body":"{}","integratedTime":{integrated_time},"logID":"{}","logIndex":0}}"#,
            STANDARD.encode(&body),
            hex::encode(self.rekor_log_id),
        );
        let set = sign_der(&self.rekor_key, promise.as_bytes());
        let root_hash = leaf_root_hash(&body);
        let note = format!("{CHECKPOINT_ORIGIN}\n1\n{}\n", STANDARD.encode(root_hash));
        let mut hinted = self.rekor_log_id[..4].to_vec();
        hinted.extend(sign_der(&self.rekor_key, note.as_bytes()));
        let checkpoint = format!(
            "{note}\n\u{2014} {REKOR_KEY_NAME} {}\n",
            STANDARD.encode(hinted)
        );
        LogEntry {
            body,
            kind,
            integrated_time,
            set,
            root_hash,
            checkpoint,
        }
    }

    /// A `hashedrekord` 0.0.1 entry for `signature` over `artifact` by `leaf`.
    fn hashedrekord(
        &self,
        leaf: &Leaf,
        artifact: &[u8],
        signature: &[u8],
        integrated_time: i64,
    ) -> LogEntry {
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": { "hash": { "algorithm": "sha256", "value": sha256_hex(artifact) } },
                "signature": {
                    "content": STANDARD.encode(signature),
                    "publicKey": { "content": STANDARD.encode(&leaf.pem) },
                },
            },
        });
        self.log("hashedrekord", body, integrated_time)
    }

    /// The annotations of a keyless cosign `.sig` layer for `payload` signed by `leaf` and
    /// logged at `integrated_time` (trust-formats.md §1.3, §1.7).
    pub(crate) fn sig_layer(
        &self,
        leaf: &Leaf,
        payload: &[u8],
        integrated_time: i64,
    ) -> Map<String, Value> {
        let signature = sign_der(&leaf.key, payload);
        let entry = self.hashedrekord(leaf, payload, &signature, integrated_time);
        let rekor_bundle = json!({
            "SignedEntryTimestamp": STANDARD.encode(&entry.set),
            "Payload": {
                "body": STANDARD.encode(&entry.body),
                "integratedTime": integrated_time,
                "logIndex": 0,
                "logID": hex::encode(self.rekor_log_id),
            },
        });
        let mut a = Map::new();
        a.insert(
            "dev.cosignproject.cosign/signature".into(),
            STANDARD.encode(&signature).into(),
        );
        a.insert(
            "dev.sigstore.cosign/certificate".into(),
            leaf.pem.clone().into(),
        );
        a.insert(
            "dev.sigstore.cosign/bundle".into(),
            serde_json::to_string(&rekor_bundle).unwrap().into(),
        );
        a
    }

    /// The in-toto statement cosign v3 signs for an image: one subject, `sha256_hex`.
    pub(crate) fn statement(sha256_hex: &str, predicate_type: &str) -> Vec<u8> {
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{sha256_hex}"}},"annotations":{{}}}}],"predicateType":"{predicate_type}"}}"#
        )
        .into_bytes()
    }

    /// A v0.3 bundle of a DSSE envelope over the statement that `subject` (`sha256:<hex>`)
    /// has `predicate_type`, signed by `leaf` and logged as `dsse` 0.0.1 at `integrated_time`.
    pub(crate) fn dsse_bundle(
        &self,
        leaf: &Leaf,
        subject: &str,
        predicate_type: &str,
        integrated_time: i64,
    ) -> Vec<u8> {
        self.dsse_bundle_with(
            leaf,
            subject,
            predicate_type,
            Log::V1 { integrated_time },
            &[],
        )
    }

    /// Like [`MiniSigstore::dsse_bundle`], logged as `log` says, with one RFC 3161 timestamp
    /// over the DSSE signature per `(authority, genTime)` in `timestamps`
    /// (`verificationMaterial.timestampVerificationData.rfc3161Timestamps`).
    pub(crate) fn dsse_bundle_with(
        &self,
        leaf: &Leaf,
        subject: &str,
        predicate_type: &str,
        log: Log,
        timestamps: &[(&TestTsa, OffsetDateTime)],
    ) -> Vec<u8> {
        let material = json!({ "certificate": { "rawBytes": STANDARD.encode(&leaf.der) } });
        self.dsse(
            &leaf.key,
            &leaf.pem,
            Some(leaf),
            material,
            (subject, predicate_type),
            log,
            timestamps,
        )
    }

    /// Like [`MiniSigstore::dsse_bundle`], signed with the managed key `key` as cosign v3
    /// `sign --key` does with the transparency log: the log entry names the public key, the
    /// bundle carries only a key hint.
    pub(crate) fn key_dsse_bundle(
        &self,
        key: &SigningKey,
        subject: &str,
        predicate_type: &str,
        integrated_time: i64,
    ) -> Vec<u8> {
        let spki = p256_spki_der(key);
        let material = json!({ "publicKey": { "hint": STANDARD.encode(Sha256::digest(&spki)) } });
        let verifier = pem("PUBLIC KEY", &spki);
        self.dsse(
            key,
            &verifier,
            None,
            material,
            (subject, predicate_type),
            Log::V1 { integrated_time },
            &[],
        )
    }

    /// A DSSE bundle signed by `key`, whose log entry names `verifier_pem`; `material` is the
    /// certificate or key hint. Rekor v2 entries need the certificate `leaf`.
    #[allow(clippy::too_many_arguments)]
    fn dsse(
        &self,
        key: &SigningKey,
        verifier_pem: &str,
        leaf: Option<&Leaf>,
        material: Value,
        (subject, predicate_type): (&str, &str),
        log: Log,
        timestamps: &[(&TestTsa, OffsetDateTime)],
    ) -> Vec<u8> {
        let hex = subject.strip_prefix("sha256:").expect("a sha256 digest");
        let statement = Self::statement(hex, predicate_type);
        let pae = pae(&statement);
        let signature = sign_der(key, &pae);
        let tlog_entry = match log {
            Log::V1 { integrated_time } => {
                let body = json!({
                    "apiVersion": "0.0.1",
                    "kind": "dsse",
                    "spec": {
                        "payloadHash": { "algorithm": "sha256", "value": sha256_hex(&statement) },
                        "signatures": [{
                            "signature": STANDARD.encode(&signature),
                            "verifier": STANDARD.encode(verifier_pem),
                        }],
                    },
                });
                self.v1_entry(&self.log("dsse", body, integrated_time))
            }
            // Rekor v2 logs DSSE as a hashedrekord over the PAE's digest (§2.6).
            Log::V2 => self.rekor2_entry(
                leaf.expect("Rekor v2 entries here are for certificates"),
                Sha256::digest(&pae).into(),
                &signature,
            ),
        };
        let timestamps: Vec<Vec<u8>> = timestamps
            .iter()
            .map(|(tsa, at)| tsa.timestamp(&signature, *at))
            .collect();
        let content = json!({
            "dsseEnvelope": {
                "payload": STANDARD.encode(&statement),
                "payloadType": IN_TOTO,
                "signatures": [{ "sig": STANDARD.encode(&signature), "keyid": "" }],
            },
        });
        self.bundle(material, tlog_entry, &timestamps, content)
    }

    /// A v0.3 message-signature bundle for `artifact` signed by `leaf`, logged as the same
    /// `hashedrekord` entry a `.sig` layer carries.
    pub(crate) fn message_bundle(
        &self,
        leaf: &Leaf,
        artifact: &[u8],
        integrated_time: i64,
    ) -> Vec<u8> {
        let signature = sign_der(&leaf.key, artifact);
        let entry = self.hashedrekord(leaf, artifact, &signature, integrated_time);
        let content = json!({
            "messageSignature": {
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": STANDARD.encode(Sha256::digest(artifact)),
                },
                "signature": STANDARD.encode(&signature),
            },
        });
        let material = json!({ "certificate": { "rawBytes": STANDARD.encode(&leaf.der) } });
        self.bundle(material, self.v1_entry(&entry), &[], content)
    }

    /// A Rekor v2 entry (rekor-tiles, §2.6) for `signature` over the SHA-256 `digest` by
    /// `leaf`, at index 0 of a fresh one-leaf tree: `hashedrekord` 0.0.2 body (JCS: keys
    /// sorted, as serde_json writes them), inclusion proof and a checkpoint whose origin is
    /// the log's host, signed with the log's Ed25519 key. No SET, no integrated time.
    fn rekor2_entry(&self, leaf: &Leaf, digest: [u8; 32], signature: &[u8]) -> Value {
        let body = serde_json::to_vec(&json!({
            "apiVersion": "0.0.2",
            "kind": "hashedrekord",
            "spec": { "hashedRekordV002": {
                "data": { "algorithm": "SHA2_256", "digest": STANDARD.encode(digest) },
                "signature": {
                    "content": STANDARD.encode(signature),
                    "verifier": {
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                        "x509Certificate": { "rawBytes": STANDARD.encode(&leaf.der) },
                    },
                },
            } },
        }))
        .unwrap();
        let root_hash = leaf_root_hash(&body);
        let note = format!("{REKOR2_ORIGIN}\n1\n{}\n", STANDARD.encode(root_hash));
        let sig = ed25519_dalek::Signer::sign(&self.rekor2_key, note.as_bytes());
        let mut hinted = self.rekor2_log_id[..4].to_vec();
        hinted.extend(sig.to_bytes());
        let checkpoint = format!(
            "{note}\n\u{2014} {REKOR2_ORIGIN} {}\n",
            STANDARD.encode(hinted)
        );
        json!({
            "logIndex": "0",
            "logId": { "keyId": STANDARD.encode(self.rekor2_log_id) },
            "kindVersion": { "kind": "hashedrekord", "version": "0.0.2" },
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": STANDARD.encode(root_hash),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": { "envelope": checkpoint },
            },
            "canonicalizedBody": STANDARD.encode(&body),
        })
    }

    /// A Rekor v1 entry as a bundle's `tlogEntries[]` item: SET and inclusion proof.
    fn v1_entry(&self, entry: &LogEntry) -> Value {
        json!({
                    "logIndex": "0",
                    "logId": { "keyId": STANDARD.encode(self.rekor_log_id) },
                    "kindVersion": { "kind": entry.kind, "version": "0.0.1" },
                    "integratedTime": entry.integrated_time.to_string(),
                    "inclusionPromise": { "signedEntryTimestamp": STANDARD.encode(&entry.set) },
                    "inclusionProof": {
                        "logIndex": "0",
                        "rootHash": STANDARD.encode(entry.root_hash),
                        "treeSize": "1",
                        "hashes": [],
                        "checkpoint": { "envelope": entry.checkpoint },
                    },
                    "canonicalizedBody": STANDARD.encode(&entry.body),
        })
    }

    /// A v0.3 bundle: `material` (certificate or public key hint), the log entry, the
    /// timestamps, then `content`.
    fn bundle(
        &self,
        mut material: Value,
        tlog_entry: Value,
        timestamps: &[Vec<u8>],
        content: Value,
    ) -> Vec<u8> {
        material["tlogEntries"] = json!([tlog_entry]);
        if !timestamps.is_empty() {
            let signed: Vec<Value> = timestamps
                .iter()
                .map(|t| json!({ "signedTimestamp": STANDARD.encode(t) }))
                .collect();
            material["timestampVerificationData"] = json!({ "rfc3161Timestamps": signed });
        }
        let mut bundle = json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": material,
        });
        bundle
            .as_object_mut()
            .unwrap()
            .extend(content.as_object().unwrap().clone());
        serde_json::to_vec(&bundle).unwrap()
    }
}

// === Checked with `pullgate verify-bundle` ===

/// A few seconds ago, whole seconds: a log integration time pullgate accepts.
pub(crate) fn just_now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap()
}

/// Runs `pullgate verify-bundle` as the conformance tests do; returns (exit code, output).
fn verify_bundle(
    dir: &Path,
    bundle: &[u8],
    root: &Path,
    identity: &str,
    artifact: &str,
) -> (Option<i32>, String) {
    let path = dir.join(format!("bundle-{}.json", sha256_hex(bundle)));
    std::fs::write(&path, bundle).unwrap();
    let out = guarded(env!("CARGO_BIN_EXE_pullgate"))
        .arg("verify-bundle")
        .arg("--bundle")
        .arg(&path)
        .args(["--certificate-identity", identity])
        .args(["--certificate-oidc-issuer", ISSUER])
        .arg("--trusted-root")
        .arg(root)
        .arg(artifact)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn bundles_from_the_test_sigstore_pass_pullgate_verify_bundle_and_tampering_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let sigstore = MiniSigstore::new();
    let root = tmp.path().join("trusted_root.json");
    sigstore.write_trusted_root(&root);
    let now = just_now();
    let t = now.unix_timestamp();
    let leaf = sigstore.leaf(IDENTITY, ISSUER, now - time::Duration::minutes(1));

    // A DSSE bundle about an image digest, checked against that digest.
    let digest = digest_of(b"some image manifest");
    let bundle = sigstore.dsse_bundle(&leaf, &digest, COSIGN_SIGN, t);
    let (code, out) = verify_bundle(tmp.path(), &bundle, &root, IDENTITY, &digest);
    assert_eq!(code, Some(0), "DSSE bundle:\n{out}");

    // A message-signature bundle with the `.sig` layer's hashedrekord entry, over a file.
    let artifact = tmp.path().join("artifact");
    std::fs::write(&artifact, b"a simple-signing payload").unwrap();
    let bundle = sigstore.message_bundle(&leaf, b"a simple-signing payload", t);
    let (code, out) = verify_bundle(
        tmp.path(),
        &bundle,
        &root,
        IDENTITY,
        artifact.to_str().unwrap(),
    );
    assert_eq!(code, Some(0), "message-signature bundle:\n{out}");

    // The same evidence refused for the right reasons: another digest, another identity, a
    // leaf that had expired when it was logged.
    let other = digest_of(b"another manifest");
    let dsse = sigstore.dsse_bundle(&leaf, &digest, COSIGN_SIGN, t);
    let (code, out) = verify_bundle(tmp.path(), &dsse, &root, IDENTITY, &other);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no subject with the artifact's digest"),
        "{out}"
    );

    let (code, out) = verify_bundle(
        tmp.path(),
        &dsse,
        &root,
        "https://github.com/acme/app/.github/workflows/other.yml@refs/heads/main",
        &digest,
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("matches no trusted identity"), "{out}");

    let expired = sigstore.leaf_valid(
        IDENTITY,
        ISSUER,
        now - time::Duration::minutes(30),
        now - time::Duration::minutes(20),
    );
    let bundle = sigstore.dsse_bundle(&expired, &digest, COSIGN_SIGN, t);
    let (code, out) = verify_bundle(tmp.path(), &bundle, &root, IDENTITY, &digest);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("leaf not valid at"), "{out}");

    // A leaf from another (untrusted) test Sigstore does not chain.
    let stranger = MiniSigstore::new();
    let bundle = stranger.dsse_bundle(
        &stranger.leaf(IDENTITY, ISSUER, now - time::Duration::minutes(1)),
        &digest,
        COSIGN_SIGN,
        t,
    );
    let (code, out) = verify_bundle(tmp.path(), &bundle, &root, IDENTITY, &digest);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no transparency log entry from a trusted log"),
        "{out}"
    );
}

#[test]
fn rfc3161_timestamps_from_the_test_tsa_are_the_trusted_time_for_rekor_v2_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let sigstore = MiniSigstore::new();
    let root = tmp.path().join("trusted_root.json");
    sigstore.write_trusted_root(&root);
    let now = just_now();
    let digest = digest_of(b"some image manifest");
    let tsa = sigstore.tsa();
    let stamped = now - time::Duration::minutes(2);
    let valid = sigstore.leaf(IDENTITY, ISSUER, now - time::Duration::minutes(5));
    // Expired eight minutes before the TSA saw its signature.
    let expired = sigstore.leaf_valid(
        IDENTITY,
        ISSUER,
        now - time::Duration::minutes(30),
        now - time::Duration::minutes(10),
    );
    let run = |bundle: &[u8]| verify_bundle(tmp.path(), bundle, &root, IDENTITY, &digest);
    let tsa_time = format!(
        "{} (tsa {TSA_URL})",
        pullgate::clock::rfc3339_millis(stamped)
    );

    // Rekor v2 entry + timestamp inside the certificate's validity: the TSA time is the one
    // trusted time.
    let bundle =
        sigstore.dsse_bundle_with(&valid, &digest, COSIGN_SIGN, Log::V2, &[(tsa, stamped)]);
    let (code, out) = run(&bundle);
    assert_eq!(code, Some(0), "Rekor v2 + TSA:\n{out}");
    assert!(out.contains(&format!("at {tsa_time}")), "{out}");
    assert!(
        !out.contains("rekor"),
        "a Rekor v2 entry gave a time:\n{out}"
    );

    // The same entry without a timestamp has no trusted time at all.
    let bundle = sigstore.dsse_bundle_with(&valid, &digest, COSIGN_SIGN, Log::V2, &[]);
    let (code, out) = run(&bundle);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no trusted time"), "{out}");

    // A certificate already expired at genTime.
    let bundle =
        sigstore.dsse_bundle_with(&expired, &digest, COSIGN_SIGN, Log::V2, &[(tsa, stamped)]);
    let (code, out) = run(&bundle);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "certificate at {}",
            pullgate::clock::rfc3339_millis(stamped)
        )) && out.contains(&format!("(tsa {TSA_URL}): leaf not valid at")),
        "{out}"
    );

    // A timestamp from an authority the trusted root does not list adds no time.
    let stranger = TestTsa::new("https://tsa.stranger.test/api/v1/timestamp");
    let bundle = sigstore.dsse_bundle_with(
        &valid,
        &digest,
        COSIGN_SIGN,
        Log::V2,
        &[(&stranger, stamped)],
    );
    let (code, out) = run(&bundle);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no trusted time")
            && out.contains("no trusted timestamp authority verifies the timestamp"),
        "{out}"
    );

    // Rekor v1 with a signed entry timestamp inside the validity *and* a timestamp: both
    // times are trusted, and the certificate must hold at each.
    let logged = (now - time::Duration::minutes(15)).unix_timestamp();
    let v1 = Log::V1 {
        integrated_time: logged,
    };
    let bundle = sigstore.dsse_bundle_with(&expired, &digest, COSIGN_SIGN, v1, &[(tsa, stamped)]);
    let (code, out) = run(&bundle);
    assert_eq!(
        code,
        Some(1),
        "a valid log time rescued an expired one:\n{out}"
    );
    assert!(
        out.contains(&format!("(tsa {TSA_URL}): leaf not valid at")),
        "{out}"
    );
    // Without the timestamp the log time alone passes: the refusal above is the TSA's.
    let bundle = sigstore.dsse_bundle_with(&expired, &digest, COSIGN_SIGN, v1, &[]);
    let (code, out) = run(&bundle);
    assert_eq!(code, Some(0), "{out}");
    let bundle = sigstore.dsse_bundle(&valid, &digest, COSIGN_SIGN, now.unix_timestamp());
    let (code, out) = run(&bundle);
    assert_eq!(code, Some(0), "{out}");
}
