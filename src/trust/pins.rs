//! The `pins` trust source: pullgate's own Ed25519-signed pin file, loaded at start and reloaded
//! when it changes on disk.
//!
//! Reload rules: a new file must verify (trusted key, signature, not expired) and must not have
//! a lower version than one already loaded (rollback); otherwise the last good file stays in
//! force and the error is logged. A file that cannot be loaded at start leaves the source with
//! nothing loaded, so it verifies nothing (fail closed). Expiry is checked on every use, so a
//! loaded file stops vouching the moment it expires.

pub mod format;
pub mod key;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::clock::{rfc3339_millis, SharedClock};
use crate::config::TrustKind;
use crate::registry::{Digest, Reference};
use crate::trust::{Failure, Verified};
use format::PinSet;
use key::{KeyError, PinKey};

/// One configured pin file.
pub struct PinsSource {
    name: String,
    path: PathBuf,
    keys: Vec<PinKey>,
    clock: SharedClock,
    /// Bumped whenever the pins in force change, so cached verdicts are not reused.
    generation: Arc<AtomicU64>,
    /// Where the highest version ever loaded is kept (`[server] state_dir`), so a restart does
    /// not reopen the door to an older file.
    floor_file: Option<PathBuf>,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    current: Option<Arc<PinSet>>,
    /// Why nothing is loaded (only meaningful while `current` is `None`).
    load_error: Option<String>,
    seen: Option<Fingerprint>,
    /// The highest version loaded, now or (with a state dir) before a restart.
    floor: u64,
}

/// What identifies one version of the file on disk without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Loaded { version: u64 },
    Rejected(String),
}

// === impl PinsSource ===

