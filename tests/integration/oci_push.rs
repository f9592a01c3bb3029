//! Writing exact bytes to a real registry: blobs and manifests through the upload API with
//! curl (so a manifest's digest is the digest of exactly these bytes), test images and
//! indexes with skopeo, cosign `.sig` signature manifests, and Sigstore bundles attached the
//! way cosign v3 attaches them to a registry without the referrers API (trust-formats.md §2.9:
//! the referrer manifest by digest, then an OCI index under the fallback tag `sha256-<hex>`).
//!
//! Shared by the `cosign_key` and `cosign_keyless` tests.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::support::*;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub(crate) const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The artifact type and layer media type cosign v3 gives a bundle referrer.
pub(crate) const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The OCI empty descriptor's blob: `{}`.
pub(crate) const EMPTY_CONFIG: &[u8] = b"{}";
const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Uploads `bytes` as a blob of `repo` (POST, then PUT with the digest).
pub(crate) fn push_blob(reg: &Registry, repo: &str, bytes: &[u8], dir: &Path) {
    let file = dir.join(format!("blob-{}", sha256_hex(bytes)));
    std::fs::write(&file, bytes).unwrap();
    let head = run_ok(guarded("curl").args([
        "-sS",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &format!("{}/v2/{repo}/blobs/uploads/", reg.url),
    ]));
    let location = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Location in the upload answer:\n{head}"));
    let location = if location.starts_with('/') {
        format!("{}{location}", reg.url)
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let status = run_ok(guarded("curl").args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{location}{sep}digest={}", digest_of(bytes)),
    ]));
    assert_eq!(status, "201", "blob upload to {repo} answered {status}");
}

/// PUTs `bytes` as the manifest `repo:reference` (a tag or the bytes' own digest).
pub(crate) fn put_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
    dir: &Path,
) {
    let file = dir.join(format!("manifest-{}", sha256_hex(bytes)));
    std::fs::write(&file, bytes).unwrap();
    let out = run_ok(guarded("curl").args([
        "-sS",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        "PUT",
        "-H",
        &format!("Content-Type: {media_type}"),
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{}/v2/{repo}/manifests/{reference}", reg.url),
    ]));
    let (body, status) = out.rsplit_once('\n').unwrap_or(("", &out));
    assert_eq!(
        status, "201",
        "manifest PUT {repo}:{reference} answered {status}: {body}"
    );
}

/// Pushes `img` to `target` (`REPO:TAG`) with skopeo, keeping its manifest bytes.
pub(crate) fn push_image(reg: &Registry, img: &TestImage, target: &str, work: &Path) {
    let mut layout = Layout::new(&work.join(format!("layout-{}", sha256_hex(target.as_bytes()))));
    layout.add_image(img, "t");
    skopeo_push(&layout, "t", &format!("{}/{target}", reg.host()), &[]);
}

/// Pushes `idx` with all its children to `target` (`REPO:TAG`).
pub(crate) fn push_index(reg: &Registry, idx: &TestIndex, target: &str, work: &Path) {
    let mut layout = Layout::new(&work.join(format!("layout-{}", sha256_hex(target.as_bytes()))));
    layout.add_index(idx, "t");
    skopeo_push(
        &layout,
        "t",
        &format!("{}/{target}", reg.host()),
        &["--all"],
    );
}

/// Pushes a cosign signature manifest for `image_digest` in `repo`: one simple-signing layer
/// per `(payload, annotations)`, at tag `sha256-<hex>.sig` (trust-formats.md §1.2).
pub(crate) fn push_signature(
    reg: &Registry,
    repo: &str,
    image_digest: &str,
    layers: &[(Vec<u8>, Map<String, Value>)],
    dir: &Path,
) {
    let config = br#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    push_blob(reg, repo, config, dir);
    let mut descriptors = Vec::new();
    for (payload, annotations) in layers {
        push_blob(reg, repo, payload, dir);
        descriptors.push(json!({
            "mediaType": SIMPLE_SIGNING,
            "digest": digest_of(payload),
            "size": payload.len(),
            "annotations": annotations,
        }));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": digest_of(config),
        },
        "layers": descriptors,
    });
    let tag = format!("{}.sig", image_digest.replacen(':', "-", 1));
    put_manifest(
        reg,
        repo,
        &tag,
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
        dir,
    );
}

/// What a referrer manifest names as its subject: the image (or index) it is about.
pub(crate) struct Subject<'a> {
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: usize,
}

impl Subject<'_> {
    pub(crate) fn image(img: &TestImage) -> Subject<'_> {
        Subject {
            media_type: OCI_MANIFEST,
            digest: &img.manifest_digest,
            size: img.manifest.len(),
        }
    }

    pub(crate) fn index(idx: &TestIndex) -> Subject<'_> {
        Subject {
            media_type: OCI_INDEX,
            digest: &idx.index_digest,
            size: idx.index.len(),
        }
    }
}

/// Attaches Sigstore bundles to `subject` in `repo` as cosign v3 does on a registry without
/// the referrers API: each bundle a blob, its referrer manifest (empty config, one bundle
/// layer, `subject`) pushed by digest, and one OCI index listing them all under the fallback
/// tag `sha256-<hex>`. Each bundle comes with the predicate type cosign puts in the (unsigned)
/// annotations.
pub(crate) fn push_bundles(
    reg: &Registry,
    repo: &str,
    subject: &Subject<'_>,
    bundles: &[(Vec<u8>, &str)],
    dir: &Path,
) {
    push_blob(reg, repo, EMPTY_CONFIG, dir);
    assert_eq!(digest_of(EMPTY_CONFIG), EMPTY_CONFIG_DIGEST);
    let mut entries = Vec::new();
    for (bundle, predicate_type) in bundles {
        push_blob(reg, repo, bundle, dir);
        let annotations = json!({
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
            "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
        });
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE_V03,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "artifactType": BUNDLE_V03,
                "digest": EMPTY_CONFIG_DIGEST,
                "size": EMPTY_CONFIG.len(),
            },
            "layers": [{
                "mediaType": BUNDLE_V03,
                "digest": digest_of(bundle),
                "size": bundle.len(),
            }],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
            "annotations": annotations,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = digest_of(&bytes);
        put_manifest(reg, repo, &digest, OCI_MANIFEST, &bytes, dir);
        entries.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": bytes.len(),
            "artifactType": BUNDLE_V03,
            "annotations": annotations,
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    put_manifest(
        reg,
        repo,
        &subject.digest.replacen(':', "-", 1),
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
        dir,
    );
}
