//! End-to-end tests of the `cosign-key` trust source (design.md §4, trust-formats.md §1): a real
//! docker-registry upstream holding images and cosign-format signatures, pullgate enforcing a
//! rule that needs the cosign key, and pulls with skopeo.
//!
//! The signatures are made here the way cosign makes them (trust-formats.md §1.2–§1.5): a
//! simple-signing payload blob, an ECDSA P-256 signature over its exact bytes in the layer
//! annotation `dev.cosignproject.cosign/signature` (ASN.1 DER, base64), one layer of media type
//! `application/vnd.dev.cosign.simplesigning.v1+json` in an OCI manifest tagged
//! `sha256-<hex>.sig` in the image's repository. Blobs and the manifest are pushed with curl
//! through the registry's upload API, so the bytes are exactly these.
//!
//! Covered: a signed image pulls (by tag and by digest) and the audit names the key; an
//! unsigned image, one signed by another key and one whose signature payload names another
//! digest are refused with the reason in skopeo's output; a multi-platform index signed at the
//! index pulls whole with `skopeo copy --all`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use spki::EncodePublicKey as _;

use crate::oci_push::*;
use crate::sigstore_signer::{just_now, pae, MiniSigstore, COSIGN_SIGN, IN_TOTO};
use crate::support::*;

/// Every Docker Hub name must carry a signature by the `acme` key.
const HUB_RULE: &str =
    "[[rule]]\nname = \"hub\"\nimages = [\"docker.io/**\"]\nmode = \"enforce\"\ntrust = [\"acme\"]\n";

/// A cosign key pair made in the test: the private key in memory, the public key written as
/// `cosign.pub` is (SPKI PEM).
struct CosignKey {
    sk: p256::ecdsa::SigningKey,
    public: PathBuf,
    /// `key:<first 16 hex of sha256(SPKI DER)>`, as pullgate names the key.
    identity: String,
}

impl CosignKey {
    fn generate(dir: &Path, name: &str) -> CosignKey {
        std::fs::create_dir_all(dir).unwrap();
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pk = p256::PublicKey::from(sk.verifying_key());
        let public = dir.join(format!("{name}.pub"));
        let pem = pk
            .to_public_key_pem(spki::der::pem::LineEnding::LF)
            .unwrap();
        std::fs::write(&public, pem).unwrap();
        let der = pk.to_public_key_der().unwrap();
        let identity = format!("key:{}", &hex::encode(Sha256::digest(der.as_bytes()))[..16]);
        CosignKey {
            sk,
            public,
            identity,
        }
    }

    /// base64 of the DER ECDSA signature over `payload`, as cosign writes the annotation.
    fn sign(&self, payload: &[u8]) -> String {
        let sig: p256::ecdsa::Signature = self.sk.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }

    /// The v0.3 bundle cosign v3 `sign --key` makes for `digest` (`sha256:<hex>`) without a
    /// transparency log: the public-key hint and a DSSE envelope over the in-toto statement
    /// with cosign's sign predicate, signed over its PAE.
    fn bundle(&self, digest: &str) -> Vec<u8> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        let statement = MiniSigstore::statement(hex, COSIGN_SIGN);
        let der = p256::PublicKey::from(self.sk.verifying_key())
            .to_public_key_der()
            .unwrap();
        serde_json::to_vec(&json!({
            "mediaType": BUNDLE_V03,
            "verificationMaterial": {
                "publicKey": { "hint": b64(&Sha256::digest(der.as_bytes())) },
                "tlogEntries": [],
            },
            "dsseEnvelope": {
                "payload": b64(&statement),
                "payloadType": IN_TOTO,
                "signatures": [{ "sig": self.sign(&pae(&statement)), "keyid": "" }],
            },
        }))
        .unwrap()
    }
}

