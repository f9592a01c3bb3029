//! The validated runtime configuration, built from the TOML file (`config/file.rs`).
//!
//! Loading reads everything the file points at (credentials, CA bundles, TLS key pairs) so that
//! `pullgate check-config` catches the same mistakes `serve` would, and a running server never
//! discovers a broken file half-way through a request. Any error here means exit status 64.

pub mod duration;
pub mod file;
mod notary;

pub use notary::{NotaryConfig, NotaryRoot};

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

/// The configuration pullgate runs when no `--config` is given.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub audit: AuditConfig,
    pub registries: Vec<RegistryConfig>,
    pub trust: Vec<TrustConfig>,
    pub rules: Vec<RuleConfig>,
    pub typosquat: TyposquatConfig,
    pub cache: CacheConfig,
}

/// How long verdicts are cached.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub verdict_ttl: Duration,
    pub negative_ttl: Duration,
}

#[derive(Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: Option<Arc<TlsIdentity>>,
    pub admin_listen: Option<SocketAddr>,
    pub users_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub shutdown_grace: Duration,
}

/// The server certificate chain and key, already parsed.
pub struct TlsIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

#[derive(Debug)]
pub struct AuditConfig {
    pub sink: AuditSink,
    pub on_error: OnAuditError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAuditError {
    Deny,
    Allow,
}

/// One upstream registry pullgate may connect to.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The host name clients write in references, e.g. `docker.io`.
    pub name: String,
    pub url: Url,
    pub aliases: Vec<String>,
    pub default: bool,
    /// Extra trust anchors for this registry, on top of the platform roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Upstream credentials, read from files or environment variables at load time.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// A string that never appears in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

#[derive(Debug)]
pub struct TrustConfig {
    pub name: String,
    pub kind: TrustKind,
    pub settings: TrustSettings,
}

/// Kind-specific settings of a trust source.
#[derive(Debug)]
pub enum TrustSettings {
    /// A signed pin file and the public keys allowed to sign it.
    Pins { file: PathBuf, keys: Vec<PathBuf> },
    /// cosign signatures by any of these public keys (PEM files); with a trusted root, the
    /// key-signed bundles' transparency-log entries must verify against it.
    CosignKey {
        keys: Vec<PathBuf>,
        trusted_root: Option<PathBuf>,
    },
    /// cosign keyless signatures: Fulcio certificates chaining to this Sigstore trusted
    /// root, logged, and issued to one of these identities.
    CosignKeyless {
        trusted_root: PathBuf,
        identities: Vec<KeylessIdentity>,
    },
    /// Docker Content Trust: Notary v1 trust data from a notary server.
    Notary(Box<NotaryConfig>),
}

/// One `identities` entry of a `cosign-keyless` source: the OIDC issuer (exact) and the
/// certificate subject, exact or an anchored regular expression.
#[derive(Debug, Clone)]
pub struct KeylessIdentity {
    pub issuer: String,
    pub subject: SubjectMatch,
}

#[derive(Debug, Clone)]
pub enum SubjectMatch {
    Exact(String),
    /// Matched against the whole subject: `^(?:…)$` is implied.
    Regex(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustKind {
    CosignKey,
    CosignKeyless,
    Notary,
    Pins,
}

#[derive(Debug)]
pub struct RuleConfig {
    pub name: String,
    pub images: Vec<String>,
    pub mode: Mode,
    pub trust: Vec<String>,
    pub trust_all: Vec<String>,
    /// The image name (`registry/repository`, normalised) whose repository holds this rule's
    /// cosign signatures and bundles, instead of each image's own.
    pub signature_repository: Option<String>,
    /// In-toto predicate types whose DSSE attestations also count as signatures (cosign's
    /// sign predicate always does).
    pub predicate_types: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Warn,
    Off,
}

#[derive(Debug)]
pub struct TyposquatConfig {
    pub mode: TyposquatMode,
    pub known: Vec<PathBuf>,
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TyposquatMode {
    Off,
    Warn,
    Block,
}

/// Why a configuration was refused. The message names the key or section at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_VERDICT_TTL: Duration = Duration::from_secs(300);
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(10);

// === impl Config ===

impl Config {
    /// Loads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Config::parse(&text, &p.display().to_string(), p.parent())
            }
            None => Config::parse(DEFAULT_TOML, "embedded default config", None),
        }
    }

