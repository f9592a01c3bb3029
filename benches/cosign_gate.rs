//! The cosign trust gate end to end: what verifying a keyed `.sig`, a keyless `.sig` and a
//! Sigstore bundle costs a pull through pullgate, cold and warm, and what enforcing costs at
//! 64 concurrent clients. Issue #4's benchmark.
//!
//! Run with `cargo bench --bench cosign_gate` (about two minutes). One run, one machine:
//! a real `docker-registry`, two pullgates in front of it (every rule `mode = "off"`, and the
//! same rules enforcing), `curl` for sequential requests on one kept-alive connection, `wrk`
//! for concurrency. Everything listens on 127.0.0.1.
//!
//! The same small image is pushed to `bench/keyed`, `bench/keyless` and `bench/bundle`, each
//! under tags `1.0` and `t1`..`tN`, and signed there: a cosign `.sig` by a P-256 key, a keyless
//! `.sig` layer (certificate, SCT, Rekor entry with SET) and a cosign v3 DSSE bundle under the
//! referrers fallback tag (inclusion proof, checkpoint, SET), both by the test Sigstore of the
//! integration tests (`tests/integration/sigstore_signer.rs`, which stands in for Fulcio, the
//! CT log and Rekor because they cannot run here). A verdict is cached per tag, so each `tN`
//! is one cold verification: the signature lookups upstream (`.sig` tag and referrers or the
//! fallback tag, concurrently), the blob or bundle fetch, and the verification.
//!
//! Reported per kind:
//! - `gate`: the gate's own wall time per cold verification (`verified … elapsed_us`, debug
//!   log), upstream round trips included;
//! - `cpu`: pullgate CPU per cold request minus CPU per request through the `off` pullgate,
//!   i.e. the verification beyond proxying the manifest (signature fetches' own CPU included;
//!   `cargo bench --bench sigstore` measures the verifier alone, without any fetch);
//! - end-to-end latency of the cold, warm (verdict cache hit), off and direct passes;
//! - req/s at 64 connections for the signed image's `1.0`: direct, off, enforce (warm).
//!
//! `cargo test --all-targets` runs this unoptimised and without `--bench`: then it is a smoke
//! run with 3 tags and 1-second wrk runs that checks every decision and audit record but
//! whose numbers mean nothing.

// support.rs allows dead code itself; the others are used in part here.
#[path = "../tests/integration/support.rs"]
mod support;

#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/oci_push.rs"]
mod oci_push;

#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/sigstore_signer.rs"]
mod sigstore_signer;

#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/sigstore_tsa.rs"]
mod sigstore_tsa;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Map, Value};
use spki::EncodePublicKey as _;

use oci_push::*;
use sigstore_signer::*;
use support::*;

/// The three signature shapes, by repository.
const KINDS: [&str; 3] = ["keyed", "keyless", "bundle"];
const CONNS: u32 = 64;
const REGISTRY: &str = "registry.bench";

