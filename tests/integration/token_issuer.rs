//! A test token issuer for the distribution token flow, for servers that use distribution's
//! token access controller: a real `docker-registry` with `auth: token` (module `token_auth`)
//! and a real notary-server with `"auth": {"type": "token"}` (module `notary_token`).
//!
//! A token issuer is a separate service that neither distribution nor notary ships, so it is
//! written here. It answers `GET /token?service=…&scope=…` with `{"token": JWT, "expires_in": N}`
//! as the distribution token spec (`docs/spec/auth/token.md`, `jwt.md`) describes: an ES256 JWS
//! whose header carries the signing certificate in `x5c`, chained to the CA in the server's
//! `rootcertbundle`, with the claims `iss`, `sub`, `aud` (= the requested service), `exp`,
//! `nbf`, `iat`, `jti` and `access`. It records every request so tests can assert what was
//! asked for and with which credentials.
//!
//! It serves plain HTTP ([`TokenIssuer::start`]) or HTTPS with a [`TestCa`] leaf
//! ([`TokenIssuer::start_tls`]): pullgate refuses a plain-HTTP realm named by an HTTPS server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::support::TestCa;

/// The audience of tokens requested without a `service` parameter.
pub(crate) const DEFAULT_SERVICE: &str = "test-registry";
/// The issuer name (`iss`) the servers are configured to trust.
pub(crate) const ISSUER: &str = "test-issuer";
/// The user that pushes; only this user gets `push` or `*` (and always `pull`).
pub(crate) const PUSHER: (&str, &str) = ("pusher", "secret");

/// What the issuer grants and how long its tokens live. Changeable while it runs.
#[derive(Clone)]
pub(crate) struct IssuerPolicy {
    /// `expires_in` of each answer, and the JWT's `exp` distance from `iat`.
    pub(crate) lifetime_secs: u64,
    /// `Some((user, password))`: pull tokens need these Basic credentials (or the pusher's),
    /// and an anonymous request for a pull scope is refused with 401. `None`: anyone may pull.
    pub(crate) pull_credentials: Option<(String, String)>,
}

impl Default for IssuerPolicy {
    fn default() -> Self {
        IssuerPolicy {
            lifetime_secs: 300,
            pull_credentials: None,
        }
    }
}

/// One request the issuer received.
#[derive(Clone)]
pub(crate) struct TokenRequest {
    pub(crate) scopes: Vec<String>,
    pub(crate) service: Option<String>,
    /// The user whose Basic credentials were accepted; `None` for an anonymous request.
    pub(crate) user: Option<String>,
    /// The raw `Authorization` header, if any. Kept out of `Debug` output.
    pub(crate) authorization: Option<String>,
    /// Whether a token was issued (false: answered 401).
    pub(crate) issued: bool,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("scopes", &self.scopes)
            .field("service", &self.service)
            .field("user", &self.user)
            .field("has_authorization", &self.authorization.is_some())
            .field("issued", &self.issued)
            .finish()
    }
}

/// State shared between the issuer handle and its server threads.
struct IssuerState {
    policy: Mutex<IssuerPolicy>,
    requests: Mutex<Vec<TokenRequest>>,
    /// Every JWT handed out, so tests can look for them in logs and on the wire.
    tokens: Mutex<Vec<String>>,
    key: EcdsaKeyPair,
    /// The signing certificate, base64 DER, for the JWS `x5c` header.
    x5c: String,
    next_jti: AtomicU64,
    stop: AtomicBool,
    /// `Some`: every connection is TLS with this configuration.
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A test token issuer on a loopback port (see the module doc).
pub(crate) struct TokenIssuer {
    pub(crate) port: u16,
    /// The CA certificate (PEM) the servers' `rootcertbundle` points at.
    pub(crate) root_bundle: PathBuf,
    state: Arc<IssuerState>,
}

impl TokenIssuer {
    /// An issuer on plain HTTP.
    pub(crate) fn start(dir: &Path, policy: IssuerPolicy) -> TokenIssuer {
        Self::spawn(dir, policy, None)
    }

    /// An issuer on HTTPS with `ca`'s leaf certificate (for 127.0.0.1).
    pub(crate) fn start_tls(dir: &Path, policy: IssuerPolicy, ca: &TestCa) -> TokenIssuer {
        Self::spawn(dir, policy, Some(Arc::new(tls_config(ca))))
    }

    fn spawn(
        dir: &Path,
        policy: IssuerPolicy,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> TokenIssuer {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "pullgate test token CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        // rcgen's default key is ECDSA P-256, which is what ES256 needs.
        let signer_key = KeyPair::generate().unwrap();
        let mut signer = CertificateParams::new(Vec::<String>::new()).unwrap();
        signer
            .distinguished_name
            .push(DnType::CommonName, "pullgate test token signer");
        signer.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let signer_cert = signer.signed_by(&signer_key, &ca_cert, &ca_key).unwrap();
        let root_bundle = dir.join("token-root.pem");
        std::fs::write(&root_bundle, ca_cert.pem()).unwrap();

        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &signer_key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(IssuerState {
            policy: Mutex::new(policy),
            requests: Mutex::new(Vec::new()),
            tokens: Mutex::new(Vec::new()),
            key,
            x5c: STANDARD.encode(signer_cert.der()),
            next_jti: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            tls,
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || st.accept(conn));
            }
        });
        TokenIssuer {
            port,
            root_bundle,
            state,
        }
    }

    /// The token endpoint: `http(s)://127.0.0.1:PORT/token`.
    pub(crate) fn realm(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/token", self.port)
    }

