//! The verdict cache (design.md §10): decisions cached per image, tag, digest, rule and trust
//! generation, so repeat pulls cost no verification. Concurrent requests for one key wait for a
//! single verification (moka's `get_with` runs one initialiser per key). Refusals and warnings
//! are kept only briefly, so a fix upstream (a new signature, a new pin file) shows quickly.
//!
//! It also remembers which child manifests a verified image index allowed, for the by-digest
//! requests that follow an index (design.md §3, multi-platform images).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;

use crate::policy::{Decision, DecisionKind};
use crate::registry::Digest;
use crate::trust::Verified;

const MAX_VERDICTS: u64 = 100_000;
const MAX_CHILD_GRANTS: u64 = 200_000;

/// What a verdict is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerdictKey {
    pub image: String,
    /// The tag for tag requests: pins may map tags to digests, so a tag is part of the question.
    pub tag: Option<String>,
    pub digest: Digest,
    pub rule: String,
    pub generation: u64,
}

/// Whether a verdict was computed by this request or shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Miss,
}

/// An index that allowed its children: the grant a child digest is let through on.
#[derive(Debug, Clone)]
pub struct ChildGrant {
    pub index: Digest,
    pub rule: String,
    pub signers: Vec<Verified>,
}

pub struct VerdictCache {
    verdicts: Cache<VerdictKey, Arc<Decision>>,
    children: Cache<(String, Digest, u64), Arc<ChildGrant>>,
}

struct VerdictExpiry {
    positive: Duration,
    negative: Duration,
}

impl moka::Expiry<VerdictKey, Arc<Decision>> for VerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &VerdictKey,
        value: &Arc<Decision>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let positive = match value.as_ref() {
            Decision::Forward(_, o) => {
                matches!(o.kind, DecisionKind::Allow | DecisionKind::Unchecked)
            }
            Decision::Refuse(_) => false,
        };
        Some(if positive {
            self.positive
        } else {
            self.negative
        })
    }
}

// === impl VerdictCache ===

impl VerdictCache {
    pub fn new(positive: Duration, negative: Duration) -> VerdictCache {
        VerdictCache {
            verdicts: Cache::builder()
                .max_capacity(MAX_VERDICTS)
                .expire_after(VerdictExpiry { positive, negative })
                .build(),
            children: Cache::builder()
                .max_capacity(MAX_CHILD_GRANTS)
                .time_to_live(positive)
                .build(),
        }
    }

    /// The cached verdict for `key`, or the result of `verify`, run once however many
    /// requests ask at the same time. A cached verdict for which `stale` holds (its evidence
    /// expired before its time to live) is verified again, in the same single flight.
    pub async fn get_or_verify<F>(
        &self,
        key: VerdictKey,
        verify: F,
        mut stale: impl FnMut(&Arc<Decision>) -> bool + Send,
    ) -> (Arc<Decision>, CacheUse)
    where
        F: Future<Output = Decision>,
    {
        // Fast path for the common case, a fresh cached verdict: a plain lookup, without the
        // entry machinery (and its Arc and closure) that only a miss needs.
        if let Some(d) = self.verdicts.get(&key).await {
            if !stale(&d) {
                return (d, CacheUse::Hit);
            }
        }
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let d = self
            .verdicts
            .entry(key)
            .or_insert_with_if(
                async move {
                    flag.store(true, Ordering::SeqCst);
                    Arc::new(verify.await)
                },
                stale,
            )
            .await
            .into_value();
        let used = if ran.load(Ordering::SeqCst) {
            CacheUse::Miss
        } else {
            CacheUse::Hit
        };
        (d, used)
    }

    /// Records that the verified index `grant.index` lists `child` for `image`.
    pub async fn grant_child(
        &self,
        image: &str,
        child: Digest,
        generation: u64,
        grant: Arc<ChildGrant>,
    ) {
        self.children
            .insert((image.to_owned(), child, generation), grant)
            .await;
    }

    /// The grant under which `child` may be pulled from `image`, if a verified index listed it.
    pub async fn child_grant(
        &self,
        image: &str,
        child: &Digest,
        generation: u64,
    ) -> Option<Arc<ChildGrant>> {
        self.children
            .get(&(image.to_owned(), child.clone(), generation))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decide;

    fn key() -> VerdictKey {
        VerdictKey {
            image: "docker.io/library/x".into(),
            tag: Some("1".into()),
            digest: Digest::sha256_of(b"m"),
            rule: "r".into(),
            generation: 0,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_verification() {
        let cache = Arc::new(VerdictCache::new(
            Duration::from_secs(60),
            Duration::from_secs(5),
        ));
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let cache = cache.clone();
            let runs = runs.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_verify(
                        key(),
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            decide(None, &vec![])
                        },
                        |_| false,
                    )
                    .await
                    .1
            }));
        }
        let mut misses = 0;
        for t in tasks {
            if t.await.unwrap() == CacheUse::Miss {
                misses += 1;
            }
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(misses, 1);
    }

    #[tokio::test]
    async fn a_new_generation_is_a_new_question() {
        let cache = VerdictCache::new(Duration::from_secs(60), Duration::from_secs(5));
        let (_, u) = cache
            .get_or_verify(key(), async { decide(None, &vec![]) }, |_| false)
            .await;
        assert_eq!(u, CacheUse::Miss);
        let (_, u) = cache
            .get_or_verify(key(), async { decide(None, &vec![]) }, |_| false)
            .await;
        assert_eq!(u, CacheUse::Hit);
        let next = VerdictKey {
            generation: 1,
            ..key()
        };
        let (_, u) = cache
            .get_or_verify(next, async { decide(None, &vec![]) }, |_| false)
            .await;
        assert_eq!(u, CacheUse::Miss);
    }

    #[tokio::test]
    async fn a_stale_verdict_is_verified_again() {
        let cache = VerdictCache::new(Duration::from_secs(60), Duration::from_secs(5));
        cache
            .get_or_verify(key(), async { decide(None, &vec![]) }, |_| false)
            .await;
        let (_, u) = cache
            .get_or_verify(key(), async { decide(None, &vec![]) }, |_| true)
            .await;
        assert_eq!(u, CacheUse::Miss);
    }
}
