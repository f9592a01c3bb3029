//! Test support: a map-backed [`Fetch`], the captured fixture repositories, and a signer that
//! builds synthetic notary repositories (roots with x509 keys for the GUN, rotations,
//! timestamps, snapshots, targets and delegations) with keys generated in the test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

use super::{canonical, keys, Fetch, FetchError};

/// Serves files by name; records what was asked for. It does not enforce `limit`, so the
/// library's own cap check is what tests exercise.
#[derive(Debug, Default)]
pub struct MapFetch {
    pub files: BTreeMap<String, Bytes>,
    pub asked: Mutex<Vec<String>>,
}

impl Fetch for MapFetch {
    async fn fetch(
        &self,
        _gun: &str,
        name: &str,
        _limit: usize,
    ) -> Result<Option<Bytes>, FetchError> {
        self.asked.lock().unwrap().push(name.to_owned());
        Ok(self.files.get(name).cloned())
    }
}

impl MapFetch {
    /// Serves `bytes` under the plain name of `role` and its consistent name.
    pub fn put(&mut self, role: &str, bytes: Vec<u8>) {
        let hexsum = hex::encode(Sha256::digest(&bytes));
        let bytes = Bytes::from(bytes);
        self.files
            .insert(format!("{role}.{hexsum}.json"), bytes.clone());
        self.files.insert(format!("{role}.json"), bytes);
    }

    pub fn get(&self, name: &str) -> Vec<u8> {
        self.files[name].to_vec()
    }

    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

pub fn fixture_dir(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/notary")
        .join(rel)
}

/// A captured repository served as notary-server served it: plain and consistent names, and
/// `<version>.root.json` for the current root (VERSIONED_URLS.txt).
pub fn fixture(rel: &str) -> MapFetch {
    let dir = fixture_dir(rel);
    let mut m = MapFetch::default();
    for (file, role) in [
        ("root.json", "root"),
        ("timestamp.json", "timestamp"),
        ("snapshot.json", "snapshot"),
        ("targets.json", "targets"),
        ("targets_releases.json", "targets/releases"),
        ("targets_alice.json", "targets/alice"),
    ] {
        if let Ok(bytes) = std::fs::read(dir.join(file)) {
            if role == "root" {
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                let version = v["signed"]["version"].as_u64().unwrap();
                m.files
                    .insert(format!("{version}.root.json"), Bytes::from(bytes.clone()));
            }
            m.put(role, bytes);
        }
    }
    m
}

/// How an RSA [`Signer`] signs notary metadata. Signing goes through the `rsa` crate, not
/// ring: ring refuses to load keys under 2048 bits and has no PSS salt-length choice, and
/// signing with another implementation than the verifier's (ring) makes the tests a
/// cross-check of the scheme parameters rather than ring agreeing with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    /// `rsapss`: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length 32 (notary's `RSAPSS`).
    Pss,
    /// Labelled `rsapss`, but PSS with this salt length.
    PssSalt(usize),
    /// `rsapkcs1v15`: RSASSA-PKCS1-v1_5 with SHA-256.
    Pkcs1v15,
    /// PKCS#1 v1.5 SHA-256 bytes labelled `rsapss`.
    Pkcs1v15AsPss,
    /// PSS (salt 32) bytes labelled `rsapkcs1v15`.
    PssAsPkcs1v15,
}

/// The hash a test RSA certificate is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertHash {
    Sha256,
    /// `sha1WithRSAEncryption`, which notary refuses for root certificates.
    Sha1,
}

enum SigningKey {
    Ecdsa(EcdsaKeyPair),
    Rsa(rsa::RsaPrivateKey),
}

/// A key that signs like notary: ECDSA P-256 (raw r‖s over SHA-256) as a bare `ecdsa` key
/// or an `ecdsa-x509` certificate, or RSA as a bare `rsa` key or an `rsa-x509` certificate.
pub struct Signer {
    key: SigningKey,
    /// Only used by RSA keys.
    pub rsa_scheme: RsaScheme,
    pub keytype: &'static str,
    pub public: String,
    pub id: String,
}

impl Signer {
    /// A bare `ecdsa` key (base64 SPKI DER).
    pub fn ecdsa() -> Signer {
        let kp = rcgen::KeyPair::generate().unwrap();
        let pair = ring_pair(&kp);
        let public = STANDARD.encode(kp.public_key_der());
        Signer::new(SigningKey::Ecdsa(pair), "ecdsa", public)
    }

    /// An `ecdsa-x509` root key: a self-signed certificate with CN `cn`, valid 2026-2036.
    pub fn x509(cn: &str) -> Signer {
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert = cert_params(cn).self_signed(&kp).unwrap();
        let public = STANDARD.encode(cert.pem());
        Signer::new(SigningKey::Ecdsa(ring_pair(&kp)), "ecdsa-x509", public)
    }

