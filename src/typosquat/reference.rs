//! The reference set: the names the detector compares with. It is built from the data files
//! under `data/typosquat/` (embedded in the binary) and from the text of `[typosquat] known`
//! files, and then handed to [`super::Detector::new`], which indexes it.
//!
//! Parsing is pure: the caller reads files (see [`super::load`]).

use std::collections::{BTreeMap, BTreeSet};

use super::name::{normalize, Parts, DOCKER_HUB};
use super::TyposquatError;
use crate::config::looks_like_host;

const OFFICIAL: &str = include_str!("../../data/typosquat/official.txt");
const NAMESPACES: &str = include_str!("../../data/typosquat/namespaces.txt");
const REPOSITORIES: &str = include_str!("../../data/typosquat/repositories.txt");
const REGISTRIES: &str = include_str!("../../data/typosquat/registries.txt");

/// Known names, grouped the way the detector compares them.
#[derive(Debug, Clone, Default)]
pub struct ReferenceSet {
    /// Official image names (`nginx` for `docker.io/library/nginx`).
    pub(super) official: BTreeSet<String>,
    /// Registry hosts; `*.example.com` for every host under `example.com`.
    pub(super) hosts: BTreeSet<String>,
    /// Known namespaces per registry host.
    pub(super) namespaces: BTreeMap<String, BTreeSet<String>>,
    /// Known repositories per (registry host, namespace).
    pub(super) repositories: BTreeMap<(String, String), BTreeSet<String>>,
}

/// What a line of a list names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// `official.txt`: official image names.
    Official,
    /// `namespaces.txt`: Docker Hub namespaces.
    Namespace,
    /// `registries.txt`: registry hosts.
    Registry,
    /// `repositories.txt` and `known` files: image names, or (in `known` files) a host alone
    /// or a namespace ending in `/`.
    Image,
}

// === impl ReferenceSet ===

impl ReferenceSet {
    /// The built-in set: Docker Hub official images, well-known publisher namespaces, popular
    /// namespaced repositories and registry hosts.
    pub fn builtin() -> ReferenceSet {
        let mut set = ReferenceSet::default();
        for (kind, text) in Self::builtin_lists() {
            // The embedded lists are checked by a unit test; a bad line would be skipped.
            for (_, line) in lines(text) {
                let _ = set.add_line(kind, line);
            }
        }
        set
    }

    fn builtin_lists() -> [(LineKind, &'static str); 4] {
        [
            (LineKind::Official, OFFICIAL),
            (LineKind::Namespace, NAMESPACES),
            (LineKind::Image, REPOSITORIES),
            (LineKind::Registry, REGISTRIES),
        ]
    }

    /// Adds the names of a `known` file: one per line, `#` comments. A line is an image name
    /// as a client would write it (`nginx`, `acme/app`, `registry.acme.test/team/app`; tags and
    /// digests are ignored), a registry host alone (`registry.acme.test`, `*.acme.test`), or a
    /// namespace ending in `/` (`acme/`, `ghcr.io/acme/`).
    pub fn add_known(&mut self, text: &str) -> Result<(), TyposquatError> {
        for (number, line) in lines(text) {
            self.add_line(LineKind::Image, line).map_err(|reason| {
                TyposquatError::InvalidKnownLine {
                    line: number,
                    text: line.to_owned(),
                    reason,
                }
            })?;
        }
        Ok(())
    }

    /// Number of names of each kind: official images, hosts, namespaces, repositories.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.official.len(),
            self.hosts.len(),
            self.namespaces.values().map(BTreeSet::len).sum(),
            self.repositories.values().map(BTreeSet::len).sum(),
        )
    }

    fn add_line(&mut self, kind: LineKind, line: &str) -> Result<(), &'static str> {
        let line = line.to_ascii_lowercase();
        match kind {
            LineKind::Official => {
                check_component(&line)?;
                self.official.insert(line);
            }
            LineKind::Namespace => {
                check_component(&line)?;
                self.namespace(DOCKER_HUB, &line);
            }
            LineKind::Registry => self.host(&line)?,
            LineKind::Image => self.image(&line)?,
        }
        Ok(())
    }

    fn host(&mut self, host: &str) -> Result<(), &'static str> {
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if !looks_like_host(bare) || host.contains('/') {
            return Err("not a registry host");
        }
        check_host(bare)?;
        self.hosts.insert(host.to_owned());
        Ok(())
    }

    fn namespace(&mut self, host: &str, namespace: &str) {
        self.namespaces
            .entry(host.to_owned())
            .or_default()
            .insert(namespace.to_owned());
    }

    fn image(&mut self, line: &str) -> Result<(), &'static str> {
        if !line.contains('/') {
            if line.starts_with("*.") || looks_like_host(line) {
                return self.host(line);
            }
        } else if let Some(prefix) = line.strip_suffix('/') {
            // A namespace: `acme/` or `ghcr.io/acme/`; `ghcr.io/` is just a host.
            let (host, namespace) = match prefix.split_once('/') {
                Some((first, rest)) if looks_like_host(first) => (first, rest),
                None if looks_like_host(prefix) => return self.host(prefix),
                _ => (DOCKER_HUB, prefix),
            };
            check_host(host)?;
            namespace.split('/').try_for_each(check_component)?;
            self.hosts.insert(host.to_owned());
            self.namespace(host, namespace);
            return Ok(());
        }
        let normalized = normalize(line);
        let parts = Parts::split(&normalized);
        check_host(parts.host)?;
        parts
            .namespace
            .split('/')
            .filter(|c| !c.is_empty())
            .chain([parts.repo])
            .try_for_each(check_component)?;
        if parts.host == DOCKER_HUB && parts.namespace == "library" {
            self.official.insert(parts.repo.to_owned());
            return Ok(());
        }
        self.hosts.insert(parts.host.to_owned());
        if !parts.namespace.is_empty() {
            self.namespace(parts.host, parts.namespace);
        }
        self.repositories
            .entry((parts.host.to_owned(), parts.namespace.to_owned()))
            .or_default()
            .insert(parts.repo.to_owned());
        Ok(())
    }
}

