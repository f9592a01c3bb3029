//! The Sigstore bundle (protobuf-specs `Bundle`, v0.1–v0.3, trust-formats.md §2.8) parsed
//! into typed evidence. Parsing checks shape only (base64, required fields, counts, sizes);
//! what the evidence proves is [`super::verify`]'s job.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;

use super::cert::{Cert, CertError};
use super::trusted_root::{RawBytes, RawChain};

/// Bundles are a few KiB (a leaf, one or two log entries, a timestamp); cosign v3 writes
/// ~5 KiB. The cap bounds what an upstream can make pullgate parse.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;
/// sigstore-go `internal/limits`: at most 32 tlog entries and 32 timestamps.
pub const MAX_TLOG_ENTRIES: usize = 32;
pub const MAX_TIMESTAMPS: usize = 32;
pub const MAX_CHAIN_CERTS: usize = 8;
pub const MAX_PROOF_HASHES: usize = 64;

/// The bundle version, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V01,
    V02,
    V03,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub version: Version,
    pub material: Material,
    pub tlog_entries: Vec<TlogEntry>,
    /// DER `TimeStampResp` values (`rfc3161Timestamps[].signedTimestamp`).
    pub timestamps: Vec<Vec<u8>>,
    pub content: Content,
}

/// What the signature is verified with.
#[derive(Debug, Clone)]
pub enum Material {
    /// v0.3 `certificate`: the leaf alone.
    Certificate(Cert),
    /// v0.1/v0.2 `x509CertificateChain`: leaf first; anything after it is ignored in favour of
    /// the trusted root's chain (a bundle must not carry its own trust anchor).
    Chain(Vec<Cert>),
    /// A managed key, identified out of band; `hint` is unauthenticated.
    PublicKey { hint: Option<String> },
}

#[derive(Debug, Clone)]
pub enum Content {
    Message(MessageSignature),
    Dsse(Envelope),
}

#[derive(Debug, Clone)]
pub struct MessageSignature {
    /// `(algorithm, digest)` as the bundle states it; an unauthenticated hint checked for
    /// consistency with the artifact.
    pub digest: Option<(String, Vec<u8>)>,
    pub signature: Vec<u8>,
}

