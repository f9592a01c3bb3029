//! The `notary` trust source against a notary-server that requires Bearer tokens (its
//! `"auth": {"type": "token"}`, distribution's token access controller): the test token issuer
//! over HTTPS, trust data published by the real notary CLI logged in as the pusher
//! (`NOTARY_AUTH`), and pulls through pullgate with skopeo, anonymously and with the source's
//! `username_env`/`password_env` credentials (trust-formats.md §3.8).

use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::cosign_key::{audited, skopeo_copy};
use crate::notary_support::*;
use crate::oci_push::push_image;
use crate::support::*;
use crate::token_issuer::{IssuerPolicy, TokenIssuer, TokenRequest, PUSHER};

/// The notary server's `service`: what its challenge names and its tokens' audience.
const NOTARY_SERVICE: &str = "test-notary";

/// Every Docker Hub name must carry Docker Content Trust from trust source `dct`.
const HUB_RULE: &str =
    "[[rule]]\nname = \"hub\"\nimages = [\"docker.io/**\"]\nmode = \"enforce\"\ntrust = [\"dct\"]\n";

fn gun(name: &str) -> String {
    format!("docker.io/library/{name}")
}

/// The scope pullgate asks for to read `name`'s trust data: the fully qualified GUN.
fn pull_scope(name: &str) -> String {
    format!("repository:{}:pull", gun(name))
}

/// A registry mirrored as Docker Hub with `library/signed:1.0` (signed in `targets`) and
/// `library/unsigned:1.0` (no trust data), and a notary server that needs tokens from `issuer`.
struct TokenLab {
    tmp: tempfile::TempDir,
    ca: TestCa,
    reg: Registry,
    issuer: TokenIssuer,
    notary: NotaryServer,
    cli: NotaryCli,
    signed: TestImage,
}

impl TokenLab {
    fn new(policy: IssuerPolicy) -> TokenLab {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new(&tmp.path().join("ca"));
        let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
        // HTTPS: pullgate does not follow an HTTPS notary server to a plain-HTTP realm.
        let issuer = TokenIssuer::start_tls(&tmp.path().join("issuer"), policy, &ca);
        let notary = NotaryServer::start_with_token_auth(
            &tmp.path().join("notary"),
            &ca,
            &issuer,
            NOTARY_SERVICE,
        );
        let cli =
            NotaryCli::new(&tmp.path().join("cli"), &notary, &ca).with_login(PUSHER.0, PUSHER.1);
        let work = tmp.path().join("uploads");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(tmp.path().join("out")).unwrap();

        let signed = TestImage::oci("notary token test image signed", "amd64", 0);
        let unsigned = TestImage::oci("notary token test image unsigned", "amd64", 0);
        push_image(&reg, &signed, "library/signed:1.0", &work);
        push_image(&reg, &unsigned, "library/unsigned:1.0", &work);
        cli.init(&gun("signed"));
        cli.sign(&gun("signed"), "1.0", &signed.manifest, None);
        TokenLab {
            tmp,
            ca,
            reg,
            issuer,
            notary,
            cli,
            signed,
        }
    }

