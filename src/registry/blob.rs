//! The body that streams an upstream response to the client: it passes data through as it
//! arrives, hashes it on the way when a digest is expected, and detects stalls.
//!
//! To make sure a client never receives a complete-looking but wrong blob, the last chunk is
//! held back until the upstream body has ended and the digest checked. On a mismatch the body
//! ends with an error instead, and hyper aborts the connection (HTTP/1.1) or resets the stream
//! (HTTP/2): the client sees a failed transfer and retries, never silently wrong bytes.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::digest::{Digest, DigestHasher};
use super::error::chain;

/// Why a streamed body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("blob from {registry} hashes to {actual}, not {expected}")]
    DigestMismatch {
        registry: Arc<str>,
        expected: Digest,
        actual: Digest,
    },
    #[error("upstream {registry} stalled: no data for {after:?}")]
    Stalled { registry: Arc<str>, after: Duration },
    #[error("upstream {registry} body failed: {detail}")]
    Upstream { registry: Arc<str>, detail: String },
}

/// An upstream body on its way to the client.
pub struct UpstreamBody {
    inner: Incoming,
    check: Option<(Digest, DigestHasher)>,
    held: Option<Bytes>,
    finished: bool,
    registry: Arc<str>,
    idle: Duration,
    last_progress: Instant,
    timer: Pin<Box<Sleep>>,
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// Streams `inner`; if `expected` is given the bytes must hash to it.
    pub fn new(
        inner: Incoming,
        expected: Option<Digest>,
        registry: Arc<str>,
        idle: Duration,
    ) -> Self {
        let now = Instant::now();
        UpstreamBody {
            inner,
            check: expected.map(|d| {
                let h = DigestHasher::new(d.algorithm());
                (d, h)
            }),
            held: None,
            finished: false,
            registry,
            idle,
            last_progress: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// Called when the upstream body has ended: checks the digest and releases the held chunk.
    fn finish(&mut self) -> Option<Result<Frame<Bytes>, StreamError>> {
        self.finished = true;
        if let Some((expected, hasher)) = self.check.take() {
            let actual = hasher.finish();
            if actual != expected {
                self.held = None;
                tracing::warn!(registry = %self.registry, %expected, %actual, "blob digest mismatch; aborting transfer");
                return Some(Err(StreamError::DigestMismatch {
                    registry: self.registry.clone(),
                    expected,
                    actual,
                }));
            }
        }
        self.held.take().map(|b| Ok(Frame::data(b)))
    }

    /// Whether the stall timer has really run out (it is re-armed lazily from `last_progress`).
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = self.last_progress + self.idle;
            if Instant::now() >= deadline {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(this.held.take().map(|b| Ok(Frame::data(b))));
        }
        loop {
            let polled = Pin::new(&mut this.inner).poll_frame(cx);
            let Poll::Ready(next) = polled else {
                if this.stalled(cx) {
                    this.finished = true;
                    this.held = None;
                    // Logged here: hyper reports only "error from user's Body stream" when the
                    // aborted connection ends, so the cause would otherwise be lost.
                    tracing::warn!(
                        registry = %this.registry,
                        after = ?this.idle,
                        "upstream body stalled; aborting transfer"
                    );
                    return Poll::Ready(Some(Err(StreamError::Stalled {
                        registry: this.registry.clone(),
                        after: this.idle,
                    })));
                }
                return Poll::Pending;
            };
            match next {
                None => return Poll::Ready(this.finish()),
                Some(Err(e)) => {
                    this.finished = true;
                    this.held = None;
                    let detail = chain(&e);
                    tracing::warn!(
                        registry = %this.registry,
                        error = %detail,
                        "upstream body failed; aborting transfer"
                    );
                    return Poll::Ready(Some(Err(StreamError::Upstream {
                        registry: this.registry.clone(),
                        detail,
                    })));
                }
                Some(Ok(frame)) => {
                    this.last_progress = Instant::now();
                    // Trailers carry nothing a registry client needs; only data is forwarded.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    match &mut this.check {
                        Some((_, hasher)) => {
                            hasher.update(&data);
                            if let Some(prev) = this.held.replace(data) {
                                return Poll::Ready(Some(Ok(Frame::data(prev))));
                            }
                        }
                        None => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.held.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.finished {
            let n = self.held.as_ref().map_or(0, |b| b.len() as u64);
            return SizeHint::with_exact(n);
        }
        let inner = self.inner.size_hint();
        let extra = self.held.as_ref().map_or(0, |b| b.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + extra);
        if let Some(u) = inner.upper() {
            hint.set_upper(u + extra);
        }
        hint
    }
}
