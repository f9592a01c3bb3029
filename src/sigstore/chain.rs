//! Certificate path validation at a given time for a given extended key usage
//! (trust-formats.md §2.3, the "hybrid model").
//!
//! The path is fixed, not built: leaf → the trusted root's CA chain (intermediates first, the
//! trust anchor last), exactly as `trusted_root.json` lists it. Nothing from the evidence
//! (bundle chains, certificates embedded in tokens) is ever trusted as a CA here; callers pass
//! only the leaf from the evidence.
//!
//! Every certificate, the anchor included, must be valid at the trusted time the caller
//! established (a Rekor integrated time or an RFC 3161 genTime), never at "now": Fulcio leaves
//! live ten minutes. The anchor is trusted as given (its own signature is not checked, it need
//! not be self-signed) but must still be a CA.
//!
//! Checked per RFC 5280 as far as short Sigstore chains need: names chain, signatures verify
//! (over the exact TBS bytes), validity, basicConstraints / keyUsage / pathLenConstraint for
//! CAs, the EKU for the leaf (and for CAs that restrict EKUs), and no unhandled critical
//! extension. Not implemented, and so refused when critical: nameConstraints, policies.

use std::fmt;

use der::asn1::ObjectIdentifier;
use der::oid::db::rfc5280;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use super::cert::Cert;
use super::signature::{self, SignatureError};

/// Code signing (1.3.6.1.5.5.7.3.3): Fulcio leaves.
pub const EKU_CODE_SIGNING: ObjectIdentifier = rfc5280::ID_KP_CODE_SIGNING;
/// Time stamping (1.3.6.1.5.5.7.3.8): TSA signing certificates.
pub const EKU_TIME_STAMPING: ObjectIdentifier = rfc5280::ID_KP_TIME_STAMPING;

/// Longer paths than this are refused before any signature is checked; Sigstore's are 2–3.
pub const MAX_CHAIN_LEN: usize = 8;

/// Where a certificate sits in the path, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Leaf,
    /// 1-based, counting up from the leaf's issuer.
    Intermediate(usize),
    Anchor,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Leaf => f.write_str("leaf"),
            Position::Intermediate(n) => write!(f, "intermediate {n}"),
            Position::Anchor => f.write_str("anchor"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the trusted CA chain is empty")]
    EmptyChain,
    #[error("the trusted CA chain has more than {MAX_CHAIN_LEN} certificates")]
    TooLong,
    #[error("{position} not valid at {at} (valid {not_before}..{not_after})")]
    NotValidAt {
        position: Position,
        at: String,
        not_before: String,
        not_after: String,
    },
    #[error("issuer of {position} does not match the subject of {issuer}")]
    IssuerMismatch {
        position: Position,
        issuer: Position,
    },
    #[error("signature of {position} by {issuer} does not verify: {source}")]
    Signature {
        position: Position,
        issuer: Position,
        source: SignatureError,
    },
    #[error("{position}: {detail}")]
    Profile { position: Position, detail: String },
}

