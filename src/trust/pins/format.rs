//! The signed pin file: its JSON shape, signing (`pullgate pins sign`) and verification.
//!
//! ```json
//! {"signed": {"type": "pullgate-pins", "version": 7, "expires": "2027-01-01T00:00:00Z",
//!             "images": {"docker.io/library/nginx": {"digests": ["sha256:…"],
//!                                                     "tags": {"1.27": "sha256:…"}}}},
//!  "signatures": [{"keyid": "<hex sha256 of the raw public key>", "sig": "<base64 Ed25519>"}]}
//! ```
//!
//! The signatures cover the canonical JSON (`trust/canonical.rs`) of `signed`. Verification
//! canonicalises the `signed` value it received and reads the pins from that same value, so what
//! is checked is exactly what is used. `docs/pins.md` documents the format for operators.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::key::{KeyId, PinKey};
use crate::canonical;
use crate::clock::{parse_rfc3339, rfc3339_millis};
use crate::config::looks_like_host;
use crate::registry::reference::{Repository, Tag};
use crate::registry::{Digest, Reference};

/// The `signed.type` value; it keeps a pin signature from being valid as anything else.
pub const PIN_FILE_TYPE: &str = "pullgate-pins";
/// Pin files larger than this are refused before parsing.
pub const MAX_PIN_FILE_BYTES: usize = 16 * 1024 * 1024;

/// What `pullgate pins sign` reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInput {
    pub expires: String,
    /// Defaults to the signing time in seconds since the epoch, so later files are newer.
    pub version: Option<u64>,
    pub images: BTreeMap<String, ImagePins>,
}

/// The pins for one image as written in the file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePins {
    #[serde(default)]
    pub digests: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    #[serde(rename = "type")]
    kind: String,
    version: u64,
    expires: String,
    images: BTreeMap<String, ImagePins>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    signed: Value,
    signatures: Vec<SignatureEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureEntry {
    keyid: String,
    sig: String,
}

/// A verified pin file, ready for lookups.
#[derive(Debug, Clone)]
pub struct PinSet {
    pub version: u64,
    pub expires: OffsetDateTime,
    pub signed_by: KeyId,
    images: HashMap<String, Pins>,
}

#[derive(Debug, Clone, Default)]
struct Pins {
    digests: HashSet<Digest>,
    tags: HashMap<String, Digest>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinFileError {
    #[error("pin file is larger than {MAX_PIN_FILE_BYTES} bytes")]
    TooLarge,
    #[error("pin file is not valid: {0}")]
    Malformed(String),
    #[error("pin file type is {0:?}, not \"{PIN_FILE_TYPE}\"")]
    WrongType(String),
    #[error("pin file has no signatures")]
    Unsigned,
    #[error("pin file is signed by an untrusted key ({0})")]
    UntrustedKey(String),
    #[error("pin file signature by key {0} is invalid")]
    BadSignature(String),
    #[error("pin file expired at {0}")]
    Expired(String),
}

/// Why a verified pin set does not cover a manifest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinMismatch {
    #[error("no pins for {0}")]
    ImageNotPinned(String),
    #[error("tag {tag} is pinned to {pinned} but registry serves {served}")]
    TagMoved {
        tag: String,
        pinned: Digest,
        served: Digest,
    },
    #[error("{digest} is not pinned for {image}")]
    DigestNotPinned { image: String, digest: Digest },
}

