//! Name resolution (design.md §2): which upstream registry and repository a client's request
//! means, from `?ns=`, a registry-prefixed path, or the default registry, with Docker Hub's
//! `library/` rule. A registry that is not configured is refused: pullgate is never an open proxy.

use std::collections::HashMap;
use std::sync::Arc;

use super::client::Upstream;
use super::reference::{ReferenceError, Repository};
use crate::config::{looks_like_host, Config};

/// A request's upstream target.
#[derive(Clone)]
pub struct Target {
    pub upstream: Arc<Upstream>,
    pub repository: Repository,
    /// The normalised image name `registry/repository` that rules, audit and typosquat see.
    pub image: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("registry not allowed: {0} is not a configured registry")]
    RegistryNotAllowed(String),
    #[error("registry not allowed: no default registry is configured, so names must start with a registry host")]
    NoDefault,
    #[error(transparent)]
    InvalidName(#[from] ReferenceError),
}

/// Maps registry names and aliases to their upstream clients.
pub struct Resolver {
    by_host: HashMap<String, Arc<Upstream>>,
    default: Option<Arc<Upstream>>,
}

// === impl Resolver ===

impl Resolver {
    pub fn new(upstreams: &[Arc<Upstream>]) -> Resolver {
        let mut by_host = HashMap::new();
        let mut default = None;
        for u in upstreams {
            let c = u.config();
            by_host.insert(c.name.clone(), u.clone());
            for a in &c.aliases {
                by_host.insert(a.clone(), u.clone());
            }
            if c.default {
                default = Some(u.clone());
            }
        }
        Resolver { by_host, default }
    }

    /// Builds the upstream clients for every configured registry.
    pub fn from_config(config: &Config) -> Result<Resolver, crate::registry::UpstreamError> {
        let ups = config
            .registries
            .iter()
            .map(|r| Upstream::new(Arc::new(r.clone())).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Resolver::new(&ups))
    }

    /// Resolves the `<name>` of a `/v2/<name>/...` request, with containerd's `?ns=` if present.
    pub fn resolve(&self, name: &str, ns: Option<&str>) -> Result<Target, ResolveError> {
        let (upstream, rest) = match ns {
            Some(host) => (self.lookup(host)?, name),
            None => match name.split_once('/') {
                Some((first, rest)) if self.by_host.contains_key(first) => {
                    (self.lookup(first)?, rest)
                }
                Some((first, _)) if looks_like_host(first) => {
                    return Err(ResolveError::RegistryNotAllowed(first.to_owned()))
                }
                _ => (self.default.clone().ok_or(ResolveError::NoDefault)?, name),
            },
        };
        let mut repository = Repository::parse(rest)?;
        if upstream.config().is_docker_hub() && repository.components() == 1 {
            repository = repository.in_library();
        }
        let image = format!("{}/{}", upstream.name(), repository);
        Ok(Target {
            upstream,
            repository,
            image,
        })
    }

    fn lookup(&self, host: &str) -> Result<Arc<Upstream>, ResolveError> {
        self.by_host
            .get(host)
            .cloned()
            .ok_or_else(|| ResolveError::RegistryNotAllowed(host.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        let text = r#"
[[registry]]
name = "docker.io"
url = "https://registry-1.docker.io"
aliases = ["index.docker.io"]
default = true

[[registry]]
name = "ghcr.io"
url = "https://ghcr.io"

[[registry]]
name = "127.0.0.1:5001"
url = "http://127.0.0.1:5001"
"#;
        let cfg = Config::parse(text, "t", None).unwrap();
        Resolver::from_config(&cfg).unwrap()
    }

    fn image(r: &Resolver, name: &str, ns: Option<&str>) -> Result<String, ResolveError> {
        r.resolve(name, ns).map(|t| t.image)
    }

    #[test]
    fn resolves_the_four_ways_clients_name_images() {
        let r = resolver();
        let cases = [
            ("nginx", None, "docker.io/library/nginx"),
            ("library/nginx", None, "docker.io/library/nginx"),
            ("bitnami/redis", None, "docker.io/bitnami/redis"),
            ("nginx", Some("docker.io"), "docker.io/library/nginx"),
            (
                "library/nginx",
                Some("index.docker.io"),
                "docker.io/library/nginx",
            ),
            ("org/app", Some("ghcr.io"), "ghcr.io/org/app"),
            ("ghcr.io/org/app", None, "ghcr.io/org/app"),
            ("docker.io/nginx", None, "docker.io/library/nginx"),
            (
                "index.docker.io/library/nginx",
                None,
                "docker.io/library/nginx",
            ),
            (
                "127.0.0.1:5001/library/hello",
                None,
                "127.0.0.1:5001/library/hello",
            ),
            // Only Docker Hub has the library/ rule.
            ("ghcr.io/app", None, "ghcr.io/app"),
        ];
        for (name, ns, want) in cases {
            assert_eq!(image(&r, name, ns).as_deref(), Ok(want), "{name} ns={ns:?}");
        }
    }

    #[test]
    fn unconfigured_registries_are_not_allowed() {
        let r = resolver();
        assert_eq!(
            image(&r, "quay.io/org/app", None),
            Err(ResolveError::RegistryNotAllowed("quay.io".into()))
        );
        assert_eq!(
            image(&r, "org/app", Some("evil.example")),
            Err(ResolveError::RegistryNotAllowed("evil.example".into()))
        );
        assert_eq!(
            image(&r, "localhost/app", None),
            Err(ResolveError::RegistryNotAllowed("localhost".into()))
        );
    }

    #[test]
    fn invalid_names_are_rejected() {
        let r = resolver();
        for bad in ["", "Nginx", "ghcr.io/", "a//b", "docker.io/UPPER"] {
            assert!(
                matches!(image(&r, bad, None), Err(ResolveError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn without_default_names_need_a_registry() {
        let text = "[[registry]]\nname = \"ghcr.io\"\nurl = \"https://ghcr.io\"\n";
        let cfg = Config::parse(text, "t", None).unwrap();
        let r = Resolver::from_config(&cfg).unwrap();
        assert_eq!(image(&r, "nginx", None), Err(ResolveError::NoDefault));
    }
}
