//! pullgate: a container-registry pull proxy that checks every manifest's digest against trust
//! data before letting a pull through.
//!
//! Module map:
//! - [`cli`]: command-line parsing and subcommands (the binary in `main.rs` only calls it).
//! - [`config`]: the TOML configuration, validated into runtime types.
//! - [`server`]: listener, TLS, graceful shutdown; `server::proxy` handles the pull API,
//!   `server::route` parses paths, `server::respond` turns errors into OCI error responses.
//! - [`registry`]: OCI names and digests, name resolution, the upstream client with token and
//!   Basic auth, manifest integrity and streamed blob verification.

pub mod cli;
pub mod config;
pub mod registry;
pub mod server;
