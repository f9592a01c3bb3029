//! Pulls through pullgate with the clients it is deployed in front of (design.md §1): dockerd
//! with pullgate as its registry mirror, containerd's `ctr` with a `hosts.toml` (which adds
//! `?ns=<registry>` to every request), and podman with a `registries.conf` location rewrite and
//! with explicit registry-prefixed references. Also what each client shows when pullgate refuses
//! a registry it is not configured for.
//!
//! The upstream is a real docker-registry. Every daemon runs with private state under the test's
//! temporary directory and the egress guard in its environment, and is killed when its handle
//! drops. Pull speed is not measured here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

// === Fixtures ===

/// A docker-registry holding `library/hello:1.0` (one OCI image) and `library/multi:1.0` (an
/// amd64 + arm64 image index), pushed with skopeo.
struct Upstream {
    reg: Registry,
    hello: TestImage,
    multi: TestIndex,
}

fn upstream(dir: &Path) -> Upstream {
    let reg = Registry::start(&dir.join("reg"), RegistryOptions::default());
    let hello = TestImage::oci("hello from a client test", "amd64", 0);
    let multi = TestIndex::multi("multi from a client test", &["amd64", "arm64"]);
    let mut layout = Layout::new(&dir.join("layout"));
    layout.add_image(&hello, "hello");
    layout.add_index(&multi, "multi");
    skopeo_push(
        &layout,
        "hello",
        &format!("{}/library/hello:1.0", reg.host()),
        &[],
    );
    skopeo_push(
        &layout,
        "multi",
        &format!("{}/library/multi:1.0", reg.host()),
        &["--all"],
    );
    Upstream { reg, hello, multi }
}

/// Whether some line of pullgate's log holds every one of `parts`.
pub(crate) fn logged(log: &str, parts: &[&str]) -> bool {
    log.lines().any(|l| parts.iter().all(|p| l.contains(p)))
}

/// Whether pullgate's log shows that it answered `GET|HEAD path` with a manifest, after
/// resolving the request to `image`. Request lines carry the request span
/// (`request{method=GET path=/v2/… image="docker.io/library/hello"}`) and the outcome
/// (`answered route="manifest" status=200`).
fn served_manifest(log: &str, path: &str, image: &str) -> bool {
    logged(
        log,
        &[
            &format!("path={path} image=\"{image}\""),
            "answered route=\"manifest\" status=200",
        ],
    )
}

/// A name no other test (or earlier run) uses, for containerd namespaces.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}n{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `ready` until it holds; fails when `proc` exits or a minute passes.
fn wait_until(proc: &mut Process, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{} exited early with {status}:\n{}",
                proc.name,
                read_log(log)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not become ready within 60 s:\n{}",
            proc.name,
            read_log(log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Starts a daemon (`cmd` comes from `guarded`), its output going to `log`.
fn spawn_daemon(cmd: &mut Command, name: &str, log: &Path) -> Process {
    let file = std::fs::File::create(log).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {name} (is it installed? .ci/run installs it): {e}")
        });
    Process {
        child,
        name: name.into(),
    }
}

// === dockerd ===

/// The Docker CLI: Debian's 20.10 CLI or the newer one in /usr/local/bin; both talk to
/// dockerd 20.10.
fn docker_cli() -> &'static str {
    ["/usr/bin/docker", "/usr/local/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("no docker CLI in /usr/bin or /usr/local/bin (package docker.io)")
}

/// A private dockerd (classic image store, vfs, no networking) with pullgate as its mirror,
/// on a private containerd of its own: dockerd's managed containerd would keep plugin state in
/// /opt/containerd.
pub(crate) struct Dockerd {
    dir: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    proc: Process,
    _containerd: Containerd,
}

