//! End-to-end tests of [`update`] against the captured notary-server repositories and
//! synthetic ones built with [`super::testrepo`].

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::keys::{key_id, CertRuleError, PublicKey};
use super::metadata::{FileMeta, KeyJson};
use super::testrepo::{fixture, fixture_dir, target, MapFetch, Repo, Signer, FAR};
use super::*;

/// Inside every capture's validity: certificates from 2026-11-25T01:07, timestamps until
/// 2026-12-09.
const NOW: &str = "2026-11-26T00:00:00Z";

fn at(s: &str) -> OffsetDateTime {
    crate::clock::parse_rfc3339(s).unwrap()
}

const SIGNED: &str = "notary-cli/127.0.0.1_5100_library_signed-notary";
const SIGNED_GUN: &str = "127.0.0.1:5100/library/signed-notary";
const E8: &str = "sha256:e8ca88651e255ab81422411d03f7bfad4839a6802658d48b36c69a591603c78b";
const D304: &str = "sha256:304006a6839dcda05fdf2c9a575a3fc189dd29edf1663851fd9e7a782580d304";

struct Case {
    dir: &'static str,
    gun: &'static str,
    root_key: &'static str,
    digest: &'static str,
    length: u64,
    /// The role `tag("1.0", [targets/releases, targets])` finds it in.
    role: &'static str,
}

const CASES: &[Case] = &[
    Case {
        dir: SIGNED,
        gun: SIGNED_GUN,
        root_key: "7221f7d838e785c5520bdb1754035e03a02e4470ce9304d6f0da1523b4509e88",
        digest: E8,
        length: 466,
        role: "targets/releases",
    },
    Case {
        dir: "notary-cli/docker.io_library_signed-notary",
        gun: "docker.io/library/signed-notary",
        root_key: "e894b75af1e4afc6b7d2f595d6c7eb4bd9b46f0905c5f5234bbe13309446dca6",
        digest: E8,
        length: 466,
        role: "targets/releases",
    },
    Case {
        dir: "notary-cli/127.0.0.1_5100_library_multiarch",
        gun: "127.0.0.1:5100/library/multiarch",
        root_key: "4510dd5a1ac27a88ba2aa591001bcf7ca32fddfc7e481af9751af58d6d42de35",
        digest: "sha256:0e99dcd2b2ff09b6a813f0f825170197d74669ae959a1fabf82d99d86ce1948d",
        length: 506,
        role: "targets",
    },
    Case {
        dir: "notary-cli/127.0.0.1_5100_library_notary-mismatch",
        gun: "127.0.0.1:5100/library/notary-mismatch",
        root_key: "9a7819cf226e34014d755fdc840453e56e87391f63c0f3c5908facd8945d50ca",
        digest: "sha256:0e63a28d1cf8cf7de13e613ece38991986fbe1248ca4fef8af2c926a2e8a33ab",
        length: 458,
        role: "targets",
    },
    Case {
        dir: "docker-cli/127.0.0.1_5100_library_docker-signed",
        gun: "127.0.0.1:5100/library/docker-signed",
        root_key: "94d247a849ecc6604fd02ccb655943d23b6d761219767f485439166cdc2c0fc5",
        digest: D304,
        length: 523,
        role: "targets/releases",
    },
    Case {
        dir: "local-ed25519/127.0.0.1_5100_library_signed-notary",
        gun: SIGNED_GUN,
        root_key: "04b8d3a8e8f4911785c18861202909255be3d488eb11cc712699f72471a02cca",
        digest: E8,
        length: 466,
        role: "targets",
    },
];

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn pull_roles() -> Vec<String> {
    roles(&["targets/releases", "targets"])
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn run(
    fetch: &MapFetch,
    gun: &str,
    trust: &RootTrust,
    state: &State,
    now: OffsetDateTime,
) -> Result<(TrustData, State), NotaryError> {
    block(update(fetch, gun, trust, &pull_roles(), state, now))
}

fn first_use(fetch: &MapFetch, gun: &str) -> Result<(TrustData, State), NotaryError> {
    run(fetch, gun, &RootTrust::FirstUse, &State::default(), at(NOW))
}

fn digest(s: &str) -> crate::registry::Digest {
    s.parse().unwrap()
}

fn file_json(rel: &str, file: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture_dir(rel).join(file)).unwrap()).unwrap()
}

// --- captured repositories -------------------------------------------------------------

#[test]
fn every_fixture_updates_in_every_trust_mode() {
    for case in CASES {
        let fetch = fixture(case.dir);
        let root_bytes = std::fs::read(fixture_dir(case.dir).join("root.json")).unwrap();
        let modes = [
            RootTrust::Keys(vec![case.root_key.to_owned()]),
            RootTrust::File(root_bytes.clone()),
            RootTrust::FirstUse,
        ];
        for trust in &modes {
            let (data, state) = run(&fetch, case.gun, trust, &State::default(), at(NOW))
                .unwrap_or_else(|e| panic!("{} {trust:?}: {e}", case.dir));
            let t = data.tag("1.0", &pull_roles()).unwrap();
            assert_eq!(t.digest, digest(case.digest), "{}", case.dir);
            assert_eq!(t.length, case.length);
            assert_eq!(t.role, case.role, "{}", case.dir);
            assert_eq!(t.name, "1.0");
            assert_eq!(data.gun(), case.gun);
            assert!(data.notes().iter().all(|n| !n.contains("outside")));
            assert_eq!(
                data.digest(&digest(case.digest), &pull_roles()).as_ref(),
                Some(&t)
            );
            // The timestamp expires first (14 days); expires() must be exactly it.
            let ts = file_json(case.dir, "timestamp.json");
            let ts_exp =
                crate::clock::parse_rfc3339(ts["signed"]["expires"].as_str().unwrap()).unwrap();
            assert_eq!(data.expires(), ts_exp, "{}", case.dir);
            assert_eq!(
                state.root.as_deref().map(str::as_bytes),
                Some(&root_bytes[..])
            );
            for role in ["root", "timestamp", "snapshot", "targets"] {
                assert_eq!(
                    state.versions.get(role).copied(),
                    data.version(role),
                    "{role}"
                );
                assert!(data.version(role).is_some(), "{role}");
            }
            // The returned state works for the next update, in any mode.
            let (again, state2) = run(&fetch, case.gun, &RootTrust::FirstUse, &state, at(NOW))
                .unwrap_or_else(|e| panic!("{} again: {e}", case.dir));
            assert_eq!(state2, state);
            assert_eq!(again.tag("1.0", &pull_roles()), Some(t));
        }
    }
}