    /// pullgate in `TMP/NAME` mirroring the registry as Docker Hub, with trust source `dct`
    /// (the published root pinned, `extra` added) and [`HUB_RULE`]; `env` goes to the process.
    fn pullgate(&self, name: &str, extra: &str, env: &[(&str, &str)]) -> Pullgate {
        let dir = self.tmp.path().join(name);
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n\n[audit]\npath = \"{}\"\n\n\
             [cache]\nverdict_ttl = \"1s\"\nnegative_ttl = \"1s\"\n\n{}\n\
             [[trust]]\nname = \"dct\"\nkind = \"notary\"\nserver = \"{}\"\nca_file = \"{}\"\n\
             root_keys = [\"{}\"]\n{extra}\n\n{HUB_RULE}\n[typosquat]\nmode = \"off\"\n",
            dir.join("audit.jsonl").display(),
            registry_toml("docker.io", &self.reg.url, true, ""),
            self.notary.url(),
            self.ca.ca_cert.display(),
            self.cli.cached_root_key_id(&gun("signed")),
        );
        Pullgate::start_with_env(&dir, &config, env)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join("out").join(name)
    }

    /// skopeo copies `library/SRC` through `pg`; panics with the logs unless it succeeds.
    fn assert_pulls(&self, pg: &Pullgate, src: &str, out: &str) {
        let r = skopeo_copy(&format!("{}/library/{src}", pg.host()), &self.out(out), &[]);
        assert!(
            r.ok,
            "skopeo copy {src}:\n{}\npullgate log:\n{}\n{}\nissuer saw: {:?}",
            r.text(),
            pg.log(),
            self.notary.logs(),
            self.issuer.requests()
        );
    }

    /// skopeo copies `library/SRC` through `pg`; it must fail with `message` in its output.
    fn assert_refused(&self, pg: &Pullgate, src: &str, out: &str, message: &str) {
        let r = skopeo_copy(&format!("{}/library/{src}", pg.host()), &self.out(out), &[]);
        assert!(!r.ok, "{src} was pulled");
        assert!(
            r.stderr.contains(message),
            "skopeo copy {src}: want {message:?} in:\n{}\npullgate log:\n{}",
            r.text(),
            pg.log()
        );
    }

    /// The token requests the issuer received after the first `skip`.
    fn requests_since(&self, skip: usize) -> Vec<TokenRequest> {
        self.issuer.requests().into_iter().skip(skip).collect()
    }
}

/// pullgate's message for `library/IMAGE:1.0` refused under rule `hub`, as clients show it.
fn refused(image: &str, reason: &str) -> String {
    format!("pullgate: docker.io/library/{image}:1.0 denied by rule 'hub': no valid signature from dct; dct: {reason}")
}

/// The last audit record of `library/IMAGE:1.0` allowed the pull on `dct`'s `targets`.
fn assert_allowed(pg: &Pullgate, image: &str) {
    let recs = audited(pg, &format!("docker.io/library/{image}"), "1.0");
    let last = recs
        .last()
        .unwrap_or_else(|| panic!("{image} 1.0 not audited"));
    assert_eq!(last["decision"], "allow", "{last}");
    assert_eq!(last["signers"][0]["trust"], "dct", "{last}");
    assert_eq!(last["signers"][0]["identity"], "targets", "{last}");
}

#[test]
fn a_signed_tag_pulls_with_an_anonymous_token_that_is_reused_across_pulls() {
    let lab = TokenLab::new(IssuerPolicy::default());

    // The server really demands a token, and the CLI published with a push token as the pusher.
    let (code, body) = lab.notary.get_tuf(&gun("signed"), "timestamp.json");
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&body));
    let pushes: Vec<_> = lab
        .issuer
        .requests()
        .into_iter()
        .filter(|r| r.issued && r.user.as_deref() == Some(PUSHER.0))
        .filter(|r| {
            r.scopes.iter().any(|s| {
                s.starts_with(&format!("repository:{}:", gun("signed"))) && s.contains("push")
            })
        })
        .collect();
    assert!(!pushes.is_empty(), "{:?}", lab.issuer.requests());

    let before = lab.issuer.requests().len();
    let pg = lab.pullgate("pg", "cache_ttl = \"1s\"", &[]);
    lab.assert_pulls(&pg, "signed:1.0", "first");
    assert_dir_has_image(&lab.out("first"), &lab.signed);
    assert_allowed(&pg, "signed");

    // One anonymous request for the fully qualified GUN, for the service the server's
    // challenge named.
    let asked = lab.requests_since(before);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].scopes, [pull_scope("signed")], "{asked:?}");
    assert_eq!(
        asked[0].service.as_deref(),
        Some(NOTARY_SERVICE),
        "{asked:?}"
    );
    assert!(
        asked[0].authorization.is_none() && asked[0].user.is_none() && asked[0].issued,
        "{asked:?}"
    );

    // After the trust data's cache time, the second pull reads the server again with the
    // same token: no second token request.
    let served = timestamp_requests(&lab.notary);
    std::thread::sleep(Duration::from_millis(1100));
    lab.assert_pulls(&pg, "signed:1.0", "second");
    assert_allowed(&pg, "signed");
    assert!(
        timestamp_requests(&lab.notary) > served,
        "the second pull did not read the notary server again:\n{}",
        lab.notary.logs()
    );
    let asked = lab.requests_since(before);
    assert_eq!(asked.len(), 1, "a second token request: {asked:?}");

    // A GUN without trust data: the server's 404 (behind its own token) is "no trust data".
    lab.assert_refused(
        &pg,
        "unsigned:1.0",
        "unsigned",
        &refused("unsigned", "no trust data for docker.io/library/unsigned"),
    );
    assert_eq!(
        lab.issuer.requests_for(&pull_scope("unsigned")).len(),
        1,
        "{:?}",
        lab.issuer.requests()
    );
}

