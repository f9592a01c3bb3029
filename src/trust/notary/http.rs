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
