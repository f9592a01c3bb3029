//! The `cosign-key` trust source: cosign signatures by one of the configured public keys,
//! found at the image's `sha256-<hex>.sig` tag (trust-formats.md §1, algorithm §1.8) or in
//! Sigstore bundles signed with the key (cosign v3 `sign --key`, §2.8, §2.9), looked for
//! concurrently as the keyless source does (`search`).
//!
//! For a manifest digest D: read the signature manifest at D's tag (404 = no signature), then
//! for each layer in order — fetch the payload blob (its sha256 must be the layer digest),
//! verify the signature annotation over those exact bytes with each trusted key, and only then
//! read the signed payload, which must be a cosign image signature for D. The first layer that
//! passes every step verifies the image; several bad layers before it do no harm. When none
//! passes, the failure says what each layer was and why it failed, in short.
//!
//! A key-signed bundle is checked like a `.sig` signature: the key's signature over the exact
//! content (the manifest digest, or a DSSE statement naming it with an accepted predicate
//! type). With `trusted_root` set, its transparency-log entries and timestamps must also
//! verify against that root, as `cosign verify --key` does with the log.
//!
//! Modules: [`keys`] (PEM public keys, signature schemes), [`sig_tag`] (the `.sig` tag and its
//! blobs), [`bundles`] (referrers and the fallback tag), [`search`] (both places at once, for
//! both cosign sources), [`simple_signing`] (the payload), [`keyless`] (the keyless source).

pub mod bundles;
pub mod keyless;
pub mod keys;
pub mod search;
pub mod sig_tag;
pub mod simple_signing;

use std::path::{Path, PathBuf};

use crate::clock::SharedClock;
use crate::config::TrustKind;
use crate::registry::Digest;
use crate::sigstore::bundle::{Bundle, Material};
use crate::sigstore::trusted_root::{TrustedRoot, TrustedRootError};
use crate::sigstore::verify::{self, Artifact, Policy, VerifyError};
use crate::trust::{Failure, Subject, Verified};
use keys::{CosignPublicKey, KeyError, KeyId};
use search::{Checker, Place};
use sig_tag::{LayerError, RegistryStore, Store};
use simple_signing::PayloadError;

/// A failure reason lists at most this many distinct layer failures.
const MAX_REASONS: usize = 4;

/// One configured `cosign-key` source.
pub struct CosignKeySource {
    name: String,
    keys: Vec<(CosignPublicKey, PathBuf)>,
    /// When set, a key-signed bundle's log entries and timestamps must verify against it
    /// (`cosign verify --key` with the transparency log); when not, the key's signature over
    /// the exact content is what counts, as for a `.sig` signature.
    root: Option<(TrustedRoot, PathBuf)>,
    clock: SharedClock,
}

#[derive(Debug, thiserror::Error)]
pub enum CosignKeySetupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("trusted root {path}: {source}")]
    Root {
        path: String,
        source: TrustedRootError,
    },
    #[error("trusted root {0} has no transparency log")]
    NoLog(String),
}

