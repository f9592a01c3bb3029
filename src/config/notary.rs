//! Settings of a `kind = "notary"` trust source (Docker Content Trust, trust-formats.md §3).

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use url::Url;

use super::{file, invalid, load_certs, opt_duration, reject_foreign_keys, server_url};
use super::{
    Builder, ConfigError, Credentials, RegistryConfig, ServerConfig, TrustConfig, TrustSettings,
};

/// The roles whose targets sign tags when `roles` is not given: the Docker CLI's order.
pub const DEFAULT_ROLES: [&str; 2] = ["targets/releases", "targets"];
/// How long verified trust data is reused before the notary server is asked again. Short,
/// so a re-signed or removed tag takes effect soon; metadata expiry still bounds it.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct NotaryConfig {
    /// The notary server, e.g. `https://notary.example.internal:4443`.
    pub server: Url,
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// For the server's token service; anonymous tokens are asked for otherwise.
    pub credentials: Option<Credentials>,
    pub root: NotaryRoot,
    /// Roles that may sign tags, searched in this order.
    pub roles: Vec<String>,
    /// Registry name → GUN prefix: images of that registry have GUN `prefix/repository`
    /// instead of `registry/repository`.
    pub gun_prefixes: Vec<(String, String)>,
    pub cache_ttl: Duration,
}

/// How the first root of each GUN is trusted.
#[derive(Debug, Clone)]
pub enum NotaryRoot {
    /// Root key ids (64 hex digits); the root must be signed by pinned keys.
    Keys(Vec<String>),
    /// A known `root.json`, read when the source starts.
    File(PathBuf),
    /// The first root seen for a GUN, remembered under `[server] state_dir`.
    FirstUse,
}

// === impl Builder ===

impl Builder<'_> {
    pub(super) fn notary_settings(&self, t: &file::Trust) -> Result<TrustSettings, ConfigError> {
        let ctx = |msg: &str| invalid(format!("trust {:?} (kind notary): {msg}", t.name));
        reject_foreign_keys(
            t,
            &[
                "server",
                "ca_file",
                "root_keys",
                "root_file",
                "trust_on_first_use",
                "roles",
                "gun_prefixes",
                "cache_ttl",
                "username_env",
                "username_file",
                "password_env",
                "password_file",
            ],
        )
        .map_err(|m| ctx(&m))?;
        let server = t
            .server
            .as_deref()
            .ok_or_else(|| ctx("needs server = \"https://…\", the notary server"))?;
        let server = server_url(server).map_err(|e| ctx(&format!("server {e}")))?;
        let extra_roots = match &t.ca_file {
            Some(p) => load_certs(&self.path(p)).map_err(|e| ctx(&format!("ca_file {e}")))?,
            None => Vec::new(),
        };
        let credentials = self
            .credentials(
                (t.username_env.as_deref(), t.username_file.as_deref()),
                (t.password_env.as_deref(), t.password_file.as_deref()),
            )
            .map_err(|e| ctx(&e))?;
        let root =
            match (&t.root_keys, &t.root_file, t.trust_on_first_use) {
                (Some(keys), None, None | Some(false)) => {
                    NotaryRoot::Keys(root_key_ids(keys).map_err(|e| ctx(&e))?)
                }
                (None, Some(file), None | Some(false)) => NotaryRoot::File(self.path(file)),
                (None, None, Some(true)) => NotaryRoot::FirstUse,
                _ => return Err(ctx(
                    "needs exactly one of root_keys = [\"<key id>\"], root_file = \"root.json\" \
                     and trust_on_first_use = true",
                )),
            };
        let roles = match &t.roles {
            None => DEFAULT_ROLES.iter().map(|r| r.to_string()).collect(),
            Some(r) => roles(r).map_err(|e| ctx(&e))?,
        };
        let mut gun_prefixes = Vec::new();
        for (registry, prefix) in t.gun_prefixes.iter().flatten() {
            if prefix.is_empty()
                || prefix.starts_with('/')
                || prefix.ends_with('/')
                || prefix.contains(char::is_whitespace)
            {
                return Err(ctx(&format!(
                    "gun_prefixes: {prefix:?} for {registry:?} is not a GUN prefix like \"docker.io\""
                )));
            }
            gun_prefixes.push((registry.clone(), prefix.clone()));
        }
        let cache_ttl = opt_duration(
            &format!("trust {:?}: cache_ttl", t.name),
            t.cache_ttl.clone(),
        )?
        .unwrap_or(DEFAULT_CACHE_TTL);
        Ok(TrustSettings::Notary(Box::new(NotaryConfig {
            server,
            extra_roots,
            credentials,
            root,
            roles,
            gun_prefixes,
            cache_ttl,
        })))
    }
}

