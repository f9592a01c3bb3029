//! Test support: real components on loopback (docker-registry, pullgate itself), deterministic
//! test images pushed with skopeo, and a test CA. Every process is killed when its handle drops.
//!
//! Nothing here skips: a missing binary panics with the package that provides it, because the
//! test script (`.ci/run`) installs them all.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Every client and daemon gets this environment, so that a fallback to Docker Hub fails on
/// loopback instead of leaving the machine.
pub const EGRESS_GUARD: [(&str, &str); 6] = [
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("NO_PROXY", "127.0.0.1,localhost,::1"),
    ("no_proxy", "127.0.0.1,localhost,::1"),
];

/// A command with the egress guard applied.
pub fn guarded(program: &str) -> Command {
    let mut c = Command::new(program);
    c.envs(EGRESS_GUARD);
    c
}

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.ok, "command failed: {cmd:?}\n{}", out.text());
    out.stdout
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn text(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {program} (is it installed? .ci/run installs it): {e}")
    });
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 30 s");
}

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Process {
    pub fn terminate(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY-free: `kill` from the shell keeps the test free of libc bindings.
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

// === Test CA ===

/// A CA and a leaf certificate for 127.0.0.1 / localhost, written to a directory.
pub struct TestCa {
    /// Holds only `ca.crt`: the layout skopeo's `--*-cert-dir` and Docker's `certs.d` expect.
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose, SanType,
        };
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "pullgate test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();

        std::fs::create_dir_all(dir.join("trust")).unwrap();
        let t = TestCa {
            dir: dir.join("trust"),
            ca_cert: dir.join("trust/ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        std::fs::write(&t.ca_cert, ca_cert.pem()).unwrap();
        std::fs::write(&t.cert, leaf_cert.pem()).unwrap();
        std::fs::write(&t.key, leaf_key.serialize_pem()).unwrap();
        t
    }
}

// === docker-registry ===

#[derive(Default)]
pub struct RegistryOptions<'a> {
    pub tls: Option<&'a TestCa>,
    /// bcrypt htpasswd file: the registry then requires Basic auth.
    pub htpasswd: Option<&'a Path>,
    /// Share storage with another registry process.
    pub storage: Option<&'a Path>,
}

/// A real `docker-registry` (distribution 2.8) on a loopback port.
pub struct Registry {
    pub port: u16,
    pub url: String,
    pub storage: PathBuf,
    _proc: Process,
}

impl Registry {
    pub fn start(dir: &Path, opts: RegistryOptions<'_>) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let storage = opts
            .storage
            .map(Path::to_owned)
            .unwrap_or_else(|| dir.join("data"));
        let mut yaml = format!(
            "version: 0.1\nlog: {{ level: warn }}\nstorage: {{ filesystem: {{ rootdirectory: {} }}, delete: {{ enabled: true }} }}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some(ca) = opts.tls {
            yaml.push_str(&format!(
                "  tls: {{ certificate: {}, key: {} }}\n",
                ca.cert.display(),
                ca.key.display()
            ));
        }
        if let Some(h) = opts.htpasswd {
            yaml.push_str(&format!(
                "auth: {{ htpasswd: {{ realm: test, path: {} }} }}\n",
                h.display()
            ));
        }
        let cfg = dir.join("registry.yml");
        std::fs::write(&cfg, yaml).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start docker-registry (package docker-registry)");
        let mut proc = Process {
            child,
            name: "docker-registry".into(),
        };
        wait_for_port(port, &mut proc.child, "docker-registry");
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        Registry {
            port,
            url: format!("{scheme}://127.0.0.1:{port}"),
            storage,
            _proc: proc,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Writes a bcrypt htpasswd file with one user (apache2-utils' `htpasswd`).
pub fn htpasswd(path: &Path, user: &str, password: &str) {
    let out = run_ok(Command::new("htpasswd").args(["-Bbn", user, password]));
    std::fs::write(path, out.trim_end()).unwrap();
}

// === Images ===

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(b))
}

/// One blob of a test image.
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: String,
    pub bytes: Vec<u8>,
    pub media_type: String,
}

/// A deterministic single-platform image: one gzip'd tar layer, a config and a manifest.
#[derive(Clone, Debug)]
pub struct TestImage {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

/// An image or an index with its children.
#[derive(Clone, Debug)]
pub struct TestIndex {
    pub index: Vec<u8>,
    pub index_digest: String,
    pub children: Vec<TestImage>,
}

fn gzip_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        tar.append_data(&mut h, name, *data).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

impl TestImage {
    /// An OCI image whose single layer holds `/content` = `content` (and is `extra_bytes` of
    /// pseudo-random padding bigger, for large-blob tests).
    pub fn oci(content: &str, arch: &str, extra_bytes: usize) -> TestImage {
        Self::build(content, arch, extra_bytes, false)
    }

    /// The same image in Docker schema 2 media types.
    pub fn docker(content: &str, arch: &str) -> TestImage {
        Self::build(content, arch, 0, true)
    }

    fn build(content: &str, arch: &str, extra_bytes: usize, docker: bool) -> TestImage {
        let padding = pseudo_random(extra_bytes, content.len() as u64 + 7);
        let layer = gzip_tar(&[("content", content.as_bytes()), ("padding", &padding)]);
        let diff_id = {
            // The uncompressed tar digest; recompute by building the tar again without gzip.
            let mut tar = tar::Builder::new(Vec::new());
            for (name, data) in [("content", content.as_bytes()), ("padding", &padding[..])] {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_uid(0);
                h.set_gid(0);
                h.set_cksum();
                tar.append_data(&mut h, name, data).unwrap();
            }
            digest_of(&tar.into_inner().unwrap())
        };
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{"Cmd":["/content"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        )
        .into_bytes();
        let (mt_manifest, mt_config, mt_layer) = if docker {
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        };
        let config_blob = Blob {
            digest: digest_of(&config),
            bytes: config,
            media_type: mt_config.into(),
        };
        let layer_blob = Blob {
            digest: digest_of(&layer),
            bytes: layer,
            media_type: mt_layer.into(),
        };
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt_manifest}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
            config_blob.media_type,
            config_blob.digest,
            config_blob.bytes.len(),
            layer_blob.media_type,
            layer_blob.digest,
            layer_blob.bytes.len()
        )
        .into_bytes();
        TestImage {
            manifest_digest: digest_of(&manifest),
            manifest,
            config: config_blob,
            layers: vec![layer_blob],
        }
    }

    pub fn media_type(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.manifest).unwrap();
        v["mediaType"].as_str().unwrap().to_owned()
    }

    pub fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config).chain(&self.layers).collect()
    }
}

