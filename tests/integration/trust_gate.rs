//! End-to-end tests of the trust gate (design.md §3, §5, §8, §9) with `pins` trust: a real
//! docker-registry upstream, pin keys made with `pullgate pins keygen`, pin files signed with
//! `pullgate pins sign`, and pulls with skopeo, dockerd (registry mirror), containerd's `ctr`
//! (hosts.toml) and podman (registries.conf rewrite), plus curl and raw HTTP where the exact
//! answer matters.
//!
//! Covered: enforce mode per client, a tag moved upstream after pinning, image indexes and
//! their children, warn mode, expired, tampered and untrusted pin files, pin file reload and
//! rollback, the audit record of every manifest request, single-flight verification, client
//! login with a users file, and `pullgate verify`. Not covered here: the other trust kinds
//! (not implemented yet) and typosquat detection.
//!
//! Nothing waits on a fixed sleep: where state changes in the background (pin file reload,
//! expiry) the test polls for the decision it expects, within a bound.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clients::{hosts_dir, logged, Containerd, Dockerd, Podman};
use crate::support::*;

/// The `Accept` of a client that takes every manifest type: docker-registry will not serve an
/// OCI manifest to a client that does not list the OCI types.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Every Docker Hub name must be pinned.
const HUB_RULE: &str =
    "[[rule]]\nname = \"hub\"\nimages = [\"docker.io/**\"]\nmode = \"enforce\"\ntrust = [\"pins\"]\n";

/// An expiry no test outlives.
const FAR_FUTURE: &str = "2099-01-01T00:00:00Z";

/// How long a test waits for state that changes in the background.
const PATIENCE: Duration = Duration::from_secs(60);

// === Pin keys and pin files, through the command line ===

fn pullgate() -> Command {
    guarded(env!("CARGO_BIN_EXE_pullgate"))
}

/// A pin signing key pair made by `pullgate pins keygen`.
struct PinKey {
    private: PathBuf,
    public: PathBuf,
    /// The full key id keygen printed.
    id: String,
}

impl PinKey {
    /// Runs `pullgate pins keygen --out DIR/NAME`.
    fn generate(dir: &Path, name: &str) -> PinKey {
        std::fs::create_dir_all(dir).unwrap();
        let out = run_ok(
            pullgate()
                .args(["pins", "keygen", "--out"])
                .arg(dir.join(name)),
        );
        // "wrote DIR/NAME.key and DIR/NAME.pub (key id HEX)"
        let id = out
            .trim()
            .rsplit_once("(key id ")
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no key id in keygen output {out:?}"))
            .to_owned();
        let private = dir.join(format!("{name}.key"));
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the private key is readable by others");
        PinKey {
            private,
            public: dir.join(format!("{name}.pub")),
            id,
        }
    }

    /// The key id as identities and messages show it (`KeyId::short`).
    fn short_id(&self) -> &str {
        &self.id[..16]
    }

    /// Runs `pullgate pins sign` on `input`.
    fn try_sign(&self, input: &Value) -> Output {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = self.private.with_file_name(format!(
            "input-{}.json",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, input.to_string()).unwrap();
        run(pullgate()
            .args(["pins", "sign", "--key"])
            .arg(&self.private)
            .arg(&path))
    }

    /// Signs `input` and returns the pin file text.
    fn sign(&self, input: &Value) -> String {
        let out = self.try_sign(input);
        assert!(out.ok, "pins sign failed:\n{}", out.text());
        out.stdout
    }
}

/// A `pins sign` input pinning each `(image, tag, digest)`.
fn pin_input(expires: &str, version: u64, pins: &[(&str, &str, &str)]) -> Value {
    let mut images = json!({});
    for (image, tag, digest) in pins {
        images[*image]["tags"][*tag] = json!(digest);
    }
    json!({"expires": expires, "version": version, "images": images})
}

/// Replaces the pin file at once, as operators should: pullgate never sees half a file.
fn install_pins(path: &Path, text: &str) {
    let tmp = path.with_extension("json.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// === Configuration ===

/// A pullgate configuration: listen on a free port, audit to `DIR/audit.jsonl`, typosquat off.
fn gate_toml(dir: &Path, server: &str, registries: &str, trust: &str, rules: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n{server}\n\n[audit]\npath = \"{}\"\n\n{registries}\n{trust}\n{rules}\n[typosquat]\nmode = \"off\"\n",
        dir.join("audit.jsonl").display()
    )
}

/// A `kind = "pins"` trust source.
fn pins_trust(name: &str, file: &Path, keys: &[&Path]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("\"{}\"", k.display()))
        .collect();
    format!(
        "[[trust]]\nname = \"{name}\"\nkind = \"pins\"\nfile = \"{}\"\nkeys = [{}]\n",
        file.display(),
        keys.join(", ")
    )
}

// === Fixture ===

/// What most tests start from: a docker-registry holding `library/hello:1.0` (an OCI image),
/// `library/unpinned:1.0` (an image no pin file names) and `library/multi:1.0` (an amd64 +
/// arm64 index); a pin key; and a pin file (version 1) pinning `hello:1.0` and `multi:1.0` by
/// tag.
struct Upstream {
    tmp: tempfile::TempDir,
    reg: Registry,
    key: PinKey,
    pins: PathBuf,
    hello: TestImage,
    unpinned: TestImage,
    multi: TestIndex,
}

impl Upstream {
    fn new() -> Upstream {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
        let hello = TestImage::oci("hello, pinned", "amd64", 0);
        let unpinned = TestImage::oci("nobody pinned me", "amd64", 0);
        let multi = TestIndex::multi("a pinned index", &["amd64", "arm64"]);
        let key = PinKey::generate(&tmp.path().join("keys"), "pins");
        let pins = tmp.path().join("pins.json");
        let up = Upstream {
            tmp,
            reg,
            key,
            pins,
            hello,
            unpinned,
            multi,
        };
        up.push_image(&up.hello, "library/hello:1.0");
        up.push_image(&up.unpinned, "library/unpinned:1.0");
        up.push_index(&up.multi, "library/multi:1.0");
        install_pins(&up.pins, &up.key.sign(&up.pin_input(FAR_FUTURE, 1)));
        up
    }

