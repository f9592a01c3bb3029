//! The whole offline check of one Sigstore bundle, in sigstore-go's order
//! (`pkg/verify/signed_entity.go`, trust-formats.md §2.8 and §2.10):
//!
//! 1. transparency-log entries (each from a known log must verify; at least one must);
//! 2. trusted times: SET-verified integrated times and RFC 3161 timestamps (at least one);
//! 3. the leaf chains to a Fulcio CA of the trusted root at *each* trusted time;
//! 4. an embedded SCT from a known CT log;
//! 5. the signature over the artifact (message signature) or the DSSE PAE;
//! 6. the in-toto subject (DSSE) and the signer identity or key.
//!
//! The wall clock is never read: "now" is passed in and only used to refuse times from the
//! future. The leaf's own validity is judged at the trusted times, never at "now".

use std::fmt;

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::bundle::{Bundle, Content, Material};
use super::cert::Cert;
use super::chain::{self, ChainError, EKU_CODE_SIGNING};
use super::fulcio::{self, FulcioError, IdentityPolicy, SignerIdentity};
use super::intoto::{Statement, StatementError};
use super::sct::{self, SctError};
use super::tlog::{self, Expected, Signer, TlogError};
use super::trusted_root::TrustedRoot;
use super::tsa;
use crate::trust::cosign::keys::{CosignPublicKey, KeyId};

/// Clock skew tolerated between a log or TSA and this host before a time counts as future.
const MAX_FUTURE_SKEW: time::Duration = time::Duration::minutes(5);

/// What was signed: the artifact's bytes, or only its SHA-256 digest (an image manifest
/// digest, or `sha256:<hex>` on the command line).
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    Sha256([u8; 32]),
}