/// Why one signature layer does not vouch for the manifest.
#[derive(Debug, thiserror::Error)]
pub enum LayerFailure {
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// No trusted key verifies the signature over the payload: another key made it, or the
    /// signature or payload was altered (the two cannot be told apart).
    #[error("signed by an untrusted key")]
    UntrustedKey,
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

// === impl CosignKeySource ===

impl CosignKeySource {
    /// Loads every key file and the trusted root, if any; a file that is not a usable public
    /// key or trusted root is a configuration error.
    pub fn new(
        name: &str,
        key_files: &[PathBuf],
        trusted_root: Option<&Path>,
        clock: SharedClock,
    ) -> Result<CosignKeySource, CosignKeySetupError> {
        let keys = key_files
            .iter()
            .map(|p| Ok((CosignPublicKey::load(p)?, p.clone())))
            .collect::<Result<Vec<_>, KeyError>>()?;
        let root = match trusted_root {
            None => None,
            Some(path) => {
                let shown = path.display().to_string();
                let root = TrustedRoot::load(path).map_err(|source| CosignKeySetupError::Root {
                    path: shown.clone(),
                    source,
                })?;
                if root.tlogs.is_empty() {
                    return Err(CosignKeySetupError::NoLog(shown));
                }
                Some((root, path.to_path_buf()))
            }
        };
        Ok(CosignKeySource {
            name: name.to_owned(),
            keys,
            root,
            clock,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line for `check-config`: the keys, by id and type, and how bundles are checked.
    pub fn status(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|(k, p)| format!("key:{} ({}, {})", k.id().short(), k.kind(), p.display()))
            .collect();
        let bundles = match &self.root {
            Some((_, p)) => format!("bundles logged per {}", p.display()),
            None => "bundles by signature alone".to_owned(),
        };
        format!(
            "cosign signatures (.sig tag, {bundles}) by {}: {}",
            if keys.len() == 1 { "1 key" } else { "any of" },
            keys.join(", ")
        )
    }

    /// Verifies `s` with the signatures in its signature repository, fetched through that
    /// repository's upstream.
    pub async fn verify(&self, s: &Subject<'_>) -> Result<Verified, Failure> {
        let elsewhere = s.elsewhere();
        match self
            .verify_from(
                &RegistryStore::new(s.signatures),
                s.digest,
                s.predicate_types,
            )
            .await
        {
            Ok(v) => Ok(match elsewhere {
                Some(repo) => Verified {
                    note: Some(match &v.note {
                        Some(n) => format!("{n} in {repo}"),
                        None => format!("signature in {repo}"),
                    }),
                    ..v
                },
                None => v,
            }),
            Err(f) => Err(Failure::new(
                &self.name,
                search::located(f.reason().to_owned(), elsewhere),
            )),
        }
    }

    /// Verifies `digest` with the signatures `store` holds.
    async fn verify_from(
        &self,
        store: &(impl Store + Sync),
        digest: &Digest,
        accepted: &[String],
    ) -> Result<Verified, Failure> {
        let (id, place) = search::search(self, store, digest, accepted)
            .await
            .map_err(|why| Failure::new(&self.name, why))?;
        let note = match place {
            Place::SigTag => None,
            Place::Bundle => Some("bundle".to_owned()),
        };
        Ok(Verified::new(
            &self.name,
            TrustKind::CosignKey,
            &format!("key:{}", id.short()),
            note,
        ))
    }
}

impl Checker for CosignKeySource {
    type Proof = KeyId;
    type LayerError = LayerFailure;

    /// Checks one layer: payload blob, signature by a trusted key, then the signed payload.
    async fn check_layer<S: Store + Sync>(
        &self,
        store: &S,
        layer: &sig_tag::SignatureLayer,
        digest: &Digest,
    ) -> Result<KeyId, LayerFailure> {
        let signature = layer.signature()?;
        let payload = layer.payload(store).await?;
        // The payload is parsed only once a trusted key vouches for its bytes.
        let key = self
            .keys
            .iter()
            .map(|(k, _)| k)
            .find(|k| k.verify(&payload, &signature).is_some())
            .ok_or(LayerFailure::UntrustedKey)?;
        simple_signing::check(&payload, digest)?;
        Ok(key.id().clone())
    }

    /// A key-signed bundle (cosign v3 `sign --key`): the content signed by a trusted key, then,
    /// with a trusted root, its log entries and times checked for that key.
    fn check_bundle(
        &self,
        bundle: &Bundle,
        digest: &Digest,
        accepted: &[String],
    ) -> Result<KeyId, String> {
        if !matches!(bundle.material, Material::PublicKey { .. }) {
            return Err("carries a certificate, not a key signature (keyless?)".to_owned());
        }
        let sha = digest
            .sha256_bytes()
            .ok_or_else(|| "only sha256 manifests can be checked".to_owned())?;
        let artifact = Artifact::Sha256(sha);
        // The key hint is unauthenticated: each trusted key is tried on the signature.
        let mut signed = None;
        for (key, _) in &self.keys {
            match verify::verify_content(bundle, artifact, key) {
                Ok(statement) => {
                    signed = Some((key, statement));
                    break;
                }
                Err(VerifyError::Signature(_)) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        let (key, statement) = signed.ok_or_else(|| "signed by an untrusted key".to_owned())?;
        if let Some((root, _)) = &self.root {
            verify::verify(bundle, artifact, Policy::Key(key), root, self.clock.now())
                .map_err(|e| e.to_string())?;
        }
        search::accepted_statement(statement.as_ref(), accepted)?;
        Ok(key.id().clone())
    }
}

/// The reason for a denial: the single failure, or the distinct ones with their counts.
pub(crate) fn summarise(failures: &[String]) -> String {
    if let [only] = failures {
        return only.clone();
    }
    let mut distinct: Vec<(&str, usize)> = Vec::new();
    for f in failures {
        match distinct.iter_mut().find(|(s, _)| *s == f.as_str()) {
            Some((_, n)) => *n += 1,
            None => distinct.push((f, 1)),
        }
    }
    let mut parts: Vec<String> = distinct
        .iter()
        .take(MAX_REASONS)
        .map(|(s, n)| match n {
            1 => (*s).to_owned(),
            // ASCII only: the reason also goes into the HTTP/1 status line.
            n => format!("{s} (x{n})"),
        })
        .collect();
    if distinct.len() > MAX_REASONS {
        parts.push(format!(
            "{} more kinds of failure",
            distinct.len() - MAX_REASONS
        ));
    }
    format!(
        "{} signatures, none valid: {}",
        failures.len(),
        parts.join(", ")
    )
}

/// For tests elsewhere in the crate: a source from keys already loaded.
#[cfg(test)]
fn source_with(name: &str, keys: Vec<CosignPublicKey>) -> CosignKeySource {
    CosignKeySource {
        name: name.to_owned(),
        keys: keys
            .into_iter()
            .map(|k| (k, PathBuf::from("test.pub")))
            .collect(),
        root: None,
        clock: std::sync::Arc::new(crate::clock::SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use super::keys::tests::shared;
    use super::sig_tag::{FetchError, SIGNATURE_ANNOTATION};
    use super::*;
    use base64::Engine as _;
    use bytes::Bytes;
    use p256::ecdsa::signature::Signer as _;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Signature manifests and blobs in memory, standing in for a registry; counts blob reads.
    #[derive(Default)]
    struct MapStore {
        manifests: HashMap<String, Vec<u8>>,
        blobs: HashMap<String, Vec<u8>>,
        blob_reads: Mutex<usize>,
    }

    impl Store for MapStore {
        async fn manifest(
            &self,
            tag: &str,
            _accept: &'static str,
            limit: usize,
        ) -> Result<Option<Bytes>, FetchError> {
            let m = self.manifests.get(tag).map(|b| Bytes::from(b.clone()));
            assert!(m.as_ref().is_none_or(|b| b.len() <= limit));
            Ok(m)
        }

        /// Like distribution 2.8: no referrers API.
        async fn referrers(
            &self,
            _digest: &Digest,
            _artifact_type: &str,
            _limit: usize,
        ) -> Result<Option<Bytes>, FetchError> {
            Ok(None)
        }

        async fn blob(&self, digest: &Digest, limit: usize) -> Result<Bytes, FetchError> {
            *self.blob_reads.lock().unwrap() += 1;
            match self.blobs.get(&digest.to_string()) {
                Some(b) if b.len() <= limit => Ok(Bytes::from(b.clone())),
                Some(_) => Err(FetchError::Status {
                    what: "too large".into(),
                    status: http::StatusCode::PAYLOAD_TOO_LARGE,
                }),
                None => Err(FetchError::Status {
                    what: format!("blob {digest}"),
                    status: http::StatusCode::NOT_FOUND,
                }),
            }
        }
    }

    fn clock() -> SharedClock {
        std::sync::Arc::new(crate::clock::SystemClock)
    }

    fn key(rel: &str) -> CosignPublicKey {
        CosignPublicKey::from_pem(&shared(rel), rel).unwrap()
    }

    fn digest(s: &str) -> Digest {
        s.parse().unwrap()
    }

    /// A store holding the lab fixture `name` (`../shared/testdata/cosign/NAME.*`) as the
    /// signature of `image`.
    fn fixture_store(name: &str, image: &Digest) -> MapStore {
        let manifest = shared(&format!("cosign/{name}.sig-manifest.json"));
        let payload = shared(&format!("cosign/{name}.payload.json"));
        let mut s = MapStore::default();
        s.manifests.insert(sig_tag::tag_for(image), manifest);
        s.blobs
            .insert(Digest::sha256_of(&payload).to_string(), payload);
        s
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    const SIGNED_COSIGN: &str =
        "sha256:948320d55ecc8c7d965fe2f481436df7244d61af4fd23dc03d1e0069b8f2fe21";
    const MULTIARCH: &str =
        "sha256:0e99dcd2b2ff09b6a813f0f825170197d74669ae959a1fabf82d99d86ce1948d";
    const WRONGKEY: &str =
        "sha256:ad2034d7ca216892aa6b75c1f4f010025f3b84234bcd11fe36bb07dcacc23b0c";
    /// `hello`'s digest: what the sigstore-rs signature is for.
    const HELLO: &str = "sha256:0e63a28d1cf8cf7de13e613ece38991986fbe1248ca4fef8af2c926a2e8a33ab";

    #[test]
    fn lab_signatures_verify_with_the_key_that_made_them_and_only_that_key() {
        let lab = key("cosign/cosign.pub");
        let lab_id = format!("key:{}", lab.id().short());
        let attacker = key("cosign/cosign-attacker.pub");
        let attacker_id = format!("key:{}", attacker.id().short());
        let trusting_lab = source_with("lab", vec![lab]);
        let trusting_attacker = source_with("attacker", vec![attacker]);
        let cases = [
            ("signed-cosign", SIGNED_COSIGN),
            ("multiarch", MULTIARCH),
            ("sigstore-rs-signed", HELLO),
        ];
        for (name, d) in cases {
            let store = fixture_store(name, &digest(d));
            let v = block_on(trusting_lab.verify_from(&store, &digest(d), &[]))
                .unwrap_or_else(|f| panic!("{name}: {f}"));
            assert_eq!(v.identity(), lab_id, "{name}");
            assert_eq!(v.kind(), TrustKind::CosignKey);
            let f = block_on(trusting_attacker.verify_from(&store, &digest(d), &[])).unwrap_err();
            assert_eq!(f.reason(), ".sig: signed by an untrusted key", "{name}");
        }
        let store = fixture_store("cosign-wrongkey", &digest(WRONGKEY));
        let f = block_on(trusting_lab.verify_from(&store, &digest(WRONGKEY), &[])).unwrap_err();
        assert_eq!(f.to_string(), "lab: .sig: signed by an untrusted key");
        let v = block_on(trusting_attacker.verify_from(&store, &digest(WRONGKEY), &[])).unwrap();
        assert_eq!(v.identity(), attacker_id);
        // Any one of several keys suffices.
        let both = source_with(
            "both",
            vec![key("cosign/cosign-attacker.pub"), key("cosign/cosign.pub")],
        );
        let store = fixture_store("signed-cosign", &digest(SIGNED_COSIGN));
        assert_eq!(
            block_on(both.verify_from(&store, &digest(SIGNED_COSIGN), &[]))
                .unwrap()
                .identity(),
            lab_id
        );
    }

    #[test]
    fn a_valid_signature_for_another_image_does_not_verify_this_one() {
        // signed-cosign's signature served under hello's signature tag.
        let s = source_with("lab", vec![key("cosign/cosign.pub")]);
        let store = fixture_store("signed-cosign", &digest(HELLO));
        let f = block_on(s.verify_from(&store, &digest(HELLO), &[])).unwrap_err();
        assert_eq!(
            f.reason(),
            format!(".sig: signature payload is for {SIGNED_COSIGN} not {HELLO}")
        );
    }

    #[test]
    fn keys_load_from_files_and_show_their_ids_and_a_bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("cosign.pub");
        std::fs::write(&lab, shared("cosign/cosign.pub")).unwrap();
        let s = CosignKeySource::new("lab", std::slice::from_ref(&lab), None, clock()).unwrap();
        assert_eq!(s.name(), "lab");
        let id = key("cosign/cosign.pub").id().short().to_owned();
        assert_eq!(
            s.status(),
            format!(
                "cosign signatures (.sig tag, bundles by signature alone) by 1 key: key:{id} (ecdsa-p256, {})",
                lab.display()
            )
        );
        let junk = dir.path().join("junk.pub");
        std::fs::write(&junk, "junk").unwrap();
        let e = CosignKeySource::new("lab", &[lab, junk.clone()], None, clock())
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with(&format!("{}: ", junk.display())), "{e}");
    }

    #[test]
    fn no_signature_tag_is_no_signature() {
        let s = source_with("lab", vec![key("cosign/cosign.pub")]);
        let f = block_on(s.verify_from(&MapStore::default(), &digest(HELLO), &[])).unwrap_err();
        assert_eq!(f.reason(), "no signature");
    }

    // === Generated signatures ===

    /// A signer with a fresh P-256 key, making cosign-format layers.
    struct Signer {
        sk: p256::ecdsa::SigningKey,
    }

    impl Signer {
        fn new() -> Signer {
            Signer {
                sk: p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
            }
        }

        fn public(&self) -> CosignPublicKey {
            use spki::EncodePublicKey as _;
            let der = p256::PublicKey::from(self.sk.verifying_key())
                .to_public_key_der()
                .unwrap();
            CosignPublicKey::from_spki_der(der.as_bytes(), "test.pub").unwrap()
        }

        fn sign(&self, payload: &[u8]) -> String {
            let sig: p256::ecdsa::Signature = self.sk.sign(payload);
            base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
        }
    }

    fn payload_for(d: &str, kind: &str) -> Vec<u8> {
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"r.example/app"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"{kind}"}},"optional":null}}"#).into_bytes()
    }

    /// One signature layer as a test writes it.
    struct Layer {
        media_type: &'static str,
        /// The blob the registry serves.
        blob: Vec<u8>,
        /// The digest and size the descriptor claims (default: the blob's).
        claimed: Option<(Digest, u64)>,
        signature: Option<String>,
    }

    impl Layer {
        fn signed(signer: &Signer, payload: Vec<u8>) -> Layer {
            Layer {
                media_type: simple_signing::MEDIA_TYPE,
                signature: Some(signer.sign(&payload)),
                blob: payload,
                claimed: None,
            }
        }
    }

    fn store_with(image: &Digest, layers: &[Layer]) -> MapStore {
        let mut s = MapStore::default();
        let mut descriptors = Vec::new();
        for l in layers {
            let (d, size) = l
                .claimed
                .clone()
                .unwrap_or_else(|| (Digest::sha256_of(&l.blob), l.blob.len() as u64));
            s.blobs.insert(d.to_string(), l.blob.clone());
            let mut desc = serde_json::json!({
                "mediaType": l.media_type, "digest": d.to_string(), "size": size,
            });
            if let Some(sig) = &l.signature {
                desc["annotations"] = serde_json::json!({ SIGNATURE_ANNOTATION: sig });
            }
            descriptors.push(desc);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256_of(b"{}").to_string(), "size": 2},
            "layers": descriptors,
        });
        s.manifests.insert(
            sig_tag::tag_for(image),
            serde_json::to_vec(&manifest).unwrap(),
        );
        s
    }

