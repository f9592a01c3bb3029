//! The trust gate on every manifest request (design.md §3): the matching rule, the verdict
//! cache, the trust sources the rule names, and the policy decision. Index children are
//! allowed when a verified index listed them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cache::{CacheUse, ChildGrant, VerdictCache, VerdictKey};
use crate::clock::SharedClock;
use crate::config::{Config, Mode, TyposquatMode};
use crate::policy::{self, Decision, DecisionKind, GlobError, Policy};
use crate::registry::{Digest, Reference, ResolveError, Resolver, Target};
pub use crate::trust::Subject;
use crate::trust::{TrustSet, TrustSetupError, Verified};
use crate::typosquat::{Detector, Severity, TyposquatError, Verdict as TyposquatVerdict};

/// Names whose typosquat result is remembered.
const SQUAT_CACHE_NAMES: u64 = 100_000;

/// Image indexes listing more children than this grant none beyond it.
const MAX_INDEX_CHILDREN: usize = 1024;

/// The decision with how it was reached.
pub struct Verdict {
    pub decision: Arc<Decision>,
    /// `None` when no verification was involved (no rule, mode off, index child).
    pub cache: Option<CacheUse>,
}

/// The typosquat check (issue 6): the detector, what to do about a finding, and results per
/// name (the check costs microseconds, but runs on every manifest request).
struct Typosquat {
    detector: Detector,
    mode: TyposquatMode,
    seen: moka::sync::Cache<String, Arc<TyposquatVerdict>>,
}

/// What the typosquat check asks of the request.
pub enum SquatAction {
    /// Nothing suspect, or the check is off.
    None,
    /// Go on, with this finding in the audit record and a `Warning` header.
    Warn(Arc<TyposquatVerdict>),
    /// Refuse before anything is fetched upstream.
    Block(Arc<TyposquatVerdict>),
}