    /// Parses TOML text. Relative file paths in it are taken relative to `base_dir`.
    pub fn parse(text: &str, origin: &str, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: file::File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            // toml's message carries the line, column and offending key.
            message: e.to_string().trim_end().to_owned(),
        })?;
        let base = base_dir.unwrap_or(Path::new("."));
        Builder { base }.build(raw)
    }

    /// The registry named `host` (its name or one of its aliases), if configured.
    pub fn registry(&self, host: &str) -> Option<&RegistryConfig> {
        self.registries
            .iter()
            .find(|r| r.name == host || r.aliases.iter().any(|a| a == host))
    }
}

struct Builder<'a> {
    base: &'a Path,
}

impl Builder<'_> {
    fn build(&self, raw: file::File) -> Result<Config, ConfigError> {
        let server = self.server(raw.server)?;
        let audit = self.audit(raw.audit)?;
        let registries = self.registries(raw.registries)?;
        let trust = self.trust(raw.trust)?;
        notary::cross_check(&trust, &server, &registries)?;
        let rules = self.rules(raw.rules, &trust, &registries)?;
        let typosquat = self.typosquat(raw.typosquat)?;
        let cache = CacheConfig {
            verdict_ttl: opt_duration("cache.verdict_ttl", raw.cache.verdict_ttl)?
                .unwrap_or(DEFAULT_VERDICT_TTL),
            negative_ttl: opt_duration("cache.negative_ttl", raw.cache.negative_ttl)?
                .unwrap_or(DEFAULT_NEGATIVE_TTL),
        };
        Ok(Config {
            server,
            audit,
            registries,
            trust,
            rules,
            typosquat,
            cache,
        })
    }

    fn path(&self, p: &Path) -> PathBuf {
        self.base.join(p)
    }

    /// A username and password, each from an environment variable or a file; both or neither.
    fn credentials(
        &self,
        username: (Option<&str>, Option<&Path>),
        password: (Option<&str>, Option<&Path>),
    ) -> Result<Option<Credentials>, String> {
        let username = secret_source("username", username.0, username.1.map(|p| self.path(p)))?;
        let password = secret_source("password", password.0, password.1.map(|p| self.path(p)))?;
        match (username, password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => Ok(Some(Credentials {
                username,
                password: Secret(password),
            })),
            _ => Err("a username needs a password and a password a username".into()),
        }
    }

    fn server(&self, raw: file::Server) -> Result<ServerConfig, ConfigError> {
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = parse_addr("server.listen", listen_text)?;
        let admin_listen = raw
            .admin_listen
            .as_deref()
            .map(|a| parse_addr("server.admin_listen", a))
            .transpose()?;
        let tls = match (raw.tls_cert, raw.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(Arc::new(TlsIdentity::load(
                &self.path(&cert),
                &self.path(&key),
            )?)),
            _ => {
                return Err(invalid(
                    "server.tls_cert and server.tls_key must be given together",
                ))
            }
        };
        let shutdown_grace =
            opt_duration("server.shutdown_grace", raw.shutdown_grace)?.unwrap_or(DEFAULT_GRACE);
        Ok(ServerConfig {
            listen,
            tls,
            admin_listen,
            users_file: raw.users_file.map(|p| self.path(&p)),
            state_dir: raw.state_dir.map(|p| self.path(&p)),
            shutdown_grace,
        })
    }

    fn audit(&self, raw: file::Audit) -> Result<AuditConfig, ConfigError> {
        let sink = match raw.path.as_deref() {
            None | Some("-") => AuditSink::Stdout,
            Some("") => return Err(invalid("audit.path is empty (use \"-\" for stdout)")),
            Some(p) => AuditSink::File(self.path(Path::new(p))),
        };
        let on_error = match raw.on_error.as_deref() {
            None | Some("deny") => OnAuditError::Deny,
            Some("allow") => OnAuditError::Allow,
            Some(other) => {
                return Err(invalid(format!(
                    "audit.on_error = {other:?}: expected \"deny\" or \"allow\""
                )))
            }
        };
        Ok(AuditConfig { sink, on_error })
    }

    fn registries(&self, raw: Vec<file::Registry>) -> Result<Vec<RegistryConfig>, ConfigError> {
        if raw.is_empty() {
            return Err(invalid("no [[registry]] is configured"));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            for host in std::iter::once(&r.name).chain(&r.aliases) {
                if !looks_like_host(host) {
                    return Err(invalid(format!(
                        "registry {:?}: {host:?} is not a registry host name (it needs a '.' or ':' or must be \"localhost\")",
                        r.name
                    )));
                }
                if !seen.insert(host.clone()) {
                    return Err(invalid(format!(
                        "registry host {host:?} is configured more than once"
                    )));
                }
            }
            out.push(self.registry(r)?);
        }
        if out.iter().filter(|r| r.default).count() > 1 {
            return Err(invalid("more than one [[registry]] has default = true"));
        }
        Ok(out)
    }

    fn registry(&self, r: file::Registry) -> Result<RegistryConfig, ConfigError> {
        let ctx = |msg: String| invalid(format!("registry {:?}: {msg}", r.name));
        let url = server_url(&r.url).map_err(|e| ctx(format!("url {e}")))?;
        let extra_roots = match &r.ca_file {
            Some(p) => load_certs(&self.path(p)).map_err(ctx)?,
            None => Vec::new(),
        };
        let credentials = self
            .credentials(
                (r.username_env.as_deref(), r.username_file.as_deref()),
                (r.password_env.as_deref(), r.password_file.as_deref()),
            )
            .map_err(ctx)?;
        let t = |key: &str, v: Option<String>, default: Duration| {
            opt_duration(&format!("registry {:?}: {key}", r.name), v).map(|d| d.unwrap_or(default))
        };
        Ok(RegistryConfig {
            connect_timeout: t(
                "connect_timeout",
                r.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            response_timeout: t(
                "response_timeout",
                r.response_timeout,
                DEFAULT_RESPONSE_TIMEOUT,
            )?,
            idle_timeout: t("idle_timeout", r.idle_timeout, DEFAULT_IDLE_TIMEOUT)?,
            name: r.name,
            url,
            aliases: r.aliases,
            default: r.default,
            extra_roots,
            credentials,
        })
    }

    fn trust(&self, raw: Vec<file::Trust>) -> Result<Vec<TrustConfig>, ConfigError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for t in raw {
            if !seen.insert(t.name.clone()) {
                return Err(invalid(format!(
                    "trust source {:?} is defined more than once",
                    t.name
                )));
            }
            let kind = match t.kind.as_str() {
                "cosign-key" => TrustKind::CosignKey,
                "cosign-keyless" => TrustKind::CosignKeyless,
                "notary" => TrustKind::Notary,
                "pins" => TrustKind::Pins,
                other => {
                    return Err(invalid(format!(
                    "trust {:?}: unknown kind {other:?} (cosign-key, cosign-keyless, notary, pins)",
                    t.name
                )))
                }
            };
            let settings = match kind {
                TrustKind::Pins => self.pins_settings(&t)?,
                TrustKind::CosignKey => self.cosign_key_settings(&t)?,
                TrustKind::CosignKeyless => self.cosign_keyless_settings(&t)?,
                TrustKind::Notary => self.notary_settings(&t)?,
            };
            out.push(TrustConfig {
                name: t.name,
                kind,
                settings,
            });
        }
        Ok(out)
    }

    fn pins_settings(&self, t: &file::Trust) -> Result<TrustSettings, ConfigError> {
        let ctx = |msg: &str| invalid(format!("trust {:?} (kind pins): {msg}", t.name));
        reject_foreign_keys(t, &["file", "keys"]).map_err(|m| ctx(&m))?;
        let file = t.file.as_ref().ok_or_else(|| ctx("needs file = \"…\""))?;
        let keys = t.keys.as_ref().filter(|k| !k.is_empty()).ok_or_else(|| {
            ctx("needs keys = [\"….pub\"], the public keys allowed to sign the pin file")
        })?;
        Ok(TrustSettings::Pins {
            file: self.path(file),
            keys: keys.iter().map(|k| self.path(k)).collect(),
        })
    }

    fn cosign_key_settings(&self, t: &file::Trust) -> Result<TrustSettings, ConfigError> {
        let ctx = |msg: &str| invalid(format!("trust {:?} (kind cosign-key): {msg}", t.name));
        reject_foreign_keys(t, &["keys", "trusted_root"]).map_err(|m| ctx(&m))?;
        let keys = t.keys.as_ref().filter(|k| !k.is_empty()).ok_or_else(|| {
            ctx("needs keys = [\"….pub\"], the public keys whose cosign signatures are trusted")
        })?;
        Ok(TrustSettings::CosignKey {
            keys: keys.iter().map(|k| self.path(k)).collect(),
            trusted_root: t.trusted_root.as_ref().map(|p| self.path(p)),
        })
    }

    fn cosign_keyless_settings(&self, t: &file::Trust) -> Result<TrustSettings, ConfigError> {
        let ctx = |msg: &str| invalid(format!("trust {:?} (kind cosign-keyless): {msg}", t.name));
        reject_foreign_keys(t, &["trusted_root", "identities"]).map_err(|m| ctx(&m))?;
        let root = t.trusted_root.as_ref().ok_or_else(|| {
            ctx("needs trusted_root = \"…/trusted_root.json\", the Sigstore trust root")
        })?;
        let raw = t
            .identities
            .as_ref()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                ctx("needs identities = [{ issuer = \"…\", subject = \"…\" }], who may sign")
            })?;
        let mut identities = Vec::new();
        for (i, id) in raw.iter().enumerate() {
            let ctx = |msg: &str| ctx(&format!("identities[{i}]: {msg}"));
            if id.issuer.is_empty() {
                return Err(ctx("issuer is empty"));
            }
            let subject = match (&id.subject, &id.subject_regex) {
                (Some(s), None) if !s.is_empty() => SubjectMatch::Exact(s.clone()),
                (None, Some(r)) => {
                    crate::sigstore::fulcio::Matcher::regex(r)
                        .map_err(|e| ctx(&format!("subject_regex does not compile: {e}")))?;
                    SubjectMatch::Regex(r.clone())
                }
                _ => return Err(ctx("needs exactly one of subject and subject_regex")),
            };
            identities.push(KeylessIdentity {
                issuer: id.issuer.clone(),
                subject,
            });
        }
        Ok(TrustSettings::CosignKeyless {
            trusted_root: self.path(root),
            identities,
        })
    }

    fn rules(
        &self,
        raw: Vec<file::Rule>,
        trust: &[TrustConfig],
        registries: &[RegistryConfig],
    ) -> Result<Vec<RuleConfig>, ConfigError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in raw {
            let ctx = |msg: String| invalid(format!("rule {:?}: {msg}", r.name));
            if !seen.insert(r.name.clone()) {
                return Err(ctx("defined more than once".into()));
            }
            if r.images.is_empty() {
                return Err(ctx("images is empty".into()));
            }
            for g in &r.images {
                crate::policy::Glob::parse(g).map_err(|e| ctx(e.to_string()))?;
            }
            let mode = match r.mode.as_str() {
                "enforce" => Mode::Enforce,
                "warn" => Mode::Warn,
                "off" => Mode::Off,
                other => {
                    return Err(ctx(format!(
                        "mode {other:?}: expected enforce, warn or off"
                    )))
                }
            };
            for name in r.trust.iter().chain(&r.trust_all) {
                if !trust.iter().any(|t| &t.name == name) {
                    return Err(ctx(format!(
                        "names trust source {name:?}, which is not defined"
                    )));
                }
            }
            if mode == Mode::Enforce && r.trust.is_empty() && r.trust_all.is_empty() {
                return Err(ctx(
                    "mode \"enforce\" needs at least one source in trust or trust_all".into(),
                ));
            }
            if let Some(repo) = &r.signature_repository {
                signature_repository(repo, registries)
                    .map_err(|m| ctx(format!("signature_repository = {repo:?}: {m}")))?;
            }
            for t in &r.predicate_types {
                predicate_type(t).map_err(|m| ctx(format!("predicate_types: {t:?}: {m}")))?;
            }
            out.push(RuleConfig {
                name: r.name,
                images: r.images,
                mode,
                trust: r.trust,
                trust_all: r.trust_all,
                signature_repository: r.signature_repository,
                predicate_types: r.predicate_types,
            });
        }
        Ok(out)
    }

    fn typosquat(&self, raw: file::Typosquat) -> Result<TyposquatConfig, ConfigError> {
        let mode = match raw.mode.as_deref() {
            None | Some("warn") => TyposquatMode::Warn,
            Some("off") => TyposquatMode::Off,
            Some("block") => TyposquatMode::Block,
            Some(other) => {
                return Err(invalid(format!(
                    "typosquat.mode = {other:?}: expected off, warn or block"
                )))
            }
        };
        Ok(TyposquatConfig {
            mode,
            known: raw.known.iter().map(|p| self.path(p)).collect(),
            allow: raw.allow,
        })
    }
}

