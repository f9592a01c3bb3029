//! One Rekor transparency-log entry checked offline (trust-formats.md §1.7, §2.5, §2.6, §2.8):
//! that the trusted log vouched for it (signed entry timestamp and/or inclusion proof up to
//! a checkpoint the log signed), and that what was logged is this bundle's signature by this
//! bundle's signer over this artifact.
//!
//! The proofs alone show only that *some* body is in the log; the body cross-check is what
//! binds the entry to the bundle. Without it a bundle could borrow any valid entry.
//!
//! Supported entry kinds: `hashedrekord` 0.0.1 (Rekor v1 message signatures), `hashedrekord`
//! 0.0.2 (Rekor v2, message signatures and DSSE), `dsse` 0.0.1 and `intoto` 0.0.2 (Rekor v1
//! DSSE). Anything else is an error, never a pass.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::bundle::{Content, TlogEntry, Version};
use super::cert::Cert;
use super::checkpoint::{verify_checkpoint, CheckpointError, LogKind};
use super::merkle::{leaf_hash, verify_inclusion, MerkleError};
use super::trusted_root::{LogInstance, TrustedRoot};
use crate::trust::cosign::keys::{CosignPublicKey, Scheme};

/// Who the bundle says signed: the log entry must name the same certificate or key.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    Certificate(&'a Cert),
    /// DER SubjectPublicKeyInfo.
    PublicKey(&'a [u8]),
}

/// What the log entry must have recorded.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub content: &'a Content,
    /// SHA-256 of the artifact, for message signatures (the hashedrekord data hash); unused
    /// for DSSE.
    pub artifact_sha256: Option<[u8; 32]>,
    pub signer: Signer<'a>,
}

/// What a verified entry tells the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    /// Some only when a signed entry timestamp verified (Rekor v1): the time the log vouches
    /// for.
    pub integrated_time: Option<OffsetDateTime>,
    pub log_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    #[error("log entry is from a transparency log not in the trusted root")]
    UnknownLog,
    #[error("transparency log {0} key is not valid at the entry's integrated time")]
    LogKeyNotValid(String),
    #[error("log entry integrated time {0} is out of range")]
    IntegratedTime(i64),
    #[error("v0.1 bundle log entry has no signed entry timestamp")]
    MissingSet,
    #[error("log entry has no inclusion proof")]
    MissingInclusionProof,
    #[error("inclusion proof has no checkpoint")]
    MissingCheckpoint,
    #[error("Rekor v2 log entry carries a signed entry timestamp, which Rekor v2 never issues")]
    UnexpectedSet,
    #[error("signed entry timestamp not signed by {0}")]
    BadSet(String),
    #[error("transparency log {url}: {detail}")]
    LogKey { url: String, detail: String },
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint tree size {checkpoint} differs from the inclusion proof's {proof}")]
    CheckpointSize { checkpoint: u64, proof: u64 },
    #[error("checkpoint root hash differs from the inclusion proof's")]
    CheckpointRoot,
    #[error("unsupported log entry kind {kind} {version}")]
    UnsupportedKind { kind: String, version: String },
    #[error("log entry kind {kind} cannot record a {content}")]
    KindMismatch { kind: String, content: &'static str },
    #[error("log entry body is {found}, its kindVersion says {expected}")]
    BodyKind { found: String, expected: String },
    #[error("log entry body is malformed: {0}")]
    Body(String),
    #[error("log entry digest differs from the artifact digest")]
    DigestMismatch,
    #[error("log entry does not record this DSSE envelope")]
    PayloadMismatch,
    #[error("log entry signature differs from the bundle signature")]
    SignatureMismatch,
    #[error("log entry names a different certificate or key than the bundle's signer")]
    SignerMismatch,
    #[error("message signature log entry checked without the artifact digest")]
    NoArtifactDigest,
}

