//! Typosquat detection against the labelled names in `../shared/testdata/typosquat/`:
//! precision, recall, F1 and false-positive rate over `eval-visible.tsv` (a name is "flagged"
//! when the verdict is suspect, at any severity), and the official images that are each
//! other's near neighbours in `official-near-pairs.tsv`, which must not flag each other.
//! Also `pullgate typosquat` (design.md §7), run as a process.
//!
//! The detector never sees these files: it runs on its built-in reference set only, so the
//! numbers measure the rules, not a copy of the answers.

use std::path::PathBuf;
use std::process::Command;

use pullgate::typosquat::{normalize, Detector, ReferenceSet};

fn testdata(file: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/typosquat")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the typosquat test data {}: {e} (it lives in the shared test data, next to the repository)",
            path.display()
        )
    });
    (path, text)
}

fn detector() -> Detector {
    Detector::new(ReferenceSet::builtin(), Vec::new())
}

/// Rows of a tab-separated file with a header line.
fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

#[test]
fn eval_visible_f1_is_at_least_095_with_at_most_2_percent_false_positives() {
    let (path, text) = testdata("eval-visible.tsv");
    let d = detector();
    let (mut tp, mut fp, mut tn, mut fn_) = (0u32, 0u32, 0u32, 0u32);
    let mut wrong = Vec::new();
    for row in rows(&text) {
        let (name, label) = (row[0], row[1]);
        let note = row.get(3).copied().unwrap_or("");
        let squat = match label {
            "squat" => true,
            "legit" => false,
            other => panic!("{}: unknown label {other:?} for {name}", path.display()),
        };
        let v = d.check(&normalize(name));
        match (squat, v.suspect) {
            (true, true) => tp += 1,
            (false, false) => tn += 1,
            (false, true) => {
                fp += 1;
                wrong.push(format!(
                    "  false positive: {name} -> {:?} ({}) {note}",
                    v.similar_to,
                    v.reason.unwrap_or_default()
                ));
            }
            (true, false) => {
                fn_ += 1;
                wrong.push(format!("  missed: {name} (target {}) {note}", row[2]));
            }
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp).max(1.0);
    let recall = f64::from(tp) / f64::from(tp + fn_).max(1.0);
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE);
    let fpr = f64::from(fp) / f64::from(fp + tn).max(1.0);
    println!(
        "typosquat eval over {}: {} squats, {} legit",
        path.display(),
        tp + fn_,
        fp + tn
    );
    println!("  tp {tp}  fp {fp}  tn {tn}  fn {fn_}");
    println!(
        "  precision {precision:.4}  recall {recall:.4}  F1 {f1:.4}  false-positive rate {:.2}%",
        fpr * 100.0
    );
    for w in &wrong {
        println!("{w}");
    }
    assert!(f1 >= 0.95, "F1 {f1:.4} is below 0.95");
    assert!(
        fpr <= 0.02,
        "false-positive rate {:.2}% is above 2%",
        fpr * 100.0
    );
}

#[test]
fn official_near_pairs_do_not_flag_each_other() {
    let (_, text) = testdata("official-near-pairs.tsv");
    let d = detector();
    let mut pairs = 0;
    for row in rows(&text) {
        for name in [row[0], row[1]] {
            for spelled in [
                name.to_owned(),
                format!("library/{name}"),
                format!("docker.io/library/{name}"),
            ] {
                let v = d.check(&normalize(&spelled));
                assert!(!v.suspect, "{spelled} (near {}) was flagged: {v:?}", {
                    if name == row[0] {
                        row[1]
                    } else {
                        row[0]
                    }
                });
            }
        }
        pairs += 1;
    }
    assert!(pairs >= 20, "only {pairs} near pairs read");
}

/// Runs `pullgate typosquat ARGS…`; returns the exit code and the JSON objects printed.
fn typosquat_cli(args: &[&str]) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .arg("typosquat")
        .args(args)
        .output()
        .expect("cannot run pullgate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), lines, stderr)
}

#[test]
fn typosquat_command_prints_one_json_object_per_name_and_exits_0() {
    let (code, lines, _) = typosquat_cli(&["nginx:1.27", "ngnix", "ghcr.io/org/app@sha256:00"]);
    assert_eq!(code, Some(0));
    assert_eq!(lines.len(), 3);
    let keys: Vec<&str> = lines[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "name",
        "normalized",
        "suspect",
        "similar_to",
        "severity",
        "reason",
    ] {
        assert!(keys.contains(&key), "{key} missing from {}", lines[1]);
    }
    assert_eq!(lines[0]["normalized"], "docker.io/library/nginx");
    assert_eq!(lines[0]["suspect"], false);
    assert_eq!(lines[0]["severity"], serde_json::Value::Null);
    assert_eq!(lines[1]["name"], "ngnix");
    assert_eq!(lines[1]["suspect"], true);
    assert_eq!(lines[1]["similar_to"], "docker.io/library/nginx");
    assert_eq!(lines[1]["severity"], "medium");
    assert_eq!(lines[2]["normalized"], "ghcr.io/org/app");
}

#[test]
fn typosquat_command_uses_known_files_and_allow_globs_from_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("known.txt"), "# ours\nacme/widget\n").unwrap();
    let config = dir.path().join("pullgate.toml");
    std::fs::write(
        &config,
        r#"[[registry]]
name = "docker.io"
url = "https://registry-1.docker.io"
default = true

[[rule]]
name = "all"
images = ["**"]
mode = "warn"

[typosquat]
mode = "block"
known = ["known.txt"]
allow = ["docker.io/library/ngnix"]
"#,
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let (code, lines, _) = typosquat_cli(&[
        "--config",
        cfg,
        "acme/widget",
        "acme/widgett",
        "ngnix",
        "nginxx",
    ]);
    assert_eq!(code, Some(0));
    let suspect: Vec<bool> = lines.iter().map(|l| l["suspect"] == true).collect();
    assert_eq!(suspect, [false, true, false, true], "{lines:#?}");
    assert_eq!(lines[1]["similar_to"], "docker.io/acme/widget");

    std::fs::write(dir.path().join("known.txt"), "acme/bad name\n").unwrap();
    let (code, lines, stderr) = typosquat_cli(&["--config", cfg, "nginx"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(lines.is_empty());
    assert!(
        stderr.contains("known.txt") && stderr.contains("line 1"),
        "{stderr}"
    );
}
