//! Transparency-log checkpoints: C2SP signed notes carrying a tree size and root hash
//! (trust-formats.md §2.5 for Rekor v1, §2.6 for Rekor v2).
//!
//! ```text
//! rekor.sigstore.dev - 2605736670972794746     origin
//! 23083062                                     tree size
//! dauhleYK4YyAdxwwDtR0l0KnSOWZdG2bwqHftlanvcI= root hash (base64)
//! Timestamp: 1689177396617352539               optional extension lines
//!                                              blank line
//! — rekor.sigstore.dev wNI9ajBFAiBxaGy…        signature lines: name, base64(hint ‖ sig)
//! ```
//!
//! The signature covers the text up to and including the newline before the blank line. A
//! checkpoint counts only when the log itself signed it: a line whose name is the log's
//! host, whose key hint is the log's, and whose signature verifies with the log key under the
//! scheme the trusted root names. Other lines (witness cosignatures, keys we do not know)
//! are parsed for shape and otherwise ignored.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::merkle::HASH_LEN;
use super::trusted_root::LogInstance;
use crate::trust::cosign::keys::{CosignPublicKey, Scheme};

/// Real checkpoints are a few hundred bytes, even with several witness cosignatures.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Bounds the signature verifications an upstream can make us attempt.
pub const MAX_SIGNATURES: usize = 32;

/// U+2014 EM DASH and a space: how every signature line starts.
const SIG_PREFIX: &str = "\u{2014} ";
/// The key hint that prefixes each signature (C2SP signed-note key ID).
const HINT_LEN: usize = 4;

/// Which origin convention the log follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Rekor v1: origin `"<host> - <tree ID>"` (one log, many shards over time).
    RekorV1,
    /// Rekor v2 (rekor-tiles): origin is the host alone.
    RekorV2,
}

/// A parsed checkpoint. Nothing in it is trusted until [`Checkpoint::verify`] succeeds.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root_hash: Vec<u8>,
    /// Lines after the root hash (e.g. `Timestamp: …`), unsigned by anything we check
    /// beyond the log signature over the whole text.
    pub extensions: Vec<String>,
    pub signatures: Vec<NoteSignature>,
    signed_text: String,
}

/// One signature line.
#[derive(Debug, Clone)]
pub struct NoteSignature {
    pub name: String,
    pub key_hint: [u8; HINT_LEN],
    pub signature: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error("checkpoint has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("checkpoint origin {found:?} is not the log's ({expected})")]
    Origin { found: String, expected: String },
    #[error("checkpoint not signed by {0}")]
    NotSigned(String),
    #[error("checkpoint signature by {0} does not verify")]
    BadSignature(String),
    #[error("log {url}: {detail}")]
    LogKey { url: String, detail: String },
}

// === impl Checkpoint ===

impl Checkpoint {
    /// Parses the note's shape: three header lines, extensions, a blank line, and at least
    /// one well-formed signature line.
    pub fn parse(note: &str) -> Result<Checkpoint, CheckpointError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(CheckpointError::TooLarge);
        }
        // Header lines are never empty, so the first blank line is the separator.
        let split = note.find("\n\n").ok_or(CheckpointError::Malformed(
            "no blank line before the signatures",
        ))?;
        let signed_text = &note[..split + 1];
        let sig_block = &note[split + 2..];

