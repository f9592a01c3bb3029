//! Pulls through pullgate with skopeo from real docker-registry upstreams: OCI and Docker
//! schema 2 images, a multi-platform index, TLS upstreams with a test CA, Basic-auth upstreams,
//! and a TLS listener on pullgate itself.

use std::process::Command;

use crate::support::*;

fn skopeo_pull(src: &str, out: &std::path::Path, extra: &[&str]) -> Output {
    run(guarded("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{src}"))
        .arg(format!("dir:{}", out.display())))
}

#[test]
fn skopeo_pulls_oci_image_by_tag_and_digest_through_mirror_and_prefixed_names() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    let img = TestImage::oci("hello oci", "amd64", 0);
    let mut layout = Layout::new(&tmp.path().join("layout"));
    layout.add_image(&img, "1.0");
    skopeo_push(
        &layout,
        "1.0",
        &format!("{}/library/hello:1.0", reg.host()),
        &[],
    );

    // A port cannot appear inside a client's repository path, so the second registry is named
    // by a host name that maps to the same upstream.
    let regs = registry_toml("docker.io", &reg.url, true, "")
        + &registry_toml("registry.test", &reg.url, false, "");
    let pg = Pullgate::start(
        &tmp.path().join("pg"),
        &pullgate_toml(&tmp.path().join("pg"), &regs),
    );

    let sources = [
        format!("{}/hello:1.0", pg.host()),
        format!("{}/library/hello:1.0", pg.host()),
        format!("{}/docker.io/library/hello:1.0", pg.host()),
        format!("{}/registry.test/library/hello:1.0", pg.host()),
        format!("{}/hello@{}", pg.host(), img.manifest_digest),
    ];
    for (i, src) in sources.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let r = skopeo_pull(src, &out, &[]);
        assert!(
            r.ok,
            "pull {src} failed:\n{}\npullgate log:\n{}",
            r.text(),
            pg.log()
        );
        assert_dir_has_image(&out, &img);
    }
}

#[test]
fn skopeo_pulls_docker_schema2_image() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    let img = TestImage::docker("hello v2s2", "amd64");
    // skopeo's oci: transport only lists OCI media types, so this one goes from a dir: copy.
    let src = write_dir(&tmp.path().join("src"), &img);
    run_ok(
        guarded("skopeo")
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--preserve-digests",
            ])
            .arg(format!("dir:{}", src.display()))
            .arg(format!("docker://{}/library/v2s2:1.0", reg.host())),
    );

    let regs = registry_toml("docker.io", &reg.url, true, "");
    let pg = Pullgate::start(
        &tmp.path().join("pg"),
        &pullgate_toml(&tmp.path().join("pg"), &regs),
    );
    let out = tmp.path().join("out");
    let r = skopeo_pull(&format!("{}/v2s2:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &img);
    let manifest: serde_json::Value =
        serde_json::from_slice(&dir_files(&out)["manifest.json"]).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[test]
fn skopeo_pulls_every_platform_of_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    let idx = TestIndex::multi("multi", &["amd64", "arm64"]);
    let mut layout = Layout::new(&tmp.path().join("layout"));
    layout.add_index(&idx, "1.0");
    skopeo_push(
        &layout,
        "1.0",
        &format!("{}/library/multi:1.0", reg.host()),
        &["--all"],
    );

    let regs = registry_toml("docker.io", &reg.url, true, "");
    let pg = Pullgate::start(
        &tmp.path().join("pg"),
        &pullgate_toml(&tmp.path().join("pg"), &regs),
    );
    let out = tmp.path().join("out");
    let r = skopeo_pull(&format!("{}/multi:1.0", pg.host()), &out, &["--all"]);
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    let files = dir_files(&out);
    assert_eq!(digest_of(&files["manifest.json"]), idx.index_digest);
    for child in &idx.children {
        let name = format!(
            "{}.manifest.json",
            child.manifest_digest.trim_start_matches("sha256:")
        );
        assert_eq!(
            files.get(&name),
            Some(&child.manifest),
            "child manifest {name}"
        );
        for b in child.blobs() {
            assert_eq!(
                files.get(b.digest.trim_start_matches("sha256:")),
                Some(&b.bytes)
            );
        }
    }
}

#[test]
fn tls_upstream_with_ca_file_and_tls_listener() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&tmp.path().join("ca"));
    let reg = Registry::start(
        &tmp.path().join("reg"),
        RegistryOptions {
            tls: Some(&ca),
            ..Default::default()
        },
    );
    let img = TestImage::oci("hello tls", "amd64", 0);
    let mut layout = Layout::new(&tmp.path().join("layout"));
    layout.add_image(&img, "1.0");
    skopeo_push(
        &layout,
        "1.0",
        &format!("{}/library/tls:1.0", reg.host()),
        &[],
    );

    // Without the CA pullgate must refuse the upstream's certificate.
    let regs = registry_toml("docker.io", &reg.url, true, "");
    let pg = Pullgate::start(
        &tmp.path().join("pg1"),
        &pullgate_toml(&tmp.path().join("pg1"), &regs),
    );
    let r = skopeo_pull(
        &format!("{}/tls:1.0", pg.host()),
        &tmp.path().join("bad"),
        &[],
    );
    assert!(!r.ok, "pull through an unverified TLS upstream succeeded");
    assert!(r.stderr.contains("502"), "{}", r.stderr);
    assert!(pg.log().contains("UnknownIssuer"), "{}", pg.log());
    drop(pg);

    // With the CA file, and pullgate itself listening with TLS.
    let regs = registry_toml(
        "docker.io",
        &reg.url,
        true,
        &format!("ca_file = \"{}\"", ca.ca_cert.display()),
    );
    let dir = tmp.path().join("pg2");
    let cfg = pullgate_toml(&dir, &regs).replace(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            ca.cert.display(),
            ca.key.display()
        ),
    );
    let pg = Pullgate::start(&dir, &cfg);
    let out = tmp.path().join("out");
    let r = run(guarded("skopeo")
        .args(["copy", "--quiet", "--src-cert-dir"])
        .arg(&ca.dir)
        .arg(format!("docker://{}/tls:1.0", pg.host()))
        .arg(format!("dir:{}", out.display())));
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &img);
    // Both hops negotiated HTTP/2 by ALPN: skopeo to pullgate, pullgate to the registry.
    let log = pg.log();
    assert!(
        log.lines()
            .any(|l| l.contains("path=/v2/tls/manifests/1.0") && l.contains("version=HTTP/2.0")),
        "client connection was not HTTP/2:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("upstream answered") && l.contains("version=HTTP/2.0")),
        "upstream connection was not HTTP/2:\n{log}"
    );
}