struct Params {
    full: bool,
    tags: usize,
    wrk_duration: &'static str,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let p = if full {
        Params {
            full,
            tags: 200,
            wrk_duration: "10s",
        }
    } else {
        Params {
            full,
            tags: 3,
            wrk_duration: "1s",
        }
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let lab = Lab::new(tmp.path(), &p);
    let off = Gate::start(&lab, "off");
    let enforce = Gate::start(&lab, "enforce");
    lab.check_decisions(&off, &enforce);

    let mut report = String::new();
    let mut results = Vec::new();
    for kind in KINDS {
        let r = measure(&lab, &p, kind, &off, &enforce);
        results.push(r);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        report,
        "\npullgate cosign gate benchmark: {} tags per kind, wrk {} at {CONNS} connections, {} CPUs, load {}",
        p.tags,
        p.wrk_duration,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
    .unwrap();
    if !p.full {
        writeln!(
            report,
            "SMOKE RUN (no --bench, unoptimised): numbers mean nothing"
        )
        .unwrap();
    }
    writeln!(
        report,
        "\n{:8} {:>22} {:>16} {:>44} {:>30}",
        "kind",
        "gate ms med/p99",
        "CPU ms/verify",
        "end-to-end ms median: cold warm off direct",
        "req/s @64: direct off enforce"
    )
    .unwrap();
    for r in &results {
        writeln!(
            report,
            "{:8} {:>10.3} / {:>9.3} {:>16.3} {:>14.3} {:>7.3} {:>7.3} {:>7.3}   {:>14.0} {:>7.0} {:>7.0}  (enforce/off {:.3})",
            r.kind,
            r.gate_ms.median,
            r.gate_ms.p99,
            r.cpu_ms_per_verify,
            r.e2e["cold"].median,
            r.e2e["warm"].median,
            r.e2e["off"].median,
            r.e2e["direct"].median,
            r.rps["direct"],
            r.rps["off"],
            r.rps["enforce"],
            r.rps["enforce"] / r.rps["off"],
        )
        .unwrap();
    }
    writeln!(
        report,
        "\nTarget: cold keyless verification <= 5 ms of CPU beyond the upstream fetches (CPU column)."
    )
    .unwrap();
    print!("{report}");

    if p.full {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
        std::fs::create_dir_all(&dir).expect("results dir");
        let t = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let file = dir.join(format!("cosign-{stamp}.json"));
        let doc = json!({
            "date": stamp,
            "tags_per_kind": p.tags,
            "wrk_duration": p.wrk_duration,
            "conns": CONNS,
            "loadavg": load.trim(),
            "kinds": results.iter().map(Measured::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(&file, serde_json::to_vec_pretty(&doc).expect("json")).expect("write");
        println!(
            "results written to benches/results/{}",
            file.file_name().and_then(|f| f.to_str()).unwrap_or("?")
        );
    }
}

// === the lab: registry, images, signatures ===

struct Lab {
    dir: PathBuf,
    reg: Registry,
    key_pub: PathBuf,
    trusted_root: PathBuf,
    tags: usize,
}

impl Lab {
    fn new(dir: &Path, p: &Params) -> Lab {
        let reg = Registry::start(&dir.join("reg"), RegistryOptions::default());
        let work = dir.join("uploads");
        std::fs::create_dir_all(&work).expect("work dir");
        let image = TestImage::oci("cosign gate bench image", "amd64", 0);
        let digest = image.manifest_digest.clone();
        for repo in KINDS.iter().chain(&["unsigned"]) {
            push_image(&reg, &image, &format!("bench/{repo}:1.0"), &work);
        }
        for kind in KINDS {
            for i in 1..=p.tags {
                put_manifest(
                    &reg,
                    &format!("bench/{kind}"),
                    &format!("t{i}"),
                    OCI_MANIFEST,
                    &image.manifest,
                    &work,
                );
            }
        }

        // Keyed: a P-256 key, the signature annotation over the exact payload bytes.
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let key_pub = dir.join("cosign.pub");
        let pem = p256::PublicKey::from(sk.verifying_key())
            .to_public_key_pem(spki::der::pem::LineEnding::LF)
            .expect("pem");
        std::fs::write(&key_pub, pem).expect("write key");
        let payload = cosign_payload(&reg.host(), "bench/keyed", &digest);
        let sig: p256::ecdsa::Signature = sk.sign(&payload);
        let mut annotations = Map::new();
        annotations.insert(
            SIGNATURE_ANNOTATION.into(),
            base64::engine::general_purpose::STANDARD
                .encode(sig.to_der().as_bytes())
                .into(),
        );
        push_signature(
            &reg,
            "bench/keyed",
            &digest,
            &[(payload, annotations)],
            &work,
        );

        // Keyless: a `.sig` layer and a bundle from the test Sigstore.
        let sigstore = MiniSigstore::new();
        let trusted_root = dir.join("trusted_root.json");
        sigstore.write_trusted_root(&trusted_root);
        let now = just_now();
        let leaf = sigstore.leaf(IDENTITY, ISSUER, now - time::Duration::minutes(1));
        let payload = cosign_payload(&reg.host(), "bench/keyless", &digest);
        let layer = sigstore.sig_layer(&leaf, &payload, now.unix_timestamp());
        push_signature(&reg, "bench/keyless", &digest, &[(payload, layer)], &work);
        let bundle = sigstore.dsse_bundle(&leaf, &digest, COSIGN_SIGN, now.unix_timestamp());
        push_bundles(
            &reg,
            "bench/bundle",
            &Subject::image(&image),
            &[(bundle, COSIGN_SIGN)],
            &work,
        );
        Lab {
            dir: dir.to_owned(),
            reg,
            key_pub,
            trusted_root,
            tags: p.tags,
        }
    }

    fn config(&self, mode: &str, port: u16) -> String {
        let rule = |name: &str, images: &str, trust: &str| {
            format!("[[rule]]\nname = \"{name}\"\nimages = [{images}]\nmode = \"{mode}\"\ntrust = [\"{trust}\"]\n")
        };
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[audit]\npath = \"{audit}\"\n\n\
             [[registry]]\nname = \"{REGISTRY}\"\nurl = \"{url}\"\ndefault = true\n\n\
             [[trust]]\nname = \"key\"\nkind = \"cosign-key\"\nkeys = [\"{key}\"]\n\n\
             [[trust]]\nname = \"sigstore\"\nkind = \"cosign-keyless\"\ntrusted_root = \"{root}\"\n\
             identities = [{{ issuer = \"{ISSUER}\", subject = \"{IDENTITY}\" }}]\n\n\
             {keyed}\n{keyless}\n{rest}\n[typosquat]\nmode = \"off\"\n",
            audit = self.dir.join(format!("audit-{mode}.jsonl")).display(),
            url = self.reg.url,
            key = self.key_pub.display(),
            root = self.trusted_root.display(),
            keyed = rule("keyed", &format!("\"{REGISTRY}/bench/keyed\""), "key"),
            keyless = rule(
                "keyless",
                &format!("\"{REGISTRY}/bench/keyless\", \"{REGISTRY}/bench/bundle\""),
                "sigstore"
            ),
            rest = rule("rest", "\"**\"", "key"),
        )
    }

    /// Signed images pass both gates; the unsigned one only the gate that is off.
    fn check_decisions(&self, off: &Gate, enforce: &Gate) {
        for kind in KINDS {
            for g in [off, enforce] {
                let code = status(&format!("{}/v2/bench/{kind}/manifests/1.0", g.url));
                assert_eq!(code, 200, "{kind}:1.0 through {}", g.mode);
            }
        }
        assert_eq!(
            status(&format!("{}/v2/bench/unsigned/manifests/1.0", off.url)),
            200
        );
        assert_eq!(
            status(&format!("{}/v2/bench/unsigned/manifests/1.0", enforce.url)),
            403,
            "the enforcing gate must refuse the unsigned image"
        );
        let audit = enforce.audit();
        for kind in KINDS {
            let rec = audit
                .iter()
                .find(|r| r["image"] == format!("{REGISTRY}/bench/{kind}"))
                .unwrap_or_else(|| panic!("no audit record for {kind}"));
            assert_eq!(rec["decision"], "allow", "{rec}");
            assert_eq!(rec["signers"].as_array().map(Vec::len), Some(1), "{rec}");
        }
    }
}

/// The simple-signing payload cosign writes for `repo` at `digest` (trust-formats.md §1.4).
fn cosign_payload(registry: &str, repo: &str, digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{registry}/{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

// === pullgate ===

struct Gate {
    mode: &'static str,
    url: String,
    log: PathBuf,
    audit: PathBuf,
    proc: Process,
}

impl Gate {
    fn start(lab: &Lab, mode: &'static str) -> Gate {
        let port = free_port();
        let cfg = lab.dir.join(format!("{mode}.toml"));
        std::fs::write(&cfg, lab.config(mode, port)).expect("write config");
        let log = lab.dir.join(format!("pullgate-{mode}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
            .args(["serve", "--config"])
            .arg(&cfg)
            // As shipped (info), plus the gate's one line per verification.
            .env("PULLGATE_LOG", "info,pullgate::server::gate=debug")
            .envs(EGRESS_GUARD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("cannot start pullgate");
        let mut proc = Process {
            child,
            name: format!("pullgate {mode}"),
        };
        wait_for_port(port, &mut proc.child, &proc.name);
        Gate {
            mode,
            url: format!("http://127.0.0.1:{port}"),
            log,
            audit: lab.dir.join(format!("audit-{mode}.jsonl")),
            proc,
        }
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit record is JSON"))
            .collect()
    }

    /// The gate's `elapsed_us` of every verification logged so far.
    fn verified_us(&self) -> Vec<f64> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("pullgate::server::gate: verified"))
            .filter_map(|l| l.split("elapsed_us=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// User + system CPU time of the process so far.
    fn cpu(&self) -> Duration {
        cpu_of(self.proc.child.id())
    }
}

fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f[11] + f[12];
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

fn status(url: &str) -> u16 {
    let out = run_ok(guarded("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Accept: {OCI_MANIFEST}"),
        url,
    ]));
    out.trim().parse().expect("status code")
}

// === measuring ===

#[derive(Clone, Copy, Default)]
struct Stats {
    median: f64,
    p99: f64,
    max: f64,
    n: usize,
}

fn stats(mut v: Vec<f64>) -> Stats {
    if v.is_empty() {
        return Stats::default();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Stats {
        median: at(0.5),
        p99: at(0.99),
        max: v[v.len() - 1],
        n: v.len(),
    }
}

struct Measured {
    kind: &'static str,
    gate_ms: Stats,
    cpu_ms_per_verify: f64,
    cpu_ms_cold: f64,
    cpu_ms_off: f64,
    e2e: BTreeMap<&'static str, Stats>,
    rps: BTreeMap<&'static str, f64>,
}

impl Measured {
    fn to_json(&self) -> Value {
        let s = |s: &Stats| json!({"median": s.median, "p99": s.p99, "max": s.max, "count": s.n});
        json!({
            "kind": self.kind,
            "gate_verify_ms": s(&self.gate_ms),
            "cpu_ms_per_cold_request_enforce": self.cpu_ms_cold,
            "cpu_ms_per_request_off": self.cpu_ms_off,
            "cpu_ms_per_verification": self.cpu_ms_per_verify,
            "end_to_end_ms": self.e2e.iter().map(|(k, v)| (k.to_string(), s(v))).collect::<Map<_, _>>(),
            "requests_per_s_64": self.rps,
        })
    }
}

/// Requests `1.0` then `t1..tN` of `bench/KIND` at `base` on one kept-alive connection;
/// the milliseconds of `t1..tN`, each of which must answer 200.
fn sequential(lab: &Lab, base: &str, kind: &str, name: &str) -> Vec<f64> {
    let cfg = lab.dir.join(format!("batch-{kind}-{name}.curl"));
    let mut text = format!("header = \"Accept: {OCI_MANIFEST}\"\n");
    for r in std::iter::once("1.0".to_owned()).chain((1..=lab.tags).map(|i| format!("t{i}"))) {
        writeln!(
            text,
            "url = \"{base}/v2/bench/{kind}/manifests/{r}\"\noutput = \"/dev/null\""
        )
        .unwrap();
    }
    std::fs::write(&cfg, text).expect("write curl config");
    let out = run_ok(guarded("curl").args([
        "-s",
        "--max-time",
        "30",
        "-K",
        &cfg.display().to_string(),
        "-w",
        "%{http_code} %{time_total}\n",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), lab.tags + 1, "{name} {kind}: {out}");
    lines[1..]
        .iter()
        .map(|l| {
            let (code, secs) = l.split_once(' ').expect("curl line");
            assert_eq!(code, "200", "{name} {kind}: {l}");
            secs.parse::<f64>().expect("seconds") * 1000.0
        })
        .collect()
}

fn wrk(url: &str, duration: &str) -> f64 {
    let out = run_ok(guarded("wrk").args([
        "-t2",
        &format!("-c{CONNS}"),
        &format!("-d{duration}"),
        "--timeout",
        "10s",
        "-H",
        &format!("Accept: {OCI_MANIFEST}"),
        url,
    ]));
    assert!(
        !out.contains("Non-2xx") && !out.contains("Socket errors"),
        "wrk saw errors: {out}"
    );
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output: {out}"))
}

fn measure(lab: &Lab, p: &Params, kind: &'static str, off: &Gate, enforce: &Gate) -> Measured {
    let n = lab.tags as f64;
    let before_audit = enforce.audit().len();
    let before_verified = enforce.verified_us().len();

    let c0 = enforce.cpu();
    let cold = sequential(lab, &enforce.url, kind, "cold");
    let c1 = enforce.cpu();
    let audit = enforce.audit();
    let verified = enforce.verified_us();
    let warm = sequential(lab, &enforce.url, kind, "warm");
    let o0 = off.cpu();
    let offp = sequential(lab, &off.url, kind, "off");
    let o1 = off.cpu();
    let direct = sequential(lab, &lab.reg.url, kind, "direct");

    // The cold pass verified every tag (1.0 was verified earlier: a hit); the warm pass hit.
    let kinds = |recs: &[Value]| {
        let mut m = BTreeMap::new();
        for r in recs {
            *m.entry(format!(
                "{}/{}",
                r["cache"].as_str().unwrap_or("null"),
                r["decision"].as_str().unwrap_or("?")
            ))
            .or_insert(0) += 1;
        }
        m
    };
    let cold_recs = &audit[before_audit..];
    let want_cold = BTreeMap::from([
        ("hit/allow".to_owned(), 1),
        ("miss/allow".to_owned(), lab.tags),
    ]);
    assert_eq!(
        kinds(cold_recs),
        want_cold,
        "{kind}: cold pass audit records"
    );
    let all = enforce.audit();
    let warm_recs = &all[audit.len()..];
    let want_warm = BTreeMap::from([("hit/allow".to_owned(), lab.tags + 1)]);
    assert_eq!(
        kinds(warm_recs),
        want_warm,
        "{kind}: warm pass audit records"
    );
    let gate_us = verified[before_verified..].to_vec();
    assert_eq!(
        gate_us.len(),
        lab.tags,
        "{kind}: one 'verified' line per cold tag"
    );

    let cpu_ms_cold = (c1 - c0).as_secs_f64() * 1000.0 / (n + 1.0);
    let cpu_ms_off = (o1 - o0).as_secs_f64() * 1000.0 / (n + 1.0);

    let mut rps = BTreeMap::new();
    for (name, base) in [
        ("direct", lab.reg.url.as_str()),
        ("off", off.url.as_str()),
        ("enforce", enforce.url.as_str()),
    ] {
        rps.insert(
            name,
            wrk(
                &format!("{base}/v2/bench/{kind}/manifests/1.0"),
                p.wrk_duration,
            ),
        );
    }
    Measured {
        kind,
        gate_ms: stats(gate_us.iter().map(|us| us / 1000.0).collect()),
        cpu_ms_per_verify: cpu_ms_cold - cpu_ms_off,
        cpu_ms_cold,
        cpu_ms_off,
        e2e: BTreeMap::from([
            ("cold", stats(cold)),
            ("warm", stats(warm)),
            ("off", stats(offp)),
            ("direct", stats(direct)),
        ]),
        rps,
    }
}
