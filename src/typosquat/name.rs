//! Image names as the detector sees them: normalising a user-typed reference the way clients
//! do, splitting a normalised name into registry host, namespace and repository, splitting a
//! host into labels, and folding non-ASCII look-alikes to ASCII.
//!
//! This is string work only; it does not validate names against the OCI grammar (the router
//! does that), because a typosquat check must still say something useful about a name the
//! grammar would refuse, such as one with a Cyrillic `а`.

use crate::config::looks_like_host;

/// Docker Hub's canonical host name.
pub const DOCKER_HUB: &str = "docker.io";

/// Other spellings of Docker Hub's host, treated as `docker.io`.
const DOCKER_HUB_ALIASES: [&str; 3] = [
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Normalises a reference the way clients do: strips `:tag` and `@digest`, adds `docker.io`
/// when the first component is not a host, and `library/` to one-component Docker Hub names.
///
/// `nginx:1.27` → `docker.io/library/nginx`; `bitnami/redis` → `docker.io/bitnami/redis`;
/// `ghcr.io/org/app@sha256:…` → `ghcr.io/org/app`.
pub fn normalize(reference: &str) -> String {
    let name = reference.split_once('@').map_or(reference, |(n, _)| n);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    let name = match name[last..].rfind(':') {
        Some(i) => &name[..last + i],
        None => name,
    };
    let (host, rest) = match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => (canonical_host(first), rest),
        _ => (DOCKER_HUB, name),
    };
    if host == DOCKER_HUB && !rest.contains('/') {
        format!("{host}/library/{rest}")
    } else {
        format!("{host}/{rest}")
    }
}

/// `docker.io` for Docker Hub's aliases, the host itself otherwise.
pub fn canonical_host(host: &str) -> &str {
    if DOCKER_HUB_ALIASES.contains(&host) {
        DOCKER_HUB
    } else {
        host
    }
}

/// A normalised name split into its parts. The namespace is every component between the host
/// and the last one (empty for a one-component repository on a registry other than Docker
/// Hub); on Docker Hub it is the first component of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    pub host: &'a str,
    pub namespace: &'a str,
    pub repo: &'a str,
}

impl<'a> Parts<'a> {
    /// Splits `name`, which should be normalised. As in [`normalize`], a name without a host
    /// is a Docker Hub name and a one-component Docker Hub name is `library/<name>`.
    pub fn split(name: &'a str) -> Parts<'a> {
        let (host, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (canonical_host(first), rest),
            _ => (DOCKER_HUB, name),
        };
        let (namespace, repo) = match path.rsplit_once('/') {
            Some((ns, repo)) => (ns, repo),
            None if host == DOCKER_HUB => ("library", path),
            None => ("", path),
        };
        Parts {
            host,
            namespace,
            repo,
        }
    }

    /// The full normalised name these parts stand for.
    pub fn join(&self) -> String {
        join(self.host, self.namespace, self.repo)
    }
}

/// `host/namespace/repo`, leaving out an empty namespace.
pub fn join(host: &str, namespace: &str, repo: &str) -> String {
    if namespace.is_empty() {
        format!("{host}/{repo}")
    } else {
        format!("{host}/{namespace}/{repo}")
    }
}

/// A registry host split around its main label: `registry.k8s.io` is sub `registry`, main
/// `k8s`, suffix `io`. The main label is the one a registrant chooses (the label before the
/// public suffix); a look-alike host is judged mainly on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLabels<'a> {
    pub sub: &'a str,
    pub main: &'a str,
    pub suffix: &'a str,
}

/// Public suffixes with two labels that registries are likely to sit under.
const TWO_LABEL_SUFFIXES: [&str; 12] = [
    "co.uk", "org.uk", "ac.uk", "com.au", "net.au", "co.jp", "com.cn", "net.cn", "com.br", "co.kr",
    "co.in", "com.tw",
];

impl<'a> HostLabels<'a> {
    /// Splits `host` (a `:port` is ignored). `None` for `localhost`, IP addresses and names
    /// without a dot, which have no main label to imitate.
    pub fn split(host: &'a str) -> Option<HostLabels<'a>> {
        let host = host.split_once(':').map_or(host, |(h, _)| h);
        if !host.contains('.') || host.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return None;
        }
        let two_label = TWO_LABEL_SUFFIXES.iter().find(|s| {
            host.len() > s.len()
                && host.ends_with(*s)
                && host.as_bytes()[host.len() - s.len() - 1] == b'.'
        });
        let suffix_start = match two_label {
            Some(s) => host.len() - s.len(),
            None => host.rfind('.').map_or(0, |i| i + 1),
        };
        let suffix = &host[suffix_start..];
        let before = host[..suffix_start].trim_end_matches('.');
        if before.is_empty() {
            return None;
        }
        let (sub, main) = match before.rsplit_once('.') {
            Some((sub, main)) => (sub, main),
            None => ("", before),
        };
        Some(HostLabels { sub, main, suffix })
    }
}