    /// The pins of the initial file: `hello:1.0` and `multi:1.0`.
    fn pin_input(&self, expires: &str, version: u64) -> Value {
        pin_input(
            expires,
            version,
            &[
                (
                    "docker.io/library/hello",
                    "1.0",
                    &self.hello.manifest_digest,
                ),
                ("docker.io/library/multi", "1.0", &self.multi.index_digest),
            ],
        )
    }

    /// Pushes `img` to `REPO:TAG` on the registry with skopeo.
    fn push_image(&self, img: &TestImage, target: &str) {
        let mut layout = Layout::new(&self.layout_dir(&img.manifest_digest));
        layout.add_image(img, "t");
        skopeo_push(&layout, "t", &format!("{}/{target}", self.reg.host()), &[]);
    }

    /// Pushes `idx` with all its children to `REPO:TAG`.
    fn push_index(&self, idx: &TestIndex, target: &str) {
        let mut layout = Layout::new(&self.layout_dir(&idx.index_digest));
        layout.add_index(idx, "t");
        skopeo_push(
            &layout,
            "t",
            &format!("{}/{target}", self.reg.host()),
            &["--all"],
        );
    }

    fn layout_dir(&self, digest: &str) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        self.tmp.path().join(format!(
            "layout-{}-{}",
            &digest["sha256:".len()..][..12],
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The configuration of a pullgate in `TMP/NAME` that mirrors the registry as Docker Hub,
    /// with this pin file and key as trust source `pins`, `rules`, and `server` added to
    /// `[server]`.
    fn config(&self, name: &str, rules: &str, server: &str) -> (PathBuf, String) {
        let dir = self.tmp.path().join(name);
        let config = gate_toml(
            &dir,
            server,
            &registry_toml("docker.io", &self.reg.url, true, ""),
            &pins_trust("pins", &self.pins, &[&self.key.public]),
            rules,
        );
        (dir, config)
    }

    /// Starts pullgate with [`Upstream::config`].
    fn pullgate(&self, name: &str, rules: &str, server: &str) -> Pullgate {
        let (dir, config) = self.config(name, rules, server);
        Pullgate::start(&dir, &config)
    }

    /// The test index's image for this machine's platform.
    fn native_child(&self) -> &TestImage {
        // `TestIndex::multi` keeps the order of the architectures it was given.
        match std::env::consts::ARCH {
            "x86_64" => &self.multi.children[0],
            "aarch64" => &self.multi.children[1],
            other => panic!("the test index has no image for {other}"),
        }
    }
}

/// The client-facing message of a denial (design.md §9).
fn denial(image_ref: &str, rule: &str, reasons: &str) -> String {
    format!("pullgate: {image_ref} denied by rule '{rule}': {reasons}")
}

/// `IMAGE:TAG` or `IMAGE@DIGEST`, as messages name what was asked for.
fn image_ref(image: &str, reference: &str) -> String {
    let sep = if reference.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    format!("{image}{sep}{reference}")
}

/// Why an image no pin names is refused under rule `hub`.
fn not_pinned(image: &str, reference: &str) -> String {
    denial(
        &image_ref(image, reference),
        "hub",
        &format!("no valid signature from pins; pins: no pins for {image}"),
    )
}

// === HTTP ===

/// One answer: status, the response head (as sent) and the body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The `code` and `message` of an OCI error document.
    fn oci_error(&self) -> (String, String) {
        let v: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an OCI error document ({e}): {}", self.describe()));
        let e = &v["errors"][0];
        (
            e["code"].as_str().unwrap_or_default().to_owned(),
            e["message"].as_str().unwrap_or_default().to_owned(),
        )
    }

    fn describe(&self) -> String {
        format!("{}\n{}", self.head.trim_end(), self.body)
    }
}

/// Requests `path` from pullgate with curl, accepting every manifest type; `extra` goes to curl.
fn http(pg: &Pullgate, method: &str, path: &str, extra: &[&str]) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let mut cmd = guarded("curl");
    cmd.args(["-sS", "--globoff", "-H"])
        .arg(format!("Accept: {ACCEPT}"))
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body);
    if method == "HEAD" {
        cmd.arg("--head");
    }
    cmd.args(extra).arg(format!("http://{}{path}", pg.host()));
    let out = run(&mut cmd);
    assert!(
        out.ok,
        "curl {method} {path} did not complete:\n{}",
        out.text()
    );
    let heads = std::fs::read_to_string(&head).unwrap();
    let last = heads.trim_end().rsplit("\r\n\r\n").next().unwrap_or("");
    let status = last
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {last:?}"));
    Reply {
        status,
        head: last.to_owned(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    }
}

fn get(pg: &Pullgate, path: &str) -> Reply {
    http(pg, "GET", path, &[])
}

/// Asserts that pullgate refuses `path` with 403 `DENIED` and `message`.
fn assert_denied(pg: &Pullgate, path: &str, message: &str) {
    let r = get(pg, path);
    assert_eq!(r.status, 403, "{path}: {}", r.describe());
    assert_eq!(
        r.oci_error(),
        ("DENIED".to_owned(), message.to_owned()),
        "{path}"
    );
}

/// GETs `path` until `done` holds for the answer; fails after [`PATIENCE`].
fn poll_until(pg: &Pullgate, path: &str, what: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = get(pg, path);
        if done(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}; last answer for {path}:\n{}\npullgate log:\n{}",
            r.describe(),
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until some line of pullgate's log holds every one of `parts`.
fn wait_for_log(pg: &Pullgate, parts: &[&str]) {
    let deadline = Instant::now() + PATIENCE;
    while !logged(&pg.log(), parts) {
        assert!(
            Instant::now() < deadline,
            "pullgate did not log {parts:?} within {PATIENCE:?}:\n{}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The audit records pullgate wrote so far.
fn audit_records(pg: &Pullgate) -> Vec<Value> {
    std::fs::read_to_string(pg.dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?} is not JSON: {e}"))
        })
        .collect()
}

/// The audit records for `image` at `reference`.
fn audited(pg: &Pullgate, image: &str, reference: &str) -> Vec<Value> {
    audit_records(pg)
        .into_iter()
        .filter(|r| r["image"] == image && r["reference"] == reference)
        .collect()
}

/// Copies `docker://SRC` to `dir:OUT` with skopeo.
fn skopeo_copy(src: &str, out: &Path, extra: &[&str]) -> Output {
    run(guarded("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{src}"))
        .arg(format!("dir:{}", out.display())))
}

// === Enforce mode, client by client ===

#[test]
fn enforce_mode_lets_skopeo_pull_the_pinned_tag_and_digest_and_skopeo_prints_why_an_unpinned_image_is_denied(
) {
    let up = Upstream::new();
    let pg = up.pullgate("pg", HUB_RULE, "");
    let sources = [
        format!("{}/hello:1.0", pg.host()),
        format!("{}/library/hello@{}", pg.host(), up.hello.manifest_digest),
    ];
    for (i, src) in sources.iter().enumerate() {
        let out = up.tmp.path().join(format!("out{i}"));
        let r = skopeo_copy(src, &out, &[]);
        assert!(r.ok, "{src}:\n{}\npullgate log:\n{}", r.text(), pg.log());
        // The manifest pulled is byte for byte the pinned one, and so are its blobs.
        assert_dir_has_image(&out, &up.hello);
    }

    // skopeo GETs the manifest and prints the OCI error message:
    //   FATA[0000] initializing source docker://127.0.0.1:PORT/unpinned:1.0: reading manifest
    //   1.0 in 127.0.0.1:PORT/unpinned: denied: pullgate: docker.io/library/unpinned:1.0 denied
    //   by rule 'hub': no valid signature from pins; pins: no pins for docker.io/library/unpinned
    let r = skopeo_copy(
        &format!("{}/unpinned:1.0", pg.host()),
        &up.tmp.path().join("refused"),
        &[],
    );
    assert!(!r.ok, "an unpinned image was pulled:\n{}", r.text());
    let reason = not_pinned("docker.io/library/unpinned", "1.0");
    assert!(
        r.stderr.contains(&format!("denied: {reason}")),
        "{}",
        r.text()
    );
}

#[test]
fn enforce_mode_lets_dockerd_pull_the_pinned_digest_tag_and_index_through_its_mirror_and_dockerd_logs_why_an_unpinned_image_is_denied(
) {
    let up = Upstream::new();
    let pg = up.pullgate("pg", HUB_RULE, "");
    let dockerd = Dockerd::start(
        &up.tmp.path().join("dockerd"),
        &format!("http://{}", pg.host()),
    );
    let pull = |reference: &str| {
        let r = run(dockerd.docker().args(["pull", reference]));
        assert!(
            r.ok,
            "docker pull {reference}:\n{}\npullgate log:\n{}\ndockerd log:\n{}",
            r.text(),
            pg.log(),
            dockerd.log()
        );
    };
    let allowed = |image: &str, reference: &str| {
        let recs = audited(&pg, image, reference);
        assert!(
            recs.iter().any(|r| r["decision"] == "allow"),
            "pullgate did not allow {image} {reference}: {recs:?}"
        );
    };

    // By digest first, so that the manifest must come from the mirror, then by tag.
    let hello = &up.hello.manifest_digest;
    pull(&format!("hello@{hello}"));
    allowed("docker.io/library/hello", hello);
    pull("hello:1.0");
    allowed("docker.io/library/hello", "1.0");
    let (id, repo_digests) = dockerd.inspect("hello:1.0");
    assert_eq!(id, up.hello.config.digest, "image ID is the config digest");
    assert!(
        repo_digests.contains(&format!("hello@{hello}")),
        "{repo_digests:?}"
    );

    // The index is allowed by its pinned tag; the child for this platform because the verified
    // index lists it.
    pull("multi:1.0");
    let native = up.native_child();
    let (id, repo_digests) = dockerd.inspect("multi:1.0");
    assert_eq!(id, native.config.digest);
    assert!(
        repo_digests.contains(&format!("multi@{}", up.multi.index_digest)),
        "{repo_digests:?}"
    );
    allowed("docker.io/library/multi", "1.0");
    let child = audited(&pg, "docker.io/library/multi", &native.manifest_digest);
    assert_eq!(child.len(), 1, "{child:?}");
    assert_eq!(child[0]["decision"], "allow");
    assert_eq!(
        child[0]["reasons"],
        json!([format!(
            "listed in verified index {}",
            up.multi.index_digest
        )])
    );

    // dockerd treats the mirror's 403 like any mirror error: its log has
    //   Attempting next endpoint for pull after error: denied: pullgate: docker.io/library/
    //   unpinned:1.0 denied by rule 'hub': …
    // and it falls back to registry-1.docker.io, which the egress guard blocks; the CLI shows
    // only that last error (a mirror is no enforcement boundary, design.md §1).
    let r = run(dockerd.docker().args(["pull", "unpinned:1.0"]));
    assert!(!r.ok, "an unpinned image was pulled:\n{}", r.text());
    let reason = not_pinned("docker.io/library/unpinned", "1.0");
    assert!(
        logged(
            &dockerd.log(),
            &["Attempting next endpoint", &format!("denied: {reason}")]
        ),
        "dockerd did not log pullgate's reason:\n{}",
        dockerd.log()
    );
    assert!(
        r.stderr.contains("registry-1.docker.io") && r.stderr.contains("127.0.0.1:9"),
        "the CLI error is not the blocked Hub fallback:\n{}",
        r.text()
    );
}

#[test]
fn enforce_mode_lets_ctr_pull_the_pinned_tag_digest_and_index_and_ctr_shows_the_denial_in_the_status_line_for_an_unpinned_image(
) {
    let up = Upstream::new();
    let pg = up.pullgate("pg", HUB_RULE, "");
    let containerd = Containerd::start(&up.tmp.path().join("containerd"));
    let hosts = hosts_dir(&up.tmp.path().join("hosts"), &["docker.io"], &pg.host());

    let hello = &up.hello.manifest_digest;
    let cases = [
        ("docker.io/library/hello:1.0".to_owned(), hello),
        (format!("docker.io/library/hello@{hello}"), hello),
        (
            "docker.io/library/multi:1.0".to_owned(),
            &up.multi.index_digest,
        ),
    ];
    for (reference, digest) in &cases {
        let r = containerd.pull(&hosts, reference);
        assert!(
            r.ok,
            "ctr pull {reference}:\n{}\npullgate log:\n{}\ncontainerd log:\n{}",
            r.text(),
            pg.log(),
            containerd.log()
        );
        assert_eq!(
            containerd.image_digest(reference).as_ref(),
            Some(*digest),
            "ctr images ls digest of {reference}"
        );
    }
    let child = audited(
        &pg,
        "docker.io/library/multi",
        &up.native_child().manifest_digest,
    );
    assert!(
        child.iter().any(|r| r["decision"] == "allow"),
        "the index child was not pulled through pullgate: {child:?}"
    );

    // containerd resolves a tag with HEAD, so the 403 has no body to show, and ctr prints only
    // the status line; pullgate puts its message in the reason phrase, so that line is
    //   ctr: failed to resolve reference "docker.io/library/unpinned:1.0": pulling from host
    //   127.0.0.1:PORT failed with status code [manifests 1.0]: 403 pullgate: docker.io/library/
    //   unpinned:1.0 denied by rule 'hub': no valid signature from pins; pins: no pins for …
    let r = containerd.pull(&hosts, "docker.io/library/unpinned:1.0");
    assert!(!r.ok, "an unpinned image was pulled:\n{}", r.text());
    let shown = format!(
        "pulling from host {} failed with status code [manifests 1.0]: 403 {}",
        pg.host(),
        not_pinned("docker.io/library/unpinned", "1.0")
    );
    assert!(r.stderr.contains(&shown), "{}", r.text());
    // ctr sends the HEAD more than once before it gives up; each is refused and audited.
    let recs = audited(&pg, "docker.io/library/unpinned", "1.0");
    assert!(!recs.is_empty(), "the refusal was not audited");
    for rec in &recs {
        assert_eq!(rec["method"], "HEAD", "{rec}");
        assert_eq!(rec["decision"], "deny", "{rec}");
        assert_eq!(
            rec["reasons"],
            json!([
                "no valid signature from pins",
                "pins: no pins for docker.io/library/unpinned"
            ]),
            "{rec}"
        );
    }
}

#[test]
fn enforce_mode_lets_podman_pull_the_pinned_tag_and_digest_and_podman_prints_why_an_unpinned_image_is_denied(
) {
    let up = Upstream::new();
    let pg = up.pullgate("pg", HUB_RULE, "");
    let conf = format!(
        "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}/docker.io\"\ninsecure = true\n",
        pg.host()
    );
    let podman = Podman::new(&up.tmp.path().join("podman"), &conf);

    let hello = &up.hello.manifest_digest;
    for reference in [
        "docker.io/library/hello:1.0".to_owned(),
        format!("docker.io/library/hello@{hello}"),
    ] {
        let r = run(podman.podman().args(["pull", &reference]));
        assert!(
            r.ok,
            "podman pull {reference}:\n{}\npullgate log:\n{}",
            r.text(),
            pg.log()
        );
        assert_eq!(&podman.digest(&reference), hello, "{reference}");
    }

    // podman GETs the manifest and prints the OCI error message:
    //   Error: initializing source docker://docker.io/library/unpinned:1.0: reading manifest 1.0
    //   in 127.0.0.1:PORT/docker.io/library/unpinned: denied: pullgate: docker.io/library/
    //   unpinned:1.0 denied by rule 'hub': no valid signature from pins; pins: no pins for …
    let r = run(podman
        .podman()
        .args(["pull", "docker.io/library/unpinned:1.0"]));
    assert!(!r.ok, "an unpinned image was pulled:\n{}", r.text());
    let reason = not_pinned("docker.io/library/unpinned", "1.0");
    assert!(
        r.stderr.contains(&format!("denied: {reason}")),
        "{}",
        r.text()
    );
}

// === Moved tags and indexes ===

#[test]
fn a_tag_moved_upstream_after_pinning_is_refused_naming_the_pinned_and_the_served_digest() {
    let up = Upstream::new();
    let pg = up.pullgate("pg", HUB_RULE, "");
    let r = get(&pg, "/v2/library/hello/manifests/1.0");
    assert_eq!(r.status, 200, "{}", r.describe());

    // Someone pushes another image over the pinned tag.
    let moved = TestImage::oci("pushed over the pinned tag", "amd64", 0);
    up.push_image(&moved, "library/hello:1.0");
    let reason = format!(
        "tag 1.0 is pinned to {} but registry serves {}",
        up.hello.manifest_digest, moved.manifest_digest
    );
    assert_denied(
        &pg,
        "/v2/library/hello/manifests/1.0",
        &denial(
            "docker.io/library/hello:1.0",
            "hub",
            &format!("no valid signature from pins; pins: {reason}"),
        ),
    );
    let r = skopeo_copy(
        &format!("{}/hello:1.0", pg.host()),
        &up.tmp.path().join("moved"),
        &[],
    );
    assert!(!r.ok, "the moved tag was pulled:\n{}", r.text());
    assert!(r.stderr.contains(&reason), "{}", r.text());

    // The pinned manifest itself is still there upstream, and still pulls by its digest.
    let out = up.tmp.path().join("pinned");
    let r = skopeo_copy(
        &format!("{}/hello@{}", pg.host(), up.hello.manifest_digest),
        &out,
        &[],
    );
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &up.hello);
}

#[test]
fn skopeo_copies_every_platform_of_an_index_pinned_by_tag_but_a_child_alone_from_an_unpinned_repository_is_refused(
) {
    let up = Upstream::new();
    // The same index under a repository that no pin names.
    up.push_index(&up.multi, "library/copycat:1.0");
    let pg = up.pullgate("pg", HUB_RULE, "");
    let child = &up.multi.children[0].manifest_digest;

    // Before any verified index listed it, a child digest is just an unpinned digest.
    assert_denied(
        &pg,
        &format!("/v2/library/multi/manifests/{child}"),
        &denial(
            &image_ref("docker.io/library/multi", child),
            "hub",
            &format!(
                "no valid signature from pins; pins: {child} is not pinned for docker.io/library/multi"
            ),
        ),
    );

    let out = up.tmp.path().join("out");
    let r = skopeo_copy(&format!("{}/multi:1.0", pg.host()), &out, &["--all"]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    let files = dir_files(&out);
    assert_eq!(
        digest_of(&files["manifest.json"]),
        up.multi.index_digest,
        "the index pulled is the pinned one"
    );
    for c in &up.multi.children {
        let name = format!(
            "{}.manifest.json",
            c.manifest_digest.trim_start_matches("sha256:")
        );
        assert_eq!(files.get(&name), Some(&c.manifest), "child {name}");
        let recs = audited(&pg, "docker.io/library/multi", &c.manifest_digest);
        let last = recs.last().expect("child not audited");
        assert_eq!(last["decision"], "allow");
        assert_eq!(
            last["reasons"],
            json!([format!(
                "listed in verified index {}",
                up.multi.index_digest
            )])
        );
    }

    // The grant is for the repository whose index was verified, not for the digest anywhere.
    assert_denied(
        &pg,
        &format!("/v2/library/copycat/manifests/{child}"),
        &not_pinned("docker.io/library/copycat", child),
    );
    assert_denied(
        &pg,
        "/v2/library/copycat/manifests/1.0",
        &not_pinned("docker.io/library/copycat", "1.0"),
    );
}

// === Warn mode ===

#[test]
fn warn_mode_forwards_an_unpinned_image_to_podman_with_a_warning_header_and_audits_it_as_warn() {
    let up = Upstream::new();
    // `unpinned` is on trial: what enforce mode would refuse goes through with a warning.
    let rules = format!(
        "[[rule]]\nname = \"trial\"\nimages = [\"docker.io/library/unpinned\"]\nmode = \"warn\"\ntrust = [\"pins\"]\n\n{HUB_RULE}"
    );
    let pg = up.pullgate("pg", &rules, "");
    let message = "pullgate: docker.io/library/unpinned:1.0 would be denied by rule 'trial': no valid signature from pins; pins: no pins for docker.io/library/unpinned";

    let r = get(&pg, "/v2/library/unpinned/manifests/1.0");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.header("Warning"),
        Some(format!("299 - \"{message}\"").as_str()),
        "{}",
        r.describe()
    );
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(up.unpinned.manifest_digest.as_str())
    );

