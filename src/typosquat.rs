//! Typosquat detection (design.md §2, §6, §8): whether a normalised image name imitates a
//! well-known one — `ngnix`, `library/ubunto`, `bitnarni/redis`, `offical/redis`,
//! `nginx-official`, `docker.i0/library/ubuntu` — and which one, how badly and why.
//!
//! The detector is pure: no IO, no clock, no cache. The reference set comes from embedded data
//! files plus the text of `known` files; [`load`], the module's only IO, reads those once for
//! the server and the CLI, which then share the [`Detector`].
//!
//! A name is compared part by part, each against the references that can exist in its place:
//!
//! 1. **Registry host**: an unknown host that imitates a known one is a *high* finding
//!    ([`host`]). An unknown host that imitates nothing is a private registry: nothing more is
//!    known about it, so nothing is flagged.
//! 2. **Docker Hub namespace**: `library/` and the per-architecture namespaces hold only
//!    official images, so a near-miss of an official name there is a *medium* finding. A known
//!    publisher's namespace is checked against that publisher's known images (*medium*). An
//!    unknown namespace that imitates a known one or claims to be official is *high*; an
//!    unknown namespace holding an image with an official name is *info*.
//! 3. **Other registries**: repositories of known namespaces (*medium*) and namespaces
//!    imitating known ones (*high*).
//!
//! A name with non-ASCII characters (a Cyrillic `а` for `a`) is never a valid reference and is
//! always *high*, with the name it imitates once folded to ASCII. Exact reference names and
//! allow-listed names are never flagged. See [`rules`] for the resemblance rules and
//! [`distance`] for the weighted edit distance under them.
//!
//! Module map: [`distance`] (edit costs and skeletons), [`index`] (candidate search),
//! [`name`] (normalising and splitting names), [`host`] (registry hosts), [`rules`]
//! (resemblance rules per context), [`reference`] (the reference set and its data files),
//! [`load`] (reading `[typosquat]` configuration).

pub mod distance;
pub mod host;
pub mod index;
pub mod load;
pub mod name;
pub mod reference;
pub mod rules;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::policy::{Glob, GlobError};
use host::Hosts;
use index::{NameIndex, Scratch};
use name::{fold_non_ascii, join, Parts, DOCKER_HUB};

pub use name::normalize;
pub use reference::ReferenceSet;

/// Docker Hub namespaces that mirror `library/` for one architecture (published by the
/// official images program): like `library/`, they hold official image names only.
const ARCH_NAMESPACES: [&str; 13] = [
    "amd64", "arm32v5", "arm32v6", "arm32v7", "arm64v8", "i386", "loong64", "mips64le", "ppc64le",
    "riscv64", "s390x", "windows", "winamd64",
];

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A popular image name under a namespace nobody knows: may well be a fork or a mirror.
    Info,
    /// A near-miss of a name inside `library/` or a trusted namespace: a typo by the user, which
    /// at best fails and at worst pulls something else.
    Medium,
    /// A look-alike registry host or namespace: someone registered it to be mistaken.
    High,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Medium => "medium",
            Severity::High => "high",
        })
    }
}

/// The outcome of a check. Serialises as `{"suspect", "similar_to", "severity", "reason"}`;
/// [`Verdict::finding`] gives the value for the audit record's `typosquat` field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub suspect: bool,
    /// The normalised name this one imitates, when there is one.
    pub similar_to: Option<String>,
    pub severity: Option<Severity>,
    pub reason: Option<String>,
}

impl Verdict {
    /// Not suspect.
    pub fn clean() -> Verdict {
        Verdict {
            suspect: false,
            similar_to: None,
            severity: None,
            reason: None,
        }
    }

    fn flag(severity: Severity, similar_to: Option<String>, reason: String) -> Verdict {
        Verdict {
            suspect: true,
            similar_to,
            severity: Some(severity),
            reason: Some(reason),
        }
    }

    /// This verdict if it is suspect: serialised, the audit record's `typosquat` value, which
    /// is `null` for a clean name.
    pub fn finding(&self) -> Option<&Verdict> {
        self.suspect.then_some(self)
    }
}

