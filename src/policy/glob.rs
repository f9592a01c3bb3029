//! Image-name globs for `[[rule]] images` (design.md §5): matched component by component on the
//! normalised name `registry/repository`. `*` matches within one component, `**` matches any
//! number of whole components (including none). Everything else matches literally.

use std::fmt;

/// A compiled `images` pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// `**`: zero or more whole components.
    AnyComponents,
    /// A component pattern: literal pieces separated by `*`.
    Component(Vec<String>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GlobError {
    #[error("image pattern {0:?} is empty or has an empty component")]
    Empty(String),
    #[error("image pattern {0:?}: '**' must be a whole component")]
    PartialDoubleStar(String),
}

// === impl Glob ===

impl Glob {
    pub fn parse(text: &str) -> Result<Glob, GlobError> {
        let mut parts = Vec::new();
        for c in text.split('/') {
            if c.is_empty() {
                return Err(GlobError::Empty(text.to_owned()));
            }
            if c == "**" {
                // `**/**` means the same as `**`; keeping one avoids exponential matching.
                if parts.last() != Some(&Part::AnyComponents) {
                    parts.push(Part::AnyComponents);
                }
            } else if c.contains("**") {
                return Err(GlobError::PartialDoubleStar(text.to_owned()));
            } else {
                parts.push(Part::Component(c.split('*').map(str::to_owned).collect()));
            }
        }
        Ok(Glob {
            text: text.to_owned(),
            parts,
        })
    }

    /// Whether the normalised image name matches.
    pub fn matches(&self, name: &str) -> bool {
        let comps: Vec<&str> = name.split('/').collect();
        match_parts(&self.parts, &comps)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn match_parts(parts: &[Part], comps: &[&str]) -> bool {
    match parts.split_first() {
        None => comps.is_empty(),
        Some((Part::AnyComponents, rest)) => {
            (0..=comps.len()).any(|skip| match_parts(rest, &comps[skip..]))
        }
        Some((Part::Component(pieces), rest)) => match comps.split_first() {
            Some((c, more)) => match_component(pieces, c) && match_parts(rest, more),
            None => false,
        },
    }
}

/// Matches one component against literal pieces joined by `*` (each `*` matching any run of
/// characters inside the component). A component is never empty, so a lone `*` never matches
/// "nothing".
fn match_component(pieces: &[String], comp: &str) -> bool {
    if comp.is_empty() {
        return false;
    }
    let (first, rest) = match pieces.split_first() {
        Some(x) => x,
        None => return false,
    };
    if rest.is_empty() {
        return comp == first;
    }
    let Some(mut s) = comp.strip_prefix(first.as_str()) else {
        return false;
    };
    let (last, middle) = match rest.split_last() {
        Some(x) => x,
        None => return false,
    };
    for piece in middle {
        match s.find(piece.as_str()) {
            Some(i) => s = &s[i + piece.len()..],
            None => return false,
        }
    }
    s.len() >= last.len() && s.ends_with(last.as_str())
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, name: &str) -> bool {
        Glob::parse(p).unwrap().matches(name)
    }

    #[test]
    fn glob_table() {
        let cases = [
            ("**", "docker.io/library/nginx", true),
            ("docker.io/library/*", "docker.io/library/nginx", true),
            ("docker.io/library/*", "docker.io/library/a/b", false),
            ("docker.io/library/*", "docker.io/library", false),
            ("docker.io/*", "docker.io/library/nginx", false),
            ("docker.io/**", "docker.io/library/nginx", true),
            ("docker.io/**", "docker.io/a/b/c/d", true),
            ("docker.io/**", "ghcr.io/docker.io/x", false),
            ("**/nginx", "docker.io/library/nginx", true),
            ("**/nginx", "docker.io/library/nginx-x", false),
            ("docker.io/**/nginx", "docker.io/nginx", true),
            ("ghcr.io/acme/app-*", "ghcr.io/acme/app-web", true),
            ("ghcr.io/acme/app-*", "ghcr.io/acme/app-", true),
            ("ghcr.io/acme/app-*", "ghcr.io/acme/app", false),
            ("ghcr.io/acme/*-svc", "ghcr.io/acme/a-svc", true),
            ("ghcr.io/acme/*-svc", "ghcr.io/acme/-svc", true),
            ("ghcr.io/acme/*-svc", "ghcr.io/acme/svc", false),
            ("ghcr.io/*/*", "ghcr.io/acme/app", true),
            ("ghcr.io/*/*", "ghcr.io/acme", false),
            ("*.io/**", "quay.io/x/y", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("docker.io/library/nginx", "docker.io/library/nginx", true),
            ("docker.io/library/nginx", "docker.io/library/nginx2", false),
            ("*", "docker.io", true),
            ("*", "docker.io/x", false),
        ];
        for (p, name, want) in cases {
            assert_eq!(m(p, name), want, "{p} vs {name}");
        }
    }

    #[test]
    fn star_never_matches_an_empty_component() {
        assert!(!m("docker.io/library/*", "docker.io/library/"));
        assert!(!m("docker.io/*/nginx", "docker.io//nginx"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(Glob::parse("").is_err());
        assert!(Glob::parse("a//b").is_err());
        assert!(Glob::parse("/a").is_err());
        assert!(Glob::parse("a/**b").is_err());
        assert!(Glob::parse("a/***").is_err());
    }

    #[test]
    fn repeated_double_star_collapses() {
        let g = Glob::parse("**/**/**/x").unwrap();
        assert_eq!(g.parts.len(), 2);
        assert!(g.matches("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/x"));
    }
}
