//! The one place where errors become HTTP responses with OCI error JSON.
//!
//! Clients print the `message` of the first error, so messages start with `pullgate:` and say
//! what happened in the client's terms; internal detail goes to the log instead. A refusal by
//! pullgate's own rules is always 403/405, never 401, 404 or 5xx, which would make clients
//! prompt for a login, report "not found", retry, or fall back to the upstream.

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WARNING, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use serde::Serialize;

use crate::policy::Pass;
use crate::registry::digest::DigestError;
use crate::registry::manifest::ManifestError;
use crate::registry::reference::ReferenceError;
use crate::registry::resolve::ResolveError;
use crate::registry::Digest;
use crate::registry::UpstreamError;

const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response pullgate sends.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Everything that can end a request with an error response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("invalid manifest reference: {0}")]
    Reference(#[source] ReferenceError),
    #[error("invalid digest: {0}")]
    Digest(#[from] DigestError),
    #[error("manifest from upstream {registry} refused: {source}")]
    Manifest {
        registry: String,
        source: ManifestError,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The upstream answered with an error status; its body (if an OCI error document) is kept.
    #[error("upstream {registry} answered {status}")]
    UpstreamStatus {
        registry: String,
        repository: String,
        status: StatusCode,
        retry_after: Option<HeaderValue>,
        body: Option<Bytes>,
    },
    /// The policy refused the manifest; the message names image, rule and reasons.
    #[error("{0}")]
    Denied(String),
    #[error("the audit log cannot be written, so pulls are refused (audit.on_error = \"deny\")")]
    AuditUnavailable,
    #[error("push and delete are not supported by a pull proxy")]
    Unsupported,
    #[error("listing the catalog is not allowed")]
    Catalog,
    #[error("not a registry API path")]
    NotFound,
}

#[derive(Serialize)]
struct ErrorDoc<'a> {
    errors: [ErrorEntry<'a>; 1],
}

#[derive(Serialize)]
struct ErrorEntry<'a> {
    code: &'a str,
    message: &'a str,
}

/// The HTTP answer for `err`. `head` leaves the body out (HEAD requests).
pub fn error(err: &ProxyError, head: bool) -> Response<ProxyBody> {
    use ProxyError as E;
    let (status, code, message) = match err {
        E::Resolve(ResolveError::InvalidName(e)) => {
            (StatusCode::BAD_REQUEST, "NAME_INVALID", e.to_string())
        }
        E::Resolve(e) => (StatusCode::FORBIDDEN, "DENIED", e.to_string()),
        E::Reference(e) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID", e.to_string()),
        E::Digest(e) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string()),
        E::Manifest { .. } => (StatusCode::BAD_GATEWAY, "MANIFEST_INVALID", err.to_string()),
        E::Upstream(e) => upstream_failure(e),
        E::UpstreamStatus {
            registry,
            repository,
            status,
            retry_after,
            body,
        } => {
            return upstream_status(registry, repository, *status, retry_after, body, head);
        }
        E::Unsupported => (
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            err.to_string(),
        ),
        E::Catalog | E::Denied(_) | E::AuditUnavailable => {
            (StatusCode::FORBIDDEN, "DENIED", err.to_string())
        }
        E::NotFound => (StatusCode::NOT_FOUND, "UNSUPPORTED", err.to_string()),
    };
    oci_error(status, code, &format!("pullgate: {message}"), head)
}

fn upstream_failure(e: &UpstreamError) -> (StatusCode, &'static str, String) {
    let status = match e {
        UpstreamError::Timeout { .. } | UpstreamError::Stalled { .. } => {
            StatusCode::GATEWAY_TIMEOUT
        }
        UpstreamError::Setup { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_GATEWAY,
    };
    let code = match e {
        UpstreamError::TooLarge { .. } => "MANIFEST_INVALID",
        _ => "UNAVAILABLE",
    };
    (status, code, e.to_string())
}

/// Passes an upstream error status on. A 401 that survived pullgate's own authentication becomes
/// 403: the client cannot fix it by logging in to pullgate. Server errors become 502 (503 stays,
/// with its `Retry-After`), so the client knows the fault is behind the proxy.
fn upstream_status(
    registry: &str,
    repository: &str,
    status: StatusCode,
    retry_after: &Option<HeaderValue>,
    body: &Option<Bytes>,
    head: bool,
) -> Response<ProxyBody> {
    let mut resp = match status {
        StatusCode::UNAUTHORIZED => oci_error(
            StatusCode::FORBIDDEN,
            "DENIED",
            &format!(
                "pullgate: upstream {registry} refused access to {repository} (401 Unauthorized)"
            ),
            head,
        ),
        s if s.is_client_error() && !head && body.as_deref().is_some_and(is_oci_error_doc) => {
            let b = body.clone().unwrap_or_default();
            json_response(s, b)
        }
        s if s.is_client_error() => {
            let code = match s {
                StatusCode::NOT_FOUND => "NAME_UNKNOWN",
                StatusCode::TOO_MANY_REQUESTS => "TOOMANYREQUESTS",
                StatusCode::FORBIDDEN => "DENIED",
                _ => "UNSUPPORTED",
            };
            let msg = format!("pullgate: upstream {registry} answered {s} for {repository}");
            oci_error(s, code, &msg, head)
        }
        StatusCode::SERVICE_UNAVAILABLE => oci_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            &format!("pullgate: upstream {registry} is unavailable (503)"),
            head,
        ),
        s => oci_error(
            StatusCode::BAD_GATEWAY,
            "UNAVAILABLE",
            &format!("pullgate: upstream {registry} answered {s}"),
            head,
        ),
    };
    if let Some(r) = retry_after {
        resp.headers_mut().insert(RETRY_AFTER, r.clone());
    }
    resp
}