/// Signs `input` (a [`SignInput`] JSON document) and returns the pin file text.
pub fn sign(input: &[u8], key: &SigningKey, now: OffsetDateTime) -> Result<String, PinFileError> {
    let input: SignInput =
        serde_json::from_slice(input).map_err(|e| PinFileError::Malformed(e.to_string()))?;
    let expires = parse_rfc3339(&input.expires)
        .map_err(|e| PinFileError::Malformed(format!("expires {:?}: {e}", input.expires)))?;
    if expires <= now {
        return Err(PinFileError::Expired(rfc3339_millis(expires)));
    }
    // Validate exactly as the verifier will, so a file that signs also loads.
    for (name, pins) in &input.images {
        parse_image(name, pins)?;
    }
    let version = input
        .version
        .unwrap_or_else(|| u64::try_from(now.unix_timestamp()).unwrap_or(0));
    let signed = serde_json::json!({
        "type": PIN_FILE_TYPE,
        "version": version,
        "expires": input.expires,
        "images": input.images,
    });
    let bytes = canonical::to_vec(&signed).map_err(|e| PinFileError::Malformed(e.to_string()))?;
    let sig = key.sign(&bytes);
    let entry = SignatureEntry {
        keyid: KeyId::of(&key.verifying_key()).to_string(),
        sig: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
    };
    let doc = serde_json::json!({ "signed": signed, "signatures": [entry] });
    let mut text =
        serde_json::to_string_pretty(&doc).map_err(|e| PinFileError::Malformed(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Verifies a pin file against the trusted keys at time `now`.
pub fn verify(bytes: &[u8], keys: &[PinKey], now: OffsetDateTime) -> Result<PinSet, PinFileError> {
    if bytes.len() > MAX_PIN_FILE_BYTES {
        return Err(PinFileError::TooLarge);
    }
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| PinFileError::Malformed(e.to_string()))?;
    if env.signatures.is_empty() {
        return Err(PinFileError::Unsigned);
    }
    let canonical =
        canonical::to_vec(&env.signed).map_err(|e| PinFileError::Malformed(e.to_string()))?;
    let signed_by = check_signatures(&env.signatures, keys, &canonical)?;
    let signed: Signed =
        serde_json::from_value(env.signed).map_err(|e| PinFileError::Malformed(e.to_string()))?;
    if signed.kind != PIN_FILE_TYPE {
        return Err(PinFileError::WrongType(signed.kind));
    }
    let expires = parse_rfc3339(&signed.expires)
        .map_err(|e| PinFileError::Malformed(format!("expires {:?}: {e}", signed.expires)))?;
    if expires <= now {
        return Err(PinFileError::Expired(rfc3339_millis(expires)));
    }
    let mut images = HashMap::new();
    for (name, pins) in &signed.images {
        images.insert(name.clone(), parse_image(name, pins)?);
    }
    Ok(PinSet {
        version: signed.version,
        expires,
        signed_by,
        images,
    })
}

/// One valid signature by a trusted key is enough; signatures by unknown keys are ignored,
/// but a signature that claims a trusted key and does not verify is reported as such.
fn check_signatures(
    sigs: &[SignatureEntry],
    keys: &[PinKey],
    message: &[u8],
) -> Result<KeyId, PinFileError> {
    let mut bad = None;
    for s in sigs {
        let Some(k) = keys
            .iter()
            .find(|k| k.id.as_str() == s.keyid.to_ascii_lowercase())
        else {
            continue;
        };
        let ok = base64::engine::general_purpose::STANDARD
            .decode(&s.sig)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|sig| k.key.verify_strict(message, &sig).is_ok());
        if ok {
            return Ok(k.id.clone());
        }
        bad = Some(k.id.short().to_owned());
    }
    match bad {
        Some(id) => Err(PinFileError::BadSignature(id)),
        None => {
            let ids: Vec<String> = sigs
                .iter()
                .map(|s| KeyId::from_hex(&s.keyid).short().to_owned())
                .collect();
            Err(PinFileError::UntrustedKey(ids.join(", ")))
        }
    }
}

fn parse_image(name: &str, pins: &ImagePins) -> Result<Pins, PinFileError> {
    let bad = |why: String| PinFileError::Malformed(format!("image {name:?}: {why}"));
    // Names are the normalised `registry/repository` form that requests resolve to.
    let (host, repo) = name
        .split_once('/')
        .ok_or_else(|| bad("needs a registry host, e.g. docker.io/library/nginx".into()))?;
    if !looks_like_host(host) {
        return Err(bad(format!("{host:?} is not a registry host")));
    }
    Repository::parse(repo).map_err(|e| bad(e.to_string()))?;
    let digest = |s: &str| s.parse::<Digest>().map_err(|e| bad(e.to_string()));
    let mut out = Pins::default();
    for d in &pins.digests {
        out.digests.insert(digest(d)?);
    }
    for (tag, d) in &pins.tags {
        Tag::parse(tag).map_err(|e| bad(e.to_string()))?;
        out.tags.insert(tag.clone(), digest(d)?);
    }
    if out.digests.is_empty() && out.tags.is_empty() {
        return Err(bad("pins neither digests nor tags".into()));
    }
    Ok(out)
}

// === impl PinSet ===

impl PinSet {
    /// Whether `digest`, served for `reference`, is pinned for `image`.
    ///
    /// A pinned tag must resolve to exactly its digest. A digest listed under `digests`, or as
    /// the value of any pinned tag, is allowed by digest and under tags that are not pinned.
    pub fn check(
        &self,
        image: &str,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<(), PinMismatch> {
        let pins = self
            .images
            .get(image)
            .ok_or_else(|| PinMismatch::ImageNotPinned(image.to_owned()))?;
        if let Reference::Tag(tag) = reference {
            if let Some(pinned) = pins.tags.get(tag.as_str()) {
                if pinned != digest {
                    return Err(PinMismatch::TagMoved {
                        tag: tag.to_string(),
                        pinned: pinned.clone(),
                        served: digest.clone(),
                    });
                }
                return Ok(());
            }
        }
        if pins.digests.contains(digest) || pins.tags.values().any(|d| d == digest) {
            return Ok(());
        }
        Err(PinMismatch::DigestNotPinned {
            image: image.to_owned(),
            digest: digest.clone(),
        })
    }

    pub fn image_count(&self) -> usize {
        self.images.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::pins::key;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn now() -> OffsetDateTime {
        parse_rfc3339("2026-11-25T10:00:00Z").unwrap()
    }

    fn input(expires: &str, version: Option<u64>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "expires": expires,
            "version": version,
            "images": {
                "docker.io/library/nginx": {"digests": [d('a')], "tags": {"1.27": d('b')}},
            }
        }))
        .unwrap()
    }

    fn signed(version: Option<u64>) -> (SigningKey, String) {
        let sk = key::generate();
        let text = sign(&input("2027-01-01T00:00:00Z", version), &sk, now()).unwrap();
        (sk, text)
    }

    fn keys(sk: &SigningKey) -> Vec<PinKey> {
        vec![PinKey::new(sk.verifying_key())]
    }

    #[test]
    fn signed_file_verifies_and_answers_lookups() {
        let (sk, text) = signed(Some(7));
        let set = verify(text.as_bytes(), &keys(&sk), now()).unwrap();
        assert_eq!(set.version, 7);
        let img = "docker.io/library/nginx";
        let tag = Reference::parse("1.27").unwrap();
        let other_tag = Reference::parse("latest").unwrap();
        let a: Digest = d('a').parse().unwrap();
        let b: Digest = d('b').parse().unwrap();
        let c: Digest = d('c').parse().unwrap();
        assert_eq!(set.check(img, &tag, &b), Ok(()));
        assert!(matches!(
            set.check(img, &tag, &a),
            Err(PinMismatch::TagMoved { .. })
        ));
        assert_eq!(set.check(img, &Reference::Digest(a.clone()), &a), Ok(()));
        assert_eq!(set.check(img, &Reference::Digest(b.clone()), &b), Ok(()));
        assert_eq!(set.check(img, &other_tag, &a), Ok(()));
        assert!(matches!(
            set.check(img, &other_tag, &c),
            Err(PinMismatch::DigestNotPinned { .. })
        ));
        assert!(matches!(
            set.check("docker.io/library/redis", &tag, &b),
            Err(PinMismatch::ImageNotPinned(_))
        ));
        let msg = set.check(img, &tag, &a).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "tag 1.27 is pinned to {} but registry serves {}",
                d('b'),
                d('a')
            )
        );
    }

    #[test]
    fn default_version_is_signing_time() {
        let (sk, text) = signed(None);
        let set = verify(text.as_bytes(), &keys(&sk), now()).unwrap();
        assert_eq!(set.version, now().unix_timestamp() as u64);
    }

    #[test]
    fn tampering_is_detected() {
        let (sk, text) = signed(Some(1));
        let tampered = text.replace(&d('b'), &d('c'));
        assert!(matches!(
            verify(tampered.as_bytes(), &keys(&sk), now()),
            Err(PinFileError::BadSignature(_))
        ));
        // Whitespace changes do not matter: the signature covers the canonical form.
        let reformatted =
            serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        assert!(verify(reformatted.as_bytes(), &keys(&sk), now()).is_ok());
    }

    #[test]
    fn untrusted_key_expiry_and_garbage_are_refused() {
        let (_, text) = signed(Some(1));
        let stranger = key::generate();
        assert!(matches!(
            verify(text.as_bytes(), &keys(&stranger), now()),
            Err(PinFileError::UntrustedKey(_))
        ));
        let (sk, text) = signed(Some(1));
        let later = parse_rfc3339("2027-01-01T00:00:00Z").unwrap();
        assert!(matches!(
            verify(text.as_bytes(), &keys(&sk), later),
            Err(PinFileError::Expired(_))
        ));
        for junk in ["", "{}", "[]", r#"{"signed":{},"signatures":[]}"#] {
            assert!(
                verify(junk.as_bytes(), &keys(&sk), now()).is_err(),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn signing_refuses_bad_input() {
        let sk = key::generate();
        let bad = [
            r#"{"expires":"2020-01-01T00:00:00Z","images":{"docker.io/library/x":{"digests":["sha256:aa"]}}}"#,
            r#"{"expires":"tomorrow","images":{}}"#,
            r#"{"expires":"2027-01-01T00:00:00Z","images":{"nginx":{"digests":[]}}}"#,
            r#"{"expires":"2027-01-01T00:00:00Z","images":{"docker.io/library/x":{}}}"#,
            r#"{"expires":"2027-01-01T00:00:00Z","images":{},"extra":1}"#,
            r#"{"expires":"2027-01-01T00:00:00Z","images":{"docker.io/library/x":{"tags":{"bad tag":"sha256:aa"}}}}"#,
        ];
        for b in bad {
            assert!(sign(b.as_bytes(), &sk, now()).is_err(), "{b}");
        }
    }

    #[test]
    fn a_second_signature_by_a_trusted_key_suffices() {
        let (sk, text) = signed(Some(1));
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        let junk = serde_json::json!({"keyid": "00", "sig": "AAAA"});
        doc["signatures"].as_array_mut().unwrap().insert(0, junk);
        let text = serde_json::to_string(&doc).unwrap();
        assert!(verify(text.as_bytes(), &keys(&sk), now()).is_ok());
    }
}