/// Verifies `entry` against the log in `root` it names and against `expected`.
///
/// - The log must be in `root` (by log ID), and for Rekor v1 entries its key valid at the
///   integrated time when the entry states one.
/// - v0.1 bundles need a SET; v0.2+ need an inclusion proof; Rekor v2 entries
///   (`hashedrekord` 0.0.2) need an inclusion proof and must not carry a SET.
/// - Whatever is present is verified: the SET (which then yields the integrated time), and
///   the inclusion proof up to a checkpoint the log signed, whose size and root must be the
///   proof's.
/// - The body must record the bundle's artifact digest (or DSSE payload), signature and
///   signer, in the layout of its kind.
///
/// Not checked here: whether the integrated time lies in the certificate's validity or in
/// the future (the caller has the clock), the bundle's own `messageDigest`, and the
/// signature itself.
pub fn verify_entry(
    entry: &TlogEntry,
    version: Version,
    root: &TrustedRoot,
    expected: &Expected<'_>,
) -> Result<VerifiedEntry, TlogError> {
    let log = root.tlog(&entry.log_id).ok_or(TlogError::UnknownLog)?;
    let kind = EntryKind::of(entry)?;
    let rekor_v2 = kind == EntryKind::HashedRekordV002;

    // What the bundle version and log generation demand before anything is checked.
    if rekor_v2 {
        // Rekor v2 signs only checkpoints; a SET here could not come from the log.
        if entry.signed_entry_timestamp.is_some() {
            return Err(TlogError::UnexpectedSet);
        }
        if entry.inclusion_proof.is_none() {
            return Err(TlogError::MissingInclusionProof);
        }
    } else if version == Version::V01 {
        if entry.signed_entry_timestamp.is_none() {
            return Err(TlogError::MissingSet);
        }
    } else if entry.inclusion_proof.is_none() {
        return Err(TlogError::MissingInclusionProof);
    }

    // Rekor v2 entries have no integrated time; the TSA timestamp is checked elsewhere.
    if !rekor_v2 && entry.integrated_time != 0 {
        check_log_validity(log, entry.integrated_time)?;
    }

    let mut integrated_time = None;
    if let Some(set) = &entry.signed_entry_timestamp {
        verify_set(
            log,
            &entry.canonicalized_body,
            entry.integrated_time,
            entry.log_index,
            set,
        )?;
        integrated_time = Some(unix_time(entry.integrated_time)?);
    }

    if let Some(proof) = &entry.inclusion_proof {
        let leaf = leaf_hash(&entry.canonicalized_body);
        verify_inclusion(
            proof.log_index,
            proof.tree_size,
            &leaf,
            &proof.hashes,
            &proof.root_hash,
        )?;
        let note = proof
            .checkpoint
            .as_deref()
            .ok_or(TlogError::MissingCheckpoint)?;
        let log_kind = if rekor_v2 {
            LogKind::RekorV2
        } else {
            LogKind::RekorV1
        };
        let cp = verify_checkpoint(note, log, log_kind)?;
        if cp.size != proof.tree_size {
            return Err(TlogError::CheckpointSize {
                checkpoint: cp.size,
                proof: proof.tree_size,
            });
        }
        if cp.root_hash != proof.root_hash {
            return Err(TlogError::CheckpointRoot);
        }
    }

    kind.check_body(entry, expected)?;

    Ok(VerifiedEntry {
        integrated_time,
        log_url: log.base_url.clone(),
    })
}

/// SET over the canonical JSON {"body":…,"integratedTime":…,"logID":…,"logIndex":…} (§1.7);
/// also used for cosign's legacy `dev.sigstore.cosign/bundle` annotation.
///
/// `body` is the canonicalized entry (decoded, not base64); `log_index` the global index.
/// The log key must also be valid at `integrated_time`.
pub fn verify_set(
    log: &LogInstance,
    body: &[u8],
    integrated_time: i64,
    log_index: u64,
    set: &[u8],
) -> Result<(), TlogError> {
    check_log_validity(log, integrated_time)?;
    let log_err = |detail: String| TlogError::LogKey {
        url: log.base_url.clone(),
        detail,
    };
    // Rekor v1 signs SETs with ECDSA P-256 / SHA-256 only (sigstore-go `VerifySET`).
    if log.key_details != "PKIX_ECDSA_P256_SHA_256" {
        return Err(log_err(format!(
            "cannot sign entry timestamps with a {} key",
            log.key_details
        )));
    }
    let key = CosignPublicKey::from_spki_der(&log.public_key, &log.base_url)
        .map_err(|e| log_err(e.to_string()))?;
    // RFC 8785 canonical form: keys sorted, no whitespace. Every value is a base64 or hex
    // string or an integer, so there is nothing to escape and the text can be built as is.
    let payload = format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        STANDARD.encode(body),
        integrated_time,
        hex::encode(&log.log_id),
        log_index
    );
    if key.verify(payload.as_bytes(), set) != Some(Scheme::EcdsaP256Sha256) {
        return Err(TlogError::BadSet(log.base_url.clone()));
    }
    Ok(())
}

