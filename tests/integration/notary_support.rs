//! Docker Content Trust test infrastructure: the real notary-signer and notary-server (Debian
//! package `notary`) on loopback, and the real `notary` CLI publishing trust data to them the
//! way `docker trust` did (real-world.md "Docker Content Trust", trust-formats.md §3).
//!
//! - [`NotaryServer`]: notary-signer (gRPC with mutual TLS, memory storage) plus notary-server
//!   (HTTPS with the test CA's leaf, remote trust service = that signer, ECDSA server-managed
//!   keys, memory storage). Both die when the value drops; [`NotaryServer::stop`] kills them
//!   earlier to test "trust server down". [`NotaryServer::start_with_token_auth`] makes the
//!   server demand Bearer tokens from a test [`TokenIssuer`].
//! - [`NotaryCli`]: one client trust directory and config; `init` a GUN (server-managed
//!   snapshot key, as Docker did), add delegations, sign and remove tags, read the published
//!   metadata back. [`NotaryCli::with_login`] logs it in at such a server's token service.
//!
//! Nothing skips: a missing binary panics naming the package, because scripts/test.sh installs
//! it.

// Later end-to-end tests use the parts the sanity test does not.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::support::*;
use crate::token_issuer::{TokenIssuer, ISSUER};

/// The role `docker trust sign` publishes into and pullgate looks in first (§3.7).
pub const RELEASES: &str = "targets/releases";

/// How long the signer and server get to come up. They take well under a second here; the
/// margin is for a loaded CI machine.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// The last `n` lines of a log file, for panic messages.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A GET with curl trusting only `ca`: the status and the exact body bytes. Status 0 means no
/// HTTP answer at all (connection refused, TLS failure).
pub fn https_get(url: &str, ca: &Path) -> (u16, Vec<u8>) {
    // The status goes after the body on its own line, so binary bodies stay intact.
    let out = guarded("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["-o", "-", "-w", "\n%{http_code}", url])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl (package curl): {e}"));
    let mut body = out.stdout;
    let split = body
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap_or_else(|| panic!("no status line from curl for {url}"));
    let code = String::from_utf8_lossy(&body[split + 1..])
        .trim()
        .to_owned();
    body.truncate(split);
    let code = code
        .parse()
        .unwrap_or_else(|_| panic!("bad curl status {code:?} for {url}"));
    (code, body)
}

/// notary-signer and notary-server on free loopback ports.
pub struct NotaryServer {
    pub port: u16,
    pub signer_port: u16,
    pub dir: PathBuf,
    /// The CA the server's certificate chains to (clients pass it as `--cacert`/`root_ca`).
    pub ca_cert: PathBuf,
    pub server_log: PathBuf,
    pub signer_log: PathBuf,
    /// How long both took to answer health checks after the first spawn.
    pub startup: Duration,
    // Declared server first: it is dropped (killed) before the signer it talks to.
    server: Process,
    signer: Process,
}

impl NotaryServer {
    /// Starts the signer, waits for its gRPC port, starts the server and waits until
    /// `/_notary_server/health` answers 200. Waiting for the signer first matters: the server's
    /// health check of its trust service is periodic, so an early 200 does not prove the signer
    /// is reachable.
    pub fn start(dir: &Path, ca: &TestCa) -> NotaryServer {
        Self::start_with(dir, ca, None)
    }

    /// Like [`NotaryServer::start`], but every `/v2/` request needs a Bearer token from
    /// `issuer` for `service` (distribution's token access controller, the same as the
    /// registry's `auth: token`): unauthenticated requests get 401 with a challenge naming the
    /// issuer's realm, `service` and the scope `repository:<GUN>:pull` (or `push,pull`).
    pub fn start_with_token_auth(
        dir: &Path,
        ca: &TestCa,
        issuer: &TokenIssuer,
        service: &str,
    ) -> NotaryServer {
        let auth = serde_json::json!({
            "type": "token",
            "options": {
                "realm": issuer.realm(),
                "service": service,
                "issuer": ISSUER,
                "rootcertbundle": issuer.root_bundle,
            },
        });
        Self::start_with(dir, ca, Some(auth))
    }

