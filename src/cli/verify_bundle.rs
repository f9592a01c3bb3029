//! `pullgate verify-bundle`: one Sigstore bundle checked offline, with the arguments of the
//! sigstore-conformance client protocol, so the public conformance suite can drive the same
//! verifier the proxy uses.
//!
//! ```text
//! pullgate verify-bundle --bundle F (--certificate-identity I --certificate-oidc-issuer U | --key K)
//!                        [--trusted-root F] FILE_OR_DIGEST
//! ```
//!
//! FILE_OR_DIGEST is the artifact's path, or `sha256:<hex>` when only its digest is known.
//! pullgate never fetches a trusted root: without `--trusted-root` there is nothing to trust,
//! which is an error (exit 1), not a fallback to the network.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use crate::clock::{Clock as _, SystemClock};
use crate::registry::Digest;
use crate::sigstore::bundle::Bundle;
use crate::sigstore::fulcio::{IdentityPolicy, Matcher};
use crate::sigstore::trusted_root::TrustedRoot;
use crate::sigstore::verify::{self, Artifact, Policy};
use crate::trust::cosign::keys::CosignPublicKey;

/// Artifacts are read whole to hash and check; this bounds what a mistaken path can cost.
const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["certificate_identity", "key"])))]
pub struct Args {
    /// The Sigstore bundle (JSON).
    #[arg(long)]
    bundle: PathBuf,
    /// The expected certificate SAN (exact).
    #[arg(long, requires = "certificate_oidc_issuer")]
    certificate_identity: Option<String>,
    /// The expected OIDC issuer (exact).
    #[arg(long, requires = "certificate_identity")]
    certificate_oidc_issuer: Option<String>,
    /// A PEM public key, for bundles signed with a managed key.
    #[arg(long, conflicts_with_all = ["certificate_identity", "certificate_oidc_issuer"])]
    key: Option<PathBuf>,
    /// The Sigstore trusted_root.json to verify against.
    #[arg(long)]
    trusted_root: Option<PathBuf>,
    /// Accepted for protocol compatibility; pullgate never fetches a root, so it needs
    /// `--trusted-root` either way.
    #[arg(long, hide = true)]
    staging: bool,
    /// The artifact file, or `sha256:<hex>`.
    file_or_digest: String,
}

pub fn run(args: Args) -> ExitCode {
    match check(&args) {
        Ok(summary) => {
            outln!("OK: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pullgate: verification failed: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn check(args: &Args) -> anyhow::Result<String> {
    let Some(root_path) = &args.trusted_root else {
        bail!("no --trusted-root given (pullgate does not fetch one)");
    };
    let root = TrustedRoot::load(root_path)
        .with_context(|| format!("trusted root {}", root_path.display()))?;
    let bundle_bytes = read_capped(
        &args.bundle,
        crate::sigstore::bundle::MAX_BUNDLE_BYTES as u64,
    )
    .with_context(|| format!("bundle {}", args.bundle.display()))?;
    let bundle = Bundle::from_json(&bundle_bytes)
        .with_context(|| format!("bundle {}", args.bundle.display()))?;

    let artifact_bytes;
    let artifact = if args.file_or_digest.starts_with("sha256:") {
        let d: Digest = args.file_or_digest.parse().context("artifact digest")?;
        Artifact::Sha256(d.sha256_bytes().context("artifact digest is not sha256")?)
    } else {
        artifact_bytes = read_capped(Path::new(&args.file_or_digest), MAX_ARTIFACT_BYTES)
            .with_context(|| format!("artifact {}", args.file_or_digest))?;
        Artifact::Bytes(&artifact_bytes)
    };

    let key;
    let identities;
    let policy = match (
        &args.key,
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
    ) {
        (Some(path), _, _) => {
            key = CosignPublicKey::load(path)?;
            Policy::Key(&key)
        }
        (None, Some(subject), Some(issuer)) => {
            identities = [IdentityPolicy {
                issuer: Matcher::exact(issuer),
                subject: Matcher::exact(subject),
            }];
            Policy::Identities(&identities)
        }
        _ => bail!("give --certificate-identity and --certificate-oidc-issuer, or --key"),
    };

    let verified = verify::verify(&bundle, artifact, policy, &root, SystemClock.now())?;
    let times: Vec<String> = verified
        .times
        .iter()
        .map(|t| format!("{} ({})", crate::clock::rfc3339_millis(t.time), t.source))
        .collect();
    Ok(format!(
        "signed by {} at {}",
        verified.signer,
        times.join(", ")
    ))
}

/// The error and its causes, skipping a cause whose text the message already shows (error
/// types that print their source and also return it).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn read_capped(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)?.len();
    if len > limit {
        bail!("larger than {limit} bytes");
    }
    Ok(std::fs::read(path)?)
}
