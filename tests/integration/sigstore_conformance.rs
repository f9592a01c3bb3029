//! `pullgate verify-bundle` on every case of the sigstore-conformance bundle-verify suite in
//! `../shared/testdata/sigstore/bundle-verify/`, driven exactly as the conformance harness
//! drives a client: `_fail` cases must exit 1, every other case must exit 0. Also the real
//! cosign v3 bundle (kubewarden controller) with its real identity and with wrong ones.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::*;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn sigstore_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sigstore")
}

struct Run {
    ok: bool,
    code: Option<i32>,
    output: String,
}

fn verify_bundle(args: &[&std::ffi::OsStr]) -> Run {
    let out = guarded(env!("CARGO_BIN_EXE_pullgate"))
        .arg("verify-bundle")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run pullgate");
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The arguments the conformance harness passes for one case directory.
fn case_args(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> =
        vec!["--bundle".into(), dir.join("bundle.sigstore.json").into()];
    if dir.join("key.pub").exists() {
        args.push("--key".into());
        args.push(dir.join("key.pub").into());
    } else {
        let read = |name: &str, default: &str| {
            std::fs::read_to_string(dir.join(name))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| default.to_owned())
        };
        args.push("--certificate-identity".into());
        args.push(read("identity", DEFAULT_IDENTITY).into());
        args.push("--certificate-oidc-issuer".into());
        args.push(read("issuer", DEFAULT_ISSUER).into());
    }
    let root = if dir.join("trusted_root.json").exists() {
        dir.join("trusted_root.json")
    } else {
        sigstore_dir().join("trusted_root.production.json")
    };
    args.push("--trusted-root".into());
    args.push(root.into());
    let artifact = if dir.join("artifact").exists() {
        dir.join("artifact")
    } else {
        sigstore_dir().join("bundle-verify/a.txt")
    };
    args.push(artifact.into());
    args
}

#[test]
fn every_conformance_case_is_decided_as_named() {
    let root = sigstore_dir().join("bundle-verify");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("conformance cases")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 50,
        "expected the whole suite, found {}",
        cases.len()
    );

    let mut wrong = Vec::new();
    let (mut passed, mut failed_as_expected) = (0, 0);
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let args = case_args(dir);
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let run = verify_bundle(&refs);
        let expect_ok = !name.ends_with("_fail");
        // A failure must be a verification failure (exit 1), not a crash or usage error.
        let right = if expect_ok {
            run.ok
        } else {
            run.code == Some(1)
        };
        if right {
            if expect_ok {
                passed += 1;
            } else {
                failed_as_expected += 1;
            }
        } else {
            wrong.push(format!(
                "{name}: exit {:?}: {}",
                run.code,
                run.output.trim()
            ));
        }
        eprintln!("{name}: exit {:?}: {}", run.code, run.output.trim());
    }
    eprintln!(
        "conformance: {passed} verified, {failed_as_expected} rejected as expected, {} wrong",
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "cases decided wrongly:\n{}",
        wrong.join("\n")
    );
}

const KUBEWARDEN_IDENTITY: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";

fn kubewarden(identity: &str, issuer: &str, digest: &str) -> Run {
    let dir = sigstore_dir();
    let args: Vec<std::ffi::OsString> = vec![
        "--bundle".into(),
        dir.join("kubewarden-controller-v1.34.0.bundle_v03.json")
            .into(),
        "--certificate-identity".into(),
        identity.into(),
        "--certificate-oidc-issuer".into(),
        issuer.into(),
        "--trusted-root".into(),
        dir.join("trusted_root.production.json").into(),
        digest.into(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    verify_bundle(&refs)
}

/// The image digest the kubewarden bundle's statement names (read from the bundle itself, so
/// the test does not restate the fixture).
fn kubewarden_subject() -> String {
    let bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sigstore_dir().join("kubewarden-controller-v1.34.0.bundle_v03.json"))
            .unwrap(),
    )
    .unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    format!(
        "sha256:{}",
        statement["subject"][0]["digest"]["sha256"]
            .as_str()
            .unwrap()
    )
}

#[test]
fn real_cosign_v3_bundle_verifies_with_its_identity_only() {
    let subject = kubewarden_subject();
    let run = kubewarden(KUBEWARDEN_IDENTITY, DEFAULT_ISSUER, &subject);
    assert!(run.ok, "{}", run.output);
    assert!(run.output.contains("kubewarden"), "{}", run.output);

    for (identity, issuer) in [
        (
            "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.33.0",
            DEFAULT_ISSUER,
        ),
        (KUBEWARDEN_IDENTITY, "https://accounts.google.com"),
        (DEFAULT_IDENTITY, DEFAULT_ISSUER),
    ] {
        let run = kubewarden(identity, issuer, &subject);
        assert_eq!(run.code, Some(1), "{identity} / {issuer}: {}", run.output);
        assert!(run.output.contains("matches no trusted identity"), "{}", run.output);
    }

    // Another digest: the statement is not about it.
    let other = format!("sha256:{}", "ab".repeat(32));
    let run = kubewarden(KUBEWARDEN_IDENTITY, DEFAULT_ISSUER, &other);
    assert_eq!(run.code, Some(1), "{}", run.output);
}

#[test]
fn missing_trusted_root_is_a_clear_error() {
    let dir = sigstore_dir().join("bundle-verify/happy-path-v0.3");
    let args: Vec<std::ffi::OsString> = vec![
        "--bundle".into(),
        dir.join("bundle.sigstore.json").into(),
        "--certificate-identity".into(),
        DEFAULT_IDENTITY.into(),
        "--certificate-oidc-issuer".into(),
        DEFAULT_ISSUER.into(),
        sigstore_dir().join("bundle-verify/a.txt").into(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let run = verify_bundle(&refs);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("--trusted-root"), "{}", run.output);
}
