//! Request handlers for the pull API: each resolves the upstream target, sends the upstream
//! request through that registry's client and shapes the answer. Errors are returned as
//! `ProxyError` and turned into responses by `respond.rs` only.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCEPT, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_RANGE, LAST_MODIFIED, LINK, RANGE, RETRY_AFTER,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tracing::Instrument as _;

use super::gate::{Gate, GateSetupError};
use super::respond::{self, full, ProxyBody, ProxyError};
use super::route::{self, Route};
use super::users::{Users, UsersError};
use crate::audit::{AuditError, AuditLog};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::registry::blob::UpstreamBody;
use crate::registry::{read_capped, Digest, Resolver, Target, UpstreamError, UpstreamRequest};

/// Why the handler could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Gate(#[from] GateSetupError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Users(#[from] UsersError),
}

/// How much of an upstream error body is kept to pass on.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// The request handler shared by all connections.
pub struct Proxy {
    pub(super) resolver: Resolver,
    pub(super) gate: Gate,
    pub(super) audit: AuditLog,
    pub(super) users: Option<Users>,
    pub(super) clock: SharedClock,
}

/// What one request is about, parsed once.
pub(super) struct Call<'a> {
    pub(super) method: &'a Method,
    pub(super) head: bool,
    pub(super) headers: &'a HeaderMap,
    /// containerd's `?ns=<registry>`.
    pub(super) ns: Option<String>,
    pub(super) query: Vec<(String, String)>,
    pub(super) peer: SocketAddr,
    /// The authenticated user, when `users_file` is configured.
    pub(super) user: Option<String>,
}

// === impl Proxy ===

impl Proxy {
    /// Builds the handler from the configuration: upstream clients, trust sources, policy,
    /// audit sink and users. Needs a tokio runtime (pin files are watched in the background).
    pub fn new(config: &Config, clock: SharedClock) -> Result<Arc<Proxy>, SetupError> {
        let audit = AuditLog::open(&config.audit)?;
        Proxy::with_audit(config, clock, audit)
    }

    /// Like [`Proxy::new`] with a given audit sink (`pullgate verify` writes no records and
    /// must not need write access to the configured log).
    pub fn with_audit(
        config: &Config,
        clock: SharedClock,
        audit: AuditLog,
    ) -> Result<Arc<Proxy>, SetupError> {
        let resolver = Resolver::from_config(config)?;
        let gate = Gate::new(config, &resolver, clock.clone())?;
        let users = config
            .server
            .users_file
            .as_deref()
            .map(Users::load)
            .transpose()?;
        Ok(Arc::new(Proxy {
            resolver,
            gate,
            audit,
            users,
            clock,
        }))
    }

    /// Starts background work: pin file watching.
    pub fn start(&self) {
        self.gate.start();
    }

    /// Reopens the audit log file (SIGHUP, after log rotation).
    pub fn reopen_audit(&self) {
        match self.audit.reopen() {
            Ok(()) => tracing::info!("audit log reopened"),
            Err(e) => tracing::error!(error = %e, "cannot reopen the audit log"),
        }
    }