/// Checks that need the rest of the file: first-use roots are remembered in the state
/// directory, and GUN prefixes name configured registries.
pub(super) fn cross_check(
    trust: &[TrustConfig],
    server: &ServerConfig,
    registries: &[RegistryConfig],
) -> Result<(), ConfigError> {
    for t in trust {
        let TrustSettings::Notary(n) = &t.settings else {
            continue;
        };
        let ctx = |msg: String| invalid(format!("trust {:?} (kind notary): {msg}", t.name));
        if matches!(n.root, NotaryRoot::FirstUse) && server.state_dir.is_none() {
            return Err(ctx(
                "trust_on_first_use needs [server] state_dir, where first-seen roots are kept \
                 (without it a restart would trust whatever root the server then offers)"
                    .into(),
            ));
        }
        for (registry, _) in &n.gun_prefixes {
            if !registries.iter().any(|r| &r.name == registry) {
                return Err(ctx(format!(
                    "gun_prefixes names registry {registry:?}, which is not a configured [[registry]] name"
                )));
            }
        }
    }
    Ok(())
}

/// Key ids as notary prints them: 64 lower-case hex digits.
fn root_key_ids(keys: &[String]) -> Result<Vec<String>, String> {
    if keys.is_empty() {
        return Err("root_keys is empty".into());
    }
    keys.iter()
        .map(|k| {
            let k = k.to_ascii_lowercase();
            if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(k)
            } else {
                Err(format!("root_keys: {k:?} is not a key id (64 hex digits)"))
            }
        })
        .collect()
}

