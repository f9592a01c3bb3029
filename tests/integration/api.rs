//! The pull API surface of pullgate against a real docker-registry (distribution 2.8) upstream:
//! the base route, refusal of push, delete and catalog, name/reference/digest validation,
//! unconfigured registries, containerd's `?ns=`, manifest HEAD/GET with `Accept` forwarding,
//! upstream "unknown" errors, blob ranges, tag listing and pagination, referrers, and graceful
//! shutdown with a download in flight.
//!
//! Requests are made with curl (status, headers and body to files) and, where "no body" must be
//! observed on the wire, with a raw HTTP/1.1 HEAD over a TCP socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

// === HTTP helpers ===

/// One HTTP answer: status, headers in order (names lowercased) and body bytes.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code` and `message` of the first entry of an OCI error document.
    fn oci_error(&self) -> (String, String) {
        let j = self.json();
        let e = &j["errors"][0];
        let code = e["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no OCI error code in {j}"));
        (
            code.to_owned(),
            e["message"].as_str().unwrap_or("").to_owned(),
        )
    }

    fn describe(&self) -> String {
        format!(
            "{} {:?}\n{}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// Parses a response head (status line and header lines).
fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let status_line = lines
        .next()
        .unwrap_or_else(|| panic!("empty response head: {head:?}"));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// Makes one request with curl. curl must complete the exchange: a dropped connection or an
/// empty reply fails the test, whatever the status would have been.
fn curl(url: &str, args: &[&str]) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let (head_file, body_file) = (dir.path().join("head"), dir.path().join("body"));
    let out = run(guarded("curl")
        // --path-as-is keeps paths like `a//b` exactly as written; -H Expect: avoids a
        // 100-continue round trip on uploads.
        .args(["-sS", "--globoff", "--path-as-is", "-H", "Expect:", "-D"])
        .arg(&head_file)
        .arg("-o")
        .arg(&body_file)
        .args(args)
        .arg(url));
    assert!(
        out.ok,
        "curl {args:?} {url} did not complete an HTTP exchange:\n{}",
        out.text()
    );
    let heads = std::fs::read_to_string(&head_file).unwrap();
    // With redirects or 100-continue curl writes several heads; the last one is the answer.
    let last = heads.trim_end().rsplit("\r\n\r\n").next().unwrap_or("");
    let (status, headers) = parse_head(last);
    Reply {
        status,
        headers,
        body: std::fs::read(&body_file).unwrap_or_default(),
    }
}

/// Sends a HEAD request on a fresh connection that the server closes after answering, and
/// returns the answer with everything that followed the head as its body: for HEAD that must be
/// nothing at all.
fn raw_head(addr: SocketAddr, path: &str, accept: Option<&str>) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "HEAD {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head: {:?}",
                String::from_utf8_lossy(&raw)
            )
        });
    let (status, headers) = parse_head(&String::from_utf8_lossy(&raw[..end]));
    Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

// === Fixture ===

/// A real registry, pullgate mirroring it as Docker Hub (un-prefixed names go to it), and the
/// image `library/hello:1.0` pushed with skopeo.
struct Setup {
    tmp: tempfile::TempDir,
    reg: Registry,
    pg: Pullgate,
    img: TestImage,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
        let img = TestImage::oci("hello api", "amd64", 0);
        push_image(tmp.path(), &reg, &img, "library/hello", &["1.0"]);
        let dir = tmp.path().join("pg");
        let regs = registry_toml("docker.io", &reg.url, true, "");
        let pg = Pullgate::start(&dir, &pullgate_toml(&dir, &regs));
        Setup { tmp, reg, pg, img }
    }

    /// A URL on pullgate.
    fn pg(&self, path: &str) -> String {
        format!("http://{}{path}", self.pg.host())
    }

    /// The same request straight to the registry, to compare with.
    fn direct(&self, path: &str) -> String {
        format!("{}{path}", self.reg.url)
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.reg
            .storage
            .join("docker/registry/v2/repositories")
            .join(repo)
    }
}