/// Non-empty, non-comment lines with their 1-based numbers, comments and blanks trimmed.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.split_once('#').map_or(l, |(before, _)| before).trim();
        (!l.is_empty()).then_some((i + 1, l))
    })
}

/// A path component: lowercase letters, digits and separators, starting and ending with a
/// letter or digit (the OCI grammar, slightly relaxed about separator runs).
fn check_component(c: &str) -> Result<(), &'static str> {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if ok_char(f) && ok_char(l) => {}
        _ => return Err("a name component must start and end with a letter or digit"),
    }
    if b.iter()
        .all(|&x| ok_char(x) || matches!(x, b'-' | b'_' | b'.'))
    {
        Ok(())
    } else {
        Err("a name may only contain a-z, 0-9, '-', '_', '.' and '/'")
    }
}

/// A registry host: DNS labels and an optional port.
fn check_host(host: &str) -> Result<(), &'static str> {
    let (name, port) = host
        .split_once(':')
        .map_or((host, None), |(h, p)| (h, Some(p)));
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !name.split('.').all(label_ok) {
        return Err("not a valid registry host name");
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err("the registry port is not a number");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lists_have_no_invalid_lines() {
        let mut set = ReferenceSet::default();
        for (kind, text) in ReferenceSet::builtin_lists() {
            for (number, line) in lines(text) {
                assert_eq!(
                    set.add_line(kind, line),
                    Ok(()),
                    "{kind:?} line {number}: {line}"
                );
            }
        }
    }

    #[test]
    fn builtin_set_is_generous() {
        let (official, hosts, namespaces, repositories) = ReferenceSet::builtin().counts();
        assert!(official >= 180, "{official} official images");
        assert!(hosts >= 50, "{hosts} registry hosts");
        assert!(namespaces >= 500, "{namespaces} namespaces");
        assert!(repositories >= 700, "{repositories} repositories");
    }

    #[test]
    fn known_files_add_images_namespaces_and_hosts() {
        let mut set = ReferenceSet::default();
        set.add_known(
            "# our images\nacme/app:1.0\nregistry.acme.test:5000/team/tool\nacme-tools/\n\
             ghcr.io/acme/\n*.acme.internal\nmy-official-thing   # trailing comment\n",
        )
        .unwrap();
        assert!(set.official.contains("my-official-thing"));
        assert!(set.namespaces[DOCKER_HUB].contains("acme"));
        assert!(set.namespaces[DOCKER_HUB].contains("acme-tools"));
        assert!(set.namespaces["ghcr.io"].contains("acme"));
        assert!(set.hosts.contains("registry.acme.test:5000"));
        assert!(set.hosts.contains("*.acme.internal"));
        let key = ("registry.acme.test:5000".to_owned(), "team".to_owned());
        assert!(set.repositories[&key].contains("tool"));
    }

    #[test]
    fn invalid_known_lines_are_reported_with_their_number() {
        let mut set = ReferenceSet::default();
        let err = set.add_known("acme/app\nacme/bad name\n").unwrap_err();
        assert!(
            matches!(err, TyposquatError::InvalidKnownLine { line: 2, .. }),
            "{err}"
        );
        assert!(set.add_known("-acme/app").is_err());
        assert!(set.add_known("registry.acme.test:port/app").is_err());
    }
}