#[test]
fn versions_are_the_captured_ones() {
    let (data, _) = first_use(&fixture(SIGNED), SIGNED_GUN).unwrap();
    assert_eq!(data.version("root"), Some(2));
    assert_eq!(data.version("timestamp"), Some(3));
    assert_eq!(data.version("snapshot"), Some(3));
    assert_eq!(data.version("targets"), Some(4));
    assert_eq!(data.version("targets/releases"), Some(1));
    assert_eq!(data.version("targets/alice"), None);
}

#[test]
fn docker_cli_roles_are_only_the_ones_asked_for() {
    let dir = "docker-cli/127.0.0.1_5100_library_docker-signed";
    let gun = "127.0.0.1:5100/library/docker-signed";
    let fetch = fixture(dir);
    let wanted = roles(&["targets/releases", "targets", "targets/alice"]);
    let (data, _) = block(update(
        &fetch,
        gun,
        &RootTrust::FirstUse,
        &wanted,
        &State::default(),
        at(NOW),
    ))
    .unwrap();
    let d = digest(D304);
    assert_eq!(data.tag("1.0", &wanted).unwrap().role, "targets/releases");
    assert_eq!(
        data.tag("1.0", &roles(&["targets/alice"])).unwrap().role,
        "targets/alice"
    );
    assert_eq!(
        data.tag("1.0", &roles(&["targets"])).unwrap().role,
        "targets"
    );
    assert_eq!(
        data.digest(&d, &roles(&["targets/alice", "targets"]))
            .unwrap()
            .role,
        "targets/alice"
    );
    assert_eq!(data.tag("1.0", &roles(&["targets/bob"])), None);
    assert_eq!(data.tag("2.0", &wanted), None);
    assert_eq!(data.digest(&digest(E8), &wanted), None);
    assert!(data.notes().is_empty(), "{:?}", data.notes());

    // Not asked for: alice is not fetched at all.
    let fetch = fixture(dir);
    let (data, _) = run(
        &fetch,
        gun,
        &RootTrust::FirstUse,
        &State::default(),
        at(NOW),
    )
    .unwrap();
    assert!(!fetch.asked().iter().any(|n| n.starts_with("targets/alice")));
    assert_eq!(data.tag("1.0", &roles(&["targets/alice"])), None);
    assert_eq!(data.version("targets/alice"), None);
}

#[test]
fn ed25519_timestamp_capture() {
    let dir = "local-ed25519/127.0.0.1_5100_library_signed-notary";
    let root = file_json(dir, "root.json");
    let ts_id = root["signed"]["roles"]["timestamp"]["keyids"][0]
        .as_str()
        .unwrap();
    assert_eq!(root["signed"]["keys"][ts_id]["keytype"], "ed25519");
    assert_eq!(
        file_json(dir, "timestamp.json")["signatures"][0]["method"],
        "eddsa"
    );
    let (data, _) = first_use(&fixture(dir), SIGNED_GUN).unwrap();
    assert_eq!(data.version("timestamp"), Some(2));
    // No releases delegation in this capture: skipped with a note, the tag is in targets.
    assert_eq!(data.notes(), ["targets/releases: no such delegation"]);
}

#[test]
fn key_ids_and_canonical_json_recompute_for_every_fixture_key() {
    let mut checked = 0;
    for case in CASES {
        for file in [
            "root.json",
            "targets.json",
            "targets_releases.json",
            "targets_alice.json",
        ] {
            let Ok(bytes) = std::fs::read(fixture_dir(case.dir).join(file)) else {
                continue;
            };
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            let keys = if file == "root.json" {
                &v["signed"]["keys"]
            } else {
                &v["signed"]["delegations"]["keys"]
            };
            for (id, key) in keys.as_object().unwrap() {
                let k: KeyJson = serde_json::from_value(key.clone()).unwrap();
                assert_eq!(&key_id(&k.keytype, &k.keyval.public), id);
                let parsed = PublicKey::parse(id, &k).unwrap();
                assert_eq!(parsed.id(), id);
                checked += 1;
            }
        }
        // Every file's signatures verify over our canonical bytes with the listed key.
        let root = file_json(case.dir, "root.json");
        for file in [
            "root.json",
            "timestamp.json",
            "snapshot.json",
            "targets.json",
        ] {
            let v = file_json(case.dir, file);
            let canon = canonical(&v["signed"]).unwrap();
            for sig in v["signatures"].as_array().unwrap() {
                let id = sig["keyid"].as_str().unwrap();
                let k: KeyJson =
                    serde_json::from_value(root["signed"]["keys"][id].clone()).unwrap();
                let key = PublicKey::parse(id, &k).unwrap();
                let raw = STANDARD.decode(sig["sig"].as_str().unwrap()).unwrap();
                assert!(
                    key.verify(sig["method"].as_str().unwrap(), &canon, &raw),
                    "{} {file}",
                    case.dir
                );
                // A changed message does not verify.
                assert!(!key.verify(sig["method"].as_str().unwrap(), b"{}", &raw));
            }
        }
    }
    assert!(checked >= 26, "{checked}");
}

