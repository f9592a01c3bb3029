//! The upstream Bearer token flow against a real `docker-registry` (distribution 2.8) configured
//! with `auth: token`: pushing with skopeo's own token flow, pulling through pullgate, token
//! caching and expiry, credentials at the token endpoint, and that the client's own
//! `Authorization` header never reaches the upstream.
//!
//! The registry is real; what it trusts is the test token issuer of module `token_issuer`, which
//! records every request so tests can assert what pullgate asked for and with which credentials.
//!
//! `Relay` is a byte-level TCP relay in front of the registry that records what pullgate sent;
//! it does not change any byte.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::support::*;
use crate::token_issuer::{IssuerPolicy, TokenIssuer, ISSUER, PUSHER};

/// The registry's `service` (the tokens' audience).
const SERVICE: &str = "test-registry";
/// The scope pullgate needs for pulls of `library/hello`.
const PULL_SCOPE: &str = "repository:library/hello:pull";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

// === registry with token auth ===

/// A real `docker-registry` that accepts only tokens from `issuer`.
struct TokenRegistry {
    url: String,
    port: u16,
    log: PathBuf,
    _proc: Process,
}

impl TokenRegistry {
    fn start(dir: &Path, issuer: &TokenIssuer) -> TokenRegistry {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let yaml = format!(
            "version: 0.1\n\
             log: {{ level: info }}\n\
             storage: {{ filesystem: {{ rootdirectory: {data} }}, delete: {{ enabled: true }} }}\n\
             http:\n  addr: 127.0.0.1:{port}\n\
             auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {root}\n",
            data = dir.join("data").display(),
            realm = issuer.realm(),
            root = issuer.root_bundle.display(),
        );
        let cfg = dir.join("registry.yml");
        std::fs::write(&cfg, yaml).unwrap();
        let log = dir.join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = guarded("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("cannot start docker-registry (package docker-registry)");
        let mut proc = Process {
            child,
            name: "docker-registry".into(),
        };
        wait_for_port(port, &mut proc.child, "docker-registry");
        TokenRegistry {
            url: format!("http://127.0.0.1:{port}"),
            port,
            log,
            _proc: proc,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

// === recording relay ===

/// Forwards TCP connections to `127.0.0.1:upstream` unchanged and keeps a copy of every byte
/// sent towards the upstream.
struct Relay {
    port: u16,
    seen: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let seen = seen2.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(Shutdown::Write);
                });
            }
        });
        Relay { port, seen, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

// === helpers ===

/// Builds the test image and pushes it as `library/hello:1.0`, authenticating at the issuer as
/// the pusher (skopeo runs the token flow itself).
fn push_hello(tmp: &Path, reg: &TokenRegistry, content: &str) -> TestImage {
    let img = TestImage::oci(content, "amd64", 0);
    let mut layout = Layout::new(&tmp.join("layout"));
    layout.add_image(&img, "1.0");
    let creds = format!("{}:{}", PUSHER.0, PUSHER.1);
    let out = run(guarded("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .args(["--dest-creds", &creds])
        .arg(format!("oci:{}:1.0", layout.dir.display()))
        .arg(format!("docker://{}/library/hello:1.0", reg.host())));
    assert!(
        out.ok,
        "push to the token-auth registry failed:\n{}\nregistry log:\n{}",
        out.text(),
        reg.log()
    );
    img
}

fn start_pullgate(dir: &Path, upstream_url: &str, extra: &str) -> Pullgate {
    let regs = registry_toml("docker.io", upstream_url, true, extra);
    Pullgate::start(dir, &pullgate_toml(dir, &regs))
}

fn skopeo_pull(src: &str, out: &Path) -> Output {
    run(guarded("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{src}"))
        .arg(format!("dir:{}", out.display())))
}

/// One GET with curl; returns the status and the body.
fn curl_get(url: &str, headers: &[&str], out: &Path) -> (u16, Vec<u8>) {
    let mut cmd = guarded("curl");
    cmd.args(["-sS", "-o"])
        .arg(out)
        .args(["-w", "%{http_code}"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let status = run_ok(cmd.arg(url));
    let status: u16 = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl printed no status: {status:?}"));
    (status, std::fs::read(out).unwrap_or_default())
}

fn manifest_url(pg: &Pullgate, reference: &str) -> String {
    format!(
        "http://{}/v2/library/hello/manifests/{reference}",
        pg.host()
    )
}

// === tests ===

#[test]
fn skopeo_pushes_with_tokens_and_pulls_through_pullgate_with_a_bearer_token() {
    let tmp = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::start(&tmp.path().join("issuer"), IssuerPolicy::default());
    let reg = TokenRegistry::start(&tmp.path().join("reg"), &issuer);

    // The registry really demands a token: an unauthenticated pull is challenged.
    let (status, _) = curl_get(
        &format!("{}/v2/library/hello/manifests/1.0", reg.url),
        &[],
        &tmp.path().join("challenge"),
    );
    assert_eq!(status, 401, "the registry does not enforce token auth");

    let img = push_hello(tmp.path(), &reg, "hello token auth");
    let push_requests: Vec<_> = issuer
        .requests()
        .into_iter()
        .filter(|r| r.issued && r.user.as_deref() == Some(PUSHER.0))
        .filter(|r| {
            r.scopes
                .iter()
                .any(|s| s.contains("library/hello") && s.contains("push"))
        })
        .collect();
    assert!(
        !push_requests.is_empty(),
        "skopeo never got a push token: {:?}",
        issuer.requests()
    );

    let before = issuer.requests().len();
    let pg = start_pullgate(&tmp.path().join("pg"), &reg.url, "");
    let out = tmp.path().join("out");
    let r = skopeo_pull(&format!("{}/hello:1.0", pg.host()), &out);
    assert!(
        r.ok,
        "pull through pullgate failed:\n{}\npullgate log:\n{}\nregistry log:\n{}",
        r.text(),
        pg.log(),
        reg.log()
    );
    assert_dir_has_image(&out, &img);

    // pullgate asked the realm anonymously for exactly the pull scope of that repository, for
    // the registry's service.
    let pulls: Vec<_> = issuer.requests().into_iter().skip(before).collect();
    assert!(!pulls.is_empty(), "pullgate never asked the token issuer");
    for p in &pulls {
        assert_eq!(p.scopes, [PULL_SCOPE], "{pulls:?}");
        assert_eq!(p.service.as_deref(), Some(SERVICE), "{pulls:?}");
        assert!(p.authorization.is_none() && p.issued, "{pulls:?}");
    }
}

#[test]
fn tokens_are_cached_until_shortly_before_they_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::start(&tmp.path().join("issuer"), IssuerPolicy::default());
    let reg = TokenRegistry::start(&tmp.path().join("reg"), &issuer);
    let img = push_hello(tmp.path(), &reg, "hello cached tokens");

    // A 300 s token serves two whole pulls (manifest and both blobs, twice).
    let pg = start_pullgate(&tmp.path().join("pg1"), &reg.url, "");
    for i in 0..2 {
        let out = tmp.path().join(format!("out{i}"));
        let r = skopeo_pull(&format!("{}/hello:1.0", pg.host()), &out);
        assert!(r.ok, "pull {i} failed:\n{}\n{}", r.text(), pg.log());
        assert_dir_has_image(&out, &img);
    }
    assert_eq!(
        issuer.requests_for(PULL_SCOPE).len(),
        1,
        "two pulls with a 300 s token: {:?}",
        issuer.requests()
    );
    drop(pg);

    // A token that lives no longer than pullgate's 10 s safety margin is never reused: every
    // upstream request fetches a fresh one.
    issuer.set_policy(IssuerPolicy {
        lifetime_secs: 10,
        ..IssuerPolicy::default()
    });
    let pg = start_pullgate(&tmp.path().join("pg2"), &reg.url, "");
    let mut last = issuer.requests_for(PULL_SCOPE).len();
    for i in 0..3 {
        let (status, body) = curl_get(
            &manifest_url(&pg, "1.0"),
            &[&format!("Accept: {OCI_MANIFEST}")],
            &tmp.path().join(format!("m{i}")),
        );
        assert_eq!(status, 200, "request {i}:\n{}", pg.log());
        assert_eq!(body, img.manifest);
        let now = issuer.requests_for(PULL_SCOPE).len();
        assert!(
            now > last,
            "request {i} reused a token that expires within the margin ({last} -> {now} token requests)"
        );
        last = now;
    }
    // And a whole pull still works with such tokens.
    let out = tmp.path().join("out-short");
    let r = skopeo_pull(&format!("{}/hello:1.0", pg.host()), &out);
    assert!(
        r.ok,
        "pull with short-lived tokens failed:\n{}\n{}",
        r.text(),
        pg.log()
    );
    assert_dir_has_image(&out, &img);
    assert!(issuer.requests_for(PULL_SCOPE).len() > last);
}

#[test]
fn token_endpoint_credentials_come_from_the_registry_config_and_are_never_logged() {
    let tmp = tempfile::tempdir().unwrap();
    // A password distinctive enough that finding it in a log cannot be a coincidence.
    let (user, password) = ("puller", "pw-7Hq2xZ");
    let issuer = TokenIssuer::start(
        &tmp.path().join("issuer"),
        IssuerPolicy {
            pull_credentials: Some((user.into(), password.into())),
            ..IssuerPolicy::default()
        },
    );
    let reg = TokenRegistry::start(&tmp.path().join("reg"), &issuer);
    let img = push_hello(tmp.path(), &reg, "hello credentials");

    // Without credentials the issuer refuses; the client gets 403 DENIED with a reason, never
    // a 401 (which would make it prompt for a login to pullgate).
    let pg = start_pullgate(&tmp.path().join("pg1"), &reg.url, "");
    let (status, body) = curl_get(
        &manifest_url(&pg, "1.0"),
        &[&format!("Accept: {OCI_MANIFEST}")],
        &tmp.path().join("denied"),
    );
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
    assert_eq!(status, 403, "{doc}\n{}", pg.log());
    assert_eq!(doc["errors"][0]["code"], "DENIED", "{doc}");
    let message = doc["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("pullgate:") && message.contains("docker.io"),
        "{message}"
    );
    let anonymous = issuer.requests_for(PULL_SCOPE);
    assert!(
        !anonymous.is_empty()
            && anonymous
                .iter()
                .all(|r| r.authorization.is_none() && !r.issued),
        "{anonymous:?}"
    );
    let r = skopeo_pull(&format!("{}/hello:1.0", pg.host()), &tmp.path().join("bad"));
    assert!(!r.ok, "pull without credentials succeeded");
    drop(pg);

    // With `username_env` and `password_file` pullgate authenticates at the token endpoint.
    let pass_file = tmp.path().join("puller-password");
    std::fs::write(&pass_file, format!("{password}\n")).unwrap();
    std::env::set_var("PULLGATE_TOKEN_TEST_USER", user);
    let creds = format!(
        "username_env = \"PULLGATE_TOKEN_TEST_USER\"\npassword_file = \"{}\"",
        pass_file.display()
    );
    let before = issuer.requests().len();
    let pg = start_pullgate(&tmp.path().join("pg2"), &reg.url, &creds);
    let out = tmp.path().join("out");
    let r = skopeo_pull(&format!("{}/hello:1.0", pg.host()), &out);
    assert!(
        r.ok,
        "pull with credentials failed:\n{}\n{}",
        r.text(),
        pg.log()
    );
    assert_dir_has_image(&out, &img);
    let authenticated: Vec<_> = issuer.requests().into_iter().skip(before).collect();
    assert!(!authenticated.is_empty());
    for req in &authenticated {
        assert_eq!(req.scopes, [PULL_SCOPE], "{authenticated:?}");
        assert_eq!(req.user.as_deref(), Some(user), "{authenticated:?}");
        assert!(req.issued, "{authenticated:?}");
    }

    let log = pg.log();
    let basic = STANDARD.encode(format!("{user}:{password}"));
    assert!(
        !log.contains(password),
        "the password leaked into pullgate's log"
    );
    assert!(
        !log.contains(&basic),
        "the Basic credentials leaked into pullgate's log"
    );
    for token in issuer.tokens() {
        assert!(
            !log.contains(&token),
            "a bearer token leaked into pullgate's log"
        );
    }
}

#[test]
fn client_authorization_header_is_never_forwarded_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::start(&tmp.path().join("issuer"), IssuerPolicy::default());
    let reg = TokenRegistry::start(&tmp.path().join("reg"), &issuer);
    let img = push_hello(tmp.path(), &reg, "hello client secret");
    let relay = Relay::start(reg.port);
    let pg = start_pullgate(&tmp.path().join("pg"), &relay.url(), "");

    const CLIENT_SECRET: &str = "client-secret-xyz";
    let client_auth = format!("Authorization: Bearer {CLIENT_SECRET}");
    // Twice: once before pullgate knows the registry wants tokens, once after.
    for i in 0..2 {
        let (status, body) = curl_get(
            &manifest_url(&pg, "1.0"),
            &[&client_auth, &format!("Accept: {OCI_MANIFEST}")],
            &tmp.path().join(format!("m{i}")),
        );
        assert_eq!(status, 200, "manifest request {i}:\n{}", pg.log());
        assert_eq!(body, img.manifest);
    }
    for (i, blob) in img.blobs().into_iter().enumerate() {
        let url = format!(
            "http://{}/v2/library/hello/blobs/{}",
            pg.host(),
            blob.digest
        );
        let (status, body) = curl_get(&url, &[&client_auth], &tmp.path().join(format!("b{i}")));
        assert_eq!(status, 200, "blob {}:\n{}", blob.digest, pg.log());
        assert_eq!(body, blob.bytes, "blob {}", blob.digest);
    }

    // Control: the relay does record an Authorization header that is sent through it (a
    // request straight from curl to the registry, not via pullgate).
    let control = "Authorization: Bearer relay-control-value";
    let direct = format!("{}/v2/library/hello/manifests/1.0", relay.url());
    let (status, _) = curl_get(&direct, &[control], &tmp.path().join("control"));
    assert_eq!(status, 401, "the registry accepted a made-up token");
    assert!(relay.seen().contains("relay-control-value"));

    // The registry saw pullgate's own tokens and never the client's.
    let wire = relay.seen();
    assert!(
        wire.contains("/v2/library/hello/manifests/1.0"),
        "the relay saw no traffic"
    );
    assert!(
        !wire.contains(CLIENT_SECRET),
        "the client's Authorization reached the registry"
    );
    let tokens = issuer.tokens();
    assert!(
        tokens.iter().any(|t| wire.contains(t.as_str())),
        "pullgate did not authenticate with a token from the issuer"
    );
    // Nor did the token issuer.
    let requests = issuer.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let auth = r.authorization.as_deref().unwrap_or("");
        assert!(
            !auth.contains(CLIENT_SECRET),
            "the client's Authorization reached the issuer"
        );
    }
    assert!(
        requests
            .iter()
            .filter(|r| r.scopes == [PULL_SCOPE])
            .all(|r| r.authorization.is_none()),
        "{requests:?}"
    );
}