fn check_log_validity(log: &LogInstance, integrated_time: i64) -> Result<(), TlogError> {
    if !log.valid_for.contains(unix_time(integrated_time)?) {
        return Err(TlogError::LogKeyNotValid(log.base_url.clone()));
    }
    Ok(())
}

fn unix_time(t: i64) -> Result<OffsetDateTime, TlogError> {
    OffsetDateTime::from_unix_timestamp(t).map_err(|_| TlogError::IntegratedTime(t))
}

/// The entry kinds whose bodies we know how to bind to a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    HashedRekordV001,
    HashedRekordV002,
    DsseV001,
    IntotoV002,
}

impl EntryKind {
    fn of(entry: &TlogEntry) -> Result<EntryKind, TlogError> {
        match (entry.kind.as_str(), entry.kind_version.as_str()) {
            ("hashedrekord", "0.0.1") => Ok(EntryKind::HashedRekordV001),
            ("hashedrekord", "0.0.2") => Ok(EntryKind::HashedRekordV002),
            ("dsse", "0.0.1") => Ok(EntryKind::DsseV001),
            ("intoto", "0.0.2") => Ok(EntryKind::IntotoV002),
            (kind, version) => Err(TlogError::UnsupportedKind {
                kind: kind.to_owned(),
                version: version.to_owned(),
            }),
        }
    }

    fn check_body(self, entry: &TlogEntry, expected: &Expected<'_>) -> Result<(), TlogError> {
        let mismatch = |content| TlogError::KindMismatch {
            kind: entry.kind.clone(),
            content,
        };
        match (self, expected.content) {
            (EntryKind::HashedRekordV001, Content::Message(m)) => {
                let spec: HashedRekordV001 = parse_body(entry)?;
                let digest = expected
                    .artifact_sha256
                    .ok_or(TlogError::NoArtifactDigest)?;
                let hash = &spec.data.hash;
                if hash.algorithm != "sha256" || !hex_eq(&hash.value, &digest) {
                    return Err(TlogError::DigestMismatch);
                }
                if b64(&spec.signature.content, "signature.content")? != m.signature {
                    return Err(TlogError::SignatureMismatch);
                }
                let pem = b64(&spec.signature.public_key.content, "publicKey.content")?;
                signer_matches_pem(&pem, expected.signer)
            }
            (EntryKind::HashedRekordV002, content) => {
                let spec: HashedRekordV002Spec = parse_body(entry)?;
                let spec = spec.hashed_rekord_v002;
                let (digest, signature) = match content {
                    Content::Message(m) => (
                        expected
                            .artifact_sha256
                            .ok_or(TlogError::NoArtifactDigest)?,
                        &m.signature,
                    ),
                    // Rekor v2 logs DSSE as a hashedrekord over the PAE (§2.6).
                    Content::Dsse(e) => (Sha256::digest(e.pae()).into(), &e.signature),
                };
                if spec.data.algorithm != "SHA2_256"
                    || b64(&spec.data.digest, "data.digest")? != digest
                {
                    return Err(match content {
                        Content::Message(_) => TlogError::DigestMismatch,
                        Content::Dsse(_) => TlogError::PayloadMismatch,
                    });
                }
                if &b64(&spec.signature.content, "signature.content")? != signature {
                    return Err(TlogError::SignatureMismatch);
                }
                let verifier = &spec.signature.verifier;
                let logged = match (
                    &verifier.x509_certificate,
                    &verifier.public_key,
                    expected.signer,
                ) {
                    (Some(c), None, Signer::Certificate(cert)) => {
                        b64(&c.raw_bytes, "x509Certificate.rawBytes")? == cert.der()
                    }
                    (None, Some(k), Signer::PublicKey(spki)) => {
                        b64(&k.raw_bytes, "publicKey.rawBytes")? == spki
                    }
                    (Some(_), Some(_), _) | (None, None, _) => {
                        return Err(TlogError::Body(
                            "verifier must have exactly one of x509Certificate and publicKey"
                                .to_owned(),
                        ))
                    }
                    _ => false,
                };
                if !logged {
                    return Err(TlogError::SignerMismatch);
                }
                Ok(())
            }
            (EntryKind::DsseV001, Content::Dsse(e)) => {
                let spec: DsseV001 = parse_body(entry)?;
                let hash = spec
                    .payload_hash
                    .as_ref()
                    .ok_or_else(|| TlogError::Body("dsse entry has no payloadHash".to_owned()))?;
                if hash.algorithm != "sha256" || !hex_eq(&hash.value, &Sha256::digest(&e.payload)) {
                    return Err(TlogError::PayloadMismatch);
                }
                let [sig] = spec.signatures.as_slice() else {
                    return Err(TlogError::Body(
                        "dsse entry must have exactly one signature".to_owned(),
                    ));
                };
                if b64(&sig.signature, "signatures[0].signature")? != e.signature {
                    return Err(TlogError::SignatureMismatch);
                }
                let pem = b64(&sig.verifier, "signatures[0].verifier")?;
                signer_matches_pem(&pem, expected.signer)
            }
            (EntryKind::IntotoV002, Content::Dsse(e)) => {
                let spec: IntotoV002 = parse_body(entry)?;
                let content = &spec.content;
                let hash = content
                    .payload_hash
                    .as_ref()
                    .ok_or_else(|| TlogError::Body("intoto entry has no payloadHash".to_owned()))?;
                if hash.algorithm != "sha256" || !hex_eq(&hash.value, &Sha256::digest(&e.payload)) {
                    return Err(TlogError::PayloadMismatch);
                }
                let [sig] = content.envelope.signatures.as_slice() else {
                    return Err(TlogError::Body(
                        "intoto entry must have exactly one signature".to_owned(),
                    ));
                };
                // rekor stores the DSSE `sig` string (itself base64) as a `strfmt.Base64`
                // field, so the raw signature is under two layers of base64 (sigstore-go
                // `Entry.Signature`). A single layer is not accepted: it is not what rekor
                // writes.
                let logged = b64(&sig.sig, "envelope signature")
                    .and_then(|inner| {
                        let inner = String::from_utf8(inner).map_err(|_| {
                            TlogError::Body("envelope signature is not base64 text".to_owned())
                        })?;
                        b64(&inner, "envelope signature")
                    })
                    .map_err(|_| TlogError::SignatureMismatch)?;
                if logged != e.signature {
                    return Err(TlogError::SignatureMismatch);
                }
                let pem = b64(&sig.public_key, "envelope publicKey")?;
                signer_matches_pem(&pem, expected.signer)
            }
            (EntryKind::HashedRekordV001, Content::Dsse(_)) => Err(mismatch("DSSE envelope")),
            (EntryKind::DsseV001 | EntryKind::IntotoV002, Content::Message(_)) => {
                Err(mismatch("message signature"))
            }
        }
    }
}