/// Pushes `img` to `repo` on `reg` under every tag in `tags`.
fn push_image(tmp: &Path, reg: &Registry, img: &TestImage, repo: &str, tags: &[&str]) {
    let mut layout = Layout::new(&tmp.join(format!(
        "layout-{}",
        img.manifest_digest.trim_start_matches("sha256:")
    )));
    layout.add_image(img, "src");
    for tag in tags {
        skopeo_push(&layout, "src", &format!("{}/{repo}:{tag}", reg.host()), &[]);
    }
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

// === Base, refusals, validation ===

#[test]
fn base_route_answers_200_with_the_distribution_api_version() {
    let s = Setup::new();
    let r = curl(&s.pg("/v2/"), &[]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
    assert_eq!(r.json(), serde_json::json!({}));
}

#[test]
fn push_and_delete_are_405_unsupported_catalog_is_403_denied_and_nothing_reaches_the_registry() {
    let s = Setup::new();
    let layer = &s.img.layers[0];
    let uploads_before = entries(&s.repo_dir("library/hello").join("_uploads"));
    let manifest = String::from_utf8(s.img.manifest.clone()).unwrap();
    let ct = format!("Content-Type: {OCI_MANIFEST}");
    let digest_q = format!("?digest={}", layer.digest);

    let push_requests: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "PUT",
            "/v2/hello/manifests/pushed".into(),
            vec!["-H", &ct, "--data-binary", &manifest],
        ),
        (
            "PUT",
            "/v2/newrepo/manifests/pushed".into(),
            vec!["-H", &ct, "--data-binary", &manifest],
        ),
        ("POST", "/v2/hello/blobs/uploads/".into(), vec![]),
        ("POST", "/v2/newrepo/blobs/uploads/".into(), vec![]),
        (
            "POST",
            format!(
                "/v2/newrepo/blobs/uploads/?mount={}&from=library/hello",
                layer.digest
            ),
            vec![],
        ),
        (
            "PATCH",
            "/v2/hello/blobs/uploads/0b0e2a34-upload".into(),
            vec!["--data-binary", "bytes"],
        ),
        (
            "PUT",
            format!("/v2/hello/blobs/uploads/0b0e2a34-upload{digest_q}"),
            vec!["--data-binary", "bytes"],
        ),
        (
            "DELETE",
            format!("/v2/hello/manifests/{}", s.img.manifest_digest),
            vec![],
        ),
        (
            "DELETE",
            format!("/v2/hello/blobs/{}", layer.digest),
            vec![],
        ),
    ];
    for (method, path, extra) in &push_requests {
        let mut args = vec!["-X", method];
        args.extend(extra.iter().copied());
        let r = curl(&s.pg(path), &args);
        assert_eq!(r.status, 405, "{method} {path}: {}", r.describe());
        assert_eq!(
            r.oci_error().0,
            "UNSUPPORTED",
            "{method} {path}: {}",
            r.describe()
        );
    }

    let r = curl(&s.pg("/v2/_catalog"), &[]);
    assert_eq!(r.status, 403, "{}", r.describe());
    assert_eq!(r.oci_error().0, "DENIED");

    // The registry saw none of it: no new tag, no new repository, no upload session, and the
    // manifest and blob that DELETE named are still there.
    let accept = format!("Accept: {OCI_MANIFEST}");
    let r = curl(
        &s.direct("/v2/library/hello/manifests/pushed"),
        &["-H", &accept],
    );
    assert_eq!(
        r.status,
        404,
        "pushed tag exists upstream: {}",
        r.describe()
    );
    assert!(
        !s.repo_dir("library/newrepo").exists(),
        "a repository was created upstream"
    );
    assert_eq!(
        entries(&s.repo_dir("library/hello").join("_uploads")),
        uploads_before
    );
    let r = curl(
        &s.direct(&format!(
            "/v2/library/hello/manifests/{}",
            s.img.manifest_digest
        )),
        &["-H", &accept],
    );
    assert_eq!(
        r.status,
        200,
        "manifest was deleted upstream: {}",
        r.describe()
    );
    let r = curl(
        &s.direct(&format!("/v2/library/hello/blobs/{}", layer.digest)),
        &[],
    );
    assert_eq!(r.status, 200, "blob was deleted upstream");
    assert_eq!(r.body, layer.bytes);
    let r = curl(&s.direct("/v2/library/hello/tags/list"), &[]);
    assert_eq!(r.json()["tags"], serde_json::json!(["1.0"]));
}

