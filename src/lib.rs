//! pullgate: a container-registry pull proxy that checks every manifest's digest against trust
//! data before letting a pull through.
//!
//! Module map:
//! - [`audit`]: the pull audit record and its sink.
//! - [`cache`]: the verdict cache with single flight, and index child grants.
//! - [`cli`]: command-line parsing and subcommands (the binary in `main.rs` only calls it).
//! - [`clock`]: the one place that reads the wall clock.
//! - [`config`]: the TOML configuration, validated into runtime types.
//! - [`notary`]: offline Notary v1 (Docker Content Trust) metadata verification: root
//!   bootstrap and rotation, timestamp, snapshot, targets and delegations, tag -> digest.
//! - [`server`]: listener, TLS, graceful shutdown; `server::proxy` handles the pull API,
//!   `server::route` parses paths, `server::respond` turns errors into OCI error responses.
//! - [`policy`]: the pure decision: which rule applies and whether the evidence satisfies it.
//! - [`trust`]: trust sources and the `Verified` proof values they produce.
//! - [`registry`]: OCI names and digests, name resolution, the upstream client with token and
//!   Basic auth, manifest integrity and streamed blob verification.
//! - [`sigstore`]: offline Sigstore verification (bundles, Fulcio, Rekor, RFC 3161), used by
//!   the cosign trust sources and `pullgate verify-bundle`.
//! - [`typosquat`]: pure name-similarity checks that flag look-alike image names, namespaces
//!   and registry hosts; its built-in reference lists live in `data/typosquat/`.

pub mod audit;
pub mod cache;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod config;
pub mod notary;
pub mod policy;
pub mod registry;
pub mod server;
pub mod sigstore;
pub mod trust;
pub mod typosquat;