impl Dockerd {
    pub(crate) fn start(dir: &Path, mirror: &str) -> Dockerd {
        for d in ["root", "exec", "cli"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // An explicit daemon.json keeps /etc/docker/daemon.json out of the test; without
        // `deprecated-key-path` (a daemon.json key only) dockerd 20.10 writes its identity key to
        // /etc/docker/key.json.
        let daemon_json = serde_json::json!({ "deprecated-key-path": dir.join("key.json") });
        std::fs::write(dir.join("daemon.json"), daemon_json.to_string()).unwrap();
        std::fs::write(dir.join("cli/config.json"), "{}").unwrap();
        let containerd = Containerd::start(&dir.join("containerd"));
        let sock = dir.join("docker.sock");
        let log = dir.join("dockerd.log");
        let mut proc = spawn_daemon(
            guarded("dockerd")
                .args([
                    "--debug",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                    "--storage-driver=vfs",
                ])
                .arg("--config-file")
                .arg(dir.join("daemon.json"))
                .arg("--data-root")
                .arg(dir.join("root"))
                .arg("--exec-root")
                .arg(dir.join("exec"))
                .arg("--pidfile")
                .arg(dir.join("dockerd.pid"))
                .arg("--containerd")
                .arg(&containerd.sock)
                .arg("--host")
                .arg(format!("unix://{}", sock.display()))
                .args(["--registry-mirror", mirror])
                .args(["--containerd-namespace", &unique("pgdocker")])
                .args(["--containerd-plugins-namespace", &unique("pgplugins")]),
            "dockerd",
            &log,
        );
        let d = dir.to_owned();
        let s = sock.clone();
        wait_until(&mut proc, &log, || run(docker_at(&d, &s).arg("version")).ok);
        Dockerd {
            dir: dir.to_owned(),
            sock,
            log,
            proc,
            _containerd: containerd,
        }
    }

    /// The Docker CLI talking to this daemon, with a private client config.
    pub(crate) fn docker(&self) -> Command {
        docker_at(&self.dir, &self.sock)
    }

    pub(crate) fn log(&self) -> String {
        read_log(&self.log)
    }

    /// `docker image inspect`: the image ID and the repo digests.
    pub(crate) fn inspect(&self, image: &str) -> (String, Vec<String>) {
        let out = run_ok(self.docker().args(["image", "inspect", image]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let id = v[0]["Id"].as_str().unwrap().to_owned();
        let digests = v[0]["RepoDigests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect();
        (id, digests)
    }
}

fn docker_at(dir: &Path, sock: &Path) -> Command {
    let mut c = guarded(docker_cli());
    c.env("DOCKER_CONFIG", dir.join("cli"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()));
    c
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // dockerd bind-mounts its data root onto itself (to make it a private mount) and undoes
        // that when it shuts down cleanly; if it had to be killed, the mount would outlive the
        // test. Its containerd (a field) is stopped after this, once dockerd is gone.
        self.proc.terminate();
        let root = self.dir.join("root");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&*root.to_string_lossy()))
        {
            let _ = Command::new("umount").arg("--lazy").arg(&root).status();
        }
    }
}

// === containerd and ctr ===

/// A private containerd 1.6 (own root, state, plugin dir and socket; CRI disabled), for `ctr`
/// and as dockerd's containerd.
pub(crate) struct Containerd {
    sock: PathBuf,
    log: PathBuf,
    _proc: Process,
}

impl Containerd {
    pub(crate) fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let sock = dir.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n[grpc]\n  address = \"{sock}\"\n\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{opt}\"\n",
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            sock = sock.display(),
            opt = dir.join("opt").display(),
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let log = dir.join("containerd.log");
        let mut proc = spawn_daemon(
            guarded("containerd")
                .arg("--config")
                .arg(dir.join("config.toml")),
            "containerd",
            &log,
        );
        let s = sock.clone();
        wait_until(&mut proc, &log, || run(ctr_at(&s).arg("version")).ok);
        Containerd {
            sock,
            log,
            _proc: proc,
        }
    }

    fn ctr(&self) -> Command {
        ctr_at(&self.sock)
    }

    pub(crate) fn log(&self) -> String {
        read_log(&self.log)
    }

    /// `ctr images pull` through the registry hosts configured in `hosts`.
    pub(crate) fn pull(&self, hosts: &Path, reference: &str) -> Output {
        run(self
            .ctr()
            .args(["images", "pull", "--snapshotter", "native", "--hosts-dir"])
            .arg(hosts)
            .arg(reference))
    }

    /// The digest `ctr images ls` shows for `reference`.
    pub(crate) fn image_digest(&self, reference: &str) -> Option<String> {
        // Columns: REF TYPE DIGEST SIZE PLATFORMS LABELS
        run_ok(self.ctr().args(["images", "ls"]))
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&reference))
            .and_then(|cols| cols.get(2).map(|d| d.to_string()))
    }
}