#[test]
fn invalid_names_references_and_digests_are_400_with_the_matching_oci_code() {
    let s = Setup::new();
    let long_tag = "t".repeat(200);
    let cases: Vec<(String, &str)> = vec![
        ("/v2/UPPER/manifests/1".into(), "NAME_INVALID"),
        ("/v2/a//b/manifests/1".into(), "NAME_INVALID"),
        ("/v2/-x/manifests/1".into(), "NAME_INVALID"),
        ("/v2/docker.io/Hello/manifests/1".into(), "NAME_INVALID"),
        ("/v2/UPPER/tags/list".into(), "NAME_INVALID"),
        (
            format!("/v2/UPPER/blobs/{}", s.img.config.digest),
            "NAME_INVALID",
        ),
        ("/v2/hello/manifests/bad:tag".into(), "MANIFEST_INVALID"),
        (
            format!("/v2/hello/manifests/{long_tag}"),
            "MANIFEST_INVALID",
        ),
        ("/v2/hello/manifests/.dot".into(), "MANIFEST_INVALID"),
        ("/v2/hello/manifests/sha256:abc".into(), "MANIFEST_INVALID"),
        ("/v2/hello/blobs/sha256:abc".into(), "DIGEST_INVALID"),
        ("/v2/hello/blobs/notadigest".into(), "DIGEST_INVALID"),
        (
            format!("/v2/hello/blobs/md5:{}", "0".repeat(32)),
            "DIGEST_INVALID",
        ),
        (
            format!("/v2/hello/blobs/sha256:{}", "A".repeat(64)),
            "DIGEST_INVALID",
        ),
        ("/v2/hello/referrers/sha256:xyz".into(), "DIGEST_INVALID"),
    ];
    for (path, code) in &cases {
        for head in [false, true] {
            if head {
                let r = raw_head(s.pg.addr, path, None);
                assert_eq!(r.status, 400, "HEAD {path}: {}", r.describe());
                assert!(r.body.is_empty(), "HEAD {path} has a body");
            } else {
                let r = curl(&s.pg(path), &[]);
                assert_eq!(r.status, 400, "GET {path}: {}", r.describe());
                assert_eq!(r.oci_error().0, *code, "GET {path}: {}", r.describe());
            }
        }
    }
    // Still serving after all of that.
    assert_eq!(curl(&s.pg("/v2/"), &[]).status, 200);
}

#[test]
fn unconfigured_registries_are_403_denied_without_any_connection_attempt() {
    let s = Setup::new();
    // An address pullgate was not configured with, that the test watches: a connection attempt
    // would land in this listener's backlog even though nothing accepts it.
    let watch = TcpListener::bind("127.0.0.1:0").unwrap();
    watch.set_nonblocking(true).unwrap();
    let watched = watch.local_addr().unwrap().to_string();

    let paths = [
        "/v2/quay.io/org/app/manifests/1".to_owned(),
        "/v2/quay.io/org/app/blobs/sha256:".to_owned() + &"0".repeat(64),
        "/v2/quay.io/org/app/tags/list".to_owned(),
        "/v2/org/app/manifests/1?ns=evil.example".to_owned(),
        "/v2/localhost/app/manifests/1".to_owned(),
        format!("/v2/{watched}/org/app/manifests/1"),
        format!("/v2/org/app/manifests/1?ns={watched}"),
        format!("/v2/org/app/blobs/{}?ns={watched}", s.img.config.digest),
    ];
    for path in &paths {
        let r = curl(&s.pg(path), &[]);
        assert_eq!(r.status, 403, "{path}: {}", r.describe());
        let (code, message) = r.oci_error();
        assert_eq!(code, "DENIED", "{path}");
        assert!(
            message.contains("registry not allowed"),
            "{path}: {message}"
        );
    }
    match watch.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("pullgate connected to the unconfigured {watched} from {peer}"),
        Err(e) => panic!("accept on the watched listener failed: {e}"),
    }
    let log = s.pg.log();
    assert!(log.contains("registry not allowed"), "{log}");
    assert!(
        !log.contains("unreachable"),
        "pullgate tried to reach an upstream:\n{log}"
    );
}

