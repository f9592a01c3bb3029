//! The `notary` trust source end to end: a real notary-signer and notary-server, trust data
//! published with the real notary CLI (a `targets/releases` delegation as `docker trust sign`
//! makes, and plain `targets`), a real docker-registry mirrored as Docker Hub, and pulls
//! through pullgate with skopeo, dockerd and ctr.

use std::path::PathBuf;
use std::time::Duration;

use crate::clients::{hosts_dir, logged, Containerd, Dockerd};
use crate::cosign_key::{audited, skopeo_copy};
use crate::notary_support::*;
use crate::oci_push::*;
use crate::support::*;

/// Every Docker Hub name must carry Docker Content Trust from trust source `dct`.
const HUB_RULE: &str =
    "[[rule]]\nname = \"hub\"\nimages = [\"docker.io/**\"]\nmode = \"enforce\"\ntrust = [\"dct\"]\n";

fn gun(name: &str) -> String {
    format!("docker.io/library/{name}")
}

/// Images under `library/NAME:1.0` of a registry mirrored as Docker Hub, and their trust data:
///
/// - `signed`: signed in `targets/releases` (as `docker trust sign` does);
/// - `plain`: signed in `targets` only (a repository without delegations);
/// - `unsigned`: no trust data at all;
/// - `moved`: the registry serves `moved`, the trust data signs `signed`'s manifest for 1.0;
/// - `multi`: an amd64 + arm64 index, the index signed in `targets/releases`.
struct Lab {
    tmp: tempfile::TempDir,
    ca: TestCa,
    reg: Registry,
    notary: NotaryServer,
    cli: NotaryCli,
    work: PathBuf,
    signed: TestImage,
    plain: TestImage,
    unsigned: TestImage,
    moved: TestImage,
    multi: TestIndex,
}

impl Lab {
    fn new() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new(&tmp.path().join("ca"));
        let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
        let notary = NotaryServer::start(&tmp.path().join("notary"), &ca);
        let cli = NotaryCli::new(&tmp.path().join("cli"), &notary, &ca);
        let work = tmp.path().join("uploads");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(tmp.path().join("out")).unwrap();

        let image = |name: &str| TestImage::oci(&format!("notary test image {name}"), "amd64", 0);
        let signed = image("signed");
        let plain = image("plain");
        let unsigned = image("unsigned");
        let moved = image("moved");
        let multi = TestIndex::multi("a notary-signed index", &["amd64", "arm64"]);
        push_image(&reg, &signed, "library/signed:1.0", &work);
        push_image(&reg, &plain, "library/plain:1.0", &work);
        push_image(&reg, &unsigned, "library/unsigned:1.0", &work);
        push_image(&reg, &moved, "library/moved:1.0", &work);
        push_index(&reg, &multi, "library/multi:1.0", &work);

        for (name, bytes, role) in [
            ("signed", &signed.manifest, Some(RELEASES)),
            ("plain", &plain.manifest, None),
            ("moved", &signed.manifest, Some(RELEASES)),
            ("multi", &multi.index, Some(RELEASES)),
        ] {
            let g = gun(name);
            cli.init(&g);
            if role.is_some() {
                cli.add_releases_delegation(&g);
            }
            cli.sign(&g, "1.0", bytes, role);
        }
        Lab {
            tmp,
            ca,
            reg,
            notary,
            cli,
            work,
            signed,
            plain,
            unsigned,
            moved,
            multi,
        }
    }

    /// The `dct` source's root pinning: every published GUN's root key.
    fn pinned_roots(&self) -> String {
        let ids: Vec<String> = ["signed", "plain", "moved", "multi"]
            .iter()
            .map(|n| format!("\"{}\"", self.cli.root_key_id(&gun(n))))
            .collect();
        format!("root_keys = [{}]", ids.join(", "))
    }

    /// pullgate in `TMP/NAME` mirroring the registry as Docker Hub, with trust source `dct`
    /// (`root` and `extra` are added to it) and [`HUB_RULE`]; `server` adds to `[server]`.
    fn pullgate(&self, name: &str, root: &str, extra: &str, server: &str) -> Pullgate {
        let dir = self.tmp.path().join(name);
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n{server}\n\n[audit]\npath = \"{}\"\n\n\
             [cache]\nverdict_ttl = \"1s\"\nnegative_ttl = \"1s\"\n\n{}\n\
             [[trust]]\nname = \"dct\"\nkind = \"notary\"\nserver = \"{}\"\nca_file = \"{}\"\n{root}\n{extra}\n\n\
             {HUB_RULE}\n[typosquat]\nmode = \"off\"\n",
            dir.join("audit.jsonl").display(),
            registry_toml("docker.io", &self.reg.url, true, ""),
            self.notary.url(),
            self.ca.ca_cert.display(),
        );
        Pullgate::start(&dir, &config)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join("out").join(name)
    }
}