    /// A bare `rsa` key (base64 SPKI DER), 2048 bits, signing with `rsapss`.
    pub fn rsa() -> Signer {
        use rsa::pkcs8::EncodePublicKey as _;
        let key = rsa_key(2048);
        let spki = key.to_public_key().to_public_key_der().unwrap();
        let public = STANDARD.encode(spki.as_bytes());
        Signer::new(SigningKey::Rsa(key), "rsa", public)
    }

    /// An `rsa-x509` key: a self-signed SHA-256 certificate with CN `cn` over a fresh
    /// 2048-bit key, signing with `rsapss`.
    pub fn rsa_x509(cn: &str) -> Signer {
        Signer::rsa_x509_with(cn, rsa_key(2048), CertHash::Sha256)
    }

    /// An `rsa-x509` key for `key` (any size) whose self-signed certificate uses `hash`.
    pub fn rsa_x509_with(cn: &str, key: rsa::RsaPrivateKey, hash: CertHash) -> Signer {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        let pkcs1 = key.to_public_key().to_pkcs1_der().unwrap().into_vec();
        // rcgen's ring backend loads RSA keys through ring, which refuses keys under 2048
        // bits; as a "remote" key rcgen takes any size and leaves the signing to us.
        let remote = RemoteRsa {
            pkcs1,
            key: key.clone(),
        };
        let kp = rcgen::KeyPair::from_remote(Box::new(remote)).unwrap();
        let cert = cert_params(cn).self_signed(&kp).unwrap();
        let der = match hash {
            CertHash::Sha256 => cert.der().to_vec(),
            CertHash::Sha1 => resign_sha1(cert.der(), &key),
        };
        let pem = {
            use der::{Decode as _, EncodePem as _};
            x509_cert::Certificate::from_der(&der)
                .unwrap()
                .to_pem(der::pem::LineEnding::LF)
                .unwrap()
        };
        let public = STANDARD.encode(pem);
        Signer::new(SigningKey::Rsa(key), "rsa-x509", public)
    }

    fn new(key: SigningKey, keytype: &'static str, public: String) -> Signer {
        let id = keys::key_id(keytype, &public);
        Signer {
            key,
            rsa_scheme: RsaScheme::Pss,
            keytype,
            public,
            id,
        }
    }

    pub fn key_json(&self) -> Value {
        json!({"keytype": self.keytype, "keyval": {"private": null, "public": self.public}})
    }

    pub fn sign(&self, message: &[u8]) -> Value {
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
        let (method, sig) = match &self.key {
            SigningKey::Ecdsa(pair) => {
                let sig = pair.sign(&SystemRandom::new(), message).unwrap();
                ("ecdsa", sig.as_ref().to_vec())
            }
            SigningKey::Rsa(key) => {
                let pss = |salt| {
                    rsa::pss::SigningKey::<Sha256>::new_with_salt_len(key.clone(), salt)
                        .sign_with_rng(&mut rand_core::OsRng, message)
                        .to_vec()
                };
                let v15 = || {
                    rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
                        .sign_with_rng(&mut rand_core::OsRng, message)
                        .to_vec()
                };
                match self.rsa_scheme {
                    RsaScheme::Pss => ("rsapss", pss(32)),
                    RsaScheme::PssSalt(salt) => ("rsapss", pss(salt)),
                    RsaScheme::Pkcs1v15 => ("rsapkcs1v15", v15()),
                    RsaScheme::Pkcs1v15AsPss => ("rsapss", v15()),
                    RsaScheme::PssAsPkcs1v15 => ("rsapkcs1v15", pss(32)),
                }
            }
        };
        json!({"keyid": self.id, "method": method, "sig": STANDARD.encode(sig)})
    }
}

/// A fresh RSA key of `bits`. With num-bigint-dig optimised in the dev profile (Cargo.toml) a
/// 2048-bit key takes about a quarter of a second here, so keys are not cached across tests:
/// every signer gets its own key, and tests that tell keys apart can rely on that.
pub fn rsa_key(bits: usize) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap()
}

/// Parameters shared by the test certificates: CN `cn`, a leaf, valid 2026-2036.
fn cert_params(cn: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.not_before = rcgen::date_time_ymd(2026, 1, 1);
    p.not_after = rcgen::date_time_ymd(2036, 1, 1);
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p
}

/// An RSA key rcgen signs certificates with (PKCS#1 v1.5, SHA-256).
struct RemoteRsa {
    /// PKCS#1 `RSAPublicKey` DER, which rcgen wraps into the SPKI.
    pkcs1: Vec<u8>,
    key: rsa::RsaPrivateKey,
}