#[test]
fn ns_parameter_selects_the_named_registry_like_containerd() {
    let tmp = tempfile::tempdir().unwrap();
    // Two registries with different images under the same repository and tag, so the answer
    // shows which one pullgate asked.
    let mirror = Registry::start(&tmp.path().join("mirror"), RegistryOptions::default());
    let named = Registry::start(&tmp.path().join("named"), RegistryOptions::default());
    let mirror_img = TestImage::oci("from the default registry", "amd64", 0);
    let named_img = TestImage::oci("from the registry named by ns", "amd64", 0);
    push_image(tmp.path(), &mirror, &mirror_img, "library/hello", &["1.0"]);
    push_image(tmp.path(), &named, &named_img, "library/hello", &["1.0"]);

    let regs = registry_toml("docker.io", &mirror.url, true, "")
        + &registry_toml(&named.host(), &named.url, false, "");
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(&dir, &pullgate_toml(&dir, &regs));
    let accept = format!("Accept: {OCI_MANIFEST}");
    let get = |path: &str| curl(&format!("http://{}{path}", pg.host()), &["-H", &accept]);

    let r = get(&format!(
        "/v2/library/hello/manifests/1.0?ns={}",
        named.host()
    ));
    assert_eq!(r.status, 200, "{}\n{}", r.describe(), pg.log());
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(named_img.manifest_digest.as_str())
    );
    assert_eq!(r.body, named_img.manifest);

    // containerd also names Docker Hub by ns; and without ns the default registry answers.
    for path in [
        "/v2/library/hello/manifests/1.0?ns=docker.io",
        "/v2/library/hello/manifests/1.0",
    ] {
        let r = get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
        assert_eq!(r.body, mirror_img.manifest, "{path}");
    }

    // Blobs follow ns too: the named registry's layer is not in the default one.
    let layer = &named_img.layers[0];
    let r = get(&format!(
        "/v2/library/hello/blobs/{}?ns={}",
        layer.digest,
        named.host()
    ));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, layer.bytes);
    let r = get(&format!("/v2/library/hello/blobs/{}", layer.digest));
    assert_eq!(r.status, 404, "{}", r.describe());
}

// === Manifests ===

#[test]
fn manifest_head_by_tag_and_digest_returns_digest_type_and_length_without_a_body() {
    let s = Setup::new();
    let paths = [
        "/v2/hello/manifests/1.0".to_owned(),
        format!("/v2/hello/manifests/{}", s.img.manifest_digest),
    ];
    for path in &paths {
        let r = raw_head(s.pg.addr, path, Some(OCI_MANIFEST));
        assert_eq!(
            r.status,
            200,
            "HEAD {path}: {}\n{}",
            r.describe(),
            s.pg.log()
        );
        assert!(r.body.is_empty(), "HEAD {path} sent a body: {:?}", r.body);
        assert_eq!(
            r.header("Docker-Content-Digest"),
            Some(s.img.manifest_digest.as_str()),
            "{path}"
        );
        assert_eq!(r.header("Content-Type"), Some(OCI_MANIFEST), "{path}");
        assert_eq!(
            r.header("Content-Length"),
            Some(s.img.manifest.len().to_string().as_str()),
            "{path}"
        );
    }

    let r = curl(
        &s.pg(&paths[1]),
        &["-H", &format!("Accept: {OCI_MANIFEST}")],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, s.img.manifest, "GET by digest changed the bytes");
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(s.img.manifest_digest.as_str())
    );
    assert_eq!(r.header("Content-Type"), Some(OCI_MANIFEST));
    assert_eq!(
        r.header("Content-Length"),
        Some(s.img.manifest.len().to_string().as_str())
    );
}

