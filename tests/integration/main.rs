//! pullgate's integration tests: one test binary, real components on loopback.
//!
//! Modules:
//! - `support`: starting docker-registry and pullgate, building and pushing test images.
//! - `pull`: pulls through pullgate with skopeo against plain, TLS and Basic-auth registries.
//! - `api`: the pull API surface (routes, refusals, pagination, HEAD, ranges) and shutdown.
//! - `faults`: failure paths against a deliberately broken fake upstream.
//! - `clients`: pulls with dockerd, containerd's ctr and podman.
//! - `token_auth`: the Bearer token flow against a real registry with token auth.
//! - `token_issuer`: a test token issuer (ES256 JWTs with `x5c`, distribution token spec) over
//!   HTTP or HTTPS, recording every request; for the registry and the notary server.
//! - `typosquat_gate`: the typosquat check in the proxy (block and warn) with skopeo.
//! - `cli`: the command line: check-config, exit codes, the shipped example configs.
//! - `cosign_key`: the `cosign-key` trust source end to end: cosign-format signatures pushed
//!   to a real registry, pulls with skopeo allowed or refused with the reason.
//! - `oci_push`: exact bytes to a registry: blobs and manifests through the upload API, cosign
//!   `.sig` manifests, Sigstore bundles under the referrers fallback tag.
//! - `sigstore_signer`: a test-only Sigstore (Fulcio-like CA, CT log and Rekor keys, trusted
//!   root) issuing keyless certificates, `.sig` layers and bundles; checked with
//!   `pullgate verify-bundle`.
//! - `sigstore_tsa`: a test-only RFC 3161 timestamp authority for that Sigstore (root, leaf
//!   with critical EKU timeStamping, DER TimeStampResp over a signature at a chosen time).
//! - `cosign_keyless`: the `cosign-keyless` trust source end to end: keyless `.sig` layers and
//!   Sigstore bundles pushed to a real registry, pulls with skopeo, dockerd, ctr and podman
//!   allowed or refused with the reason.
//! - `sigstore_conformance`: `pullgate verify-bundle` on every sigstore-conformance
//!   bundle-verify case and on a real cosign v3 bundle.
//! - `typosquat_eval`: typosquat detection scored on the shared labelled names (precision,
//!   recall, F1, false-positive rate) and official images that are near neighbours.
//! - `trust_gate`: the trust gate with pin files, end to end: enforce and warn mode with every
//!   client, moved tags, indexes, broken and reloaded pin files, audit records, single flight,
//!   client login and `pullgate verify`.
//! - `notary_support`: Docker Content Trust infrastructure: the real notary-signer and
//!   notary-server on loopback, and the real notary CLI publishing trust data (init with a
//!   server-managed snapshot key, `targets/releases` delegations, signed tags).
//! - `notary_infra`: sanity test of that infrastructure: every role served in notary's dialect
//!   and URL layout, signed tags naming the exact manifest bytes, 404 for unpublished GUNs,
//!   re-signing, and a stopped server refusing connections.
//! - `notary_trust`: the `notary` trust source end to end: trust data published with the
//!   real notary CLI, pulls with skopeo, dockerd and ctr allowed or refused with the reason,
//!   re-signing, a stopped notary server, root pinning and first use.
//! - `notary_token`: the `notary` trust source against a notary server that requires Bearer
//!   tokens from the test token issuer: anonymous tokens for the fully qualified GUN reused
//!   across pulls, and a token service that needs the source's configured credentials.

mod api;
mod cli;
mod clients;
mod cosign_key;
mod cosign_keyless;
mod faults;
mod notary_infra;
mod notary_support;
mod notary_token;
mod notary_trust;
mod oci_push;
mod pull;
mod sigstore_conformance;
mod sigstore_signer;
mod sigstore_tsa;
mod support;
mod token_auth;
mod token_issuer;
mod trust_gate;
mod typosquat_eval;
mod typosquat_gate;