    // podman pulls it. podman 4.3.1 (containers/image 5.23) ignores `Warning` headers, at
    // every log level, so the warning is checked on the wire above; newer containers/image
    // versions log it as `Warning from registry (first encountered at …)`.
    let conf = format!(
        "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}/docker.io\"\ninsecure = true\n",
        pg.host()
    );
    let podman = Podman::new(&up.tmp.path().join("podman"), &conf);
    let r = run(podman
        .podman()
        .args(["pull", "docker.io/library/unpinned:1.0"]));
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    assert_eq!(
        podman.digest("docker.io/library/unpinned:1.0"),
        up.unpinned.manifest_digest
    );

    let recs = audited(&pg, "docker.io/library/unpinned", "1.0");
    assert!(recs.len() >= 2, "{recs:?}");
    for rec in &recs {
        assert_eq!(rec["decision"], "warn", "{rec}");
        assert_eq!(rec["rule"], "trial", "{rec}");
        assert_eq!(rec["mode"], "warn", "{rec}");
        assert_eq!(rec["digest"], up.unpinned.manifest_digest.as_str(), "{rec}");
        assert_eq!(
            rec["reasons"],
            json!([
                "no valid signature from pins",
                "pins: no pins for docker.io/library/unpinned"
            ])
        );
    }
    // The enforce rule still holds for everything else.
    assert_eq!(get(&pg, "/v2/library/hello/manifests/1.0").status, 200);
}

