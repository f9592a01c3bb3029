//! The configuration file as written: raw serde structs that mirror the TOML exactly.
//!
//! Every table denies unknown keys, so a misspelt option is an error (with its name and line,
//! from the TOML parser) instead of a silently ignored safety setting. Meaning and cross-checks
//! live in `config.rs`; nothing here is used at run time directly.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default, rename = "registry")]
    pub registries: Vec<Registry>,
    #[serde(default, rename = "trust")]
    pub trust: Vec<Trust>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub typosquat: Typosquat,
    #[serde(default)]
    pub cache: Cache,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub admin_listen: Option<String>,
    pub users_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// How long in-flight requests may run after SIGTERM/SIGINT, e.g. `"30s"`.
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    pub path: Option<String>,
    pub on_error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub default: bool,
    pub ca_file: Option<PathBuf>,
    pub username_env: Option<String>,
    pub username_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// TCP connect timeout, e.g. `"10s"` (the TLS handshake counts against `response_timeout`).
    pub connect_timeout: Option<String>,
    /// Time allowed until the response headers (first byte) arrive, e.g. `"30s"`.
    pub response_timeout: Option<String>,
    /// Longest pause between two chunks of a body before the transfer counts as stalled.
    pub idle_timeout: Option<String>,
}

/// A trust source. Kind-specific keys are all listed here so unknown ones are still rejected;
/// `config.rs` checks that each key belongs to the declared kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    pub name: String,
    pub kind: String,
    pub keys: Option<Vec<PathBuf>>,
    pub trusted_root: Option<PathBuf>,
    pub identities: Option<Vec<Identity>>,
    pub server: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub root_keys: Option<Vec<String>>,
    pub root_file: Option<PathBuf>,
    pub trust_on_first_use: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub file: Option<PathBuf>,
    /// notary: registry name → GUN prefix, e.g. `{ "mirror" = "docker.io" }`.
    pub gun_prefixes: Option<std::collections::BTreeMap<String, String>>,
    /// notary: how long verified trust data is reused before the server is asked again.
    pub cache_ttl: Option<String>,
    /// notary: credentials for the notary server's token service.
    pub username_env: Option<String>,
    pub username_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub issuer: String,
    pub subject: Option<String>,
    pub subject_regex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub images: Vec<String>,
    pub mode: String,
    #[serde(default)]
    pub trust: Vec<String>,
    #[serde(default)]
    pub trust_all: Vec<String>,
    /// Where cosign signatures and Sigstore bundles for this rule's images are stored, as an
    /// image name `registry/repository` (cosign's `COSIGN_REPOSITORY`).
    pub signature_repository: Option<String>,
    /// In-toto predicate types whose attestations count as signatures, besides cosign's sign
    /// predicate.
    #[serde(default)]
    pub predicate_types: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Typosquat {
    pub mode: Option<String>,
    #[serde(default)]
    pub known: Vec<PathBuf>,
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// How long an allow verdict is reused, e.g. `"5m"`.
    pub verdict_ttl: Option<String>,
    /// How long a deny or warn verdict is reused, e.g. `"10s"`.
    pub negative_ttl: Option<String>,
}
