//! pullgate's integration tests: one test binary, real components on loopback.
//!
//! Modules:
//! - `support`: starting docker-registry and pullgate, building and pushing test images.
//! - `pull`: pulls through pullgate with skopeo against plain, TLS and Basic-auth registries.

mod pull;
mod support;
