//! The cosign "simple signing" payload: the JSON document a cosign signature signs, binding it
//! to one manifest digest (trust-formats.md §1.4).
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"…"},
//!              "image":{"docker-manifest-digest":"sha256:…"},
//!              "type":"cosign container image signature"},
//!  "optional":null}
//! ```
//!
//! Only called on bytes whose signature already verified. The payload is parsed strictly and
//! never re-serialised: exact lowercase key names, no unknown keys in `critical`, duplicate keys
//! rejected. This deliberately differs from Go's `encoding/json`, which matches keys without
//! regard to case and keeps the last duplicate: a payload the two would read differently is
//! refused rather than read one way. `optional` (user annotations) is not interpreted, and the
//! `docker-reference` is reported but not checked (cosign's spec says it is ignored).

use serde::Deserialize;

use crate::registry::Digest;

/// Media type of a signature layer (and of the payload blob).
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The only `critical.type` a cosign image signature carries (`payload.CosignSignatureType`).
/// cosign itself does not check it; pullgate does, so that no other kind of signed document by
/// the same key passes as an image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// What a verified payload vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `critical.identity.docker-reference`, informational.
    pub docker_reference: Option<String>,
    /// `critical.image.docker-manifest-digest`, equal to the digest asked about.
    pub digest: Digest,
}

/// Why a (signed) payload does not vouch for the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("signature payload is not a simple-signing document: {0}")]
    Malformed(String),
    #[error("signature payload type is {actual:?}, not {expected:?}")]
    WrongType {
        expected: &'static str,
        actual: String,
    },
    #[error("signature payload names {0:?}, which is not a digest")]
    BadDigest(String),
    #[error("signature payload is for {signed} not {pulled}")]
    DigestMismatch { signed: Digest, pulled: Digest },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    // Any JSON value (cosign writes `null` or an object of annotations); not interpreted.
    #[serde(default, rename = "optional")]
    _optional: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(default)]
    identity: Option<Identity>,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Checks that `payload` (already signature-verified) is a cosign image signature for
/// `expected`.
pub fn check(payload: &[u8], expected: &Digest) -> Result<Claim, PayloadError> {
    let p: Payload =
        serde_json::from_slice(payload).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    if p.critical.kind != SIGNATURE_TYPE {
        return Err(PayloadError::WrongType {
            expected: SIGNATURE_TYPE,
            actual: p.critical.kind,
        });
    }
    let raw = p.critical.image.docker_manifest_digest;
    let signed: Digest = raw.parse().map_err(|_| PayloadError::BadDigest(raw))?;
    if &signed != expected {
        return Err(PayloadError::DigestMismatch {
            signed,
            pulled: expected.clone(),
        });
    }
    Ok(Claim {
        docker_reference: p.critical.identity.map(|i| i.docker_reference),
        digest: signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn payload(body: &str) -> Vec<u8> {
        body.replace("DIGEST", &digest('a').to_string())
            .into_bytes()
    }

    const GOOD: &str = r#"{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"DIGEST"},"type":"cosign container image signature"},"optional":null}"#;

    #[test]
    fn cosign_payloads_are_accepted_with_or_without_annotations() {
        let c = check(&payload(GOOD), &digest('a')).unwrap();
        assert_eq!(c.digest, digest('a'));
        assert_eq!(c.docker_reference.as_deref(), Some("r.example/app"));
        let annotated = GOOD.replace(r#""optional":null"#, r#""optional":{"commit":"abc"}"#);
        assert!(check(&payload(&annotated), &digest('a')).is_ok());
        let sorted = r#"{"critical":{"identity":{"docker-reference":"r/app:1.0"},"image":{"docker-manifest-digest":"DIGEST"},"type":"cosign container image signature"},"optional":null}"#;
        assert!(check(&payload(sorted), &digest('a')).is_ok());
    }

    #[test]
    fn lab_fixture_payloads_are_for_their_images() {
        for (name, d) in [
            (
                "signed-cosign",
                "sha256:948320d55ecc8c7d965fe2f481436df7244d61af4fd23dc03d1e0069b8f2fe21",
            ),
            (
                "sigstore-rs-signed",
                "sha256:0e63a28d1cf8cf7de13e613ece38991986fbe1248ca4fef8af2c926a2e8a33ab",
            ),
        ] {
            let bytes =
                crate::trust::cosign::keys::tests::shared(&format!("cosign/{name}.payload.json"));
            assert!(check(&bytes, &d.parse().unwrap()).is_ok(), "{name}");
        }
    }

    #[test]
    fn payloads_that_do_not_vouch_for_the_digest_are_refused() {
        let cases: [(String, &str); 8] = [
            (
                GOOD.to_owned(),
                // Checked against 'b' below: a valid payload for another digest.
                "is for sha256:aaaa",
            ),
            (
                GOOD.replace("cosign container image signature", "cosign attestation"),
                "type is \"cosign attestation\", not \"cosign container image signature\"",
            ),
            (
                GOOD.replace("docker-manifest-digest", "Docker-manifest-digest"),
                "not a simple-signing document",
            ),
            (
                GOOD.replace(
                    r#""type":"#,
                    r#""image":{"docker-manifest-digest":"sha256:0000"},"type":"#,
                ),
                "duplicate field",
            ),
            (
                GOOD.replace(r#""type":"#, r#""extra":1,"type":"#),
                "unknown field",
            ),
            (GOOD.replace("DIGEST", "latest"), "not a digest"),
            ("[]".to_owned(), "not a simple-signing document"),
            (GOOD[..40].to_owned(), "not a simple-signing document"),
        ];
        for (body, want) in cases {
            let e = check(&payload(&body), &digest('b'))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{body}: {e:?} lacks {want:?}");
        }
        assert_eq!(
            check(&payload(GOOD), &digest('b')).unwrap_err(),
            PayloadError::DigestMismatch {
                signed: digest('a'),
                pulled: digest('b')
            }
        );
    }
}