    /// Answers one request. Never fails: errors become OCI error responses here.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            version = ?req.version(),
            path = %req.uri().path(),
            image = tracing::field::Empty,
        );
        self.answer(req, peer).instrument(span).await
    }

    async fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let start = std::time::Instant::now();
        let route = route::parse(req.uri().path());
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let call = Call {
            method: req.method(),
            head: req.method() == Method::HEAD,
            headers: req.headers(),
            ns: query
                .iter()
                .find(|(k, _)| k == "ns")
                .map(|(_, v)| v.clone()),
            query,
            peer,
            user: None,
        };
        let mut resp = match self.authenticate(call, &route).await {
            Err(resp) => resp,
            Ok(call) => self.respond(&call, &route).await,
        };
        resp.headers_mut()
            .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
        tracing::debug!(
            route = route.kind(),
            status = resp.status().as_u16(),
            elapsed_us = start.elapsed().as_micros() as u64,
            "answered"
        );
        resp
    }

    /// With a users file, every request needs valid Basic credentials. A manifest request
    /// refused here is still audited.
    async fn authenticate<'a>(
        &self,
        mut call: Call<'a>,
        route: &Route<'_>,
    ) -> Result<Call<'a>, Response<ProxyBody>> {
        let Some(users) = &self.users else {
            return Ok(call);
        };
        match users
            .check(call.headers.get(http::header::AUTHORIZATION))
            .await
        {
            Ok(user) => {
                call.user = Some(user);
                Ok(call)
            }
            Err(e) => {
                tracing::info!(error = %e, "client not authenticated");
                if let Route::Manifest { name, reference } = route {
                    self.audit_unauthenticated(&call, name, reference, &e.to_string());
                }
                Err(respond::unauthorized(call.head))
            }
        }
    }

    async fn respond(&self, call: &Call<'_>, route: &Route<'_>) -> Response<ProxyBody> {
        match self.dispatch(call, route).await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(route = route.kind(), error = %e, "request failed");
                respond::error(&e, call.head)
            }
        }
    }

    async fn dispatch(
        &self,
        call: &Call<'_>,
        route: &Route<'_>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        if !route::is_read(call.method) {
            return Err(match route {
                Route::NotFound => ProxyError::NotFound,
                _ => ProxyError::Unsupported,
            });
        }
        match *route {
            Route::Base => Ok(json_ok(Bytes::from_static(b"{}"), call.head)),
            Route::Catalog => Err(ProxyError::Catalog),
            Route::Upload => Err(ProxyError::Unsupported),
            Route::NotFound => Err(ProxyError::NotFound),
            Route::Manifest { name, reference } => Ok(self.manifest(call, name, reference).await),
            Route::Blob { name, digest } => self.blob(call, name, digest).await,
            Route::TagsList { name } => self.tags(call, name).await,
            Route::Referrers { name, digest } => self.referrers(call, name, digest).await,
        }
    }

    pub(super) fn target(&self, call: &Call<'_>, name: &str) -> Result<Target, ProxyError> {
        let t = self.resolver.resolve(name, call.ns.as_deref())?;
        tracing::Span::current().record("image", t.image.as_str());
        Ok(t)
    }

    async fn blob(
        &self,
        call: &Call<'_>,
        name: &str,
        digest: &str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let target = self.target(call, name)?;
        let digest: Digest = digest.parse()?;
        let mut headers = HeaderMap::new();
        respond::copy_headers(call.headers, &mut headers, &[RANGE, IF_RANGE]);
        let path = format!("{}/blobs/{}", target.repository, digest);
        let resp = target
            .upstream
            .send(upstream_req(
                call.method.clone(),
                &target,
                path,
                None,
                headers,
            ))
            .await?;
        let status = resp.status();
        if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
            return Err(status_error(&target, resp).await);
        }
        let (parts, body) = resp.into_parts();
        let body = if call.head {
            full(Bytes::new())
        } else {
            // A partial response cannot be checked against the digest of the whole blob.
            let expected = (status == StatusCode::OK).then(|| digest.clone());
            stream(body, expected, &target)
        };
        let mut out = Response::new(body);
        *out.status_mut() = status;
        respond::copy_headers(
            &parts.headers,
            out.headers_mut(),
            &[
                CONTENT_TYPE,
                CONTENT_LENGTH,
                CONTENT_RANGE,
                ACCEPT_RANGES,
                ETAG,
                LAST_MODIFIED,
                CACHE_CONTROL,
            ],
        );
        set_digest(out.headers_mut(), &digest);
        Ok(out)
    }

    async fn tags(&self, call: &Call<'_>, name: &str) -> Result<Response<ProxyBody>, ProxyError> {
        let target = self.target(call, name)?;
        let query = pass_query(&call.query, &["n", "last"]);
        let path = format!("{}/tags/list", target.repository);
        self.listing(call, name, &target, path, query).await
    }

    async fn referrers(
        &self,
        call: &Call<'_>,
        name: &str,
        digest: &str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let target = self.target(call, name)?;
        let digest: Digest = digest.parse()?;
        let query = pass_query(&call.query, &["artifactType"]);
        let path = format!("{}/referrers/{}", target.repository, digest);
        self.listing(call, name, &target, path, query).await
    }

    /// Tag lists and referrer indexes: passed through as they stream, with `Link` pagination
    /// rewritten to the name the client used.
    async fn listing(
        &self,
        call: &Call<'_>,
        client_name: &str,
        target: &Target,
        path: String,
        query: Option<String>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let mut headers = HeaderMap::new();
        respond::copy_headers(call.headers, &mut headers, &[ACCEPT]);
        let resp = target
            .upstream
            .send(upstream_req(
                call.method.clone(),
                target,
                path,
                query,
                headers,
            ))
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(target, resp).await);
        }
        let (parts, body) = resp.into_parts();
        let body = if call.head {
            full(Bytes::new())
        } else {
            stream(body, None, target)
        };
        let mut out = Response::new(body);
        *out.status_mut() = parts.status;
        respond::copy_headers(
            &parts.headers,
            out.headers_mut(),
            &[CONTENT_TYPE, CONTENT_LENGTH, OCI_FILTERS_APPLIED],
        );
        for link in parts.headers.get_all(LINK) {
            let rewritten = link
                .to_str()
                .ok()
                .and_then(|l| {
                    rewrite_link(
                        l,
                        target.repository.as_str(),
                        client_name,
                        call.ns.as_deref(),
                    )
                })
                .and_then(|l| HeaderValue::from_str(&l).ok());
            if let Some(v) = rewritten {
                out.headers_mut().append(LINK, v);
            }
        }
        Ok(out)
    }
}