    fn start_with(dir: &Path, ca: &TestCa, auth: Option<Value>) -> NotaryServer {
        std::fs::create_dir_all(dir).unwrap();
        let began = Instant::now();
        let signer_port = free_port();
        let port = free_port();

        let signer_cfg = dir.join("notary-signer.json");
        let signer_json = serde_json::json!({
            "server": {
                "grpc_addr": format!("127.0.0.1:{signer_port}"),
                "tls_cert_file": ca.cert,
                "tls_key_file": ca.key,
                "client_ca_file": ca.ca_cert,
            },
            "storage": {"backend": "memory"},
            "logging": {"level": "info"},
        });
        std::fs::write(&signer_cfg, signer_json.to_string()).unwrap();

        let server_cfg = dir.join("notary-server.json");
        let mut server_json = serde_json::json!({
            "server": {
                "http_addr": format!("127.0.0.1:{port}"),
                "tls_cert_file": ca.cert,
                "tls_key_file": ca.key,
            },
            "trust_service": {
                "type": "remote",
                "hostname": "127.0.0.1",
                "port": signer_port.to_string(),
                "key_algorithm": "ecdsa",
                "tls_ca_file": ca.ca_cert,
                "tls_client_cert": ca.cert,
                "tls_client_key": ca.key,
            },
            "storage": {"backend": "memory"},
            "logging": {"level": "info"},
        });
        if let Some(auth) = auth {
            server_json["auth"] = auth;
        }
        std::fs::write(&server_cfg, server_json.to_string()).unwrap();

        let signer_log = dir.join("notary-signer.log");
        let server_log = dir.join("notary-server.log");
        let mut signer = spawn_logged("notary-signer", &signer_cfg, &signer_log);
        let deadline = began + STARTUP_LIMIT;
        wait_until(deadline, &mut signer, &signer_log, "notary-signer", || {
            TcpStream::connect(("127.0.0.1", signer_port)).is_ok()
        });
        let mut server = spawn_logged("notary-server", &server_cfg, &server_log);
        let health = format!("https://127.0.0.1:{port}/_notary_server/health");
        wait_until(deadline, &mut server, &server_log, "notary-server", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && https_get(&health, &ca.ca_cert).0 == 200
        });
        NotaryServer {
            port,
            signer_port,
            dir: dir.to_owned(),
            ca_cert: ca.ca_cert.clone(),
            server_log,
            signer_log,
            startup: began.elapsed(),
            server,
            signer,
        }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Kills the server and the signer and waits for both to exit, so the port refuses
    /// connections afterwards.
    pub fn stop(&mut self) {
        self.server.terminate();
        self.signer.terminate();
    }

    /// GET `path` (starting with `/`) on the server: status and body.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        https_get(&format!("{}{path}", self.url()), &self.ca_cert)
    }

    /// GET `/v2/GUN/_trust/tuf/FILE` (`FILE` like `root.json`, `targets/releases.json`,
    /// `2.root.json`): status and body.
    pub fn get_tuf(&self, gun: &str, file: &str) -> (u16, Vec<u8>) {
        self.get(&format!("/v2/{gun}/_trust/tuf/{file}"))
    }

    /// The bytes of a published metadata file; panics unless the server answers 200.
    pub fn fetch(&self, gun: &str, file: &str) -> Vec<u8> {
        let (code, body) = self.get_tuf(gun, file);
        assert_eq!(
            code,
            200,
            "GET {gun} {file} answered {code}: {}\nserver log:\n{}",
            String::from_utf8_lossy(&body),
            tail(&self.server_log, 20)
        );
        body
    }

    /// A published metadata file parsed as JSON.
    pub fn fetch_json(&self, gun: &str, file: &str) -> Value {
        let body = self.fetch(gun, file);
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{gun} {file} is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// The tails of both logs, for assertion messages.
    pub fn logs(&self) -> String {
        format!(
            "notary-server log:\n{}\nnotary-signer log:\n{}",
            tail(&self.server_log, 30),
            tail(&self.signer_log, 30)
        )
    }
}

fn spawn_logged(program: &str, config: &Path, log: &Path) -> Process {
    let file = std::fs::File::create(log).unwrap();
    let child = guarded(program)
        .arg("-config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} (package notary): {e}"));
    Process {
        child,
        name: program.into(),
    }
}

