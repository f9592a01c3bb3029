//! Reading cosign's legacy signature tag: the manifest at `sha256-<hex>.sig` in the signature
//! repository (the image's own, or the rule's `signature_repository`: the [`Target`] a
//! [`RegistryStore`] is given) and, one layer at a time, the payload blobs it points to
//! (trust-formats.md §1.1, §1.2, §1.8).
//!
//! Each layer of the signature manifest is one signature: the payload blob plus annotations.
//! This module checks only the container — sizes, counts, media types, that each blob is the
//! bytes its descriptor names — and hands the annotations on whole, so a keyless verifier can
//! read `dev.sigstore.cosign/certificate`, `…/chain` and `…/bundle` from the same layers. What
//! the signature and payload mean is for `keys` and `simple_signing`. OCI referrers and
//! Sigstore bundles (§2.9) are read by `bundles`, through the same [`Store`].
//!
//! Every count and size read from the registry is capped, and every failure is an error: a
//! registry that misbehaves never makes an image look signed.

use std::collections::BTreeMap;
use std::future::Future;

use base64::Engine as _;
use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::simple_signing;
use crate::registry::{read_capped, Digest, Target, UpstreamError, UpstreamRequest};

/// The annotation holding the base64 signature over the payload blob (§1.3).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Signature manifests are a few hundred bytes per signature (keyless ones carry a certificate
/// chain and a Rekor bundle, a few KiB).
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Each layer costs a blob fetch; cosign stops at 1000 (`pkg/oci/remote/signatures.go`), but a
/// proxy answering a pull cannot wait for that many. More layers than this is an error, not a
/// silent truncation.
pub const MAX_LAYERS: usize = 64;
/// Payloads are ~250 bytes, more with user annotations.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;

/// cosign pushes OCI manifests, or Docker schema 2 with `--registry-referrers-mode` off and
/// some registries (§1.2); both are accepted, nothing else.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MANIFEST_ACCEPT: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Where signature manifests and payload blobs come from: the upstream registry
/// ([`RegistryStore`]), or a map in tests.
pub trait Store {
    /// The manifest at `reference` (a tag or digest), asked for with `accept`, at most
    /// `limit` bytes; `None` if the registry has no such manifest (404).
    fn manifest(
        &self,
        reference: &str,
        accept: &'static str,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Bytes>, FetchError>> + Send;

    /// The referrers index of `digest` filtered by `artifact_type`, at most `limit` bytes;
    /// `None` if the registry has no referrers API (404).
    fn referrers(
        &self,
        digest: &Digest,
        artifact_type: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Bytes>, FetchError>> + Send;

    /// The blob `digest`, at most `limit` bytes (its digest is checked by the caller).
    fn blob(
        &self,
        digest: &Digest,
        limit: usize,
    ) -> impl Future<Output = Result<Bytes, FetchError>> + Send;
}

/// Reads from the image's upstream registry with its client, credentials and timeouts.
pub struct RegistryStore<'a> {
    target: &'a Target,
}

/// A transfer that failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("registry answered {status} for {what}")]
    Status { what: String, status: StatusCode },
}

/// A signature manifest that cannot be read; no layer of it counts.
#[derive(Debug, thiserror::Error)]
pub enum SigTagError {
    #[error("cannot read signature tag {tag}: {source}")]
    Fetch { tag: String, source: FetchError },
    #[error("signature tag {tag} is not a readable image manifest: {detail}")]
    Malformed { tag: String, detail: String },
    #[error("signature tag {tag} is a {actual}, not an image manifest")]
    MediaType { tag: String, actual: String },
    #[error("signature tag {tag} has {count} layers, more than the {limit} read")]
    TooManyLayers {
        tag: String,
        count: usize,
        limit: usize,
    },
}

/// One layer that is not a usable signature.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer of type {0} is not a simple-signing signature")]
    NotSimpleSigning(String),
    #[error("no {SIGNATURE_ANNOTATION} annotation")]
    NoSignature,
    #[error("signature annotation is not base64")]
    SignatureEncoding,
    #[error("layer digest {0:?} is not a digest")]
    BadDigest(String),
    #[error("payload of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("cannot read payload {digest}: {source}")]
    Fetch { digest: Digest, source: FetchError },
    #[error("payload blob hashes to {actual}, not its layer digest {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("payload blob is {actual} bytes, not its layer size {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
}

/// The layers of a signature manifest, in order.
#[derive(Debug)]
pub struct SignatureManifest {
    pub tag: String,
    pub layers: Vec<SignatureLayer>,
}

/// One layer's descriptor: a payload blob and its annotations.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SignatureLayer {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct RawManifest {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    layers: Vec<SignatureLayer>,
}

/// The tag cosign stores signatures for `digest` under: `sha256-<hex>.sig`
/// (`pkg/oci/remote/remote.go` `normalizeWithSeparator`).
pub fn tag_for(digest: &Digest) -> String {
    format!("{}.sig", digest.to_string().replacen(':', "-", 1))
}

/// Reads the signature manifest for `digest`; `Ok(None)` when there is none (404).
pub async fn read_manifest(
    store: &impl Store,
    digest: &Digest,
) -> Result<Option<SignatureManifest>, SigTagError> {
    let tag = tag_for(digest);
    let bytes = match store
        .manifest(&tag, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES)
        .await
    {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(source) => return Err(SigTagError::Fetch { tag, source }),
    };
    let raw: RawManifest = serde_json::from_slice(&bytes).map_err(|e| SigTagError::Malformed {
        tag: tag.clone(),
        detail: e.to_string(),
    })?;
    if let Some(t) = raw.media_type {
        if t != OCI_MANIFEST && t != DOCKER_MANIFEST {
            return Err(SigTagError::MediaType { tag, actual: t });
        }
    }
    if raw.layers.len() > MAX_LAYERS {
        return Err(SigTagError::TooManyLayers {
            tag,
            count: raw.layers.len(),
            limit: MAX_LAYERS,
        });
    }
    Ok(Some(SignatureManifest {
        tag,
        layers: raw.layers,
    }))
}