/// The simple-signing payload cosign writes for `repo` at `digest` (trust-formats.md §1.4).
pub(crate) fn payload(registry: &str, repo: &str, digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{registry}/{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

// === The lab ===

/// A registry (mirrored as Docker Hub) with these images under `library/NAME:1.0`:
/// `signed` (signed by `key`), `unsigned`, `wrongkey` (signed by `attacker`), `misbound`
/// (carrying `signed`'s valid signature, which names `signed`'s digest), `multi` (an index,
/// signed at the index digest only), `elsewhere` (signed by `key`, the signature stored in
/// the repository [`SIGS`] only), `bundled` (a cosign v3 key-signed bundle by `key` under the
/// referrers fallback tag), `strangebundle` (the same by `attacker`) and `logged` (a key-signed
/// bundle by `key` logged in the test Sigstore's Rekor, whose trusted root is `root`).
struct Lab {
    tmp: tempfile::TempDir,
    reg: Registry,
    key: CosignKey,
    signed: TestImage,
    misbound: TestImage,
    multi: TestIndex,
    elsewhere: TestImage,
    bundled: TestImage,
    logged: TestImage,
    root: PathBuf,
}

/// The repository holding `elsewhere`'s signature, as a rule's `signature_repository` names it.
const SIGS: &str = "docker.io/acme/sigs";

impl Lab {
    fn new() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
        let keys = tmp.path().join("keys");
        let key = CosignKey::generate(&keys, "cosign");
        let attacker = CosignKey::generate(&keys, "attacker");
        let signed = TestImage::oci("signed with cosign", "amd64", 0);
        let unsigned = TestImage::oci("nobody signed me", "amd64", 0);
        let wrongkey = TestImage::oci("signed by a stranger", "amd64", 0);
        let misbound = TestImage::oci("carries another image's signature", "amd64", 0);
        let multi = TestIndex::multi("a signed index", &["amd64", "arm64"]);
        let elsewhere = TestImage::oci("signed, the signature kept apart", "amd64", 0);
        let bundled = TestImage::oci("signed with a cosign v3 key bundle", "amd64", 0);
        let strangebundle = TestImage::oci("a stranger's key bundle", "amd64", 0);
        let logged = TestImage::oci("a logged key bundle", "amd64", 0);
        let sigstore = MiniSigstore::new();
        let root = tmp.path().join("trusted_root.json");
        sigstore.write_trusted_root(&root);
        let lab = Lab {
            tmp,
            reg,
            key,
            signed,
            misbound,
            multi,
            elsewhere,
            bundled,
            logged,
            root,
        };
        let work = lab.tmp.path().join("uploads");
        std::fs::create_dir_all(&work).unwrap();
        let host = lab.reg.host();
        lab.push_image(&lab.signed, "library/signed:1.0");
        lab.push_image(&unsigned, "library/unsigned:1.0");
        lab.push_image(&wrongkey, "library/wrongkey:1.0");
        lab.push_image(&lab.misbound, "library/misbound:1.0");
        lab.push_index(&lab.multi, "library/multi:1.0");
        lab.push_image(&lab.elsewhere, "library/elsewhere:1.0");
        lab.push_image(&lab.bundled, "library/bundled:1.0");
        lab.push_image(&strangebundle, "library/strangebundle:1.0");
        lab.push_image(&lab.logged, "library/logged:1.0");

        let sign = |k: &CosignKey, repo: &str, digest: &str| {
            let p = payload(&host, repo, digest);
            let mut annotations = serde_json::Map::new();
            annotations.insert(SIGNATURE_ANNOTATION.to_owned(), k.sign(&p).into());
            (p, annotations)
        };
        let d = &lab.signed.manifest_digest;
        push_signature(
            &lab.reg,
            "library/signed",
            d,
            &[sign(&lab.key, "library/signed", d)],
            &work,
        );
        let d = &wrongkey.manifest_digest;
        push_signature(
            &lab.reg,
            "library/wrongkey",
            d,
            &[sign(&attacker, "library/wrongkey", d)],
            &work,
        );
        // A genuine signature by the trusted key, copied to where it does not belong.
        push_signature(
            &lab.reg,
            "library/misbound",
            &lab.misbound.manifest_digest,
            &[sign(
                &lab.key,
                "library/signed",
                &lab.signed.manifest_digest,
            )],
            &work,
        );
        let d = &lab.multi.index_digest;
        push_signature(
            &lab.reg,
            "library/multi",
            d,
            &[sign(&lab.key, "library/multi", d)],
            &work,
        );
        // COSIGN_REPOSITORY=.../acme/sigs: the signature is pushed there, not beside the image.
        let d = &lab.elsewhere.manifest_digest;
        push_signature(
            &lab.reg,
            "acme/sigs",
            d,
            &[sign(&lab.key, "library/elsewhere", d)],
            &work,
        );
        push_bundles(
            &lab.reg,
            "library/bundled",
            &Subject::image(&lab.bundled),
            &[(lab.key.bundle(&lab.bundled.manifest_digest), COSIGN_SIGN)],
            &work,
        );
        push_bundles(
            &lab.reg,
            "library/strangebundle",
            &Subject::image(&strangebundle),
            &[(attacker.bundle(&strangebundle.manifest_digest), COSIGN_SIGN)],
            &work,
        );
        let logged = sigstore.key_dsse_bundle(
            &lab.key.sk,
            &lab.logged.manifest_digest,
            COSIGN_SIGN,
            just_now().unix_timestamp(),
        );
        push_bundles(
            &lab.reg,
            "library/logged",
            &Subject::image(&lab.logged),
            &[(logged, COSIGN_SIGN)],
            &work,
        );
        lab
    }

    fn push_image(&self, img: &TestImage, target: &str) {
        push_image(&self.reg, img, target, self.tmp.path());
    }

    fn push_index(&self, idx: &TestIndex, target: &str) {
        push_index(&self.reg, idx, target, self.tmp.path());
    }

    /// pullgate mirroring the registry as Docker Hub, trusting `key` as source `acme`.
    fn pullgate(&self) -> Pullgate {
        self.pullgate_with("pg", "", "")
    }

    /// Like [`Lab::pullgate`], in `TMP/NAME`, with `trust_extra` and `rule_extra` (TOML
    /// lines) added to the trust source and the rule.
    fn pullgate_with(&self, name: &str, trust_extra: &str, rule_extra: &str) -> Pullgate {
        let dir = self.tmp.path().join(name);
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n\n[audit]\npath = \"{}\"\n\n{}\n[[trust]]\nname = \"acme\"\nkind = \"cosign-key\"\nkeys = [\"{}\"]\n{trust_extra}\n{HUB_RULE}{rule_extra}\n[typosquat]\nmode = \"off\"\n",
            dir.join("audit.jsonl").display(),
            registry_toml("docker.io", &self.reg.url, true, ""),
            self.key.public.display(),
        );
        Pullgate::start(&dir, &config)
    }
}

