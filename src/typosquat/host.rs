//! Registry hosts: which ones are known, and whether an unknown one imitates a known one.
//!
//! Hosts are compared label by label around the main label (see [`HostLabels`]), never as
//! whole strings: `registry.redict.io` and `registry.redhat.io` are two characters apart as
//! strings but have unrelated main labels, while `docker.i0` keeps Docker's main label and
//! fakes the suffix. A host under the same registered domain as a known one belongs to the
//! same owner, so only a typo of a known sub-label there (`regsitry.k8s.io`) is flagged.

use std::collections::HashSet;

use super::distance::{distance, is_separator, real_edits, Cost};
use super::name::HostLabels;
use super::rules::{classify, max_real_edits, Kind, Match};

/// Words that, glued to a registry's main label, make a host that looks like it.
const HOST_WORDS: [&str; 24] = [
    "hub",
    "registry",
    "reg",
    "cr",
    "mirror",
    "cdn",
    "io",
    "official",
    "images",
    "image",
    "repo",
    "docker",
    "container",
    "containers",
    "get",
    "my",
    "the",
    "proxy",
    "pull",
    "download",
    "dl",
    "secure",
    "cloud",
    "hq",
];

/// How far an unknown host's main label may be from a known one: one plain edit even for three
/// letters (`crg`, `k8`), since a registry host is registered on purpose, never by accident.
/// [`max_real_edits`] still allows only one real edit up to eight letters.
fn main_budget(len: usize) -> Cost {
    if len <= 8 {
        4
    } else {
        5
    }
}

/// A fake public suffix: `i0` for `io`, `corn` for `com`, `co` for `com`.
const SUFFIX_BUDGET: Cost = 4;

/// The cost of turning label `a` into the known label `b`, if they are near enough.
fn near(a: &str, b: &str, budget: Cost) -> Option<Cost> {
    if a == b {
        return Some(0);
    }
    let cost = distance(a.as_bytes(), b.as_bytes(), budget)?;
    real_edits(a.as_bytes(), b.as_bytes(), max_real_edits(b.len()))?;
    Some(cost)
}

/// The known registry hosts.
#[derive(Debug, Default)]
pub struct Hosts {
    exact: HashSet<Box<str>>,
    /// `*.example.com` entries, stored as `.example.com`.
    wildcards: Vec<Box<str>>,
    /// Every entry, for look-alike comparisons.
    entries: Vec<Entry>,
}

/// A known host split once into labels; wildcard entries without the `*.`.
#[derive(Debug)]
struct Entry {
    host: Box<str>,
    wildcard: bool,
    sub: Box<str>,
    main: Box<str>,
    suffix: Box<str>,
}

impl Entry {
    fn new(host: &str, wildcard: bool) -> Entry {
        let bare = host.split_once(':').map_or(host, |(h, _)| h);
        let (sub, main, suffix) = match HostLabels::split(bare) {
            Some(l) => (l.sub, l.main, l.suffix),
            None => ("", "", ""),
        };
        Entry {
            host: host.into(),
            wildcard,
            sub: sub.into(),
            main: main.into(),
            suffix: suffix.into(),
        }
    }

    fn labels(&self) -> HostLabels<'_> {
        HostLabels {
            sub: &self.sub,
            main: &self.main,
            suffix: &self.suffix,
        }
    }
}

// === impl Hosts ===

impl Hosts {
    /// Known hosts from `names`; a name starting with `*.` stands for every host under it.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Hosts {
        let mut hosts = Hosts::default();
        for name in names {
            match name.strip_prefix("*.") {
                Some(domain) => {
                    hosts.wildcards.push(format!(".{domain}").into_boxed_str());
                    hosts.entries.push(Entry::new(domain, true));
                }
                None => {
                    hosts.exact.insert(name.into());
                    hosts.entries.push(Entry::new(name, false));
                }
            }
        }
        hosts
    }

    pub fn is_known(&self, host: &str) -> bool {
        let bare = host.split_once(':').map_or(host, |(h, _)| h);
        self.exact.contains(host)
            || self.exact.contains(bare)
            || self.wildcards.iter().any(|w| bare.ends_with(&**w))
    }

    /// The known host that the unknown `host` imitates, if any. The match's target is the
    /// host to suggest (for a wildcard entry, with the unknown host's own sub-labels).
    pub fn lookalike(&self, host: &str) -> Option<Match> {
        let bare = host.split_once(':').map_or(host, |(h, _)| h);
        // A known host used as the start of another domain: `ghcr.io.example.net`.
        for e in &self.entries {
            let rest = bare.strip_prefix(&*e.host);
            if !e.wildcard && rest.is_some_and(|r| r.starts_with(['.', '-'])) {
                return Some(Match {
                    target: e.host.to_string(),
                    kind: Kind::Affix,
                });
            }
        }
        let c = HostLabels::split(bare)?;
        let mut best: Option<(Cost, Match)> = None;
        for e in self.entries.iter().filter(|e| !e.main.is_empty()) {
            let Some((cost, kind)) = compare(&c, &e.labels(), e.wildcard) else {
                continue;
            };
            let target = if e.wildcard && !c.sub.is_empty() {
                format!("{}.{}", c.sub, e.host)
            } else {
                e.host.to_string()
            };
            if best
                .as_ref()
                .is_none_or(|(b, m)| (cost, &target) < (*b, &m.target))
            {
                best = Some((cost, Match { target, kind }));
            }
        }
        best.map(|(_, m)| m)
    }
}

