//! Manifest integrity: the digest of a manifest is computed over the exact bytes the upstream
//! sent, and must agree with what was asked for and with what the upstream claims.

use super::digest::Digest;
use super::reference::Reference;

/// Manifests larger than this are refused: real ones are a few KiB, and the whole body is held
/// in memory to be hashed (and later verified) before anything is forwarded.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Why a manifest's bytes cannot be trusted to be the manifest that was asked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest requested as {requested} but its bytes hash to {actual}")]
    DigestMismatch { requested: Digest, actual: Digest },
    #[error(
        "upstream says Docker-Content-Digest {claimed} but the manifest bytes hash to {actual}"
    )]
    HeaderMismatch { claimed: Digest, actual: Digest },
    #[error("upstream sent an unusable Docker-Content-Digest header {0:?}")]
    BadHeader(String),
}

/// Computes the manifest digest (sha256, or the requested digest's algorithm for a by-digest
/// pull) and checks it against the request and the upstream's `Docker-Content-Digest` header.
pub fn verify(
    reference: &Reference,
    header: Option<&str>,
    bytes: &[u8],
) -> Result<Digest, ManifestError> {
    let digest = match reference {
        Reference::Digest(requested) => {
            let actual = requested.recompute(bytes);
            if &actual != requested {
                return Err(ManifestError::DigestMismatch {
                    requested: requested.clone(),
                    actual,
                });
            }
            actual
        }
        Reference::Tag(_) => Digest::sha256_of(bytes),
    };
    if let Some(h) = header {
        let claimed: Digest = h
            .trim()
            .parse()
            .map_err(|_| ManifestError::BadHeader(h.to_owned()))?;
        let actual = claimed.recompute(bytes);
        if actual != claimed {
            return Err(ManifestError::HeaderMismatch { claimed, actual });
        }
    }
    Ok(digest)
}

/// Checks the digest an upstream announced in a HEAD response against a by-digest request.
pub fn verify_head(reference: &Reference, header: &str) -> Result<Digest, ManifestError> {
    let claimed: Digest = header
        .trim()
        .parse()
        .map_err(|_| ManifestError::BadHeader(header.to_owned()))?;
    if let Reference::Digest(requested) = reference {
        if requested != &claimed {
            return Err(ManifestError::DigestMismatch {
                requested: requested.clone(),
                actual: claimed,
            });
        }
    }
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"schemaVersion":2}"#;

    fn tag() -> Reference {
        Reference::parse("1.0").unwrap()
    }

    #[test]
    fn tag_pull_digest_is_sha256_of_exact_bytes() {
        assert_eq!(verify(&tag(), None, BODY).unwrap(), Digest::sha256_of(BODY));
        let good = Digest::sha256_of(BODY).to_string();
        assert_eq!(
            verify(&tag(), Some(&good), BODY).unwrap(),
            Digest::sha256_of(BODY)
        );
    }

    #[test]
    fn by_digest_pull_must_hash_to_the_requested_digest() {
        let want = Reference::Digest(Digest::sha256_of(b"other"));
        assert!(matches!(
            verify(&want, None, BODY),
            Err(ManifestError::DigestMismatch { .. })
        ));
        let right = Reference::Digest(Digest::sha256_of(BODY));
        assert!(verify(&right, None, BODY).is_ok());
    }

    #[test]
    fn lying_header_is_refused() {
        let lie = Digest::sha256_of(b"other").to_string();
        assert!(matches!(
            verify(&tag(), Some(&lie), BODY),
            Err(ManifestError::HeaderMismatch { .. })
        ));
        assert!(matches!(
            verify(&tag(), Some("sha256:nope"), BODY),
            Err(ManifestError::BadHeader(_))
        ));
    }

    #[test]
    fn head_digest_must_match_by_digest_request() {
        let d = Digest::sha256_of(BODY);
        assert_eq!(verify_head(&tag(), &d.to_string()).unwrap(), d);
        let other = Reference::Digest(Digest::sha256_of(b"x"));
        assert!(verify_head(&other, &d.to_string()).is_err());
    }
}