impl TestIndex {
    /// An OCI image index over one image per architecture.
    pub fn multi(content: &str, arches: &[&str]) -> TestIndex {
        let children: Vec<TestImage> = arches
            .iter()
            .map(|a| TestImage::oci(&format!("{content} {a}"), a, 0))
            .collect();
        let entries: Vec<String> = children
            .iter()
            .zip(arches)
            .map(|(c, a)| {
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"architecture":"{a}","os":"linux"}}}}"#,
                    c.manifest_digest,
                    c.manifest.len()
                )
            })
            .collect();
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            entries.join(",")
        )
        .into_bytes();
        TestIndex {
            index_digest: digest_of(&index),
            index,
            children,
        }
    }
}

/// Deterministic incompressible bytes (xorshift), so large blobs stay large after gzip.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// An OCI image layout directory holding images and indexes under tags.
pub struct Layout {
    pub dir: PathBuf,
    entries: Vec<String>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_owned(),
            entries: Vec::new(),
        }
    }

    fn put(&self, bytes: &[u8]) {
        let p = self.dir.join("blobs/sha256").join(sha256_hex(bytes));
        std::fs::write(p, bytes).unwrap();
    }

    fn tag(&mut self, bytes: &[u8], media_type: &str, tag: &str) {
        self.entries.push(format!(
            r#"{{"mediaType":"{media_type}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#,
            digest_of(bytes),
            bytes.len()
        ));
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            self.entries.join(",")
        );
        std::fs::write(self.dir.join("index.json"), index).unwrap();
    }

    pub fn add_image(&mut self, img: &TestImage, tag: &str) {
        for b in img.blobs() {
            self.put(&b.bytes);
        }
        self.put(&img.manifest);
        self.tag(&img.manifest, &img.media_type(), tag);
    }

    pub fn add_index(&mut self, idx: &TestIndex, tag: &str) {
        for c in &idx.children {
            for b in c.blobs() {
                self.put(&b.bytes);
            }
            self.put(&c.manifest);
        }
        self.put(&idx.index);
        self.tag(&idx.index, "application/vnd.oci.image.index.v1+json", tag);
    }
}

