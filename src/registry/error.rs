//! Errors from talking to an upstream registry, tagged with the registry they concern.
//!
//! These never carry credentials or tokens. `server/respond.rs` turns them into OCI error
//! responses; they are also what the log records.

use std::time::Duration;

/// Something went wrong reaching an upstream or reading its answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {registry} unreachable: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("upstream {registry} did not answer within {after:?}")]
    Timeout { registry: String, after: Duration },
    #[error("upstream {registry} stalled: no data for {after:?}")]
    Stalled { registry: String, after: Duration },
    #[error("upstream {registry} authentication failed: {detail}")]
    Auth { registry: String, detail: String },
    #[error("upstream {registry} sent a bad redirect: {detail}")]
    Redirect { registry: String, detail: String },
    #[error("upstream {registry} connection failed while reading the body: {detail}")]
    Body { registry: String, detail: String },
    #[error("upstream {registry} sent {what} larger than the {limit}-byte limit")]
    TooLarge {
        registry: String,
        what: &'static str,
        limit: usize,
    },
    #[error("cannot set up the client for upstream {registry}: {detail}")]
    Setup { registry: String, detail: String },
}

/// Walks an error's `source()` chain into one line, so "connection refused" is not lost behind
/// hyper's generic "client error (Connect)".
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