/// Checks a rule's `signature_repository`: `registry/repository` in the normalised form rules
/// match (the registry's name, not an alias; Docker Hub's `library/`), on a configured
/// registry, so it resolves exactly as a pull of that name would.
fn signature_repository(value: &str, registries: &[RegistryConfig]) -> Result<(), String> {
    let Some((host, rest)) = value.split_once('/').filter(|(h, _)| looks_like_host(h)) else {
        return Err("expected registry/repository, starting with a registry host".to_owned());
    };
    let registry = registries
        .iter()
        .find(|r| r.name == host || r.aliases.iter().any(|a| a == host))
        .ok_or_else(|| format!("registry {host:?} is not configured"))?;
    let mut repository = crate::registry::Repository::parse(rest).map_err(|e| e.to_string())?;
    if registry.is_docker_hub() && repository.components() == 1 {
        repository = repository.in_library();
    }
    let normalised = format!("{}/{repository}", registry.name);
    if normalised != value {
        return Err(format!("write it as {normalised:?}, the name rules match"));
    }
    Ok(())
}

/// A `predicate_types` entry: an absolute URI, as in-toto predicate types are.
fn predicate_type(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("empty".to_owned());
    }
    if value.trim() != value {
        return Err("has surrounding white space".to_owned());
    }
    match Url::parse(value) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("not an absolute URI ({e})")),
    }
}

