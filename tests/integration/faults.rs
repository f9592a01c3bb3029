//! Failure paths against a deliberately broken fake upstream: blobs that hash wrong or end early,
//! manifests that lie about their digest or are too large, resets, silence, slow and stalled
//! bodies, rate limits and server errors, and a redirect to a CDN host.
//!
//! Real registries do not misbehave on demand, so every test here talks to [`Fake`], a tiny
//! hand-written HTTP/1.1 server whose only job is to break the rules. Clients are plain
//! `std::net` HTTP/1.1 requests, so the tests see exactly where a transfer stopped. The happy
//! paths against real registries live in `pull.rs` and `clients.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use crate::support::*;

/// How long the test client waits for any single read before giving up. Only a safety net
/// against a hung pullgate: every test expects pullgate to answer or hang up well before this.
const CLIENT_SAFETY_NET: Duration = Duration::from_secs(30);

/// The fake's own safety net, so a connection pullgate never closes cannot keep a thread alive.
const FAKE_SAFETY_NET: Duration = Duration::from_secs(30);

/// 4 MiB, pullgate's manifest size cap (design.md §3).
const MANIFEST_CAP: usize = 4 * 1024 * 1024;

// === Fake upstream ===

/// One request as the fake received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A deliberately broken registry: behaviour no real registry produces (wrong digests, short
/// bodies, resets, silence, stalls, oversized manifests), plus rate limits, server errors and
/// CDN redirects on demand, which a test docker-registry cannot be made to send. Loopback only.
///
/// It serves one request per connection and always answers `Connection: close`, so every
/// request pullgate sends arrives on a fresh connection and the behaviour chosen for it cannot
/// leak into the next. Every request it reads is recorded in `seen`.
struct Fake {
    addr: SocketAddr,
    seen: Log,
    stop: Arc<AtomicBool>,
}

impl Fake {
    /// Hands every accepted connection to `on_conn` before anything is read from it.
    fn raw(on_conn: impl Fn(TcpStream, &Log) + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake upstream");
        let addr = listener.local_addr().unwrap();
        let seen: Log = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let on_conn = Arc::new(on_conn);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(FAKE_SAFETY_NET));
                let _ = conn.set_write_timeout(Some(FAKE_SAFETY_NET));
                let (on_conn, seen) = (on_conn.clone(), seen2.clone());
                std::thread::spawn(move || on_conn(conn, &seen));
            }
        });
        Fake { addr, seen, stop }
    }

    /// Reads one request per connection, records it, and lets `respond` answer. Write errors
    /// are ignored: pullgate hanging up on a broken upstream is the expected outcome.
    fn start(
        respond: impl Fn(&Seen, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Fake {
        Fake::raw(move |mut conn, seen| {
            if let Some(req) = read_request(&mut conn) {
                seen.lock().unwrap().push(req.clone());
                let _ = respond(&req, &mut conn);
            }
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads a request head (a GET or HEAD has no body). `None` if the peer hung up first.
fn read_request(conn: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so nothing after the head is consumed; requests are tiny.
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Seen {
        method,
        path,
        headers,
    })
}

/// A response head; `Connection: close` is always added (see [`Fake`]).
fn head(status: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("Connection: close\r\n\r\n");
    h.into_bytes()
}

/// A complete response with a `Content-Length` body.
fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let len = body.len().to_string();
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("Content-Length", &len));
    conn.write_all(&head(status, &all))?;
    conn.write_all(body)?;
    conn.flush()
}

/// One chunk of a `Transfer-Encoding: chunked` body.
fn write_chunk(conn: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    conn.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    conn.write_all(data)?;
    conn.write_all(b"\r\n")?;
    conn.flush()
}

/// Blocks until pullgate closes the connection (or the fake's safety net runs out): how the
/// fake "never answers" and "stalls" without sleeping.
fn wait_for_hangup(conn: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

// === Test client ===

/// What a plain HTTP/1.1 client got from pullgate, including how far a failed body came.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body bytes received (for chunked bodies: the decoded data).
    body: Vec<u8>,
    /// Whether the body was properly delimited: all `Content-Length` bytes arrived, or the
    /// chunked body's terminating zero-length chunk did.
    complete: bool,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .map(|v| v.parse().expect("numeric Content-Length"))
    }

    /// Checks that this is an OCI error response and returns its first message.
    fn oci_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert!(self.complete, "error body was cut off");
        let doc: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "error body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        });
        assert_eq!(doc["errors"][0]["code"], code, "{doc}");
        let message = doc["errors"][0]["message"]
            .as_str()
            .expect("error message")
            .to_owned();
        assert!(message.starts_with("pullgate: "), "{message}");
        message
    }
}

