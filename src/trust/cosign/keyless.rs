//! The `cosign-keyless` trust source: cosign signatures made with a Fulcio certificate issued
//! to one of the configured identities, chaining to the configured Sigstore trusted root and
//! proven by the transparency log (trust-formats.md §2).
//!
//! Evidence is looked for in both places cosign writes it, concurrently (`search`): the legacy
//! `sha256-<hex>.sig` tag (each layer: payload, signature, certificate, Rekor bundle and
//! RFC 3161 annotations), and Sigstore bundles attached as referrers (or under the referrers
//! fallback tag). A `.sig` layer is turned into the equivalent v0.1 bundle — certificate, one
//! log entry proven by its signed entry timestamp, optional timestamp, message signature over
//! the payload — so both paths run the same verifier in `sigstore::verify`.
//!
//! A bundle signature must be an in-toto statement about this manifest digest with cosign's
//! sign predicate: an attestation by the same identity (SLSA provenance, an SBOM) is not a
//! signature of the image, unless the rule lists its predicate type.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;

use super::search::{self, Checker, Place};
use super::sig_tag::{self, RegistryStore, SignatureLayer, Store};
use super::simple_signing;
use crate::clock::SharedClock;
use crate::config::{KeylessIdentity, SubjectMatch, TrustKind};
use crate::registry::Digest;
use crate::sigstore::bundle::{Bundle, Content, Material, MessageSignature, TlogEntry, Version};
use crate::sigstore::cert::Cert;
use crate::sigstore::fulcio::{IdentityPolicy, Matcher};
use crate::sigstore::trusted_root::{TrustedRoot, TrustedRootError};
use crate::sigstore::verify::{self, Artifact, Policy, Verification};
use crate::trust::{Failure, Subject, Verified};

/// cosign's annotations on a keyless `.sig` layer (trust-formats.md §1.3).
const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
const REKOR_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
const TIMESTAMP_ANNOTATION: &str = "dev.sigstore.cosign/rfc3161timestamp";

/// One configured `cosign-keyless` source.
pub struct CosignKeylessSource {
    name: String,
    root: TrustedRoot,
    root_path: PathBuf,
    identities: Vec<IdentityPolicy>,
    clock: SharedClock,
}

#[derive(Debug, thiserror::Error)]
pub enum KeylessSetupError {
    #[error("trusted root {path}: {source}")]
    Root {
        path: String,
        source: TrustedRootError,
    },
    #[error("trusted root {0} has no certificate authority or no transparency log")]
    EmptyRoot(String),
    #[error("identity subject_regex {pattern:?}: {source}")]
    Regex {
        pattern: String,
        source: regex::Error,
    },
}

