//! One update for one GUN: root, then timestamp -> snapshot -> targets -> the delegations
//! leading to each requested role (trust-formats.md §3.5; notary `client/tufclient.go`,
//! `tuf/builder.go`).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use time::OffsetDateTime;

use super::error::NotaryError;
use super::files;
use super::metadata::{SnapshotFile, Targets, Timestamp, MAX_METADATA_BYTES, MAX_TIMESTAMP_BYTES};
use super::roles::{self, TARGETS};
use super::root::{self, ROOT};
use super::signatures::KeySet;
use super::trust_data::TrustData;
use super::{Fetch, RootTrust, SignedTarget, State};
use crate::registry::Digest;

/// Per role, at most this many notes about single targets; the rest are counted.
const MAX_TARGET_NOTES: usize = 8;

/// A verified targets role and the paths it may sign.
struct Loaded {
    targets: Targets,
    paths: Vec<String>,
}

/// What the walk has established so far.
struct Progress<'a> {
    now: OffsetDateTime,
    state: &'a State,
    expires: Option<OffsetDateTime>,
    versions: BTreeMap<String, u64>,
    notes: Vec<String>,
}

impl Progress<'_> {
    /// Version against the stored one (equal is fine: nothing changed), then expiry.
    fn accept(&mut self, role: &str, version: u64, expires: &str) -> Result<(), NotaryError> {
        if let Some(&seen) = self.state.versions.get(role) {
            if version < seen {
                return Err(NotaryError::Rollback {
                    role: role.to_owned(),
                    from: seen,
                    to: version,
                });
            }
        }
        let at = crate::clock::parse_rfc3339(expires).map_err(|e| NotaryError::Invalid {
            role: role.to_owned(),
            reason: format!("expires {expires:?}: {e}"),
        })?;
        if self.now >= at {
            return Err(NotaryError::Expired {
                role: role.to_owned(),
                at: expires.to_owned(),
            });
        }
        self.expires = Some(self.expires.map_or(at, |e| e.min(at)));
        self.versions.insert(role.to_owned(), version);
        Ok(())
    }
}

pub async fn run(
    fetch: &impl Fetch,
    gun: &str,
    trust: &RootTrust,
    wanted: &[String],
    state: &State,
    now: OffsetDateTime,
) -> Result<(TrustData, State), NotaryError> {
    for role in wanted {
        roles::check_targets_role(role)?;
    }
    let mut progress = Progress {
        now,
        state,
        expires: None,
        versions: BTreeMap::new(),
        notes: Vec::new(),
    };

    let trusted = root::load(fetch, gun, trust, state, now).await?;
    let root = &trusted.root.signed;
    progress.accept(ROOT, root.version, &root.expires)?;
    let role_keys = |role: &str| -> Result<KeySet, NotaryError> {
        let r = root.roles.get(role).ok_or_else(|| NotaryError::Invalid {
            role: ROOT.to_owned(),
            reason: format!("no {role} role"),
        })?;
        KeySet::from_listed(role, &r.keyids, r.threshold, &root.keys)
    };

    // Timestamp: always by its plain name; it is what says which snapshot is current.
    let ts_bytes = files::get(fetch, gun, "timestamp.json", MAX_TIMESTAMP_BYTES)
        .await?
        .ok_or_else(|| NotaryError::NoTrustData {
            gun: gun.to_owned(),
        })?;
    let ts = files::parse::<Timestamp>("timestamp.json", &ts_bytes)?;
    role_keys("timestamp")?.check("timestamp", &ts)?;
    progress.accept("timestamp", ts.signed.version, &ts.signed.expires)?;

    let snap_meta = ts
        .signed
        .meta
        .get("snapshot")
        .ok_or_else(|| not_listed("snapshot", "timestamp"))?;
    let (name, bytes) = files::get_listed(
        fetch,
        gun,
        "snapshot",
        snap_meta,
        "timestamp",
        MAX_METADATA_BYTES,
    )
    .await?;
    let snap = files::parse::<SnapshotFile>(&name, &bytes)?;
    role_keys("snapshot")?.check("snapshot", &snap)?;
    let snapshot = &snap.signed.0;
    progress.accept("snapshot", snapshot.version, &snapshot.expires)?;
    // The snapshot pins the root too: a server showing an old root alongside new metadata is
    // inconsistent, whatever the signatures say.
    if let Some(meta) = snapshot.meta.get(ROOT) {
        if !files::matches_meta(&trusted.bytes, meta) {
            return Err(NotaryError::HashMismatch {
                role: ROOT.to_owned(),
                parent: "snapshot".to_owned(),
            });
        }
    }

    let targets_meta = snapshot
        .meta
        .get(TARGETS)
        .ok_or_else(|| not_listed(TARGETS, "snapshot"))?;
    let (name, bytes) = files::get_listed(
        fetch,
        gun,
        TARGETS,
        targets_meta,
        "snapshot",
        MAX_METADATA_BYTES,
    )
    .await?;
    let targets = files::parse::<Targets>(&name, &bytes)?;
    role_keys(TARGETS)?.check(TARGETS, &targets)?;
    progress.accept(TARGETS, targets.signed.version, &targets.signed.expires)?;

    let mut loaded: BTreeMap<String, Loaded> = BTreeMap::new();
    loaded.insert(
        TARGETS.to_owned(),
        Loaded {
            targets: targets.signed,
            paths: vec![String::new()],
        },
    );
    // Delegations, parents first; a role that could not be loaded is noted once and its
    // descendants are not tried.
    let mut skipped: Vec<String> = Vec::new();
    for wanted_role in wanted {
        for role in roles::lineage(wanted_role).into_iter().skip(1) {
            if loaded.contains_key(&role) {
                continue;
            }
            if skipped.contains(&role) {
                break;
            }
            match load_delegation(fetch, gun, &role, &loaded, snapshot, &mut progress).await? {
                Some(l) => {
                    loaded.insert(role, l);
                }
                None => {
                    skipped.push(role);
                    break;
                }
            }
        }
    }

    let mut new_state = state.clone();
    new_state.root =
        Some(
            String::from_utf8(trusted.bytes.to_vec()).map_err(|_| NotaryError::Invalid {
                role: ROOT.to_owned(),
                reason: "not UTF-8".to_owned(),
            })?,
        );
    for (role, v) in &progress.versions {
        let entry = new_state.versions.entry(role.clone()).or_insert(*v);
        *entry = (*entry).max(*v);
    }

    let mut by_role = BTreeMap::new();
    for (role, l) in &loaded {
        by_role.insert(role.clone(), usable_targets(role, l, &mut progress.notes));
    }
    let data = TrustData {
        gun: gun.to_owned(),
        // `accept` ran at least for root, so this is always set; `now` would make the data
        // unusable rather than valid forever if it were not.
        expires: progress.expires.unwrap_or(now),
        targets: by_role,
        notes: progress.notes,
        versions: progress.versions,
    };
    Ok((data, new_state))
}

