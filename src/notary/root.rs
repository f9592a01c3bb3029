//! The trusted root: bootstrap per [`RootTrust`] and rotation to the server's current root
//! (trust-formats.md §3.6; notary `trustpinning/certs.go` `ValidateRoot`,
//! `client/tufclient.go` `updateRoot`).
//!
//! A first root must reach its root role's threshold with keys whose certificates pass the
//! GUN/SHA-1/RSA/expiry rules (and, when keys are pinned, with pinned keys only). Every later
//! root must reach the previous root's threshold with the previous root's keys AND its own
//! threshold with its own keys, one version at a time; certificate expiry is not checked
//! along that walk, since an old trusted root may carry expired certificates.

use std::collections::BTreeMap;

use bytes::Bytes;
use time::OffsetDateTime;

use super::error::{short_ids, NotaryError};
use super::files;
use super::metadata::{Root, Signed, MAX_METADATA_BYTES};
use super::signatures::KeySet;
use super::{Fetch, RootTrust, State};

/// More root versions than this between the trusted and the current root is refused rather
/// than fetched one by one.
const MAX_ROTATIONS: u64 = 256;

pub const ROOT: &str = "root";

/// A root accepted as trusted, with its exact bytes (what snapshot hashes and state stores).
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    pub bytes: Bytes,
    pub root: Signed<Root>,
}

/// The root to use now: the trusted (stored or bootstrapped) root, rotated forward to the
/// server's `root.json` when that differs.
pub async fn load(
    fetch: &impl Fetch,
    gun: &str,
    trust: &RootTrust,
    state: &State,
    now: OffsetDateTime,
) -> Result<TrustedRoot, NotaryError> {
    let server = files::get(fetch, gun, "root.json", MAX_METADATA_BYTES)
        .await?
        .ok_or_else(|| NotaryError::NoTrustData {
            gun: gun.to_owned(),
        })?;
    let mut trusted = match &state.root {
        // Accepted by an earlier update; checked again (minus certificate expiry) because the
        // caller's state file is only as safe as the disk it is on.
        Some(text) => {
            let bytes = Bytes::copy_from_slice(text.as_bytes());
            let root = files::parse::<Root>("trusted root", &bytes)?;
            check(gun, &root, None, None, None)?;
            TrustedRoot { bytes, root }
        }
        None => {
            let (bytes, pinned) = match trust {
                RootTrust::File(b) => (Bytes::copy_from_slice(b), None),
                RootTrust::Keys(ids) => (server.clone(), Some(ids.as_slice())),
                RootTrust::FirstUse => (server.clone(), None),
            };
            let root = files::parse::<Root>("root.json", &bytes)?;
            check(gun, &root, None, pinned, Some(now))?;
            TrustedRoot { bytes, root }
        }
    };
    if server != trusted.bytes {
        trusted = rotate(fetch, gun, trusted, server).await?;
    }
    Ok(trusted)
}

/// Walks from `trusted` to the server's root one version at a time.
async fn rotate(
    fetch: &impl Fetch,
    gun: &str,
    mut trusted: TrustedRoot,
    server: Bytes,
) -> Result<TrustedRoot, NotaryError> {
    let newest = files::parse::<Root>("root.json", &server)?;
    let from = trusted.root.signed.version;
    let to = newest.signed.version;
    if to < from {
        return Err(NotaryError::Rollback {
            role: ROOT.to_owned(),
            from,
            to,
        });
    }
    if to - from > MAX_ROTATIONS {
        return Err(NotaryError::Invalid {
            role: ROOT.to_owned(),
            reason: format!("{} versions from the trusted v{from} to v{to}", to - from),
        });
    }
    // Same version, different bytes: still has to chain from the trusted root.
    let first = if to == from { to } else { from + 1 };
    let mut newest = Some(newest);
    for version in first..=to {
        let (bytes, root) = if version == to {
            let root = newest.take().ok_or_else(|| NotaryError::Invalid {
                role: ROOT.to_owned(),
                reason: "rotation walked past the newest root".to_owned(),
            })?;
            (server.clone(), root)
        } else {
            let name = format!("{version}.root.json");
            let bytes = files::get(fetch, gun, &name, MAX_METADATA_BYTES)
                .await?
                .ok_or_else(|| NotaryError::NotFound { file: name.clone() })?;
            let root = files::parse::<Root>(&name, &bytes)?;
            (bytes, root)
        };
        if root.signed.version != version {
            return Err(NotaryError::Invalid {
                role: format!("root v{version}"),
                reason: format!("file has version {}", root.signed.version),
            });
        }
        check(gun, &root, Some(&trusted.root), None, None)?;
        trusted = TrustedRoot { bytes, root };
    }
    Ok(trusted)
}

/// Checks one root: its own root keys (certificate rules, optional pins) to threshold, and,
/// for a rotation, the previous root's keys to the previous threshold. `cert_time` is the
/// time to check certificate validity at (first bootstrap only).
fn check(
    gun: &str,
    root: &Signed<Root>,
    previous: Option<&Signed<Root>>,
    pinned: Option<&[String]>,
    cert_time: Option<OffsetDateTime>,
) -> Result<(), NotaryError> {
    let version = root.signed.version;
    let own = root_keys(gun, &root.signed, cert_time)?;
    if let Some(prev) = previous {
        let prev_keys = root_keys(gun, &prev.signed, None)?;
        let label = format!(
            "root v{version} (by the keys of root v{})",
            prev.signed.version
        );
        prev_keys.check(&label, root)?;
    }
    let Some(pinned) = pinned else {
        return own.check(ROOT, root);
    };
    // Pinned: reaching the threshold with the root's own keys is not enough; the keys that
    // count must be pinned, by key id or by the id of the certificate's bare public key.
    let signers = own.valid_signers(root);
    own.check(ROOT, root)?;
    let is_pinned = |id: &String| {
        own.keys.get(id).is_some_and(|k| {
            let canonical = k.canonical_id();
            pinned
                .iter()
                .any(|p| p.eq_ignore_ascii_case(id) || p.eq_ignore_ascii_case(&canonical))
        })
    };
    let pinned_signers = signers.iter().filter(|id| is_pinned(id)).count();
    if (pinned_signers as u64) < own.threshold {
        return Err(NotaryError::RootNotPinned {
            signed_by: short_ids(&signers),
            pinned: short_ids(pinned),
        });
    }
    Ok(())
}

/// The root role's keys of `root` that pass the certificate rules. If none pass, the first
/// failure is the error: "only 0 of 1 signatures" would hide why.
fn root_keys(
    gun: &str,
    root: &Root,
    cert_time: Option<OffsetDateTime>,
) -> Result<KeySet, NotaryError> {
    let role = root.roles.get(ROOT).ok_or_else(|| NotaryError::Invalid {
        role: ROOT.to_owned(),
        reason: "no root role".to_owned(),
    })?;
    let mut set = KeySet::from_listed(ROOT, &role.keyids, role.threshold, &root.keys)?;
    let mut first_failure = None;
    let mut kept = BTreeMap::new();
    for (id, key) in std::mem::take(&mut set.keys) {
        match key.check_root_cert(gun, cert_time) {
            Ok(()) => {
                kept.insert(id, key);
            }
            Err(source) => {
                first_failure.get_or_insert(NotaryError::RootCert {
                    key: short_ids([&id]),
                    source,
                });
            }
        }
    }
    if kept.is_empty() {
        if let Some(err) = first_failure {
            return Err(err);
        }
    }
    set.keys = kept;
    Ok(set)
}