// === Broken pin files ===

/// A whole-second RFC 3339 time `secs` seconds from now, and how pullgate prints it.
fn seconds_from_now(secs: i64) -> (String, String) {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    let t = t.replace_nanosecond(0).unwrap();
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let shown = format!("{}.000Z", text.trim_end_matches('Z'));
    (text, shown)
}

#[test]
fn a_pin_file_stops_vouching_when_it_expires_and_then_refuses_everything_it_covered() {
    let up = Upstream::new();
    // `pins sign` will not sign a file that is already expired.
    let (past, _) = seconds_from_now(-60);
    let r = up.key.try_sign(&up.pin_input(&past, 2));
    assert!(!r.ok, "signed an expired pin file:\n{}", r.text());
    assert!(r.stderr.contains("expired"), "{}", r.text());

    // Expiry is checked on every use with the real clock, so the file must be loaded while it
    // is valid and then run out: a few seconds, with room for a slow start.
    let (expires, shown) = seconds_from_now(10);
    install_pins(&up.pins, &up.key.sign(&up.pin_input(&expires, 2)));
    let pg = up.pullgate("pg", HUB_RULE, "");
    assert!(
        logged(&pg.log(), &["pin file loaded", "version=2"]),
        "{}",
        pg.log()
    );
    let r = get(&pg, "/v2/library/hello/manifests/1.0");
    assert_eq!(
        r.status,
        200,
        "the pin file should be valid until {expires}:\n{}",
        r.describe()
    );

    let expired = format!("no valid signature from pins; pins: pin file expired at {shown}");
    poll_until(
        &pg,
        "/v2/library/hello/manifests/1.0",
        "the pin file expires",
        |r| r.status == 403,
    );
    assert_denied(
        &pg,
        "/v2/library/hello/manifests/1.0",
        &denial("docker.io/library/hello:1.0", "hub", &expired),
    );
    assert_denied(
        &pg,
        &format!("/v2/library/hello/manifests/{}", up.hello.manifest_digest),
        &denial(
            &image_ref("docker.io/library/hello", &up.hello.manifest_digest),
            "hub",
            &expired,
        ),
    );
    assert_denied(
        &pg,
        "/v2/library/multi/manifests/1.0",
        &denial("docker.io/library/multi:1.0", "hub", &expired),
    );
    let r = skopeo_copy(
        &format!("{}/hello:1.0", pg.host()),
        &up.tmp.path().join("out"),
        &[],
    );
    assert!(!r.ok, "pulled with an expired pin file:\n{}", r.text());
    assert!(r.stderr.contains("pin file expired"), "{}", r.text());
}