/// Delegation roles are `targets` or `targets/<name>…` (notary's role name grammar).
fn roles(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err("roles is empty".into());
    }
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let grammar = r
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_/".contains(&b));
        let clean = !r.ends_with('/') && !r.contains("//");
        if !grammar || !clean || !(r == "targets" || r.starts_with("targets/")) || r.len() >= 256 {
            return Err(format!(
                "roles: {r:?} is not a targets role (\"targets\" or \"targets/<name>\")"
            ));
        }
        if out.contains(r) {
            return Err(format!("roles: {r:?} is listed twice"));
        }
        out.push(r.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, NotaryRoot, TrustSettings};

    const BASE: &str = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[trust]]\nname = \"dct\"\nkind = \"notary\"\n";
    const KEY: &str = "8a8f0c1e6a1f3b4d2c9e0b7a6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}{extra}"), "test.toml", None).map_err(|e| e.to_string())
    }

    fn notary(c: &Config) -> &crate::config::NotaryConfig {
        match &c.trust[0].settings {
            TrustSettings::Notary(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_to_the_docker_cli_roles_and_a_short_cache() {
        let c = parse(&format!(
            "server = \"https://notary.a.io:4443\"\nroot_keys = [\"{}\"]\n",
            KEY.to_uppercase()
        ))
        .unwrap();
        let n = notary(&c);
        assert_eq!(n.roles, ["targets/releases", "targets"]);
        assert!(matches!(&n.root, NotaryRoot::Keys(k) if k == &[KEY.to_owned()]));
        assert_eq!(n.cache_ttl.as_secs(), 60);
        assert!(n.gun_prefixes.is_empty());
        assert!(n.credentials.is_none());
    }

    #[test]
    fn takes_roles_prefixes_ttl_and_a_root_file() {
        let c = parse(
            "server = \"https://n.io\"\nroot_file = \"root.json\"\nroles = [\"targets\"]\n\
             gun_prefixes = { \"a.io\" = \"docker.io\" }\ncache_ttl = \"5m\"\n",
        )
        .unwrap();
        let n = notary(&c);
        assert_eq!(n.roles, ["targets"]);
        assert!(matches!(&n.root, NotaryRoot::File(p) if p.ends_with("root.json")));
        assert_eq!(
            n.gun_prefixes,
            [("a.io".to_owned(), "docker.io".to_owned())]
        );
        assert_eq!(n.cache_ttl.as_secs(), 300);
    }

    #[test]
    fn bad_settings_are_refused_with_the_key_at_fault() {
        let server = "server = \"https://n.io\"\n";
        let keys = format!("root_keys = [\"{KEY}\"]\n");
        for (extra, want) in [
            (keys.clone(), "needs server"),
            (
                format!("server = \"ftp://n.io\"\n{keys}"),
                "http:// or https://",
            ),
            (server.to_owned(), "exactly one of root_keys"),
            (
                format!("{server}{keys}trust_on_first_use = true\n"),
                "exactly one of root_keys",
            ),
            (format!("{server}root_keys = [\"abc\"]\n"), "not a key id"),
            (format!("{server}root_keys = []\n"), "root_keys is empty"),
            (
                format!("{server}trust_on_first_use = true\n"),
                "needs [server] state_dir",
            ),
            (format!("{server}{keys}roles = []\n"), "roles is empty"),
            (
                format!("{server}{keys}roles = [\"releases\"]\n"),
                "not a targets role",
            ),
            (
                format!("{server}{keys}roles = [\"targets/\"]\n"),
                "not a targets role",
            ),
            (
                format!("{server}{keys}roles = [\"targets\", \"targets\"]\n"),
                "listed twice",
            ),
            (
                format!("{server}{keys}gun_prefixes = {{ \"b.io\" = \"docker.io\" }}\n"),
                "not a configured [[registry]]",
            ),
            (
                format!("{server}{keys}gun_prefixes = {{ \"a.io\" = \"docker.io/\" }}\n"),
                "not a GUN prefix",
            ),
            (format!("{server}{keys}cache_ttl = \"soon\"\n"), "cache_ttl"),
            (
                format!("{server}{keys}username_env = \"PULLGATE_TEST_UNSET_VAR\"\n"),
                "not set",
            ),
            (
                format!("{server}{keys}identities = []\n"),
                "key identities does not apply",
            ),
        ] {
            let err = parse(&extra).unwrap_err();
            assert!(err.contains(want), "{extra:?}: {err:?} lacks {want:?}");
            assert!(
                err.contains("trust \"dct\"") || want == "cache_ttl",
                "{err}"
            );
        }
    }

    #[test]
    fn first_use_is_accepted_with_a_state_dir() {
        let text = format!(
            "[server]\nstate_dir = \"/var/lib/pullgate\"\n{BASE}server = \"https://n.io\"\ntrust_on_first_use = true\n"
        );
        let c = Config::parse(&text, "test.toml", None).unwrap();
        assert!(matches!(notary(&c).root, NotaryRoot::FirstUse));
    }

    #[test]
    fn other_kinds_refuse_notary_keys() {
        let text = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[trust]]\nname = \"k\"\nkind = \"cosign-key\"\nkeys = [\"k.pub\"]\ncache_ttl = \"1m\"\n";
        let err = Config::parse(text, "test.toml", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("key cache_ttl does not apply"), "{err}");
    }
}