/// Copies `docker://SRC` to `dir:OUT` with skopeo.
pub(crate) fn skopeo_copy(src: &str, out: &Path, extra: &[&str]) -> Output {
    run(guarded("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{src}"))
        .arg(format!("dir:{}", out.display())))
}

/// The audit records for `image` at `reference`.
pub(crate) fn audited(pg: &Pullgate, image: &str, reference: &str) -> Vec<Value> {
    std::fs::read_to_string(pg.dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["image"] == image && r["reference"] == reference)
        .collect()
}

/// The last audit record of `library/IMAGE:1.0`, which must say pulled on `key`'s signature.
fn allowed_by(pg: &Pullgate, image: &str, reference: &str, key: &CosignKey) -> Value {
    let recs = audited(pg, &format!("docker.io/library/{image}"), reference);
    let last = recs.last().expect("the pull was not audited").clone();
    assert_eq!(last["decision"], "allow", "{last}");
    assert_eq!(
        last["signers"],
        json!([{"trust": "acme", "kind": "cosign-key", "identity": key.identity}]),
        "{last}"
    );
    last
}

/// skopeo's message for a manifest pullgate refused under rule `hub`.
fn refused(image: &str, reason: &str) -> String {
    format!("denied: pullgate: docker.io/library/{image}:1.0 denied by rule 'hub': no valid signature from acme; acme: {reason}")
}

#[test]
fn a_cosign_signed_image_pulls_by_tag_and_digest_and_the_audit_names_the_key() {
    let lab = Lab::new();
    let pg = lab.pullgate();
    let sources = [
        format!("{}/signed:1.0", pg.host()),
        format!(
            "{}/library/signed@{}",
            pg.host(),
            lab.signed.manifest_digest
        ),
    ];
    for (i, src) in sources.iter().enumerate() {
        let out = lab.tmp.path().join(format!("out{i}"));
        let r = skopeo_copy(src, &out, &[]);
        assert!(r.ok, "{src}:\n{}\npullgate log:\n{}", r.text(), pg.log());
        assert_dir_has_image(&out, &lab.signed);
    }
    allowed_by(&pg, "signed", "1.0", &lab.key);
}

#[test]
fn unsigned_wrongly_signed_and_misbound_images_are_refused_with_the_reason_in_skopeos_output() {
    let lab = Lab::new();
    let pg = lab.pullgate();
    let cases = [
        ("unsigned", "no signature".to_owned()),
        ("wrongkey", ".sig: signed by an untrusted key".to_owned()),
        (
            "strangebundle",
            "bundle: signed by an untrusted key".to_owned(),
        ),
        (
            "misbound",
            format!(
                ".sig: signature payload is for {} not {}",
                lab.signed.manifest_digest, lab.misbound.manifest_digest
            ),
        ),
    ];
    for (image, reason) in cases {
        let r = skopeo_copy(
            &format!("{}/{image}:1.0", pg.host()),
            &lab.tmp.path().join(format!("refused-{image}")),
            &[],
        );
        assert!(!r.ok, "{image} was pulled:\n{}", r.text());
        let want = refused(image, &reason);
        assert!(
            r.stderr.contains(&want),
            "{image}: skopeo output lacks {want:?}:\n{}\npullgate log:\n{}",
            r.text(),
            pg.log()
        );
    }
}

