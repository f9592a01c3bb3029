//! The `notary` trust source: Docker Content Trust, checked at the proxy for every client.
//!
//! For an image it derives the GUN (the normalised image name, or a configured prefix plus the
//! repository), brings that GUN's trust data up to date with [`crate::notary::update`] — root,
//! timestamp, snapshot, targets and the delegations of the configured roles, all verified —
//! and then answers as the Docker CLI did before it dropped content trust: a tag is allowed
//! when the first configured role that signs it (default `targets/releases`, then `targets`)
//! maps it to exactly the digest upstream serves; a digest is allowed when it is a target of
//! one of those roles.
//!
//! Verified data is reused for `cache_ttl`, never past the earliest expiry of the metadata it
//! rests on. Concurrent lookups of one GUN share one update. When the notary server cannot be
//! reached, data that was verified earlier and has not expired still answers; anything else
//! (no data, a verification failure, expired data) denies.

mod http;
mod state;

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use time::OffsetDateTime;

use crate::clock::SharedClock;
use crate::config::{NotaryConfig, NotaryRoot, TrustKind};
use crate::notary::{self, Fetch, RootTrust, SignedTarget, TrustData};
use crate::registry::Reference;
use crate::trust::{Failure, Subject, Verified};
use http::HttpFetch;
use state::StateStore;

/// GUNs whose verified trust data is kept.
const CACHED_GUNS: u64 = 10_000;

/// One configured `notary` source.
pub type NotarySource = Notary<HttpFetch>;

/// The source, generic over where metadata comes from so tests can serve fixture files.
pub struct Notary<F> {
    name: String,
    server: String,
    root: RootTrust,
    root_text: String,
    roles: Vec<String>,
    gun_prefixes: Vec<(String, String)>,
    ttl: Duration,
    fetch: F,
    states: StateStore,
    clock: SharedClock,
    cache: Cache<String, Arc<Fresh>>,
    /// One lock per GUN being updated: single flight without holding a global lock.
    updating: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

/// Trust data and when it was verified.
struct Fresh {
    data: TrustData,
    verified_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum NotarySetupError {
    #[error("root_file {path}: {source}")]
    RootFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] crate::registry::UpstreamError),
}

// === impl Notary ===

impl NotarySource {
    pub fn new(
        name: &str,
        config: &NotaryConfig,
        clock: SharedClock,
        state_dir: Option<&std::path::Path>,
    ) -> Result<NotarySource, NotarySetupError> {
        let fetch = HttpFetch::new(name, config)?;
        let (root, root_text) = match &config.root {
            NotaryRoot::Keys(ids) => (
                RootTrust::Keys(ids.clone()),
                format!("root pinned to {}", short_ids(ids)),
            ),
            NotaryRoot::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| NotarySetupError::RootFile {
                    path: path.clone(),
                    source,
                })?;
                (
                    RootTrust::File(bytes),
                    format!("root from {}", path.display()),
                )
            }
            NotaryRoot::FirstUse => (RootTrust::FirstUse, "root trusted on first use".to_owned()),
        };
        let states = StateStore::new(state_dir.map(|d| d.join("notary").join(name)));
        Ok(Notary::with_fetch(
            name,
            config.server.as_str(),
            root,
            root_text,
            config,
            fetch,
            states,
            clock,
        ))
    }
}

