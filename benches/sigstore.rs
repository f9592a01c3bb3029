//! Cold Sigstore verification cost, without any upstream round trip: how much CPU one
//! `sigstore::verify` of a keyless bundle takes (parse included), for the bundle shapes
//! pullgate meets.
//!
//! Run with `cargo bench --bench sigstore`. The first round of each case also verifies the
//! trusted root's own certificate links (Fulcio intermediate by root, TSA leaf by root), which
//! are then remembered for the process; its time shows as `max`. Target (issue #4): cold keyless verification
//! ≤ 5 ms of CPU beyond the upstream fetches.
//!
//! Inputs are the shared real fixtures (never copied into the repository):
//! - the cosign v3 DSSE bundle of kubewarden-controller v1.34.0 (Rekor v1 entry with SET and
//!   inclusion proof, RFC 3161 timestamp, production trusted root) — a bundle found by
//!   referrers;
//! - the conformance happy-path v0.1 message-signature bundle (SET only, P-384 leaf) — the
//!   shape a legacy keyless `.sig` layer is turned into;
//! - the conformance rekor2 happy path (Rekor v2 checkpoint, TSA time, staging root).
//!
//! Each verification is timed on its own with the thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`), so other load on the machine does not count; nothing is
//! cached between runs (the verifier has no cache).

use std::path::{Path, PathBuf};
use std::time::Duration;

use pullgate::sigstore::bundle::Bundle;
use pullgate::sigstore::fulcio::{IdentityPolicy, Matcher};
use pullgate::sigstore::trusted_root::TrustedRoot;
use pullgate::sigstore::verify::{verify, Artifact, Policy};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

const ROUNDS: usize = 200;
/// `cargo test --all-targets` runs this unoptimised and without `--bench`: then a few rounds
/// only check that every case verifies; timings mean nothing.
const SMOKE_ROUNDS: usize = 3;
const TARGET: Duration = Duration::from_millis(5);

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/sigstore")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn thread_cpu() -> Duration {
    let mut ts = libc_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the struct we pass.
    unsafe {
        clock_gettime(3 /* CLOCK_THREAD_CPUTIME_ID */, &mut ts)
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[repr(C)]
struct libc_timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clk: i32, ts: *mut libc_timespec) -> i32;
}

struct Case {
    name: &'static str,
    bundle: Vec<u8>,
    root: TrustedRoot,
    /// The artifact's bytes (message signatures), or `None` to verify by `digest`.
    bytes: Option<Vec<u8>>,
    artifact: [u8; 32],
    identity: IdentityPolicy,
}

fn main() {
    let timing = std::env::args().any(|a| a == "--bench");
    let rounds = if timing { ROUNDS } else { SMOKE_ROUNDS };
    let conformance_identity = IdentityPolicy {
        issuer: Matcher::exact("https://token.actions.githubusercontent.com"),
        subject: Matcher::exact("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"),
    };
    let production = TrustedRoot::from_json(&read("trusted_root.production.json")).unwrap();
    let a_txt: [u8; 32] = Sha256::digest(read("bundle-verify/a.txt")).into();

    // The kubewarden statement's subject is the image digest; read it from the bundle.
    let kw = read("kubewarden-controller-v1.34.0.bundle_v03.json");
    let kw_json: serde_json::Value = serde_json::from_slice(&kw).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(kw_json["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let mut kw_digest = [0u8; 32];
    hex::decode_to_slice(
        statement["subject"][0]["digest"]["sha256"]
            .as_str()
            .unwrap(),
        &mut kw_digest,
    )
    .unwrap();

    let cases = [
        Case {
            name: "cosign v3 DSSE bundle (referrers)",
            bundle: kw,
            root: production.clone(),
            bytes: None,
            artifact: kw_digest,
            identity: IdentityPolicy {
                issuer: Matcher::exact("https://token.actions.githubusercontent.com"),
                subject: Matcher::exact("https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"),
            },
        },
        Case {
            name: "v0.1 message signature (.sig shape)",
            bundle: read("bundle-verify/happy-path-v0.1/bundle.sigstore.json"),
            root: production.clone(),
            bytes: Some(read("bundle-verify/a.txt")),
            artifact: a_txt,
            identity: conformance_identity.clone(),
        },
        Case {
            name: "Rekor v2 + RFC 3161 bundle",
            bundle: read("bundle-verify/rekor2-happy-path/bundle.sigstore.json"),
            root: TrustedRoot::from_json(&read("bundle-verify/rekor2-happy-path/trusted_root.json"))
                .unwrap(),
            bytes: Some(read("bundle-verify/a.txt")),
            artifact: a_txt,
            identity: conformance_identity,
        },
    ];

    println!("cold keyless verification, CPU per verification ({rounds} rounds, parse included)");
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "bundle", "median", "p99", "max"
    );
    let mut worst = Duration::ZERO;
    for c in &cases {
        let identities = [c.identity.clone()];
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = thread_cpu();
            let bundle = Bundle::from_json(&c.bundle).unwrap();
            verify(
                &bundle,
                match &c.bytes {
                    Some(b) => Artifact::Bytes(b),
                    None => Artifact::Sha256(c.artifact),
                },
                Policy::Identities(&identities),
                &c.root,
                OffsetDateTime::now_utc(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            times.push(thread_cpu() - start);
        }
        times.sort();
        let median = times[rounds / 2];
        let p99 = times[rounds * 99 / 100];
        let max = times[rounds - 1];
        worst = worst.max(median);
        println!(
            "{:<40} {:>8.2}ms {:>8.2}ms {:>8.2}ms",
            c.name,
            ms(median),
            ms(p99),
            ms(max)
        );
    }
    if !timing {
        println!("(smoke run without --bench: timings are not meaningful)");
        return;
    }
    println!(
        "target: median ≤ {:.0} ms CPU: {}",
        ms(TARGET),
        if worst <= TARGET { "PASS" } else { "MISS" }
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