    const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const TYPE: &str = simple_signing::SIGNATURE_TYPE;

    #[test]
    fn each_way_a_signature_can_be_wrong_is_refused_with_its_reason() {
        let signer = Signer::new();
        let good = || Layer::signed(&signer, payload_for(IMAGE, TYPE));
        let tampered_payload = {
            let mut l = good();
            // Re-hashed by the attacker so the descriptor matches: only the signature can tell.
            l.blob = payload_for(OTHER, TYPE);
            l
        };
        let tampered_signature = {
            let mut l = good();
            let mut sig = base64::engine::general_purpose::STANDARD
                .decode(l.signature.as_ref().unwrap())
                .unwrap();
            let last = sig.len() - 1;
            sig[last] ^= 1;
            l.signature = Some(base64::engine::general_purpose::STANDARD.encode(sig));
            l
        };
        let wrong_blob = {
            let mut l = good();
            // The descriptor names the signed payload; the registry serves other bytes.
            l.claimed = Some((Digest::sha256_of(&l.blob), l.blob.len() as u64));
            l.blob = payload_for(OTHER, TYPE);
            l
        };
        let big = format!(
            r#"{{"critical":{{"image":{{"docker-manifest-digest":"{IMAGE}"}},"type":"{TYPE}"}},"optional":{{"pad":"{}"}}}}"#,
            "x".repeat(sig_tag::MAX_PAYLOAD_BYTES as usize)
        );
        let oversized_len = big.len();
        let oversized = Layer::signed(&signer, big.into_bytes());
        let unsigned = {
            let mut l = good();
            l.signature = None;
            l
        };
        let other_media_type = {
            let mut l = good();
            l.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
            l
        };
        let cases: Vec<(&str, Vec<Layer>, String)> = vec![
            (
                "payload for another digest",
                vec![Layer::signed(&signer, payload_for(OTHER, TYPE))],
                format!(".sig: signature payload is for {OTHER} not {IMAGE}"),
            ),
            (
                "wrong type string",
                vec![Layer::signed(
                    &signer,
                    payload_for(IMAGE, "cosign container image attestation"),
                )],
                ".sig: signature payload type is \"cosign container image attestation\", not \"cosign container image signature\"".to_owned(),
            ),
            (
                "tampered payload",
                vec![tampered_payload],
                ".sig: signed by an untrusted key".to_owned(),
            ),
            (
                "tampered signature",
                vec![tampered_signature],
                ".sig: signed by an untrusted key".to_owned(),
            ),
            (
                "blob whose digest does not match its layer",
                vec![wrong_blob],
                format!(
                    ".sig: payload blob hashes to {}, not its layer digest {}",
                    Digest::sha256_of(&payload_for(OTHER, TYPE)),
                    Digest::sha256_of(&payload_for(IMAGE, TYPE))
                ),
            ),
            (
                "oversized payload",
                vec![oversized],
                format!(".sig: payload of {oversized_len} bytes is over the 65536-byte limit"),
            ),
            (
                "no signature annotation",
                vec![unsigned],
                format!(".sig: no {SIGNATURE_ANNOTATION} annotation"),
            ),
            (
                "not a simple-signing layer",
                vec![other_media_type],
                ".sig: layer of type application/vnd.oci.image.layer.v1.tar+gzip is not a simple-signing signature".to_owned(),
            ),
            (
                "too many layers, even with a valid one among them",
                (0..=sig_tag::MAX_LAYERS).map(|_| good()).collect(),
                format!(
                    "signature tag {} has 65 layers, more than the 64 read",
                    sig_tag::tag_for(&digest(IMAGE))
                ),
            ),
            (
                "empty signature manifest",
                vec![],
                format!(
                    "no signature (signature tag {} has no layers)",
                    sig_tag::tag_for(&digest(IMAGE))
                ),
            ),
        ];
        let source = source_with("t", vec![signer.public()]);
        for (what, layers, want) in cases {
            let store = store_with(&digest(IMAGE), &layers);
            let f = block_on(source.verify_from(&store, &digest(IMAGE), &[]))
                .err()
                .unwrap_or_else(|| panic!("{what}: verified"));
            assert_eq!(f.reason(), want, "{what}");
        }
        // The control: the same signer's good layer verifies.
        let store = store_with(&digest(IMAGE), &[good()]);
        assert!(block_on(source.verify_from(&store, &digest(IMAGE), &[])).is_ok());
    }