#[test]
fn a_token_service_that_needs_a_login_refuses_anonymous_pulls_and_accepts_configured_credentials() {
    // A password distinctive enough that finding it in a log cannot be a coincidence.
    let (user, password) = ("puller", "pw-N0tary9q");
    let lab = TokenLab::new(IssuerPolicy {
        pull_credentials: Some((user.into(), password.into())),
        ..IssuerPolicy::default()
    });

    // No credentials: the issuer refuses, the server's 401 stands, and the client is told.
    let before = lab.issuer.requests().len();
    let pg = lab.pullgate("anonymous", "", &[]);
    lab.assert_refused(
        &pg,
        "signed:1.0",
        "anonymous",
        &refused(
            "signed",
            "notary server: root.json: the notary server refused anonymous access (401 \
             Unauthorized); it needs credentials (username_env/password_env or \
             username_file/password_file)",
        ),
    );
    let asked = lab.requests_since(before);
    assert!(!asked.is_empty(), "pullgate never asked the issuer");
    for r in &asked {
        assert_eq!(r.scopes, [pull_scope("signed")], "{asked:?}");
        assert!(r.authorization.is_none() && !r.issued, "{asked:?}");
    }
    drop(pg);

    // Wrong credentials: refused, and the reason says the configured ones were not accepted.
    let creds =
        "username_env = \"PULLGATE_NOTARY_USER\"\npassword_env = \"PULLGATE_NOTARY_PASSWORD\"";
    let wrong = [
        ("PULLGATE_NOTARY_USER", user),
        ("PULLGATE_NOTARY_PASSWORD", "not-the-password"),
    ];
    let pg = lab.pullgate("wrong", creds, &wrong);
    lab.assert_refused(
        &pg,
        "signed:1.0",
        "wrong",
        &refused(
            "signed",
            "notary server: root.json: the notary server refused access with the configured \
             credentials (401 Unauthorized)",
        ),
    );
    drop(pg);

    // `username_env`/`password_env`, set on pullgate's process: the issuer sees them as Basic
    // credentials and the pull goes through.
    let before = lab.issuer.requests().len();
    let env = [
        ("PULLGATE_NOTARY_USER", user),
        ("PULLGATE_NOTARY_PASSWORD", password),
    ];
    let pg = lab.pullgate("login", creds, &env);
    lab.assert_pulls(&pg, "signed:1.0", "login");
    assert_dir_has_image(&lab.out("login"), &lab.signed);
    assert_allowed(&pg, "signed");
    let asked = lab.requests_since(before);
    let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].scopes, [pull_scope("signed")], "{asked:?}");
    assert_eq!(
        asked[0].service.as_deref(),
        Some(NOTARY_SERVICE),
        "{asked:?}"
    );
    assert_eq!(asked[0].user.as_deref(), Some(user), "{asked:?}");
    assert_eq!(asked[0].authorization.as_deref(), Some(basic.as_str()));
    assert!(asked[0].issued, "{asked:?}");
    assert!(
        !pg.log().contains(password),
        "the password leaked into pullgate's log"
    );
}

/// How many times notary-server logged serving a `timestamp.json`.
fn timestamp_requests(notary: &NotaryServer) -> usize {
    std::fs::read_to_string(&notary.server_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("timestamp.json"))
        .count()
}