#[test]
fn basic_auth_upstream_uses_configured_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let hp = tmp.path().join("htpasswd");
    htpasswd(&hp, "puller", "pull-secret");
    let reg = Registry::start(
        &tmp.path().join("reg"),
        RegistryOptions {
            htpasswd: Some(&hp),
            ..Default::default()
        },
    );
    let img = TestImage::oci("hello basic", "amd64", 0);
    let mut layout = Layout::new(&tmp.path().join("layout"));
    layout.add_image(&img, "1.0");
    run_ok(
        guarded("skopeo")
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--dest-creds",
                "puller:pull-secret",
            ])
            .arg(format!("oci:{}:1.0", layout.dir.display()))
            .arg(format!("docker://{}/library/basic:1.0", reg.host())),
    );

    // No credentials: the upstream's 401 becomes a 403 naming the registry, never a 401.
    let regs = registry_toml("docker.io", &reg.url, true, "");
    let pg = Pullgate::start(
        &tmp.path().join("pg1"),
        &pullgate_toml(&tmp.path().join("pg1"), &regs),
    );
    let r = skopeo_pull(
        &format!("{}/basic:1.0", pg.host()),
        &tmp.path().join("bad"),
        &[],
    );
    assert!(!r.ok);
    assert!(r.stderr.contains("refused access"), "{}", r.stderr);
    drop(pg);

    std::fs::write(tmp.path().join("pass"), "pull-secret\n").unwrap();
    let creds = format!(
        "username_env = \"PULLGATE_TEST_USER\"\npassword_file = \"{}\"",
        tmp.path().join("pass").display()
    );
    let regs = registry_toml("docker.io", &reg.url, true, &creds);
    let dir = tmp.path().join("pg2");
    std::env::set_var("PULLGATE_TEST_USER", "puller");
    let pg = Pullgate::start(&dir, &pullgate_toml(&dir, &regs));
    let out = tmp.path().join("out");
    let r = skopeo_pull(&format!("{}/basic:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &img);
    assert!(
        !pg.log().contains("pull-secret"),
        "secret leaked into the log"
    );
}

#[test]
fn large_blob_streams_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(&tmp.path().join("reg"), RegistryOptions::default());
    let img = TestImage::oci("big", "amd64", 24 << 20);
    let mut layout = Layout::new(&tmp.path().join("layout"));
    layout.add_image(&img, "1.0");
    skopeo_push(
        &layout,
        "1.0",
        &format!("{}/library/big:1.0", reg.host()),
        &[],
    );
    let regs = registry_toml("docker.io", &reg.url, true, "");
    let pg = Pullgate::start(
        &tmp.path().join("pg"),
        &pullgate_toml(&tmp.path().join("pg"), &regs),
    );
    let out = tmp.path().join("out");
    let r = skopeo_pull(&format!("{}/big:1.0", pg.host()), &out, &[]);
    assert!(r.ok, "{}\n{}", r.text(), pg.log());
    assert_dir_has_image(&out, &img);
    let _ = Command::new("true");
}
