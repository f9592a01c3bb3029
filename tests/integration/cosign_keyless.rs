//! End-to-end tests of the `cosign-keyless` trust source (trust-formats.md §2): a real
//! docker-registry upstream holding images and keyless cosign signatures, pullgate enforcing a
//! rule that needs a signature by a trusted workflow identity, and pulls with skopeo, dockerd,
//! containerd's `ctr` and podman.
//!
//! The signatures are made by the test Sigstore in `sigstore_signer` (a Fulcio-like CA, a CT
//! log key, Rekor v1 and v2 keys and an RFC 3161 timestamp authority from `sigstore_tsa`, all
//! trusted through a test `trusted_root.json`) and stored both ways cosign
//! stores them: a legacy `sha256-<hex>.sig` manifest whose layer carries the certificate and
//! Rekor bundle annotations, and cosign v3 Sigstore bundles attached as referrers. The
//! registry (distribution 2.8) has no referrers API, so bundles go under the referrers fallback
//! tag `sha256-<hex>`, which is where pullgate must look.
//!
//! Covered: `.sig` and bundle signatures pull with skopeo (the audit names the identity); an
//! index signed by a bundle at the index pulls whole with `skopeo copy --all`; refused with the
//! reason in skopeo's output: unsigned, signed by another identity, evidence about another
//! digest, a certificate expired when it was logged, an attestation instead of a signature;
//! RFC 3161 timestamps as the trusted time (bundles logged Rekor v2 style, whose entries carry
//! no integrated time): a certificate valid at the timestamp pulls; refused are a certificate
//! expired at the timestamp, a timestamp from an authority the trusted root does not list, and
//! a certificate expired at the timestamp although valid at a Rekor v1 integrated time;
//! a `subject_regex` identity; dockerd, ctr and podman pull a bundle-signed image and show
//! (where they print it) why an unsigned one is refused.

use std::path::PathBuf;

use serde_json::json;

use crate::clients::{hosts_dir, logged, Containerd, Dockerd, Podman};
use crate::cosign_key::{audited, payload, skopeo_copy};
use crate::oci_push::*;
use crate::sigstore_signer::*;
use crate::sigstore_tsa::TestTsa;
use crate::support::*;

/// Every Docker Hub name must carry a keyless signature from trust source `sigstore`.
const HUB_RULE: &str =
    "[[rule]]\nname = \"hub\"\nimages = [\"docker.io/**\"]\nmode = \"enforce\"\ntrust = [\"sigstore\"]\n";

/// The same repository's other workflow: trusted only by the `subject_regex` configuration.
const NIGHTLY: &str = "https://github.com/acme/app/.github/workflows/nightly.yml@refs/heads/main";
/// Someone else's workflow, with a certificate from the same (trusted) CA.
const STRANGER: &str = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main";
/// An attestation predicate: signed by the trusted identity, but not a signature.
const SLSA: &str = "https://slsa.dev/provenance/v1";

/// The `identities` line trusting [`IDENTITY`] exactly.
fn exact_identity() -> String {
    format!("identities = [{{ issuer = \"{ISSUER}\", subject = \"{IDENTITY}\" }}]")
}

/// The `identities` line trusting every workflow of `acme/app` on main.
fn regex_identity() -> String {
    format!(
        "identities = [{{ issuer = \"{ISSUER}\", subject_regex = '''https://github\\.com/acme/app/\\.github/workflows/[^/]+@refs/heads/main''' }}]"
    )
}