/// How an unknown host `c` imitates the known host `k`, and at what cost.
fn compare(c: &HostLabels<'_>, k: &HostLabels<'_>, wildcard: bool) -> Option<(Cost, Kind)> {
    if c.main == k.main && c.suffix == k.suffix {
        // Same owner: only a misspelt sub-label of a specific known host is suspect.
        if wildcard || c.sub.is_empty() || k.sub.is_empty() || c.sub == k.sub {
            return None;
        }
        let cost = near(c.sub, k.sub, main_budget(k.sub.len()))?;
        return Some((cost, classify(c.sub, k.sub)));
    }
    if c.main == k.main {
        let cost = near(c.suffix, k.suffix, SUFFIX_BUDGET)?;
        return Some((cost, classify(c.suffix, k.suffix)));
    }
    // A registry's name with a word glued on is a look-alike under any suffix
    // (`dockerhub.io`, `ghcrio.com`), once the name is long enough to be distinctive.
    let suffix_cost = near(c.suffix, k.suffix, SUFFIX_BUDGET);
    if glued_word(c.main, k.main) && (k.main.len() >= 4 || suffix_cost.is_some()) {
        return Some((4 + suffix_cost.unwrap_or(4), Kind::Affix));
    }
    let cost = near(c.main, k.main, main_budget(k.main.len()))?;
    Some((cost + suffix_cost?, classify(c.main, k.main)))
}

/// Whether `main` is `known` with a [`HOST_WORDS`] word or a number on either side.
fn glued_word(main: &str, known: &str) -> bool {
    let is_word = |w: &str| {
        let w = w.trim_matches(|c: char| is_separator(c as u8));
        !w.is_empty() && (HOST_WORDS.contains(&w) || w.bytes().all(|b| b.is_ascii_digit()))
    };
    known.len() >= 3
        && (main.strip_prefix(known).is_some_and(is_word)
            || main.strip_suffix(known).is_some_and(is_word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Hosts {
        Hosts::new([
            "docker.io",
            "hub.docker.com",
            "ghcr.io",
            "gcr.io",
            "*.gcr.io",
            "cgr.dev",
            "lscr.io",
            "nvcr.io",
            "quay.io",
            "registry.k8s.io",
            "registry.redhat.io",
            "registry.gitlab.com",
            "mcr.microsoft.com",
            "docker.elastic.co",
            "*.azurecr.io",
        ])
    }

    #[test]
    fn look_alike_hosts_are_found_on_their_main_label() {
        let h = hosts();
        let cases = [
            ("docker.i0", "docker.io"),
            ("docker.corn", "hub.docker.com"),
            ("dokcer.io", "docker.io"),
            ("dockerr.io", "docker.io"),
            ("dockerhub.io", "docker.io"),
            ("crg.dev", "cgr.dev"),
            ("lcsr.io", "lscr.io"),
            ("nvrc.io", "nvcr.io"),
            ("quai.io", "quay.io"),
            ("regsitry.k8s.io", "registry.k8s.io"),
            ("registry.k8s.i0", "registry.k8s.io"),
            ("registry.gitlab.corn", "registry.gitlab.com"),
            ("mcr.microsoft.corn", "mcr.microsoft.com"),
            ("docker.elastlc.co", "docker.elastic.co"),
            ("ghcr.io.example.net", "ghcr.io"),
            ("acme.azurcr.io", "acme.azurecr.io"),
            ("ghcrio.com", "ghcr.io"),
            ("registry.k8.io", "registry.k8s.io"),
            ("mcr.microsoft.co", "mcr.microsoft.com"),
        ];
        for (host, want) in cases {
            assert!(!h.is_known(host), "{host}");
            let m = h.lookalike(host);
            assert_eq!(m.map(|m| m.target), Some(want.to_owned()), "{host}");
        }
    }

    #[test]
    fn unrelated_and_same_owner_hosts_are_not_look_alikes() {
        let h = hosts();
        for host in [
            "registry.redict.io",
            "registry.example.com",
            "harbor.corp.internal",
            "localhost:5000",
            "10.0.0.7:5000",
            "registry-sandbox.k8s.io",
            "docker.com",
            "k3s.io",
        ] {
            assert_eq!(h.lookalike(host), None, "{host}");
        }
        for host in ["us.gcr.io", "acme.azurecr.io", "docker.io", "ghcr.io:443"] {
            assert!(h.is_known(host), "{host}");
        }
    }
}