/// Refuses kind-specific keys that belong to another kind of trust source: a key that has no
/// effect must not look as if it had one.
fn reject_foreign_keys(t: &file::Trust, allowed: &[&str]) -> Result<(), String> {
    let present = [
        ("keys", t.keys.is_some()),
        ("file", t.file.is_some()),
        ("trusted_root", t.trusted_root.is_some()),
        ("identities", t.identities.is_some()),
        ("server", t.server.is_some()),
        ("ca_file", t.ca_file.is_some()),
        ("root_keys", t.root_keys.is_some()),
        ("root_file", t.root_file.is_some()),
        ("trust_on_first_use", t.trust_on_first_use.is_some()),
        ("roles", t.roles.is_some()),
        ("gun_prefixes", t.gun_prefixes.is_some()),
        ("cache_ttl", t.cache_ttl.is_some()),
        ("username_env", t.username_env.is_some()),
        ("username_file", t.username_file.is_some()),
        ("password_env", t.password_env.is_some()),
        ("password_file", t.password_file.is_some()),
    ];
    match present
        .iter()
        .find(|(key, set)| *set && !allowed.contains(key))
    {
        Some((key, _)) => Err(format!("key {key} does not apply to this kind")),
        None => Ok(()),
    }
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

fn parse_addr(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|_| invalid(format!("{key} = {text:?} is not an IP:port address")))
}