/// A registry (mirrored as Docker Hub) with these under `library/NAME:1.0`:
///
/// - `sigsigned`: a keyless `.sig` signature by [`IDENTITY`];
/// - `bundled`: a cosign v3 bundle by [`IDENTITY`] under the fallback tag;
/// - `unsigned`: nothing;
/// - `stranger`: a bundle by [`STRANGER`];
/// - `nightly`: a bundle by [`NIGHTLY`];
/// - `misbound`: `bundled`'s genuine `.sig` payload and bundle statement (both naming
///   `bundled`'s digest), attached to `misbound`;
/// - `expired`: a bundle whose certificate expired ten minutes before it was logged;
/// - `provenance`: a bundle by [`IDENTITY`] of a SLSA provenance statement;
/// - `multi`: an amd64 + arm64 index with a bundle at the index digest only;
/// - `stamped`: a bundle by [`IDENTITY`] logged in Rekor v2 (no integrated time) with a
///   timestamp from the trusted TSA inside the certificate's validity;
/// - `stampexpired`: the same with a certificate that expired before the timestamp;
/// - `stampforeign`: `stamped`'s shape, timestamped by a TSA the trusted root does not list;
/// - `stamplogged`: a Rekor v1 entry whose signed integrated time is inside the certificate's
///   validity, plus a trusted timestamp after the certificate expired.
/// - `apart`: a bundle by [`IDENTITY`] attached in the repository [`SIGS`] only.
struct Lab {
    tmp: tempfile::TempDir,
    reg: Registry,
    root: PathBuf,
    sigsigned: TestImage,
    bundled: TestImage,
    stamped: TestImage,
    misbound: TestImage,
    multi: TestIndex,
    provenance: TestImage,
    apart: TestImage,
}

/// Where `apart`'s bundle is, as a rule's `signature_repository` names it.
const SIGS: &str = "docker.io/acme/sigs";

impl Lab {
    fn new() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
        let sigstore = MiniSigstore::new();
        let root = tmp.path().join("trusted_root.json");
        sigstore.write_trusted_root(&root);
        let work = tmp.path().join("uploads");
        std::fs::create_dir_all(&work).unwrap();

        let image = |name: &str| TestImage::oci(&format!("keyless test image {name}"), "amd64", 0);
        let sigsigned = image("sigsigned");
        let bundled = image("bundled");
        let multi = TestIndex::multi("a keyless-signed index", &["amd64", "arm64"]);
        let others = [
            "unsigned",
            "stranger",
            "nightly",
            "misbound",
            "expired",
            "provenance",
            "stamped",
            "stampexpired",
            "stampforeign",
            "stamplogged",
            "apart",
        ]
        .map(|n| (n, image(n)));
        push_image(&reg, &sigsigned, "library/sigsigned:1.0", &work);
        push_image(&reg, &bundled, "library/bundled:1.0", &work);
        push_index(&reg, &multi, "library/multi:1.0", &work);
        for (name, img) in &others {
            push_image(&reg, img, &format!("library/{name}:1.0"), &work);
        }
        let other = |name: &str| &others.iter().find(|(n, _)| *n == name).unwrap().1;