impl rcgen::RemoteKeyPair for RemoteRsa {
    fn public_key(&self) -> &[u8] {
        &self.pkcs1
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        Ok(rsa::pkcs1v15::SigningKey::<Sha256>::new(self.key.clone())
            .sign(msg)
            .to_vec())
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// `cert` re-signed with `sha1WithRSAEncryption` (rcgen has no SHA-1 algorithm): both
/// algorithm identifiers rewritten, the TBS re-hashed with SHA-1 and re-signed, so the
/// certificate is a genuine SHA-1 certificate and not just a relabelled one.
fn resign_sha1(cert: &[u8], key: &rsa::RsaPrivateKey) -> Vec<u8> {
    use der::{Decode as _, Encode as _};
    let mut c = x509_cert::Certificate::from_der(cert).unwrap();
    let sha1_rsa = der::oid::db::rfc5912::SHA_1_WITH_RSA_ENCRYPTION;
    c.tbs_certificate.signature.oid = sha1_rsa;
    c.signature_algorithm.oid = sha1_rsa;
    let tbs = c.tbs_certificate.to_der().unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &tbs);
    // DigestInfo prefix for SHA-1 (RFC 8017 §9.2 note 1).
    let prefix = hex::decode("3021300906052b0e03021a05000414").unwrap();
    let scheme = rsa::Pkcs1v15Sign {
        hash_len: Some(20),
        prefix: prefix.into_boxed_slice(),
    };
    let sig = key.sign(scheme, digest.as_ref()).unwrap();
    c.signature = der::asn1::BitString::from_bytes(&sig).unwrap();
    c.to_der().unwrap()
}

fn ring_pair(kp: &rcgen::KeyPair) -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &kp.serialize_der(),
        &SystemRandom::new(),
    )
    .unwrap()
}

/// An envelope over `signed`, signed by each of `by`, pretty-printed (notary's served files
/// are not canonical either).
pub fn envelope(signed: &Value, by: &[&Signer]) -> Vec<u8> {
    let canon = canonical(signed).unwrap();
    let sigs: Vec<Value> = by.iter().map(|s| s.sign(&canon)).collect();
    serde_json::to_vec_pretty(&json!({"signed": signed, "signatures": sigs})).unwrap()
}

/// Hashes and length of a file, as a parent lists it.
pub fn meta(bytes: &[u8]) -> Value {
    json!({
        "hashes": {
            "sha256": STANDARD.encode(Sha256::digest(bytes)),
            "sha512": STANDARD.encode(Sha512::digest(bytes)),
        },
        "length": bytes.len(),
    })
}

pub const FAR: &str = "2030-01-01T00:00:00.123456789-05:00";

/// A target entry naming a manifest by its sha256 hex.
pub fn target(sha256_hex: &str, length: u64) -> Value {
    json!({"hashes": {"sha256": STANDARD.encode(hex::decode(sha256_hex).unwrap())}, "length": length})
}

/// A delegation below `targets`.
pub struct Delegation {
    pub name: String,
    pub key: Signer,
    pub paths: Vec<String>,
    pub targets: Value,
    pub version: u64,
    pub expires: String,
    /// Served at all (a 404 otherwise).
    pub served: bool,
    /// Signs the file instead of `key` (which the parent still lists).
    pub sign_with: Option<Signer>,
}

/// A synthetic repository: every root version, the other role keys, and the content.
pub struct Repo {
    /// roots[i] is root version i+1: its root keys, and the bytes served.
    pub root_keys: Vec<Vec<Signer>>,
    pub roots: Vec<Vec<u8>>,
    pub targets_key: Signer,
    pub snapshot_key: Signer,
    pub timestamp_key: Signer,
    pub targets: Value,
    pub delegations: Vec<Delegation>,
    pub versions: [u64; 3],
    pub timestamp_expires: String,
}

impl Repo {
    /// Root v1 with one x509 key for `gun`; tag `1.0` -> `aa…aa` (100 bytes) in `targets`.
    pub fn new(gun: &str) -> Repo {
        Repo::with_root_key(Signer::x509(gun))
    }

    /// Like [`Repo::new`], with `key` as the one root key.
    pub fn with_root_key(key: Signer) -> Repo {
        let mut repo = Repo {
            root_keys: Vec::new(),
            roots: Vec::new(),
            targets_key: Signer::ecdsa(),
            snapshot_key: Signer::ecdsa(),
            timestamp_key: Signer::ecdsa(),
            targets: json!({"1.0": target(&"aa".repeat(32), 100)}),
            delegations: Vec::new(),
            versions: [1, 1, 1],
            timestamp_expires: FAR.to_owned(),
        };
        let root = repo.root_doc(1, &[&key], 1);
        let bytes = envelope(&root, &[&key]);
        repo.root_keys.push(vec![key]);
        repo.roots.push(bytes);
        repo
    }

