//! Client identity: when `[server] users_file` names a bcrypt htpasswd file, every request must
//! carry Basic credentials of a user in it (`docker login pullgate:5000` works), and the user
//! name goes into the audit record.
//!
//! bcrypt is deliberately slow, so a successful check is remembered for a few minutes under a
//! hash of the exact credentials; failures are never cached.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::HeaderValue;
use sha2::{Digest as _, Sha256};

const OK_CACHE_TTL: Duration = Duration::from_secs(300);
const OK_CACHE_ENTRIES: u64 = 10_000;

/// The users allowed to pull.
pub struct Users {
    hashes: Arc<HashMap<String, String>>,
    ok: moka::future::Cache<[u8; 32], String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("users_file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("users_file {path} line {line}: {why}")]
    Entry {
        path: String,
        line: usize,
        why: &'static str,
    },
    #[error("users_file {0} has no users")]
    Empty(String),
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthFailure {
    #[error("authentication required")]
    Missing,
    #[error("malformed Authorization header")]
    Malformed,
    #[error("wrong user name or password")]
    Wrong,
}

// === impl Users ===

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({} entries)", self.hashes.len())
    }
}

impl Users {
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut hashes = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = |why| UsersError::Entry {
                path: shown.clone(),
                line: i + 1,
                why,
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| entry("expected user:hash"))?;
            // Only bcrypt: the other htpasswd schemes (MD5-crypt, SHA1, plain) are too weak.
            let bcrypt = ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p));
            if !bcrypt {
                return Err(entry("not a bcrypt hash (use htpasswd -B)"));
            }
            if user.is_empty() {
                return Err(entry("empty user name"));
            }
            hashes.insert(user.to_owned(), hash.to_owned());
        }
        if hashes.is_empty() {
            return Err(UsersError::Empty(shown));
        }
        Ok(Users {
            hashes: Arc::new(hashes),
            ok: moka::future::Cache::builder()
                .max_capacity(OK_CACHE_ENTRIES)
                .time_to_live(OK_CACHE_TTL)
                .build(),
        })
    }

    /// Checks a request's `Authorization` header; returns the user name.
    pub async fn check(&self, header: Option<&HeaderValue>) -> Result<String, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        let value = header.to_str().map_err(|_| AuthFailure::Malformed)?;
        let (scheme, b64) = value.split_once(' ').ok_or(AuthFailure::Malformed)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(AuthFailure::Missing);
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| AuthFailure::Malformed)?;
        let key: [u8; 32] = Sha256::digest(&raw).into();
        if let Some(user) = self.ok.get(&key).await {
            return Ok(user);
        }
        let text = String::from_utf8(raw).map_err(|_| AuthFailure::Malformed)?;
        let (user, password) = text.split_once(':').ok_or(AuthFailure::Malformed)?;
        let Some(hash) = self.hashes.get(user).cloned() else {
            return Err(AuthFailure::Wrong);
        };
        let password = password.to_owned();
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if !ok {
            return Err(AuthFailure::Wrong);
        }
        self.ok.insert(key, user.to_owned()).await;
        Ok(user.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    #[tokio::test]
    async fn checks_bcrypt_users() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        std::fs::write(dir.path().join("h"), format!("# users\nalice:{hash}\n")).unwrap();
        let u = Users::load(&dir.path().join("h")).unwrap();
        assert_eq!(
            u.check(Some(&header("alice", "s3cret"))).await.unwrap(),
            "alice"
        );
        // Second time from the cache.
        assert_eq!(
            u.check(Some(&header("alice", "s3cret"))).await.unwrap(),
            "alice"
        );
        assert_eq!(
            u.check(Some(&header("alice", "nope"))).await,
            Err(AuthFailure::Wrong)
        );
        assert_eq!(
            u.check(Some(&header("bob", "s3cret"))).await,
            Err(AuthFailure::Wrong)
        );
        assert_eq!(u.check(None).await, Err(AuthFailure::Missing));
        let junk = HeaderValue::from_static("Basic !!!");
        assert_eq!(u.check(Some(&junk)).await, Err(AuthFailure::Malformed));
    }

    #[test]
    fn refuses_weak_or_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h");
        std::fs::write(&p, "bob:$apr1$abc$def\n").unwrap();
        assert!(Users::load(&p).unwrap_err().to_string().contains("line 1"));
        std::fs::write(&p, "nocolon\n").unwrap();
        assert!(Users::load(&p).is_err());
        std::fs::write(&p, "\n# nobody\n").unwrap();
        assert!(Users::load(&p).is_err());
    }
}
