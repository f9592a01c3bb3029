//! Trust sources and the proof values they produce.
//!
//! A source either returns [`Verified`] — which only this module and its children can build —
//! or a [`Failure`] saying why not. Any error while fetching or checking evidence is a
//! `Failure`: fail closed. The policy decides what the evidence means.

pub mod cosign;
pub mod notary;
pub mod pins;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde::ser::SerializeStruct as _;
use time::OffsetDateTime;

use crate::clock::SharedClock;
use crate::config::{TrustConfig, TrustKind, TrustSettings};
use crate::registry::{Digest, Reference, Target};

/// The manifest a trust source is asked about.
pub struct Subject<'a> {
    /// The normalised image name, `registry/repository`.
    pub image: &'a str,
    pub reference: &'a Reference,
    pub digest: &'a Digest,
    /// The manifest bytes, when they were fetched (GET); an allowed index grants its children.
    pub manifest: Option<&'a [u8]>,
    /// Where the image lives.
    pub target: &'a Target,
    /// Where its cosign signatures and Sigstore bundles are stored: the image's own target,
    /// or the matching rule's `signature_repository` (the gate picks it). Sources read
    /// evidence through this target's client, credentials and timeouts.
    pub signatures: &'a Target,
    /// In-toto predicate types whose attestations count as signatures besides cosign's sign
    /// predicate (the matching rule's `predicate_types`; the gate sets them).
    pub predicate_types: &'a [String],
}

// === impl Subject ===

impl Subject<'_> {
    /// The signature repository when it is not the image's own, for reasons and notes.
    pub fn elsewhere(&self) -> Option<&str> {
        (self.signatures.image != self.target.image).then_some(self.signatures.image.as_str())
    }
}

/// Proof that one trust source verified a manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    trust: String,
    kind: TrustKind,
    /// Who vouched: `key:<id>`, a certificate identity, a notary role…
    identity: String,
    /// Extra words for the audit reason, e.g. the pin file version.
    note: Option<String>,
    /// When the evidence stops vouching (a pin file's `expires`); a cached verdict or index
    /// grant resting on it must not outlive it.
    expires: Option<OffsetDateTime>,
}

/// Why one trust source did not verify a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    trust: String,
    reason: String,
}

// === impl Verified ===

impl Verified {
    pub(in crate::trust) fn new(
        trust: &str,
        kind: TrustKind,
        identity: &str,
        note: Option<String>,
    ) -> Verified {
        Verified {
            trust: trust.to_owned(),
            kind,
            identity: identity.to_owned(),
            note,
            expires: None,
        }
    }

    /// Marks the proof as valid only until `t`.
    pub(in crate::trust) fn until(self, t: OffsetDateTime) -> Verified {
        Verified {
            expires: Some(t),
            ..self
        }
    }

    /// For tests of code that consumes evidence (the policy, the audit record).
    #[cfg(test)]
    pub(crate) fn for_test(trust: &str, kind: TrustKind, identity: &str) -> Verified {
        Verified::new(trust, kind, identity, None)
    }

    pub fn trust(&self) -> &str {
        &self.trust
    }

    pub fn kind(&self) -> TrustKind {
        self.kind
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether the evidence has stopped vouching at `now`.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `key:3f2a…` reads as "key 3f2a…"; a keyless identity (a URL or email) as it is.
        match self.identity.strip_prefix("key:") {
            Some(key) => write!(f, "signed by {} (key {key})", self.trust)?,
            None => write!(f, "signed by {} ({})", self.trust, self.identity)?,
        }
        if let Some(n) = &self.note {
            write!(f, ", {n}")?;
        }
        Ok(())
    }
}

/// Serialised as the audit record's `signers` entries: `{"trust","kind","identity"}`.
impl serde::Serialize for Verified {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Signer", 3)?;
        st.serialize_field("trust", &self.trust)?;
        st.serialize_field("kind", self.kind.as_str())?;
        st.serialize_field("identity", &self.identity)?;
        st.end()
    }
}

// === impl Failure ===

