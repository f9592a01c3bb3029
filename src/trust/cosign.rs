//! The `cosign-key` trust source: cosign signatures by one of the configured public keys,
//! found at the image's `sha256-<hex>.sig` tag (trust-formats.md §1, algorithm §1.8).
//!
//! For a manifest digest D: read the signature manifest at D's tag (404 = no signature), then
//! for each layer in order — fetch the payload blob (its sha256 must be the layer digest),
//! verify the signature annotation over those exact bytes with each trusted key, and only then
//! read the signed payload, which must be a cosign image signature for D. The first layer that
//! passes every step verifies the image; several bad layers before it do no harm. When none
//! passes, the failure says what each layer was and why it failed, in short.
//!
//! Modules: [`keys`] (PEM public keys, signature schemes), [`sig_tag`] (the `.sig` tag and its
//! blobs, annotations kept whole for a later keyless verifier), [`simple_signing`] (the payload).
//! Not here: keyless certificates, Rekor bundles, OCI referrers and Sigstore bundles (§2.9).

pub mod bundles;
pub mod keyless;
pub mod keys;
pub mod sig_tag;
pub mod simple_signing;

use std::path::PathBuf;

use crate::config::TrustKind;
use crate::registry::Digest;
use crate::trust::{Failure, Subject, Verified};
use keys::{CosignPublicKey, KeyError, KeyId};
use sig_tag::{LayerError, RegistryStore, Store};
use simple_signing::PayloadError;

/// A failure reason lists at most this many distinct layer failures.
const MAX_REASONS: usize = 4;

/// One configured `cosign-key` source.
pub struct CosignKeySource {
    name: String,
    keys: Vec<(CosignPublicKey, PathBuf)>,
}

