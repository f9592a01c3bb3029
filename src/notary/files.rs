//! Getting one metadata file: size caps, 404s, and the hashes a signed parent lists for it
//! (trust-formats.md §3.1, §3.5; notary `tuf/data/types.go` `CheckHashes`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256, Sha512};

use super::error::NotaryError;
use super::metadata::{self, FileMeta, RoleFile, Signed};
use super::Fetch;

/// Fetches `name`, at most `limit` bytes; `None` on 404.
pub async fn get(
    fetch: &impl Fetch,
    gun: &str,
    name: &str,
    limit: usize,
) -> Result<Option<Bytes>, NotaryError> {
    let bytes = fetch.fetch(gun, name, limit).await?;
    // Checked here too: the fetcher promises the cap, but the cap is this module's rule.
    if let Some(b) = &bytes {
        if b.len() > limit {
            return Err(too_large(name, limit));
        }
    }
    Ok(bytes)
}

/// Fetches the file of `role` that `parent` lists, by its consistent name
/// `<role>.<hex sha256>.json`, and checks it against every hash and the length listed.
pub async fn get_listed(
    fetch: &impl Fetch,
    gun: &str,
    role: &str,
    meta: &FileMeta,
    parent: &str,
    limit: usize,
) -> Result<(String, Bytes), NotaryError> {
    let sha256 = meta
        .hashes
        .get("sha256")
        .and_then(|h| STANDARD.decode(h).ok())
        .filter(|h| h.len() == 32)
        .ok_or_else(|| NotaryError::Invalid {
            role: parent.to_owned(),
            reason: format!("no valid sha256 listed for {role}"),
        })?;
    let name = format!("{role}.{}.json", hex::encode(sha256));
    if meta.length > limit as u64 {
        return Err(too_large(&name, limit));
    }
    let bytes = get(fetch, gun, &name, limit)
        .await?
        .ok_or_else(|| NotaryError::NotFound { file: name.clone() })?;
    if !matches_meta(&bytes, meta) {
        return Err(NotaryError::HashMismatch {
            role: role.to_owned(),
            parent: parent.to_owned(),
        });
    }
    Ok((name, bytes))
}

/// Length equal, every listed hash of a known algorithm equal, and at least one known.
pub fn matches_meta(bytes: &[u8], meta: &FileMeta) -> bool {
    if bytes.len() as u64 != meta.length {
        return false;
    }
    let mut known = 0;
    for (alg, want) in &meta.hashes {
        let have = match alg.as_str() {
            "sha256" => Sha256::digest(bytes).to_vec(),
            "sha512" => Sha512::digest(bytes).to_vec(),
            _ => continue,
        };
        known += 1;
        if STANDARD.decode(want).ok().as_deref() != Some(have.as_slice()) {
            return false;
        }
    }
    known > 0
}

/// Parses `bytes` as the role file named `file`.
pub fn parse<T: RoleFile>(file: &str, bytes: &[u8]) -> Result<Signed<T>, NotaryError> {
    metadata::parse(bytes).map_err(|source| NotaryError::Parse {
        file: file.to_owned(),
        source,
    })
}

fn too_large(name: &str, limit: usize) -> NotaryError {
    NotaryError::TooLarge {
        file: name.to_owned(),
        limit: limit as u64,
    }
}