/// Writes `img` in skopeo's `dir:` format (manifest.json plus blobs named by hex digest).
pub fn write_dir(dir: &Path, img: &TestImage) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    std::fs::write(dir.join("manifest.json"), &img.manifest).unwrap();
    for b in img.blobs() {
        std::fs::write(dir.join(b.digest.trim_start_matches("sha256:")), &b.bytes).unwrap();
    }
    dir.to_owned()
}

/// Pushes `layout:tag` to `dest` (`HOST/REPO:TAG`) with skopeo, keeping manifest bytes exactly.
pub fn skopeo_push(layout: &Layout, tag: &str, dest: &str, extra: &[&str]) {
    let src = format!("oci:{}:{tag}", layout.dir.display());
    run_ok(
        guarded("skopeo")
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--preserve-digests",
            ])
            .args(extra)
            .arg(&src)
            .arg(format!("docker://{dest}")),
    );
}

// === pullgate ===

/// A running pullgate process.
pub struct Pullgate {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub log: Arc<Mutex<String>>,
    proc: Process,
}

impl Pullgate {
    /// Starts `pullgate serve` with `config` (whose `[server] listen` should use port 0 or a
    /// free port) and waits for its "listening" line.
    pub fn start(dir: &Path, config: &str) -> Pullgate {
        Self::start_with_env(dir, config, &[])
    }

    /// Like [`Pullgate::start`], with `env` added to the process's environment (e.g. the
    /// variables `username_env`/`password_env` name), not the test process's own.
    pub fn start_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Pullgate {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = dir.join("pullgate.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .env("PULLGATE_LOG", "info,pullgate=debug")
            .envs(EGRESS_GUARD)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start pullgate");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(t) = tx.take() {
                        let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                    }
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let log3 = log.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let mut r = BufReader::new(stdout);
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if let Some(i) = s.rfind('\n') {
                    log3.lock().unwrap().push_str(&s[..=i]);
                    s.drain(..=i);
                }
            }
        });
        let mut proc = Process {
            child,
            name: "pullgate".into(),
        };
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(u) => u,
            Err(_) => {
                let _ = proc.child.kill();
                std::thread::sleep(Duration::from_millis(100));
                panic!("pullgate did not start:\n{}", log.lock().unwrap());
            }
        };
        let addr: SocketAddr = url.split("://").nth(1).unwrap().parse().unwrap();
        Pullgate {
            addr,
            dir: dir.to_owned(),
            log,
            proc,
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.proc.terminate();
        self.proc.child.wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}

/// A `[[registry]]` table for a test registry.
pub fn registry_toml(name: &str, url: &str, default: bool, extra: &str) -> String {
    format!("[[registry]]\nname = \"{name}\"\nurl = \"{url}\"\ndefault = {default}\n{extra}\n")
}

/// A minimal pullgate config: listen on a free port, audit to a file, warn-mode rule.
pub fn pullgate_toml(dir: &Path, registries: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n\n[audit]\npath = \"{}\"\n\n{registries}\n[[rule]]\nname = \"default\"\nimages = [\"**\"]\nmode = \"off\"\n\n[typosquat]\nmode = \"off\"\n",
        dir.join("audit.jsonl").display()
    )
}

/// Every file in a `skopeo copy ... dir:` output, by name.
pub fn dir_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Checks that a `skopeo copy docker://… dir:OUT` result holds exactly `img`.
pub fn assert_dir_has_image(out: &Path, img: &TestImage) {
    let files = dir_files(out);
    assert_eq!(
        files.get("manifest.json").map(|m| digest_of(m)),
        Some(img.manifest_digest.clone()),
        "manifest differs"
    );
    for b in img.blobs() {
        let name = b.digest.trim_start_matches("sha256:");
        assert_eq!(
            files.get(name),
            Some(&b.bytes),
            "blob {} differs or is missing",
            b.digest
        );
    }
}