pub(super) fn upstream_req<'a>(
    method: Method,
    target: &'a Target,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
) -> UpstreamRequest<'a> {
    UpstreamRequest {
        method,
        repository: Some(target.repository.as_str()),
        path,
        query,
        headers,
    }
}

fn stream(body: Incoming, expected: Option<Digest>, target: &Target) -> ProxyBody {
    let registry: Arc<str> = Arc::from(target.upstream.name());
    UpstreamBody::new(
        body,
        expected,
        registry,
        target.upstream.config().idle_timeout,
    )
    .map_err(|e| -> respond::BoxError { Box::new(e) })
    .boxed_unsync()
}

/// Reads a small part of an upstream error response to pass its OCI error document on.
pub(super) async fn status_error(target: &Target, resp: Response<Incoming>) -> ProxyError {
    let (parts, body) = resp.into_parts();
    let idle = target.upstream.config().idle_timeout;
    let body = read_capped(
        body,
        MAX_ERROR_BODY,
        idle,
        target.upstream.name(),
        "an error body",
    )
    .await
    .ok();
    tracing::debug!(status = parts.status.as_u16(), "upstream error status");
    ProxyError::UpstreamStatus {
        registry: target.upstream.name().to_owned(),
        repository: target.repository.to_string(),
        status: parts.status,
        retry_after: parts.headers.get(RETRY_AFTER).cloned(),
        body,
    }
}

pub(super) fn header_str<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn set_digest(headers: &mut HeaderMap, digest: &Digest) {
    if let Ok(v) = HeaderValue::from_str(&digest.to_string()) {
        headers.insert(DOCKER_CONTENT_DIGEST, v);
    }
}

fn json_ok(body: Bytes, head: bool) -> Response<ProxyBody> {
    let len = body.len();
    let mut r = Response::new(full(if head { Bytes::new() } else { body }));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// Re-encodes only the named query parameters, so nothing else the client sent reaches upstream.
fn pass_query(query: &[(String, String)], keep: &[&str]) -> Option<String> {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in query.iter().filter(|(k, _)| keep.contains(&k.as_str())) {
        ser.append_pair(k, v);
        any = true;
    }
    any.then(|| ser.finish())
}

/// Rewrites an upstream `Link: </v2/<repo>/tags/list?...>; rel="next"` (relative or absolute)
/// to point at pullgate with the client's own name for the repository.
fn rewrite_link(
    link: &str,
    upstream_repo: &str,
    client_name: &str,
    ns: Option<&str>,
) -> Option<String> {
    let open = link.find('<')?;
    let close = link[open..].find('>')? + open;
    let target = &link[open + 1..close];
    let marker = format!("/v2/{upstream_repo}/");
    let at = target.find(&marker)?;
    let suffix = &target[at + marker.len()..];
    let mut new = format!("/v2/{client_name}/{suffix}");
    if let Some(ns) = ns {
        new.push(if new.contains('?') { '&' } else { '?' });
        new.push_str("ns=");
        new.push_str(&url::form_urlencoded::byte_serialize(ns.as_bytes()).collect::<String>());
    }
    Some(format!("{}<{new}>{}", &link[..open], &link[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_point_back_at_pullgate() {
        let l = r#"</v2/library/hello/tags/list?last=b&n=1>; rel="next""#;
        assert_eq!(
            rewrite_link(l, "library/hello", "hello", None).unwrap(),
            r#"</v2/hello/tags/list?last=b&n=1>; rel="next""#
        );
        let abs = r#"<https://reg.example/prefix/v2/org/app/tags/list?n=2&last=x>; rel="next""#;
        assert_eq!(
            rewrite_link(abs, "org/app", "ghcr.io/org/app", None).unwrap(),
            r#"</v2/ghcr.io/org/app/tags/list?n=2&last=x>; rel="next""#
        );
        assert_eq!(
            rewrite_link(l, "library/hello", "library/hello", Some("docker.io")).unwrap(),
            r#"</v2/library/hello/tags/list?last=b&n=1&ns=docker.io>; rel="next""#
        );
        assert_eq!(rewrite_link("garbage", "a", "b", None), None);
    }

    #[test]
    fn only_known_query_parameters_are_passed() {
        let q = vec![
            ("n".to_string(), "10".to_string()),
            ("ns".to_string(), "docker.io".to_string()),
            ("last".to_string(), "a b".to_string()),
        ];
        assert_eq!(
            pass_query(&q, &["n", "last"]).as_deref(),
            Some("n=10&last=a+b")
        );
        assert_eq!(pass_query(&q, &["artifactType"]), None);
    }
}
