//! Looking for a signature in both places cosign writes one, for either cosign trust source:
//! the legacy `sha256-<hex>.sig` tag (one signature per layer) and Sigstore bundles attached as
//! referrers (or under the referrers fallback tag). Both are read concurrently, so an unsigned
//! image costs one round trip of latency, not three.
//!
//! What a layer or bundle must prove is the source's business ([`Checker`]); this module walks
//! the evidence, stops at the first that verifies, and otherwise says what was found and why
//! each failed. Which attestations count as signatures is decided by [`accepted_statement`],
//! the same for keyed and keyless bundles.

use std::future::Future;

use super::bundles;
use super::sig_tag::{self, SignatureLayer, Store};
use crate::registry::Digest;
use crate::sigstore::bundle::Bundle;
use crate::sigstore::intoto::{Statement, COSIGN_SIGN_PREDICATE};

/// Where a signature that verified was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    SigTag,
    Bundle,
}

/// What one cosign trust source requires of a signature.
pub trait Checker: Sync {
    /// What a verified signature yields (a key id, a certificate identity…).
    type Proof;
    /// Why a `.sig` layer does not vouch, shown in the reason.
    type LayerError: std::fmt::Display;

    /// One `.sig` layer: `Ok` when it vouches for `digest`.
    fn check_layer<S: Store + Sync>(
        &self,
        store: &S,
        layer: &SignatureLayer,
        digest: &Digest,
    ) -> impl Future<Output = Result<Self::Proof, Self::LayerError>> + Send;

    /// One bundle: `Ok` when it is a signature of `digest`; `accepted` are the predicate types
    /// besides cosign's sign predicate whose attestations count.
    fn check_bundle(
        &self,
        bundle: &Bundle,
        digest: &Digest,
        accepted: &[String],
    ) -> Result<Self::Proof, String>;
}

/// The first signature of `digest` that `checker` accepts, or the reason there is none:
/// `no signature` when nothing was found, else each failure in short.
pub async fn search<C: Checker, S: Store + Sync>(
    checker: &C,
    store: &S,
    digest: &Digest,
    accepted: &[String],
) -> Result<(C::Proof, Place), String> {
    let (sig, found) = tokio::join!(
        sig_tag::read_manifest(store, digest),
        bundles::find(store, digest, accepted)
    );
    let mut failures = Vec::new();
    let mut looked = 0;
    match sig {
        Ok(Some(manifest)) => {
            if manifest.layers.is_empty() {
                failures.push(format!(
                    "no signature (signature tag {} has no layers)",
                    manifest.tag
                ));
            }
            for layer in &manifest.layers {
                looked += 1;
                match checker.check_layer(store, layer, digest).await {
                    Ok(p) => return Ok((p, Place::SigTag)),
                    Err(e) => failures.push(format!(".sig: {e}")),
                }
            }
        }
        Ok(None) => {}
        Err(e) => failures.push(e.to_string()),
    }
    match found {
        Ok(found) => {
            for bundle in found.bundles {
                looked += 1;
                let checked = bundle
                    .map_err(|e| e.to_string())
                    .and_then(|b| checker.check_bundle(&b, digest, accepted));
                match checked {
                    Ok(p) => return Ok((p, Place::Bundle)),
                    Err(e) => failures.push(format!("bundle: {e}")),
                }
            }
            if found.total > bundles::MAX_BUNDLES {
                failures.push(format!(
                    "{} more bundles not examined",
                    found.total - bundles::MAX_BUNDLES
                ));
            }
        }
        Err(e) => failures.push(e.to_string()),
    }
    if looked == 0 && failures.is_empty() {
        return Err("no signature".to_owned());
    }
    Err(super::summarise(&failures))
}

/// A verified bundle's statement (DSSE) must have cosign's sign predicate or one of the
/// `accepted` types: an attestation by the same signer (SLSA provenance, an SBOM) is not a
/// signature of the image unless the rule says so. Message signatures have no statement.
pub fn accepted_statement(
    statement: Option<&Statement>,
    accepted: &[String],
) -> Result<(), String> {
    match statement {
        Some(st)
            if st.predicate_type != COSIGN_SIGN_PREDICATE
                && !accepted.contains(&st.predicate_type) =>
        {
            Err(format!(
                "an attestation ({}), not a signature: this rule does not accept that predicate type",
                st.predicate_type
            ))
        }
        _ => Ok(()),
    }
}

/// Says where signatures were looked for when it was not the image's own repository.
pub fn located(reason: String, elsewhere: Option<&str>) -> String {
    match elsewhere {
        None => reason,
        Some(repo) => match reason.strip_prefix("no signature") {
            Some(rest) => format!("no signature in {repo}{rest}"),
            None => format!("{reason} (signatures in {repo})"),
        },
    }
}