/// Loads one delegation whose parent is loaded. `Ok(None)` = skipped with a note (not
/// delegated, not in the snapshot, not on the server, below threshold, expired): a missing or
/// stale delegation leaves its targets unverified, which the caller's policy then denies.
/// Anything that points at tampering (hash mismatch, rollback, unparsable file) is an error.
async fn load_delegation(
    fetch: &impl Fetch,
    gun: &str,
    role: &str,
    loaded: &BTreeMap<String, Loaded>,
    snapshot: &super::metadata::Snapshot,
    progress: &mut Progress<'_>,
) -> Result<Option<Loaded>, NotaryError> {
    let Some(parent) = roles::parent(role).and_then(|p| loaded.get(p)) else {
        progress
            .notes
            .push(format!("{role}: parent role not loaded"));
        return Ok(None);
    };
    let delegations = &parent.targets.delegations;
    let Some(entry) = delegations.roles.iter().find(|r| r.name == role) else {
        progress.notes.push(format!("{role}: no such delegation"));
        return Ok(None);
    };
    let keys = match KeySet::from_listed(role, &entry.keyids, entry.threshold, &delegations.keys) {
        Ok(k) => k,
        Err(e) => {
            progress.notes.push(e.to_string());
            return Ok(None);
        }
    };
    let paths = roles::restrict(&parent.paths, &entry.paths);
    let Some(meta) = snapshot.meta.get(role) else {
        progress
            .notes
            .push(not_listed(role, "snapshot").to_string());
        return Ok(None);
    };
    let (name, bytes) =
        match files::get_listed(fetch, gun, role, meta, "snapshot", MAX_METADATA_BYTES).await {
            Ok(found) => found,
            Err(e @ NotaryError::NotFound { .. }) => {
                progress.notes.push(e.to_string());
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
    let file = files::parse::<Targets>(&name, &bytes)?;
    if let Err(e) = keys.check(role, &file) {
        progress.notes.push(e.to_string());
        return Ok(None);
    }
    match progress.accept(role, file.signed.version, &file.signed.expires) {
        Ok(()) => {}
        Err(e @ NotaryError::Expired { .. }) => {
            progress.notes.push(e.to_string());
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    Ok(Some(Loaded {
        targets: file.signed,
        paths,
    }))
}

/// The targets of a loaded role that can name a manifest: inside the role's paths, with a
/// 32-byte sha256. Others are left out with a note.
fn usable_targets(
    role: &str,
    loaded: &Loaded,
    notes: &mut Vec<String>,
) -> BTreeMap<String, SignedTarget> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, meta) in &loaded.targets.targets {
        if !roles::allows(&loaded.paths, name) {
            problems.push(format!(
                "{role}: target {name} is outside its delegated paths"
            ));
            continue;
        }
        let digest = meta
            .hashes
            .get("sha256")
            .and_then(|h| STANDARD.decode(h).ok())
            .filter(|h| h.len() == 32)
            .and_then(|h| format!("sha256:{}", hex::encode(h)).parse::<Digest>().ok());
        let Some(digest) = digest else {
            problems.push(format!("{role}: target {name} has no valid sha256"));
            continue;
        };
        out.insert(
            name.clone(),
            SignedTarget {
                role: role.to_owned(),
                name: name.clone(),
                digest,
                length: meta.length,
            },
        );
    }
    let extra = problems.len().saturating_sub(MAX_TARGET_NOTES);
    notes.extend(problems.into_iter().take(MAX_TARGET_NOTES));
    if extra > 0 {
        notes.push(format!("{role}: {extra} more targets skipped"));
    }
    out
}

fn not_listed(role: &str, parent: &str) -> NotaryError {
    NotaryError::NotListed {
        role: role.to_owned(),
        parent: parent.to_owned(),
    }
}
