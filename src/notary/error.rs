//! Why a notary update failed. The Display strings are shown to users as denial reasons, so
//! each names the file or role and the one thing that was wrong.

use super::keys::CertRuleError;
use super::metadata::MetadataError;
use super::roles::RoleNameError;
use super::FetchError;

#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    /// `timestamp.json` (or, before any root is trusted, `root.json`) answered 404.
    #[error("no trust data for {gun}")]
    NoTrustData { gun: String },
    #[error("{role} expired at {at}")]
    Expired { role: String, at: String },
    #[error("rollback of {role} from version {from} to {to}")]
    Rollback { role: String, from: u64, to: u64 },
    #[error("root key not pinned: root is signed by {signed_by}, pinned {pinned}")]
    RootNotPinned { signed_by: String, pinned: String },
    #[error("{role}: only {valid} of {threshold} required signatures verify")]
    Threshold {
        role: String,
        valid: usize,
        threshold: u64,
    },
    #[error("{role}: hash or length differs from {parent}")]
    HashMismatch { role: String, parent: String },
    #[error("{file}: larger than {limit} bytes")]
    TooLarge { file: String, limit: u64 },
    #[error("{file}: {source}")]
    Parse { file: String, source: MetadataError },
    #[error("notary server: {0}")]
    Fetch(#[from] FetchError),
    /// A file other than `timestamp.json` that a signed parent names answered 404.
    #[error("{file}: not found on the notary server")]
    NotFound { file: String },
    #[error("{role}: not listed in {parent}")]
    NotListed { role: String, parent: String },
    #[error("root key {key}: {source}")]
    RootCert { key: String, source: CertRuleError },
    #[error("{0}")]
    RoleName(#[from] RoleNameError),
    /// Anything else wrong with a role's content (bad threshold, unparsable expiry, …).
    #[error("{role}: {reason}")]
    Invalid { role: String, reason: String },
}

/// Key ids as shown in messages: the first 8 hex digits, like notary's CLI.
pub(super) fn short_ids<'a>(ids: impl IntoIterator<Item = &'a String>) -> String {
    let ids: Vec<&str> = ids
        .into_iter()
        .map(|id| id.get(..8).unwrap_or(id))
        .collect();
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

impl NotaryError {
    /// The server could not be asked (unreachable, timed out, an error status): unlike every
    /// other error this says nothing about the trust data itself, so data verified earlier
    /// may still answer.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, NotaryError::Fetch(_))
    }
}