/// pullgate's message for `library/IMAGE:REF` refused under rule `hub`, as clients show it.
fn refused(image: &str, reference: &str, reason: &str) -> String {
    let sep = if reference.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    format!("pullgate: docker.io/library/{image}{sep}{reference} denied by rule 'hub': no valid signature from dct; dct: {reason}")
}

/// The last audit record of `image` at `reference` allowed the pull on `role`'s signature.
fn assert_allowed_by(pg: &Pullgate, image: &str, reference: &str, role: &str) {
    let recs = audited(pg, &format!("docker.io/library/{image}"), reference);
    let last = recs
        .last()
        .unwrap_or_else(|| panic!("{image} {reference} not audited"));
    assert_eq!(last["decision"], "allow", "{last}");
    let signers = last["signers"].as_array().expect("signers");
    assert_eq!(signers.len(), 1, "{last}");
    assert_eq!(signers[0]["trust"], "dct", "{last}");
    assert_eq!(signers[0]["kind"], "notary", "{last}");
    assert_eq!(signers[0]["identity"], role, "{last}");
}

fn assert_pulls(lab: &Lab, pg: &Pullgate, src: &str, out: &str) {
    let r = skopeo_copy(&format!("{}/{src}", pg.host()), &lab.out(out), &[]);
    assert!(
        r.ok,
        "skopeo copy {src}:\n{}\npullgate log:\n{}",
        r.text(),
        pg.log()
    );
}

fn assert_refused(pg: &Pullgate, lab: &Lab, src: &str, out: &str, message: &str) {
    let r = skopeo_copy(&format!("{}/{src}", pg.host()), &lab.out(out), &[]);
    assert!(!r.ok, "{src} was pulled");
    assert!(
        r.stderr.contains(message),
        "skopeo copy {src}: want {message:?} in:\n{}\npullgate log:\n{}",
        r.text(),
        pg.log()
    );
}