        // Logged a few seconds ago by certificates issued a minute before: well inside their
        // ten minutes, and not in the future for pullgate.
        let now = just_now();
        let t = now.unix_timestamp();
        let issued = now - time::Duration::minutes(1);
        let trusted = sigstore.leaf(IDENTITY, ISSUER, issued);
        let host = reg.host();
        let sig_layer = |repo: &str, digest: &str| {
            let p = payload(&host, repo, digest);
            let a = sigstore.sig_layer(&trusted, &p, t);
            (p, a)
        };
        let bundle = |leaf: &Leaf, digest: &str, predicate: &'static str| {
            (sigstore.dsse_bundle(leaf, digest, predicate, t), predicate)
        };

        let d = &sigsigned.manifest_digest;
        push_signature(
            &reg,
            "library/sigsigned",
            d,
            &[sig_layer("library/sigsigned", d)],
            &work,
        );
        push_bundles(
            &reg,
            "library/bundled",
            &Subject::image(&bundled),
            &[bundle(&trusted, &bundled.manifest_digest, COSIGN_SIGN)],
            &work,
        );
        for (name, leaf) in [
            ("stranger", sigstore.leaf(STRANGER, ISSUER, issued)),
            ("nightly", sigstore.leaf(NIGHTLY, ISSUER, issued)),
        ] {
            let img = other(name);
            push_bundles(
                &reg,
                &format!("library/{name}"),
                &Subject::image(img),
                &[bundle(&leaf, &img.manifest_digest, COSIGN_SIGN)],
                &work,
            );
        }
        // Genuine evidence about `bundled`, copied to `misbound`: the referrer manifest (which
        // nobody signs) claims `misbound` as its subject.
        let misbound = other("misbound");
        push_signature(
            &reg,
            "library/misbound",
            &misbound.manifest_digest,
            &[sig_layer("library/bundled", &bundled.manifest_digest)],
            &work,
        );
        push_bundles(
            &reg,
            "library/misbound",
            &Subject::image(misbound),
            &[bundle(&trusted, &bundled.manifest_digest, COSIGN_SIGN)],
            &work,
        );
        let expired = other("expired");
        let lapsed = sigstore.leaf_valid(
            IDENTITY,
            ISSUER,
            now - time::Duration::minutes(30),
            now - time::Duration::minutes(10),
        );
        push_bundles(
            &reg,
            "library/expired",
            &Subject::image(expired),
            &[bundle(&lapsed, &expired.manifest_digest, COSIGN_SIGN)],
            &work,
        );
        let provenance = other("provenance");
        push_bundles(
            &reg,
            "library/provenance",
            &Subject::image(provenance),
            &[bundle(&trusted, &provenance.manifest_digest, SLSA)],
            &work,
        );
        push_bundles(
            &reg,
            "library/multi",
            &Subject::index(&multi),
            &[bundle(&trusted, &multi.index_digest, COSIGN_SIGN)],
            &work,
        );
        // COSIGN_REPOSITORY=.../acme/sigs: the bundle and its fallback tag live there.
        let apart = other("apart");
        push_bundles(
            &reg,
            "acme/sigs",
            &Subject::image(apart),
            &[bundle(&trusted, &apart.manifest_digest, COSIGN_SIGN)],
            &work,
        );

        // Timestamped by a TSA at `now`: inside `trusted`'s validity, after `lapsed` expired.
        let stranger_tsa = TestTsa::new("https://tsa.stranger.test/api/v1/timestamp");
        let logged_inside = Log::V1 {
            integrated_time: (now - time::Duration::minutes(15)).unix_timestamp(),
        };
        for (name, leaf, log, tsa) in [
            ("stamped", &trusted, Log::V2, sigstore.tsa()),
            ("stampexpired", &lapsed, Log::V2, sigstore.tsa()),
            ("stampforeign", &trusted, Log::V2, &stranger_tsa),
            ("stamplogged", &lapsed, logged_inside, sigstore.tsa()),
        ] {
            let img = other(name);
            let b = sigstore.dsse_bundle_with(
                leaf,
                &img.manifest_digest,
                COSIGN_SIGN,
                log,
                &[(tsa, now)],
            );
            push_bundles(
                &reg,
                &format!("library/{name}"),
                &Subject::image(img),
                &[(b, COSIGN_SIGN)],
                &work,
            );
        }

        Lab {
            tmp,
            reg,
            root,
            sigsigned,
            bundled,
            misbound: misbound.clone(),
            stamped: other("stamped").clone(),
            multi,
            provenance: provenance.clone(),
            apart: apart.clone(),
        }
    }

    /// pullgate in `TMP/NAME` mirroring the registry as Docker Hub, with the test trusted root
    /// and `identities` as trust source `sigstore`, and [`HUB_RULE`].
    fn pullgate(&self, name: &str, identities: &str) -> Pullgate {
        self.pullgate_with(name, identities, "")
    }

    /// Like [`Lab::pullgate`] with `rule_extra` (TOML lines) added to the rule.
    fn pullgate_with(&self, name: &str, identities: &str, rule_extra: &str) -> Pullgate {
        let dir = self.tmp.path().join(name);
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n\n[audit]\npath = \"{}\"\n\n{}\n[[trust]]\nname = \"sigstore\"\nkind = \"cosign-keyless\"\ntrusted_root = \"{}\"\n{identities}\n\n{HUB_RULE}{rule_extra}\n[typosquat]\nmode = \"off\"\n",
            dir.join("audit.jsonl").display(),
            registry_toml("docker.io", &self.reg.url, true, ""),
            self.root.display(),
        );
        Pullgate::start(&dir, &config)
    }
}

/// pullgate's message for `library/IMAGE:1.0` refused under rule `hub`, as clients show it.
fn refused(image: &str, reason: &str) -> String {
    format!("pullgate: docker.io/library/{image}:1.0 denied by rule 'hub': no valid signature from sigstore; sigstore: {reason}")
}

/// How pullgate names [`IDENTITY`] (or another subject) from the test issuer.
fn signer(subject: &str) -> String {
    format!("{subject} (issuer {ISSUER})")
}

