//! Offline Sigstore verification: trusted roots, bundles (v0.1–v0.3), Fulcio certificate
//! chains, embedded SCTs, Rekor v1/v2 transparency-log proofs and RFC 3161 timestamps
//! (trust-formats.md §2).
//!
//! Nothing here touches the network or the wall clock: callers pass the trusted root, the
//! evidence and the time. Every function fails closed: any parse error, unknown algorithm or
//! failed check is an error, never a pass.
//!
//! - [`trusted_root`]: `trusted_root.json` → logs, CAs and TSAs with their validity windows.
//! - [`bundle`]: the bundle JSON → typed evidence, with size and count caps.
//! - [`cert`]: one parsed X.509 certificate with its exact DER.
//! - [`signature`]: X.509 signature algorithms (certificate, SCT, timestamp signatures).
//! - [`chain`]: certificate path validation at a given time for a given extended key usage.
//! - [`fulcio`]: the signer identity (SAN, OIDC issuer) and identity policies.
//! - [`sct`]: embedded signed certificate timestamps (RFC 6962).
//! - [`merkle`], [`checkpoint`], [`tlog`]: transparency-log entries: SET, inclusion proof,
//!   signed checkpoint, and the entry body bound to the signature it claims to log.
//! - [`tsa`]: RFC 3161 timestamp responses.
//! - [`verify`]: the whole check, in sigstore-go's order.

pub mod bundle;
pub mod cert;
pub mod chain;
pub mod checkpoint;
pub mod fulcio;
pub mod intoto;
pub mod merkle;
pub mod sct;
pub mod signature;
pub mod tlog;
pub mod trusted_root;
pub mod tsa;
pub mod verify;
