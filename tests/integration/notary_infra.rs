//! Sanity test of the Docker Content Trust infrastructure in `notary_support`: the real
//! notary-signer and notary-server serve what the real notary CLI publishes, in the layout and
//! dialect pullgate's `notary` trust source will read (trust-formats.md §3.1–§3.3, §3.7).
//!
//! One server for the whole scenario keeps it fast: signer plus server answer health checks
//! about 75 ms after spawning (measured on the 2-core test machine), every CLI call takes a
//! few tens of milliseconds, and the whole test runs in under a second.

use std::io::ErrorKind;
use std::net::TcpStream;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::notary_support::*;
use crate::support::*;

const GUN: &str = "127.0.0.1:5000/library/demo";

fn b64_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn hex_of_b64(b64: &str) -> String {
    hex::encode(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_else(|e| panic!("not base64: {b64}: {e}")),
    )
}

/// Asserts `role`'s target `tag` names exactly `manifest` (base64 sha256 and length).
fn assert_target(doc: &Value, tag: &str, manifest: &[u8]) {
    let t = &doc["signed"]["targets"][tag];
    assert_eq!(
        t["hashes"]["sha256"].as_str(),
        Some(b64_sha256(manifest).as_str()),
        "sha256 of {tag} in {doc}"
    );
    assert_eq!(
        t["length"].as_u64(),
        Some(manifest.len() as u64),
        "length of {tag}"
    );
}

#[test]
fn notary_server_serves_what_the_cli_publishes() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&tmp.path().join("ca"));
    let mut server = NotaryServer::start(&tmp.path().join("notary"), &ca);
    eprintln!(
        "notary-signer + notary-server ready in {:?}",
        server.startup
    );
    let cli = NotaryCli::new(&tmp.path().join("cli"), &server, &ca);

    cli.init(GUN);
    let releases = cli.add_releases_delegation(GUN);
    let m1 = TestImage::oci("notary 1.0", "amd64", 0).manifest;
    let m2 = TestImage::docker("notary 2.0", "arm64").manifest;
    cli.sign(GUN, "1.0", &m1, Some(RELEASES));
    cli.sign(GUN, "2.0", &m2, None);

    // Every role is served under its plain name with notary's capitalised `_type`.
    let mut docs = std::collections::BTreeMap::new();
    for (file, ty) in [
        ("root.json", "Root"),
        ("timestamp.json", "Timestamp"),
        ("snapshot.json", "Snapshot"),
        ("targets.json", "Targets"),
        ("targets/releases.json", "Targets"),
    ] {
        let doc = server.fetch_json(GUN, file);
        assert_eq!(doc["signed"]["_type"], ty, "{file}: {doc}");
        assert!(
            doc["signatures"].as_array().is_some_and(|s| !s.is_empty()),
            "{file} unsigned: {doc}"
        );
        docs.insert(file, doc);
    }

    // Tags land in the role they were signed into, as the exact manifest bytes.
    assert_target(&docs["targets/releases.json"], "1.0", &m1);
    assert_target(&docs["targets.json"], "2.0", &m2);
    assert!(docs["targets.json"]["signed"]["targets"]["1.0"].is_null());
    assert!(docs["targets/releases.json"]["signed"]["targets"]["2.0"].is_null());
    assert_eq!(
        cli.lookup(GUN, "1.0"),
        format!("1.0 {} {}", digest_of(&m1), m1.len())
    );

    // The delegation is declared in targets.json with the key id computed here (§3.3), and
    // targets/releases.json is signed by that key.
    let delegations = &docs["targets.json"]["signed"]["delegations"];
    assert_eq!(delegations["roles"][0]["name"], RELEASES, "{delegations}");
    assert_eq!(
        delegations["roles"][0]["keyids"][0],
        releases.key_id.as_str()
    );
    assert_eq!(delegations["roles"][0]["paths"][0], "");
    assert_eq!(delegations["keys"][&releases.key_id]["keytype"], "ecdsa");
    assert_eq!(
        docs["targets/releases.json"]["signatures"][0]["keyid"],
        releases.key_id.as_str()
    );

    // Root: one ecdsa-x509 root key in the client's hands; timestamp and snapshot keys are
    // server-managed ECDSA keys (key_algorithm ecdsa, snapshot rotated to the server).
    let root = &docs["root.json"]["signed"];
    let root_id = cli.root_key_id(GUN);
    assert_eq!(root_id.len(), 64, "{root_id}");
    assert!(root_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(root["keys"][&root_id]["keytype"], "ecdsa-x509");
    for role in ["timestamp", "snapshot"] {
        let id = root["roles"][role]["keyids"][0].as_str().unwrap();
        assert_eq!(root["keys"][id]["keytype"], "ecdsa", "{role} key");
    }

    // Consistent names: timestamp pins snapshot.json, snapshot pins targets/releases, and the
    // pinned file is served under `<role>.<hex sha256>.json` (§3.1).
    let snapshot_bytes = server.fetch(GUN, "snapshot.json");
    let pinned = docs["timestamp.json"]["signed"]["meta"]["snapshot"]["hashes"]["sha256"]
        .as_str()
        .unwrap();
    assert_eq!(pinned, b64_sha256(&snapshot_bytes));
    let releases_pin = docs["snapshot.json"]["signed"]["meta"][RELEASES]["hashes"]["sha256"]
        .as_str()
        .unwrap();
    let by_hash = server.fetch(
        GUN,
        &format!("{RELEASES}.{}.json", hex_of_b64(releases_pin)),
    );
    assert_eq!(by_hash, server.fetch(GUN, "targets/releases.json"));
    assert_eq!(by_hash, cli.fetch(GUN, "targets/releases.json"));

    // A GUN nobody published answers 404 METADATA_NOT_FOUND.
    let (code, body) = server.get_tuf("127.0.0.1:5000/library/unsigned", "root.json");
    assert_eq!(code, 404);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("METADATA_NOT_FOUND"), "{body}");

    // Re-signing a tag to other bytes serves the new hash in a newer version.
    let m3 = TestImage::oci("notary 1.0 rebuilt", "amd64", 0).manifest;
    cli.sign(GUN, "1.0", &m3, Some(RELEASES));
    let rel2 = server.fetch_json(GUN, "targets/releases.json");
    assert_target(&rel2, "1.0", &m3);
    assert!(
        rel2["signed"]["version"].as_u64()
            > docs["targets/releases.json"]["signed"]["version"].as_u64()
    );
    assert_eq!(
        cli.lookup(GUN, "1.0"),
        format!("1.0 {} {}", digest_of(&m3), m3.len())
    );

    // Removing a tag takes it out of the published role.
    cli.remove(GUN, "2.0", None);
    let targets2 = server.fetch_json(GUN, "targets.json");
    assert!(targets2["signed"]["targets"]["2.0"].is_null(), "{targets2}");

    // Stopped: nothing listens on either port any more.
    server.stop();
    for port in [server.port, server.signer_port] {
        let err = TcpStream::connect(("127.0.0.1", port)).map(|_| ());
        assert_eq!(
            err.map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionRefused),
            "port {port} after stop"
        );
    }
    let (code, _) = server.get("/_notary_server/health");
    assert_eq!(code, 0, "health answered after stop");
}