/// The last audit record of `image` at `reference` allowed the pull on the keyless signature
/// of [`IDENTITY`].
fn assert_allowed_by_identity(pg: &Pullgate, image: &str, reference: &str) {
    let recs = audited(pg, image, reference);
    let last = recs
        .last()
        .unwrap_or_else(|| panic!("{image} {reference} not audited"));
    assert_eq!(last["decision"], "allow", "{last}");
    let signers = last["signers"].as_array().expect("signers");
    assert_eq!(signers.len(), 1, "{last}");
    assert_eq!(signers[0]["trust"], "sigstore", "{last}");
    assert_eq!(signers[0]["kind"], "cosign-keyless", "{last}");
    assert_eq!(signers[0]["identity"], json!(signer(IDENTITY)), "{last}");
}

#[test]
fn keyless_sig_bundle_and_timestamped_images_pull_with_skopeo_and_the_audit_names_the_identity() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &exact_identity());
    let cases = [
        (format!("{}/sigsigned:1.0", pg.host()), &lab.sigsigned),
        (
            format!(
                "{}/library/sigsigned@{}",
                pg.host(),
                lab.sigsigned.manifest_digest
            ),
            &lab.sigsigned,
        ),
        (format!("{}/bundled:1.0", pg.host()), &lab.bundled),
        // Its only trusted time is the RFC 3161 timestamp.
        (format!("{}/stamped:1.0", pg.host()), &lab.stamped),
    ];
    for (i, (src, img)) in cases.iter().enumerate() {
        let out = lab.tmp.path().join(format!("out{i}"));
        let r = skopeo_copy(src, &out, &[]);
        assert!(r.ok, "{src}:\n{}\npullgate log:\n{}", r.text(), pg.log());
        assert_dir_has_image(&out, img);
    }
    assert_allowed_by_identity(&pg, "docker.io/library/sigsigned", "1.0");
    assert_allowed_by_identity(
        &pg,
        "docker.io/library/sigsigned",
        &lab.sigsigned.manifest_digest,
    );
    assert_allowed_by_identity(&pg, "docker.io/library/bundled", "1.0");
    assert_allowed_by_identity(&pg, "docker.io/library/stamped", "1.0");
}

#[test]
fn skopeo_is_refused_unsigned_foreign_misbound_expired_untimely_and_attestation_only_images_with_the_reason(
) {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &exact_identity());
    let misbound_sig = format!(
        ".sig: signature payload is for {} not {}",
        lab.bundled.manifest_digest, lab.misbound.manifest_digest
    );
    let tsa_expired = format!("(tsa {TSA_URL}): leaf not valid at ");
    let cases: [(&str, Vec<String>); 9] = [
        ("unsigned", vec![refused("unsigned", "no signature")]),
        (
            "stranger",
            vec![refused(
                "stranger",
                &format!(
                    "bundle: signed by {}, which matches no trusted identity",
                    signer(STRANGER)
                ),
            )],
        ),
        (
            "nightly",
            vec![refused(
                "nightly",
                &format!(
                    "bundle: signed by {}, which matches no trusted identity",
                    signer(NIGHTLY)
                ),
            )],
        ),
        // Both the `.sig` layer and the bundle are genuine but about `bundled`.
        (
            "misbound",
            vec![
                refused("misbound", "2 signatures, none valid: "),
                misbound_sig,
                "bundle: DSSE statement has no subject with the artifact's digest".to_owned(),
            ],
        ),
        // The certificate is judged at the log's integration time, when it had expired.
        (
            "expired",
            vec![
                refused("expired", "bundle: certificate at "),
                format!("(rekor {REKOR_URL}): leaf not valid at "),
            ],
        ),
        (
            "provenance",
            vec![refused(
                "provenance",
                &format!("bundle: an attestation ({SLSA}), not a signature: this rule does not accept that predicate type"),
            )],
        ),
        // The timestamp is the only trusted time, and the certificate had expired by then.
        (
            "stampexpired",
            vec![
                refused("stampexpired", "bundle: certificate at "),
                tsa_expired.clone(),
            ],
        ),
        // A timestamp nobody trusted vouches for nothing, and a Rekor v2 entry has no time.
        (
            "stampforeign",
            vec![
                refused(
                    "stampforeign",
                    "bundle: no trusted time: no verified log integration time or RFC 3161 timestamp (timestamp: no trusted timestamp authority verifies the timestamp: ",
                ),
                format!("{TSA_URL}: token signer is not the authority's certificate"),
            ],
        ),
        // Valid when logged, expired when timestamped: every trusted time must pass.
        (
            "stamplogged",
            vec![
                refused("stamplogged", "bundle: certificate at "),
                tsa_expired.clone(),
            ],
        ),
    ];
    for (image, wanted) in cases {
        let r = skopeo_copy(
            &format!("{}/{image}:1.0", pg.host()),
            &lab.tmp.path().join(format!("refused-{image}")),
            &[],
        );
        assert!(!r.ok, "{image} was pulled:\n{}", r.text());
        eprintln!("{image}: {}", r.stderr.trim());
        for want in &wanted {
            assert!(
                r.stderr.contains(want.as_str()),
                "{image}: skopeo output lacks {want:?}:\n{}\npullgate log:\n{}",
                r.text(),
                pg.log()
            );
        }
        let recs = audited(&pg, &format!("docker.io/library/{image}"), "1.0");
        let last = recs.last().expect("the refusal was not audited");
        assert_eq!(last["decision"], "deny", "{last}");
    }
}