/// Why typosquat configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TyposquatError {
    #[error("line {line} ({text:?}): {reason}")]
    InvalidKnownLine {
        line: usize,
        text: String,
        reason: &'static str,
    },
    #[error("cannot read typosquat known file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("typosquat known file {path}: {source}")]
    Known {
        path: PathBuf,
        source: Box<TyposquatError>,
    },
    #[error("typosquat allow: {0}")]
    Allow(#[from] GlobError),
}

/// The indexed reference set and allow list; cheap to share, `check` takes `&self`.
#[derive(Debug)]
pub struct Detector {
    allow: Vec<Glob>,
    official: NameIndex,
    hosts: Hosts,
    /// Known namespaces per registry host.
    namespaces: HashMap<String, NameIndex>,
    /// Known repositories per registry host and namespace.
    repositories: HashMap<String, HashMap<String, NameIndex>>,
}

// === impl Detector ===

impl Detector {
    /// Indexes `reference`. Names matching an `allow` glob are never flagged.
    pub fn new(reference: ReferenceSet, allow: Vec<Glob>) -> Detector {
        let index =
            |names: std::collections::BTreeSet<String>| NameIndex::new(names.into_iter().collect());
        let hosts = Hosts::new(reference.hosts.iter().map(String::as_str));
        let namespaces = reference
            .namespaces
            .into_iter()
            .map(|(host, names)| (host, index(names)))
            .collect();
        let mut repositories: HashMap<String, HashMap<String, NameIndex>> = HashMap::new();
        for ((host, namespace), names) in reference.repositories {
            repositories
                .entry(host)
                .or_default()
                .insert(namespace, index(names));
        }
        Detector {
            allow,
            official: index(reference.official),
            hosts,
            namespaces,
            repositories,
        }
    }

    /// Checks one image name, normalised as in design.md §2 (`docker.io/library/nginx`).
    /// Names without a registry host are read as Docker Hub names.
    pub fn check(&self, normalized_name: &str) -> Verdict {
        let name = normalized_name.to_ascii_lowercase();
        if name.is_ascii() {
            self.check_ascii(&name)
        } else {
            self.check_non_ascii(&name)
        }
    }

    /// Approximate heap bytes held by the indexes, for the benchmark's memory report.
    pub fn heap_bytes(&self) -> usize {
        let nested: usize = self
            .repositories
            .values()
            .flat_map(HashMap::values)
            .map(NameIndex::heap_bytes)
            .sum();
        self.official.heap_bytes()
            + self
                .namespaces
                .values()
                .map(NameIndex::heap_bytes)
                .sum::<usize>()
            + nested
    }

    fn check_ascii(&self, name: &str) -> Verdict {
        let parts = Parts::split(name);
        let canonical = parts.join();
        if self
            .allow
            .iter()
            .any(|g| g.matches(name) || g.matches(&canonical))
        {
            return Verdict::clean();
        }
        let mut scratch = Scratch::default();
        if parts.host == DOCKER_HUB {
            return self.docker_hub(&parts, &mut scratch);
        }
        if self.hosts.is_known(parts.host) {
            return self.other_registry(&parts, &mut scratch);
        }
        match self.hosts.lookalike(parts.host) {
            Some(m) => {
                let suggested = match m.target.as_str() {
                    "hub.docker.com" => DOCKER_HUB,
                    t => t,
                };
                Verdict::flag(
                    Severity::High,
                    Some(join(suggested, parts.namespace, parts.repo)),
                    format!(
                        "registry host '{}' looks like '{}' ({})",
                        parts.host,
                        m.target,
                        m.kind.describe()
                    ),
                )
            }
            None => Verdict::clean(),
        }
    }

    fn check_non_ascii(&self, name: &str) -> Verdict {
        let folded = fold_non_ascii(name);
        let similar = self.check_ascii(&folded).similar_to.or_else(|| {
            let parts = Parts::split(&folded);
            self.is_reference(&parts).then(|| parts.join())
        });
        let reason = match &similar {
            Some(s) => format!("non-ASCII look-alike characters imitate '{s}'"),
            None => "non-ASCII characters in an image name".to_owned(),
        };
        Verdict::flag(Severity::High, similar, reason)
    }

    fn is_reference(&self, parts: &Parts<'_>) -> bool {
        if parts.host == DOCKER_HUB && parts.namespace == "library" {
            return self.official.contains(parts.repo);
        }
        self.repos(parts.host, parts.namespace)
            .is_some_and(|r| r.contains(parts.repo))
    }