/// Parses the body, requiring its own `apiVersion` and `kind` to be the ones the entry's
/// `kindVersion` declares (the SET and proof cover the body, not `kindVersion`).
fn parse_body<S: DeserializeOwned>(entry: &TlogEntry) -> Result<S, TlogError> {
    let body: Body<S> = serde_json::from_slice(&entry.canonicalized_body)
        .map_err(|e| TlogError::Body(e.to_string()))?;
    if body.kind != entry.kind || body.api_version != entry.kind_version {
        return Err(TlogError::BodyKind {
            found: format!("{} {}", body.kind, body.api_version),
            expected: format!("{} {}", entry.kind, entry.kind_version),
        });
    }
    Ok(body.spec)
}

/// The logged verifier is a PEM certificate or public key: it must be exactly the bundle's.
fn signer_matches_pem(pem: &[u8], signer: Signer<'_>) -> Result<(), TlogError> {
    let (label, der) = decode_pem(pem)?;
    let same = match (signer, label) {
        (Signer::Certificate(cert), "CERTIFICATE") => der == cert.der(),
        (Signer::PublicKey(spki), "PUBLIC KEY") => der == spki,
        _ => false,
    };
    if !same {
        return Err(TlogError::SignerMismatch);
    }
    Ok(())
}

/// One PEM block, read the way Go's `pem.Decode` does: rekor has logged certificates with
/// the base64 on one long line, which strict RFC 7468 parsers (`der::pem`) refuse. The
/// leniency is harmless here because the decoded DER must equal the bundle's byte for byte.
fn decode_pem(pem: &[u8]) -> Result<(&str, Vec<u8>), TlogError> {
    let bad = |what: &str| TlogError::Body(format!("verifier is not PEM: {what}"));
    let text = std::str::from_utf8(pem).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.trim().lines().map(str::trim);
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| bad("no BEGIN line"))?;
    let end = format!("-----END {label}-----");
    let mut b64_text = String::new();
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        // Encapsulated headers (RFC 1421 `Proc-Type:`) never appear in keys or certificates.
        if line.contains(':') {
            return Err(bad("unexpected header"));
        }
        b64_text.push_str(line);
    }
    if !ended || lines.next().is_some() {
        return Err(bad("no END line, or data after it"));
    }
    let der = STANDARD
        .decode(b64_text)
        .map_err(|_| bad("body is not base64"))?;
    Ok((label, der))
}