#[test]
fn an_attestation_counts_only_for_a_rule_that_lists_its_predicate_type() {
    let lab = Lab::new();
    let pg = lab.pullgate_with(
        "pg",
        &exact_identity(),
        &format!("predicate_types = [\"{SLSA}\"]\n"),
    );
    let out = lab.tmp.path().join("out");
    let r = skopeo_copy(&format!("{}/provenance:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &lab.provenance);
    assert_allowed_by_identity(&pg, "docker.io/library/provenance", "1.0");
    // The default pullgate refusing the same image is covered above, with its reason.
}

#[test]
fn a_bundle_in_another_repository_counts_only_where_the_rule_says_signatures_are() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &exact_identity());
    let r = skopeo_copy(
        &format!("{}/apart:1.0", pg.host()),
        &lab.tmp.path().join("refused"),
        &[],
    );
    assert!(!r.ok, "pulled without signature_repository:\n{}", r.text());
    let want = refused("apart", "no signature");
    assert!(r.stderr.contains(&want), "{want:?} not in:\n{}", r.text());

    let pg = lab.pullgate_with(
        "pg-sigs",
        &exact_identity(),
        &format!("signature_repository = \"{SIGS}\"\n"),
    );
    let out = lab.tmp.path().join("out");
    let r = skopeo_copy(&format!("{}/apart:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &lab.apart);
    assert_allowed_by_identity(&pg, "docker.io/library/apart", "1.0");
    let recs = audited(&pg, "docker.io/library/apart", "1.0");
    let reasons = recs.last().expect("audited")["reasons"].to_string();
    assert!(
        reasons.contains(&format!("keyless bundle in {SIGS}")),
        "{reasons}"
    );
    let r = skopeo_copy(
        &format!("{}/bundled:1.0", pg.host()),
        &lab.tmp.path().join("own"),
        &[],
    );
    assert!(!r.ok, "pulled on a bundle outside {SIGS}:\n{}", r.text());
    let want = refused("bundled", &format!("no signature in {SIGS}"));
    assert!(r.stderr.contains(&want), "{want:?} not in:\n{}", r.text());
}

#[test]
fn a_subject_regex_identity_admits_another_workflow_of_the_repository_but_not_a_stranger() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &regex_identity());
    let out = lab.tmp.path().join("nightly");
    let r = skopeo_copy(&format!("{}/nightly:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\npullgate log:\n{}", r.text(), pg.log());
    let recs = audited(&pg, "docker.io/library/nightly", "1.0");
    let last = recs.last().expect("not audited");
    assert_eq!(last["decision"], "allow", "{last}");
    assert_eq!(
        last["signers"][0]["identity"],
        json!(signer(NIGHTLY)),
        "{last}"
    );

    let r = skopeo_copy(
        &format!("{}/stranger:1.0", pg.host()),
        &lab.tmp.path().join("stranger"),
        &[],
    );
    assert!(!r.ok, "a stranger's image was pulled:\n{}", r.text());
    assert!(
        r.stderr.contains("which matches no trusted identity"),
        "{}",
        r.text()
    );
}

#[test]
fn skopeo_copies_every_platform_of_an_index_signed_by_a_bundle_at_the_index() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &exact_identity());
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
    assert_allowed_by_identity(&pg, "docker.io/library/multi", "1.0");
}

