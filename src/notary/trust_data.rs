//! The result of an update: verified targets per role, with what they rest on.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::SignedTarget;
use crate::registry::Digest;

/// Verified targets of the roles asked for.
#[derive(Debug, Clone)]
pub struct TrustData {
    pub(super) gun: String,
    pub(super) expires: OffsetDateTime,
    /// role -> target name -> target. Only targets inside the role's delegated paths and
    /// with a usable sha256 are here.
    pub(super) targets: BTreeMap<String, BTreeMap<String, SignedTarget>>,
    pub(super) notes: Vec<String>,
    pub(super) versions: BTreeMap<String, u64>,
}

impl TrustData {
    pub fn gun(&self) -> &str {
        &self.gun
    }

    /// Earliest `expires` of every metadata file this data rests on (root, timestamp, snapshot,
    /// targets, delegations used). Cached data must not be used at or after it.
    pub fn expires(&self) -> OffsetDateTime {
        self.expires
    }

    /// The first role in `roles` (in order) that has target `tag`. Only the exact roles listed
    /// count: a tag signed only by `targets/alice` is not found when asking for
    /// `targets/releases` and `targets`.
    pub fn tag(&self, tag: &str, roles: &[String]) -> Option<SignedTarget> {
        roles
            .iter()
            .find_map(|role| self.targets.get(role)?.get(tag).cloned())
    }

    /// A target (any name) of one of `roles` whose sha256 is `digest` (first by role order,
    /// then by target name).
    pub fn digest(&self, digest: &Digest, roles: &[String]) -> Option<SignedTarget> {
        roles.iter().find_map(|role| {
            self.targets
                .get(role)?
                .values()
                .find(|t| &t.digest == digest)
                .cloned()
        })
    }

    /// Per-role problems that were skipped, not fatal (e.g. "targets/releases expired at …",
    /// "targets/releases: no such delegation"), for denial reasons.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Version of each role used, for audit notes ("targets/releases v3").
    pub fn version(&self, role: &str) -> Option<u64> {
        self.versions.get(role).copied()
    }
}