#[test]
fn a_tampered_pin_file_loads_nothing_and_refuses_everything_with_an_invalid_signature() {
    let up = Upstream::new();
    let text = std::fs::read_to_string(&up.pins).unwrap();
    // Change the last character of the pinned digest of hello:1.0.
    let pinned = &up.hello.manifest_digest;
    let last = pinned.chars().last().unwrap();
    let forged = format!(
        "{}{}",
        &pinned[..pinned.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    assert!(text.contains(pinned.as_str()));
    install_pins(&up.pins, &text.replace(pinned.as_str(), &forged));
    let pg = up.pullgate("pg", HUB_RULE, "");

    let invalid = format!(
        "no valid signature from pins; pins: pin file signature by key {} is invalid",
        up.key.short_id()
    );
    assert_denied(
        &pg,
        "/v2/library/hello/manifests/1.0",
        &denial("docker.io/library/hello:1.0", "hub", &invalid),
    );
    assert_denied(
        &pg,
        "/v2/library/multi/manifests/1.0",
        &denial("docker.io/library/multi:1.0", "hub", &invalid),
    );
    assert!(
        logged(&pg.log(), &["pin file not loaded", "is invalid"]),
        "{}",
        pg.log()
    );
}

#[test]
fn a_pin_file_signed_by_a_key_not_in_keys_is_refused_as_untrusted() {
    let up = Upstream::new();
    let stranger = PinKey::generate(&up.tmp.path().join("keys"), "stranger");
    install_pins(&up.pins, &stranger.sign(&up.pin_input(FAR_FUTURE, 1)));
    // Only the fixture's own key is trusted.
    let pg = up.pullgate("pg", HUB_RULE, "");
    assert_denied(
        &pg,
        "/v2/library/hello/manifests/1.0",
        &denial(
            "docker.io/library/hello:1.0",
            "hub",
            &format!(
                "no valid signature from pins; pins: pin file is signed by an untrusted key ({})",
                stranger.short_id()
            ),
        ),
    );
}

// === Reload ===

#[test]
fn a_newer_pin_file_takes_effect_without_restart_and_a_rolled_back_one_is_ignored() {
    let up = Upstream::new();
    let v2 = TestImage::oci("hello, version two", "amd64", 0);
    up.push_image(&v2, "library/hello:2.0");
    let pg = up.pullgate("pg", HUB_RULE, "");
    let path = "/v2/library/hello/manifests/2.0";
    assert_denied(
        &pg,
        path,
        &denial(
            "docker.io/library/hello:2.0",
            "hub",
            &format!(
                "no valid signature from pins; pins: {} is not pinned for docker.io/library/hello",
                v2.manifest_digest
            ),
        ),
    );

    // Version 2 also pins hello:2.0.
    let newer = pin_input(
        FAR_FUTURE,
        2,
        &[
            ("docker.io/library/hello", "1.0", &up.hello.manifest_digest),
            ("docker.io/library/hello", "2.0", &v2.manifest_digest),
        ],
    );
    install_pins(&up.pins, &up.key.sign(&newer));
    poll_until(&pg, path, "the newer pin file takes effect", |r| {
        r.status == 200
    });
    assert!(
        logged(&pg.log(), &["pin file reloaded", "version=2"]),
        "{}",
        pg.log()
    );

    // A validly signed but older file, which would pin 2.0 to another digest, is a rollback.
    let older = pin_input(
        FAR_FUTURE,
        1,
        &[("docker.io/library/hello", "2.0", &up.hello.manifest_digest)],
    );
    install_pins(&up.pins, &up.key.sign(&older));
    wait_for_log(
        &pg,
        &[
            "keeping the last good one",
            "rollback from version 2 to 1 refused",
        ],
    );
    let out = up.tmp.path().join("out");
    let r = skopeo_copy(&format!("{}/hello:2.0", pg.host()), &out, &[]);
    assert!(
        r.ok,
        "version 2 is no longer in force:\n{}\n{}",
        r.text(),
        pg.log()
    );
    assert_dir_has_image(&out, &v2);
    let rec = audited(&pg, "docker.io/library/hello", "2.0")
        .pop()
        .unwrap();
    assert_eq!(rec["decision"], "allow");
    assert_eq!(
        rec["reasons"],
        json!([format!(
            "signed by pins (key {}), pin file version 2",
            up.key.short_id()
        )])
    );
}

// === Audit ===

#[test]
fn every_manifest_request_writes_exactly_one_audit_record_with_its_decision_and_evidence() {
    let up = Upstream::new();
    let pg = up.pullgate("pg", HUB_RULE, "");
    let hello = &up.hello.manifest_digest;
    let blob = &up.hello.layers[0].digest;

    // (method, path, expected status); only the manifest requests are audited.
    let requests = [
        ("GET", "/v2/".to_owned(), 200),
        ("GET", "/v2/library/hello/manifests/1.0".to_owned(), 200),
        ("HEAD", "/v2/library/hello/manifests/1.0".to_owned(), 200),
        ("GET", format!("/v2/library/hello/manifests/{hello}"), 200),
        ("GET", format!("/v2/library/hello/blobs/{blob}"), 200),
        ("GET", "/v2/library/unpinned/manifests/1.0".to_owned(), 403),
        ("GET", "/v2/quay.io/org/app/manifests/1".to_owned(), 403),
        ("GET", "/v2/library/missing/manifests/1.0".to_owned(), 404),
    ];
    for (method, path, status) in &requests {
        let r = http(&pg, method, path, &[]);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.describe());
    }

    let recs = audit_records(&pg);
    assert_eq!(recs.len(), 6, "one record per manifest request:\n{recs:#?}");
    let key = up.key.short_id();
    let allowed = |method: &str, reference: &str, cache: &str| {
        json!({
            "method": method, "image": "docker.io/library/hello", "reference": reference,
            "decision": "allow", "rule": "hub", "mode": "enforce", "digest": hello,
            "media_type": "application/vnd.oci.image.manifest.v1+json",
            "reasons": [format!("signed by pins (key {key}), pin file version 1")],
            "signers": [{"trust": "pins", "kind": "pins", "identity": format!("key:{key}")}],
            "upstream_status": 200, "cache": cache,
        })
    };
    // Records come in request order. The HEAD reuses the verdict of the GET before it; by
    // digest is a new question. Where no manifest came back, no rule was consulted.
    let want = [
        allowed("GET", "1.0", "miss"),
        allowed("HEAD", "1.0", "hit"),
        allowed("GET", hello, "miss"),
        json!({
            "method": "GET", "image": "docker.io/library/unpinned", "reference": "1.0",
            "decision": "deny", "rule": "hub", "mode": "enforce",
            "digest": up.unpinned.manifest_digest,
            "reasons": ["no valid signature from pins", "pins: no pins for docker.io/library/unpinned"],
            "signers": [], "upstream_status": 200, "cache": "miss",
        }),
        json!({
            "method": "GET", "image": "quay.io/org/app", "reference": "1",
            "decision": "deny", "rule": null, "mode": null, "digest": null, "media_type": null,
            "reasons": ["registry not allowed: quay.io is not a configured registry"],
            "signers": [], "upstream_status": null, "cache": null,
        }),
        json!({
            "method": "GET", "image": "docker.io/library/missing", "reference": "1.0",
            "decision": "deny", "rule": null, "mode": null, "digest": null, "media_type": null,
            "reasons": ["upstream docker.io answered 404 Not Found"],
            "signers": [], "upstream_status": 404, "cache": null,
        }),
    ];
    for (rec, want) in recs.iter().zip(&want) {
        for (field, value) in want.as_object().unwrap() {
            assert_eq!(&rec[field], value, "{field} in {rec:#}");
        }
        assert_eq!(rec["v"], 1, "{rec:#}");
        assert_eq!(rec["user"], Value::Null, "{rec:#}");
        assert_eq!(rec["typosquat"], Value::Null, "{rec:#}");
        assert!(rec["duration_ms"].is_u64(), "{rec:#}");
        let time = rec["time"].as_str().unwrap_or_default();
        assert!(
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{rec:#}"
        );
        let client: SocketAddr = rec["client"].as_str().unwrap().parse().unwrap();
        assert!(client.ip().is_loopback(), "{rec:#}");
    }

    let out = run_ok(
        pullgate()
            .arg("audit")
            .arg(pg.dir.join("audit.jsonl"))
            .args(["--decision", "deny"]),
    );
    assert!(out.contains("records: 3"), "{out}");
    for image in [
        "docker.io/library/unpinned",
        "quay.io/org/app",
        "docker.io/library/missing",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim().ends_with(&format!("1  {image}"))),
            "{image} not listed:\n{out}"
        );
    }
    assert!(!out.contains("docker.io/library/hello"), "{out}");
}