#[test]
fn client_accept_header_is_forwarded_and_the_registry_answer_passed_through() {
    let s = Setup::new();
    let idx = TestIndex::multi("accept", &["amd64", "arm64"]);
    let mut layout = Layout::new(&s.tmp.path().join("index-layout"));
    layout.add_index(&idx, "1.0");
    skopeo_push(
        &layout,
        "1.0",
        &format!("{}/library/multi:1.0", s.reg.host()),
        &["--all"],
    );

    let image_only = format!("Accept: {OCI_MANIFEST}");
    let with_index = format!("Accept: {OCI_MANIFEST}, {OCI_INDEX}");
    let mut answers = Vec::new();
    for accept in [&image_only, &with_index] {
        let via = curl(&s.pg("/v2/multi/manifests/1.0"), &["-H", accept]);
        let direct = curl(
            &s.direct("/v2/library/multi/manifests/1.0"),
            &["-H", accept],
        );
        assert_eq!(
            via.status,
            direct.status,
            "{accept}: via pullgate {}\ndirect {}",
            via.describe(),
            direct.describe()
        );
        assert_eq!(via.body, direct.body, "{accept}");
        if direct.status == 200 {
            assert_eq!(
                via.header("Content-Type"),
                direct.header("Content-Type"),
                "{accept}"
            );
            assert_eq!(
                via.header("Docker-Content-Digest"),
                direct.header("Docker-Content-Digest"),
                "{accept}"
            );
        } else {
            assert_eq!(via.oci_error().0, direct.oci_error().0, "{accept}");
        }
        answers.push((direct.status, direct.body));
    }
    // The registry answers the two Accept headers differently (distribution 2.8: 404 for an
    // index when only image manifests are acceptable), so equal answers above show pullgate
    // sent each client's own Accept rather than a fixed one.
    assert_ne!(
        answers[0], answers[1],
        "the registry does not distinguish the Accept headers"
    );
    assert_eq!(answers[1], (200, idx.index.clone()));
}

#[test]
fn unknown_manifest_and_blob_are_404_with_the_registrys_error_codes() {
    let s = Setup::new();
    let accept = format!("Accept: {OCI_MANIFEST}");
    let missing = format!("sha256:{}", "0".repeat(64));
    let cases = [
        (
            "/v2/hello/manifests/no-such-tag".to_owned(),
            "MANIFEST_UNKNOWN",
        ),
        (format!("/v2/hello/manifests/{missing}"), "MANIFEST_UNKNOWN"),
        (format!("/v2/hello/blobs/{missing}"), "BLOB_UNKNOWN"),
    ];
    for (path, code) in &cases {
        let r = curl(&s.pg(path), &["-H", &accept]);
        assert_eq!(r.status, 404, "{path}: {}", r.describe());
        assert_eq!(r.oci_error().0, *code, "{path}: {}", r.describe());
        let head = raw_head(s.pg.addr, path, Some(OCI_MANIFEST));
        assert_eq!(head.status, 404, "HEAD {path}: {}", head.describe());
        assert!(head.body.is_empty());
    }
}

// === Blobs ===

#[test]
fn blob_range_is_206_with_exactly_those_bytes_and_blob_head_has_length_without_body() {
    let s = Setup::new();
    let layer = &s.img.layers[0];
    let path = format!("/v2/hello/blobs/{}", layer.digest);

    let r = curl(&s.pg(&path), &["-H", "Range: bytes=10-19"]);
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body, layer.bytes[10..20].to_vec());
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 10-19/{}", layer.bytes.len()).as_str())
    );
    assert_eq!(r.header("Content-Length"), Some("10"));

    let r = raw_head(s.pg.addr, &path, None);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.body.is_empty(), "HEAD sent a body");
    assert_eq!(
        r.header("Content-Length"),
        Some(layer.bytes.len().to_string().as_str())
    );
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(layer.digest.as_str())
    );

    let r = curl(&s.pg(&path), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, layer.bytes);
}

// === Listings ===