impl Failure {
    pub fn new(trust: &str, reason: impl Into<String>) -> Failure {
        Failure {
            trust: trust.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn trust(&self) -> &str {
        &self.trust
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.trust, self.reason)
    }
}

/// One configured trust source, ready to verify.
pub enum Source {
    Pins(Arc<pins::PinsSource>),
    CosignKey(cosign::CosignKeySource),
    CosignKeyless(cosign::keyless::CosignKeylessSource),
    Notary(Box<notary::NotarySource>),
}

/// All configured trust sources by name.
pub struct TrustSet {
    sources: HashMap<String, Source>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustSetupError {
    #[error("trust {name:?}: {source}")]
    Key {
        name: String,
        source: pins::key::KeyError,
    },
    #[error("trust {name:?}: {source}")]
    CosignKey {
        name: String,
        source: cosign::CosignKeySetupError,
    },
    #[error("trust {name:?}: {source}")]
    Notary {
        name: String,
        source: notary::NotarySetupError,
    },
    #[error("trust {name:?}: {source}")]
    CosignKeyless {
        name: String,
        source: cosign::keyless::KeylessSetupError,
    },
}

/// How often pin files are checked for changes.
const PIN_POLL: Duration = Duration::from_secs(1);

// === impl TrustSet ===

impl TrustSet {
    /// Builds the sources; key files are read here, so a bad key is a configuration error.
    pub fn from_config(
        config: &[TrustConfig],
        clock: SharedClock,
        generation: Arc<AtomicU64>,
        state_dir: Option<&std::path::Path>,
    ) -> Result<TrustSet, TrustSetupError> {
        let mut sources = HashMap::new();
        for t in config {
            let source = match &t.settings {
                TrustSettings::Pins { file, keys } => {
                    let s = pins::PinsSource::new(
                        &t.name,
                        file,
                        keys,
                        clock.clone(),
                        generation.clone(),
                        state_dir,
                    )
                    .map_err(|source| TrustSetupError::Key {
                        name: t.name.clone(),
                        source,
                    })?;
                    Source::Pins(Arc::new(s))
                }
                TrustSettings::CosignKey { keys, trusted_root } => {
                    let s = cosign::CosignKeySource::new(
                        &t.name,
                        keys,
                        trusted_root.as_deref(),
                        clock.clone(),
                    )
                    .map_err(|source| TrustSetupError::CosignKey {
                        name: t.name.clone(),
                        source,
                    })?;
                    Source::CosignKey(s)
                }
                TrustSettings::CosignKeyless {
                    trusted_root,
                    identities,
                } => {
                    let s = cosign::keyless::CosignKeylessSource::new(
                        &t.name,
                        trusted_root,
                        identities,
                        clock.clone(),
                    )
                    .map_err(|source| TrustSetupError::CosignKeyless {
                        name: t.name.clone(),
                        source,
                    })?;
                    Source::CosignKeyless(s)
                }
                TrustSettings::Notary(n) => {
                    let s = notary::NotarySource::new(&t.name, n, clock.clone(), state_dir)
                        .map_err(|source| TrustSetupError::Notary {
                            name: t.name.clone(),
                            source,
                        })?;
                    Source::Notary(Box::new(s))
                }
            };
            sources.insert(t.name.clone(), source);
        }
        Ok(TrustSet { sources })
    }

    /// One status line per source, in name order (`check-config`).
    pub fn status(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .sources
            .iter()
            .map(|(name, s)| {
                let line = match s {
                    Source::Pins(p) => p.status(),
                    Source::CosignKey(c) => c.status(),
                    Source::CosignKeyless(c) => c.status(),
                    Source::Notary(n) => n.status(),
                };
                (name.clone(), line)
            })
            .collect();
        out.sort();
        out
    }

    /// Starts the background work sources need (pin file watching). Needs a tokio runtime.
    pub fn start(&self) {
        for s in self.sources.values() {
            if let Source::Pins(p) = s {
                p.spawn_watcher(PIN_POLL);
            }
        }
    }

    /// Runs source `name` for one manifest. Unknown names cannot happen after config
    /// validation, but would fail closed.
    pub async fn verify(&self, name: &str, s: &Subject<'_>) -> Result<Verified, Failure> {
        match self.sources.get(name) {
            Some(Source::Pins(p)) => p.verify(s.image, s.reference, s.digest),
            Some(Source::CosignKey(c)) => c.verify(s).await,
            Some(Source::CosignKeyless(c)) => c.verify(s).await,
            Some(Source::Notary(n)) => n.verify(s).await,
            None => Err(Failure::new(name, "no such trust source")),
        }
    }
}
