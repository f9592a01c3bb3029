//! A Notary v1 (Docker Content Trust) client: offline, network-free verification of the TUF
//! metadata a notary server holds for one GUN, resolving tags to manifest digests
//! (trust-formats.md §3).
//!
//! Algorithm ([`update()`]):
//! 1. Root. With no stored root, the first root is trusted per [`RootTrust`]: pinned root key
//!    ids (the root role must reach its threshold with pinned keys only), a known `root.json`,
//!    or trust on first use; root-role keys must be x509 certificates for the GUN (CN, no
//!    SHA-1, RSA ≥ 2048, unexpired). If the server's `root.json` differs from the trusted one,
//!    the client walks `<v>.root.json` one version at a time; each must be signed to
//!    threshold by the previous root's root keys and by its own.
//! 2. `timestamp.json` (plain name, ≤ 1 MiB), signed by the root's timestamp keys.
//! 3. `snapshot.<sha256>.json`, matching the timestamp's hashes and length, signed by the
//!    snapshot keys; its `root` entry, if any, must match the trusted root's bytes.
//! 4. `targets.<sha256>.json`, matching the snapshot, signed by the targets keys.
//! 5. For each requested delegation (`targets/releases`, …), its ancestors first: keys,
//!    threshold and paths from the parent's `delegations`, file matching the snapshot. A
//!    delegation that is missing, below threshold or expired is skipped with a note.
//!
//! Every role's version must not fall below the version in [`State`] (rollback), and every
//! file must be unexpired at `now` (fatal for root, timestamp, snapshot and targets).
//!
//! Written by hand rather than with a TUF library (tough, rust-tuf) because notary speaks its
//! own dialect (§3.2): capitalised `_type`, base64 signatures with a `method`, base64 hashes,
//! x509 root keys whose ids hash the PEM certificate, raw `r‖s` ECDSA, snapshot/timestamp
//! meta without versions, `<role>.<sha256>.json` consistent names, path-prefix delegations
//! and docker/go's canonical JSON. None of the TUF-spec clients accept that metadata.
//!
//! Modules:
//! - [`canonical`]: docker/go canonical JSON (what is signed), the `DockerGo` dialect of
//!   [`crate::canonical`].
//! - [`metadata`]: the role files, with size and count caps.
//! - [`keys`]: key ids, key types, signature methods, root certificate rules.
//! - [`signatures`]: a role's key set and threshold counting.
//! - [`roles`]: role names and delegated paths.
//! - [`files`]: fetching one file against its caps and listed hashes.
//! - [`root`]: root bootstrap and rotation.
//! - [`update`](mod@update): the whole walk.
//! - [`trust_data`]: the verified result.

pub mod error;
pub mod files;
pub mod keys;
pub mod metadata;
pub mod roles;
pub mod root;
pub mod signatures;
pub mod trust_data;
pub mod update;

#[cfg(test)]
pub(crate) mod testrepo;
#[cfg(test)]
mod tests;

use std::future::Future;

/// The bytes notary signs for `v`: docker/go canonical JSON.
pub fn canonical(v: &serde_json::Value) -> Result<Vec<u8>, crate::canonical::CanonicalError> {
    crate::canonical::to_vec_in(v, crate::canonical::Dialect::DockerGo)
}

pub use error::NotaryError;
pub use trust_data::TrustData;

/// Where metadata comes from: the notary server in production, a map in tests.
/// `name` is the file name under `/v2/<gun>/_trust/tuf/`: `"timestamp.json"`, `"root.json"`,
/// `"2.root.json"`, `"snapshot.<sha256hex>.json"`, `"targets.<sha256hex>.json"`,
/// `"targets/releases.<sha256hex>.json"`. `Ok(None)` = the server answered 404.
/// `limit` = max bytes to read (larger -> the fetcher returns FetchError).
///
/// Implementations may write `async fn fetch(…)`; the future must be `Send` so an update can
/// run on the server's multi-threaded runtime.
pub trait Fetch {
    fn fetch(
        &self,
        gun: &str,
        name: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Option<bytes::Bytes>, FetchError>> + Send;
}

/// A transfer from the notary server that failed (not a 404).
#[derive(Debug, thiserror::Error, Clone)]
#[error("{0}")]
pub struct FetchError(pub String);

/// How the first root for a GUN is trusted.
#[derive(Debug, Clone)]
pub enum RootTrust {
    /// Root-role key ids (hex). Accept either the TUF key id (for x509 keys: over the PEM cert)
    /// or the "canonical" id of the certificate's public key (trust-formats §3.3). The first
    /// root must reach the root role's threshold using only pinned keys.
    Keys(Vec<String>),
    /// The exact bytes of a known root.json for this GUN (self-signed, checked as a first root).
    File(Vec<u8>),
    /// Trust on first use: the first root seen is trusted (self-signed to threshold, cert checks).
    FirstUse,
}

/// What is remembered per GUN between updates; the caller persists it (serde JSON).
///
/// A stored root is trusted as is on later updates (the [`RootTrust`] only decides the
/// first one), so a caller that changes a GUN's pinning should drop its state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The trusted root.json bytes (as UTF-8 text), once one has been accepted.
    #[serde(default)]
    pub root: Option<String>,
    /// Highest version seen per role ("root", "timestamp", "snapshot", "targets", "targets/releases"...).
    #[serde(default)]
    pub versions: std::collections::BTreeMap<String, u64>,
}

/// A target of a verified role: the tag (or other name) and the manifest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTarget {
    pub role: String,
    pub name: String,
    /// `hashes.sha256` of the target: the manifest digest.
    pub digest: crate::registry::Digest,
    /// The manifest's size in bytes.
    pub length: u64,
}

/// Runs the whole update for `gun`: root (bootstrap or rotation), timestamp -> snapshot ->
/// targets -> the delegations needed for `roles`. Returns verified data and the new state
/// (the caller persists it only on success).
pub async fn update(
    fetch: &impl Fetch,
    gun: &str,
    trust: &RootTrust,
    roles: &[String],
    state: &State,
    now: time::OffsetDateTime,
) -> Result<(TrustData, State), NotaryError> {
    update::run(fetch, gun, trust, roles, state, now).await
}