    #[test]
    fn one_valid_signature_among_invalid_ones_verifies_and_reading_stops_there() {
        let signer = Signer::new();
        let stranger = Signer::new();
        let layers = [
            Layer::signed(&stranger, payload_for(IMAGE, TYPE)),
            Layer::signed(&signer, payload_for(OTHER, TYPE)),
            Layer::signed(&signer, payload_for(IMAGE, TYPE)),
            Layer::signed(&stranger, payload_for(IMAGE, "x")),
        ];
        let store = store_with(&digest(IMAGE), &layers);
        let source = source_with("t", vec![signer.public()]);
        let v = block_on(source.verify_from(&store, &digest(IMAGE), &[])).unwrap();
        assert_eq!(
            v.identity(),
            format!("key:{}", signer.public().id().short())
        );
        assert_eq!(*store.blob_reads.lock().unwrap(), 3);
    }

    #[test]
    fn several_failures_are_summarised_with_counts() {
        let signer = Signer::new();
        let stranger = Signer::new();
        let layers = [
            Layer::signed(&stranger, payload_for(IMAGE, TYPE)),
            Layer::signed(&signer, payload_for(OTHER, TYPE)),
            Layer::signed(&stranger, payload_for(IMAGE, TYPE)),
        ];
        let store = store_with(&digest(IMAGE), &layers);
        let source = source_with("t", vec![signer.public()]);
        let f = block_on(source.verify_from(&store, &digest(IMAGE), &[])).unwrap_err();
        assert_eq!(
            f.reason(),
            format!("3 signatures, none valid: .sig: signed by an untrusted key (x2), .sig: signature payload is for {OTHER} not {IMAGE}")
        );
        let many: Vec<String> = (0..7).map(|i| format!("reason {i}")).collect();
        assert_eq!(
            summarise(&many),
            "7 signatures, none valid: reason 0, reason 1, reason 2, reason 3, 3 more kinds of failure"
        );
    }