/// A DSSE envelope with exactly one signature (the bundle spec requires one).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub payload: Vec<u8>,
    pub payload_type: String,
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct TlogEntry {
    /// The global log index (the SET covers it).
    pub log_index: u64,
    pub log_id: Vec<u8>,
    pub kind: String,
    pub kind_version: String,
    /// Seconds since the epoch; 0 when absent (Rekor v2 has no integrated time).
    pub integrated_time: i64,
    pub signed_entry_timestamp: Option<Vec<u8>>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// The index inside the tree the proof is for (differs from the global index).
    pub log_index: u64,
    pub root_hash: Vec<u8>,
    pub tree_size: u64,
    pub hashes: Vec<Vec<u8>>,
    /// The signed note text, if present.
    pub checkpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    #[error("bundle is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("unsupported bundle mediaType {0:?}")]
    MediaType(String),
    #[error("bundle {0}")]
    Invalid(String),
    #[error("bundle certificate: {0}")]
    Cert(#[from] CertError),
}

// === impl Version ===

impl Version {
    fn from_media_type(m: &str) -> Option<Version> {
        match m {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => Some(Version::V01),
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => Some(Version::V02),
            "application/vnd.dev.sigstore.bundle+json;version=0.3"
            | "application/vnd.dev.sigstore.bundle.v0.3+json" => Some(Version::V03),
            _ => None,
        }
    }
}

// === impl Bundle ===

impl Bundle {
    pub fn from_json(bytes: &[u8]) -> Result<Bundle, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Json(e.to_string()))?;
        let version = Version::from_media_type(&raw.media_type)
            .ok_or_else(|| BundleError::MediaType(raw.media_type.clone()))?;
        let vm = raw
            .verification_material
            .ok_or_else(|| invalid("has no verificationMaterial"))?;

        let material = match (vm.certificate, vm.x509_certificate_chain, vm.public_key) {
            (Some(c), None, None) => Material::Certificate(Cert::from_der(&b64(
                "certificate.rawBytes",
                c.raw_bytes.as_deref(),
            )?)?),
            (None, Some(chain), None) => {
                if chain.certificates.is_empty() {
                    return Err(invalid("x509CertificateChain is empty"));
                }
                if chain.certificates.len() > MAX_CHAIN_CERTS {
                    return Err(invalid("x509CertificateChain has too many certificates"));
                }
                let certs = chain
                    .certificates
                    .iter()
                    .map(|c| {
                        Cert::from_der(&b64("certificate rawBytes", c.raw_bytes.as_deref())?)
                            .map_err(BundleError::from)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Material::Chain(certs)
            }
            (None, None, Some(k)) => Material::PublicKey { hint: k.hint },
            _ => {
                return Err(invalid(
                    "verificationMaterial must have exactly one of certificate, \
                     x509CertificateChain, publicKey",
                ))
            }
        };

        if vm.tlog_entries.len() > MAX_TLOG_ENTRIES {
            return Err(invalid("has too many tlogEntries"));
        }
        let tlog_entries = vm
            .tlog_entries
            .into_iter()
            .map(tlog_entry)
            .collect::<Result<Vec<_>, _>>()?;

        let raw_ts = vm
            .timestamp_verification_data
            .map(|t| t.rfc3161_timestamps)
            .unwrap_or_default();
        if raw_ts.len() > MAX_TIMESTAMPS {
            return Err(invalid("has too many rfc3161Timestamps"));
        }
        let timestamps = raw_ts
            .iter()
            .map(|t| b64("signedTimestamp", t.signed_timestamp.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;

        let content = match (raw.message_signature, raw.dsse_envelope) {
            (Some(m), None) => Content::Message(MessageSignature {
                digest: match m.message_digest {
                    Some(d) => Some((
                        d.algorithm.unwrap_or_default(),
                        b64("messageDigest.digest", d.digest.as_deref())?,
                    )),
                    None => None,
                },
                signature: b64("messageSignature.signature", m.signature.as_deref())?,
            }),
            (None, Some(e)) => {
                if e.signatures.len() != 1 {
                    return Err(invalid("dsseEnvelope must have exactly one signature"));
                }
                Content::Dsse(Envelope {
                    payload: b64("dsseEnvelope.payload", e.payload.as_deref())?,
                    payload_type: e.payload_type.unwrap_or_default(),
                    signature: b64("dsseEnvelope signature", e.signatures[0].sig.as_deref())?,
                })
            }
            _ => {
                return Err(invalid(
                    "must have exactly one of messageSignature and dsseEnvelope",
                ))
            }
        };

        Ok(Bundle {
            version,
            material,
            tlog_entries,
            timestamps,
            content,
        })
    }

    /// The signing certificate, for certificate-based bundles.
    pub fn leaf(&self) -> Option<&Cert> {
        match &self.material {
            Material::Certificate(c) => Some(c),
            Material::Chain(chain) => chain.first(),
            Material::PublicKey { .. } => None,
        }
    }

    /// The raw signature bytes (the message signature, or the one DSSE signature): what
    /// RFC 3161 timestamps and log entries refer to.
    pub fn signature(&self) -> &[u8] {
        match &self.content {
            Content::Message(m) => &m.signature,
            Content::Dsse(e) => &e.signature,
        }
    }
}

// === impl Envelope ===

impl Envelope {
    /// DSSE pre-authentication encoding: what the signature is over.
    pub fn pae(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + self.payload_type.len() + 32);
        out.extend_from_slice(b"DSSEv1 ");
        out.extend_from_slice(self.payload_type.len().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.payload_type.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.payload.len().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.payload);
        out
    }
}

fn tlog_entry(raw: RawTlogEntry) -> Result<TlogEntry, BundleError> {
    let kv = raw
        .kind_version
        .ok_or_else(|| invalid("tlog entry has no kindVersion"))?;
    let log_index = non_negative("tlog entry logIndex", raw.log_index.as_deref())?;
    let integrated_time =
        match raw.integrated_time.as_deref() {
            None => 0,
            Some(s) => s.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
                invalid("tlog entry integratedTime is not a non-negative integer")
            })?,
        };
    let inclusion_proof = match raw.inclusion_proof {
        None => None,
        Some(p) => {
            if p.hashes.len() > MAX_PROOF_HASHES {
                return Err(invalid("inclusion proof has too many hashes"));
            }
            Some(InclusionProof {
                log_index: non_negative("inclusionProof.logIndex", p.log_index.as_deref())?,
                root_hash: b64("inclusionProof.rootHash", p.root_hash.as_deref())?,
                tree_size: non_negative("inclusionProof.treeSize", p.tree_size.as_deref())?,
                hashes: p
                    .hashes
                    .iter()
                    .map(|h| b64("inclusionProof hash", Some(h)))
                    .collect::<Result<Vec<_>, _>>()?,
                checkpoint: p.checkpoint.and_then(|c| c.envelope),
            })
        }
    };
    Ok(TlogEntry {
        log_index,
        log_id: b64(
            "tlog entry logId.keyId",
            raw.log_id.as_ref().and_then(|l| l.key_id.as_deref()),
        )?,
        kind: kv.kind.unwrap_or_default(),
        kind_version: kv.version.unwrap_or_default(),
        integrated_time,
        signed_entry_timestamp: match raw.inclusion_promise.and_then(|p| p.signed_entry_timestamp) {
            Some(s) => Some(b64("signedEntryTimestamp", Some(&s))?),
            None => None,
        },
        inclusion_proof,
        canonicalized_body: b64("canonicalizedBody", raw.canonicalized_body.as_deref())?,
    })
}