/// Sends `GET path` to pullgate and reads until pullgate closes the connection.
fn get(pg: &Pullgate, path: &str) -> Reply {
    let mut conn = TcpStream::connect(pg.addr).expect("connect to pullgate");
    conn.set_read_timeout(Some(CLIENT_SAFETY_NET)).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        pg.addr
    );
    conn.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "pullgate neither finished nor aborted {path} within {CLIENT_SAFETY_NET:?}\n{}",
                    pg.log()
                )
            }
            // A reset ends the transfer just like a close; what arrived so far is what counts.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading from pullgate: {e}"),
        }
    }
    parse_reply(&raw).unwrap_or_else(|| {
        panic!(
            "no HTTP response head for {path}: {:?}\n{}",
            String::from_utf8_lossy(&raw),
            pg.log()
        )
    })
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
        complete: false,
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        (reply.body, reply.complete) = decode_chunked(rest);
    } else if let Some(len) = reply.content_length() {
        reply.body = rest.to_vec();
        reply.complete = rest.len() == len;
    } else {
        // Delimited by the close itself (only bodiless answers from pullgate end up here).
        reply.body = rest.to_vec();
        reply.complete = true;
    }
    Some(reply)
}

/// Decodes as much of a chunked body as arrived; `true` only if the terminating chunk did.
fn decode_chunked(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let line = String::from_utf8_lossy(&rest[..eol]);
        let size_field = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_field, 16) else {
            return (out, false);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            // The last chunk must be followed by (optional trailers and) an empty line.
            return (out, rest.starts_with(b"\r\n"));
        }
        if rest.len() < size + 2 {
            out.extend_from_slice(&rest[..rest.len().min(size)]);
            return (out, false);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// === Helpers ===

/// Waits until pullgate's log mentions `needle`. The client can see a connection close before
/// the log line written just ahead of it has travelled through the stderr pipe, so this polls.
fn wait_for_log(pg: &Pullgate, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !pg.log().contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "log never said {needle:?}:\n{}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts pullgate with the fake as its default registry `fake.test`; `extra` adds registry keys.
fn pullgate_for(dir: &Path, fake: &Fake, extra: &str) -> Pullgate {
    let regs = registry_toml("fake.test", &fake.url(), true, extra);
    Pullgate::start(dir, &pullgate_toml(dir, &regs))
}

/// Sends `body` as a chunked response in chunks of `piece` bytes.
fn send_chunked(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    piece: usize,
) -> std::io::Result<()> {
    let mut all = headers.to_vec();
    all.push(("Transfer-Encoding", "chunked"));
    conn.write_all(&head(status, &all))?;
    for c in body.chunks(piece) {
        write_chunk(conn, c)?;
    }
    conn.write_all(b"0\r\n\r\n")?;
    conn.flush()
}

const OCTETS: (&str, &str) = ("Content-Type", "application/octet-stream");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A small but well-formed manifest that the fake serves as the "good" answer.
fn good_manifest() -> Vec<u8> {
    TestImage::oci("faults", "amd64", 0).manifest
}

// === Tests: blobs that must not arrive ===

#[test]
fn blob_with_wrong_digest_is_cut_off_before_its_declared_length() {
    let tmp = tempfile::tempdir().unwrap();
    let served = pseudo_random(256 * 1024, 1);
    let wanted = digest_of(b"the blob the client asked for");
    let body = served.clone();
    let fake = Fake::start(move |_, conn| respond(conn, "200 OK", &[OCTETS], &body));
    let pg = pullgate_for(tmp.path(), &fake, "");

    let r = get(&pg, &format!("/v2/app/blobs/{wanted}"));
    assert_eq!(
        r.status, 200,
        "the headers go out before the body is checked"
    );
    assert_eq!(r.content_length(), Some(served.len()));
    assert!(
        !r.complete,
        "client received a complete body for a blob with the wrong digest"
    );
    assert!(
        r.body.len() < served.len(),
        "got {} of {} bytes",
        r.body.len(),
        served.len()
    );
    assert_eq!(
        r.body[..],
        served[..r.body.len()],
        "what did arrive must be the upstream's bytes, unaltered"
    );
    wait_for_log(&pg, "digest mismatch");
}

#[test]
fn chunked_blob_with_wrong_digest_never_gets_its_terminating_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let served = pseudo_random(256 * 1024, 2);
    let wanted = digest_of(b"the blob the client asked for");
    let body = served.clone();
    let fake =
        Fake::start(move |_, conn| send_chunked(conn, "200 OK", &[OCTETS], &body, 16 * 1024));
    let pg = pullgate_for(tmp.path(), &fake, "");

    let r = get(&pg, &format!("/v2/app/blobs/{wanted}"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "no length known, so pullgate must chunk"
    );
    assert!(
        !r.complete,
        "the chunked body was terminated although the digest is wrong"
    );
    assert!(
        r.body.len() < served.len(),
        "got {} of {} bytes",
        r.body.len(),
        served.len()
    );
    assert_eq!(r.body[..], served[..r.body.len()]);
}

#[test]
fn truncated_blob_fails_the_client_transfer() {
    let tmp = tempfile::tempdir().unwrap();
    let full = pseudo_random(256 * 1024, 3);
    // The digest is right for the whole blob: only the missing tail is wrong.
    let digest = digest_of(&full);
    let body = full.clone();
    let fake = Fake::start(move |_, conn| {
        let len = body.len().to_string();
        conn.write_all(&head("200 OK", &[OCTETS, ("Content-Length", &len)]))?;
        conn.write_all(&body[..body.len() / 2])?;
        conn.flush()
        // Returning drops the socket: the upstream closes after half of what it declared.
    });
    let pg = pullgate_for(tmp.path(), &fake, "");

    let r = get(&pg, &format!("/v2/app/blobs/{digest}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), Some(full.len()));
    assert!(
        !r.complete,
        "client received a complete body from a truncated upstream"
    );
    assert!(
        r.body.len() <= full.len() / 2,
        "got {} bytes, the upstream only sent {}",
        r.body.len(),
        full.len() / 2
    );
    assert_eq!(r.body[..], full[..r.body.len()]);
    wait_for_log(&pg, "upstream body failed");
}

// === Tests: manifests that must be refused ===

#[test]
fn manifest_with_lying_docker_content_digest_is_refused_as_manifest_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = good_manifest();
    let actual = digest_of(&manifest);
    let lie = digest_of(b"some other manifest");
    let (body, claimed) = (manifest.clone(), lie.clone());
    let fake = Fake::start(move |_, conn| {
        respond(
            conn,
            "200 OK",
            &[
                ("Content-Type", OCI_MANIFEST),
                ("Docker-Content-Digest", &claimed),
            ],
            &body,
        )
    });
    let pg = pullgate_for(tmp.path(), &fake, "");

    let r = get(&pg, "/v2/app/manifests/1.0");
    let msg = r.oci_error(502, "MANIFEST_INVALID");
    assert!(msg.contains("Docker-Content-Digest"), "{msg}");
    assert!(
        msg.contains(&lie) && msg.contains(&actual),
        "message must name both digests: {msg}"
    );
    assert!(
        msg.contains("fake.test"),
        "message must name the upstream: {msg}"
    );
    assert_eq!(fake.seen()[0].path, "/v2/app/manifests/1.0");
}

#[test]
fn manifest_by_digest_whose_bytes_hash_differently_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = good_manifest();
    let actual = digest_of(&manifest);
    let requested = digest_of(b"the manifest the client pinned");
    // The fake even echoes the requested digest in its header, as a cache that swapped content
    // would: only hashing the bytes can catch it.
    let body = manifest.clone();
    let fake = Fake::start(move |req, conn| {
        let echoed = req.path.rsplit('/').next().unwrap_or("").to_owned();
        respond(
            conn,
            "200 OK",
            &[
                ("Content-Type", OCI_MANIFEST),
                ("Docker-Content-Digest", &echoed),
            ],
            &body,
        )
    });
    let pg = pullgate_for(tmp.path(), &fake, "");

    let r = get(&pg, &format!("/v2/app/manifests/{requested}"));
    let msg = r.oci_error(502, "MANIFEST_INVALID");
    assert!(
        msg.contains(&requested) && msg.contains(&actual),
        "message must name both digests: {msg}"
    );
    assert!(
        !r.body.windows(manifest.len()).any(|w| w == manifest),
        "the manifest bytes leaked into the error"
    );
}

#[test]
fn oversized_manifest_is_refused_and_pullgate_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let huge = pseudo_random(MANIFEST_CAP + 512 * 1024, 4);
    let good = good_manifest();
    let good_body = good.clone();
    let fake = Fake::start(move |req, conn| match req.path.as_str() {
        "/v2/app/manifests/sized" => {
            respond(conn, "200 OK", &[("Content-Type", OCI_MANIFEST)], &huge)
        }
        "/v2/app/manifests/chunked" => send_chunked(
            conn,
            "200 OK",
            &[("Content-Type", OCI_MANIFEST)],
            &huge,
            64 * 1024,
        ),
        _ => respond(
            conn,
            "200 OK",
            &[("Content-Type", OCI_MANIFEST)],
            &good_body,
        ),
    });
    let pg = pullgate_for(tmp.path(), &fake, "");

    for tag in ["sized", "chunked"] {
        let r = get(&pg, &format!("/v2/app/manifests/{tag}"));
        let msg = r.oci_error(502, "MANIFEST_INVALID");
        assert!(msg.contains("limit"), "{tag}: {msg}");
    }

    let r = get(&pg, "/v2/app/manifests/good");
    assert_eq!(r.status, 200, "{}", pg.log());
    assert!(r.complete);
    assert_eq!(r.body, good);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest_of(&good).as_str())
    );
}

