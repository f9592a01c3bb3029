//! `trusted_root.json` (protobuf-specs `TrustedRoot` in proto3 JSON, trust-formats.md §2.1):
//! the Rekor logs, CT logs, Fulcio CAs and timestamp authorities a verification may rely on,
//! each only inside its `validFor` window.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::cert::{Cert, CertError};

/// Production's file is ~7 KiB; anything this big is not a trusted root.
pub const MAX_TRUSTED_ROOT_BYTES: u64 = 1024 * 1024;

const MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "application/vnd.dev.sigstore.trustedroot.v0.1+json",
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
];

/// The parsed trust root.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    pub tlogs: Vec<LogInstance>,
    pub ctlogs: Vec<LogInstance>,
    pub certificate_authorities: Vec<CertificateAuthority>,
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

/// A closed time interval; `end` absent means open-ended. `start` is required: a missing
/// start is a malformed root, not "since forever" (conformance
/// `trust-root-tlog-missing-validity-start_fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub start: OffsetDateTime,
    pub end: Option<OffsetDateTime>,
}

/// A Rekor or CT log.
#[derive(Debug, Clone)]
pub struct LogInstance {
    pub base_url: String,
    /// `PKIX_ECDSA_P256_SHA_256`, `PKIX_ED25519`, `PKIX_RSA_PKCS1V15_2048_SHA256`, …
    pub key_details: String,
    /// DER SubjectPublicKeyInfo (some CT log entries carry PKCS#1 RSA keys instead; such a
    /// key fails to parse where it is used, which fails closed).
    pub public_key: Vec<u8>,
    pub valid_for: Validity,
    /// `logId.keyId`: SHA-256 of the SPKI for Rekor v1 and CT logs; the C2SP note key id for
    /// Rekor v2.
    pub log_id: Vec<u8>,
    /// `checkpointKeyId.keyId` (trusted root v0.2), when given.
    pub checkpoint_key_id: Option<Vec<u8>>,
}

/// A Fulcio CA or a timestamp authority: `chain` as listed, the last certificate being the
/// trust anchor (for TSAs the first is the signing leaf when it is not a CA).
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    pub uri: String,
    pub chain: Vec<Cert>,
    pub valid_for: Validity,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustedRootError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("trusted root larger than {MAX_TRUSTED_ROOT_BYTES} bytes")]
    TooLarge,
    #[error("trusted root is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("unsupported trusted root mediaType {0:?}")]
    MediaType(String),
    #[error("{what}: {detail}")]
    Field { what: String, detail: String },
    #[error("{what}: {source}")]
    Cert { what: String, source: CertError },
}

// === impl Validity ===

impl Validity {
    /// Both ends inclusive (protobuf-specs `TimeRange`; conformance
    /// `trust-root-tlog-validity-end-inclusive`).
    pub fn contains(&self, t: OffsetDateTime) -> bool {
        self.start <= t && self.end.is_none_or(|end| t <= end)
    }
}

// === impl TrustedRoot ===

impl TrustedRoot {
    pub fn load(path: &Path) -> Result<TrustedRoot, TrustedRootError> {
        let shown = path.display().to_string();
        let read = |source| TrustedRootError::Read {
            path: shown.clone(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read)?.len();
        if len > MAX_TRUSTED_ROOT_BYTES {
            return Err(TrustedRootError::TooLarge);
        }
        let bytes = std::fs::read(path).map_err(read)?;
        TrustedRoot::from_json(&bytes)
    }

    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, TrustedRootError> {
        if bytes.len() as u64 > MAX_TRUSTED_ROOT_BYTES {
            return Err(TrustedRootError::TooLarge);
        }
        let raw: RawRoot =
            serde_json::from_slice(bytes).map_err(|e| TrustedRootError::Json(e.to_string()))?;
        if !MEDIA_TYPES.contains(&raw.media_type.as_str()) {
            return Err(TrustedRootError::MediaType(raw.media_type));
        }
        Ok(TrustedRoot {
            tlogs: logs("tlogs", raw.tlogs)?,
            ctlogs: logs("ctlogs", raw.ctlogs)?,
            certificate_authorities: cas("certificateAuthorities", raw.certificate_authorities)?,
            timestamp_authorities: cas("timestampAuthorities", raw.timestamp_authorities)?,
        })
    }

    /// The Rekor log whose `logId` is `id`.
    pub fn tlog(&self, id: &[u8]) -> Option<&LogInstance> {
        self.tlogs.iter().find(|l| l.log_id == id)
    }

    /// The CT log whose `logId` is `id`.
    pub fn ctlog(&self, id: &[u8]) -> Option<&LogInstance> {
        self.ctlogs.iter().find(|l| l.log_id == id)
    }
}

fn logs(section: &str, raw: Vec<RawLog>) -> Result<Vec<LogInstance>, TrustedRootError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, log)| {
            let what = format!("{section}[{i}]");
            if let Some(alg) = &log.hash_algorithm {
                // Merkle trees are SHA-256 only (sigstore-go `ParseTransparencyLogs`).
                if alg != "SHA2_256" {
                    return Err(field(
                        &what,
                        format!("hashAlgorithm {alg} is not supported"),
                    ));
                }
            }
            let key = log
                .public_key
                .ok_or_else(|| field(&what, "publicKey missing".to_owned()))?;
            Ok(LogInstance {
                base_url: log.base_url.unwrap_or_default(),
                key_details: key.key_details.unwrap_or_default(),
                public_key: b64(&what, "publicKey.rawBytes", key.raw_bytes.as_deref())?,
                valid_for: validity(&what, key.valid_for)?,
                log_id: b64(
                    &what,
                    "logId.keyId",
                    log.log_id.as_ref().and_then(|l| l.key_id.as_deref()),
                )?,
                checkpoint_key_id: match log.checkpoint_key_id.and_then(|l| l.key_id) {
                    Some(k) => Some(b64(&what, "checkpointKeyId.keyId", Some(&k))?),
                    None => None,
                },
            })
        })
        .collect()
}

