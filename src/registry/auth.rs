//! Upstream authentication: `WWW-Authenticate` challenges, the registry Bearer token flow and
//! Basic auth, with tokens cached until shortly before they expire.
//!
//! References: RFC 7235 §2.1 (challenge syntax), the distribution token spec
//! (`docs/spec/auth/token.md`: `token`/`access_token`, `expires_in` defaulting to 60 s).
//! This module parses and remembers; the HTTP round trips are made by `client.rs`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChallengeError {
    #[error("malformed WWW-Authenticate header: {0}")]
    Malformed(&'static str),
    #[error("Bearer challenge without a realm")]
    MissingRealm,
    #[error("no supported authentication scheme offered (only Bearer and Basic are)")]
    Unsupported,
}

/// Tokens are dropped this long before the registry says they expire, so a request never
/// starts with a token that lapses on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// The distribution token spec's default when the response has no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Token responses are small JSON documents; anything larger is not a token response.
pub const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Parses a `WWW-Authenticate` value and returns the challenge pullgate should answer:
/// Bearer when offered, else Basic.
pub fn parse_challenges(header: &str) -> Result<Challenge, ChallengeError> {
    let mut found = Vec::new();
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    loop {
        p.skip_ws_and_commas();
        if p.done() {
            break;
        }
        let scheme = p
            .token()
            .ok_or(ChallengeError::Malformed("expected a scheme"))?;
        let mut params: Vec<(String, String)> = Vec::new();
        // Parameters follow until the next token that is not followed by '=' (a new scheme).
        loop {
            p.skip_ws_and_commas();
            let save = p.i;
            let Some(name) = p.token() else { break };
            p.skip_ws();
            if !p.eat(b'=') {
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
                    .ok_or(ChallengeError::Malformed("unterminated quoted string"))?
            } else {
                p.token()
                    .ok_or(ChallengeError::Malformed("expected a parameter value"))?
            };
            params.push((name.to_ascii_lowercase(), value));
        }
        found.push((scheme.to_ascii_lowercase(), params));
    }
    let param =
        |ps: &[(String, String)], k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some((_, ps)) = found.iter().find(|(s, _)| s == "bearer") {
        let realm = param(ps, "realm").ok_or(ChallengeError::MissingRealm)?;
        return Ok(Challenge::Bearer {
            realm,
            service: param(ps, "service"),
            scope: param(ps, "scope"),
        });
    }
    if found.iter().any(|(s, _)| s == "basic") {
        return Ok(Challenge::Basic);
    }
    Err(ChallengeError::Unsupported)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    /// RFC 7230 `token` (plus `/` and `=`-free token68 characters used by some registries).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> Option<String> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    out.push(self.peek()?);
                    self.i += 1;
                }
                _ => out.push(b),
            }
        }
        None
    }
}

/// The JSON a token endpoint answers with.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// A bearer token and when pullgate stops using it.
#[derive(Clone)]
pub struct Token {
    value: Arc<str>,
    use_until: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl TokenResponse {
    /// Turns the response into a token usable from `now`; `None` if it carries no token.
    pub fn into_token(self, now: Instant) -> Option<Token> {
        let value = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let lifetime = self
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Some(Token {
            value: value.into(),
            use_until: now + lifetime.saturating_sub(EXPIRY_MARGIN),
        })
    }
}

impl Token {
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.use_until
    }

    pub fn time_left(&self, now: Instant) -> Duration {
        self.use_until.saturating_duration_since(now)
    }

    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.value)
    }
}

/// `Basic base64(user:password)`.
pub fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// What pullgate learnt about how a registry wants to be authenticated, so that later requests
/// can authenticate up front instead of taking a 401 first.
#[derive(Debug, Default)]
pub struct SchemeMemory {
    known: RwLock<Option<Challenge>>,
}

impl SchemeMemory {
    pub fn get(&self) -> Option<Challenge> {
        self.known.read().ok().and_then(|g| g.clone())
    }

    /// Remembers the scheme; the per-request `scope` is not kept.
    pub fn learn(&self, c: &Challenge) {
        let keep = match c {
            Challenge::Bearer { realm, service, .. } => Challenge::Bearer {
                realm: realm.clone(),
                service: service.clone(),
                scope: None,
            },
            Challenge::Basic => Challenge::Basic,
        };
        if let Ok(mut g) = self.known.write() {
            *g = Some(keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_challenge() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#;
        assert_eq!(
            parse_challenges(h).unwrap(),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull".into()),
            }
        );
    }

    #[test]
    fn parses_ghcr_challenge() {
        let h = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:kubewarden/kubewarden-controller:pull""#;
        let Challenge::Bearer {
            realm,
            service,
            scope,
        } = parse_challenges(h).unwrap()
        else {
            panic!("not bearer")
        };
        assert_eq!(realm, "https://ghcr.io/token");
        assert_eq!(service.as_deref(), Some("ghcr.io"));
        assert_eq!(
            scope.as_deref(),
            Some("repository:kubewarden/kubewarden-controller:pull")
        );
    }

    #[test]
    fn parses_quay_and_multi_scope_forms() {
        // quay.io puts spaces after commas; scopes may list several actions.
        let h = r#"Bearer realm="https://quay.io/v2/auth", service="quay.io", scope="repository:a/b:pull,push""#;
        let Challenge::Bearer { scope, .. } = parse_challenges(h).unwrap() else {
            panic!("not bearer")
        };
        assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn parses_basic_and_prefers_bearer() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        let both = r#"Basic realm="x", Bearer realm="https://t.example/token",service="s""#;
        assert!(matches!(
            parse_challenges(both).unwrap(),
            Challenge::Bearer { .. }
        ));
    }

    #[test]
    fn handles_escapes_and_unquoted_values() {
        let h = r#"bearer realm="https://t.example/a\"b",service=reg.example"#;
        assert_eq!(
            parse_challenges(h).unwrap(),
            Challenge::Bearer {
                realm: "https://t.example/a\"b".into(),
                service: Some("reg.example".into()),
                scope: None,
            }
        );
    }

    #[test]
    fn rejects_bad_challenges() {
        assert_eq!(
            parse_challenges(r#"Bearer service="x""#),
            Err(ChallengeError::MissingRealm)
        );
        assert_eq!(
            parse_challenges("Negotiate"),
            Err(ChallengeError::Unsupported)
        );
        assert_eq!(parse_challenges(""), Err(ChallengeError::Unsupported));
        assert!(matches!(
            parse_challenges(r#"Bearer realm="unterminated"#),
            Err(ChallengeError::Malformed(_))
        ));
    }

    #[test]
    fn token_lifetime_defaults_and_margin() {
        let now = Instant::now();
        let t: TokenResponse = serde_json::from_str(r#"{"token":"abc"}"#).unwrap();
        let t = t.into_token(now).unwrap();
        assert_eq!(t.time_left(now), Duration::from_secs(50));
        assert_eq!(t.header_value(), "Bearer abc");
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"xyz","expires_in":300}"#).unwrap();
        let t = t.into_token(now).unwrap();
        assert!(t.is_fresh(now + Duration::from_secs(289)));
        assert!(!t.is_fresh(now + Duration::from_secs(290)));
        let empty: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(empty.into_token(now).is_none());
        assert!(!format!("{t:?}").contains("xyz"));
    }

    #[test]
    fn basic_header_is_base64_user_colon_password() {
        assert_eq!(
            basic_header("aladdin", "opensesame"),
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l"
        );
    }
}
