//! The command line (design.md §7): `check-config` on good, bad and shipped configuration
//! files, the embedded default, and exit status 64 for unusable configurations from both
//! `check-config` and `serve`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Exit status for an unusable configuration (`EX_USAGE`).
const EXIT_CONFIG: i32 = 64;

fn pullgate() -> Command {
    guarded(env!("CARGO_BIN_EXE_pullgate"))
}

/// Runs `pullgate check-config` (with `--config path` if given) and returns its exit status
/// and output.
fn check_config(path: Option<&Path>) -> (ExitStatus, Output) {
    let mut cmd = pullgate();
    cmd.arg("check-config");
    if let Some(p) = path {
        cmd.arg("--config").arg(p);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("cannot run pullgate");
    let status = out.status;
    let out = Output {
        ok: status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (status, out)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_accepts_a_good_file_and_prints_its_registries_trust_and_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&tmp.path().join("ca"));
    let key = rcgen::KeyPair::generate().unwrap();
    write(tmp.path(), "acme.pub", &key.public_key_pem());
    write(tmp.path(), "ghcr-password", "token\n");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:5000"
shutdown_grace = "10s"

[audit]
path = "-"
on_error = "deny"

[[registry]]
name = "docker.io"
url = "https://registry-1.docker.io"
aliases = ["index.docker.io"]
default = true

[[registry]]
name = "ghcr.io"
url = "https://ghcr.io"
ca_file = "{ca}"
username_env = "PULLGATE_CLI_TEST_USER"
password_file = "ghcr-password"
connect_timeout = "5s"

[[trust]]
name = "acme"
kind = "cosign-key"
keys = ["acme.pub"]

[[rule]]
name = "acme-apps"
images = ["ghcr.io/acme/**"]
mode = "enforce"
trust = ["acme"]
signature_repository = "ghcr.io/acme/signatures"
predicate_types = ["https://slsa.dev/provenance/v1"]

[[rule]]
name = "everything-else"
images = ["**"]
mode = "warn"
trust = ["acme"]

[typosquat]
mode = "block"
"#,
        ca = ca.ca_cert.display()
    );
    let path = write(tmp.path(), "good.toml", &text);
    let mut cmd = pullgate();
    cmd.args(["check-config", "--config"])
        .arg(&path)
        .env("PULLGATE_CLI_TEST_USER", "bot");
    let out = run(&mut cmd);
    assert!(out.ok, "{}", out.text());
    for want in [
        "valid",
        "docker.io",
        "index.docker.io",
        "ghcr.io",
        "credentials",
        "acme",
        "acme-apps",
        "ghcr.io/acme/**",
        "signatures in ghcr.io/acme/signatures",
        "attestations count: https://slsa.dev/provenance/v1",
        "everything-else",
    ] {
        assert!(
            out.stdout.contains(want),
            "summary lacks {want:?}:\n{}",
            out.stdout
        );
    }
    let lower = out.stdout.to_lowercase();
    for want in [
        "registries",
        "trust",
        "rules",
        "enforce",
        "warn",
        "block",
        "cosign",
    ] {
        assert!(
            lower.contains(want),
            "summary lacks {want:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn check_config_without_a_file_validates_the_embedded_default() {
    let (status, out) = check_config(None);
    assert_eq!(status.code(), Some(0), "{}", out.text());
    assert!(out.stdout.contains("embedded default"), "{}", out.stdout);
    assert!(out.stdout.contains("docker.io"), "{}", out.stdout);
    assert!(out.stdout.contains("127.0.0.1:5000"), "{}", out.stdout);
}

#[test]
fn unknown_key_exits_64_naming_the_key_and_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "[server]\nlisten = \"127.0.0.1:0\"\nlsiten = \"127.0.0.1:5000\"\n\n[[registry]]\nname = \"docker.io\"\nurl = \"https://registry-1.docker.io\"\ndefault = true\n";
    let path = write(tmp.path(), "typo.toml", text);
    let (status, out) = check_config(Some(&path));
    assert_eq!(status.code(), Some(EXIT_CONFIG), "{}", out.text());
    assert!(out.stderr.contains("lsiten"), "{}", out.stderr);
    assert!(out.stderr.contains("line 3"), "{}", out.stderr);
    assert!(!out.stdout.contains("valid"), "{}", out.stdout);
}

/// Semantically wrong files, each with a fragment its error message must contain.
fn bad_configs() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let hub = "[[registry]]\nname = \"docker.io\"\nurl = \"https://registry-1.docker.io\"\ndefault = true\n";
    vec![
        (
            "enforce rule without trust",
            format!("{hub}\n[[rule]]\nname = \"strict\"\nimages = [\"**\"]\nmode = \"enforce\"\n"),
            vec!["strict", "enforce", "trust"],
        ),
        (
            "two default registries",
            format!("{hub}\n[[registry]]\nname = \"ghcr.io\"\nurl = \"https://ghcr.io\"\ndefault = true\n"),
            vec!["default"],
        ),
        (
            "credentials from an unset variable",
            format!("{hub}\n[[registry]]\nname = \"ghcr.io\"\nurl = \"https://ghcr.io\"\nusername_env = \"PULLGATE_CLI_TEST_UNSET_USER\"\npassword_env = \"PULLGATE_CLI_TEST_UNSET_PASS\"\n"),
            vec!["ghcr.io", "PULLGATE_CLI_TEST_UNSET_USER", "not set"],
        ),
        (
            "rule naming an undefined trust source",
            format!("{hub}\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\nmode = \"enforce\"\ntrust = [\"nobody\"]\n"),
            vec!["nobody", "not defined"],
        ),
        ("no registry at all", "[server]\nlisten = \"127.0.0.1:0\"\n".to_owned(), vec!["registry"]),
        (
            "signature repository on an unconfigured registry",
            format!("{hub}\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\nmode = \"warn\"\nsignature_repository = \"quay.io/acme/sigs\"\n"),
            vec!["rule \"r\"", "signature_repository", "\"quay.io\" is not configured"],
        ),
        (
            "predicate type that is not a URI",
            format!("{hub}\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\nmode = \"warn\"\npredicate_types = [\"slsa\"]\n"),
            vec!["rule \"r\"", "predicate_types", "not an absolute URI"],
        ),
    ]
}

