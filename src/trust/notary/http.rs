//! Notary metadata from the notary server over HTTP(S), through the same upstream client as
//! registries: pooled connections, TLS with the configured CA, and the registry token flow
//! (scope `repository:<GUN>:pull`, with the fully qualified GUN, trust-formats.md §3.8).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::config::{NotaryConfig, RegistryConfig};
use crate::notary::{Fetch, FetchError};
use crate::registry::{read_capped, Upstream, UpstreamError, UpstreamRequest};

/// Connect and first-byte limits for the notary server: trust data is small, and a slow
/// server should turn into a quick denial (or cached data), not a hung pull.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct HttpFetch {
    upstream: Upstream,
    /// Whether the source has credentials for the token service; a refusal says which case
    /// it was, because the fix differs (configure credentials vs. check them).
    has_credentials: bool,
}

// === impl HttpFetch ===

impl HttpFetch {
    pub fn new(trust: &str, config: &NotaryConfig) -> Result<HttpFetch, UpstreamError> {
        let registry = RegistryConfig {
            name: format!("notary server of {trust}"),
            url: config.server.clone(),
            aliases: Vec::new(),
            default: false,
            extra_roots: config.extra_roots.clone(),
            credentials: config.credentials.clone(),
            connect_timeout: CONNECT_TIMEOUT,
            response_timeout: RESPONSE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        };
        Ok(HttpFetch {
            upstream: Upstream::new(Arc::new(registry))?,
            has_credentials: config.credentials.is_some(),
        })
    }
}

impl Fetch for HttpFetch {
    async fn fetch(
        &self,
        gun: &str,
        name: &str,
        limit: usize,
    ) -> Result<Option<Bytes>, FetchError> {
        let req = UpstreamRequest {
            method: Method::GET,
            repository: Some(gun),
            path: format!("{gun}/_trust/tuf/{name}"),
            query: None,
            headers: HeaderMap::new(),
        };
        let resp = self
            .upstream
            .send(req)
            .await
            .map_err(|e| FetchError(e.to_string()))?;
        match resp.status() {
            StatusCode::OK => {}
            // notary-server answers 404 METADATA_NOT_FOUND for a GUN or file it does not have.
            StatusCode::NOT_FOUND => return Ok(None),
            // After the token flow a 401 or 403 means no token (or no Basic login) was good
            // enough: say so plainly instead of a bare status.
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(FetchError(refusal(name, s, self.has_credentials)))
            }
            other => return Err(FetchError(format!("{name}: answered {other}"))),
        }
        let idle = self.upstream.config().idle_timeout;
        read_capped(
            resp.into_body(),
            limit,
            idle,
            self.upstream.name(),
            "trust metadata",
        )
        .await
        .map(Some)
        .map_err(|e| FetchError(format!("{name}: {e}")))
    }
}

/// The reason for a 401/403 from the notary server when fetching `name`.
fn refusal(name: &str, status: StatusCode, has_credentials: bool) -> String {
    if has_credentials {
        format!(
            "{name}: the notary server refused access with the configured credentials ({status})"
        )
    } else {
        format!(
            "{name}: the notary server refused anonymous access ({status}); it needs credentials \
             (username_env/password_env or username_file/password_file)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_whether_credentials_were_sent() {
        assert_eq!(
            refusal("root.json", StatusCode::UNAUTHORIZED, false),
            "root.json: the notary server refused anonymous access (401 Unauthorized); it needs \
             credentials (username_env/password_env or username_file/password_file)"
        );
        assert_eq!(
            refusal("timestamp.json", StatusCode::FORBIDDEN, true),
            "timestamp.json: the notary server refused access with the configured credentials \
             (403 Forbidden)"
        );
    }
}