#[test]
fn pinning_by_certificate_public_key_id() {
    let root = file_json(SIGNED, "root.json");
    let id = CASES[0].root_key;
    let k: KeyJson = serde_json::from_value(root["signed"]["keys"][id].clone()).unwrap();
    let canonical = PublicKey::parse(id, &k).unwrap().canonical_id();
    assert_ne!(canonical, id);
    let trust = RootTrust::Keys(vec![canonical.to_uppercase()]);
    run(
        &fixture(SIGNED),
        SIGNED_GUN,
        &trust,
        &State::default(),
        at(NOW),
    )
    .unwrap();
}

// --- tampered captures: each fails with its own error ----------------------------------

fn err(fetch: &MapFetch) -> NotaryError {
    first_use(fetch, SIGNED_GUN).unwrap_err()
}

fn consistent_name(fetch: &MapFetch, role: &str) -> String {
    fetch
        .files
        .keys()
        .find(|k| k.starts_with(&format!("{role}.")) && k.len() == role.len() + 70)
        .unwrap()
        .clone()
}

fn edit_json(fetch: &mut MapFetch, name: &str, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&fetch.get(name)).unwrap();
    f(&mut v);
    fetch.files.insert(
        name.to_owned(),
        Bytes::from(serde_json::to_vec(&v).unwrap()),
    );
}