// === Tests: upstreams that fail at the transport level ===

#[test]
fn upstream_connection_reset_is_502_unreachable_and_pullgate_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let good = good_manifest();
    let good_body = good.clone();
    let connections = AtomicUsize::new(0);
    let fake = Fake::raw(move |mut conn, seen| {
        if connections.fetch_add(1, Ordering::SeqCst) == 0 {
            // Closing a socket with unread data makes the kernel send RST instead of FIN, so
            // wait for the request to arrive and drop it unread.
            let _ = conn.peek(&mut [0u8; 1]);
            drop(conn);
            return;
        }
        if let Some(req) = read_request(&mut conn) {
            seen.lock().unwrap().push(req);
            let _ = respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", OCI_MANIFEST)],
                &good_body,
            );
        }
    });
    let pg = pullgate_for(tmp.path(), &fake, "");

    let r = get(&pg, "/v2/app/manifests/1.0");
    let msg = r.oci_error(502, "UNAVAILABLE");
    assert!(msg.contains("fake.test unreachable"), "{msg}");

    let r = get(&pg, "/v2/app/manifests/1.0");
    assert_eq!(r.status, 200, "{}", pg.log());
    assert_eq!(r.body, good);
}

#[test]
fn upstream_that_never_answers_gets_504_after_response_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::start(|_, conn| {
        wait_for_hangup(conn);
        Ok(())
    });
    let pg = pullgate_for(tmp.path(), &fake, "response_timeout = \"1s\"");

    for path in [
        "/v2/app/manifests/1.0",
        format!("/v2/app/blobs/{}", digest_of(b"x")).as_str(),
    ] {
        let r = get(&pg, path);
        let msg = r.oci_error(504, "UNAVAILABLE");
        assert!(msg.contains("did not answer within 1s"), "{path}: {msg}");
    }
}