    pub(crate) fn set_policy(&self, policy: IssuerPolicy) {
        *self.state.policy.lock().unwrap() = policy;
    }

    pub(crate) fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests whose scopes are exactly `[scope]`.
    pub(crate) fn requests_for(&self, scope: &str) -> Vec<TokenRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.scopes == [scope])
            .collect()
    }

    pub(crate) fn tokens(&self) -> Vec<String> {
        self.state.tokens.lock().unwrap().clone()
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A rustls server configuration with `ca`'s leaf certificate and key.
fn tls_config(ca: &TestCa) -> rustls::ServerConfig {
    let pem = std::fs::read(&ca.cert).unwrap();
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .unwrap();
    let key_pem = std::fs::read(&ca.key).unwrap();
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .unwrap()
        .expect("no private key in the test CA's key file");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap()
}

impl IssuerState {
    /// Serves one connection, over TLS if configured.
    fn accept(&self, tcp: TcpStream) {
        match &self.tls {
            None => {
                let mut conn = tcp;
                self.serve(&mut conn);
                let _ = conn.shutdown(Shutdown::Both);
            }
            Some(cfg) => {
                let Ok(session) = rustls::ServerConnection::new(cfg.clone()) else {
                    return;
                };
                let mut conn = rustls::StreamOwned::new(session, tcp);
                self.serve(&mut conn);
                conn.conn.send_close_notify();
                let _ = conn.flush();
                let _ = conn.sock.shutdown(Shutdown::Both);
            }
        }
    }

    /// Answers one request on `conn` (the response says `Connection: close`).
    fn serve(&self, conn: &mut (impl Read + Write)) {
        let Some(head) = read_head(conn) else {
            return;
        };
        let (status, extra, body) = self.answer(&head);
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(resp.as_bytes());
        let _ = conn.flush();
    }

    fn answer(&self, head: &str) -> (&'static str, String, String) {
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if method != "GET" || path != "/token" {
            return ("404 Not Found", String::new(), "{}".into());
        }
        let authorization = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.trim().to_owned());
        let mut scopes = Vec::new();
        let mut service = None;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                // A request may carry several scopes, each of which may itself be a
                // space-separated list (distribution token spec).
                "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(String::from)),
                "service" => service = Some(v.into_owned()),
                _ => {}
            }
        }
        let policy = self.policy.lock().unwrap().clone();
        let mut record = TokenRequest {
            scopes: scopes.clone(),
            service: service.clone(),
            user: None,
            authorization: authorization.clone(),
            issued: false,
        };
        let refuse = |record: TokenRequest| {
            self.requests.lock().unwrap().push(record);
            (
                "401 Unauthorized",
                format!("WWW-Authenticate: Basic realm=\"{ISSUER}\"\r\n"),
                r#"{"details":"authentication required"}"#.to_owned(),
            )
        };

        // Credentials, when sent, must be right; no credentials means anonymous.
        let user = match authorization.as_deref() {
            None => None,
            Some(value) => {
                let known = |(u, p): &(String, String)| {
                    (u.as_str(), p.as_str()) == PUSHER
                        || policy.pull_credentials.as_ref() == Some(&(u.clone(), p.clone()))
                };
                match basic_credentials(value) {
                    Some(c) if known(&c) => Some(c.0),
                    _ => return refuse(record),
                }
            }
        };
        record.user = user.clone();

        let mut access = Vec::new();
        for scope in &scopes {
            // `repository:NAME:ACTIONS`, where a notary GUN as NAME may itself hold a colon
            // (`127.0.0.1:5000/x`): the type ends at the first colon, the actions start after
            // the last.
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let may_pull = match &policy.pull_credentials {
                None => true,
                Some((u, _)) => user.as_deref() == Some(u) || user.as_deref() == Some(PUSHER.0),
            };
            // The pusher gets whatever it asks: `push,pull`, and `*` for what the notary CLI
            // does to server-managed keys (`notary key rotate … -r`).
            let pusher = user.as_deref() == Some(PUSHER.0);
            let asked_pull = actions.split(',').any(|a| a == "pull");
            if asked_pull && !may_pull {
                // This issuer says "log in" rather than handing out an empty token.
                return refuse(record);
            }
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|a| pusher || (*a == "pull" && may_pull))
                .collect();
            if kind == "repository" && !granted.is_empty() {
                access.push(serde_json::json!({"type": kind, "name": name, "actions": granted}));
            }
        }

        // The audience is the service the token is for, as the server's challenge named it.
        let audience = service.as_deref().unwrap_or(DEFAULT_SERVICE);
        let token = self.sign(
            user.as_deref().unwrap_or(""),
            audience,
            access,
            policy.lifetime_secs,
        );
        self.tokens.lock().unwrap().push(token.clone());
        record.issued = true;
        self.requests.lock().unwrap().push(record);
        let body = serde_json::json!({"token": token, "expires_in": policy.lifetime_secs});
        ("200 OK", String::new(), body.to_string())
    }

    /// A compact JWS (ES256): base64url(header) "." base64url(claims) "." base64url(r || s).
    fn sign(
        &self,
        subject: &str,
        audience: &str,
        access: Vec<serde_json::Value>,
        lifetime: u64,
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "exp": now + lifetime,
            "nbf": now,
            "iat": now,
            "jti": format!("jti-{}", self.next_jti.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // The FIXED algorithm gives the 64-byte r || s form JWS requires (RFC 7518 §3.4).
        let sig = self
            .key
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// `(user, password)` from a `Basic` header value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Reads an HTTP/1.1 request head (no body: the issuer only serves GET).
fn read_head(conn: &mut impl Read) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).ok()
}