#[derive(Debug, thiserror::Error)]
pub enum GateSetupError {
    #[error(transparent)]
    Glob(#[from] GlobError),
    #[error(transparent)]
    Typosquat(#[from] TyposquatError),
    #[error(transparent)]
    Trust(#[from] TrustSetupError),
    #[error("rule {rule:?}: signature_repository = {value:?}: {source}")]
    SignatureRepository {
        rule: String,
        value: String,
        source: ResolveError,
    },
}

pub struct Gate {
    policy: Policy,
    typosquat: Option<Typosquat>,
    trust: TrustSet,
    /// Each rule's `signature_repository`, resolved once at startup (by rule name).
    signature_targets: HashMap<String, Target>,
    cache: VerdictCache,
    generation: Arc<AtomicU64>,
    clock: SharedClock,
}

// === impl Gate ===

impl Gate {
    /// Builds the gate; `resolver` routes rules' signature repositories as pulls are routed.
    pub fn new(
        config: &Config,
        resolver: &Resolver,
        clock: SharedClock,
    ) -> Result<Gate, GateSetupError> {
        let generation = Arc::new(AtomicU64::new(0));
        let mut signature_targets = HashMap::new();
        for r in &config.rules {
            if let Some(value) = &r.signature_repository {
                let target = resolver.resolve(value, None).map_err(|source| {
                    GateSetupError::SignatureRepository {
                        rule: r.name.clone(),
                        value: value.clone(),
                        source,
                    }
                })?;
                signature_targets.insert(r.name.clone(), target);
            }
        }
        Ok(Gate {
            signature_targets,
            policy: Policy::new(&config.rules)?,
            typosquat: match config.typosquat.mode {
                TyposquatMode::Off => None,
                mode => Some(Typosquat {
                    detector: crate::typosquat::load::detector(&config.typosquat)?,
                    mode,
                    seen: moka::sync::Cache::new(SQUAT_CACHE_NAMES),
                }),
            },
            trust: TrustSet::from_config(
                &config.trust,
                clock.clone(),
                generation.clone(),
                config.server.state_dir.as_deref(),
            )?,
            cache: VerdictCache::new(config.cache.verdict_ttl, config.cache.negative_ttl),
            generation,
            clock,
        })
    }

    /// Starts background work (pin file watching).
    pub fn start(&self) {
        self.trust.start();
    }

    /// The typosquat check for a normalised image name. In block mode, high and medium
    /// findings block; an `info` finding (a popular name under an unknown namespace, often a
    /// legitimate fork or mirror) is only warned about.
    pub fn typosquat(&self, image: &str) -> SquatAction {
        let Some(t) = &self.typosquat else {
            return SquatAction::None;
        };
        let verdict = match t.seen.get(image) {
            Some(v) => v,
            None => {
                let v = Arc::new(t.detector.check(image));
                t.seen.insert(image.to_owned(), v.clone());
                v
            }
        };
        if !verdict.suspect {
            return SquatAction::None;
        }
        match (t.mode, verdict.severity) {
            (TyposquatMode::Block, Some(Severity::High | Severity::Medium)) => {
                SquatAction::Block(verdict)
            }
            _ => SquatAction::Warn(verdict),
        }
    }

    /// Decides whether `s` may be forwarded.
    pub async fn check(&self, s: &Subject<'_>) -> Verdict {
        let uncached = |d: Decision| Verdict {
            decision: Arc::new(d),
            cache: None,
        };
        let Some(rule) = self.policy.rule_for(s.image) else {
            return uncached(policy::decide(None, &Vec::new()));
        };
        // Where the rule keeps signatures and which attestations count are the rule's, so the
        // verdict cache key (which names the rule) covers them.
        let s = &Subject {
            signatures: self.signature_targets.get(&rule.name).unwrap_or(s.target),
            predicate_types: &rule.predicate_types,
            ..*s
        };
        if rule.mode == Mode::Off {
            return uncached(policy::decide(Some(rule), &Vec::new()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        // Cached verdicts and grants last their time to live, but never longer than the
        // evidence they rest on (an expiring pin file stops vouching at its expiry).
        let now = self.clock.now();
        let expired = |signers: &[Verified]| signers.iter().any(|v| v.expired_at(now));
        if let Reference::Digest(_) = s.reference {
            if let Some(g) = self.cache.child_grant(s.image, s.digest, generation).await {
                if g.rule == rule.name && !expired(&g.signers) {
                    return uncached(policy::allow_child(rule, &g.index, g.signers.clone()));
                }
            }
        }
        let stale = |d: &Arc<Decision>| match d.as_ref() {
            Decision::Forward(_, o) => expired(&o.signers),
            Decision::Refuse(_) => false,
        };
        let key = VerdictKey {
            image: s.image.to_owned(),
            tag: match s.reference {
                Reference::Tag(t) => Some(t.to_string()),
                Reference::Digest(_) => None,
            },
            digest: s.digest.clone(),
            rule: rule.name.clone(),
            generation,
        };
        let (decision, used) = self
            .cache
            .get_or_verify(
                key,
                async {
                    let start = std::time::Instant::now();
                    let mut evidence = Vec::new();
                    for name in rule.sources() {
                        evidence.push(self.trust.verify(name, s).await);
                    }
                    let d = policy::decide(Some(rule), &evidence);
                    let elapsed_us = start.elapsed().as_micros() as u64;
                    tracing::debug!(digest = %s.digest, rule = %rule.name, elapsed_us, "verified");
                    d
                },
                stale,
            )
            .await;
        if let (Decision::Forward(_, o), Some(bytes)) = (decision.as_ref(), s.manifest) {
            if o.kind == DecisionKind::Allow {
                let children = index_children(bytes);
                if !children.is_empty() {
                    let grant = Arc::new(ChildGrant {
                        index: s.digest.clone(),
                        rule: rule.name.clone(),
                        signers: o.signers.clone(),
                    });
                    for c in children {
                        self.cache
                            .grant_child(s.image, c, generation, grant.clone())
                            .await;
                    }
                }
            }
        }
        Verdict {
            decision,
            cache: Some(used),
        }
    }
}

/// The child manifest digests of an OCI image index or Docker manifest list; empty for
/// anything else (including malformed JSON: an unreadable index grants nothing).
fn index_children(bytes: &[u8]) -> Vec<Digest> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<Vec<Child>>,
    }
    #[derive(serde::Deserialize)]
    struct Child {
        digest: String,
    }
    let Ok(idx) = serde_json::from_slice::<Index>(bytes) else {
        return Vec::new();
    };
    let is_index = match idx.media_type.as_deref() {
        Some(t) => {
            t == "application/vnd.oci.image.index.v1+json"
                || t == "application/vnd.docker.distribution.manifest.list.v2+json"
        }
        // OCI allows an index without mediaType; `manifests` then identifies it.
        None => true,
    };
    if !is_index {
        return Vec::new();
    }
    idx.manifests
        .unwrap_or_default()
        .into_iter()
        .take(MAX_INDEX_CHILDREN)
        .filter_map(|c| c.digest.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_children_of_indexes_only() {
        let a = Digest::sha256_of(b"a");
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"digest":"{a}"}},{{"digest":"bogus"}}]}}"#
        );
        assert_eq!(index_children(idx.as_bytes()), vec![a.clone()]);
        let list = idx.replace(
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        );
        assert_eq!(index_children(list.as_bytes()), vec![a.clone()]);
        let image = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
        assert!(index_children(image.as_bytes()).is_empty());
        assert!(index_children(b"not json").is_empty());
    }
}