    /// The `signed` part of a root with these root keys and the repo's other keys.
    pub fn root_doc(&self, version: u64, root_keys: &[&Signer], threshold: u64) -> Value {
        let mut keys = serde_json::Map::new();
        for k in root_keys.iter().copied().chain([
            &self.targets_key,
            &self.snapshot_key,
            &self.timestamp_key,
        ]) {
            keys.insert(k.id.clone(), k.key_json());
        }
        let ids = |ks: &[&Signer]| ks.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
        json!({
            "_type": "Root", "version": version, "expires": FAR, "consistent_snapshot": false,
            "keys": keys,
            "roles": {
                "root": {"keyids": ids(root_keys), "threshold": threshold},
                "targets": {"keyids": [self.targets_key.id], "threshold": 1},
                "snapshot": {"keyids": [self.snapshot_key.id], "threshold": 1},
                "timestamp": {"keyids": [self.timestamp_key.id], "threshold": 1},
            }
        })
    }

    /// Rebuilds and re-signs root v1 (the only version) after the role keys were replaced.
    pub fn rebuild_root(&mut self) {
        assert_eq!(self.roots.len(), 1, "only for a repository with one root");
        let keys: Vec<&Signer> = self.root_keys[0].iter().collect();
        let doc = self.root_doc(1, &keys, 1);
        self.roots[0] = envelope(&doc, &keys);
    }

    /// Adds root version n+1 with `new_keys`, signed by the previous root keys (if
    /// `by_old`) and the new ones.
    pub fn rotate_root(&mut self, new_keys: Vec<Signer>, by_old: bool) {
        let version = self.roots.len() as u64 + 1;
        let new_refs: Vec<&Signer> = new_keys.iter().collect();
        let doc = self.root_doc(version, &new_refs, 1);
        let mut by: Vec<&Signer> = Vec::new();
        if by_old {
            by.extend(self.root_keys.last().unwrap().iter());
        }
        by.extend(new_refs.iter().copied());
        let bytes = envelope(&doc, &by);
        self.roots.push(bytes);
        self.root_keys.push(new_keys);
    }

    pub fn delegate(&mut self, name: &str, paths: &[&str], targets: Value) {
        self.delegate_to(Signer::ecdsa(), name, paths, targets);
    }

    /// A delegation whose one key is `key`.
    pub fn delegate_to(&mut self, key: Signer, name: &str, paths: &[&str], targets: Value) {
        self.delegations.push(Delegation {
            name: name.to_owned(),
            key,
            paths: paths.iter().map(|p| p.to_string()).collect(),
            targets,
            version: 1,
            expires: FAR.to_owned(),
            served: true,
            sign_with: None,
        });
    }

    /// Everything signed and served as notary-server would.
    pub fn serve(&self) -> MapFetch {
        let mut m = MapFetch::default();
        for (i, root) in self.roots.iter().enumerate() {
            m.files
                .insert(format!("{}.root.json", i + 1), Bytes::from(root.clone()));
        }
        let root = self.roots.last().unwrap().clone();
        m.put("root", root.clone());

        let mut snap_meta = serde_json::Map::new();
        snap_meta.insert("root".to_owned(), meta(&root));
        // Each role's `delegations` names its direct children (keys and paths; no hashes,
        // those are the snapshot's).
        let children = |parent: &str| {
            let mut keys = serde_json::Map::new();
            let mut roles = Vec::new();
            for d in self.delegations.iter() {
                if super::roles::parent(&d.name) == Some(parent) {
                    keys.insert(d.key.id.clone(), d.key.key_json());
                    roles.push(json!({"name": d.name, "keyids": [d.key.id], "threshold": 1, "paths": d.paths}));
                }
            }
            json!({"keys": keys, "roles": roles})
        };
        for d in &self.delegations {
            let doc = json!({"_type": "Targets", "version": d.version, "expires": d.expires,
                "targets": d.targets, "delegations": children(&d.name)});
            let bytes = envelope(&doc, &[d.sign_with.as_ref().unwrap_or(&d.key)]);
            snap_meta.insert(d.name.clone(), meta(&bytes));
            if d.served {
                m.put(&d.name, bytes);
            }
        }
        let targets = json!({"_type": "Targets", "version": self.versions[0], "expires": FAR,
            "targets": self.targets,
            "delegations": children("targets")});
        let targets = envelope(&targets, &[&self.targets_key]);
        snap_meta.insert("targets".to_owned(), meta(&targets));
        m.put("targets", targets);

        let snapshot = json!({"_type": "Snapshot", "version": self.versions[1], "expires": FAR,
            "meta": snap_meta});
        let snapshot = envelope(&snapshot, &[&self.snapshot_key]);
        let ts = json!({"_type": "Timestamp", "version": self.versions[2],
            "expires": self.timestamp_expires, "meta": {"snapshot": meta(&snapshot)}});
        m.put("snapshot", snapshot);
        m.put("timestamp", envelope(&ts, &[&self.timestamp_key]));
        m
    }
}