/// Why one signature layer does not vouch for the manifest.
#[derive(Debug, thiserror::Error)]
enum LayerFailure {
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
    /// Loads every key file; a file that is not a usable public key is a configuration error.
    pub fn new(name: &str, key_files: &[PathBuf]) -> Result<CosignKeySource, KeyError> {
        let keys = key_files
            .iter()
            .map(|p| Ok((CosignPublicKey::load(p)?, p.clone())))
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(CosignKeySource {
            name: name.to_owned(),
            keys,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line for `check-config`: the keys, by id and type.
    pub fn status(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|(k, p)| format!("key:{} ({}, {})", k.id().short(), k.kind(), p.display()))
            .collect();
        format!(
            "cosign signatures (.sig tag) by {}: {}",
            if keys.len() == 1 { "1 key" } else { "any of" },
            keys.join(", ")
        )
    }

    /// Verifies `s` with the signatures in its registry, fetched through the image's upstream.
    pub async fn verify(&self, s: &Subject<'_>) -> Result<Verified, Failure> {
        self.verify_from(&RegistryStore::new(s.target), s.digest)
            .await
    }

    /// Verifies `digest` with the signatures `store` holds.
    async fn verify_from(&self, store: &impl Store, digest: &Digest) -> Result<Verified, Failure> {
        let fail = |why: String| Failure::new(&self.name, why);
        let manifest = match sig_tag::read_manifest(store, digest).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(fail("no signature".to_owned())),
            Err(e) => return Err(fail(e.to_string())),
        };
        if manifest.layers.is_empty() {
            return Err(fail(format!(
                "no signature (signature tag {} has no layers)",
                manifest.tag
            )));
        }
        let mut failures = Vec::new();
        for layer in &manifest.layers {
            match self.check_layer(store, layer, digest).await {
                Ok(id) => {
                    return Ok(Verified::new(
                        &self.name,
                        TrustKind::CosignKey,
                        &format!("key:{}", id.short()),
                        None,
                    ))
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        Err(fail(summarise(&failures)))
    }

    /// Checks one layer: payload blob, signature by a trusted key, then the signed payload.
    async fn check_layer(
        &self,
        store: &impl Store,
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
            let v = block_on(trusting_lab.verify_from(&store, &digest(d)))
                .unwrap_or_else(|f| panic!("{name}: {f}"));
            assert_eq!(v.identity(), lab_id, "{name}");
            assert_eq!(v.kind(), TrustKind::CosignKey);
            let f = block_on(trusting_attacker.verify_from(&store, &digest(d))).unwrap_err();
            assert_eq!(f.reason(), "signed by an untrusted key", "{name}");
        }
        let store = fixture_store("cosign-wrongkey", &digest(WRONGKEY));
        let f = block_on(trusting_lab.verify_from(&store, &digest(WRONGKEY))).unwrap_err();
        assert_eq!(f.to_string(), "lab: signed by an untrusted key");
        let v = block_on(trusting_attacker.verify_from(&store, &digest(WRONGKEY))).unwrap();
        assert_eq!(v.identity(), attacker_id);
        // Any one of several keys suffices.
        let both = source_with(
            "both",
            vec![key("cosign/cosign-attacker.pub"), key("cosign/cosign.pub")],
        );
        let store = fixture_store("signed-cosign", &digest(SIGNED_COSIGN));
        assert_eq!(
            block_on(both.verify_from(&store, &digest(SIGNED_COSIGN)))
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
        let f = block_on(s.verify_from(&store, &digest(HELLO))).unwrap_err();
        assert_eq!(
            f.reason(),
            format!("signature payload is for {SIGNED_COSIGN} not {HELLO}")
        );
    }

    #[test]
    fn keys_load_from_files_and_show_their_ids_and_a_bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("cosign.pub");
        std::fs::write(&lab, shared("cosign/cosign.pub")).unwrap();
        let s = CosignKeySource::new("lab", std::slice::from_ref(&lab)).unwrap();
        assert_eq!(s.name(), "lab");
        let id = key("cosign/cosign.pub").id().short().to_owned();
        assert_eq!(
            s.status(),
            format!(
                "cosign signatures (.sig tag) by 1 key: key:{id} (ecdsa-p256, {})",
                lab.display()
            )
        );
        let junk = dir.path().join("junk.pub");
        std::fs::write(&junk, "junk").unwrap();
        let e = CosignKeySource::new("lab", &[lab, junk.clone()])
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with(&format!("{}: ", junk.display())), "{e}");
    }

    #[test]
    fn no_signature_tag_is_no_signature() {
        let s = source_with("lab", vec![key("cosign/cosign.pub")]);
        let f = block_on(s.verify_from(&MapStore::default(), &digest(HELLO))).unwrap_err();
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
                format!("signature payload is for {OTHER} not {IMAGE}"),
            ),
            (
                "wrong type string",
                vec![Layer::signed(
                    &signer,
                    payload_for(IMAGE, "cosign container image attestation"),
                )],
                "signature payload type is \"cosign container image attestation\", not \"cosign container image signature\"".to_owned(),
            ),
            (
                "tampered payload",
                vec![tampered_payload],
                "signed by an untrusted key".to_owned(),
            ),
            (
                "tampered signature",
                vec![tampered_signature],
                "signed by an untrusted key".to_owned(),
            ),
            (
                "blob whose digest does not match its layer",
                vec![wrong_blob],
                format!(
                    "payload blob hashes to {}, not its layer digest {}",
                    Digest::sha256_of(&payload_for(OTHER, TYPE)),
                    Digest::sha256_of(&payload_for(IMAGE, TYPE))
                ),
            ),
            (
                "oversized payload",
                vec![oversized],
                format!("payload of {oversized_len} bytes is over the 65536-byte limit"),
            ),
            (
                "no signature annotation",
                vec![unsigned],
                format!("no {SIGNATURE_ANNOTATION} annotation"),
            ),
            (
                "not a simple-signing layer",
                vec![other_media_type],
                "layer of type application/vnd.oci.image.layer.v1.tar+gzip is not a simple-signing signature".to_owned(),
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
            let f = block_on(source.verify_from(&store, &digest(IMAGE)))
                .err()
                .unwrap_or_else(|| panic!("{what}: verified"));
            assert_eq!(f.reason(), want, "{what}");
        }
        // The control: the same signer's good layer verifies.
        let store = store_with(&digest(IMAGE), &[good()]);
        assert!(block_on(source.verify_from(&store, &digest(IMAGE))).is_ok());
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
        let v = block_on(source.verify_from(&store, &digest(IMAGE))).unwrap();
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
        let f = block_on(source.verify_from(&store, &digest(IMAGE))).unwrap_err();
        assert_eq!(
            f.reason(),
            format!("3 signatures, none valid: signed by an untrusted key (x2), signature payload is for {OTHER} not {IMAGE}")
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
        let f = block_on(source.verify_from(&store, &digest(IMAGE))).unwrap_err();
        assert!(f.reason().starts_with("cannot read payload sha256:"), "{f}");
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
            let f = block_on(source.verify_from(&store, &digest(IMAGE))).unwrap_err();
            assert!(f.reason().contains(want), "{f}");
        }
    }
}
