//! The typosquat check in the proxy, with a real registry and skopeo: a look-alike name is
//! blocked with a "did you mean" message in block mode, and forwarded with a `Warning` header and
//! an audit finding in warn mode; the real name is never flagged.

use crate::support::*;

/// A registry holding the same test image under a real name and a near-miss of it.
fn setup(tmp: &std::path::Path) -> (Registry, TestImage) {
    let reg = Registry::start(&tmp.join("reg"), RegistryOptions::default());
    let img = TestImage::oci("squat test", "amd64", 0);
    let mut layout = Layout::new(&tmp.join("layout"));
    layout.add_image(&img, "1.0");
    for repo in ["library/nginx", "library/ngnix"] {
        skopeo_push(&layout, "1.0", &format!("{}/{repo}:1.0", reg.host()), &[]);
    }
    (reg, img)
}

fn start(tmp: &std::path::Path, reg: &Registry, mode: &str) -> Pullgate {
    let dir = tmp.join(format!("pg-{mode}"));
    let cfg = pullgate_toml(&dir, &registry_toml("docker.io", &reg.url, true, "")).replace(
        "[typosquat]\nmode = \"off\"",
        &format!("[typosquat]\nmode = \"{mode}\""),
    );
    Pullgate::start(&dir, &cfg)
}

fn audit(pg: &Pullgate) -> Vec<serde_json::Value> {
    std::fs::read_to_string(pg.dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn skopeo_pull(pg: &Pullgate, name: &str, out: &std::path::Path) -> Output {
    run(guarded("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{}/{name}", pg.host()))
        .arg(format!("dir:{}", out.display())))
}

#[test]
fn block_mode_refuses_a_near_miss_name_with_did_you_mean_and_lets_the_real_name_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, img) = setup(tmp.path());
    let pg = start(tmp.path(), &reg, "block");

    let r = skopeo_pull(&pg, "ngnix:1.0", &tmp.path().join("bad"));
    assert!(!r.ok, "the near-miss name was pulled:\n{}", r.text());
    assert!(
        r.stderr
            .contains("possible typosquat of docker.io/library/nginx")
            && r.stderr.contains("did you mean docker.io/library/nginx?"),
        "{}",
        r.text()
    );

    let out = tmp.path().join("good");
    let r = skopeo_pull(&pg, "nginx:1.0", &out);
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &img);

    let records = audit(&pg);
    let squat: Vec<_> = records
        .iter()
        .filter(|r| r["image"] == "docker.io/library/ngnix")
        .collect();
    assert!(!squat.is_empty(), "no audit record for the blocked name");
    for r in &squat {
        assert_eq!(r["decision"], "deny");
        assert_eq!(r["typosquat"]["similar_to"], "docker.io/library/nginx");
        assert_eq!(r["typosquat"]["suspect"], true);
        // Blocked by name alone: nothing was fetched, so there is no digest.
        assert!(r["digest"].is_null(), "{r}");
    }
    for r in records
        .iter()
        .filter(|r| r["image"] == "docker.io/library/nginx")
    {
        assert!(r["typosquat"].is_null(), "the real name was flagged: {r}");
    }
}

#[test]
fn warn_mode_forwards_a_near_miss_name_with_a_warning_header_and_an_audit_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, img) = setup(tmp.path());
    let pg = start(tmp.path(), &reg, "warn");

    let out = tmp.path().join("warned");
    let r = skopeo_pull(&pg, "ngnix:1.0", &out);
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &img);

    // skopeo 1.9 does not print Warning headers; curl shows what clients receive.
    let head = run(guarded("curl").args([
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("http://{}/v2/ngnix/manifests/1.0", pg.host()),
    ]));
    assert!(head.ok, "{}", head.text());
    let warning = head
        .stdout
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("warning:"))
        .unwrap_or_else(|| panic!("no Warning header:\n{}", head.stdout));
    assert!(
        warning.contains("299 - \"pullgate: docker.io/library/ngnix:1.0: possible typosquat of docker.io/library/nginx"),
        "{warning}"
    );

    let records = audit(&pg);
    let flagged: Vec<_> = records
        .iter()
        .filter(|r| r["image"] == "docker.io/library/ngnix")
        .collect();
    assert!(!flagged.is_empty());
    for r in flagged {
        assert_eq!(
            r["typosquat"]["similar_to"], "docker.io/library/nginx",
            "{r}"
        );
        assert!(
            r["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x.as_str().unwrap().contains("possible typosquat")),
            "{r}"
        );
        assert_eq!(
            r["decision"], "unchecked",
            "the rule is off; the finding does not change it: {r}"
        );
    }
}