fn opt_duration(key: &str, v: Option<String>) -> Result<Option<Duration>, ConfigError> {
    v.map(|s| duration::parse(&s).map_err(|e| invalid(format!("{key}: {e}"))))
        .transpose()
}

/// Docker's rule for telling a registry host from a namespace: the first component of a
/// reference is a host if it contains `.` or `:` or is `localhost`.
pub fn looks_like_host(s: &str) -> bool {
    s == "localhost" || s.contains('.') || s.contains(':')
}

/// Reads one secret from an environment variable or a file (whose trailing newline is dropped).
fn secret_source(
    what: &str,
    env: Option<&str>,
    file: Option<PathBuf>,
) -> Result<Option<String>, String> {
    match (env, file) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(format!("{what}_env and {what}_file are both set")),
        (Some(var), None) => std::env::var(var)
            .map(Some)
            .map_err(|_| format!("{what}_env names {var}, which is not set")),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| format!("{what}_file {}: {e}", path.display())),
    }
}

/// A registry or notary server address: `http(s)://host[:port][/path]`, nothing else.
fn server_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must be http:// or https://"));
    }
    if url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "{text:?} must be scheme://host[:port][/path] without credentials, query or fragment"
        ));
    }
    Ok(url)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE in file", path.display()));
    }
    Ok(certs)
}