#[test]
fn skopeo_copies_every_platform_of_an_index_signed_at_the_index() {
    let lab = Lab::new();
    let pg = lab.pullgate();
    let out = lab.tmp.path().join("out");
    let r = skopeo_copy(&format!("{}/multi:1.0", pg.host()), &out, &["--all"]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    let files = dir_files(&out);
    assert_eq!(digest_of(&files["manifest.json"]), lab.multi.index_digest);
    for c in &lab.multi.children {
        let name = format!(
            "{}.manifest.json",
            c.manifest_digest.trim_start_matches("sha256:")
        );
        assert_eq!(files.get(&name), Some(&c.manifest), "child {name}");
        let recs = audited(&pg, "docker.io/library/multi", &c.manifest_digest);
        let last = recs.last().expect("child not audited");
        assert_eq!(last["decision"], "allow", "{last}");
    }
}

#[test]
fn a_key_signed_bundle_under_the_fallback_tag_pulls_and_the_audit_names_the_key() {
    let lab = Lab::new();
    let pg = lab.pullgate();
    let out = lab.tmp.path().join("out");
    let r = skopeo_copy(&format!("{}/bundled:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &lab.bundled);
    let last = allowed_by(&pg, "bundled", "1.0", &lab.key);
    let reasons = last["reasons"].to_string();
    assert!(reasons.contains("bundle"), "{last}");
}

#[test]
fn signatures_in_another_repository_count_only_where_the_rule_says_they_are() {
    let lab = Lab::new();
    // Without signature_repository, pullgate looks beside the image and finds nothing.
    let pg = lab.pullgate();
    let r = skopeo_copy(
        &format!("{}/elsewhere:1.0", pg.host()),
        &lab.tmp.path().join("refused"),
        &[],
    );
    assert!(!r.ok, "pulled without signature_repository:\n{}", r.text());
    let want = refused("elsewhere", "no signature");
    assert!(r.stderr.contains(&want), "{want:?} not in:\n{}", r.text());

    let pg = lab.pullgate_with(
        "pg-sigs",
        "",
        &format!("signature_repository = \"{SIGS}\"\n"),
    );
    let out = lab.tmp.path().join("out");
    let r = skopeo_copy(&format!("{}/elsewhere:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &lab.elsewhere);
    let last = allowed_by(&pg, "elsewhere", "1.0", &lab.key);
    assert!(last["reasons"].to_string().contains(SIGS), "{last}");
    // The image's own signature no longer counts: the rule says where signatures are.
    let r = skopeo_copy(
        &format!("{}/signed:1.0", pg.host()),
        &lab.tmp.path().join("own"),
        &[],
    );
    assert!(!r.ok, "pulled on a signature outside {SIGS}:\n{}", r.text());
    let want = refused("signed", &format!("no signature in {SIGS}"));
    assert!(r.stderr.contains(&want), "{want:?} not in:\n{}", r.text());
}

#[test]
fn with_a_trusted_root_a_key_signed_bundle_must_be_logged() {
    let lab = Lab::new();
    // Without a trusted root the key's signature is what counts: both bundles verify.
    let pg = lab.pullgate();
    for (image, img) in [("logged", &lab.logged), ("bundled", &lab.bundled)] {
        let out = lab.tmp.path().join(format!("plain-{image}"));
        let r = skopeo_copy(&format!("{}/{image}:1.0", pg.host()), &out, &[]);
        assert!(r.ok, "{image}: {}\npullgate log:\n{}", r.text(), pg.log());
        assert_dir_has_image(&out, img);
    }
    let pg = lab.pullgate_with(
        "pg-root",
        &format!("trusted_root = \"{}\"\n", lab.root.display()),
        "",
    );
    let out = lab.tmp.path().join("logged");
    let r = skopeo_copy(&format!("{}/logged:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &lab.logged);
    allowed_by(&pg, "logged", "1.0", &lab.key);
    // The unlogged bundle no longer suffices.
    let r = skopeo_copy(
        &format!("{}/bundled:1.0", pg.host()),
        &lab.tmp.path().join("unlogged"),
        &[],
    );
    assert!(!r.ok, "an unlogged bundle was accepted:\n{}", r.text());
    let want = refused(
        "bundled",
        "bundle: no transparency log entry from a trusted log",
    );
    assert!(r.stderr.contains(&want), "{want:?} not in:\n{}", r.text());
}