#[test]
fn one_byte_changed_in_targets_is_a_hash_mismatch() {
    let mut fetch = fixture(SIGNED);
    let name = consistent_name(&fetch, "targets");
    let mut bytes = fetch.get(&name);
    let i = bytes.iter().position(|b| *b == b'1').unwrap();
    bytes[i] = b'2';
    fetch.files.insert(name, Bytes::from(bytes));
    let e = err(&fetch);
    assert!(matches!(e, NotaryError::HashMismatch { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "targets: hash or length differs from snapshot"
    );
}

#[test]
fn corrupted_or_swapped_signature_misses_the_threshold() {
    let mut fetch = fixture(SIGNED);
    edit_json(&mut fetch, "timestamp.json", |v| {
        let sig = v["signatures"][0]["sig"].as_str().unwrap();
        let mut raw = STANDARD.decode(sig).unwrap();
        raw[10] ^= 1;
        v["signatures"][0]["sig"] = json!(STANDARD.encode(raw));
    });
    let e = err(&fetch);
    assert_eq!(
        e.to_string(),
        "timestamp: only 0 of 1 required signatures verify"
    );

    // The snapshot key's signature (valid, over another file) on the timestamp.
    let mut fetch = fixture(SIGNED);
    let snap_sig = file_json(SIGNED, "snapshot.json")["signatures"].clone();
    edit_json(&mut fetch, "timestamp.json", |v| v["signatures"] = snap_sig);
    let e = err(&fetch);
    assert!(
        matches!(e, NotaryError::Threshold { ref role, valid: 0, threshold: 1 } if role == "timestamp"),
        "{e}"
    );

    // An unsigned file.
    let mut fetch = fixture(SIGNED);
    edit_json(&mut fetch, "timestamp.json", |v| {
        v["signatures"] = json!(null)
    });
    assert!(matches!(err(&fetch), NotaryError::Threshold { .. }));
}

#[test]
fn lower_version_than_state_is_a_rollback() {
    let fetch = fixture(SIGNED);
    let (_, mut state) = first_use(&fetch, SIGNED_GUN).unwrap();
    state.versions.insert("targets".to_owned(), 10);
    let e = run(&fetch, SIGNED_GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap_err();
    assert_eq!(e.to_string(), "rollback of targets from version 10 to 4");
    // Also before any root is stored.
    let state = State {
        root: None,
        versions: BTreeMap::from([("timestamp".to_owned(), 4)]),
    };
    let e = run(&fetch, SIGNED_GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap_err();
    assert_eq!(e.to_string(), "rollback of timestamp from version 4 to 3");
    // Equal versions are fine: nothing changed on the server.
    let (_, state) = first_use(&fetch, SIGNED_GUN).unwrap();
    run(&fetch, SIGNED_GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap();
}

#[test]
fn clock_after_timestamp_expiry() {
    let fetch = fixture(SIGNED);
    let now = at("2026-12-10T00:00:00Z");
    let e = run(
        &fetch,
        SIGNED_GUN,
        &RootTrust::FirstUse,
        &State::default(),
        now,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "timestamp expired at 2026-12-09T01:06:46.78820355Z"
    );
    // Exactly at expiry is expired too.
    let at = crate::clock::parse_rfc3339("2026-12-09T01:06:46.78820355Z").unwrap();
    let e = run(
        &fetch,
        SIGNED_GUN,
        &RootTrust::FirstUse,
        &State::default(),
        at,
    )
    .unwrap_err();
    assert!(matches!(e, NotaryError::Expired { .. }));
}

#[test]
fn raised_root_threshold_breaks_the_self_signature() {
    let mut fetch = fixture(SIGNED);
    edit_json(&mut fetch, "root.json", |v| {
        v["signed"]["roles"]["root"]["threshold"] = json!(2);
    });
    let e = err(&fetch);
    assert_eq!(
        e.to_string(),
        "root: only 0 of 2 required signatures verify"
    );
    // Threshold 0 is never acceptable.
    let mut fetch = fixture(SIGNED);
    edit_json(&mut fetch, "root.json", |v| {
        v["signed"]["roles"]["root"]["threshold"] = json!(0);
    });
    assert!(matches!(err(&fetch), NotaryError::Invalid { .. }));
}

#[test]
fn wrong_pinned_key_is_not_pinned() {
    let trust = RootTrust::Keys(vec!["ab".repeat(32)]);
    let e = run(
        &fixture(SIGNED),
        SIGNED_GUN,
        &trust,
        &State::default(),
        at(NOW),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "root key not pinned: root is signed by 7221f7d8, pinned abababab"
    );
    // A pinned non-root key (the targets key) does not help either.
    let trust = RootTrust::Keys(vec![
        "a807e263bc4fab0e1e64ea7808d039159368ca16dc8f64021ac7926c7a0e43bd".to_owned(),
    ]);
    let e = run(
        &fixture(SIGNED),
        SIGNED_GUN,
        &trust,
        &State::default(),
        at(NOW),
    )
    .unwrap_err();
    assert!(matches!(e, NotaryError::RootNotPinned { .. }), "{e}");
}

#[test]
fn missing_trust_data() {
    let mut fetch = fixture(SIGNED);
    fetch.files.remove("timestamp.json");
    assert_eq!(
        err(&fetch).to_string(),
        format!("no trust data for {SIGNED_GUN}")
    );
    // A GUN the server knows nothing about.
    assert!(matches!(
        err(&MapFetch::default()),
        NotaryError::NoTrustData { .. }
    ));
    // A signed parent names a file the server does not have.
    let mut fetch = fixture(SIGNED);
    let name = consistent_name(&fetch, "snapshot");
    fetch.files.remove(&name);
    assert_eq!(
        err(&fetch).to_string(),
        format!("{name}: not found on the notary server")
    );
}

#[test]
fn oversized_files_are_refused() {
    let mut fetch = fixture(SIGNED);
    let mut bytes = fetch.get("timestamp.json");
    bytes.resize(1024 * 1024 + 1, b' ');
    fetch
        .files
        .insert("timestamp.json".to_owned(), Bytes::from(bytes));
    assert_eq!(
        err(&fetch).to_string(),
        "timestamp.json: larger than 1048576 bytes"
    );

    // A listed length above the cap is refused before fetching.
    let fetch = fixture(SIGNED);
    let meta = FileMeta {
        hashes: BTreeMap::from([("sha256".to_owned(), STANDARD.encode([7u8; 32]))]),
        length: 5 * 1024 * 1024,
    };
    let e = block(files::get_listed(
        &fetch,
        SIGNED_GUN,
        "targets",
        &meta,
        "snapshot",
        4 << 20,
    ))
    .unwrap_err();
    assert!(matches!(e, NotaryError::TooLarge { .. }), "{e}");
    assert!(fetch.asked().is_empty());
}

#[test]
fn fixture_under_another_gun_fails_the_cn_check() {
    let other = "127.0.0.1:5100/library/other";
    let e = first_use(&fixture(SIGNED), other).unwrap_err();
    assert!(
        matches!(
            e,
            NotaryError::RootCert {
                source: CertRuleError::WrongCn { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "root key 7221f7d8: certificate CN \"{SIGNED_GUN}\" does not match the GUN {other}"
        )
    );
}

#[test]
fn root_certificate_expiry_only_on_first_bootstrap() {
    let fetch = fixture(SIGNED);
    // Before notBefore (2026-11-25T01:06:46Z) minus the one-day leeway.
    let early = at("2026-11-23T00:00:00Z");
    let e = run(
        &fetch,
        SIGNED_GUN,
        &RootTrust::FirstUse,
        &State::default(),
        early,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            NotaryError::RootCert {
                source: CertRuleError::NotValid { .. },
                ..
            }
        ),
        "{e}"
    );
    // Within the leeway.
    let leeway = at("2026-11-24T12:00:00Z");
    let (_, state) = run(
        &fetch,
        SIGNED_GUN,
        &RootTrust::FirstUse,
        &State::default(),
        leeway,
    )
    .unwrap();
    // Once trusted, the certificate is not checked for expiry again.
    run(&fetch, SIGNED_GUN, &RootTrust::FirstUse, &state, early).unwrap();
}

#[test]
fn invalid_role_names_are_refused() {
    let fetch = fixture(SIGNED);
    for bad in ["targets/../root", "root", "targets/Releases"] {
        let e = block(update(
            &fetch,
            SIGNED_GUN,
            &RootTrust::FirstUse,
            &roles(&[bad]),
            &State::default(),
            at(NOW),
        ))
        .unwrap_err();
        assert!(matches!(e, NotaryError::RoleName(_)), "{bad}: {e}");
    }
    assert!(fetch.asked().is_empty());
}

#[test]
fn wrong_type_and_garbage_are_parse_errors() {
    let mut fetch = fixture(SIGNED);
    edit_json(&mut fetch, "timestamp.json", |v| {
        v["signed"]["_type"] = json!("timestamp")
    });
    let e = err(&fetch);
    assert_eq!(
        e.to_string(),
        "timestamp.json: _type is \"timestamp\", expected \"Timestamp\""
    );
    let mut fetch = fixture(SIGNED);
    fetch
        .files
        .insert("timestamp.json".to_owned(), Bytes::from_static(b"<html>"));
    assert!(matches!(err(&fetch), NotaryError::Parse { .. }));
}

// --- synthetic repositories: rotation ----------------------------------------------------

const GUN: &str = "registry.test/library/app";

fn aa() -> crate::registry::Digest {
    digest(&format!("sha256:{}", "aa".repeat(32)))
}

#[test]
fn synthetic_repository_verifies() {
    let repo = Repo::new(GUN);
    let (data, state) = first_use(&repo.serve(), GUN).unwrap();
    let t = data.tag("1.0", &pull_roles()).unwrap();
    assert_eq!(
        (t.role.as_str(), t.digest.clone(), t.length),
        ("targets", aa(), 100)
    );
    assert_eq!(state.versions["root"], 1);
    let pinned = RootTrust::Keys(vec![repo.root_keys[0][0].id.clone()]);
    run(&repo.serve(), GUN, &pinned, &State::default(), at(NOW)).unwrap();
}

#[test]
fn root_rotation_signed_by_old_and_new_keys() {
    let mut repo = Repo::new(GUN);
    let (_, state) = first_use(&repo.serve(), GUN).unwrap();
    repo.rotate_root(vec![Signer::x509(GUN)], true);
    let fetch = repo.serve();
    let (_, state2) = run(&fetch, GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap();
    assert_eq!(state2.versions["root"], 2);
    assert_eq!(
        state2.root.as_deref().map(str::as_bytes),
        Some(&repo.roots[1][..])
    );
    // Same result starting from a pinned v1 file.
    let file = RootTrust::File(repo.roots[0].clone());
    let (_, state3) = run(&fetch, GUN, &file, &State::default(), at(NOW)).unwrap();
    assert_eq!(state3, state2);
}

#[test]
fn rotation_signed_only_by_new_keys_fails() {
    let mut repo = Repo::new(GUN);
    let (_, state) = first_use(&repo.serve(), GUN).unwrap();
    repo.rotate_root(vec![Signer::x509(GUN)], false);
    let e = run(&repo.serve(), GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "root v2 (by the keys of root v1): only 0 of 1 required signatures verify"
    );
    // Trust on first use of v2 works: the chain only matters once v1 is trusted.
    first_use(&repo.serve(), GUN).unwrap();
}

#[test]
fn rotation_over_several_versions_fetches_each() {
    let mut repo = Repo::new(GUN);
    let (_, state) = first_use(&repo.serve(), GUN).unwrap();
    repo.rotate_root(vec![Signer::x509(GUN)], true);
    repo.rotate_root(vec![Signer::x509(GUN)], true);
    let fetch = repo.serve();
    let (_, state2) = run(&fetch, GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap();
    assert_eq!(state2.versions["root"], 3);
    assert!(fetch.asked().contains(&"2.root.json".to_owned()));

    // Without the intermediate root the walk cannot be made.
    let mut fetch = repo.serve();
    fetch.files.remove("2.root.json");
    let e = run(&fetch, GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap_err();
    assert_eq!(e.to_string(), "2.root.json: not found on the notary server");

    // An intermediate that skips the chain (v2 by new keys only) breaks it.
    let mut bad = Repo::new(GUN);
    let (_, bad_state) = first_use(&bad.serve(), GUN).unwrap();
    bad.rotate_root(vec![Signer::x509(GUN)], false);
    bad.rotate_root(vec![Signer::x509(GUN)], true);
    let e = run(&bad.serve(), GUN, &RootTrust::FirstUse, &bad_state, at(NOW)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("root v2 (by the keys of root v1)"),
        "{e}"
    );
}

#[test]
fn stored_root_that_the_server_root_does_not_chain_from() {
    let repo = Repo::new(GUN);
    let stranger = Repo::new(GUN);
    let (_, state) = first_use(&stranger.serve(), GUN).unwrap();
    let e = run(&repo.serve(), GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap_err();
    assert!(
        matches!(e, NotaryError::Threshold { ref role, .. } if role.starts_with("root v1")),
        "{e}"
    );
}

#[test]
fn older_root_than_stored_is_a_rollback() {
    let mut repo = Repo::new(GUN);
    let v1 = repo.serve();
    repo.rotate_root(vec![Signer::x509(GUN)], true);
    let (_, state) = first_use(&repo.serve(), GUN).unwrap();
    let e = run(&v1, GUN, &RootTrust::FirstUse, &state, at(NOW)).unwrap_err();
    assert_eq!(e.to_string(), "rollback of root from version 2 to 1");
}

#[test]
fn snapshot_must_agree_with_the_trusted_root() {
    // The server shows root v1 but its snapshot lists v2: inconsistent.
    let mut repo = Repo::new(GUN);
    repo.rotate_root(vec![Signer::x509(GUN)], true);
    let mut fetch = repo.serve();
    fetch.put("root", repo.roots[0].clone());
    let e = first_use(&fetch, GUN).unwrap_err();
    assert_eq!(e.to_string(), "root: hash or length differs from snapshot");
}

#[test]
fn root_with_wildcard_cn() {
    let mut repo = Repo::new(GUN);
    repo.root_keys.clear();
    repo.roots.clear();
    let key = Signer::x509("registry.test/library/*");
    let doc = repo.root_doc(1, &[&key], 1);
    repo.roots.push(super::testrepo::envelope(&doc, &[&key]));
    repo.root_keys.push(vec![key]);
    first_use(&repo.serve(), GUN).unwrap();
    let e = first_use(&repo.serve(), "registry.test/other/app").unwrap_err();
    assert!(matches!(e, NotaryError::RootCert { .. }), "{e}");
}

#[test]
fn bare_root_keys_are_not_accepted() {
    // notary's root keys are certificates; a bare ecdsa key cannot be the root role.
    let mut repo = Repo::new(GUN);
    repo.root_keys.clear();
    repo.roots.clear();
    let key = Signer::ecdsa();
    let doc = repo.root_doc(1, &[&key], 1);
    repo.roots.push(super::testrepo::envelope(&doc, &[&key]));
    repo.root_keys.push(vec![key]);
    let e = first_use(&repo.serve(), GUN).unwrap_err();
    assert!(
        matches!(
            e,
            NotaryError::RootCert {
                source: CertRuleError::NotX509,
                ..
            }
        ),
        "{e}"
    );
}

// --- synthetic repositories: delegations -------------------------------------------------

fn bb() -> Value {
    json!({"1.0": target(&"bb".repeat(32), 200)})
}

#[test]
fn releases_delegation_wins_over_targets() {
    let mut repo = Repo::new(GUN);
    repo.delegate("targets/releases", &[""], bb());
    let (data, state) = first_use(&repo.serve(), GUN).unwrap();
    let t = data.tag("1.0", &pull_roles()).unwrap();
    assert_eq!(t.role, "targets/releases");
    assert_eq!(t.length, 200);
    assert_eq!(state.versions["targets/releases"], 1);
    assert_eq!(data.digest(&aa(), &pull_roles()).unwrap().role, "targets");
}

#[test]
fn target_outside_delegated_paths_is_ignored() {
    let mut repo = Repo::new(GUN);
    repo.delegate(
        "targets/releases",
        &["v2"],
        json!({
            "1.0": target(&"bb".repeat(32), 200),
            "v2.1": target(&"cc".repeat(32), 300),
        }),
    );
    let (data, _) = first_use(&repo.serve(), GUN).unwrap();
    let releases = roles(&["targets/releases"]);
    assert_eq!(data.tag("1.0", &releases), None);
    assert_eq!(data.tag("v2.1", &releases).unwrap().length, 300);
    assert_eq!(data.tag("1.0", &pull_roles()).unwrap().role, "targets");
    assert_eq!(
        data.notes(),
        ["targets/releases: target 1.0 is outside its delegated paths"]
    );
}

#[test]
fn expired_delegation_is_skipped_with_a_note() {
    let mut repo = Repo::new(GUN);
    repo.delegate("targets/releases", &[""], bb());
    repo.delegations[0].expires = "2026-11-01T00:00:00Z".to_owned();
    let (data, state) = first_use(&repo.serve(), GUN).unwrap();
    assert_eq!(
        data.notes(),
        ["targets/releases expired at 2026-11-01T00:00:00Z"]
    );
    assert_eq!(data.tag("1.0", &pull_roles()).unwrap().role, "targets");
    assert_eq!(data.version("targets/releases"), None);
    assert!(!state.versions.contains_key("targets/releases"));
    // Its expiry does not shorten the data's life: it is not used.
    assert_eq!(data.expires(), crate::clock::parse_rfc3339(FAR).unwrap());
}

#[test]
fn missing_or_badly_signed_delegations_are_skipped() {
    let mut repo = Repo::new(GUN);
    repo.delegate("targets/releases", &[""], bb());
    repo.delegations[0].served = false;
    let (data, _) = first_use(&repo.serve(), GUN).unwrap();
    assert_eq!(data.notes().len(), 1);
    assert!(
        data.notes()[0].ends_with("not found on the notary server"),
        "{:?}",
        data.notes()
    );

    let wanted = roles(&["targets/nope", "targets/nope/deeper", "targets"]);
    let (data, _) = block(update(
        &repo.serve(),
        GUN,
        &RootTrust::FirstUse,
        &wanted,
        &State::default(),
        at(NOW),
    ))
    .unwrap();
    assert!(data
        .notes()
        .contains(&"targets/nope: no such delegation".to_owned()));

    // Signed by a key the parent does not name.
    let mut repo = Repo::new(GUN);
    repo.delegate("targets/releases", &[""], bb());
    let mut fetch = repo.serve();
    let name = consistent_name(&fetch, "targets/releases");
    let v: Value = serde_json::from_slice(&fetch.get(&name)).unwrap();
    let forged = super::testrepo::envelope(&v["signed"], &[&Signer::ecdsa()]);
    // Same bytes cannot be kept, so serve the forged file under the listed name: the hash
    // check catches it first, which is fatal (tampering), not a skip.
    fetch.files.insert(name, Bytes::from(forged));
    let e = first_use(&fetch, GUN).unwrap_err();
    assert_eq!(
        e.to_string(),
        "targets/releases: hash or length differs from snapshot"
    );
}

#[test]
fn delegation_below_threshold_is_a_note() {
    // Listed correctly in the snapshot, but signed by a key the parent does not name.
    let mut repo = Repo::new(GUN);
    repo.delegate("targets/releases", &[""], bb());
    repo.delegations[0].sign_with = Some(Signer::ecdsa());
    let (data, _) = first_use(&repo.serve(), GUN).unwrap();
    assert_eq!(
        data.notes(),
        ["targets/releases: only 0 of 1 required signatures verify"]
    );
    assert_eq!(data.tag("1.0", &pull_roles()).unwrap().role, "targets");
}

#[test]
fn target_without_sha256_is_skipped() {
    let mut repo = Repo::new(GUN);
    repo.targets = json!({
        "1.0": target(&"aa".repeat(32), 100),
        "old": {"hashes": {"sha512": STANDARD.encode([1u8; 64])}, "length": 5},
    });
    let (data, _) = first_use(&repo.serve(), GUN).unwrap();
    assert_eq!(data.tag("old", &pull_roles()), None);
    assert_eq!(
        data.notes(),
        [
            "targets/releases: no such delegation",
            "targets: target old has no valid sha256"
        ]
    );
}

#[test]
fn timestamp_expiry_bounds_the_data() {
    let mut repo = Repo::new(GUN);
    repo.timestamp_expires = "2026-11-27T00:00:00.5+01:00".to_owned();
    let (data, _) = first_use(&repo.serve(), GUN).unwrap();
    assert_eq!(data.expires(), at("2026-11-26T23:00:00.5Z"));
}

#[test]
fn nested_delegation_paths_narrow_down_the_chain() {
    let mut repo = Repo::new(GUN);
    repo.delegate("targets/a", &["v"], json!({}));
    repo.delegate(
        "targets/a/b",
        &["", "v1"],
        json!({
            "v1.0": target(&"bb".repeat(32), 200),
            "v2.0": target(&"cc".repeat(32), 300),
            "x": target(&"dd".repeat(32), 400),
        }),
    );
    let fetch = repo.serve();
    let wanted = roles(&["targets/a/b"]);
    let (data, state) = block(update(
        &fetch,
        GUN,
        &RootTrust::FirstUse,
        &wanted,
        &State::default(),
        at(NOW),
    ))
    .unwrap();
    assert_eq!(data.tag("v1.0", &wanted).unwrap().length, 200);
    assert_eq!(data.tag("v2.0", &wanted), None);
    assert_eq!(data.tag("x", &wanted), None);
    assert_eq!(data.notes().len(), 2, "{:?}", data.notes());
    assert_eq!(state.versions["targets/a"], 1);
    assert_eq!(state.versions["targets/a/b"], 1);
    let asked = fetch.asked();
    let a = asked
        .iter()
        .position(|n| n.starts_with("targets/a."))
        .unwrap();
    let b = asked
        .iter()
        .position(|n| n.starts_with("targets/a/b."))
        .unwrap();
    assert!(a < b, "{asked:?}");

    // A missing link stops the walk: the child is not fetched.
    let wanted = roles(&["targets/x/y"]);
    let fetch = repo.serve();
    let (data, _) = block(update(
        &fetch,
        GUN,
        &RootTrust::FirstUse,
        &wanted,
        &State::default(),
        at(NOW),
    ))
    .unwrap();
    assert_eq!(data.notes(), ["targets/x: no such delegation"]);
    assert!(!fetch.asked().iter().any(|n| n.starts_with("targets/x")));
}

#[test]
fn update_future_is_send() {
    // The server runs updates on a multi-threaded runtime.
    fn assert_send<T: Send>(_: &T) {}
    let fetch = MapFetch::default();
    let wanted = pull_roles();
    let state = State::default();
    let fut = update(&fetch, GUN, &RootTrust::FirstUse, &wanted, &state, at(NOW));
    assert_send(&fut);
}

#[test]
fn state_round_trips_through_json() {
    let (_, state) = first_use(&fixture(SIGNED), SIGNED_GUN).unwrap();
    let text = serde_json::to_string(&state).unwrap();
    let back: State = serde_json::from_str(&text).unwrap();
    assert_eq!(back, state);
    let empty: State = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, State::default());
}

#[test]
fn threshold_above_the_keys_and_duplicate_signatures() {
    let mut repo = Repo::new(GUN);
    let key = repo.root_keys[0].pop().unwrap();
    let doc = repo.root_doc(1, &[&key], 2);
    // Signed twice by the one key: distinct keys count, not signatures.
    repo.roots[0] = super::testrepo::envelope(&doc, &[&key, &key]);
    repo.root_keys[0].push(key);
    let e = first_use(&repo.serve(), GUN).unwrap_err();
    assert_eq!(
        e.to_string(),
        "root: only 1 of 2 required signatures verify"
    );
}

// --- synthetic repositories: RSA keys ------------------------------------------------------

use super::testrepo::{rsa_key, CertHash, RsaScheme};

/// The `keytype` of `id` in a served role file, and the method of its signature there.
fn key_and_method(fetch: &MapFetch, file: &str, keys_in: &str, id: &str) -> (String, String) {
    let listing: Value = serde_json::from_slice(&fetch.get(keys_in)).unwrap();
    let keys = if keys_in == "root.json" {
        &listing["signed"]["keys"]
    } else {
        &listing["signed"]["delegations"]["keys"]
    };
    let v: Value = serde_json::from_slice(&fetch.get(file)).unwrap();
    let sig = v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["keyid"] == id)
        .unwrap();
    (
        keys[id]["keytype"].as_str().unwrap().to_owned(),
        sig["method"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn rsa_x509_root_and_releases_delegation() {
    let mut repo = Repo::with_root_key(Signer::rsa_x509(GUN));
    // Bare `rsa` keys for the other top-level roles, one of them PKCS#1 v1.5.
    repo.targets_key = Signer::rsa();
    repo.targets_key.rsa_scheme = RsaScheme::Pkcs1v15;
    repo.snapshot_key = Signer::rsa();
    repo.rebuild_root();
    repo.delegate_to(
        Signer::rsa_x509("releases-signer"),
        "targets/releases",
        &[""],
        bb(),
    );
    let fetch = repo.serve();

    let root_id = repo.root_keys[0][0].id.clone();
    let rel_id = repo.delegations[0].key.id.clone();
    let tgt_id = repo.targets_key.id.clone();
    let snap_id = repo.snapshot_key.id.clone();
    let kinds = [
        ("root.json", "root.json", &root_id),
        ("targets/releases.json", "targets.json", &rel_id),
        ("targets.json", "root.json", &tgt_id),
        ("snapshot.json", "root.json", &snap_id),
    ]
    .map(|(file, keys_in, id)| key_and_method(&fetch, file, keys_in, id));
    assert_eq!(
        kinds,
        [
            ("rsa-x509", "rsapss"),
            ("rsa-x509", "rsapss"),
            ("rsa", "rsapkcs1v15"),
            ("rsa", "rsapss"),
        ]
        .map(|(k, m)| (k.to_owned(), m.to_owned()))
    );

    let (data, state) = first_use(&fetch, GUN).unwrap();
    let t = data.tag("1.0", &pull_roles()).unwrap();
    assert_eq!(t.role, "targets/releases");
    assert_eq!(t.digest, digest(&format!("sha256:{}", "bb".repeat(32))));
    assert_eq!(t.length, 200);
    assert!(data.notes().is_empty(), "{:?}", data.notes());
    assert_eq!(state.versions["targets/releases"], 1);

    // Pinned by the certificate's key id and by its bare public key's id.
    let parsed = PublicKey::parse(
        &root_id,
        &serde_json::from_value::<KeyJson>(repo.root_keys[0][0].key_json()).unwrap(),
    )
    .unwrap();
    let canonical = parsed.canonical_id();
    assert_ne!(canonical, root_id);
    for pin in [root_id, canonical] {
        let trust = RootTrust::Keys(vec![pin]);
        let (data, _) = run(&fetch, GUN, &trust, &State::default(), at(NOW)).unwrap();
        assert_eq!(
            data.tag("1.0", &pull_roles()).unwrap().role,
            "targets/releases"
        );
    }
}

#[test]
fn rsa_root_certificate_under_2048_bits_is_refused() {
    let key = Signer::rsa_x509_with(GUN, rsa_key(1024), CertHash::Sha256);
    let short = key.id[..8].to_owned();
    let e = first_use(&Repo::with_root_key(key).serve(), GUN).unwrap_err();
    assert!(
        matches!(
            e,
            NotaryError::RootCert {
                source: CertRuleError::WeakRsa(1024),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("root key {short}: RSA key of 1024 bits, at least 2048 required")
    );
}

#[test]
fn sha1_signed_rsa_root_certificate_is_refused() {
    use der::{Decode as _, Encode as _};
    use ring::signature as rs;
    let key = Signer::rsa_x509_with(GUN, rsa_key(2048), CertHash::Sha1);

    // The helper made a genuine SHA-1 certificate: labelled so, and its self-signature
    // verifies as SHA-1 PKCS#1 v1.5 under its own key.
    let pem = STANDARD.decode(&key.public).unwrap();
    let cert = &crate::sigstore::cert::Cert::from_pem_chain(&pem).unwrap()[0];
    let parsed = cert.parsed();
    assert_eq!(
        parsed.signature_algorithm.oid,
        der::oid::db::rfc5912::SHA_1_WITH_RSA_ENCRYPTION
    );
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&cert.spki_der().unwrap())
        .unwrap()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let tbs = parsed.tbs_certificate.to_der().unwrap();
    let sig = parsed.signature.raw_bytes();
    rs::UnparsedPublicKey::new(&rs::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, &spki)
        .verify(&tbs, sig)
        .unwrap();

    let short = key.id[..8].to_owned();
    let e = first_use(&Repo::with_root_key(key).serve(), GUN).unwrap_err();
    assert!(
        matches!(
            e,
            NotaryError::RootCert {
                source: CertRuleError::Sha1,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("root key {short}: certificate is signed with SHA-1")
    );
}

#[test]
fn bare_rsa_root_key_is_not_accepted() {
    // notary's root keys are certificates: a bare `rsa` key fails like a bare `ecdsa` one.
    let e = first_use(&Repo::with_root_key(Signer::rsa()).serve(), GUN).unwrap_err();
    assert!(
        matches!(
            e,
            NotaryError::RootCert {
                source: CertRuleError::NotX509,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn rsa_signature_must_be_the_scheme_its_method_names() {
    let mut repo = Repo::new(GUN);
    repo.delegate_to(
        Signer::rsa_x509("releases-signer"),
        "targets/releases",
        &[""],
        bb(),
    );
    let releases = |repo: &Repo| {
        let (data, _) = first_use(&repo.serve(), GUN).unwrap();
        (
            data.tag("1.0", &pull_roles()).unwrap().role,
            data.notes().to_vec(),
        )
    };
    let below = vec!["targets/releases: only 0 of 1 required signatures verify".to_owned()];

    // notary's schemes verify: PSS with salt 32, and PKCS#1 v1.5 labelled as such.
    for scheme in [RsaScheme::Pss, RsaScheme::PssSalt(32), RsaScheme::Pkcs1v15] {
        repo.delegations[0].key.rsa_scheme = scheme;
        assert_eq!(
            releases(&repo),
            ("targets/releases".to_owned(), vec![]),
            "{scheme:?}"
        );
    }
    // Anything else misses the threshold: the delegation is skipped with a note.
    for scheme in [
        RsaScheme::PssSalt(0),
        RsaScheme::PssSalt(20),
        RsaScheme::PssSalt(64),
        RsaScheme::Pkcs1v15AsPss,
        RsaScheme::PssAsPkcs1v15,
    ] {
        repo.delegations[0].key.rsa_scheme = scheme;
        assert_eq!(
            releases(&repo),
            ("targets".to_owned(), below.clone()),
            "{scheme:?}"
        );
    }

    // For a top-level role the same mismatch is fatal.
    let mut repo = Repo::new(GUN);
    repo.timestamp_key = Signer::rsa();
    repo.timestamp_key.rsa_scheme = RsaScheme::Pkcs1v15AsPss;
    repo.rebuild_root();
    let e = first_use(&repo.serve(), GUN).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timestamp: only 0 of 1 required signatures verify"
    );
    // The root role's too.
    let mut root = Signer::rsa_x509(GUN);
    root.rsa_scheme = RsaScheme::PssSalt(20);
    let e = first_use(&Repo::with_root_key(root).serve(), GUN).unwrap_err();
    assert_eq!(
        e.to_string(),
        "root: only 0 of 1 required signatures verify"
    );
}