impl PinsSource {
    /// Loads the keys (an error here is a configuration error) and tries to load the file.
    pub fn new(
        name: &str,
        path: &Path,
        key_files: &[PathBuf],
        clock: SharedClock,
        generation: Arc<AtomicU64>,
        state_dir: Option<&Path>,
    ) -> Result<PinsSource, KeyError> {
        let keys = key_files
            .iter()
            .map(|p| PinKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        let floor_file = state_dir.map(|d| d.join(format!("pins-{name}.version")));
        let floor = floor_file.as_deref().map(read_floor).unwrap_or(0);
        let source = PinsSource {
            name: name.to_owned(),
            path: path.to_owned(),
            keys,
            clock,
            generation,
            floor_file,
            state: RwLock::new(State {
                floor,
                ..State::default()
            }),
        };
        match source.reload() {
            Reload::Rejected(e) => {
                tracing::error!(trust = %source.name, file = %source.path.display(), error = %e, "pin file not loaded; this source verifies nothing until a valid file appears")
            }
            Reload::Loaded { version } => {
                tracing::info!(trust = %source.name, version, "pin file loaded")
            }
            Reload::Unchanged => {}
        }
        Ok(source)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line for `check-config`: the file in force, or why there is none.
    pub fn status(&self) -> String {
        self.read_state(|s| match (&s.current, &s.load_error) {
            (Some(set), _) => format!(
                "{}: version {}, {} images, expires {}, signed by key {}",
                self.path.display(),
                set.version,
                set.image_count(),
                rfc3339_millis(set.expires),
                set.signed_by.short()
            ),
            (None, e) => format!(
                "{}: NOT LOADED ({}); this source verifies nothing",
                self.path.display(),
                e.as_deref().unwrap_or("no file")
            ),
        })
    }

    /// Re-reads the file if it changed since the last look.
    pub fn reload(&self) -> Reload {
        let fp = match std::fs::metadata(&self.path) {
            Ok(m) => fingerprint(&m),
            Err(e) => {
                // A missing file is remembered like a broken one, so it is reported once.
                let missing = Fingerprint {
                    modified: None,
                    len: 0,
                    inode: 0,
                };
                return self.reject(
                    format!("cannot read {}: {e}", self.path.display()),
                    Some(missing),
                );
            }
        };
        if self.read_state(|s| s.seen.as_ref() == Some(&fp)) {
            return Reload::Unchanged;
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) => {
                return self.reject(
                    format!("cannot read {}: {e}", self.path.display()),
                    Some(fp),
                )
            }
        };
        let set = match format::verify(&bytes, &self.keys, self.clock.now()) {
            Ok(s) => s,
            Err(e) => return self.reject(e.to_string(), Some(fp)),
        };
        let floor = self.read_state(|s| s.floor);
        if set.version < floor {
            return self.reject(
                format!("rollback from version {floor} to {} refused", set.version),
                Some(fp),
            );
        }
        let version = set.version;
        if let Ok(mut s) = self.state.write() {
            s.current = Some(Arc::new(set));
            s.load_error = None;
            s.seen = Some(fp);
            s.floor = version;
        }
        if let Some(f) = &self.floor_file {
            if let Err(e) = write_floor(f, version) {
                tracing::error!(file = %f.display(), error = %e, "cannot record the pin file version; rollback protection is in memory only");
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        Reload::Loaded { version }
    }

    fn reject(&self, error: String, fp: Option<Fingerprint>) -> Reload {
        if let Ok(mut s) = self.state.write() {
            // Remember the fingerprint so a broken file is reported once, not every second.
            if fp.is_some() && s.seen == fp {
                return Reload::Unchanged;
            }
            s.seen = fp;
            if s.current.is_none() {
                s.load_error = Some(error.clone());
            }
        }
        Reload::Rejected(error)
    }

    fn read_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.read() {
            Ok(g) => f(&g),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Checks `digest`, served for `image:reference`, against the pins in force.
    pub fn verify(
        &self,
        image: &str,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Verified, Failure> {
        let (current, load_error) = self.read_state(|s| (s.current.clone(), s.load_error.clone()));
        let Some(set) = current else {
            let why = load_error.unwrap_or_else(|| "no pin file loaded".to_owned());
            return Err(Failure::new(&self.name, why));
        };
        if set.expires <= self.clock.now() {
            return Err(Failure::new(
                &self.name,
                format!("pin file expired at {}", rfc3339_millis(set.expires)),
            ));
        }
        set.check(image, reference, digest)
            .map_err(|e| Failure::new(&self.name, e.to_string()))?;
        Ok(Verified::new(
            &self.name,
            TrustKind::Pins,
            &format!("key:{}", set.signed_by.short()),
            Some(format!("pin file version {}", set.version)),
        )
        .until(set.expires))
    }

    /// Polls the file for changes until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>, every: std::time::Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(source) = me.upgrade() else { return };
                let result = tokio::task::spawn_blocking(move || source.reload()).await;
                match result {
                    Ok(Reload::Loaded { version }) => {
                        tracing::info!(version, "pin file reloaded")
                    }
                    Ok(Reload::Rejected(e)) => {
                        tracing::error!(error = %e, "new pin file rejected; keeping the last good one")
                    }
                    Ok(Reload::Unchanged) | Err(_) => {}
                }
            }
        });
    }
}

/// The version recorded in `path`, or 0 when there is none yet.
fn read_floor(path: &Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| {
            // An unreadable record must not lower the floor to nothing silently.
            tracing::error!(file = %path.display(), "unreadable pin version record; treating every file as a rollback until it is fixed");
            u64::MAX
        }),
        Err(_) => 0,
    }
}

/// Replaces the record atomically (write, then rename).
fn write_floor(path: &Path, version: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("version.tmp");
    std::fs::write(&tmp, format!("{version}\n"))?;
    std::fs::rename(&tmp, path)
}