#[test]
fn tags_list_through_pullgate_matches_the_registry() {
    let s = Setup::new();
    push_image(
        s.tmp.path(),
        &s.reg,
        &s.img,
        "library/hello",
        &["1.1", "2.0"],
    );
    let via = curl(&s.pg("/v2/hello/tags/list"), &[]);
    let direct = curl(&s.direct("/v2/library/hello/tags/list"), &[]);
    assert_eq!(via.status, 200, "{}", via.describe());
    assert_eq!(via.json(), direct.json());
    let mut tags: Vec<String> = serde_json::from_value(via.json()["tags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, ["1.0", "1.1", "2.0"]);
}

/// A hand-written upstream that paginates `tags/list` the way the distribution spec describes
/// (`n`, `last`, a `Link: <...>; rel="next"` header). It exists because the only registry
/// available to the tests, docker-registry 2.8, ignores `n` and never sends a `Link`
/// (pagination arrived in distribution 3); nothing else here is faked.
struct PagingUpstream {
    addr: SocketAddr,
    /// The request targets (path and query) it received.
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl PagingUpstream {
    fn start(repo: &'static str, tags: &'static [&'static str]) -> PagingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let Some(target) = read_request_target(&mut conn) else {
                    continue;
                };
                seen2.lock().unwrap().push(target.clone());
                let (status, extra, body) = paginate(repo, tags, &target);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        PagingUpstream { addr, seen, stop }
    }
}

impl Drop for PagingUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads a request head and returns its target, e.g. `/v2/x/tags/list?n=1`.
fn read_request_target(conn: &mut TcpStream) -> Option<String> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    head.split_whitespace().nth(1).map(str::to_owned)
}

/// Answers one request: `/v2/` and a paginated tag list for `repo`; anything else is unknown.
fn paginate(repo: &str, tags: &[&str], target: &str) -> (&'static str, String, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/v2/" {
        return ("200 OK", String::new(), "{}".into());
    }
    if path != format!("/v2/{repo}/tags/list") {
        return (
            "404 Not Found",
            String::new(),
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}"#.into(),
        );
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut sorted = tags.to_vec();
    sorted.sort();
    let after: Vec<&str> = match param("last") {
        Some(last) => sorted.into_iter().filter(|t| *t > last.as_str()).collect(),
        None => sorted,
    };
    let n = param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(after.len());
    let page = &after[..n.min(after.len())];
    let link = match page.last() {
        Some(last) if page.len() < after.len() => {
            format!("Link: </v2/{repo}/tags/list?last={last}&n={n}>; rel=\"next\"\r\n")
        }
        _ => String::new(),
    };
    let body = serde_json::json!({ "name": repo, "tags": page }).to_string();
    ("200 OK", link, body)
}

/// The target inside `Link: <target>; rel="next"`.
fn next_link(r: &Reply) -> Option<String> {
    let link = r.header("Link")?;
    assert!(link.contains(r#"rel="next""#), "{link}");
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    Some(link[start..end].to_owned())
}

#[test]
fn tags_list_pagination_links_point_back_at_pullgate_under_the_clients_name() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = PagingUpstream::start("library/hello", &["1.0", "1.1", "2.0"]);
    let regs = registry_toml("docker.io", &format!("http://{}", upstream.addr), true, "");
    let dir = tmp.path().join("pg");
    let pg = Pullgate::start(&dir, &pullgate_toml(&dir, &regs));

    // The client's name for the repository, and the prefix every Link must keep.
    let starts = [
        ("/v2/hello/tags/list?n=1", "/v2/hello/tags/list?"),
        (
            "/v2/library/hello/tags/list?n=1",
            "/v2/library/hello/tags/list?",
        ),
        (
            "/v2/docker.io/library/hello/tags/list?n=1",
            "/v2/docker.io/library/hello/tags/list?",
        ),
        (
            "/v2/library/hello/tags/list?n=1&ns=docker.io",
            "/v2/library/hello/tags/list?",
        ),
    ];
    for (first, prefix) in starts {
        let mut collected = Vec::new();
        let mut next = Some(first.to_owned());
        let mut pages = 0;
        while let Some(path) = next {
            pages += 1;
            assert!(pages <= 10, "pagination does not end");
            let r = curl(&format!("http://{}{path}", pg.host()), &[]);
            assert_eq!(r.status, 200, "{path}: {}\n{}", r.describe(), pg.log());
            let tags: Vec<String> = serde_json::from_value(r.json()["tags"].clone()).unwrap();
            assert_eq!(
                tags.len(),
                1,
                "{path}: page size n=1 not honoured: {tags:?}"
            );
            collected.extend(tags);
            next = next_link(&r);
            if let Some(link) = &next {
                assert!(
                    link.starts_with(prefix),
                    "Link {link:?} does not start with {prefix:?}"
                );
                if first.contains("ns=") {
                    assert!(link.contains("ns=docker.io"), "Link {link:?} lost ns");
                }
            }
        }
        assert_eq!(collected, ["1.0", "1.1", "2.0"], "starting at {first}");
    }
    // Upstream always saw its own name, and only the pagination parameters.
    for target in upstream.seen.lock().unwrap().iter() {
        assert!(
            target.starts_with("/v2/library/hello/tags/list"),
            "{target}"
        );
        assert!(!target.contains("ns="), "ns leaked upstream: {target}");
    }
}

#[test]
fn referrers_status_is_passed_through_from_the_registry() {
    let s = Setup::new();
    let d = &s.img.manifest_digest;
    for query in [
        "",
        "?artifactType=application%2Fvnd.dev.cosign.artifact.sig.v1%2Bjson",
    ] {
        let via = curl(&s.pg(&format!("/v2/hello/referrers/{d}{query}")), &[]);
        let direct = curl(
            &s.direct(&format!("/v2/library/hello/referrers/{d}{query}")),
            &[],
        );
        assert_eq!(
            via.status,
            direct.status,
            "{query}: via {}\ndirect {}",
            via.describe(),
            direct.describe()
        );
        assert!(via.status < 500, "{}", via.describe());
        if via.status != 200 {
            // Still a registry error document the client can print.
            via.oci_error();
        }
    }
}

// === Shutdown ===

/// The scheduler state letter from `/proc/PID/stat` (`Z` once the process has exited and awaits
/// its parent).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The most a loopback TCP connection can hold in flight: the largest receive buffer plus the
/// largest send buffer the kernel's autotuning may grow to.
fn max_socket_buffers() -> u64 {
    let max = |name: &str| -> u64 {
        let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).unwrap();
        text.split_whitespace()
            .nth(2)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {text}"))
    };
    max("tcp_rmem") + max("tcp_wmem")
}

#[test]
fn sigterm_finishes_an_in_flight_download_refuses_new_connections_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    // Far bigger than the socket buffers between pullgate and the client, so most of it is still
    // inside pullgate when the signal arrives.
    let img = TestImage::oci("slow download", "amd64", 64 << 20);
    push_image(tmp.path(), &reg, &img, "library/big", &["1.0"]);
    let layer = &img.layers[0];

    let grace = Duration::from_secs(30);
    let dir = tmp.path().join("pg");
    let regs = registry_toml("docker.io", &reg.url, true, "");
    let cfg =
        pullgate_toml(&dir, &regs).replace("shutdown_grace = \"5s\"", "shutdown_grace = \"30s\"");
    assert!(cfg.contains("shutdown_grace = \"30s\""), "{cfg}");
    let mut pg = Pullgate::start(&dir, &cfg);

    let out = tmp.path().join("layer.bin");
    let mut download = guarded("curl")
        .args(["-sS", "--fail", "--limit-rate", "8M", "-o"])
        .arg(&out)
        .arg(format!(
            "http://{}/v2/big/blobs/{}",
            pg.host(),
            layer.digest
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run curl");

    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < 4 << 20 {
        assert!(
            download.try_wait().unwrap().is_none(),
            "download ended early:\n{}",
            pg.log()
        );
        assert!(
            Instant::now() < deadline,
            "download made no progress:\n{}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let signalled = Instant::now();
    run_ok(Command::new("kill").args(["-TERM", &pg.pid().to_string()]));

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(pg.addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // A listener that closes while this SYN waits in its queue answers with a reset:
            // also "not accepting". (Seen once under load as a failure of this test.)
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("unexpected connect error ({:?}): {e}", e.kind()),
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "still accepting connections after SIGTERM:\n{}",
                    pg.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // More of the blob is still to come than the kernel can buffer between pullgate and curl,
    // so pullgate itself is still streaming it: this is a drain, not a finished write.
    let received = std::fs::metadata(&out).unwrap().len();
    let remaining = layer.bytes.len() as u64 - received;
    assert!(
        download.try_wait().unwrap().is_none() && remaining > max_socket_buffers(),
        "only {remaining} bytes were left when the listener closed; draining was not exercised"
    );

    let status = download.wait().unwrap();
    let mut err = String::new();
    download
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "in-flight download failed after SIGTERM: {err}\n{}",
        pg.log()
    );
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), layer.bytes.len(), "download is truncated");
    assert_eq!(
        digest_of(&got),
        layer.digest,
        "download has the wrong bytes"
    );

    let exit_deadline = signalled + grace + Duration::from_secs(15);
    while proc_state(pg.pid()) != Some('Z') {
        assert!(
            Instant::now() < exit_deadline,
            "pullgate still running after grace + 15 s:\n{}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let exit = pg.stop();
    assert_eq!(
        exit.code(),
        Some(0),
        "pullgate exit status {exit}:\n{}",
        pg.log()
    );
    let log = pg.log();
    assert!(log.contains("all connections closed"), "{log}");
    assert!(!log.contains("grace period over"), "{log}");
}