// === Tests: slow bodies ===

#[test]
fn slow_but_moving_blob_is_not_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let full = pseudo_random(40 * 1024, 5);
    let digest = digest_of(&full);
    let body = full.clone();
    // Ten pieces 300 ms apart: 3 s in total, more than both timeouts, but every gap is far
    // below the idle timeout, so the transfer is alive all the time.
    let fake = Fake::start(move |_, conn| {
        let len = body.len().to_string();
        conn.write_all(&head("200 OK", &[OCTETS, ("Content-Length", &len)]))?;
        conn.flush()?;
        for piece in body.chunks(body.len() / 10) {
            std::thread::sleep(Duration::from_millis(300));
            conn.write_all(piece)?;
            conn.flush()?;
        }
        Ok(())
    });
    let pg = pullgate_for(
        tmp.path(),
        &fake,
        "response_timeout = \"1s\"\nidle_timeout = \"2s\"",
    );

    let r = get(&pg, &format!("/v2/app/blobs/{digest}"));
    assert_eq!(r.status, 200);
    assert!(
        r.complete,
        "slow blob was cut off after {} of {} bytes\n{}",
        r.body.len(),
        full.len(),
        pg.log()
    );
    assert_eq!(r.body, full);
}

#[test]
fn stalled_blob_is_aborted_after_idle_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let full = pseudo_random(256 * 1024, 6);
    let digest = digest_of(&full);
    let body = full.clone();
    let fake = Fake::start(move |_, conn| {
        let len = body.len().to_string();
        conn.write_all(&head("200 OK", &[OCTETS, ("Content-Length", &len)]))?;
        for piece in body[..body.len() / 2].chunks(16 * 1024) {
            conn.write_all(piece)?;
        }
        conn.flush()?;
        // Then nothing, with the connection left open: only pullgate's idle timeout ends this.
        wait_for_hangup(conn);
        Ok(())
    });
    let pg = pullgate_for(tmp.path(), &fake, "idle_timeout = \"1s\"");

    let r = get(&pg, &format!("/v2/app/blobs/{digest}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), Some(full.len()));
    assert!(!r.complete, "a stalled transfer was reported complete");
    assert!(r.body.len() <= full.len() / 2);
    assert_eq!(r.body[..], full[..r.body.len()]);
    wait_for_log(&pg, "upstream body stalled");
}

// === Tests: upstream error statuses ===

#[test]
fn upstream_429_is_passed_on_with_retry_after_and_toomanyrequests() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::start(|_, conn| {
        respond(
            conn,
            "429 Too Many Requests",
            &[("Content-Type", "text/plain"), ("Retry-After", "17")],
            b"slow down",
        )
    });
    let pg = pullgate_for(tmp.path(), &fake, "");

    for path in [
        "/v2/app/manifests/1.0",
        format!("/v2/app/blobs/{}", digest_of(b"x")).as_str(),
    ] {
        let r = get(&pg, path);
        let msg = r.oci_error(429, "TOOMANYREQUESTS");
        assert_eq!(r.header("retry-after"), Some("17"), "{path}");
        assert!(msg.contains("fake.test"), "{msg}");
    }
}

