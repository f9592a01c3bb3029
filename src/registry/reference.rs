//! Repository names and manifest references, parsed with the OCI distribution grammar.
//!
//! Parsing happens once at the edge (the router); everything after works with these types, so a
//! malformed name can never reach the upstream client or the audit log.

use std::fmt;

use super::digest::{Digest, DigestError};

/// Longest repository name pullgate accepts (the distribution spec suggests 255 with the host).
const MAX_NAME_LEN: usize = 255;
/// Tags are at most 128 characters (OCI distribution spec).
const MAX_TAG_LEN: usize = 128;

/// A repository path such as `library/nginx` or `org/team/app`, without a registry host.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository(String);

/// What a manifest request names: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

/// A validated tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("repository name {0:?} does not match the OCI name grammar")]
    InvalidName(String),
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    NameTooLong,
    #[error("tag {0:?} does not match the OCI tag grammar")]
    InvalidTag(String),
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
}

// === impl Repository ===

impl Repository {
    /// Parses `path-component ("/" path-component)*` where a component is
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.len() > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong);
        }
        if s.is_empty() || !s.split('/').all(is_path_component) {
            return Err(ReferenceError::InvalidName(s.to_owned()));
        }
        Ok(Repository(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Number of `/`-separated components.
    pub fn components(&self) -> usize {
        self.0.split('/').count()
    }

    /// `library/<name>` for a one-component name: Docker Hub's official-image namespace.
    pub fn in_library(&self) -> Repository {
        Repository(format!("library/{}", self.0))
    }
}

/// One path component: alphanumeric runs joined by a single `.`, one or two `_`, or any number
/// of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

// === impl Tag ===

impl Tag {
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let b = s.as_bytes();
        let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
        let ok = !b.is_empty()
            && b.len() <= MAX_TAG_LEN
            && word(b[0])
            && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-');
        if ok {
            Ok(Tag(s.to_owned()))
        } else {
            Err(ReferenceError::InvalidTag(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

// === impl Reference ===

impl Reference {
    /// A reference containing `:` is a digest, anything else a tag (tags cannot contain `:`).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(Tag::parse(s)?))
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_from_the_grammar() {
        for name in [
            "nginx",
            "library/nginx",
            "a/b/c/d",
            "my-app",
            "my--app",
            "my_app",
            "my__app",
            "my.app",
            "0",
            "ghcr-io/x9",
        ] {
            assert!(Repository::parse(name).is_ok(), "{name} rejected");
        }
    }

    #[test]
    fn rejects_names_outside_the_grammar() {
        for name in [
            "", "Nginx", "/nginx", "nginx/", "a//b", "-a", "a-", "a___b", "a..b", "a._b", "a:b",
            "a b", "..", "a/../b", "ä",
        ] {
            assert!(Repository::parse(name).is_err(), "{name:?} accepted");
        }
        assert_eq!(
            Repository::parse(&"a".repeat(256)),
            Err(ReferenceError::NameTooLong)
        );
    }

    #[test]
    fn tags_follow_the_grammar() {
        for tag in ["latest", "1.27", "v1.2.3-rc.1", "_x", "A_b-C.d"] {
            assert!(Tag::parse(tag).is_ok(), "{tag} rejected");
        }
        let too_long = "a".repeat(129);
        for tag in ["", ".x", "-x", "a/b", "a:b", "a b", too_long.as_str()] {
            assert!(Tag::parse(tag).is_err(), "{tag:?} accepted");
        }
        assert!(Tag::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn references_with_a_colon_are_digests() {
        let d = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(Reference::parse(&d), Ok(Reference::Digest(_))));
        assert!(matches!(Reference::parse("1.0"), Ok(Reference::Tag(_))));
        assert!(Reference::parse("sha256:zz").is_err());
    }

    #[test]
    fn one_component_names_go_to_library() {
        let r = Repository::parse("nginx").unwrap();
        assert_eq!(r.components(), 1);
        assert_eq!(r.in_library().as_str(), "library/nginx");
    }
}