// === Single flight ===

/// Sends one GET on its own connection once `start` opens, and returns the status.
fn raw_get(addr: SocketAddr, path: &str, start: &Barrier) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {ACCEPT}\r\nConnection: close\r\n\r\n"
    );
    start.wait();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[test]
fn fifty_concurrent_requests_for_a_new_digest_share_one_verification() {
    let up = Upstream::new();
    let pg = up.pullgate("pg", HUB_RULE, "");
    let path = Arc::new(format!(
        "/v2/library/hello/manifests/{}",
        up.hello.manifest_digest
    ));
    // All connections are open before any request is sent.
    let start = Arc::new(Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (path, start, addr) = (path.clone(), start.clone(), pg.addr);
            std::thread::spawn(move || raw_get(addr, &path, &start))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }

    let recs = audit_records(&pg);
    assert_eq!(recs.len(), 50, "{recs:#?}");
    assert!(recs.iter().all(|r| r["decision"] == "allow"), "{recs:#?}");
    let count = |c: &str| recs.iter().filter(|r| r["cache"] == c).count();
    assert_eq!((count("miss"), count("hit")), (1, 49), "{recs:#?}");
}

// === Client login ===

#[test]
fn with_a_users_file_clients_must_log_in_and_the_audit_record_names_the_user() {
    let up = Upstream::new();
    let users = up.tmp.path().join("htpasswd");
    htpasswd(&users, "alice", "wonderland");
    let pg = up.pullgate(
        "pg",
        HUB_RULE,
        &format!("users_file = \"{}\"", users.display()),
    );
    let path = "/v2/library/hello/manifests/1.0";

    let r = get(&pg, path);
    assert_eq!(r.status, 401, "{}", r.describe());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"pullgate\"")
    );
    let r = http(&pg, "GET", path, &["-u", "alice:wrong"]);
    assert_eq!(r.status, 401, "{}", r.describe());
    let r = http(&pg, "GET", path, &["-u", "alice:wonderland"]);
    assert_eq!(r.status, 200, "{}", r.describe());

    let recs = audited(&pg, "docker.io/library/hello", "1.0");
    let users: Vec<&Value> = recs.iter().map(|r| &r["user"]).collect();
    let decisions: Vec<&Value> = recs.iter().map(|r| &r["decision"]).collect();
    assert_eq!(users, [&Value::Null, &Value::Null, &json!("alice")]);
    assert_eq!(decisions, [&json!("deny"), &json!("deny"), &json!("allow")]);
    assert_eq!(
        recs[0]["reasons"],
        json!(["client not authenticated: authentication required"])
    );

    // skopeo with credentials.
    let out = up.tmp.path().join("out");
    let src = format!("{}/hello:1.0", pg.host());
    let r = skopeo_copy(&src, &out, &["--src-creds", "alice:wonderland"]);
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &up.hello);
    let r = skopeo_copy(&src, &up.tmp.path().join("anonymous"), &[]);
    assert!(!r.ok, "pulled without logging in:\n{}", r.text());

    // podman login, then pulls with the stored credentials.
    let podman = Podman::new(
        &up.tmp.path().join("podman"),
        "unqualified-search-registries = []\n",
    );
    run_ok(podman.podman().args([
        "login",
        "--tls-verify=false",
        "--username",
        "alice",
        "--password",
        "wonderland",
        &pg.host(),
    ]));
    let reference = format!("{}/docker.io/library/hello:1.0", pg.host());
    let r = run(podman
        .podman()
        .args(["pull", "--tls-verify=false", &reference]));
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_eq!(&podman.digest(&reference), &up.hello.manifest_digest);

    let allowed: Vec<Value> = audited(&pg, "docker.io/library/hello", "1.0")
        .into_iter()
        .filter(|r| r["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 3, "curl, skopeo and podman: {allowed:#?}");
    assert!(allowed.iter().all(|r| r["user"] == "alice"), "{allowed:#?}");
}

// === pullgate verify ===

#[test]
fn verify_json_exits_0_for_a_pinned_image_and_1_for_an_unpinned_one_with_the_decision_record() {
    let up = Upstream::new();
    let (dir, config) = up.config("pg", HUB_RULE, "");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pullgate.toml");
    std::fs::write(&file, config).unwrap();
    let verify = |image: &str| {
        let out = pullgate()
            .args(["verify", "--json", "--config"])
            .arg(&file)
            .arg(image)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let rec: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "verify {image} printed no JSON record ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), rec)
    };

    let hello = &up.hello.manifest_digest;
    for image in [
        "docker.io/library/hello:1.0".to_owned(),
        format!("hello@{hello}"),
    ] {
        let (code, rec) = verify(&image);
        assert_eq!(code, Some(0), "{image}: {rec:#}");
        assert_eq!(rec["decision"], "allow", "{rec:#}");
        assert_eq!(rec["image"], "docker.io/library/hello", "{rec:#}");
        assert_eq!(rec["digest"], hello.as_str(), "{rec:#}");
        assert_eq!(rec["rule"], "hub", "{rec:#}");
        assert_eq!(rec["signers"][0]["kind"], "pins", "{rec:#}");
    }

    let (code, rec) = verify("unpinned:1.0");
    assert_eq!(code, Some(1), "{rec:#}");
    assert_eq!(rec["decision"], "deny", "{rec:#}");
    assert_eq!(rec["image"], "docker.io/library/unpinned", "{rec:#}");
    assert_eq!(
        rec["digest"],
        up.unpinned.manifest_digest.as_str(),
        "{rec:#}"
    );
    assert_eq!(
        rec["reasons"],
        json!([
            "no valid signature from pins",
            "pins: no pins for docker.io/library/unpinned"
        ])
    );
    // verify decides; it does not write to the audit log.
    assert!(!dir.join("audit.jsonl").exists());
}