        let mut lines = signed_text.split_terminator('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(CheckpointError::Malformed("no origin line"))?;
        let size = lines
            .next()
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or(CheckpointError::Malformed("no decimal tree size line"))?;
        let root_hash = lines
            .next()
            .and_then(|l| STANDARD.decode(l).ok())
            .filter(|h| h.len() == HASH_LEN)
            .ok_or(CheckpointError::Malformed(
                "no base64 SHA-256 root hash line",
            ))?;
        let extensions = lines.map(str::to_owned).collect();

        if !sig_block.ends_with('\n') {
            return Err(CheckpointError::Malformed(
                "signature block does not end with a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sig_block.split_terminator('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(CheckpointError::TooManySignatures);
            }
            signatures.push(signature_line(line)?);
        }
        if signatures.is_empty() {
            return Err(CheckpointError::Malformed("no signature lines"));
        }

        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root_hash,
            extensions,
            signatures,
            signed_text: signed_text.to_owned(),
        })
    }

    /// The bytes the signatures cover.
    pub fn signed_text(&self) -> &str {
        &self.signed_text
    }

    /// Requires the origin `log` uses and a verifying signature by `log`'s key.
    pub fn verify(&self, log: &LogInstance, kind: LogKind) -> Result<(), CheckpointError> {
        let host = origin_host(&log.base_url)?;
        let origin_ok = match kind {
            LogKind::RekorV1 => self
                .origin
                .strip_prefix(&host)
                .and_then(|rest| rest.strip_prefix(" - "))
                .is_some_and(|tree| !tree.is_empty() && tree.bytes().all(|b| b.is_ascii_digit())),
            LogKind::RekorV2 => self.origin == host,
        };
        if !origin_ok {
            return Err(CheckpointError::Origin {
                found: self.origin.clone(),
                expected: match kind {
                    LogKind::RekorV1 => format!("{host} - <tree ID>"),
                    LogKind::RekorV2 => host,
                },
            });
        }

        let log_err = |detail: String| CheckpointError::LogKey {
            url: log.base_url.clone(),
            detail,
        };
        // The trusted root names the scheme; taking it from there (not from whatever the key
        // verifies under) keeps an Ed25519ph or P-384 signature from passing by accident.
        let scheme = match log.key_details.as_str() {
            "PKIX_ECDSA_P256_SHA_256" => Scheme::EcdsaP256Sha256,
            "PKIX_ED25519" => Scheme::Ed25519,
            other => return Err(log_err(format!("unsupported checkpoint key type {other}"))),
        };
        let key = CosignPublicKey::from_spki_der(&log.public_key, &log.base_url)
            .map_err(|e| log_err(e.to_string()))?;
        // trusted root v0.2 may name the checkpoint key separately; otherwise the log ID's
        // first bytes are the hint (SHA-256 of the SPKI for v1, the C2SP key ID for v2).
        let key_id = log.checkpoint_key_id.as_deref().unwrap_or(&log.log_id);
        let hint = key_id
            .get(..HINT_LEN)
            .ok_or_else(|| log_err("log ID shorter than a key hint".to_owned()))?;

        let mut verified = false;
        for sig in self
            .signatures
            .iter()
            .filter(|s| s.name == host && s.key_hint == hint)
        {
            // A line that claims to be the log's key and does not verify is an attack or
            // corruption, not a line to skip.
            if key.verify(self.signed_text.as_bytes(), &sig.signature) != Some(scheme) {
                return Err(CheckpointError::BadSignature(host));
            }
            verified = true;
        }
        if !verified {
            return Err(CheckpointError::NotSigned(host));
        }
        Ok(())
    }
}

/// Parses `note` and verifies it is signed by `log`; the returned size and root hash are
/// then the log's.
pub fn verify_checkpoint(
    note: &str,
    log: &LogInstance,
    kind: LogKind,
) -> Result<Checkpoint, CheckpointError> {
    let cp = Checkpoint::parse(note)?;
    cp.verify(log, kind)?;
    Ok(cp)
}