/// proto3 JSON writes int64 as a string (numbers are accepted too, via the untagged raw type).
fn non_negative(what: &str, value: Option<&str>) -> Result<u64, BundleError> {
    let value = value.unwrap_or("0");
    value
        .parse::<i64>()
        .ok()
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| {
            BundleError::Invalid(format!("{what} {value:?} is not a non-negative integer"))
        })
}

fn b64(what: &str, value: Option<&str>) -> Result<Vec<u8>, BundleError> {
    let value = value.ok_or_else(|| BundleError::Invalid(format!("{what} missing")))?;
    // Go's decoder (which wrote and reads most bundles) skips CR and LF, so bundles with
    // line-wrapped base64 (`base64` without -w0) exist; nothing else is tolerated.
    let value: String = value.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    STANDARD
        .decode(value)
        .map_err(|e| BundleError::Invalid(format!("{what} is not base64: {e}")))
}

fn invalid(what: &str) -> BundleError {
    BundleError::Invalid(what.to_owned())
}

// The proto3 JSON shape. Unknown fields are ignored (proto3 JSON), so later minor versions
// still parse; everything that matters is checked above.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: String,
    verification_material: Option<RawMaterial>,
    message_signature: Option<RawMessageSignature>,
    dsse_envelope: Option<RawEnvelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    certificate: Option<RawBytes>,
    x509_certificate_chain: Option<RawChain>,
    public_key: Option<RawPublicKey>,
    #[serde(default)]
    tlog_entries: Vec<RawTlogEntry>,
    timestamp_verification_data: Option<RawTimestampData>,
}

#[derive(Deserialize)]
struct RawPublicKey {
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTimestampData {
    #[serde(default)]
    rfc3161_timestamps: Vec<RawTimestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTimestamp {
    signed_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTlogEntry {
    #[serde(default, deserialize_with = "int64")]
    log_index: Option<String>,
    log_id: Option<RawKeyId>,
    kind_version: Option<RawKindVersion>,
    #[serde(default, deserialize_with = "int64")]
    integrated_time: Option<String>,
    inclusion_promise: Option<RawPromise>,
    inclusion_proof: Option<RawProof>,
    canonicalized_body: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKeyId {
    key_id: Option<String>,
}

#[derive(Deserialize)]
struct RawKindVersion {
    kind: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    signed_entry_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProof {
    #[serde(default, deserialize_with = "int64")]
    log_index: Option<String>,
    root_hash: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    tree_size: Option<String>,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    envelope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessageSignature {
    message_digest: Option<RawDigest>,
    signature: Option<String>,
}

#[derive(Deserialize)]
struct RawDigest {
    algorithm: Option<String>,
    digest: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    payload: Option<String>,
    payload_type: Option<String>,
    #[serde(default)]
    signatures: Vec<RawDsseSignature>,
}

#[derive(Deserialize)]
struct RawDsseSignature {
    sig: Option<String>,
}

/// proto3 JSON int64: a decimal string, though parsers accept a JSON number too.
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        S(String),
        N(i64),
    }
    Ok(Option::<Int>::deserialize(d)?.map(|i| match i {
        Int::S(s) => s,
        Int::N(n) => n.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn case(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/sigstore")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn every_happy_bundle_parses() {
        for name in [
            "happy-path-v0.1",
            "happy-path-v0.2",
            "happy-path-v0.3",
            "rekor2-happy-path",
        ] {
            let b = Bundle::from_json(&case(&format!("bundle-verify/{name}/bundle.sigstore.json")))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(b.leaf().is_some(), "{name}");
            assert_eq!(b.tlog_entries.len(), 1, "{name}");
        }
        let b = Bundle::from_json(&case("kubewarden-controller-v1.34.0.bundle_v03.json")).unwrap();
        assert_eq!(b.version, Version::V03);
        assert!(matches!(b.content, Content::Dsse(_)));
        assert!(b.tlog_entries[0].inclusion_proof.is_some());
    }

    #[test]
    fn malformed_bundles_are_parse_errors() {
        for name in [
            "bundle-malformed-json_fail",
            "bundle-invalid-base64-signature_fail",
            "bundle-negative-log-index_fail",
            "bundle-empty-certificate-chain_fail",
        ] {
            let r = Bundle::from_json(&case(&format!("bundle-verify/{name}/bundle.sigstore.json")));
            assert!(r.is_err(), "{name} parsed");
        }
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        let e = Envelope {
            payload: b"hello world".to_vec(),
            payload_type: "http://example.com/HelloWorld".to_owned(),
            signature: vec![],
        };
        assert_eq!(
            e.pae(),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