// === impl TlsIdentity ===

impl TlsIdentity {
    fn load(cert: &Path, key: &Path) -> Result<TlsIdentity, ConfigError> {
        let chain = load_certs(cert).map_err(|e| invalid(format!("server.tls_cert: {e}")))?;
        let pem = std::fs::read(key)
            .map_err(|e| invalid(format!("server.tls_key: {}: {e}", key.display())))?;
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|e| invalid(format!("server.tls_key: {}: bad PEM: {e}", key.display())))?
            .ok_or_else(|| invalid(format!("server.tls_key: {}: no private key", key.display())))?;
        Ok(TlsIdentity { chain, key })
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TlsIdentity({} certificates, key redacted)",
            self.chain.len()
        )
    }
}

// === impl Secret ===

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

// === impl TrustKind ===

impl TrustKind {
    /// The name used in the config file and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustKind::CosignKey => "cosign-key",
            TrustKind::CosignKeyless => "cosign-keyless",
            TrustKind::Notary => "notary",
            TrustKind::Pins => "pins",
        }
    }
}

// === impl RegistryConfig ===

impl RegistryConfig {
    /// Docker Hub gets the `library/` rule for one-component names.
    pub fn is_docker_hub(&self) -> bool {
        self.name == "docker.io" || self.aliases.iter().any(|a| a == "docker.io")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", None)
    }

    const MINIMAL: &str = r#"
[[registry]]
name = "docker.io"
url = "https://registry-1.docker.io"
default = true
"#;