/// Validates `leaf` → `chain[0]` → … → `chain[last]` (the trust anchor) at `at` for the
/// extended key usage `usage`, and returns the leaf's issuer (`chain[0]`), which SCT
/// verification needs.
pub fn verify_path<'a>(
    leaf: &Cert,
    chain: &'a [Cert],
    at: OffsetDateTime,
    usage: ObjectIdentifier,
) -> Result<&'a Cert, ChainError> {
    let issuer = chain.first().ok_or(ChainError::EmptyChain)?;
    if chain.len() > MAX_CHAIN_LEN {
        return Err(ChainError::TooLong);
    }
    let path: Vec<&Cert> = std::iter::once(leaf).chain(chain.iter()).collect();
    let position = |i: usize| {
        if i == 0 {
            Position::Leaf
        } else if i == path.len() - 1 {
            Position::Anchor
        } else {
            Position::Intermediate(i)
        }
    };

    for (i, cert) in path.iter().enumerate() {
        let pos = position(i);
        if !cert.valid_at(at) {
            return Err(ChainError::NotValidAt {
                position: pos,
                at: rfc3339(at),
                not_before: rfc3339(cert.not_before()),
                not_after: rfc3339(cert.not_after()),
            });
        }
        let exts = Extensions::parse(cert).map_err(|detail| ChainError::Profile {
            position: pos,
            detail,
        })?;
        let profile = |detail: String| ChainError::Profile {
            position: pos,
            detail,
        };
        let is_ca = exts.basic.as_ref().is_some_and(|b| b.ca);
        if i == 0 {
            if is_ca {
                return Err(profile("is a CA certificate, not an end entity".to_owned()));
            }
            match &exts.eku {
                Some(eku) if eku.contains(&usage) => {}
                Some(_) => return Err(profile(format!("extended key usage lacks {usage}"))),
                None => {
                    return Err(profile(format!(
                        "no extended key usage extension (need {usage})"
                    )))
                }
            }
        } else {
            if !is_ca {
                return Err(profile(
                    "not a CA (basicConstraints cA is not true)".to_owned(),
                ));
            }
            if exts
                .key_usage
                .as_ref()
                .is_some_and(|ku| !ku.key_cert_sign())
            {
                return Err(profile("keyUsage lacks keyCertSign".to_owned()));
            }
            // chain[i-1] has i-1 intermediate CAs between it and the leaf.
            let below = i - 1;
            if let Some(max) = exts.basic.as_ref().and_then(|b| b.path_len_constraint) {
                if below > usize::from(max) {
                    return Err(profile(format!(
                        "pathLenConstraint {max} exceeded by {below} intermediates below it"
                    )));
                }
            }
            // A CA that restricts EKUs (like Sigstore's intermediate, codeSigning only) may
            // not issue for any other purpose.
            if exts.eku.as_ref().is_some_and(|eku| !eku.contains(&usage)) {
                return Err(profile(format!("extended key usage lacks {usage}")));
            }
        }
        if let Some(parent) = path.get(i + 1) {
            check_issued_by(cert, parent, pos, position(i + 1))?;
        }
    }
    Ok(issuer)
}

/// `child`'s issuer name is `parent`'s subject and `parent`'s key signed `child`'s TBS.
fn check_issued_by(
    child: &Cert,
    parent: &Cert,
    position: Position,
    issuer: Position,
) -> Result<(), ChainError> {
    let c = child.parsed();
    let p = parent.parsed();
    // Compared as DER: what Go's crypto/x509 does in practice for these chains; RFC 5280's
    // case-folding rules are not needed for names we were handed together.
    let names_match = match (
        c.tbs_certificate.issuer.to_der(),
        p.tbs_certificate.subject.to_der(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !names_match {
        return Err(ChainError::IssuerMismatch { position, issuer });
    }
    let sig_err = |source| ChainError::Signature {
        position,
        issuer,
        source,
    };
    let profile = |detail: String| ChainError::Profile { position, detail };
    // RFC 5280 §4.1.1.2: the outer and inner algorithm must be the same; otherwise the
    // unsigned outer one could be swapped.
    if c.signature_algorithm != c.tbs_certificate.signature {
        return Err(profile(
            "signatureAlgorithm differs from the TBS signature field".to_owned(),
        ));
    }
    // `Cert::from_der` guarantees the certificate re-encodes to its original bytes, so the
    // re-encoded TBS is exactly the signed one.
    let tbs = c
        .tbs_certificate
        .to_der()
        .map_err(|e| profile(format!("cannot encode TBS: {e}")))?;
    let sig = c
        .signature
        .as_bytes()
        .ok_or_else(|| profile("signature BIT STRING has unused bits".to_owned()))?;
    let link = link_key(child, parent);
    if verified_links().contains(&link) {
        return Ok(());
    }
    let spki = parent
        .spki_der()
        .map_err(|e| profile(format!("issuer key: {e}")))?;
    signature::verify(&spki, &c.signature_algorithm, &tbs, sig).map_err(sig_err)?;
    verified_links().insert(link);
    Ok(())
}

/// Links (parent signed child) whose signature already verified in this process, by the
/// SHA-256 of both certificates' exact DER. A signature check is a pure function of those
/// bytes, so the answer cannot change; remembering it means the trusted root's own links
/// (Fulcio intermediate by root, TSA leaf by its root) and a leaf checked at a second trusted
/// time cost one P-384 verification per process instead of one per image. Only successes are
/// kept, and the set is bounded.
struct LinkSet(std::sync::Mutex<std::collections::HashSet<[u8; 32]>>);

const MAX_REMEMBERED_LINKS: usize = 4096;

impl LinkSet {
    fn contains(&self, k: &[u8; 32]) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(k))
    }

    fn insert(&self, k: [u8; 32]) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= MAX_REMEMBERED_LINKS {
                set.clear();
            }
            set.insert(k);
        }
    }
}