/// Folds a non-ASCII name to the ASCII it imitates: Cyrillic and Greek letters that look like
/// Latin ones, dotless i, full-width forms and accented Latin letters. Anything else becomes
/// `?`, which no reference name contains.
pub fn fold_non_ascii(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii() { c } else { fold_char(c) })
        .collect()
}

fn fold_char(c: char) -> char {
    let code = c as u32;
    // Full-width ASCII (U+FF01..U+FF5E) sits at a fixed offset from ASCII.
    if (0xff01..=0xff5e).contains(&code) {
        return char::from_u32(code - 0xff01 + 0x21).map_or('?', |a| a.to_ascii_lowercase());
    }
    match c {
        'а' | 'α' | 'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' | 'ā' => 'a',
        'Ь' | 'ь' | 'в' => 'b',
        'с' | 'ç' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'ε' | 'è' | 'é' | 'ê' | 'ë' | 'ē' => 'e',
        'ɡ' => 'g',
        'һ' => 'h',
        'і' | 'ї' | 'ι' | 'ı' | 'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ј' | 'ϳ' => 'j',
        'к' | 'κ' => 'k',
        'ⅼ' | 'ł' | 'ӏ' => 'l',
        'м' => 'm',
        'п' | 'ñ' | 'ń' => 'n',
        'о' | 'ο' | 'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'ø' | 'ō' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' | 'ſ' | 'ś' | 'š' => 's',
        'т' | 'τ' => 't',
        'υ' | 'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ν' | 'ѵ' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'ý' | 'ÿ' => 'y',
        'ż' | 'ž' => 'z',
        '‐' | '‑' | '‒' | '–' | '—' | '－' => '-',
        _ => '?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_clients() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("nginx", "docker.io/library/nginx"),
            ("nginx:1.27", "docker.io/library/nginx"),
            ("bitnami/redis", "docker.io/bitnami/redis"),
            ("bitnami/redis:7", "docker.io/bitnami/redis"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("index.docker.io/library/alpine", "docker.io/library/alpine"),
            (
                "registry-1.docker.io/library/ubuntu",
                "docker.io/library/ubuntu",
            ),
            ("ghcr.io/org/app", "ghcr.io/org/app"),
            ("ghcr.io/org/app:v1", "ghcr.io/org/app"),
            ("localhost:5000/app", "localhost:5000/app"),
            ("registry.test:5000/app:2", "registry.test:5000/app"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
        }
        assert_eq!(normalize(&format!("nginx@{d}")), "docker.io/library/nginx");
    }

    #[test]
    fn splits_into_host_namespace_and_repository() {
        let cases = [
            ("docker.io/library/nginx", ("docker.io", "library", "nginx")),
            ("docker.io/bitnami/redis", ("docker.io", "bitnami", "redis")),
            ("nginx", ("docker.io", "library", "nginx")),
            (
                "index.docker.io/library/alpine",
                ("docker.io", "library", "alpine"),
            ),
            ("registry.k8s.io/pause", ("registry.k8s.io", "", "pause")),
            (
                "registry.k8s.io/ingress-nginx/controller",
                ("registry.k8s.io", "ingress-nginx", "controller"),
            ),
            (
                "gcr.io/google.com/cloudsdktool/cloud-sdk",
                ("gcr.io", "google.com/cloudsdktool", "cloud-sdk"),
            ),
        ];
        for (name, (host, namespace, repo)) in cases {
            let want = Parts {
                host,
                namespace,
                repo,
            };
            assert_eq!(Parts::split(name), want, "{name}");
        }
    }

    #[test]
    fn host_labels_find_the_main_label() {
        let l = |h| HostLabels::split(h).map(|l| (l.sub, l.main, l.suffix));
        assert_eq!(l("docker.io"), Some(("", "docker", "io")));
        assert_eq!(l("registry.k8s.io"), Some(("registry", "k8s", "io")));
        assert_eq!(l("docker.elastic.co"), Some(("docker", "elastic", "co")));
        assert_eq!(
            l("registry.access.redhat.com"),
            Some(("registry.access", "redhat", "com"))
        );
        assert_eq!(
            l("registry.example.co.uk"),
            Some(("registry", "example", "co.uk"))
        );
        assert_eq!(l("registry.test:5000"), Some(("", "registry", "test")));
        assert_eq!(l("localhost:5000"), None);
        assert_eq!(l("10.0.0.1:5000"), None);
    }

    #[test]
    fn folds_look_alike_letters_to_ascii() {
        assert_eq!(fold_non_ascii("аlpine"), "alpine");
        assert_eq!(fold_non_ascii("ngіnx"), "nginx");
        assert_eq!(fold_non_ascii("grafаna/grafana"), "grafana/grafana");
        assert_eq!(fold_non_ascii("ｎｇｉｎｘ"), "nginx");
        assert_eq!(fold_non_ascii("n☃"), "n?");
    }
}