#[test]
fn upstream_500_becomes_502() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::start(|_, conn| {
        respond(
            conn,
            "500 Internal Server Error",
            &[("Content-Type", "text/html")],
            b"<h1>oops</h1>",
        )
    });
    let pg = pullgate_for(tmp.path(), &fake, "");

    for path in [
        "/v2/app/manifests/1.0",
        format!("/v2/app/blobs/{}", digest_of(b"x")).as_str(),
    ] {
        let r = get(&pg, path);
        let msg = r.oci_error(502, "UNAVAILABLE");
        assert!(msg.contains("fake.test") && msg.contains("500"), "{msg}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("oops"),
            "upstream HTML passed through"
        );
    }
}

// === Tests: redirects ===

#[test]
fn blob_redirect_to_cdn_is_followed_without_sending_credentials_there() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = pseudo_random(128 * 1024, 7);
    let digest = digest_of(&blob);
    let cdn_body = blob.clone();
    let cdn = Fake::start(move |_, conn| respond(conn, "200 OK", &[OCTETS], &cdn_body));
    let cdn_url = format!(
        "{}/blobs/{}?signature=abc",
        cdn.url(),
        digest.trim_start_matches("sha256:")
    );

    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("puller:pull-secret")
    );
    let want = expected_auth.clone();
    let registry = Fake::start(move |req, conn| {
        if req.header("authorization") != Some(want.as_str()) {
            return respond(
                conn,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=\"fake\"")],
                b"",
            );
        }
        respond(
            conn,
            "307 Temporary Redirect",
            &[("Location", &cdn_url)],
            b"",
        )
    });

    std::fs::write(tmp.path().join("user"), "puller\n").unwrap();
    std::fs::write(tmp.path().join("pass"), "pull-secret\n").unwrap();
    let creds = format!(
        "username_file = \"{}\"\npassword_file = \"{}\"",
        tmp.path().join("user").display(),
        tmp.path().join("pass").display()
    );
    let pg = pullgate_for(&tmp.path().join("pg"), &registry, &creds);

    let r = get(&pg, &format!("/v2/app/blobs/{digest}"));
    assert_eq!(r.status, 200, "{}", pg.log());
    assert!(r.complete);
    assert_eq!(r.body, blob);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));

    let at_registry = registry.seen();
    assert!(
        at_registry
            .iter()
            .any(|s| s.header("authorization") == Some(expected_auth.as_str())),
        "pullgate never sent the configured credentials to the registry: {at_registry:?}"
    );
    let at_cdn = cdn.seen();
    assert_eq!(at_cdn.len(), 1, "{at_cdn:?}");
    assert_eq!(at_cdn[0].method, "GET");
    assert!(
        at_cdn[0].path.ends_with("?signature=abc"),
        "{:?}",
        at_cdn[0].path
    );
    assert_eq!(
        at_cdn[0].header("authorization"),
        None,
        "credentials leaked to the CDN host"
    );
    assert!(
        !pg.log().contains("pull-secret"),
        "secret leaked into the log"
    );
}
