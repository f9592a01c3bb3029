//! What a notary source remembers per GUN across updates and restarts: the trusted root and
//! the highest version seen of each role (rollback protection, trust-formats.md §3.5–3.6).
//!
//! Kept in memory, and under `<state_dir>/notary/<trust name>/` when a state directory is
//! configured, one JSON file per GUN written atomically (temporary file, then rename), so a
//! crash never leaves half a state that would either lock a GUN out or forget its root.
//!
//! Each file also records how the root was trusted (the source's `root_keys`, `root_file` or
//! first use). When that configuration changes, the kept root is dropped and the next update
//! bootstraps again under the new pinning — removing a compromised key id from `root_keys`
//! must not leave a root it signed trusted. The role versions are kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::notary::State;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub struct StateStore {
    dir: Option<PathBuf>,
    /// A fingerprint of the root pinning the states were made under.
    pinning: String,
    memory: Mutex<HashMap<String, State>>,
}

/// A state file: the state and the pinning it was made under.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    pinning: String,
    #[serde(flatten)]
    state: State,
}

// === impl StateStore ===

impl StateStore {
    /// `dir` is this source's own directory; `None` keeps state in memory only.
    pub fn new(dir: Option<PathBuf>, pinning: String) -> StateStore {
        StateStore {
            dir,
            pinning,
            memory: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The state of `gun`; empty when nothing was ever accepted. An unreadable file is an
    /// error, never an empty state: that would undo rollback protection and first-use roots.
    pub fn load(&self, gun: &str) -> Result<State, StateError> {
        if let Some(s) = self.lock().get(gun) {
            return Ok(s.clone());
        }
        let Some(path) = self.path(gun) else {
            return Ok(State::default());
        };
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let stored: Stored =
            serde_json::from_slice(&text).map_err(|source| StateError::Parse { path, source })?;
        let mut state = stored.state;
        if stored.pinning != self.pinning && state.root.is_some() {
            tracing::info!(%gun, "root pinning changed since this GUN's root was trusted; bootstrapping again");
            state.root = None;
        }
        self.lock().insert(gun.to_owned(), state.clone());
        Ok(state)
    }

    /// Records `state` for `gun`: in memory always, on disk when configured.
    pub fn save(&self, gun: &str, state: &State) -> Result<(), StateError> {
        self.lock().insert(gun.to_owned(), state.clone());
        let Some(path) = self.path(gun) else {
            return Ok(());
        };
        let io = |path: &Path, source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let stored = Stored {
            pinning: self.pinning.clone(),
            state: state.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts).
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A readable file name that cannot collide: the GUN with unusual bytes replaced, then the
    /// start of the GUN's SHA-256.
    fn path(&self, gun: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let readable: String = gun
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let hash = hex::encode(&Sha256::digest(gun.as_bytes())[..8]);
        Some(dir.join(format!("{readable}-{hash}.json")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_keeps_guns_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(Some(dir.path().join("dct")), "keys:a".into());
        let mut s = State::default();
        s.versions.insert("timestamp".into(), 7);
        store.save("127.0.0.1:5000/library/a", &s).unwrap();
        assert_eq!(
            store.load("127.0.0.1:5000/library/a_").unwrap(),
            State::default()
        );

        let again = StateStore::new(Some(dir.path().join("dct")), "keys:a".into());
        assert_eq!(again.load("127.0.0.1:5000/library/a").unwrap(), s);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(Some(dir.path().to_owned()), "keys:a".into());
        store.save("g", &State::default()).unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&file, b"{not json").unwrap();
        let fresh = StateStore::new(Some(dir.path().to_owned()), "keys:a".into());
        assert!(matches!(fresh.load("g"), Err(StateError::Parse { .. })));
    }

    #[test]
    fn a_changed_pinning_drops_the_kept_root_but_not_the_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State {
            root: Some("{}".into()),
            ..State::default()
        };
        s.versions.insert("timestamp".into(), 3);
        StateStore::new(Some(dir.path().to_owned()), "first-use".into())
            .save("g", &s)
            .unwrap();
        let same = StateStore::new(Some(dir.path().to_owned()), "first-use".into());
        assert_eq!(same.load("g").unwrap(), s);
        let pinned = StateStore::new(Some(dir.path().to_owned()), "keys:a".into());
        let got = pinned.load("g").unwrap();
        assert_eq!(got.root, None);
        assert_eq!(got.versions, s.versions);
    }

    #[test]
    fn memory_only_without_a_directory() {
        let store = StateStore::new(None, "keys:a".into());
        let s = State {
            root: Some("{}".into()),
            ..State::default()
        };
        store.save("g", &s).unwrap();
        assert_eq!(store.load("g").unwrap(), s);
    }
}