#[test]
fn semantically_bad_configs_exit_64_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (what, text, wants)) in bad_configs().into_iter().enumerate() {
        let path = write(tmp.path(), &format!("bad{i}.toml"), &text);
        let mut cmd = pullgate();
        cmd.args(["check-config", "--config"])
            .arg(&path)
            .env_remove("PULLGATE_CLI_TEST_UNSET_USER")
            .env_remove("PULLGATE_CLI_TEST_UNSET_PASS");
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{what}: {stderr}");
        assert!(stderr.contains("configuration error"), "{what}: {stderr}");
        for want in wants {
            assert!(
                stderr.contains(want),
                "{what}: message lacks {want:?}: {stderr}"
            );
        }
    }
}

#[test]
fn serve_with_a_bad_config_exits_64_without_listening() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let hub = "[[registry]]\nname = \"docker.io\"\nurl = \"https://registry-1.docker.io\"\ndefault = true\n";
    let configs = [
        ("unknown key", format!("[server]\nlisten = \"127.0.0.1:{port}\"\nlsiten = \"x\"\n\n{hub}")),
        (
            "enforce rule without trust",
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n{hub}\n[[rule]]\nname = \"strict\"\nimages = [\"**\"]\nmode = \"enforce\"\n"),
        ),
    ];
    for (i, (what, text)) in configs.iter().enumerate() {
        let path = write(tmp.path(), &format!("serve{i}.toml"), text);
        let mut child = pullgate()
            .args(["serve", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start pullgate");
        // A pullgate that started serving would never exit by itself.
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: pullgate serve kept running with a bad config");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{what}: {stderr}");
        assert!(stderr.contains("configuration error"), "{what}: {stderr}");
        assert!(!stderr.contains("listening"), "{what}: {stderr}");
    }
}

/// Every `*.toml` below `dir`, recursively.
fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
}

#[test]
fn every_shipped_example_config_passes_check_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files = Vec::new();
    toml_files(&dir, &mut files);
    assert!(!files.is_empty(), "no *.toml files under {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let (status, out) = check_config(Some(f));
        if status.code() != Some(0) || !out.stdout.contains("valid") {
            failures.push(format!("{} (exit {status}):\n{}", f.display(), out.text()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} example configs fail check-config:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