    fn repos(&self, host: &str, namespace: &str) -> Option<&NameIndex> {
        self.repositories.get(host)?.get(namespace)
    }

    fn docker_hub(&self, parts: &Parts<'_>, scratch: &mut Scratch) -> Verdict {
        let (ns, repo) = (parts.namespace, parts.repo);
        if ns == "library" || ARCH_NAMESPACES.contains(&ns) {
            if self.official.contains(repo) {
                return Verdict::clean();
            }
            return match rules::closed_world(repo, &self.official, scratch) {
                Some(m) => Verdict::flag(
                    Severity::Medium,
                    Some(join(DOCKER_HUB, ns, &m.target)),
                    format!(
                        "'{repo}' looks like the official image '{}' ({})",
                        m.target,
                        m.kind.describe()
                    ),
                ),
                None => Verdict::clean(),
            };
        }
        let known = self.namespaces.get(DOCKER_HUB);
        if known.is_some_and(|k| k.contains(ns)) {
            return self.vendor(parts, scratch);
        }
        if let Some(m) = known.and_then(|k| rules::namespace_world(ns, k, true, scratch)) {
            let suggestion = self.suggest_in(&m.target, repo);
            return Verdict::flag(
                Severity::High,
                Some(suggestion),
                format!(
                    "namespace '{ns}' looks like '{}' ({})",
                    m.target,
                    m.kind.describe()
                ),
            );
        }
        let official = self.official.contains(repo);
        if rules::claims_official(ns) {
            return Verdict::flag(
                Severity::High,
                official.then(|| join(DOCKER_HUB, "library", repo)),
                format!("namespace '{ns}' claims to be official but is not a known publisher"),
            );
        }
        if official {
            return Verdict::flag(
                Severity::Info,
                Some(join(DOCKER_HUB, "library", repo)),
                format!("'{repo}' is an official image name under the unknown namespace '{ns}'"),
            );
        }
        Verdict::clean()
    }

    /// The name a user of a look-alike namespace most likely wanted: the same repository in
    /// the real namespace, unless only the official image has that name.
    fn suggest_in(&self, namespace: &str, repo: &str) -> String {
        let in_namespace = self
            .repos(DOCKER_HUB, namespace)
            .is_some_and(|r| r.contains(repo));
        if !in_namespace && self.official.contains(repo) {
            join(DOCKER_HUB, "library", repo)
        } else {
            join(DOCKER_HUB, namespace, repo)
        }
    }

    /// A repository in a known publisher's namespace on any registry.
    fn vendor(&self, parts: &Parts<'_>, scratch: &mut Scratch) -> Verdict {
        let (host, ns, repo) = (parts.host, parts.namespace, parts.repo);
        let mut groups: Vec<&NameIndex> = self.repos(host, ns).into_iter().collect();
        if host != DOCKER_HUB {
            // Publishers mirror their Docker Hub images elsewhere (`lscr.io/linuxserver/…`).
            groups.extend(self.repos(DOCKER_HUB, ns));
        }
        if groups.iter().any(|g| g.contains(repo)) || self.official.contains(repo) {
            return Verdict::clean();
        }
        if host == DOCKER_HUB {
            // Docker Hub publishers often repackage official images under the same name.
            groups.push(&self.official);
        }
        match rules::vendor_world(repo, &groups, scratch) {
            Some(m) => Verdict::flag(
                Severity::Medium,
                Some(join(host, ns, &m.target)),
                format!(
                    "'{repo}' looks like '{}' ({})",
                    join(host, ns, &m.target),
                    m.kind.describe()
                ),
            ),
            None => Verdict::clean(),
        }
    }

