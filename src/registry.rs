//! The OCI distribution side: names and digests, the upstream client with its authentication,
//! name resolution, manifest integrity and streamed blob verification.

pub mod auth;
pub mod blob;
mod body;
pub mod client;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod reference;
pub mod resolve;

pub use body::read_capped;
pub use client::{Upstream, UpstreamRequest};
pub use digest::Digest;
pub use error::UpstreamError;
pub use reference::{Reference, Repository};
pub use resolve::{ResolveError, Resolver, Target};