/// The key name a log signs checkpoints with: the host (and port, when the URL gives one)
/// of its base URL.
pub fn origin_host(base_url: &str) -> Result<String, CheckpointError> {
    let bad = || CheckpointError::LogKey {
        url: base_url.to_owned(),
        detail: "base URL has no host".to_owned(),
    };
    let url = url::Url::parse(base_url).map_err(|_| bad())?;
    let host = url.host_str().ok_or_else(bad)?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// `— <name> <base64(hint ‖ signature)>`; names contain no spaces (C2SP signed-note).
fn signature_line(line: &str) -> Result<NoteSignature, CheckpointError> {
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or(CheckpointError::Malformed(
            "signature line does not start with an em dash",
        ))?;
    let (name, b64) = rest.split_once(' ').ok_or(CheckpointError::Malformed(
        "signature line has no signature",
    ))?;
    if name.is_empty() || b64.contains(' ') {
        return Err(CheckpointError::Malformed(
            "signature line is not `name signature`",
        ));
    }
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| CheckpointError::Malformed("signature is not base64"))?;
    let (key_hint, signature) = raw
        .split_first_chunk::<HINT_LEN>()
        .filter(|(_, sig)| !sig.is_empty())
        .ok_or(CheckpointError::Malformed(
            "signature shorter than its key hint",
        ))?;
    Ok(NoteSignature {
        name: name.to_owned(),
        key_hint: *key_hint,
        signature: signature.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigstore::trusted_root::TrustedRoot;
    use std::path::Path;

    const V1_NOTE: &str = "rekor.sigstore.dev - 2605736670972794746\n23083062\n\
        dauhleYK4YyAdxwwDtR0l0KnSOWZdG2bwqHftlanvcI=\nTimestamp: 1689177396617352539\n\n\
        \u{2014} rekor.sigstore.dev wNI9ajBFAiBxaGyEtxkzFLkaCSEJqFuSS3dJjEZCNiyByVs1CNVQ8gIhAOoNn\
        XtmMtTctV2oRnSRUZAo4EWUYPK/vBsqOzAU6TMs\n";

    fn production() -> TrustedRoot {
        TrustedRoot::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/testdata/sigstore/trusted_root.production.json"),
        )
        .unwrap()
    }

    fn rekor_v1(root: &TrustedRoot) -> &LogInstance {
        root.tlogs
            .iter()
            .find(|l| l.base_url == "https://rekor.sigstore.dev")
            .unwrap()
    }

    #[test]
    fn parses_header_extension_lines_and_signatures() {
        let cp = Checkpoint::parse(V1_NOTE).unwrap();
        assert_eq!(cp.origin, "rekor.sigstore.dev - 2605736670972794746");
        assert_eq!(cp.size, 23083062);
        assert_eq!(
            STANDARD.encode(&cp.root_hash),
            "dauhleYK4YyAdxwwDtR0l0KnSOWZdG2bwqHftlanvcI="
        );
        assert_eq!(cp.extensions, vec!["Timestamp: 1689177396617352539"]);
        assert_eq!(cp.signatures.len(), 1);
        assert_eq!(cp.signatures[0].name, "rekor.sigstore.dev");
        assert_eq!(cp.signatures[0].key_hint, [0xc0, 0xd2, 0x3d, 0x6a]);
        // The signed text stops at the newline before the blank line.
        assert!(cp.signed_text().ends_with("1689177396617352539\n"));
        assert!(!cp.signed_text().contains('\u{2014}'));
    }

    #[test]
    fn production_v1_checkpoint_verifies() {
        let root = production();
        let cp = verify_checkpoint(V1_NOTE, rekor_v1(&root), LogKind::RekorV1).unwrap();
        assert_eq!(cp.size, 23083062);
        // Changing an extension line changes the signed text.
        let edited = V1_NOTE.replace("Timestamp: 1", "Timestamp: 2");
        assert!(matches!(
            verify_checkpoint(&edited, rekor_v1(&root), LogKind::RekorV1),
            Err(CheckpointError::BadSignature(h)) if h == "rekor.sigstore.dev"
        ));
        // The same note read as a Rekor v2 checkpoint has the wrong origin.
        assert!(matches!(
            verify_checkpoint(V1_NOTE, rekor_v1(&root), LogKind::RekorV1.other()),
            Err(CheckpointError::Origin { .. })
        ));
    }

    #[test]
    fn signature_by_another_name_does_not_count() {
        let root = production();
        let renamed = V1_NOTE.replace(
            "\u{2014} rekor.sigstore.dev wNI9",
            "\u{2014} witness.example wNI9",
        );
        assert!(matches!(
            verify_checkpoint(&renamed, rekor_v1(&root), LogKind::RekorV1),
            Err(CheckpointError::NotSigned(h)) if h == "rekor.sigstore.dev"
        ));
    }

    #[test]
    fn malformed_notes_are_rejected() {
        for (what, note) in [
            ("no blank line", V1_NOTE.replace("\n\n", "\n")),
            (
                "no signatures",
                V1_NOTE[..V1_NOTE.find('\u{2014}').unwrap()].to_owned(),
            ),
            (
                "size not decimal",
                V1_NOTE.replace("\n23083062\n", "\n+23083062\n"),
            ),
            (
                "short root",
                V1_NOTE.replace("dauhleYK4YyAdxwwDtR0l0KnSOWZdG2bwqHftlanvcI=", "dauh"),
            ),
            ("no dash", V1_NOTE.replace('\u{2014}', "-")),
            ("no final newline", V1_NOTE.trim_end().to_owned()),
            (
                "header missing",
                "origin\n5\n\n\u{2014} origin AAAAAAAA\n".to_owned(),
            ),
        ] {
            assert!(Checkpoint::parse(&note).is_err(), "{what} parsed");
        }
        let huge = format!("{}{}", V1_NOTE, "x".repeat(MAX_NOTE_BYTES));
        assert!(matches!(
            Checkpoint::parse(&huge),
            Err(CheckpointError::TooLarge)
        ));
        let many = format!(
            "{V1_NOTE}{}",
            "\u{2014} w AAAAAAAA\n".repeat(MAX_SIGNATURES)
        );
        assert!(matches!(
            Checkpoint::parse(&many),
            Err(CheckpointError::TooManySignatures)
        ));
    }

    #[test]
    fn origin_host_keeps_an_explicit_port() {
        assert_eq!(
            origin_host("https://rekor.sigstore.dev").unwrap(),
            "rekor.sigstore.dev"
        );
        assert_eq!(
            origin_host("http://localhost:8000").unwrap(),
            "localhost:8000"
        );
        assert!(origin_host("not a url").is_err());
    }

    impl LogKind {
        fn other(self) -> LogKind {
            match self {
                LogKind::RekorV1 => LogKind::RekorV2,
                LogKind::RekorV2 => LogKind::RekorV1,
            }
        }
    }
}