#[test]
fn skopeo_pulls_signed_tags_digests_and_indexes_and_is_refused_the_rest_with_the_reason() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &lab.pinned_roots(), "", "");

    // A tag signed in targets/releases, and one in targets only.
    assert_pulls(&lab, &pg, "library/signed:1.0", "signed");
    assert_dir_has_image(&lab.out("signed"), &lab.signed);
    assert_allowed_by(&pg, "signed", "1.0", RELEASES);
    let last = audited(&pg, "docker.io/library/signed", "1.0")
        .pop()
        .unwrap();
    let reason = last["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("signed by dct (targets/releases), docker.io/library/signed v"),
        "{reason}"
    );
    assert_pulls(&lab, &pg, "library/plain:1.0", "plain");
    assert_allowed_by(&pg, "plain", "1.0", "targets");

    // By digest: a signed target's digest pulls; the same bytes under an unsigned name do not.
    let d = &lab.signed.manifest_digest;
    assert_pulls(
        &lab,
        &pg,
        &format!("library/signed@{d}"),
        "signed-by-digest",
    );
    assert_allowed_by(&pg, "signed", d, RELEASES);
    // (`unsigned`'s bytes, also stored in `plain` under an unsigned tag: its blobs are there.)
    let u = &lab.unsigned.manifest_digest;
    push_image(&lab.reg, &lab.unsigned, "library/plain:extra", &lab.work);
    assert_refused(
        &pg,
        &lab,
        &format!("library/plain@{u}"),
        "plain-other-digest",
        &refused(
            "plain",
            u,
            &format!("{u} is not a signed target by targets/releases or targets for docker.io/library/plain"),
        ),
    );

    // An index signed at the index: every platform copies.
    let r = skopeo_copy(
        &format!("{}/library/multi:1.0", pg.host()),
        &lab.out("multi"),
        &["--all"],
    );
    assert!(r.ok, "skopeo copy --all multi:\n{}\n{}", r.text(), pg.log());
    for child in &lab.multi.children {
        assert!(
            !audited(&pg, "docker.io/library/multi", &child.manifest_digest).is_empty(),
            "child {} not requested",
            child.manifest_digest
        );
    }

    // No trust data; a tag signed for other bytes than the registry serves.
    assert_refused(
        &pg,
        &lab,
        "library/unsigned:1.0",
        "unsigned",
        &refused(
            "unsigned",
            "1.0",
            "no trust data for docker.io/library/unsigned",
        ),
    );
    let moved = &lab.moved.manifest_digest;
    assert_refused(
        &pg,
        &lab,
        "library/moved:1.0",
        "moved",
        &refused(
            "moved",
            "1.0",
            &format!(
                "tag 1.0 is signed for {} but upstream serves {moved}",
                lab.signed.manifest_digest
            ),
        ),
    );
    // A tag the trust data does not list.
    put_manifest(
        &lab.reg,
        "library/signed",
        "2.0",
        OCI_MANIFEST,
        &lab.signed.manifest,
        &lab.work,
    );
    assert_refused(
        &pg,
        &lab,
        "library/signed:2.0",
        "signed-2",
        &refused(
            "signed",
            "2.0",
            "tag 2.0 is not signed by targets/releases or targets for docker.io/library/signed",
        ),
    );
}

#[test]
fn dockerd_and_ctr_pull_a_signed_tag_and_show_why_an_unsigned_one_is_refused() {
    let lab = Lab::new();
    let pg = lab.pullgate("pg", &lab.pinned_roots(), "", "");

    let dockerd = Dockerd::start(
        &lab.tmp.path().join("dockerd"),
        &format!("http://{}", pg.host()),
    );
    let r = run(dockerd.docker().args(["pull", "signed:1.0"]));
    assert!(
        r.ok,
        "docker pull signed:1.0:\n{}\npullgate log:\n{}\ndockerd log:\n{}",
        r.text(),
        pg.log(),
        dockerd.log()
    );
    let (id, _) = dockerd.inspect("signed:1.0");
    assert_eq!(id, lab.signed.config.digest);
    assert_allowed_by(&pg, "signed", "1.0", RELEASES);
    let r = run(dockerd.docker().args(["pull", "unsigned:1.0"]));
    assert!(!r.ok, "an unsigned image was pulled:\n{}", r.text());
    let reason = refused(
        "unsigned",
        "1.0",
        "no trust data for docker.io/library/unsigned",
    );
    assert!(
        logged(&dockerd.log(), &[&format!("denied: {reason}")]),
        "dockerd did not log pullgate's reason:\n{}",
        dockerd.log()
    );
    drop(dockerd);

    let containerd = Containerd::start(&lab.tmp.path().join("containerd"));
    let hosts = hosts_dir(&lab.tmp.path().join("hosts"), &["docker.io"], &pg.host());
    let reference = "docker.io/library/plain:1.0";
    let r = containerd.pull(&hosts, reference);
    assert!(
        r.ok,
        "ctr pull {reference}:\n{}\npullgate log:\n{}",
        r.text(),
        pg.log()
    );
    assert_eq!(
        containerd.image_digest(reference),
        Some(lab.plain.manifest_digest.clone())
    );
    let r = containerd.pull(&hosts, "docker.io/library/unsigned:1.0");
    assert!(!r.ok, "an unsigned image was pulled:\n{}", r.text());
    let shown = format!(
        "403 {}",
        refused(
            "unsigned",
            "1.0",
            "no trust data for docker.io/library/unsigned"
        )
    );
    assert!(r.stderr.contains(&shown), "{}", r.text());
}