/// Whether `body` is `{"errors":[{"code":"…",…},…]}`, the distribution error format.
fn is_oci_error_doc(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Doc {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[allow(dead_code)]
        code: String,
    }
    serde_json::from_slice::<Doc>(body).is_ok_and(|d| !d.errors.is_empty())
}

/// An OCI error document response. HEAD responses keep the status and length but send no body.
pub fn oci_error(status: StatusCode, code: &str, message: &str, head: bool) -> Response<ProxyBody> {
    let doc = ErrorDoc {
        errors: [ErrorEntry { code, message }],
    };
    // Serialising two strings cannot fail; fall back to an empty body rather than panic.
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    let mut r = if head {
        let mut r = json_response(status, Bytes::new());
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        r
    } else {
        json_response(status, Bytes::from(body))
    };
    // Clients that only print the status line (containerd after a HEAD, which has no body)
    // then still show the reason. HTTP/1 only; HTTP/2 has no reason phrase.
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason_phrase(message)) {
        r.extensions_mut().insert(phrase);
    }
    r
}

/// `message` made fit for a status line: printable ASCII, at most 400 bytes.
fn reason_phrase(message: &str) -> String {
    const MAX: usize = 400;
    let mut out: String = message
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(MAX)
        .collect();
    if message.len() > MAX {
        out.push_str("...");
    }
    out
}

fn json_response(status: StatusCode, body: Bytes) -> Response<ProxyBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A manifest the policy let through. Needs the policy's [`Pass`]; each warning (warn mode, a
/// possible typosquat) becomes a `Warning: 299 - "pullgate: …"` header.
pub fn manifest(
    _pass: &Pass,
    digest: &Digest,
    upstream: &HeaderMap,
    bytes: Option<Bytes>,
    warnings: &[String],
) -> Response<ProxyBody> {
    let mut r = Response::new(full(bytes.unwrap_or_default()));
    copy_headers(upstream, r.headers_mut(), &[CONTENT_TYPE, CONTENT_LENGTH]);
    if let Ok(v) = HeaderValue::from_str(&digest.to_string()) {
        r.headers_mut().insert(DOCKER_CONTENT_DIGEST, v);
    }
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&warning_value(w)) {
            r.headers_mut().append(WARNING, v);
        }
    }
    r
}

/// `299 - "pullgate: <text>"` (RFC 7234 §5.5), with the text made a valid quoted string.
fn warning_value(text: &str) -> String {
    let mut q = String::with_capacity(text.len() + 20);
    q.push_str("299 - \"pullgate: ");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => q.push(c),
            _ => q.push('?'),
        }
    }
    q.push('"');
    q
}

/// 401 with a Basic challenge: the client must log in to pullgate (`users_file`).
pub fn unauthorized(head: bool) -> Response<ProxyBody> {
    let mut r = oci_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "pullgate: authentication required",
        head,
    );
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"pullgate\""),
    );
    r
}

/// A response body from bytes in memory.
pub fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Copies the named headers from `from` to `to`, when present.
pub fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, names: &[http::header::HeaderName]) {
    for n in names {
        for v in from.get_all(n) {
            to.append(n.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(r: Response<ProxyBody>) -> serde_json::Value {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&b).unwrap()
    }

    #[tokio::test]
    async fn registry_not_allowed_is_403_denied() {
        let e = ProxyError::Resolve(ResolveError::RegistryNotAllowed("quay.io".into()));
        let r = error(&e, false);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let j = body_json(r).await;
        assert_eq!(j["errors"][0]["code"], "DENIED");
        let msg = j["errors"][0]["message"].as_str().unwrap();
        assert!(msg.starts_with("pullgate: registry not allowed"), "{msg}");
    }

    #[tokio::test]
    async fn head_errors_have_no_body() {
        let r = error(&ProxyError::Catalog, true);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().contains_key(CONTENT_LENGTH));
        let b = r.into_body().collect().await.unwrap().to_bytes();
        assert!(b.is_empty());
    }

    #[tokio::test]
    async fn upstream_statuses_map_to_client_statuses() {
        let mk = |status: StatusCode, body: Option<&'static str>| ProxyError::UpstreamStatus {
            registry: "docker.io".into(),
            repository: "library/x".into(),
            status,
            retry_after: Some(HeaderValue::from_static("7")),
            body: body.map(|s| Bytes::from_static(s.as_bytes())),
        };
        let not_found = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let r = error(&mk(StatusCode::NOT_FOUND, Some(not_found)), false);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(r).await["errors"][0]["code"], "MANIFEST_UNKNOWN");

        let r = error(&mk(StatusCode::TOO_MANY_REQUESTS, None), false);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "7");
        assert_eq!(body_json(r).await["errors"][0]["code"], "TOOMANYREQUESTS");

        let r = error(&mk(StatusCode::UNAUTHORIZED, None), false);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);

        let r = error(&mk(StatusCode::INTERNAL_SERVER_ERROR, Some("oops")), false);
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(body_json(r).await["errors"][0]["code"], "UNAVAILABLE");
    }

    #[test]
    fn warning_header_is_a_valid_quoted_string() {
        assert_eq!(
            warning_value(r#"x "quoted" \ é"#),
            r#"299 - "pullgate: x \"quoted\" \\ ?""#
        );
        assert!(HeaderValue::from_str(&warning_value("a\nb")).is_ok());
    }

    #[test]
    fn recognises_oci_error_documents() {
        assert!(is_oci_error_doc(
            br#"{"errors":[{"code":"X","message":"m"}]}"#
        ));
        assert!(!is_oci_error_doc(br#"{"errors":[]}"#));
        assert!(!is_oci_error_doc(b"<html>"));
    }
}