    #[test]
    fn embedded_default_is_valid_and_safe() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.audit.sink, AuditSink::Stdout);
        assert_eq!(c.audit.on_error, OnAuditError::Deny);
        assert!(c.registry("docker.io").unwrap().default);
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.rules[0].images, ["**"]);
        assert_eq!(c.rules[0].mode, Mode::Warn);
        assert_eq!(c.typosquat.mode, TyposquatMode::Warn);
    }

    #[test]
    fn unknown_key_error_names_key_and_line() {
        let text = format!("{MINIMAL}lsiten = \"x\"\n");
        let err = parse(&text.replace("default = true\n", "default = true\n[server]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lsiten"), "{err}");
        assert!(err.contains("line 7"), "{err}");
    }

    #[test]
    fn semantic_errors_are_reported() {
        let cases = [
            ("", "no [[registry]]"),
            (
                "[[registry]]\nname = \"nginx\"\nurl = \"https://x.io\"\n",
                "not a registry host",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"ftp://x.io\"\n",
                "http:// or https://",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://u:p@x.io\"\n",
                "without credentials",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[registry]]\nname = \"b.io\"\nurl = \"https://y.io\"\naliases = [\"a.io\"]\n",
                "more than once",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\ndefault = true\n[[registry]]\nname = \"b.io\"\nurl = \"https://y.io\"\ndefault = true\n",
                "more than one",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\nusername_env = \"PULLGATE_TEST_UNSET_VAR\"\n",
                "not set",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\nconnect_timeout = \"10\"\n",
                "needs a unit",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\nmode = \"enforce\"\n",
                "at least one source",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\nmode = \"enforce\"\ntrust = [\"nope\"]\n",
                "not defined",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[server]\ntls_cert = \"c.pem\"\n",
                "together",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[server]\nlisten = \"localhost\"\n",
                "IP:port",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[typosquat]\nmode = \"loud\"\n",
                "off, warn or block",
            ),
            (
                "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[trust]]\nname = \"t\"\nkind = \"gpg\"\n",
                "unknown kind",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn pins_sources_need_file_and_keys_and_refuse_other_kinds_settings() {
        let base = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[trust]]\nname = \"p\"\nkind = \"pins\"\n";
        for (extra, want) in [
            ("keys = [\"k.pub\"]\n", "needs file"),
            ("file = \"pins.json\"\n", "needs keys"),
            (
                "file = \"pins.json\"\nkeys = [\"k.pub\"]\nroots = 1\n",
                "unknown field",
            ),
            (
                "file = \"pins.json\"\nkeys = [\"k.pub\"]\nserver = \"https://n\"\n",
                "key server does not apply",
            ),
        ] {
            let err = parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(err.contains(want), "{extra:?}: {err:?} lacks {want:?}");
        }
        assert!(parse(&format!("{base}file = \"pins.json\"\nkeys = [\"k.pub\"]\n")).is_ok());
    }

    #[test]
    fn cosign_keyless_sources_need_a_root_and_well_formed_identities() {
        let base = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[trust]]\nname = \"sig\"\nkind = \"cosign-keyless\"\n";
        let root = "trusted_root = \"root.json\"\n";
        let id = |s: &str| format!("identities = [{{ issuer = \"https://i\", {s} }}]\n");
        let ok = format!(
            "{base}{root}{}",
            id("subject_regex = \"https://github\\\\.com/a/.*\"")
        );
        match &parse(&ok).unwrap().trust[0].settings {
            TrustSettings::CosignKeyless { identities, .. } => {
                assert!(
                    matches!(&identities[0].subject, SubjectMatch::Regex(r) if r.starts_with("https"))
                );
            }
            other => panic!("{other:?}"),
        }
        for (extra, want) in [
            (id("subject = \"s\""), "needs trusted_root"),
            (root.to_owned(), "needs identities"),
            (
                format!("{root}{}", id("subject = \"s\", subject_regex = \"s\"")),
                "exactly one of subject",
            ),
            (format!("{root}{}", id("")), "exactly one of subject"),
            (
                format!("{root}{}", id("subject_regex = \"(\"")),
                "does not compile",
            ),
            (
                format!("{root}{}keys = [\"k.pub\"]\n", id("subject = \"s\"")),
                "key keys does not apply",
            ),
        ] {
            let err = parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(err.contains(want), "{extra:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn cosign_key_sources_need_keys_and_refuse_other_kinds_settings() {
        let base = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[trust]]\nname = \"acme\"\nkind = \"cosign-key\"\n";
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{base}keys = [\"acme.pub\"]\n");
        let c = Config::parse(&text, "t", Some(dir.path())).unwrap();
        match &c.trust[0].settings {
            TrustSettings::CosignKey { keys, trusted_root } => {
                assert_eq!(keys, &[dir.path().join("acme.pub")]);
                assert!(trusted_root.is_none());
            }
            other => panic!("{other:?}"),
        }
        for (extra, want) in [
            ("", "needs keys"),
            ("keys = []\n", "needs keys"),
            (
                "keys = [\"a.pub\"]\nfile = \"pins.json\"\n",
                "key file does not apply",
            ),
            (
                "keys = [\"a.pub\"]\nidentities = []\n",
                "key identities does not apply",
            ),
        ] {
            let err = parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("(kind cosign-key)"),
                "{extra:?}: {err:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn rule_signature_repositories_must_name_a_configured_registry_in_normalised_form() {
        let base = "[[registry]]\nname = \"docker.io\"\nurl = \"https://r.example\"\naliases = [\"index.docker.io\"]\ndefault = true\n[[registry]]\nname = \"ghcr.io\"\nurl = \"https://ghcr.io\"\n[[trust]]\nname = \"t\"\nkind = \"pins\"\nfile = \"p.json\"\nkeys = [\"k.pub\"]\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\nmode = \"enforce\"\ntrust = [\"t\"]\n";
        for good in [
            "ghcr.io/acme/sigs",
            "docker.io/library/sigs",
            "docker.io/acme/sigs",
        ] {
            let c = parse(&format!("{base}signature_repository = \"{good}\"\n"))
                .unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(c.rules[0].signature_repository.as_deref(), Some(good));
        }
        assert!(parse(base).unwrap().rules[0].signature_repository.is_none());
        for (bad, want) in [
            (
                "quay.io/acme/sigs",
                "registry \"quay.io\" is not configured",
            ),
            ("acme/sigs", "expected registry/repository"),
            ("ghcr.io", "expected registry/repository"),
            ("ghcr.io/Acme/sigs", "oci name grammar"),
            ("ghcr.io/acme//sigs", "oci name grammar"),
            ("docker.io/sigs", "write it as \"docker.io/library/sigs\""),
            (
                "index.docker.io/acme/sigs",
                "write it as \"docker.io/acme/sigs\"",
            ),
        ] {
            let err = parse(&format!("{base}signature_repository = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("rule \"r\": signature_repository = \"{bad}\"")),
                "{bad}: {err}"
            );
            assert!(
                err.to_lowercase().contains(want),
                "{bad}: {err:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn rule_predicate_types_must_be_absolute_uris() {
        let base = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\nmode = \"warn\"\n";
        let c = parse(&format!(
            "{base}predicate_types = [\"https://slsa.dev/provenance/v1\", \"https://spdx.dev/Document\"]\n"
        ))
        .unwrap();
        assert_eq!(
            c.rules[0].predicate_types,
            [
                "https://slsa.dev/provenance/v1",
                "https://spdx.dev/Document"
            ]
        );
        assert!(parse(base).unwrap().rules[0].predicate_types.is_empty());
        for (bad, want) in [
            ("", "empty"),
            ("  ", "empty"),
            ("slsa provenance", "not an absolute URI"),
            ("/provenance/v1", "not an absolute URI"),
            (" https://slsa.dev/provenance/v1", "white space"),
        ] {
            let err = parse(&format!("{base}predicate_types = [\"{bad}\"]\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("rule \"r\": predicate_types") && err.contains(want),
                "{bad:?}: {err:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn cosign_key_sources_may_name_a_trusted_root() {
        let text = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\n[[trust]]\nname = \"acme\"\nkind = \"cosign-key\"\nkeys = [\"acme.pub\"]\ntrusted_root = \"root.json\"\n";
        let dir = tempfile::tempdir().unwrap();
        let c = Config::parse(text, "t", Some(dir.path())).unwrap();
        match &c.trust[0].settings {
            TrustSettings::CosignKey { trusted_root, .. } => {
                assert_eq!(
                    trusted_root.as_deref(),
                    Some(dir.path().join("root.json").as_path())
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credentials_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("user"), "alice\n").unwrap();
        std::fs::write(dir.path().join("pass"), "s3cret\n").unwrap();
        let text = "[[registry]]\nname = \"a.io\"\nurl = \"https://x.io\"\nusername_file = \"user\"\npassword_file = \"pass\"\n";
        let c = Config::parse(text, "t", Some(dir.path())).unwrap();
        let creds = c.registries[0].credentials.as_ref().unwrap();
        assert_eq!(creds.username, "alice");
        assert_eq!(creds.password.expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn hosts_are_recognised_like_docker_does() {
        assert!(looks_like_host("ghcr.io"));
        assert!(looks_like_host("localhost"));
        assert!(looks_like_host("127.0.0.1:5000"));
        assert!(!looks_like_host("library"));
    }
}
