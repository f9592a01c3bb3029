//! The client for one upstream registry: a pooled HTTP/1.1 + HTTP/2 connection set, TLS with the
//! platform roots plus the registry's own CA file, authentication and redirects.
//!
//! One `Upstream` exists per configured registry for the life of the process, so connections and
//! tokens are shared by every request to that registry. It only ever connects to the registry's
//! configured URL, the token realm that registry names, and redirect targets it sends.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use moka::future::Cache;
use rustls::pki_types::CertificateDer;
use url::Url;

use super::auth::{self, Challenge, SchemeMemory, Token, TokenResponse};
use super::body::read_capped;
use super::error::{chain, UpstreamError};
use crate::config::RegistryConfig;

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Redirect chains longer than this are refused (registries use one hop to a CDN).
const MAX_REDIRECTS: usize = 5;
/// Idle pooled connections per host; enough for 64 concurrent clients without reconnecting.
const POOL_MAX_IDLE_PER_HOST: usize = 128;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const TOKEN_CACHE_ENTRIES: u64 = 10_000;

/// A request to send upstream. `path` is what follows `/v2/`.
pub struct UpstreamRequest<'a> {
    pub method: Method,
    /// The repository the token scope names (`repository:<name>:pull`); a notary server's
    /// GUN is not an OCI repository name, so this is plain text.
    pub repository: Option<&'a str>,
    pub path: String,
    pub query: Option<String>,
    /// Headers to pass on (the caller chooses which; never the client's `Authorization`).
    pub headers: HeaderMap,
}

/// One configured upstream registry.
pub struct Upstream {
    config: Arc<RegistryConfig>,
    http: HttpClient,
    schemes: SchemeMemory,
    tokens: Cache<String, Token>,
    user_agent: HeaderValue,
}

// === impl Upstream ===

