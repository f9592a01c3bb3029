//! Finding cosign v3 signatures stored as Sigstore bundles: OCI referrers of the image digest
//! whose artifact type is a Sigstore bundle, read through the referrers API or, where the
//! registry has none (404), through the referrers fallback tag `sha256-<hex>`
//! (trust-formats.md §2.9).
//!
//! Only the container is checked here: the referrer manifest is the bytes its descriptor
//! names, it refers to this image (`subject`), it has exactly one bundle layer within the
//! size cap, and that blob parses as a bundle of version 0.3 or later. What the bundle proves
//! is `sigstore::verify`'s job. The `dev.sigstore.bundle.predicateType` annotation is unsigned,
//! so it only orders the work (likely signatures first), never decides anything.

use bytes::Bytes;
use serde::Deserialize;

use super::sig_tag::{FetchError, Store};
use crate::registry::Digest;
use crate::sigstore::bundle::{Bundle, BundleError, Version, MAX_BUNDLE_BYTES};
use crate::sigstore::intoto::COSIGN_SIGN_PREDICATE;

/// What cosign v3 asks the referrers API for.
pub const BUNDLE_ARTIFACT_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Any Sigstore bundle media type (cosign `pkg/oci/remote/signatures.go` `Bundle`).
const BUNDLE_MEDIA_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
const PREDICATE_HINT: &str = "dev.sigstore.bundle.predicateType";

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A referrers index lists one descriptor per attached artifact (~300 bytes each).
pub const MAX_INDEX_BYTES: usize = 1024 * 1024;
/// Descriptors read from one referrers index; more is an error, not a silent cut.
pub const MAX_DESCRIPTORS: usize = 256;
/// Bundles fetched and verified per image: signatures first (by the unsigned hint), then the
/// rest. Images with many attestations are common, so this is a bound on work, not on what
/// an image may carry.
pub const MAX_BUNDLES: usize = 16;
/// A bundle's referrer manifest is ~600 bytes.
const MAX_REFERRER_MANIFEST_BYTES: usize = 64 * 1024;

/// Why the referrers of an image could not be listed; nothing found this way counts.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot list referrers: {0}")]
    Fetch(#[from] FetchError),
    #[error("referrers index is not readable: {0}")]
    Malformed(String),
    #[error("referrers index lists {0} artifacts, more than the {MAX_DESCRIPTORS} read")]
    TooMany(usize),
}