fn verified_links() -> &'static LinkSet {
    static LINKS: std::sync::OnceLock<LinkSet> = std::sync::OnceLock::new();
    LINKS.get_or_init(|| LinkSet(std::sync::Mutex::new(std::collections::HashSet::new())))
}

fn link_key(child: &Cert, parent: &Cert) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    // Length-prefixed so no two (parent, child) pairs share an input.
    h.update((parent.der().len() as u64).to_be_bytes());
    h.update(parent.der());
    h.update(child.der());
    h.finalize().into()
}

/// The extensions path validation looks at; every other critical extension is an error.
struct Extensions {
    basic: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    eku: Option<Vec<ObjectIdentifier>>,
}

impl Extensions {
    fn parse(cert: &Cert) -> Result<Extensions, String> {
        let mut out = Extensions {
            basic: None,
            key_usage: None,
            eku: None,
        };
        let mut seen: Vec<ObjectIdentifier> = Vec::new();
        let exts = cert.parsed().tbs_certificate.extensions.as_deref();
        for ext in exts.unwrap_or_default() {
            let id = ext.extn_id;
            // RFC 5280 §4.2: at most one instance of each; two basicConstraints could
            // otherwise be read differently by different verifiers.
            if seen.contains(&id) {
                return Err(format!("duplicate extension {id}"));
            }
            seen.push(id);
            let value = ext.extn_value.as_bytes();
            match id {
                rfc5280::ID_CE_BASIC_CONSTRAINTS => {
                    let bc = BasicConstraints::from_der(value)
                        .map_err(|e| format!("malformed basicConstraints: {e}"))?;
                    out.basic = Some(bc);
                }
                rfc5280::ID_CE_KEY_USAGE => {
                    let ku = KeyUsage::from_der(value)
                        .map_err(|e| format!("malformed keyUsage: {e}"))?;
                    out.key_usage = Some(ku);
                }
                rfc5280::ID_CE_EXT_KEY_USAGE => {
                    let eku = ExtendedKeyUsage::from_der(value)
                        .map_err(|e| format!("malformed extendedKeyUsage: {e}"))?;
                    out.eku = Some(eku.0);
                }
                // Fulcio's SAN is critical (empty subject) and may be an OtherName; identity
                // policy reads it elsewhere, path validation need not.
                rfc5280::ID_CE_SUBJECT_ALT_NAME => {}
                _ if ext.critical => {
                    return Err(format!("unhandled critical extension {id}"));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigstore::bundle::Bundle;
    use crate::sigstore::trusted_root::TrustedRoot;
    use rcgen::{
        BasicConstraints as RcBasic, CertificateParams, CustomExtension, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    use std::path::Path;
    use time::Duration;

    fn sigstore(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/sigstore")
            .join(rel)
    }

    fn happy_leaf_and_root() -> (Cert, TrustedRoot) {
        let bytes = std::fs::read(sigstore(
            "bundle-verify/happy-path-v0.3/bundle.sigstore.json",
        ))
        .unwrap();
        let bundle = Bundle::from_json(&bytes).unwrap();
        let leaf = bundle.leaf().unwrap().clone();
        let root = TrustedRoot::load(&sigstore("trusted_root.production.json")).unwrap();
        (leaf, root)
    }

    #[test]
    fn fulcio_leaf_chains_to_the_production_intermediate_inside_its_validity() {
        let (leaf, root) = happy_leaf_and_root();
        let chain = &root.certificate_authorities[1].chain;
        let at = leaf.not_before() + Duration::minutes(1);
        let issuer = verify_path(&leaf, chain, at, EKU_CODE_SIGNING).unwrap();
        assert_eq!(issuer.der(), chain[0].der());
        // Both ends are inclusive.
        verify_path(&leaf, chain, leaf.not_before(), EKU_CODE_SIGNING).unwrap();
        verify_path(&leaf, chain, leaf.not_after(), EKU_CODE_SIGNING).unwrap();
    }

    #[test]
    fn fulcio_leaf_one_second_after_not_after_fails() {
        let (leaf, root) = happy_leaf_and_root();
        let chain = &root.certificate_authorities[1].chain;
        let err = verify_path(
            &leaf,
            chain,
            leaf.not_after() + Duration::seconds(1),
            EKU_CODE_SIGNING,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::NotValidAt {
                    position: Position::Leaf,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("leaf not valid at "), "{err}");
    }

    #[test]
    fn fulcio_leaf_is_not_a_timestamping_certificate() {
        let (leaf, root) = happy_leaf_and_root();
        let chain = &root.certificate_authorities[1].chain;
        let err = verify_path(&leaf, chain, leaf.not_before(), EKU_TIME_STAMPING).unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::Profile {
                    position: Position::Leaf,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn fulcio_leaf_does_not_chain_to_the_other_ca() {
        let (leaf, root) = happy_leaf_and_root();
        let chain = &root.certificate_authorities[0].chain;
        assert!(verify_path(&leaf, chain, leaf.not_before(), EKU_CODE_SIGNING).is_err());
        assert!(matches!(
            verify_path(&leaf, &[], leaf.not_before(), EKU_CODE_SIGNING),
            Err(ChainError::EmptyChain)
        ));
    }

    // --- generated chains ---

    struct Issued {
        cert: Cert,
        rc: rcgen::Certificate,
        key: KeyPair,
    }

    fn params(cn: &str, ca: IsCa) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = ts(1_735_689_600);
        p.not_after = ts(1_767_225_600);
        p.is_ca = ca;
        p
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = params(cn, IsCa::Ca(RcBasic::Unconstrained));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        p
    }

    fn leaf_params() -> CertificateParams {
        let mut p = params("leaf", IsCa::ExplicitNoCa);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        p
    }

    fn self_signed(p: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let rc = p.self_signed(&key).unwrap();
        let cert = Cert::from_der(rc.der()).unwrap();
        Issued { cert, rc, key }
    }

    fn issue(p: CertificateParams, by: &Issued) -> Issued {
        let key = KeyPair::generate().unwrap();
        let rc = p.signed_by(&key, &by.rc, &by.key).unwrap();
        let cert = Cert::from_der(rc.der()).unwrap();
        Issued { cert, rc, key }
    }

    /// 2025-06-01T00:00:00Z, inside the generated certificates' 2025 validity.
    const AT_SECS: i64 = 1_748_736_000;
    fn at() -> OffsetDateTime {
        ts(AT_SECS)
    }

    fn ts(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn generated_three_level_chain_passes() {
        let root = self_signed(ca_params("root"));
        let inter = issue(ca_params("intermediate"), &root);
        let leaf = issue(leaf_params(), &inter);
        let chain = [inter.cert.clone(), root.cert.clone()];
        verify_path(&leaf.cert, &chain, at(), EKU_CODE_SIGNING).unwrap();
        // Wrong order: the anchor first.
        let swapped = [root.cert.clone(), inter.cert.clone()];
        assert!(verify_path(&leaf.cert, &swapped, at(), EKU_CODE_SIGNING).is_err());
        // The anchor need not be self-signed: the intermediate alone can be the anchor.
        verify_path(&leaf.cert, &chain[..1], at(), EKU_CODE_SIGNING).unwrap();
    }

    #[test]
    fn a_ca_without_ca_true_cannot_issue() {
        let root = self_signed(ca_params("root"));
        let mut p = params("not-a-ca", IsCa::ExplicitNoCa);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let fake = issue(p, &root);
        let leaf = issue(leaf_params(), &fake);
        let err = verify_path(
            &leaf.cert,
            &[fake.cert.clone(), root.cert.clone()],
            at(),
            EKU_CODE_SIGNING,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::Profile {
                    position: Position::Intermediate(1),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn ca_key_usage_without_cert_sign_path_len_and_eku_are_enforced() {
        let root = self_signed(ca_params("root"));

        let mut p = ca_params("no-certsign");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let inter = issue(p, &root);
        let leaf = issue(leaf_params(), &inter);
        let chain = [inter.cert.clone(), root.cert.clone()];
        assert!(verify_path(&leaf.cert, &chain, at(), EKU_CODE_SIGNING).is_err());

        // Root with pathLen 0 may not have an intermediate below it.
        let mut p = ca_params("root0");
        p.is_ca = IsCa::Ca(RcBasic::Constrained(0));
        let root0 = self_signed(p);
        let inter = issue(ca_params("intermediate"), &root0);
        let leaf = issue(leaf_params(), &inter);
        let err = verify_path(
            &leaf.cert,
            &[inter.cert.clone(), root0.cert.clone()],
            at(),
            EKU_CODE_SIGNING,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pathLenConstraint"), "{err}");

        // An intermediate restricted to time stamping cannot issue code signing leaves.
        let mut p = ca_params("tsa-only");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::TimeStamping];
        let inter = issue(p, &root);
        let leaf = issue(leaf_params(), &inter);
        let chain = [inter.cert.clone(), root.cert.clone()];
        assert!(verify_path(&leaf.cert, &chain, at(), EKU_CODE_SIGNING).is_err());
    }

    #[test]
    fn leaf_profile_is_enforced() {
        let root = self_signed(ca_params("root"));
        let chain = [root.cert.clone()];
        // A CA as leaf.
        let mut p = ca_params("ca-leaf");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let ca_leaf = issue(p, &root);
        assert!(verify_path(&ca_leaf.cert, &chain, at(), EKU_CODE_SIGNING).is_err());
        // No EKU at all.
        let no_eku = issue(params("leaf", IsCa::NoCa), &root);
        assert!(verify_path(&no_eku.cert, &chain, at(), EKU_CODE_SIGNING).is_err());
        // An unknown critical extension; the same one non-critical is fine.
        let mut p = leaf_params();
        let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
        ext.set_criticality(true);
        p.custom_extensions = vec![ext];
        let critical = issue(p, &root);
        let err = verify_path(&critical.cert, &chain, at(), EKU_CODE_SIGNING).unwrap_err();
        assert!(err.to_string().contains("critical"), "{err}");
        let mut p = leaf_params();
        p.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 99999, 1],
            vec![5, 0],
        )];
        let fine = issue(p, &root);
        verify_path(&fine.cert, &chain, at(), EKU_CODE_SIGNING).unwrap();
    }

    #[test]
    fn expired_anchor_and_foreign_signature_fail() {
        let root = self_signed(ca_params("root"));
        let leaf = issue(leaf_params(), &root);
        let later = ts(1_767_225_601);
        let err = verify_path(
            &leaf.cert,
            std::slice::from_ref(&root.cert),
            later,
            EKU_CODE_SIGNING,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("leaf not valid"), "{err}");
        // Another CA with the same name: names match, the signature does not.
        let impostor = self_signed(ca_params("root"));
        let err = verify_path(
            &leaf.cert,
            std::slice::from_ref(&impostor.cert),
            at(),
            EKU_CODE_SIGNING,
        )
        .unwrap_err();
        assert!(matches!(err, ChainError::Signature { .. }), "{err}");
    }
}