#[test]
fn a_re_signed_tag_takes_effect_when_caches_expire_and_verified_data_outlives_a_stopped_server() {
    let mut lab = Lab::new();
    let pg = lab.pullgate("pg", &lab.pinned_roots(), "cache_ttl = \"1s\"", "");
    assert_pulls(&lab, &pg, "library/signed:1.0", "before");
    // `plain` is verified once now, so its data is cached when the server goes away.
    assert_pulls(&lab, &pg, "library/plain:1.0", "plain-before");

    // The publisher moves 1.0 to new bytes: registry first, then the signature.
    let next = TestImage::oci("notary test image signed, second build", "amd64", 0);
    push_image(&lab.reg, &next, "library/signed:1.0", &lab.work);
    lab.cli
        .sign(&gun("signed"), "1.0", &next.manifest, Some(RELEASES));
    std::thread::sleep(Duration::from_millis(2100));
    assert_pulls(&lab, &pg, "library/signed:1.0", "after");
    assert_dir_has_image(&lab.out("after"), &next);
    // The old digest is no longer a signed target; and when the registry serves the old bytes
    // under 1.0 again, the new signature refuses them.
    let old = &lab.signed.manifest_digest;
    assert_refused(
        &pg,
        &lab,
        &format!("library/signed@{old}"),
        "old-by-digest",
        &refused(
            "signed",
            old,
            &format!("{old} is not a signed target by targets/releases or targets for docker.io/library/signed"),
        ),
    );
    push_image(&lab.reg, &lab.signed, "library/signed:1.0", &lab.work);
    assert_refused(
        &pg,
        &lab,
        "library/signed:1.0",
        "rolled-back",
        &refused(
            "signed",
            "1.0",
            &format!(
                "tag 1.0 is signed for {} but upstream serves {old}",
                next.manifest_digest
            ),
        ),
    );

    // The notary server goes away: data verified before (not expired) still answers after the
    // cache time; a GUN never verified is refused.
    lab.notary.stop();
    std::thread::sleep(Duration::from_millis(1100));
    assert_pulls(&lab, &pg, "library/plain:1.0", "plain-server-down");
    assert!(
        pg.log().contains("notary server unavailable"),
        "no warning logged:\n{}",
        pg.log()
    );
    let r = skopeo_copy(
        &format!("{}/library/multi:1.0", pg.host()),
        &lab.out("multi-server-down"),
        &[],
    );
    assert!(!r.ok, "multi pulled without trust data");
    assert!(
        r.stderr
            .contains(&refused("multi", "1.0", "notary server: ")),
        "{}",
        r.text()
    );
}

#[test]
fn an_unpinned_root_is_refused_and_a_first_use_root_is_kept_across_restarts() {
    let lab = Lab::new();
    let wrong = format!("root_keys = [\"{}\"]", "ab".repeat(32));
    let pg = lab.pullgate("pinned-wrong", &wrong, "", "");
    assert_refused(
        &pg,
        &lab,
        "library/signed:1.0",
        "wrong-root",
        "dct: root key not pinned",
    );
    drop(pg);

    let state = lab.tmp.path().join("state");
    let server = format!("state_dir = \"{}\"", state.display());
    let mut pg = lab.pullgate("tofu", "trust_on_first_use = true", "", &server);
    assert_pulls(&lab, &pg, "library/signed:1.0", "tofu");
    assert_allowed_by(&pg, "signed", "1.0", RELEASES);
    let files: Vec<_> = std::fs::read_dir(state.join("notary/dct"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with("docker.io_library_signed-"),
        "{files:?}"
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("notary/dct").join(&files[0])).unwrap())
            .unwrap();
    assert!(kept["root"].is_string(), "{kept}");
    assert!(kept["versions"]["timestamp"].as_u64() >= Some(1), "{kept}");
    pg.stop();

    // A restart reads the kept root: the GUN still verifies.
    let pg = lab.pullgate("tofu", "trust_on_first_use = true", "", &server);
    assert_pulls(&lab, &pg, "library/signed:1.0", "tofu-again");
}