fn cas(section: &str, raw: Vec<RawCa>) -> Result<Vec<CertificateAuthority>, TrustedRootError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, ca)| {
            let what = format!("{section}[{i}]");
            let certs = ca.cert_chain.map(|c| c.certificates).unwrap_or_default();
            if certs.is_empty() {
                return Err(field(&what, "certChain is empty".to_owned()));
            }
            let chain = certs
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let der = b64(&what, "certChain rawBytes", c.raw_bytes.as_deref())?;
                    Cert::from_der(&der).map_err(|source| TrustedRootError::Cert {
                        what: format!("{what}.certChain[{j}]"),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(CertificateAuthority {
                uri: ca.uri.unwrap_or_default(),
                chain,
                valid_for: validity(&what, ca.valid_for)?,
            })
        })
        .collect()
}

fn validity(what: &str, raw: Option<RawRange>) -> Result<Validity, TrustedRootError> {
    let raw = raw.ok_or_else(|| field(what, "validFor missing".to_owned()))?;
    let start = raw
        .start
        .ok_or_else(|| field(what, "validFor.start missing".to_owned()))?;
    let parse = |s: &str| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| field(what, format!("validFor time {s:?}: {e}")))
    };
    let start = parse(&start)?;
    let end = raw.end.as_deref().map(parse).transpose()?;
    if let Some(end) = end {
        if end < start {
            return Err(field(what, "validFor ends before it starts".to_owned()));
        }
    }
    Ok(Validity { start, end })
}

fn b64(what: &str, name: &str, value: Option<&str>) -> Result<Vec<u8>, TrustedRootError> {
    let value = value.ok_or_else(|| field(what, format!("{name} missing")))?;
    STANDARD
        .decode(value)
        .map_err(|e| field(what, format!("{name} is not base64: {e}")))
}

fn field(what: &str, detail: String) -> TrustedRootError {
    TrustedRootError::Field {
        what: what.to_owned(),
        detail,
    }
}

// The proto3 JSON shape; unknown fields are ignored, as proto3 JSON parsers do, so newer
// roots with extra fields still load.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
    #[serde(default)]
    timestamp_authorities: Vec<RawCa>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    base_url: Option<String>,
    hash_algorithm: Option<String>,
    public_key: Option<RawKey>,
    log_id: Option<RawKeyId>,
    checkpoint_key_id: Option<RawKeyId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: Option<String>,
    key_details: Option<String>,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKeyId {
    key_id: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    uri: Option<String>,
    cert_chain: Option<RawChain>,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
pub(super) struct RawChain {
    #[serde(default)]
    pub(super) certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawBytes {
    pub(super) raw_bytes: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(rel: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/sigstore")
            .join(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn production_root_loads() {
        let root = TrustedRoot::from_json(&shared("trusted_root.production.json")).unwrap();
        assert_eq!(root.tlogs.len(), 2);
        assert_eq!(root.tlogs[0].base_url, "https://rekor.sigstore.dev");
        assert_eq!(hex::encode(&root.tlogs[0].log_id)[..8], *"c0d23d6a");
        assert!(root.tlog(&root.tlogs[1].log_id).is_some());
        assert_eq!(root.certificate_authorities.len(), 2);
        assert_eq!(root.certificate_authorities[1].chain.len(), 2);
        assert!(!root.timestamp_authorities.is_empty());
        assert!(root.ctlogs.iter().any(|l| l.valid_for.end.is_some()));
    }

    #[test]
    fn missing_validity_start_is_an_error() {
        let root =
            shared("bundle-verify/trust-root-tlog-missing-validity-start_fail/trusted_root.json");
        let err = TrustedRoot::from_json(&root).unwrap_err();
        assert!(err.to_string().contains("validFor.start"), "{err}");
    }

    #[test]
    fn validity_is_inclusive() {
        let t = |s| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        let v = Validity {
            start: t("2021-01-01T00:00:00Z"),
            end: Some(t("2022-01-01T00:00:00Z")),
        };
        assert!(v.contains(t("2021-01-01T00:00:00Z")));
        assert!(v.contains(t("2022-01-01T00:00:00Z")));
        assert!(!v.contains(t("2022-01-01T00:00:01Z")));
        assert!(!v.contains(t("2020-12-31T23:59:59Z")));
    }

    #[test]
    fn bad_input_is_rejected() {
        assert!(TrustedRoot::from_json(b"{").is_err());
        assert!(TrustedRoot::from_json(br#"{"mediaType":"x"}"#).is_err());
    }
}