// === Other clients ===

#[test]
fn dockerd_pulls_a_bundle_signed_image_through_its_mirror_and_logs_why_an_unsigned_one_is_refused()
{
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &exact_identity());
    let dockerd = Dockerd::start(
        &lab.tmp.path().join("dockerd"),
        &format!("http://{}", pg.host()),
    );
    let r = run(dockerd.docker().args(["pull", "bundled:1.0"]));
    assert!(
        r.ok,
        "docker pull bundled:1.0:\n{}\npullgate log:\n{}\ndockerd log:\n{}",
        r.text(),
        pg.log(),
        dockerd.log()
    );
    let (id, repo_digests) = dockerd.inspect("bundled:1.0");
    assert_eq!(
        id, lab.bundled.config.digest,
        "image ID is the config digest"
    );
    assert!(
        repo_digests.contains(&format!("bundled@{}", lab.bundled.manifest_digest)),
        "{repo_digests:?}"
    );
    assert_allowed_by_identity(&pg, "docker.io/library/bundled", "1.0");

    // dockerd logs the mirror's refusal, then falls back to Docker Hub, which the egress guard
    // blocks; its CLI shows only that last error (see trust_gate.rs).
    let r = run(dockerd.docker().args(["pull", "unsigned:1.0"]));
    assert!(!r.ok, "an unsigned image was pulled:\n{}", r.text());
    let reason = refused("unsigned", "no signature");
    assert!(
        logged(
            &dockerd.log(),
            &["Attempting next endpoint", &format!("denied: {reason}")]
        ),
        "dockerd did not log pullgate's reason:\n{}",
        dockerd.log()
    );
}

#[test]
fn ctr_pulls_a_bundle_signed_image_and_shows_why_an_unsigned_one_is_refused() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &exact_identity());
    let containerd = Containerd::start(&lab.tmp.path().join("containerd"));
    let hosts = hosts_dir(&lab.tmp.path().join("hosts"), &["docker.io"], &pg.host());

    let reference = "docker.io/library/bundled:1.0";
    let r = containerd.pull(&hosts, reference);
    assert!(
        r.ok,
        "ctr pull {reference}:\n{}\npullgate log:\n{}\ncontainerd log:\n{}",
        r.text(),
        pg.log(),
        containerd.log()
    );
    assert_eq!(
        containerd.image_digest(reference),
        Some(lab.bundled.manifest_digest.clone())
    );
    let recs = audited(&pg, "docker.io/library/bundled", "1.0");
    assert!(
        recs.iter().any(|r| r["decision"] == "allow"),
        "not allowed: {recs:?}"
    );

    // containerd resolves the tag with HEAD; pullgate's reason is in the status line.
    let r = containerd.pull(&hosts, "docker.io/library/unsigned:1.0");
    assert!(!r.ok, "an unsigned image was pulled:\n{}", r.text());
    let shown = format!(
        "pulling from host {} failed with status code [manifests 1.0]: 403 {}",
        pg.host(),
        refused("unsigned", "no signature")
    );
    assert!(r.stderr.contains(&shown), "{}", r.text());
}

#[test]
fn podman_pulls_a_bundle_signed_image_and_prints_why_an_unsigned_one_is_refused() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &exact_identity());
    let conf = format!(
        "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}/docker.io\"\ninsecure = true\n",
        pg.host()
    );
    let podman = Podman::new(&lab.tmp.path().join("podman"), &conf);
    let reference = "docker.io/library/bundled:1.0";
    let r = run(podman.podman().args(["pull", reference]));
    assert!(
        r.ok,
        "podman pull {reference}:\n{}\npullgate log:\n{}",
        r.text(),
        pg.log()
    );
    assert_eq!(podman.digest(reference), lab.bundled.manifest_digest);
    assert_allowed_by_identity(&pg, "docker.io/library/bundled", "1.0");

    let r = run(podman
        .podman()
        .args(["pull", "docker.io/library/unsigned:1.0"]));
    assert!(!r.ok, "an unsigned image was pulled:\n{}", r.text());
    let reason = refused("unsigned", "no signature");
    assert!(
        r.stderr.contains(&format!("denied: {reason}")),
        "{}",
        r.text()
    );
}