impl<F: Fetch> Notary<F> {
    #[allow(clippy::too_many_arguments)]
    fn with_fetch(
        name: &str,
        server: &str,
        root: RootTrust,
        root_text: String,
        config: &NotaryConfig,
        fetch: F,
        states: StateStore,
        clock: SharedClock,
    ) -> Notary<F> {
        Notary {
            name: name.to_owned(),
            server: server.trim_end_matches('/').to_owned(),
            root,
            root_text,
            roles: config.roles.clone(),
            gun_prefixes: config.gun_prefixes.clone(),
            ttl: config.cache_ttl,
            fetch,
            states,
            clock,
            cache: Cache::builder().max_capacity(CACHED_GUNS).build(),
            updating: moka::sync::Cache::builder()
                .max_capacity(CACHED_GUNS)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line for `check-config`.
    pub fn status(&self) -> String {
        let state = match self.states.dir() {
            Some(d) => format!("state in {}", d.display()),
            None => "state in memory only".to_owned(),
        };
        format!(
            "Docker Content Trust from {}: tags signed by {}; {}; {state}; cached {}s",
            self.server,
            self.roles.join(" or "),
            self.root_text,
            self.ttl.as_secs()
        )
    }

    /// The GUN of `image` (`registry/repository`): a configured prefix replaces the registry.
    pub fn gun(&self, image: &str) -> String {
        if let Some((registry, repository)) = image.split_once('/') {
            if let Some((_, prefix)) = self.gun_prefixes.iter().find(|(r, _)| r == registry) {
                return format!("{prefix}/{repository}");
            }
        }
        image.to_owned()
    }

    pub async fn verify(&self, s: &Subject<'_>) -> Result<Verified, Failure> {
        let fail = |why: String| Failure::new(&self.name, why);
        let gun = self.gun(s.image);
        let fresh = self.trust_data(&gun).await.map_err(fail)?;
        let data = &fresh.data;
        let found = match s.reference {
            Reference::Tag(tag) => {
                let Some(t) = data.tag(tag.as_str(), &self.roles) else {
                    return Err(fail(
                        self.unsigned(data, &format!("tag {tag} is not signed")),
                    ));
                };
                if &t.digest != s.digest {
                    return Err(fail(format!(
                        "tag {tag} is signed for {} but upstream serves {}",
                        t.digest, s.digest
                    )));
                }
                t
            }
            Reference::Digest(d) => match data.digest(d, &self.roles) {
                Some(t) => t,
                None => {
                    return Err(fail(
                        self.unsigned(data, &format!("{d} is not a signed target")),
                    ))
                }
            },
        };
        // The digest binds the bytes; the signed length is checked too where the bytes are at
        // hand, as the Docker CLI did, so a target with a wrong size never passes.
        if let Some(bytes) = s.manifest {
            if bytes.len() as u64 != found.length {
                return Err(fail(format!(
                    "{} is signed with length {} but upstream served {} bytes",
                    found.name,
                    found.length,
                    bytes.len()
                )));
            }
        }
        Ok(self.verified(&fresh, &found))
    }

    fn unsigned(&self, data: &TrustData, what: &str) -> String {
        let mut why = format!("{what} by {} for {}", self.roles.join(" or "), data.gun());
        for n in data.notes() {
            why.push_str("; ");
            why.push_str(n);
        }
        why
    }

    fn verified(&self, fresh: &Fresh, t: &SignedTarget) -> Verified {
        let data = &fresh.data;
        let version = data
            .version(&t.role)
            .map(|v| format!(" v{v}"))
            .unwrap_or_default();
        // A verdict resting on this data lasts no longer than the data may be reused.
        let until = data.expires().min(fresh.verified_at + self.ttl);
        Verified::new(
            &self.name,
            TrustKind::Notary,
            &t.role,
            Some(format!("{}{version}", data.gun())),
        )
        .until(until)
    }

    /// Verified trust data for `gun`: cached while fresh, else updated (one update per GUN at
    /// a time), else — only when the server cannot be reached — cached data not yet expired.
    async fn trust_data(&self, gun: &str) -> Result<Arc<Fresh>, String> {
        let usable = |f: &Arc<Fresh>, now: OffsetDateTime| {
            now < f.data.expires() && now < f.verified_at + self.ttl
        };
        if let Some(f) = self.cache.get(gun).await {
            if usable(&f, self.clock.now()) {
                return Ok(f);
            }
        }
        let lock = self
            .updating
            .get_with(gun.to_owned(), || Arc::new(tokio::sync::Mutex::new(())));
        let _guard = lock.lock().await;
        let now = self.clock.now();
        let cached = self.cache.get(gun).await;
        if let Some(f) = &cached {
            if usable(f, now) {
                return Ok(f.clone());
            }
        }
        let state = self.states.load(gun).map_err(|e| e.to_string())?;
        match notary::update(&self.fetch, gun, &self.root, &self.roles, &state, now).await {
            Ok((data, next)) => {
                if next != state {
                    // Not fatal for this answer, which is verified; but a restart would then
                    // forget versions or a first-use root, so say so loudly.
                    if let Err(e) = self.states.save(gun, &next) {
                        tracing::error!(trust = %self.name, %gun, error = %e, "cannot save notary state");
                    }
                }
                let f = Arc::new(Fresh {
                    data,
                    verified_at: now,
                });
                self.cache.insert(gun.to_owned(), f.clone()).await;
                Ok(f)
            }
            Err(e) if e.is_unavailable() => match cached {
                Some(f) if now < f.data.expires() => {
                    tracing::warn!(trust = %self.name, %gun, error = %e, "notary server unavailable; using verified trust data not yet expired");
                    Ok(f)
                }
                _ => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Key ids shortened for a status line.
fn short_ids(ids: &[String]) -> String {
    ids.iter()
        .map(|i| i.get(..12).unwrap_or(i))
        .collect::<Vec<_>>()
        .join(", ")
}