// === impl SignatureLayer ===

impl SignatureLayer {
    /// The raw signature bytes from the signature annotation (standard base64, §1.3).
    pub fn signature(&self) -> Result<Vec<u8>, LayerError> {
        let text = self
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .ok_or(LayerError::NoSignature)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| LayerError::SignatureEncoding)
    }

    /// Fetches the payload blob: a simple-signing layer within the size cap, whose bytes hash
    /// to the layer digest and have the layer size (§1.4: verify the exact blob).
    pub async fn payload(&self, store: &impl Store) -> Result<Bytes, LayerError> {
        if self.media_type != simple_signing::MEDIA_TYPE {
            return Err(LayerError::NotSimpleSigning(self.media_type.clone()));
        }
        let expected: Digest = self
            .digest
            .parse()
            .map_err(|_| LayerError::BadDigest(self.digest.clone()))?;
        if self.size > MAX_PAYLOAD_BYTES {
            return Err(LayerError::TooLarge {
                size: self.size,
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let bytes = store
            .blob(&expected, MAX_PAYLOAD_BYTES as usize)
            .await
            .map_err(|source| LayerError::Fetch {
                digest: expected.clone(),
                source,
            })?;
        let actual = expected.recompute(&bytes);
        if actual != expected {
            return Err(LayerError::DigestMismatch { expected, actual });
        }
        if bytes.len() as u64 != self.size {
            return Err(LayerError::SizeMismatch {
                expected: self.size,
                actual: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}

// === impl RegistryStore ===

impl<'a> RegistryStore<'a> {
    pub fn new(target: &'a Target) -> RegistryStore<'a> {
        RegistryStore { target }
    }

    async fn get(
        &self,
        path: String,
        query: Option<String>,
        accept: Option<&'static str>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, FetchError> {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(ACCEPT, HeaderValue::from_static(a));
        }
        let req = UpstreamRequest {
            method: Method::GET,
            repository: Some(self.target.repository.as_str()),
            path,
            query,
            headers,
        };
        Ok(self.target.upstream.send(req).await?)
    }

    async fn read(
        &self,
        resp: hyper::Response<hyper::body::Incoming>,
        limit: usize,
        what: &'static str,
    ) -> Result<Bytes, FetchError> {
        let upstream = &self.target.upstream;
        Ok(read_capped(
            resp.into_body(),
            limit,
            upstream.config().idle_timeout,
            upstream.name(),
            what,
        )
        .await?)
    }
}

impl Store for RegistryStore<'_> {
    async fn manifest(
        &self,
        reference: &str,
        accept: &'static str,
        limit: usize,
    ) -> Result<Option<Bytes>, FetchError> {
        let tag = reference;
        let path = format!("{}/manifests/{reference}", self.target.repository);
        let resp = self.get(path, None, Some(accept)).await?;
        // A 404 is "no signatures" (cosign `pkg/oci/remote/signatures.go`); anything else
        // that is not a success is a failure to look, not an absence.
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(FetchError::Status {
                what: format!("manifest {tag}"),
                status: resp.status(),
            });
        }
        self.read(resp, limit, "a signature manifest")
            .await
            .map(Some)
    }

    async fn referrers(
        &self,
        digest: &Digest,
        artifact_type: &str,
        limit: usize,
    ) -> Result<Option<Bytes>, FetchError> {
        let path = format!("{}/referrers/{digest}", self.target.repository);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("artifactType", artifact_type)
            .finish();
        let resp = self
            .get(
                path,
                Some(query),
                Some("application/vnd.oci.image.index.v1+json"),
            )
            .await?;
        // 404: the registry has no referrers API (distribution 2.8), so the caller falls back
        // to the referrers tag.
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(FetchError::Status {
                what: format!("referrers of {digest}"),
                status: resp.status(),
            });
        }
        self.read(resp, limit, "a referrers index").await.map(Some)
    }

    async fn blob(&self, digest: &Digest, limit: usize) -> Result<Bytes, FetchError> {
        let path = format!("{}/blobs/{digest}", self.target.repository);
        let resp = self.get(path, None, None).await?;
        if !resp.status().is_success() {
            return Err(FetchError::Status {
                what: format!("blob {digest}"),
                status: resp.status(),
            });
        }
        self.read(resp, limit, "a signature payload").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_tags_follow_cosigns_convention() {
        let d: Digest = "sha256:948320d55ecc8c7d965fe2f481436df7244d61af4fd23dc03d1e0069b8f2fe21"
            .parse()
            .unwrap();
        assert_eq!(
            tag_for(&d),
            "sha256-948320d55ecc8c7d965fe2f481436df7244d61af4fd23dc03d1e0069b8f2fe21.sig"
        );
    }

    #[test]
    fn signature_annotations_decode_as_standard_base64() {
        let layer = |v: &str| SignatureLayer {
            media_type: simple_signing::MEDIA_TYPE.to_owned(),
            digest: String::new(),
            size: 0,
            annotations: [(SIGNATURE_ANNOTATION.to_owned(), v.to_owned())].into(),
        };
        assert_eq!(layer("AQID").signature().unwrap(), [1, 2, 3]);
        assert!(matches!(
            layer("not base64!").signature(),
            Err(LayerError::SignatureEncoding)
        ));
        let mut none = layer("AQID");
        none.annotations.clear();
        assert!(matches!(none.signature(), Err(LayerError::NoSignature)));
    }
}
