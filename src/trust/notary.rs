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
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::clock::SharedClock;
use crate::config::{NotaryConfig, NotaryRoot, TrustKind};
use crate::notary::{self, Fetch, RootTrust, SignedTarget, TrustData};
use crate::registry::{Digest, Reference};
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
        let (root, root_text, pinning) = match &config.root {
            NotaryRoot::Keys(ids) => {
                let mut sorted = ids.clone();
                sorted.sort();
                (
                    RootTrust::Keys(ids.clone()),
                    format!("root pinned to {}", short_ids(ids)),
                    format!("keys:{}", sorted.join(",")),
                )
            }
            NotaryRoot::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| NotarySetupError::RootFile {
                    path: path.clone(),
                    source,
                })?;
                let pinning = format!("file:{}", hex::encode(Sha256::digest(&bytes)));
                (
                    RootTrust::File(bytes),
                    format!("root from {}", path.display()),
                    pinning,
                )
            }
            NotaryRoot::FirstUse => (
                RootTrust::FirstUse,
                "root trusted on first use".to_owned(),
                "first-use".to_owned(),
            ),
        };
        let states = StateStore::new(state_dir.map(|d| d.join("notary").join(name)), pinning);
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
        self.decide(s.image, s.reference, s.digest, s.manifest)
            .await
    }

    /// The decision for `image` at `reference`, which upstream serves as `digest` (and, on a
    /// GET, as `manifest`).
    async fn decide(
        &self,
        image: &str,
        reference: &Reference,
        digest: &Digest,
        manifest: Option<&[u8]>,
    ) -> Result<Verified, Failure> {
        let fail = |why: String| Failure::new(&self.name, why);
        let gun = self.gun(image);
        let fresh = self.trust_data(&gun).await.map_err(fail)?;
        let data = &fresh.data;
        let found = match reference {
            Reference::Tag(tag) => {
                let Some(t) = data.tag(tag.as_str(), &self.roles) else {
                    return Err(fail(
                        self.unsigned(data, &format!("tag {tag} is not signed")),
                    ));
                };
                if &t.digest != digest {
                    return Err(fail(format!(
                        "tag {tag} is signed for {} but upstream serves {digest}",
                        t.digest
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
        if let Some(bytes) = manifest {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::clock::{parse_rfc3339, Clock};
    use crate::notary::testrepo::{fixture, MapFetch};
    use crate::notary::FetchError;

    const CAPTURE: &str = "notary-cli/127.0.0.1_5100_library_signed-notary";
    const GUN: &str = "127.0.0.1:5100/library/signed-notary";
    /// What the capture signs for tag 1.0 (targets/releases and targets).
    const SIGNED: &str = "sha256:e8ca88651e255ab81422411d03f7bfad4839a6802658d48b36c69a591603c78b";
    const OTHER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    /// A clock tests move by hand.
    struct TestClock(Mutex<OffsetDateTime>);

    impl Clock for TestClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap()
        }
    }

    impl TestClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    /// The capture, with a switch that makes the server unreachable and a count of updates.
    struct Server {
        files: MapFetch,
        down: AtomicBool,
        timestamps: AtomicUsize,
    }

    impl Fetch for Server {
        async fn fetch(
            &self,
            gun: &str,
            name: &str,
            limit: usize,
        ) -> Result<Option<Bytes>, FetchError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(FetchError("connection refused".into()));
            }
            if name == "timestamp.json" {
                self.timestamps.fetch_add(1, Ordering::SeqCst);
                // Long enough for concurrent lookups to pile up behind the first.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if gun != GUN {
                return Ok(None);
            }
            self.files.fetch(gun, name, limit).await
        }
    }

    fn config(prefixes: Vec<(String, String)>) -> NotaryConfig {
        NotaryConfig {
            server: "https://notary.test".parse().unwrap(),
            extra_roots: Vec::new(),
            credentials: None,
            root: NotaryRoot::FirstUse,
            roles: vec!["targets/releases".into(), "targets".into()],
            gun_prefixes: prefixes,
            cache_ttl: Duration::from_secs(60),
        }
    }

    fn source(prefixes: Vec<(String, String)>) -> (Notary<Server>, Arc<TestClock>) {
        let clock = Arc::new(TestClock(Mutex::new(
            parse_rfc3339("2026-11-26T00:00:00Z").unwrap(),
        )));
        let server = Server {
            files: fixture(CAPTURE),
            down: AtomicBool::new(false),
            timestamps: AtomicUsize::new(0),
        };
        let n = Notary::with_fetch(
            "dct",
            "https://notary.test",
            RootTrust::FirstUse,
            "first use".into(),
            &config(prefixes),
            server,
            StateStore::new(None, "first-use".into()),
            clock.clone(),
        );
        (n, clock)
    }

    fn tag(t: &str) -> Reference {
        Reference::parse(t).unwrap()
    }

    fn digest(d: &str) -> Digest {
        d.parse().unwrap()
    }

    #[tokio::test]
    async fn a_tag_signed_for_the_served_digest_verifies_by_its_role() {
        let (n, _) = source(Vec::new());
        let v = n
            .decide(GUN, &tag("1.0"), &digest(SIGNED), None)
            .await
            .unwrap();
        assert_eq!(v.identity(), "targets/releases");
        assert_eq!(v.kind(), TrustKind::Notary);
        assert_eq!(
            v.to_string(),
            format!("signed by dct (targets/releases), {GUN} v1")
        );
        // The verdict lasts no longer than the data may be reused.
        let now = parse_rfc3339("2026-11-26T00:00:00Z").unwrap();
        assert!(!v.expired_at(now + time::Duration::seconds(59)));
        assert!(v.expired_at(now + time::Duration::seconds(60)));
    }

    #[tokio::test]
    async fn mismatches_unsigned_tags_digests_and_lengths_are_refused_with_the_reason() {
        let (n, _) = source(Vec::new());
        let why = |r: Result<Verified, Failure>| r.unwrap_err().to_string();
        assert_eq!(
            why(n.decide(GUN, &tag("1.0"), &digest(OTHER), None).await),
            format!("dct: tag 1.0 is signed for {SIGNED} but upstream serves {OTHER}")
        );
        assert_eq!(
            why(n.decide(GUN, &tag("2.0"), &digest(SIGNED), None).await),
            format!("dct: tag 2.0 is not signed by targets/releases or targets for {GUN}")
        );
        let by_digest = Reference::Digest(digest(SIGNED));
        assert!(n
            .decide(GUN, &by_digest, &digest(SIGNED), None)
            .await
            .is_ok());
        let other = Reference::Digest(digest(OTHER));
        assert_eq!(
            why(n.decide(GUN, &other, &digest(OTHER), None).await),
            format!("dct: {OTHER} is not a signed target by targets/releases or targets for {GUN}")
        );
        assert_eq!(
            why(n
                .decide(GUN, &tag("1.0"), &digest(SIGNED), Some(b"short"))
                .await),
            "dct: 1.0 is signed with length 466 but upstream served 5 bytes"
        );
        assert_eq!(
            why(n
                .decide(
                    "127.0.0.1:5100/library/other",
                    &tag("1.0"),
                    &digest(SIGNED),
                    None
                )
                .await),
            "dct: no trust data for 127.0.0.1:5100/library/other"
        );
    }

    #[tokio::test]
    async fn data_is_reused_for_the_ttl_and_outlives_an_unreachable_server_until_it_expires() {
        let (n, clock) = source(Vec::new());
        let (t, d) = (tag("1.0"), digest(SIGNED));
        let ok = || n.decide(GUN, &t, &d, None);
        ok().await.unwrap();
        ok().await.unwrap();
        assert_eq!(n.fetch.timestamps.load(Ordering::SeqCst), 1, "cached");
        clock.advance(Duration::from_secs(61));
        ok().await.unwrap();
        assert_eq!(n.fetch.timestamps.load(Ordering::SeqCst), 2, "asked again");

        // Down: the verified data answers while it has not expired (timestamp: 2026-12-09).
        n.fetch.down.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(61));
        ok().await.unwrap();
        clock.advance(Duration::from_secs(14 * 86_400));
        let err = ok().await.unwrap_err().to_string();
        assert_eq!(err, "dct: notary server: connection refused");
    }

    #[tokio::test]
    async fn a_cold_cache_with_the_server_down_is_refused() {
        let (n, _) = source(Vec::new());
        n.fetch.down.store(true, Ordering::SeqCst);
        let err = n
            .decide(GUN, &tag("1.0"), &digest(SIGNED), None)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "notary server: connection refused");
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_gun_share_one_update() {
        let (n, _) = source(Vec::new());
        let d = digest(SIGNED);
        let t = tag("1.0");
        let all = futures_util::future::join_all((0..8).map(|_| n.decide(GUN, &t, &d, None))).await;
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(n.fetch.timestamps.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_gun_prefix_replaces_the_registry_name() {
        let (n, _) = source(vec![("mirror.test".into(), "127.0.0.1:5100".into())]);
        assert_eq!(n.gun("mirror.test/library/signed-notary"), GUN);
        assert_eq!(n.gun("other.test/library/x"), "other.test/library/x");
        n.decide(
            "mirror.test/library/signed-notary",
            &tag("1.0"),
            &digest(SIGNED),
            None,
        )
        .await
        .unwrap();
    }

    #[test]
    fn the_status_line_says_where_and_how() {
        let (n, _) = source(Vec::new());
        assert_eq!(
            n.status(),
            "Docker Content Trust from https://notary.test: tags signed by targets/releases or targets; first use; state in memory only; cached 60s"
        );
    }
}