/// Who must have signed.
#[derive(Clone, Copy)]
pub enum Policy<'a> {
    /// Keyless: a Fulcio certificate matching any one of these identities.
    Identities(&'a [IdentityPolicy]),
    /// A managed key.
    Key(&'a CosignPublicKey),
}

/// A bundle that verified.
#[derive(Debug, Clone)]
pub struct Verification {
    pub signer: SignedBy,
    /// The times the evidence vouches for, with where each came from.
    pub times: Vec<TrustedTime>,
    /// For DSSE bundles, the verified in-toto statement (its predicate type is the caller's
    /// business: a signature policy requires cosign's sign predicate).
    pub statement: Option<Statement>,
}

#[derive(Debug, Clone)]
pub enum SignedBy {
    Identity(SignerIdentity),
    Key(KeyId),
}

#[derive(Debug, Clone)]
pub struct TrustedTime {
    pub time: OffsetDateTime,
    /// `rekor <log url>` or `tsa <uri>`.
    pub source: String,
}

/// The inner errors are shown in the message, not chained as sources, so a reason reads once.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("bundle carries a public key but a certificate identity is required")]
    KeyMaterialWithoutKey,
    #[error("bundle carries a certificate but a public key is required")]
    CertificateWithoutIdentity,
    #[error("bundle certificate chain contains a root certificate")]
    RootInBundle,
    #[error("signing certificate key: {0}")]
    LeafKey(String),
    #[error("transparency log: {0}")]
    Tlog(TlogError),
    #[error("no transparency log entry from a trusted log")]
    NoTlogEntry,
    #[error("no trusted time: no verified log integration time or RFC 3161 timestamp{0}")]
    NoTrustedTime(String),
    #[error("{from} time {time} is in the future")]
    FutureTime { from: String, time: String },
    #[error("certificate at {time} ({from}): {detail}")]
    Chain {
        time: String,
        from: String,
        detail: String,
    },
    #[error("certificate transparency: {0}")]
    Sct(SctError),
    #[error("signature does not verify over the {0}")]
    Signature(&'static str),
    #[error("bundle message digest does not match the artifact")]
    DigestMismatch,
    #[error("DSSE statement: {0}")]
    Statement(StatementError),
    #[error("DSSE statement has no subject with the artifact's digest")]
    SubjectMismatch,
    #[error("certificate identity: {0}")]
    Fulcio(FulcioError),
    #[error("signed by {found}, which matches no trusted identity")]
    Identity { found: SignerIdentity },
}

/// Verifies `bundle` over `artifact` for `policy` against `root`; `now` only bounds times
/// from the future.
pub fn verify(
    bundle: &Bundle,
    artifact: Artifact<'_>,
    policy: Policy<'_>,
    root: &TrustedRoot,
    now: OffsetDateTime,
) -> Result<Verification, VerifyError> {
    let artifact_sha256 = artifact.sha256();

    // What verifies the signature, and what the log entry must name.
    let (leaf, key) = match (&bundle.material, policy) {
        (Material::PublicKey { .. }, Policy::Key(key)) => (None, Leaf::Key(key)),
        (Material::PublicKey { .. }, Policy::Identities(_)) => {
            return Err(VerifyError::KeyMaterialWithoutKey)
        }
        (_, Policy::Key(_)) => return Err(VerifyError::CertificateWithoutIdentity),
        (material, Policy::Identities(_)) => {
            if let Material::Chain(chain) = material {
                // The trust anchor comes from the trusted root only; a bundle that ships its
                // own root is malformed (protobuf-specs: the chain MUST NOT include it).
                if chain.iter().skip(1).any(is_self_issued) {
                    return Err(VerifyError::RootInBundle);
                }
            }
            let Some(leaf) = bundle.leaf() else {
                return Err(VerifyError::LeafKey("no certificate".to_owned()));
            };
            let spki = leaf
                .spki_der()
                .map_err(|e| VerifyError::LeafKey(e.to_string()))?;
            let key = CosignPublicKey::from_spki_der(&spki, "signing certificate")
                .map_err(|e| VerifyError::LeafKey(e.to_string()))?;
            (Some(leaf), Leaf::Owned(Box::new(key)))
        }
    };

    // 1. Transparency log entries.
    let expected = Expected {
        content: &bundle.content,
        artifact_sha256: Some(artifact_sha256),
        signer: match leaf {
            Some(cert) => Signer::Certificate(cert),
            None => Signer::PublicKey(key.get().spki_der()),
        },
    };
    let mut times = Vec::new();
    let mut logged = false;
    for entry in &bundle.tlog_entries {
        // Entries from logs this root does not know cannot be checked and do not count
        // (sigstore-go skips them too); entries from known logs must verify.
        if root.tlog(&entry.log_id).is_none() {
            continue;
        }
        let verified = tlog::verify_entry(entry, bundle.version, root, &expected)
            .map_err(VerifyError::Tlog)?;
        logged = true;
        if let Some(time) = verified.integrated_time {
            times.push(TrustedTime {
                time,
                source: format!("rekor {}", verified.log_url),
            });
        }
    }
    if !logged {
        return Err(VerifyError::NoTlogEntry);
    }

    // 2. RFC 3161 timestamps over the signature. One that does not verify adds no time; the
    // reasons are kept for the error if no time is left at all.
    let mut ts_errors = Vec::new();
    for response in &bundle.timestamps {
        match tsa::verify_timestamp(response, bundle.signature(), &root.timestamp_authorities) {
            Ok(ts) => times.push(TrustedTime {
                time: ts.time,
                source: format!("tsa {}", ts.authority),
            }),
            Err(e) => ts_errors.push(e),
        }
    }
    if times.is_empty() {
        let detail = match ts_errors.first() {
            Some(e) => format!(" (timestamp: {e})"),
            None => String::new(),
        };
        return Err(VerifyError::NoTrustedTime(detail));
    }
    for t in &times {
        if t.time > now + MAX_FUTURE_SKEW {
            return Err(VerifyError::FutureTime {
                from: t.source.clone(),
                time: show(t.time),
            });
        }
    }

    // 3 and 4. The certificate chain at every trusted time, then its SCT.
    if let Some(leaf) = leaf {
        let mut issuer = None;
        for t in &times {
            issuer = Some(chain_at(leaf, root, t)?);
        }
        if let Some(issuer) = issuer {
            sct::verify_embedded_scts(leaf, issuer, &root.ctlogs).map_err(VerifyError::Sct)?;
        }
    }

    // 5. The signature, and what it binds.
    let statement = verify_content(bundle, artifact, key.get())?;

    // 6. Who signed.
    let signer = match (leaf, policy) {
        (Some(leaf), Policy::Identities(identities)) => {
            let found = fulcio::signer_identity(leaf).map_err(VerifyError::Fulcio)?;
            if !identities.iter().any(|p| p.matches(&found)) {
                return Err(VerifyError::Identity { found });
            }
            SignedBy::Identity(found)
        }
        _ => SignedBy::Key(key.get().id().clone()),
    };

    Ok(Verification {
        signer,
        times,
        statement,
    })
}

/// Step 5 alone: `key`'s signature over the artifact (message signature) or over the DSSE
/// PAE, whose in-toto statement must then name the artifact's digest. Returns the statement
/// of a DSSE bundle. No log, time or certificate is looked at: a key-signed bundle checked
/// without a trusted root rests on this alone, as a `.sig` signature by a key does.
pub fn verify_content(
    bundle: &Bundle,
    artifact: Artifact<'_>,
    key: &CosignPublicKey,
) -> Result<Option<Statement>, VerifyError> {
    let artifact_sha256 = artifact.sha256();
    match &bundle.content {
        Content::Message(m) => {
            if let Some((alg, digest)) = &m.digest {
                // An unauthenticated hint, but one that must agree with the artifact.
                if alg == "SHA2_256" && digest.as_slice() != artifact_sha256 {
                    return Err(VerifyError::DigestMismatch);
                }
            }
            let ok = match artifact {
                Artifact::Bytes(bytes) => key.verify(bytes, &m.signature).is_some(),
                Artifact::Sha256(d) => key.verify_sha256_digest(&d, &m.signature).is_some(),
            };
            if !ok {
                return Err(VerifyError::Signature("artifact"));
            }
            Ok(None)
        }
        Content::Dsse(env) => {
            if key.verify(&env.pae(), &env.signature).is_none() {
                return Err(VerifyError::Signature("DSSE envelope"));
            }
            let statement = Statement::parse(&env.payload_type, &env.payload)
                .map_err(VerifyError::Statement)?;
            if !statement.has_subject(&artifact_sha256) {
                return Err(VerifyError::SubjectMismatch);
            }
            Ok(Some(statement))
        }
    }
}

/// The leaf must chain to a CA that the root trusts at `t`; returns the leaf's issuer.
fn chain_at<'r>(
    leaf: &Cert,
    root: &'r TrustedRoot,
    t: &TrustedTime,
) -> Result<&'r Cert, VerifyError> {
    let mut last: Option<ChainError> = None;
    for ca in &root.certificate_authorities {
        if !ca.valid_for.contains(t.time) {
            continue;
        }
        match chain::verify_path(leaf, &ca.chain, t.time, EKU_CODE_SIGNING) {
            Ok(issuer) => return Ok(issuer),
            Err(e) => last = Some(e),
        }
    }
    Err(VerifyError::Chain {
        time: show(t.time),
        from: t.source.clone(),
        detail: match last {
            Some(e) => e.to_string(),
            None => "no Fulcio CA of the trusted root is valid then".to_owned(),
        },
    })
}

fn is_self_issued(cert: &Cert) -> bool {
    let tbs = &cert.parsed().tbs_certificate;
    tbs.subject == tbs.issuer
}

fn show(t: OffsetDateTime) -> String {
    crate::clock::rfc3339_millis(t)
}

/// The key that checks the signature: the configured one, or the leaf's.
enum Leaf<'a> {
    Key(&'a CosignPublicKey),
    Owned(Box<CosignPublicKey>),
}

impl Leaf<'_> {
    fn get(&self) -> &CosignPublicKey {
        match self {
            Leaf::Key(k) => k,
            Leaf::Owned(k) => k,
        }
    }
}

// === impl Artifact ===

impl Artifact<'_> {
    pub fn sha256(&self) -> [u8; 32] {
        match self {
            Artifact::Bytes(b) => Sha256::digest(b).into(),
            Artifact::Sha256(d) => *d,
        }
    }
}

impl fmt::Display for SignedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignedBy::Identity(id) => write!(f, "{id}"),
            SignedBy::Key(k) => write!(f, "key {}", k.short()),
        }
    }
}