/// Why one `.sig` layer does not vouch for the manifest.
#[derive(Debug, thiserror::Error)]
pub enum LayerFailure {
    #[error(transparent)]
    Layer(#[from] sig_tag::LayerError),
    #[error("no certificate (keyed signature?)")]
    NoCertificate,
    #[error("certificate annotation: {0}")]
    Certificate(String),
    #[error("no transparency log bundle annotation")]
    NoRekorBundle,
    #[error("transparency log bundle annotation: {0}")]
    RekorBundle(String),
    #[error("timestamp annotation: {0}")]
    Timestamp(String),
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    #[error(transparent)]
    Payload(#[from] simple_signing::PayloadError),
}

// === impl CosignKeylessSource ===

impl CosignKeylessSource {
    pub fn new(
        name: &str,
        trusted_root: &Path,
        identities: &[KeylessIdentity],
        clock: SharedClock,
    ) -> Result<CosignKeylessSource, KeylessSetupError> {
        let shown = trusted_root.display().to_string();
        let root = TrustedRoot::load(trusted_root).map_err(|source| KeylessSetupError::Root {
            path: shown.clone(),
            source,
        })?;
        if root.certificate_authorities.is_empty() || root.tlogs.is_empty() {
            return Err(KeylessSetupError::EmptyRoot(shown));
        }
        let identities = identities
            .iter()
            .map(|id| {
                let subject = match &id.subject {
                    SubjectMatch::Exact(s) => Matcher::exact(s),
                    SubjectMatch::Regex(r) => {
                        Matcher::regex(r).map_err(|source| KeylessSetupError::Regex {
                            pattern: r.clone(),
                            source,
                        })?
                    }
                };
                Ok(IdentityPolicy {
                    issuer: Matcher::exact(&id.issuer),
                    subject,
                })
            })
            .collect::<Result<Vec<_>, KeylessSetupError>>()?;
        Ok(CosignKeylessSource {
            name: name.to_owned(),
            root,
            root_path: trusted_root.to_path_buf(),
            identities,
            clock,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line for `check-config`.
    pub fn status(&self) -> String {
        let ids: Vec<String> = self.identities.iter().map(|i| i.to_string()).collect();
        format!(
            "cosign keyless signatures (.sig tag, Sigstore bundles) chaining to {} \
             ({} CAs, {} logs, {} CT logs, {} TSAs) by {}",
            self.root_path.display(),
            self.root.certificate_authorities.len(),
            self.root.tlogs.len(),
            self.root.ctlogs.len(),
            self.root.timestamp_authorities.len(),
            ids.join("; ")
        )
    }

    /// Verifies `s` with the signatures in its signature repository, fetched through that
    /// repository's upstream.
    pub async fn verify(&self, s: &Subject<'_>) -> Result<Verified, Failure> {
        self.verify_from(
            &RegistryStore::new(s.signatures),
            s.digest,
            s.predicate_types,
        )
        .await
        .map_err(|why| Failure::new(&self.name, search::located(why, s.elsewhere())))
        .map(|(v, place)| self.verified(&v, place, s.elsewhere()))
    }

    async fn verify_from(
        &self,
        store: &(impl Store + Sync),
        digest: &Digest,
        accepted: &[String],
    ) -> Result<(Verification, Place), String> {
        search::search(self, store, digest, accepted).await
    }

    fn verified(&self, v: &Verification, place: Place, elsewhere: Option<&str>) -> Verified {
        let place = match place {
            Place::SigTag => ".sig",
            Place::Bundle => "bundle",
        };
        let note = match elsewhere {
            Some(repo) => format!("keyless {place} in {repo}"),
            None => format!("keyless {place}"),
        };
        Verified::new(
            &self.name,
            TrustKind::CosignKeyless,
            &v.signer.to_string(),
            Some(note),
        )
    }
}

impl Checker for CosignKeylessSource {
    type Proof = Verification;
    type LayerError = LayerFailure;

    /// A legacy `.sig` layer, as the v0.1 bundle it is equivalent to, then its payload.
    async fn check_layer<S: Store + Sync>(
        &self,
        store: &S,
        layer: &SignatureLayer,
        digest: &Digest,
    ) -> Result<Verification, LayerFailure> {
        let signature = layer.signature()?;
        let bundle = layer_bundle(layer, signature)?;
        let payload = layer.payload(store).await?;
        let v = verify::verify(
            &bundle,
            Artifact::Bytes(&payload),
            Policy::Identities(&self.identities),
            &self.root,
            self.clock.now(),
        )?;
        // Only once the signature and identity hold is the payload read as a claim.
        simple_signing::check(&payload, digest)?;
        Ok(v)
    }

    /// A bundle from the referrers: a signature over this digest by a trusted identity.
    fn check_bundle(
        &self,
        bundle: &Bundle,
        digest: &Digest,
        accepted: &[String],
    ) -> Result<Verification, String> {
        let sha = digest
            .sha256_bytes()
            .ok_or_else(|| "only sha256 manifests can be checked".to_owned())?;
        let v = verify::verify(
            bundle,
            Artifact::Sha256(sha),
            Policy::Identities(&self.identities),
            &self.root,
            self.clock.now(),
        )
        .map_err(|e| e.to_string())?;
        search::accepted_statement(v.statement.as_ref(), accepted)?;
        Ok(v)
    }
}

/// The bundle equivalent of a keyless `.sig` layer's annotations.
fn layer_bundle(layer: &SignatureLayer, signature: Vec<u8>) -> Result<Bundle, LayerFailure> {
    let pem = layer
        .annotations
        .get(CERTIFICATE_ANNOTATION)
        .ok_or(LayerFailure::NoCertificate)?;
    let leaf = Cert::from_pem_chain(pem.as_bytes())
        .map_err(|e| LayerFailure::Certificate(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| LayerFailure::Certificate("no PEM certificate".to_owned()))?;
    // The `…/chain` annotation is not read: intermediates and the anchor come from the
    // trusted root only.
    let rekor = layer
        .annotations
        .get(REKOR_BUNDLE_ANNOTATION)
        .ok_or(LayerFailure::NoRekorBundle)?;
    let entry = rekor_entry(rekor).map_err(LayerFailure::RekorBundle)?;
    let timestamps = match layer.annotations.get(TIMESTAMP_ANNOTATION) {
        Some(t) => vec![timestamp(t).map_err(LayerFailure::Timestamp)?],
        None => Vec::new(),
    };
    Ok(Bundle {
        // v0.1 semantics: the signed entry timestamp proves the entry; no inclusion proof.
        version: Version::V01,
        material: Material::Certificate(leaf),
        tlog_entries: vec![entry],
        timestamps,
        content: Content::Message(MessageSignature {
            digest: None,
            signature,
        }),
    })
}

/// cosign's `RekorBundle` (Go field names, trust-formats.md §1.7) as a bundle log entry.
fn rekor_entry(text: &str) -> Result<TlogEntry, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct RekorBundle {
        signed_entry_timestamp: String,
        payload: RekorPayload,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RekorPayload {
        body: String,
        integrated_time: i64,
        log_index: i64,
        #[serde(rename = "logID")]
        log_id: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        api_version: String,
        kind: String,
    }
    if text.len() > crate::sigstore::bundle::MAX_BUNDLE_BYTES {
        return Err("too large".to_owned());
    }
    let b: RekorBundle = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let body = STANDARD
        .decode(&b.payload.body)
        .map_err(|_| "body is not base64".to_owned())?;
    let kind: Body = serde_json::from_slice(&body).map_err(|e| format!("body: {e}"))?;
    Ok(TlogEntry {
        log_index: u64::try_from(b.payload.log_index).map_err(|_| "negative logIndex")?,
        log_id: hex::decode(&b.payload.log_id).map_err(|_| "logID is not hex".to_owned())?,
        kind: kind.kind,
        kind_version: kind.api_version,
        integrated_time: b.payload.integrated_time,
        signed_entry_timestamp: Some(
            STANDARD
                .decode(&b.signed_entry_timestamp)
                .map_err(|_| "SignedEntryTimestamp is not base64".to_owned())?,
        ),
        inclusion_proof: None,
        canonicalized_body: body,
    })
}

/// cosign's timestamp annotation: `{"SignedRFC3161Timestamp": "<base64 DER>"}`.
fn timestamp(text: &str) -> Result<Vec<u8>, String> {
    #[derive(Deserialize)]
    struct Annotation {
        #[serde(rename = "SignedRFC3161Timestamp")]
        signed: String,
    }
    let a: Annotation = serde_json::from_str(text).map_err(|e| e.to_string())?;
    STANDARD
        .decode(&a.signed)
        .map_err(|_| "not base64".to_owned())
}