/// Why one referrer is not a usable bundle.
#[derive(Debug, thiserror::Error)]
pub enum ReferrerError {
    #[error("cannot read referrer {digest}: {source}")]
    Fetch { digest: String, source: FetchError },
    #[error("referrer digest {0:?} is not a digest")]
    BadDigest(String),
    #[error("referrer {0} is not the bytes its descriptor names")]
    DigestMismatch(Digest),
    #[error("referrer {digest} is not a bundle manifest: {detail}")]
    Malformed { digest: Digest, detail: String },
    #[error("referrer {0} is about another image")]
    Subject(Digest),
    #[error("bundle of {size} bytes is over the {MAX_BUNDLE_BYTES}-byte limit")]
    TooLarge { size: u64 },
    #[error("bundle blob is not the bytes its descriptor names")]
    BlobMismatch,
    #[error("bundle: {0}")]
    Bundle(#[from] BundleError),
    #[error("bundle version is older than 0.3")]
    OldVersion,
}

/// The bundles attached to `digest`, each parsed or with the reason it could not be; an empty
/// list when the image has none. `examined_of` is how many bundle referrers there were.
pub struct Found {
    pub bundles: Vec<Result<Bundle, ReferrerError>>,
    pub total: usize,
}

/// The referrers fallback tag for `digest` (distribution-spec "Referrers Tag Schema"):
/// `<alg>-<hex>`, no suffix.
pub fn fallback_tag(digest: &Digest) -> String {
    digest.to_string().replacen(':', "-", 1)
}

/// Lists and reads the Sigstore bundles attached to `digest`. Those hinting at a predicate
/// type that counts as a signature (cosign's sign predicate or one of `accepted`) come first.
pub async fn find(
    store: &impl Store,
    digest: &Digest,
    accepted: &[String],
) -> Result<Found, DiscoveryError> {
    let index = match store
        .referrers(digest, BUNDLE_ARTIFACT_TYPE, MAX_INDEX_BYTES)
        .await?
    {
        Some(bytes) => Some(bytes),
        // No referrers API: cosign then writes the index under the fallback tag.
        None => {
            store
                .manifest(&fallback_tag(digest), OCI_INDEX, MAX_INDEX_BYTES)
                .await?
        }
    };
    let Some(index) = index else {
        return Ok(Found {
            bundles: Vec::new(),
            total: 0,
        });
    };
    let raw: RawIndex =
        serde_json::from_slice(&index).map_err(|e| DiscoveryError::Malformed(e.to_string()))?;
    // Some registries answer a missing fallback tag with the image itself (or another
    // manifest): that is no referrers index, so there are no bundles.
    if raw.media_type.as_deref().is_some_and(|m| m != OCI_INDEX) || raw.manifests.is_none() {
        return Ok(Found {
            bundles: Vec::new(),
            total: 0,
        });
    }
    let manifests = raw.manifests.unwrap_or_default();
    if manifests.len() > MAX_DESCRIPTORS {
        return Err(DiscoveryError::TooMany(manifests.len()));
    }
    // The API may not filter (no `OCI-Filters-Applied`), and the fallback index never does.
    let mut candidates: Vec<RawDescriptor> = manifests
        .into_iter()
        .filter(|d| {
            d.artifact_type
                .as_deref()
                .is_some_and(|t| t.starts_with(BUNDLE_MEDIA_PREFIX))
        })
        .collect();
    let total = candidates.len();
    candidates.sort_by_key(|d| {
        let hint = d
            .annotations
            .as_ref()
            .and_then(|a| a.get(PREDICATE_HINT))
            .map(String::as_str);
        !hint.is_some_and(|h| h == COSIGN_SIGN_PREDICATE || accepted.iter().any(|t| t == h))
    });
    let mut bundles = Vec::new();
    for d in candidates.iter().take(MAX_BUNDLES) {
        bundles.push(read_bundle(store, digest, d).await);
    }
    Ok(Found { bundles, total })
}

async fn read_bundle(
    store: &impl Store,
    image: &Digest,
    d: &RawDescriptor,
) -> Result<Bundle, ReferrerError> {
    let digest: Digest = d
        .digest
        .parse()
        .map_err(|_| ReferrerError::BadDigest(d.digest.clone()))?;
    let bytes = store
        .manifest(
            &digest.to_string(),
            OCI_MANIFEST,
            MAX_REFERRER_MANIFEST_BYTES,
        )
        .await
        .map_err(|source| ReferrerError::Fetch {
            digest: digest.to_string(),
            source,
        })?
        .ok_or_else(|| ReferrerError::Fetch {
            digest: digest.to_string(),
            source: FetchError::Status {
                what: format!("manifest {digest}"),
                status: http::StatusCode::NOT_FOUND,
            },
        })?;
    if digest.recompute(&bytes) != digest {
        return Err(ReferrerError::DigestMismatch(digest));
    }
    let malformed = |detail: String| ReferrerError::Malformed {
        digest: digest.clone(),
        detail,
    };
    let m: RawManifest = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    if m.subject.as_ref().map(|s| s.digest.as_str()) != Some(image.to_string().as_str()) {
        return Err(ReferrerError::Subject(digest));
    }
    let [layer] = m.layers.as_slice() else {
        return Err(malformed(format!("{} layers, expected 1", m.layers.len())));
    };
    if !layer.media_type.starts_with(BUNDLE_MEDIA_PREFIX) {
        return Err(malformed(format!("layer of type {}", layer.media_type)));
    }
    if layer.size > MAX_BUNDLE_BYTES as u64 {
        return Err(ReferrerError::TooLarge { size: layer.size });
    }
    let blob_digest: Digest = layer
        .digest
        .parse()
        .map_err(|_| malformed(format!("layer digest {:?}", layer.digest)))?;
    let blob: Bytes = store
        .blob(&blob_digest, MAX_BUNDLE_BYTES)
        .await
        .map_err(|source| ReferrerError::Fetch {
            digest: blob_digest.to_string(),
            source,
        })?;
    if blob_digest.recompute(&blob) != blob_digest || blob.len() as u64 != layer.size {
        return Err(ReferrerError::BlobMismatch);
    }
    let bundle = Bundle::from_json(&blob)?;
    // cosign only reads v0.3+ bundles from referrers (`b.MinVersion("v0.3")`).
    if bundle.version < Version::V03 {
        return Err(ReferrerError::OldVersion);
    }
    Ok(bundle)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIndex {
    media_type: Option<String>,
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    digest: String,
    artifact_type: Option<String>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    layers: Vec<RawLayer>,
    subject: Option<RawSubject>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLayer {
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct RawSubject {
    digest: String,
}