impl Upstream {
    pub fn new(config: Arc<RegistryConfig>) -> Result<Upstream, UpstreamError> {
        let setup = |detail: String| UpstreamError::Setup {
            registry: config.name.clone(),
            detail,
        };
        let tls = tls_config(&config.extra_roots).map_err(setup)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .build(https);
        let tokens = Cache::builder()
            .max_capacity(TOKEN_CACHE_ENTRIES)
            .expire_after(TokenExpiry)
            .build();
        Ok(Upstream {
            config,
            http,
            schemes: SchemeMemory::default(),
            tokens,
            user_agent: HeaderValue::from_static(concat!("pullgate/", env!("CARGO_PKG_VERSION"))),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Sends `req`, authenticating as the registry asks (once more after a 401) and following
    /// redirects. Any HTTP status is returned as `Ok`; only transport-level failures are errors.
    pub async fn send(
        &self,
        req: UpstreamRequest<'_>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let url = self.url(&req.path, req.query.as_deref())?;
        let scope = req.repository.map(|r| format!("repository:{r}:pull"));
        let known = self.schemes.get();
        let first_auth = match &known {
            Some(c) => self.authorization(c, scope.as_deref(), false).await?,
            None => None,
        };
        let resp = self
            .follow(&req.method, url.clone(), &req.headers, first_auth.as_ref())
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(header) = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(resp);
        };
        let challenge =
            auth::parse_challenges(header).map_err(|e| self.auth_error(e.to_string()))?;
        self.schemes.learn(&challenge);
        let retry_auth = self
            .authorization(&challenge, scope.as_deref(), true)
            .await?;
        match retry_auth {
            // Nothing new to offer: the 401 stands and the caller reports it.
            None => Ok(resp),
            Some(a) => self.follow(&req.method, url, &req.headers, Some(&a)).await,
        }
    }

    fn url(&self, path: &str, query: Option<&str>) -> Result<Url, UpstreamError> {
        let base = self.config.url.as_str().trim_end_matches('/');
        let mut s = format!("{base}/v2/{path}");
        if let Some(q) = query {
            s.push('?');
            s.push_str(q);
        }
        Url::parse(&s).map_err(|e| UpstreamError::Setup {
            registry: self.config.name.clone(),
            detail: format!("bad upstream URL {s:?}: {e}"),
        })
    }

    /// The `Authorization` value to answer `challenge` with, or `None` if pullgate has nothing
    /// to offer (Basic without configured credentials).
    async fn authorization(
        &self,
        challenge: &Challenge,
        scope: Option<&str>,
        refresh: bool,
    ) -> Result<Option<HeaderValue>, UpstreamError> {
        let value = match challenge {
            Challenge::Basic => match &self.config.credentials {
                Some(c) => auth::basic_header(&c.username, c.password.expose()),
                None => return Ok(None),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                // The scope the registry asked for wins; it knows what the request needs.
                let scope = asked.as_deref().or(scope);
                let key = format!(
                    "{realm}\n{}\n{}",
                    service.as_deref().unwrap_or(""),
                    scope.unwrap_or("")
                );
                if refresh {
                    self.tokens.invalidate(&key).await;
                }
                let fetched = self
                    .tokens
                    .try_get_with(key, self.fetch_token(realm, service.as_deref(), scope))
                    .await;
                match fetched {
                    Ok(token) => token.header_value(),
                    // The realm will not issue a token to these credentials (or to anonymous
                    // callers): pullgate has nothing to offer, so the registry's 401 stands and
                    // the client is told access was refused, not that the upstream is down.
                    Err(e) if matches!(*e, TokenFailure::Refused(_)) => {
                        tracing::info!(registry = %self.config.name, scope = scope.unwrap_or(""), error = %e, "token request refused");
                        return Ok(None);
                    }
                    Err(e) => return Err(self.auth_error(e.to_string())),
                }
            }
        };
        HeaderValue::from_str(&value)
            .map(|mut v| {
                v.set_sensitive(true);
                Some(v)
            })
            .map_err(|_| self.auth_error("token is not a valid header value".into()))
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Token, TokenFailure> {
        let mut url = Url::parse(realm).map_err(|e| {
            TokenFailure::Invalid(format!("token realm {realm:?} is not a URL: {e}"))
        })?;
        // A registry reached over TLS must not send pullgate's credentials to a plain-HTTP realm.
        let plain_ok = self.config.url.scheme() == "http";
        if !(url.scheme() == "https" || (plain_ok && url.scheme() == "http")) {
            return Err(TokenFailure::Invalid(format!(
                "token realm {realm:?} is not https"
            )));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(c) = &self.config.credentials {
            let mut v =
                HeaderValue::from_str(&auth::basic_header(&c.username, c.password.expose()))
                    .map_err(|_| {
                        TokenFailure::Invalid("credentials are not a valid header value".into())
                    })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let resp = self.exchange(&Method::GET, &url, headers).await?;
        let status = resp.status();
        let body = read_capped(
            resp.into_body(),
            auth::MAX_TOKEN_RESPONSE,
            self.config.idle_timeout,
            &self.config.name,
            "a token response",
        )
        .await?;
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(TokenFailure::Refused(status));
        }
        if !status.is_success() {
            return Err(TokenFailure::Invalid(format!(
                "token endpoint answered {status}"
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| TokenFailure::Invalid(format!("token response is not JSON: {e}")))?;
        parsed
            .into_token(Instant::now())
            .ok_or_else(|| TokenFailure::Invalid("token response has no token".into()))
    }

    /// Sends one request and follows redirects. Credentials go only to the registry's own origin.
    async fn follow(
        &self,
        method: &Method,
        mut url: Url,
        headers: &HeaderMap,
        auth: Option<&HeaderValue>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        for _ in 0..=MAX_REDIRECTS {
            let mut h = headers.clone();
            if let Some(a) = auth {
                if same_origin(&url, &self.config.url) {
                    h.insert(AUTHORIZATION, a.clone());
                }
            }
            let resp = self.exchange(method, &url, h).await?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    self.redirect_error(format!("{} without Location", resp.status()))
                })?;
            let next = url
                .join(location)
                .map_err(|e| self.redirect_error(format!("Location {location:?}: {e}")))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(self.redirect_error(format!("Location {location:?} is not http(s)")));
            }
            if url.scheme() == "https" && next.scheme() == "http" {
                return Err(
                    self.redirect_error(format!("Location {location:?} downgrades to plain HTTP"))
                );
            }
            tracing::debug!(registry = %self.config.name, to = %next.host_str().unwrap_or(""), "following redirect");
            url = next;
        }
        Err(self.redirect_error(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// One HTTP exchange with the response timeout applied to the headers.
    async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        mut headers: HeaderMap,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let uri: Uri = url.as_str().parse().map_err(|e| UpstreamError::Setup {
            registry: self.config.name.clone(),
            detail: format!("bad URL {url}: {e}"),
        })?;
        headers.insert(USER_AGENT, self.user_agent.clone());
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(Empty::<Bytes>::new())
            .map_err(|e| UpstreamError::Setup {
                registry: self.config.name.clone(),
                detail: e.to_string(),
            })?;
        *req.headers_mut() = headers;
        let after = self.config.response_timeout;
        match tokio::time::timeout(after, self.http.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout {
                registry: self.config.name.clone(),
                after,
            }),
            Ok(Err(e)) => Err(UpstreamError::Unreachable {
                registry: self.config.name.clone(),
                detail: chain(&e),
            }),
            Ok(Ok(resp)) => {
                tracing::debug!(
                    registry = %self.config.name,
                    version = ?resp.version(),
                    status = resp.status().as_u16(),
                    "upstream answered"
                );
                Ok(resp)
            }
        }
    }

    fn auth_error(&self, detail: String) -> UpstreamError {
        UpstreamError::Auth {
            registry: self.config.name.clone(),
            detail,
        }
    }

    fn redirect_error(&self, detail: String) -> UpstreamError {
        UpstreamError::Redirect {
            registry: self.config.name.clone(),
            detail,
        }
    }
}

/// Why the token endpoint gave pullgate no token.
#[derive(Debug, thiserror::Error)]
enum TokenFailure {
    /// 401 or 403 from the realm: it will not issue a token to these credentials (or to
    /// anonymous callers). Not an upstream fault; the registry's 401 is what the client sees.
    #[error("token endpoint answered {0}")]
    Refused(StatusCode),
    /// The realm or its answer is unusable.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Transport(#[from] UpstreamError),
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

struct TokenExpiry;

impl moka::Expiry<String, Token> for TokenExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Token,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.time_left(created_at))
    }
}

/// The platform's root certificates, loaded once per process (it reads many files).
fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::warn!(error = %e, "could not load some platform root certificates");
        }
        loaded.certs
    })
}

fn tls_config(extra: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(platform_roots().iter().cloned());
    if ignored > 0 {
        tracing::debug!(ignored, "skipped unparsable platform root certificates");
    }
    for c in extra {
        roots
            .add(c.clone())
            .map_err(|e| format!("ca_file certificate rejected: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Url::parse("https://r.example/v2/x").unwrap();
        assert!(same_origin(
            &a,
            &Url::parse("https://r.example:443").unwrap()
        ));
        assert!(!same_origin(&a, &Url::parse("http://r.example").unwrap()));
        assert!(!same_origin(
            &a,
            &Url::parse("https://cdn.example").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://r.example:8443").unwrap()
        ));
    }
}