#[cfg(unix)]
fn fingerprint(m: &std::fs::Metadata) -> Fingerprint {
    use std::os::unix::fs::MetadataExt as _;
    Fingerprint {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{parse_rfc3339, FixedClock};

    struct Fixture {
        dir: tempfile::TempDir,
        sk: ed25519_dalek::SigningKey,
        gen: Arc<AtomicU64>,
    }

    fn clock(at: &str) -> SharedClock {
        Arc::new(FixedClock(parse_rfc3339(at).unwrap()))
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let sk = key::generate();
            std::fs::write(
                dir.path().join("k.pub"),
                key::public_pem(&sk.verifying_key()).unwrap(),
            )
            .unwrap();
            Fixture {
                dir,
                sk,
                gen: Arc::new(AtomicU64::new(0)),
            }
        }

        fn write(&self, version: u64, digest: char) {
            let input = serde_json::json!({
                "expires": "2027-01-01T00:00:00Z",
                "version": version,
                "images": {"docker.io/library/nginx": {"tags": {"1.27": format!("sha256:{}", digest.to_string().repeat(64))}}}
            });
            let text = format::sign(
                &serde_json::to_vec(&input).unwrap(),
                &self.sk,
                parse_rfc3339("2026-11-25T00:00:00Z").unwrap(),
            )
            .unwrap();
            // Replace atomically, as operators should; the new inode marks the change.
            let tmp = self.dir.path().join("pins.json.tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, self.dir.path().join("pins.json")).unwrap();
        }

        fn source(&self, at: &str) -> PinsSource {
            PinsSource::new(
                "pins",
                &self.dir.path().join("pins.json"),
                &[self.dir.path().join("k.pub")],
                clock(at),
                self.gen.clone(),
                Some(self.dir.path()),
            )
            .unwrap()
        }
    }

    fn check(s: &PinsSource, digest: char) -> Result<Verified, Failure> {
        let d: Digest = format!("sha256:{}", digest.to_string().repeat(64))
            .parse()
            .unwrap();
        s.verify(
            "docker.io/library/nginx",
            &Reference::parse("1.27").unwrap(),
            &d,
        )
    }

    #[test]
    fn loads_verifies_and_reloads_newer_versions() {
        let f = Fixture::new();
        f.write(1, 'a');
        let s = f.source("2026-12-01T00:00:00Z");
        let v = check(&s, 'a').unwrap();
        assert_eq!(
            v.identity(),
            format!("key:{}", key::KeyId::of(&f.sk.verifying_key()).short())
        );
        assert!(check(&s, 'b')
            .unwrap_err()
            .reason()
            .contains("is pinned to"));
        assert_eq!(s.reload(), Reload::Unchanged);
        let g = f.gen.load(Ordering::SeqCst);
        f.write(2, 'b');
        assert_eq!(s.reload(), Reload::Loaded { version: 2 });
        assert!(f.gen.load(Ordering::SeqCst) > g);
        assert!(check(&s, 'b').is_ok());
    }

    #[test]
    fn rollback_and_broken_files_keep_the_last_good_one() {
        let f = Fixture::new();
        f.write(5, 'a');
        let s = f.source("2026-12-01T00:00:00Z");
        f.write(4, 'b');
        assert!(
            matches!(s.reload(), Reload::Rejected(e) if e.contains("rollback from version 5 to 4"))
        );
        assert!(check(&s, 'a').is_ok());
        std::fs::write(f.dir.path().join("pins.json"), "{ broken").unwrap();
        assert!(matches!(s.reload(), Reload::Rejected(_)));
        // Reported once, then unchanged until the file changes again.
        assert_eq!(s.reload(), Reload::Unchanged);
        assert!(check(&s, 'a').is_ok());
    }

    #[test]
    fn rollback_protection_survives_a_restart_with_a_state_dir() {
        let f = Fixture::new();
        f.write(5, 'a');
        drop(f.source("2026-12-01T00:00:00Z"));
        f.write(4, 'b');
        let restarted = f.source("2026-12-01T00:00:00Z");
        assert!(check(&restarted, 'b')
            .unwrap_err()
            .reason()
            .contains("rollback from version 5 to 4"));
        f.write(6, 'b');
        assert_eq!(restarted.reload(), Reload::Loaded { version: 6 });
    }

    #[test]
    fn nothing_verifies_without_a_good_file() {
        let f = Fixture::new();
        let s = f.source("2026-12-01T00:00:00Z");
        assert!(check(&s, 'a').unwrap_err().reason().contains("cannot read"));
        std::fs::write(f.dir.path().join("pins.json"), "{}").unwrap();
        s.reload();
        assert!(check(&s, 'a').unwrap_err().reason().contains("not valid"));
    }

    #[test]
    fn an_expired_file_stops_vouching() {
        let f = Fixture::new();
        f.write(1, 'a');
        let s = f.source("2026-12-01T00:00:00Z");
        assert!(check(&s, 'a').is_ok());
        let later = PinsSource {
            clock: clock("2027-02-01T00:00:00Z"),
            ..s
        };
        assert!(check(&later, 'a').unwrap_err().reason().contains("expired"));
    }
}