fn ctr_at(sock: &Path) -> Command {
    let mut c = guarded("ctr");
    c.arg("--address")
        .arg(sock)
        .args(["--namespace", "pullgate-test"]);
    c
}

/// A containerd hosts directory in which each of `registries` is served by pullgate only: with
/// `server` also pointing at pullgate there is no upstream to fall back to.
pub(crate) fn hosts_dir(dir: &Path, registries: &[&str], pullgate: &str) -> PathBuf {
    for r in registries {
        std::fs::create_dir_all(dir.join(r)).unwrap();
        std::fs::write(
            dir.join(r).join("hosts.toml"),
            format!(
                "server = \"http://{pullgate}\"\n\n[host.\"http://{pullgate}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
    }
    dir.to_owned()
}

// === podman ===

/// podman with private storage and configuration; it has no daemon to stop.
pub(crate) struct Podman {
    dir: PathBuf,
}

impl Podman {
    pub(crate) fn new(dir: &Path, registries_conf: &str) -> Podman {
        for d in ["root", "runroot", "tmp", "net", "docker"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("registries.conf"), registries_conf).unwrap();
        std::fs::write(dir.join("containers.conf"), "").unwrap();
        std::fs::write(dir.join("auth.json"), "{}").unwrap();
        // containers/image fails when DOCKER_CONFIG is set but its config.json is missing.
        std::fs::write(dir.join("docker/config.json"), "{}").unwrap();
        Podman {
            dir: dir.to_owned(),
        }
    }

    pub(crate) fn podman(&self) -> Command {
        let d = &self.dir;
        let mut c = guarded("podman");
        c.env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
            .env("DOCKER_CONFIG", d.join("docker"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--network-config-dir")
            .arg(d.join("net"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "file",
                "--cgroup-manager",
                "cgroupfs",
            ]);
        c
    }

    /// The manifest digest `podman image inspect` records for `image`.
    pub(crate) fn digest(&self, image: &str) -> String {
        run_ok(
            self.podman()
                .args(["image", "inspect", "--format", "{{.Digest}}", image]),
        )
        .trim()
        .to_owned()
    }
}

// === Tests ===

#[test]
fn dockerd_pulls_image_and_index_through_pullgate_as_registry_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let up = upstream(tmp.path());
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(
        &dir,
        &pullgate_toml(&dir, &registry_toml("docker.io", &up.reg.url, true, "")),
    );
    let dockerd = Dockerd::start(
        &tmp.path().join("dockerd"),
        &format!("http://{}", pg.host()),
    );

    // `hello:1.0` is a Docker Hub name, so dockerd asks its mirror first.
    let r = run(dockerd.docker().args(["pull", "hello:1.0"]));
    assert!(
        r.ok,
        "docker pull failed:\n{}\npullgate log:\n{}\ndockerd log:\n{}",
        r.text(),
        pg.log(),
        dockerd.log()
    );
    let (id, repo_digests) = dockerd.inspect("hello:1.0");
    assert_eq!(id, up.hello.config.digest, "image ID is the config digest");
    assert!(
        repo_digests.contains(&format!("hello@{}", up.hello.manifest_digest)),
        "{repo_digests:?}"
    );
    // The mirror, not a fallback to Docker Hub, served the manifest.
    assert!(
        served_manifest(
            &pg.log(),
            "/v2/library/hello/manifests/1.0",
            "docker.io/library/hello"
        ),
        "pullgate did not serve the manifest:\n{}",
        pg.log()
    );

    // From an amd64 + arm64 index dockerd picks its own platform.
    let r = run(dockerd.docker().args(["pull", "multi:1.0"]));
    assert!(
        r.ok,
        "docker pull failed:\n{}\npullgate log:\n{}\ndockerd log:\n{}",
        r.text(),
        pg.log(),
        dockerd.log()
    );
    // `TestIndex::multi` keeps the order of the architectures it was given.
    let native = match std::env::consts::ARCH {
        "x86_64" => &up.multi.children[0],
        "aarch64" => &up.multi.children[1],
        other => panic!("the test index has no image for {other}"),
    };
    let (id, repo_digests) = dockerd.inspect("multi:1.0");
    assert_eq!(
        id, native.config.digest,
        "dockerd did not pick the image for its own platform"
    );
    assert!(
        repo_digests.contains(&format!("multi@{}", up.multi.index_digest)),
        "{repo_digests:?}"
    );
    let log = pg.log();
    assert!(
        served_manifest(
            &log,
            "/v2/library/multi/manifests/1.0",
            "docker.io/library/multi"
        ),
        "{log}"
    );
    let child = format!("/v2/library/multi/manifests/{}", native.manifest_digest);
    assert!(
        served_manifest(&log, &child, "docker.io/library/multi"),
        "{log}"
    );
}

#[test]
fn dockerd_mirror_refusal_is_logged_by_pullgate_and_the_hub_fallback_fails() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing is pulled from the upstream: pullgate refuses before it connects.
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    // No default registry: a mirror request (no registry in the path) names no allowed registry.
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(
        &dir,
        &pullgate_toml(&dir, &registry_toml("registry.test", &reg.url, false, "")),
    );
    let dockerd = Dockerd::start(
        &tmp.path().join("dockerd"),
        &format!("http://{}", pg.host()),
    );

    // dockerd treats the mirror's 403 like any mirror error: it logs
    //   level=info msg="Attempting next endpoint for pull after error: denied: pullgate: registry
    //   not allowed: no default registry is configured, …"
    // and retries registry-1.docker.io, which the egress guard blocks. The CLI shows only that
    // last error:
    //   Error response from daemon: Get "https://registry-1.docker.io/v2/": proxyconnect tcp:
    //   dial tcp 127.0.0.1:9: connect: connection refused
    // so a mirror is no enforcement boundary (design.md §1): without egress control the
    // fallback pull would have succeeded from Docker Hub.
    let r = run(dockerd.docker().args(["pull", "hello:1.0"]));
    assert!(
        !r.ok,
        "docker pull succeeded although pullgate refuses Docker Hub:\n{}",
        r.text()
    );
    assert!(
        logged(
            &pg.log(),
            &[
                "path=/v2/library/hello/manifests/1.0}",
                "registry not allowed"
            ]
        ),
        "pullgate did not log the refusal:\n{}",
        pg.log()
    );
    assert!(
        logged(
            &dockerd.log(),
            &[
                "Attempting next endpoint",
                "denied: pullgate: registry not allowed"
            ]
        ),
        "dockerd did not see pullgate's refusal:\n{}",
        dockerd.log()
    );
    assert!(
        r.stderr.contains("registry-1.docker.io") && r.stderr.contains("127.0.0.1:9"),
        "the failure is not the blocked fallback to Docker Hub:\n{}",
        r.text()
    );
}

#[test]
fn ctr_pulls_hub_and_other_registries_through_pullgate_resolved_by_ns_query() {
    let tmp = tempfile::tempdir().unwrap();
    let up = upstream(tmp.path());
    // Neither registry is the default, so a request is only resolvable through its `?ns=`.
    let regs = registry_toml("docker.io", &up.reg.url, false, "")
        + &registry_toml("registry.test", &up.reg.url, false, "");
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(&dir, &pullgate_toml(&dir, &regs));
    let containerd = Containerd::start(&tmp.path().join("containerd"));
    let hosts = hosts_dir(
        &tmp.path().join("hosts"),
        &["docker.io", "registry.test"],
        &pg.host(),
    );

    let cases = [
        (
            "docker.io/library/hello:1.0",
            "docker.io/library/hello",
            "/v2/library/hello/manifests/1.0",
            &up.hello.manifest_digest,
        ),
        (
            "registry.test/library/hello:1.0",
            "registry.test/library/hello",
            "/v2/library/hello/manifests/1.0",
            &up.hello.manifest_digest,
        ),
        (
            "docker.io/library/multi:1.0",
            "docker.io/library/multi",
            "/v2/library/multi/manifests/1.0",
            &up.multi.index_digest,
        ),
    ];
    for (reference, image, path, digest) in cases {
        let r = containerd.pull(&hosts, reference);
        assert!(
            r.ok,
            "ctr pull {reference} failed:\n{}\npullgate log:\n{}\ncontainerd log:\n{}",
            r.text(),
            pg.log(),
            containerd.log()
        );
        assert_eq!(
            containerd.image_digest(reference).as_ref(),
            Some(digest),
            "ctr images ls digest of {reference}"
        );
        assert!(served_manifest(&pg.log(), path, image), "{}", pg.log());
    }
}

#[test]
fn ctr_pull_from_an_unconfigured_registry_prints_pullgates_reason() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing is pulled from the upstream: pullgate refuses before it connects.
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(
        &dir,
        &pullgate_toml(&dir, &registry_toml("docker.io", &reg.url, true, "")),
    );
    let containerd = Containerd::start(&tmp.path().join("containerd"));
    let hosts = hosts_dir(&tmp.path().join("hosts"), &["quay.io"], &pg.host());

    // containerd 1.6 resolves a tag with HEAD, so the 403 has no body to show, and it prints
    // only the status line. pullgate puts its message in the reason phrase for that:
    //   ctr: failed to resolve reference "quay.io/org/app:1": pulling from host 127.0.0.1:PORT
    //   failed with status code [manifests 1]: 403 pullgate: registry not allowed: quay.io is
    //   not a configured registry
    // That it names quay.io shows the request was resolved by its `?ns=quay.io`.
    let r = containerd.pull(&hosts, "quay.io/org/app:1");
    assert!(
        !r.ok,
        "ctr pull from an unconfigured registry succeeded:\n{}",
        r.text()
    );
    let shown = format!(
        "pulling from host {} failed with status code [manifests 1]: 403 pullgate: registry not allowed: quay.io is not a configured registry",
        pg.host()
    );
    assert!(r.stderr.contains(&shown), "{}", r.text());
    assert!(
        logged(
            &pg.log(),
            &[
                "path=/v2/org/app/manifests/1}",
                "registry not allowed: quay.io is not a configured registry"
            ]
        ),
        "pullgate did not log the refusal:\n{}",
        pg.log()
    );
}

#[test]
fn podman_pulls_through_pullgate_with_registries_conf_rewrite_and_prefixed_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let up = upstream(tmp.path());
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(
        &dir,
        &pullgate_toml(&dir, &registry_toml("docker.io", &up.reg.url, true, "")),
    );
    let conf = format!(
        "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}/docker.io\"\ninsecure = true\n",
        pg.host()
    );
    let podman = Podman::new(&tmp.path().join("podman"), &conf);

    let r = run(podman
        .podman()
        .args(["pull", "docker.io/library/hello:1.0"]));
    assert!(
        r.ok,
        "podman pull failed:\n{}\npullgate log:\n{}",
        r.text(),
        pg.log()
    );
    assert_eq!(
        podman.digest("docker.io/library/hello:1.0"),
        up.hello.manifest_digest
    );
    assert!(
        served_manifest(
            &pg.log(),
            "/v2/docker.io/library/hello/manifests/1.0",
            "docker.io/library/hello"
        ),
        "{}",
        pg.log()
    );

    // An explicit prefixed reference needs no registries.conf entry; fresh storage makes this
    // pull fetch every blob through pullgate again.
    let podman = Podman::new(
        &tmp.path().join("podman2"),
        "unqualified-search-registries = []\n",
    );
    let prefixed = format!("{}/docker.io/library/hello:1.0", pg.host());
    let r = run(podman
        .podman()
        .args(["pull", "--tls-verify=false", &prefixed]));
    assert!(
        r.ok,
        "podman pull {prefixed} failed:\n{}\npullgate log:\n{}",
        r.text(),
        pg.log()
    );
    assert_eq!(podman.digest(&prefixed), up.hello.manifest_digest);
}

#[test]
fn podman_prints_registry_not_allowed_for_an_unconfigured_registry() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing is pulled from the upstream: pullgate refuses before it connects.
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(
        &dir,
        &pullgate_toml(&dir, &registry_toml("docker.io", &reg.url, true, "")),
    );
    let podman = Podman::new(
        &tmp.path().join("podman"),
        "unqualified-search-registries = []\n",
    );

    // podman fetches manifests with GET and prints the OCI error message:
    //   Error: initializing source docker://127.0.0.1:PORT/quay.io/org/app:1: reading manifest 1
    //   in 127.0.0.1:PORT/quay.io/org/app: denied: pullgate: registry not allowed: quay.io is not
    //   a configured registry
    let r = run(podman.podman().args([
        "pull",
        "--tls-verify=false",
        &format!("{}/quay.io/org/app:1", pg.host()),
    ]));
    assert!(
        !r.ok,
        "podman pull from an unconfigured registry succeeded:\n{}",
        r.text()
    );
    assert!(
        r.stderr
            .contains("denied: pullgate: registry not allowed: quay.io"),
        "{}",
        r.text()
    );
}