    fn other_registry(&self, parts: &Parts<'_>, scratch: &mut Scratch) -> Verdict {
        let (host, ns, repo) = (parts.host, parts.namespace, parts.repo);
        if self.repos(host, ns).is_some() {
            return self.vendor(parts, scratch);
        }
        if ns.is_empty() {
            return Verdict::clean();
        }
        let known = self.namespaces.get(host);
        if known.is_some_and(|k| k.contains(ns)) {
            return Verdict::clean();
        }
        if let Some(m) = known.and_then(|k| rules::namespace_world(ns, k, false, scratch)) {
            return Verdict::flag(
                Severity::High,
                Some(join(host, &m.target, repo)),
                format!(
                    "namespace '{ns}' on {host} looks like '{}' ({})",
                    m.target,
                    m.kind.describe()
                ),
            );
        }
        if rules::claims_official(ns) {
            return Verdict::flag(
                Severity::High,
                None,
                format!("namespace '{ns}' on {host} claims to be official"),
            );
        }
        Verdict::clean()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Detector {
        Detector::new(ReferenceSet::builtin(), Vec::new())
    }

    /// xorshift64*, so the property tests are deterministic.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
        }
    }

    #[test]
    fn severities_follow_the_part_that_is_imitated() {
        let d = builtin();
        let cases = [
            (
                "docker.i0/library/ubuntu",
                Some(Severity::High),
                Some("docker.io/library/ubuntu"),
            ),
            (
                "bitnarni/postgresql",
                Some(Severity::High),
                Some("docker.io/bitnami/postgresql"),
            ),
            (
                "offical/nginx",
                Some(Severity::High),
                Some("docker.io/library/nginx"),
            ),
            (
                "dockerofficial/nginx",
                Some(Severity::High),
                Some("docker.io/library/nginx"),
            ),
            (
                "ngnix",
                Some(Severity::Medium),
                Some("docker.io/library/nginx"),
            ),
            (
                "library/ubunto",
                Some(Severity::Medium),
                Some("docker.io/library/ubuntu"),
            ),
            (
                "arm64v8/alpnie",
                Some(Severity::Medium),
                Some("docker.io/arm64v8/alpine"),
            ),
            (
                "bitnami/postgressql",
                Some(Severity::Medium),
                Some("docker.io/bitnami/postgresql"),
            ),
            (
                "registry.k8s.io/paus",
                Some(Severity::Medium),
                Some("registry.k8s.io/pause"),
            ),
            (
                "someone/golang",
                Some(Severity::Info),
                Some("docker.io/library/golang"),
            ),
            ("nginx", None, None),
            ("bitnami/redis-sentinel", None, None),
            ("someone/my-app", None, None),
            ("registry.example.com/team/ngnix", None, None),
            ("registry.redict.io/redict", None, None),
        ];
        for (name, severity, similar) in cases {
            let v = d.check(&normalize(name));
            assert_eq!(v.severity, severity, "{name}: {v:?}");
            assert_eq!(v.suspect, severity.is_some(), "{name}");
            assert_eq!(v.similar_to.as_deref(), similar, "{name}: {v:?}");
            assert_eq!(v.reason.is_some(), v.suspect, "{name}");
        }
    }

    #[test]
    fn verdicts_serialise_for_the_cli_and_the_audit_record() {
        let d = builtin();
        let v = d.check("docker.io/library/ngnix");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["suspect"], true);
        assert_eq!(json["severity"], "medium");
        assert_eq!(json["similar_to"], "docker.io/library/nginx");
        assert!(json["reason"].as_str().unwrap().contains("nginx"));
        let clean = d.check("docker.io/library/nginx");
        assert_eq!(
            serde_json::to_value(clean.finding()).unwrap(),
            serde_json::Value::Null
        );
        assert!(v.finding().is_some());
    }

    #[test]
    fn no_name_of_the_reference_set_is_ever_flagged() {
        let r = ReferenceSet::builtin();
        let d = Detector::new(r.clone(), Vec::new());
        for o in &r.official {
            for ns in ["library", "arm64v8", "amd64", "bitnami", "circleci"] {
                let name = join(DOCKER_HUB, ns, o);
                assert!(!d.check(&name).suspect, "{name}: {:?}", d.check(&name));
            }
        }
        for ((host, ns), repos) in &r.repositories {
            for repo in repos {
                let name = join(host, ns, repo);
                assert!(!d.check(&name).suspect, "{name}: {:?}", d.check(&name));
            }
        }
        for (host, namespaces) in &r.namespaces {
            for ns in namespaces {
                let name = join(host, ns, "some-tool");
                assert!(!d.check(&name).suspect, "{name}: {:?}", d.check(&name));
            }
        }
        for host in &r.hosts {
            let host = host.strip_prefix("*.").map(|h| format!("x.{h}"));
            let host = host.as_deref().unwrap_or("");
            if !host.is_empty() {
                assert!(!d.check(&format!("{host}/some/tool")).suspect, "{host}");
            }
        }
    }

    #[test]
    fn allow_listed_names_are_never_flagged() {
        let allow = [
            "docker.io/library/ngnix",
            "docker.io/bitnarni/**",
            "ghcr.io/*/*",
        ]
        .map(|g| Glob::parse(g).unwrap())
        .to_vec();
        let d = Detector::new(ReferenceSet::builtin(), allow);
        for name in [
            "ngnix",
            "bitnarni/redis",
            "docker.io/bitnarni/x/y",
            "ghcr.io/offical/nginx",
        ] {
            assert!(!d.check(&normalize(name)).suspect, "{name}");
        }
        assert!(d.check(&normalize("nginxx")).suspect);
        // Every name is allowed under `**`, however suspicious.
        let all = Detector::new(ReferenceSet::builtin(), vec![Glob::parse("**").unwrap()]);
        let mut rng = Rng(7);
        for o in ReferenceSet::builtin().official {
            let mut b = o.into_bytes();
            let i = rng.below(b.len());
            b.insert(i, b'x');
            let name = normalize(&String::from_utf8(b).unwrap());
            assert!(!all.check(&name).suspect, "{name}");
        }
    }

    /// Each mutation class, applied to `name` (`None` where it does not apply).
    fn mutations(name: &str, rng: &mut Rng) -> Vec<(&'static str, Option<String>)> {
        let b = name.as_bytes();
        let n = b.len();
        let at = 1 + rng.below(n - 2);
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = b.to_vec();
            f(&mut v);
            String::from_utf8(v).ok()
        };
        let homoglyph = b.iter().position(|c| b"oli".contains(c)).map(|i| {
            let mut v = b.to_vec();
            v[i] = match v[i] {
                b'o' => b'0',
                _ => b'1',
            };
            String::from_utf8_lossy(&v).into_owned()
        });
        let separator = (!name.contains('-')).then(|| format!("{}-{}", &name[..at], &name[at..]));
        let letter = b[at].is_ascii_lowercase();
        vec![
            (
                "transposition",
                (b[at] != b[at + 1])
                    .then(|| edit(&|v| v.swap(at, at + 1)))
                    .flatten(),
            ),
            (
                "omission",
                letter
                    .then(|| {
                        edit(&|v| {
                            v.remove(at);
                        })
                    })
                    .flatten(),
            ),
            ("repetition", edit(&|v| v.insert(at, b[at]))),
            ("homoglyph", homoglyph),
            ("separator", separator),
            ("plural", (!name.ends_with('s')).then(|| format!("{name}s"))),
            ("version-suffix", Some(format!("{name}2"))),
            ("affix", Some(format!("{name}-official"))),
        ]
    }

    #[test]
    fn every_mutation_class_of_every_official_name_is_flagged() {
        let r = ReferenceSet::builtin();
        let d = Detector::new(r.clone(), Vec::new());
        let mut rng = Rng(42);
        let mut checked = 0;
        for o in r
            .official
            .iter()
            .filter(|o| o.len() >= 5 && !o.contains('.'))
        {
            for (class, mutated) in mutations(o, &mut rng) {
                let Some(m) = mutated.filter(|m| !r.official.contains(m)) else {
                    continue;
                };
                let v = d.check(&normalize(&m));
                assert!(v.suspect, "{class} {o} -> {m} was not flagged");
                checked += 1;
            }
        }
        assert!(checked > 900, "{checked}");
    }

    #[test]
    fn every_mutation_class_of_every_known_namespace_is_flagged_high() {
        let r = ReferenceSet::builtin();
        let d = Detector::new(r.clone(), Vec::new());
        let known = &r.namespaces[DOCKER_HUB];
        let mut rng = Rng(4242);
        let (mut checked, mut missed) = (0, Vec::new());
        for ns in known
            .iter()
            .filter(|n| n.len() >= 5 && !ARCH_NAMESPACES.contains(&n.as_str()))
        {
            for (class, mutated) in mutations(ns, &mut rng) {
                // Plurals, versions and affixes of namespaces are judged by their own rules.
                if matches!(class, "plural" | "version-suffix" | "affix") {
                    continue;
                }
                let Some(m) = mutated.filter(|m| !known.contains(m)) else {
                    continue;
                };
                checked += 1;
                let v = d.check(&format!("docker.io/{m}/app"));
                if v.severity != Some(Severity::High) {
                    missed.push(format!("{class} {ns} -> {m}"));
                }
            }
        }
        // A mutation can land on a spelling that is a different real publisher's name; those
        // are in the list and skipped above, so every other mutation must be caught.
        assert!(
            missed.is_empty(),
            "{} of {checked} missed: {missed:#?}",
            missed.len()
        );
    }

    /// Every transposition, omission and doubled letter, at every position.
    fn single_edits(name: &str) -> Vec<(&'static str, String)> {
        let b = name.as_bytes();
        let mut out = Vec::new();
        for i in 0..b.len() {
            let mut edits = Vec::new();
            if i + 1 < b.len() && b[i] != b[i + 1] {
                let mut v = b.to_vec();
                v.swap(i, i + 1);
                edits.push(("transposition", v));
            }
            if b[i].is_ascii_lowercase() {
                let mut v = b.to_vec();
                v.remove(i);
                edits.push(("omission", v));
            }
            let mut v = b.to_vec();
            v.insert(i, b[i]);
            edits.push(("repetition", v));
            for (class, v) in edits {
                let m = String::from_utf8(v).unwrap_or_default();
                let sep = |c: char| distance::is_separator(c as u8);
                if !m.starts_with(sep) && !m.ends_with(sep) {
                    out.push((class, m));
                }
            }
        }
        out
    }

    #[test]
    fn every_single_edit_at_every_position_is_caught() {
        let r = ReferenceSet::builtin();
        let d = Detector::new(r.clone(), Vec::new());
        let known = &r.namespaces[DOCKER_HUB];
        let mut missed = Vec::new();
        for ns in known.iter().filter(|n| n.len() >= 5) {
            for (class, m) in single_edits(ns) {
                let v = d.check(&format!("docker.io/{m}/app"));
                if !known.contains(&m) && v.severity != Some(Severity::High) {
                    missed.push(format!("namespace {class} {ns} -> {m}"));
                }
            }
        }
        for o in r.official.iter().filter(|o| o.len() >= 5) {
            for (class, m) in single_edits(o) {
                if !r.official.contains(&m) && !d.check(&join(DOCKER_HUB, "library", &m)).suspect {
                    missed.push(format!("official {class} {o} -> {m}"));
                }
            }
        }
        assert!(missed.is_empty(), "{missed:#?}");
    }

    #[test]
    fn weighted_distance_is_symmetric_on_random_pairs() {
        let r = ReferenceSet::builtin();
        let names: Vec<&String> = r.official.iter().collect();
        let mut rng = Rng(99);
        for _ in 0..2_000 {
            let a = names[rng.below(names.len())].as_bytes();
            let b = names[rng.below(names.len())].as_bytes();
            let ab = distance::distance(a, b, distance::Cost::MAX - 1);
            assert_eq!(ab, distance::distance(b, a, distance::Cost::MAX - 1));
        }
    }

    /// Leave-one-out over the built-in lists: how many real publishers and images would be
    /// flagged if they were missing from the list. This estimates the false-positive rate on
    /// real names the lists do not know.
    #[test]
    fn few_real_names_would_be_flagged_if_they_were_missing_from_the_lists() {
        let d = builtin();
        let mut scratch = Scratch::default();
        let known = &d.namespaces[DOCKER_HUB];
        let flagged: Vec<&str> = known
            .names()
            .filter(|ns| rules::namespace_world(ns, known, true, &mut scratch).is_some())
            .collect();
        println!("namespaces flagged when left out: {flagged:?}");
        assert!(
            flagged.len() * 100 <= known.len() * 2,
            "{} of {}",
            flagged.len(),
            known.len()
        );
        let (mut total, mut hits) = (0, Vec::new());
        for (ns, repos) in &d.repositories[DOCKER_HUB] {
            for repo in repos.names().filter(|r| !d.official.contains(r)) {
                total += 1;
                if rules::vendor_world(repo, &[repos, &d.official], &mut scratch).is_some() {
                    hits.push(format!("{ns}/{repo}"));
                }
            }
        }
        println!("repositories flagged when left out: {hits:?}");
        assert!(hits.len() * 100 <= total * 2, "{} of {total}", hits.len());
    }
}
