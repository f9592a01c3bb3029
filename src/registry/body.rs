//! Reading small upstream bodies (manifests, token responses, error documents) into memory with a
//! hard size cap and a stall timeout. Blobs never come through here; they are streamed.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use super::error::{chain, UpstreamError};

/// Reads `body` whole, failing once it passes `limit` bytes or pauses longer than `idle`.
pub async fn read_capped(
    mut body: Incoming,
    limit: usize,
    idle: Duration,
    registry: &str,
    what: &'static str,
) -> Result<Bytes, UpstreamError> {
    let too_large = || UpstreamError::TooLarge {
        registry: registry.to_owned(),
        what,
        limit,
    };
    // Refuse early when the declared length already exceeds the cap.
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| UpstreamError::Stalled {
                registry: registry.to_owned(),
                after: idle,
            })?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| UpstreamError::Body {
            registry: registry.to_owned(),
            detail: chain(&e),
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}