/// Polls `ready` until it holds; panics with the log tail if the process exits or time runs out.
fn wait_until(
    deadline: Instant,
    proc: &mut Process,
    log: &Path,
    what: &str,
    mut ready: impl FnMut() -> bool,
) {
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("{what} exited early with {status}; log:\n{}", tail(log, 30));
        }
        if ready() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{what} not ready within {STARTUP_LIMIT:?}; log:\n{}",
                tail(log, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A delegation key made in the test and imported into the CLI's trust directory.
pub struct DelegationKey {
    pub role: String,
    /// The TUF key id (hex sha256 of the canonical `ecdsa` key object, trust-formats.md §3.3).
    pub key_id: String,
    /// SPKI PEM of the public key, as handed to `notary delegation add`.
    pub public_pem: PathBuf,
    /// The PKCS#8 PEM private key, so tests can forge metadata with it.
    pub private_pem: String,
}

/// The notary CLI with its own trust directory, talking to one [`NotaryServer`].
pub struct NotaryCli {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub trust_dir: PathBuf,
    pub server_url: String,
    pub ca_cert: PathBuf,
    /// Names the files this client writes (manifests, keys) uniquely.
    counter: AtomicUsize,
    /// `NOTARY_AUTH` (base64 of `user:password`): the CLI's login at the server's token
    /// service. Without it the CLI would prompt for a user name, which fails without a
    /// terminal.
    auth: Option<String>,
}

/// Every key passphrase the CLI may ask for; with them set it never prompts.
const PASSPHRASE_ENV: [&str; 4] = [
    "NOTARY_ROOT_PASSPHRASE",
    "NOTARY_TARGETS_PASSPHRASE",
    "NOTARY_SNAPSHOT_PASSPHRASE",
    "NOTARY_DELEGATION_PASSPHRASE",
];

impl NotaryCli {
    /// Writes the client config (trust dir under `dir`, the server's URL, the test CA as its
    /// only root).
    pub fn new(dir: &Path, server: &NotaryServer, ca: &TestCa) -> NotaryCli {
        std::fs::create_dir_all(dir).unwrap();
        let trust_dir = dir.join("trust");
        let config = dir.join("notary-client.json");
        let json = serde_json::json!({
            "trust_dir": trust_dir,
            "remote_server": {"url": server.url(), "root_ca": ca.ca_cert},
        });
        std::fs::write(&config, json.to_string()).unwrap();
        NotaryCli {
            dir: dir.to_owned(),
            config,
            trust_dir,
            server_url: server.url(),
            ca_cert: ca.ca_cert.clone(),
            counter: AtomicUsize::new(0),
            auth: None,
        }
    }

    /// This client logs in to the server's token service as `user` (for servers started with
    /// [`NotaryServer::start_with_token_auth`]).
    pub fn with_login(mut self, user: &str, password: &str) -> NotaryCli {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.auth = Some(b64);
        self
    }

    /// `notary -c CONF ARGS…` with passphrases and the egress guard; the raw result.
    pub fn try_run(&self, args: &[&str]) -> Output {
        let mut cmd = guarded("notary");
        cmd.arg("-c").arg(&self.config).args(args);
        for var in PASSPHRASE_ENV {
            cmd.env(var, "pullgate-test-passphrase");
        }
        if let Some(auth) = &self.auth {
            cmd.env("NOTARY_AUTH", auth);
        }
        run(&mut cmd)
    }

    /// Like [`NotaryCli::try_run`], panicking with the output unless it succeeds.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(out.ok, "notary {args:?} failed:\n{}", out.text());
        out.stdout
    }

    pub fn publish(&self, gun: &str) {
        self.run(&["publish", gun]);
    }

    /// Creates the GUN's trust data: root and targets keys in the trust dir, the snapshot key
    /// moved to the server (as Docker did), timestamp key always server-side. Publishes.
    pub fn init(&self, gun: &str) {
        self.run(&["init", gun]);
        self.run(&["key", "rotate", gun, "snapshot", "-r"]);
        self.publish(gun);
    }

    /// Adds the `targets/releases` delegation (all paths) with a fresh P-256 key; publishes.
    pub fn add_releases_delegation(&self, gun: &str) -> DelegationKey {
        self.add_delegation(gun, RELEASES)
    }

    /// Adds delegation `role` (all paths) with a fresh P-256 key generated here (rcgen,
    /// PKCS#8 PEM: the form `notary key import` accepts), imported for signing; publishes.
    pub fn add_delegation(&self, gun: &str, role: &str) -> DelegationKey {
        let key = rcgen::KeyPair::generate().unwrap();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let keys = self.dir.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let stem = format!("{}-{n}", role.replace('/', "_"));
        let private = keys.join(format!("{stem}.key"));
        let public_pem = keys.join(format!("{stem}.pub"));
        std::fs::write(&private, key.serialize_pem()).unwrap();
        std::fs::write(&public_pem, key.public_key_pem()).unwrap();
        let private_str = private.to_str().unwrap();
        self.run(&["key", "import", private_str, "--role", role]);
        let public_str = public_pem.to_str().unwrap();
        self.run(&["delegation", "add", gun, role, public_str, "--all-paths"]);
        self.publish(gun);
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.public_key_der());
        let canonical =
            format!(r#"{{"keytype":"ecdsa","keyval":{{"private":null,"public":"{b64}"}}}}"#);
        DelegationKey {
            role: role.to_owned(),
            key_id: hex::encode(Sha256::digest(canonical.as_bytes())),
            public_pem,
            private_pem: key.serialize_pem(),
        }
    }

    /// Signs `tag` = exactly `manifest` (its sha256 and length become the target) into `role`
    /// (`None`: the top-level `targets`); publishes.
    pub fn sign(&self, gun: &str, tag: &str, manifest: &[u8], role: Option<&str>) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let files = self.dir.join("manifests");
        std::fs::create_dir_all(&files).unwrap();
        let file = files.join(format!("{n}-{}", sha256_hex(manifest)));
        std::fs::write(&file, manifest).unwrap();
        let mut args = vec!["add", gun, tag, file.to_str().unwrap()];
        if let Some(r) = role {
            args.extend(["--roles", r]);
        }
        self.run(&args);
        self.publish(gun);
    }

    /// Removes `tag` from `role` (`None`: `targets`); publishes.
    pub fn remove(&self, gun: &str, tag: &str, role: Option<&str>) {
        let mut args = vec!["remove", gun, tag];
        if let Some(r) = role {
            args.extend(["--roles", r]);
        }
        self.run(&args);
        self.publish(gun);
    }

    /// `notary lookup GUN TAG`: the CLI's own verified view, `TAG sha256:HEX LENGTH`.
    pub fn lookup(&self, gun: &str, tag: &str) -> String {
        self.run(&["lookup", gun, tag]).trim().to_owned()
    }

    /// The published metadata file `file` of `gun`, fetched with curl.
    pub fn fetch(&self, gun: &str, file: &str) -> Vec<u8> {
        let url = format!("{}/v2/{gun}/_trust/tuf/{file}", self.server_url);
        let (code, body) = https_get(&url, &self.ca_cert);
        assert_eq!(
            code,
            200,
            "GET {url} answered {code}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// The hex TUF key id of the GUN's root key: the single id under `roles.root.keyids` of
    /// the published root.json (an `ecdsa-x509` key, trust-formats.md §3.3).
    pub fn root_key_id(&self, gun: &str) -> String {
        root_key_id_of(&self.fetch(gun, "root.json"))
    }

    /// Like [`NotaryCli::root_key_id`], from the copy of root.json the CLI keeps in its trust
    /// directory (what it published), for servers that need a token to read.
    pub fn cached_root_key_id(&self, gun: &str) -> String {
        let path = self
            .trust_dir
            .join("tuf")
            .join(gun)
            .join("metadata/root.json");
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("no cached root.json at {}: {e}", path.display()));
        root_key_id_of(&bytes)
    }
}

/// The single key id under `roles.root.keyids` of a root.json.
fn root_key_id_of(bytes: &[u8]) -> String {
    let root: Value = serde_json::from_slice(bytes).unwrap();
    let ids = root["signed"]["roles"]["root"]["keyids"]
        .as_array()
        .unwrap_or_else(|| panic!("root.json without roles.root.keyids: {root}"));
    assert_eq!(ids.len(), 1, "expected one root key: {root}");
    ids[0].as_str().unwrap().to_owned()
}