    #[test]
    fn registry_errors_fail_closed() {
        let signer = Signer::new();
        let source = source_with("t", vec![signer.public()]);
        let tag = sig_tag::tag_for(&digest(IMAGE));

        // A payload blob the registry does not have.
        let mut store = store_with(
            &digest(IMAGE),
            &[Layer::signed(&signer, payload_for(IMAGE, TYPE))],
        );
        store.blobs.clear();
        let f = block_on(source.verify_from(&store, &digest(IMAGE), &[])).unwrap_err();
        assert!(
            f.reason().starts_with(".sig: cannot read payload sha256:"),
            "{f}"
        );
        assert!(f.reason().contains("404"), "{f}");

        // A signature tag that is not a manifest, or is an index.
        for (body, want) in [
            (b"<html>".to_vec(), "is not a readable image manifest"),
            (
                br#"{"mediaType":"application/vnd.oci.image.index.v1+json","layers":[]}"#.to_vec(),
                "is a application/vnd.oci.image.index.v1+json, not an image manifest",
            ),
        ] {
            let mut store = MapStore::default();
            store.manifests.insert(tag.clone(), body);
            let f = block_on(source.verify_from(&store, &digest(IMAGE), &[])).unwrap_err();
            assert!(f.reason().contains(want), "{f}");
        }
    }