fn hex_eq(text: &str, bytes: &[u8]) -> bool {
    hex::decode(text).is_ok_and(|d| d == bytes)
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, TlogError> {
    STANDARD
        .decode(text)
        .map_err(|_| TlogError::Body(format!("{what} is not base64")))
}

// The rekor entry bodies, only the fields the cross-checks read. serde ignores the others
// (e.g. dsse `envelopeHash`, which hashes the envelope as submitted and cannot be recomputed
// from the bundle).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<S> {
    api_version: String,
    kind: String,
    spec: S,
}

#[derive(Deserialize)]
struct HashAndValue {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct HashedRekordV001 {
    data: HashedRekordV001Data,
    signature: HashedRekordV001Signature,
}

#[derive(Deserialize)]
struct HashedRekordV001Data {
    hash: HashAndValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordV001Signature {
    content: String,
    public_key: PemContent,
}

#[derive(Deserialize)]
struct PemContent {
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordV002Spec {
    hashed_rekord_v002: HashedRekordV002,
}

#[derive(Deserialize)]
struct HashedRekordV002 {
    data: HashedRekordV002Data,
    signature: HashedRekordV002Signature,
}

#[derive(Deserialize)]
struct HashedRekordV002Data {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct HashedRekordV002Signature {
    content: String,
    verifier: HashedRekordV002Verifier,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordV002Verifier {
    x509_certificate: Option<RawBytes>,
    public_key: Option<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseV001 {
    payload_hash: Option<HashAndValue>,
    #[serde(default)]
    signatures: Vec<DsseV001Signature>,
}

#[derive(Deserialize)]
struct DsseV001Signature {
    signature: String,
    verifier: String,
}

#[derive(Deserialize)]
struct IntotoV002 {
    content: IntotoV002Content,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoV002Content {
    envelope: IntotoV002Envelope,
    payload_hash: Option<HashAndValue>,
}

#[derive(Deserialize)]
struct IntotoV002Envelope {
    #[serde(default)]
    signatures: Vec<IntotoV002Signature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoV002Signature {
    sig: String,
    public_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigstore::bundle::Bundle;
    use std::path::{Path, PathBuf};

    fn sigstore_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sigstore")
    }

    fn production() -> TrustedRoot {
        TrustedRoot::load(&sigstore_dir().join("trusted_root.production.json")).unwrap()
    }

    /// A conformance case: its bundle, trusted root and artifact digest.
    fn case(name: &str) -> (Bundle, TrustedRoot, [u8; 32]) {
        let dir = sigstore_dir().join("bundle-verify").join(name);
        let bundle = Bundle::from_json(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let root_path = dir.join("trusted_root.json");
        let root = if root_path.exists() {
            TrustedRoot::load(&root_path).unwrap()
        } else {
            production()
        };
        let artifact_path = dir.join("artifact");
        let artifact = if artifact_path.exists() {
            std::fs::read(artifact_path).unwrap()
        } else {
            std::fs::read(sigstore_dir().join("bundle-verify/a.txt")).unwrap()
        };
        (bundle, root, Sha256::digest(artifact).into())
    }

    fn verify_bundle(
        bundle: &Bundle,
        root: &TrustedRoot,
        digest: [u8; 32],
    ) -> Result<VerifiedEntry, TlogError> {
        let leaf = bundle.leaf().expect("certificate bundle");
        assert_eq!(bundle.tlog_entries.len(), 1);
        verify_entry(
            &bundle.tlog_entries[0],
            bundle.version,
            root,
            &Expected {
                content: &bundle.content,
                artifact_sha256: Some(digest),
                signer: Signer::Certificate(leaf),
            },
        )
    }

    fn verify(name: &str) -> Result<VerifiedEntry, TlogError> {
        let (bundle, root, digest) = case(name);
        verify_bundle(&bundle, &root, digest)
    }

    #[test]
    fn valid_rekor_v1_entries_verify_and_yield_the_integrated_time() {
        for name in [
            "happy-path-v0.1",
            "happy-path-v0.2",
            "happy-path-v0.3",
            "trust-root-tlog-validity-end-inclusive",
            "intoto-with-custom-trust-root",
        ] {
            let v = verify(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(v.integrated_time.is_some(), "{name}");
        }
        let v = verify("happy-path-v0.1").unwrap();
        assert_eq!(v.log_url, "https://rekor.sigstore.dev");
        assert_eq!(v.integrated_time.unwrap().unix_timestamp(), 1689177396);
        let v = verify("intoto-with-custom-trust-root").unwrap();
        assert_eq!(v.log_url, "http://localhost:8000");
    }

    #[test]
    fn valid_rekor_v2_entries_verify_without_a_time() {
        for name in [
            "rekor2-happy-path",
            "rekor2-checkpoint-cosigned",
            "rekor2-checkpoint-multiple-cosigs",
            "rekor2-checkpoint-origin-not-first",
            "rekor2-checkpoint-two-sigs-cosigned",
            "rekor2-checkpoint-two-sigs-from-origin",
        ] {
            let v = verify(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(v.integrated_time, None, "{name}");
            assert_eq!(v.log_url, "https://log2025-alpha1.rekor.sigstage.dev");
        }
    }

    #[test]
    fn cosign_v3_dsse_bundle_verifies() {
        let bundle = Bundle::from_json(
            &std::fs::read(sigstore_dir().join("kubewarden-controller-v1.34.0.bundle_v03.json"))
                .unwrap(),
        )
        .unwrap();
        let v = verify_bundle(&bundle, &production(), [0; 32]).unwrap();
        assert_eq!(v.integrated_time.unwrap().unix_timestamp(), 1775719409);
        assert_eq!(v.log_url, "https://rekor.sigstore.dev");
    }

    /// Each failing conformance case this module decides, with the error it must give.
    #[test]
    fn failing_cases_fail_for_the_right_reason() {
        type Expect = fn(&TlogError) -> bool;
        let cases: &[(&str, Expect)] = &[
            (
                "checkpoint-bad-keyhint_fail",
                |e| matches!(e, TlogError::Checkpoint(CheckpointError::NotSigned(h)) if h == "rekor.sigstore.dev"),
            ),
            ("invalid-checkpoint-signature_fail", |e| {
                matches!(e, TlogError::Checkpoint(CheckpointError::BadSignature(_)))
            }),
            ("inclusion-proof-corrupted-hash_fail", |e| {
                matches!(e, TlogError::Merkle(MerkleError::RootMismatch))
            }),
            // The body was edited after logging, so the SET over it no longer verifies.
            ("incorrect-public-key_fail", |e| {
                matches!(e, TlogError::BadSet(_))
            }),
            ("intoto-log-entry-mismatch_fail", |e| {
                matches!(e, TlogError::SignatureMismatch)
            }),
            ("intoto-missing-inclusion-proof_fail", |e| {
                matches!(e, TlogError::MissingInclusionProof)
            }),
            ("dsse-mismatch-envelope_fail", |e| {
                matches!(e, TlogError::PayloadMismatch)
            }),
            ("dsse-mismatch-sig_fail", |e| {
                matches!(e, TlogError::SignatureMismatch)
            }),
            ("wrong-hashedrekord-artifact_fail", |e| {
                matches!(e, TlogError::DigestMismatch)
            }),
            ("wrong-hashedrekord-cert-and-sig_fail", |e| {
                matches!(e, TlogError::SignatureMismatch)
            }),
            ("wrong-hashedrekord-entry_fail", |e| {
                matches!(e, TlogError::DigestMismatch)
            }),
            ("rekor2-checkpoint-missing-log-signature_fail", |e| {
                matches!(e, TlogError::Checkpoint(CheckpointError::Malformed(_)))
            }),
            ("rekor2-checkpoint-missing-root-hash_fail", |e| {
                matches!(e, TlogError::Checkpoint(CheckpointError::Malformed(_)))
            }),
            ("rekor2-checkpoint-missing-size_fail", |e| {
                matches!(e, TlogError::Checkpoint(CheckpointError::Malformed(_)))
            }),
            // Rekor v2 DSSE: the entry is a hashedrekord over the PAE.
            ("rekor2-dsse-mismatch-envelope_fail", |e| {
                matches!(e, TlogError::PayloadMismatch)
            }),
            ("rekor2-dsse-mismatch-sig_fail", |e| {
                matches!(e, TlogError::SignatureMismatch)
            }),
            // Signature-level failures that also show up as entry/bundle disagreement.
            ("rekor2-dsse-invalid-sig_fail", |e| {
                matches!(e, TlogError::SignatureMismatch)
            }),
            ("dsse-invalid-sig_fail", |e| {
                matches!(e, TlogError::SignatureMismatch)
            }),
            ("signature-mismatch_fail", |e| {
                matches!(e, TlogError::SignatureMismatch)
            }),
            // sigstore-go also refuses an inclusion proof without a checkpoint
            // (`ParseTransparencyLogEntry`); the case's README is about its chain.
            ("bundle-with-root-cert_fail", |e| {
                matches!(e, TlogError::MissingCheckpoint)
            }),
            ("rekor2-no-inclusion-proof_fail", |e| {
                matches!(e, TlogError::MissingInclusionProof)
            }),
        ];
        for (name, expect) in cases {
            match verify(name) {
                Ok(_) => panic!("{name} verified"),
                Err(e) => assert!(expect(&e), "{name}: unexpected error {e:?}"),
            }
        }
    }

    #[test]
    fn set_over_the_v01_entry_verifies_and_binds_every_field() {
        let (bundle, root, _) = case("happy-path-v0.1");
        let e = &bundle.tlog_entries[0];
        let log = root.tlog(&e.log_id).unwrap();
        let set = e.signed_entry_timestamp.as_deref().unwrap();
        verify_set(
            log,
            &e.canonicalized_body,
            e.integrated_time,
            e.log_index,
            set,
        )
        .unwrap();

        let bad = |r: Result<(), TlogError>| matches!(r, Err(TlogError::BadSet(_)));
        assert!(bad(verify_set(
            log,
            &e.canonicalized_body,
            e.integrated_time + 1,
            e.log_index,
            set
        )));
        assert!(bad(verify_set(
            log,
            &e.canonicalized_body,
            e.integrated_time,
            e.log_index + 1,
            set
        )));
        let mut body = e.canonicalized_body.clone();
        body[0] = b' ';
        assert!(bad(verify_set(
            log,
            &body,
            e.integrated_time,
            e.log_index,
            set
        )));
        // Before the log key's validity window.
        assert!(matches!(
            verify_set(log, &e.canonicalized_body, 0, e.log_index, set),
            Err(TlogError::LogKeyNotValid(_))
        ));
    }

    #[test]
    fn integrated_time_past_the_log_key_validity_fails() {
        let (bundle, mut root, digest) = case("trust-root-tlog-validity-end-inclusive");
        for log in &mut root.tlogs {
            if let Some(end) = log.valid_for.end.as_mut() {
                *end -= time::Duration::seconds(1);
            }
        }
        assert!(matches!(
            verify_bundle(&bundle, &root, digest),
            Err(TlogError::LogKeyNotValid(_))
        ));
    }

    #[test]
    fn unknown_log_kind_and_content_mismatches_fail() {
        let (mut bundle, root, digest) = case("happy-path-v0.3");
        let mut other = bundle.clone();
        other.tlog_entries[0].log_id[0] ^= 1;
        assert!(matches!(
            verify_bundle(&other, &root, digest),
            Err(TlogError::UnknownLog)
        ));

        let mut other = bundle.clone();
        other.tlog_entries[0].kind = "rekord".to_owned();
        assert!(matches!(
            verify_bundle(&other, &root, digest),
            Err(TlogError::UnsupportedKind { .. })
        ));

        // A message signature bundle pointing at a DSSE entry (kind taken from the cosign v3
        // fixture, which the proofs do cover).
        let dsse = Bundle::from_json(
            &std::fs::read(sigstore_dir().join("kubewarden-controller-v1.34.0.bundle_v03.json"))
                .unwrap(),
        )
        .unwrap();
        let mut crossed = dsse.clone();
        crossed.content = bundle.content.clone();
        assert!(matches!(
            verify_bundle(&crossed, &root, digest),
            Err(TlogError::KindMismatch { .. })
        ));

        // Without the artifact digest a hashedrekord entry cannot be bound.
        let leaf = bundle.leaf().unwrap().clone();
        let r = verify_entry(
            &bundle.tlog_entries[0],
            bundle.version,
            &root,
            &Expected {
                content: &bundle.content,
                artifact_sha256: None,
                signer: Signer::Certificate(&leaf),
            },
        );
        assert!(matches!(r, Err(TlogError::NoArtifactDigest)));

        // A v0.1 bundle without a SET.
        bundle.version = Version::V01;
        bundle.tlog_entries[0].signed_entry_timestamp = None;
        assert!(matches!(
            verify_bundle(&bundle, &root, digest),
            Err(TlogError::MissingSet)
        ));
    }

    #[test]
    fn inclusion_proof_without_checkpoint_or_with_a_different_one_fails() {
        let (bundle, root, digest) = case("happy-path-v0.2");
        let mut b = bundle.clone();
        if let Some(p) = b.tlog_entries[0].inclusion_proof.as_mut() {
            p.checkpoint = None;
        }
        assert!(matches!(
            verify_bundle(&b, &root, digest),
            Err(TlogError::MissingCheckpoint)
        ));

        // The v0.3 checkpoint is validly signed but for another tree.
        let (v03, _, _) = case("happy-path-v0.3");
        let mut b = bundle.clone();
        if let (Some(p), Some(q)) = (
            b.tlog_entries[0].inclusion_proof.as_mut(),
            v03.tlog_entries[0].inclusion_proof.as_ref(),
        ) {
            p.checkpoint = q.checkpoint.clone();
        }
        assert!(matches!(
            verify_bundle(&b, &root, digest),
            Err(TlogError::CheckpointSize { .. })
        ));
    }

    #[test]
    fn entry_for_another_signer_fails() {
        let (v01, _, _) = case("happy-path-v0.1");
        let other_leaf = v01.leaf().unwrap();
        for name in [
            "happy-path-v0.3",
            "rekor2-happy-path",
            "intoto-with-custom-trust-root",
        ] {
            let (bundle, root, digest) = case(name);
            let r = verify_entry(
                &bundle.tlog_entries[0],
                bundle.version,
                &root,
                &Expected {
                    content: &bundle.content,
                    artifact_sha256: Some(digest),
                    signer: Signer::Certificate(other_leaf),
                },
            );
            assert!(matches!(r, Err(TlogError::SignerMismatch)), "{name}: {r:?}");
            // The leaf's key instead of the leaf: the entry logged a certificate.
            let spki = bundle.leaf().unwrap().spki_der().unwrap();
            let r = verify_entry(
                &bundle.tlog_entries[0],
                bundle.version,
                &root,
                &Expected {
                    content: &bundle.content,
                    artifact_sha256: Some(digest),
                    signer: Signer::PublicKey(&spki),
                },
            );
            assert!(matches!(r, Err(TlogError::SignerMismatch)), "{name}: {r:?}");
        }
    }

    #[test]
    fn managed_key_entry_binds_to_the_public_key() {
        for name in ["managed-key-happy-path", "managed-key-and-trusted-root"] {
            let (bundle, root, digest) = case(name);
            let pem = std::fs::read(
                sigstore_dir()
                    .join("bundle-verify")
                    .join(name)
                    .join("key.pub"),
            )
            .unwrap();
            let (_, spki) = der::pem::decode_vec(&pem).unwrap();
            let expected = |spki| Expected {
                content: &bundle.content,
                artifact_sha256: Some(digest),
                signer: Signer::PublicKey(spki),
            };
            let e = &bundle.tlog_entries[0];
            verify_entry(e, bundle.version, &root, &expected(&spki))
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            let mut other = spki.clone();
            let last = other.len() - 1;
            other[last] ^= 1;
            assert!(matches!(
                verify_entry(e, bundle.version, &root, &expected(&other)),
                Err(TlogError::SignerMismatch)
            ));
        }
    }

    #[test]
    fn lenient_pem_reads_one_long_line_and_rejects_junk() {
        let (label, der) =
            decode_pem(b"-----BEGIN PUBLIC KEY-----\nAAEC\nAw==\n-----END PUBLIC KEY-----\n")
                .unwrap();
        assert_eq!((label, der), ("PUBLIC KEY", vec![0, 1, 2, 3]));
        for junk in [
            &b"AAEC"[..],
            b"-----BEGIN X-----\nAAEC\n",
            b"-----BEGIN X-----\nAAEC\n-----END Y-----\n",
            b"-----BEGIN X-----\nAAEC\n-----END X-----\nmore",
            b"-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END X-----\n",
        ] {
            assert!(
                decode_pem(junk).is_err(),
                "{}",
                String::from_utf8_lossy(junk)
            );
        }
    }
}