    // === Key-signed Sigstore bundles ===

    const SLSA: &str = "https://slsa.dev/provenance/v1";

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// A v0.3 DSSE bundle as cosign v3 `sign --key` writes it (no log entry): `signer`'s
    /// signature over the PAE of an in-toto statement about `subject` with `predicate`.
    fn dsse_bundle(signer: &Signer, subject: &Digest, predicate: &str) -> Bundle {
        let hex = subject.to_string().trim_start_matches("sha256:").to_owned();
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{hex}"}}}}],"predicateType":"{predicate}"}}"#
        );
        let envelope = crate::sigstore::bundle::Envelope {
            payload: statement.clone().into_bytes(),
            payload_type: "application/vnd.in-toto+json".to_owned(),
            signature: vec![],
        };
        let json = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": { "publicKey": { "hint": "some key" }, "tlogEntries": [] },
            "dsseEnvelope": {
                "payload": b64(statement.as_bytes()),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{ "sig": signer.sign(&envelope.pae()), "keyid": "" }],
            },
        });
        Bundle::from_json(&serde_json::to_vec(&json).unwrap()).unwrap()
    }

    #[test]
    fn key_signed_bundles_verify_by_signature_and_accepted_predicate_type() {
        let signer = Signer::new();
        let source = source_with("t", vec![Signer::new().public(), signer.public()]);
        let image = digest(IMAGE);
        let want = signer.public().id().clone();
        let sign = dsse_bundle(
            &signer,
            &image,
            crate::sigstore::intoto::COSIGN_SIGN_PREDICATE,
        );
        assert_eq!(source.check_bundle(&sign, &image, &[]), Ok(want.clone()));

        // An attestation counts only when the rule lists its predicate type.
        let slsa = dsse_bundle(&signer, &image, SLSA);
        assert_eq!(
            source.check_bundle(&slsa, &image, &[]),
            Err(format!("an attestation ({SLSA}), not a signature: this rule does not accept that predicate type"))
        );
        assert_eq!(
            source.check_bundle(&slsa, &image, &[SLSA.to_owned()]),
            Ok(want.clone())
        );

        // Another key, another image, a certificate instead of a key.
        let stranger = dsse_bundle(
            &Signer::new(),
            &image,
            crate::sigstore::intoto::COSIGN_SIGN_PREDICATE,
        );
        assert_eq!(
            source.check_bundle(&stranger, &image, &[]),
            Err("signed by an untrusted key".to_owned())
        );
        assert_eq!(
            source.check_bundle(&sign, &digest(OTHER), &[SLSA.to_owned()]),
            Err("DSSE statement has no subject with the artifact's digest".to_owned())
        );
        let keyless = Bundle::from_json(&shared(
            "sigstore/kubewarden-controller-v1.34.0.bundle_v03.json",
        ))
        .unwrap();
        assert_eq!(
            source.check_bundle(&keyless, &image, &[]),
            Err("carries a certificate, not a key signature (keyless?)".to_owned())
        );

        // A message signature over the manifest (its digest is what is signed).
        let manifest = br#"{"schemaVersion":2}"#;
        let d = Digest::sha256_of(manifest);
        let json = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": { "publicKey": {}, "tlogEntries": [] },
            "messageSignature": { "signature": signer.sign(manifest) },
        });
        let message = Bundle::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert_eq!(source.check_bundle(&message, &d, &[]), Ok(want));
        assert_eq!(
            source.check_bundle(&message, &image, &[]),
            Err("signed by an untrusted key".to_owned())
        );
    }

    #[test]
    fn with_a_trusted_root_a_key_signed_bundle_needs_a_logged_entry() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::new();
        let root = dir.path().join("trusted_root.json");
        std::fs::write(&root, shared("sigstore/trusted_root.production.json")).unwrap();
        let mut source = source_with("t", vec![signer.public()]);
        let loaded = CosignKeySource::new("t", &[], Some(&root), clock()).unwrap();
        source.root = loaded.root;
        assert!(
            source.status().contains("bundles logged per"),
            "{}",
            source.status()
        );
        let image = digest(IMAGE);
        let b = dsse_bundle(
            &signer,
            &image,
            crate::sigstore::intoto::COSIGN_SIGN_PREDICATE,
        );
        assert_eq!(
            source.check_bundle(&b, &image, &[]),
            Err("no transparency log entry from a trusted log".to_owned())
        );
        // A root without logs could never verify anything: a configuration error.
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}"#).unwrap();
        let e = CosignKeySource::new("t", &[], Some(&empty), clock())
            .err()
            .unwrap();
        assert!(e.to_string().contains("no transparency log"), "{e}");
    }
}
