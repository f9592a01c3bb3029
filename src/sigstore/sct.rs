//! Embedded signed certificate timestamps (RFC 6962 §3.2–3.3, trust-formats.md §2.4).
//!
//! Fulcio logs every leaf as a precertificate in a CT log before issuing it and embeds the
//! log's promise (the SCT) in the final certificate. A valid SCT from a trusted log shows the
//! certificate is publicly visible, so a Fulcio compromise that mints certificates quietly is
//! detectable. The SCT signs the precertificate's TBSCertificate, which is the final
//! certificate's TBS without the SCT extension itself, bound to the issuer's key.

use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::cert::{Cert, CertError};
use super::trusted_root::LogInstance;
use crate::trust::cosign::keys::{CosignPublicKey, Scheme};

/// The embedded SCT list extension.
pub const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

/// Fulcio embeds one SCT; browsers' policies ask for at most a handful. More than this is
/// not a certificate anyone issues, and each SCT costs a signature verification.
pub const MAX_SCTS: usize = 16;

const SCT_VERSION_V1: u8 = 0;
const SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP: u8 = 0;
const ENTRY_TYPE_PRECERT: u16 = 1;
const HASH_SHA256: u8 = 4;
const SIG_RSA: u8 = 1;
const SIG_ECDSA: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SctError {
    #[error("no embedded SCT")]
    NoSct,
    #[error("certificate has the SCT list extension more than once")]
    DuplicateExtension,
    #[error("malformed SCT list: {0}")]
    Malformed(&'static str),
    #[error("more than {MAX_SCTS} embedded SCTs")]
    TooMany,
    #[error("unsupported SCT version {0}")]
    Version(u8),
    #[error("SCT from unknown CT log {0}")]
    UnknownLog(String),
    #[error("SCT time {time} is outside the validity of CT log {log}")]
    OutsideValidity { time: OffsetDateTime, log: String },
    #[error("SCT uses unsupported algorithm (hash {hash}, signature {signature})")]
    Algorithm { hash: u8, signature: u8 },
    #[error("CT log {log} key cannot be used: {detail}")]
    LogKey { log: String, detail: String },
    #[error("SCT signature does not verify")]
    BadSignature,
    #[error("certificate: {0}")]
    Cert(#[from] CertError),
    #[error("cannot rebuild the precertificate TBS: {0}")]
    Tbs(String),
}

/// One parsed v1 SCT (RFC 6962 §3.2 `SignedCertificateTimestamp`), borrowing the extension.
#[derive(Debug)]
struct Sct<'a> {
    log_id: &'a [u8],
    timestamp_ms: u64,
    extensions: &'a [u8],
    hash_alg: u8,
    sig_alg: u8,
    signature: &'a [u8],
}

/// Checks the leaf's embedded SCTs: at least one must be a valid SCT from a CT log in `ctlogs`
/// whose validity contains the SCT time.
///
/// `issuer` is the certificate that issued the leaf (the Fulcio intermediate): its key hash is
/// part of what the log signed. When no SCT verifies, the error is the first SCT's.
pub fn verify_embedded_scts(
    leaf: &Cert,
    issuer: &Cert,
    ctlogs: &[LogInstance],
) -> Result<(), SctError> {
    let tbs = &leaf.parsed().tbs_certificate;
    let extensions = tbs.extensions.as_deref().unwrap_or(&[]);
    let mut found = extensions.iter().filter(|e| e.extn_id == OID_SCT_LIST);
    let ext = found.next().ok_or(SctError::NoSct)?;
    if found.next().is_some() {
        return Err(SctError::DuplicateExtension);
    }
    let list = OctetStringRef::from_der(ext.extn_value.as_bytes())
        .map_err(|_| SctError::Malformed("extension value is not an OCTET STRING"))?;
    let raw_scts = split_list(list.as_bytes())?;

    // The precertificate's TBS: the leaf's TBS minus the SCT list. DER is canonical, so
    // re-encoding the decoded structure reproduces the bytes the CA sent to the log.
    let mut precert = tbs.clone();
    if let Some(exts) = precert.extensions.as_mut() {
        exts.retain(|e| e.extn_id != OID_SCT_LIST);
        if exts.is_empty() {
            precert.extensions = None;
        }
    }
    let precert_der = precert.to_der().map_err(|e| SctError::Tbs(e.to_string()))?;
    let issuer_key_hash = Sha256::digest(issuer.spki_der()?);

    let mut first_error = None;
    for raw in raw_scts {
        let result =
            parse_sct(raw).and_then(|sct| verify_one(&sct, &issuer_key_hash, &precert_der, ctlogs));
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // `split_list` never returns an empty list, so there is always an error to report.
    Err(first_error.unwrap_or(SctError::NoSct))
}

/// Splits the TLS `SignedCertificateTimestampList` into the serialized SCTs. The framing must
/// be exact: the list length covers the rest of the value, and each SCT fits inside it.
fn split_list(bytes: &[u8]) -> Result<Vec<&[u8]>, SctError> {
    let mut outer = Reader::new(bytes);
    let mut list = Reader::new(outer.vec16()?);
    outer.finish()?;
    if list.is_empty() {
        return Err(SctError::NoSct);
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        if out.len() == MAX_SCTS {
            return Err(SctError::TooMany);
        }
        let sct = list.vec16()?;
        if sct.is_empty() {
            return Err(SctError::Malformed("empty SCT"));
        }
        out.push(sct);
    }
    Ok(out)
}

fn parse_sct(bytes: &[u8]) -> Result<Sct<'_>, SctError> {
    let mut r = Reader::new(bytes);
    // Only v1 exists; the rest of the layout depends on the version, so stop here.
    let version = r.u8()?;
    if version != SCT_VERSION_V1 {
        return Err(SctError::Version(version));
    }
    let sct = Sct {
        log_id: r.take(32)?,
        timestamp_ms: r.u64()?,
        extensions: r.vec16()?,
        hash_alg: r.u8()?,
        sig_alg: r.u8()?,
        signature: r.vec16()?,
    };
    r.finish()?;
    Ok(sct)
}

fn verify_one(
    sct: &Sct<'_>,
    issuer_key_hash: &[u8],
    precert_tbs: &[u8],
    ctlogs: &[LogInstance],
) -> Result<(), SctError> {
    let logs: Vec<&LogInstance> = ctlogs.iter().filter(|l| l.log_id == sct.log_id).collect();
    let Some(&first) = logs.first() else {
        let prefix = sct.log_id.get(..8).unwrap_or(sct.log_id);
        return Err(SctError::UnknownLog(hex::encode(prefix)));
    };
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(sct.timestamp_ms) * 1_000_000)
        .map_err(|_| SctError::Malformed("SCT timestamp out of range"))?;
    // A log's key only vouches for SCTs issued while the trusted root says it was in service:
    // a retired log's leaked key must not sign new SCTs.
    let logs: Vec<&LogInstance> = logs
        .into_iter()
        .filter(|l| l.valid_for.contains(time))
        .collect();
    if logs.is_empty() {
        return Err(SctError::OutsideValidity {
            time,
            log: first.base_url.clone(),
        });
    }
    let algorithm = SctError::Algorithm {
        hash: sct.hash_alg,
        signature: sct.sig_alg,
    };
    if sct.hash_alg != HASH_SHA256 {
        return Err(algorithm);
    }
    let fits: fn(Scheme) -> bool = match sct.sig_alg {
        SIG_ECDSA => |s| matches!(s, Scheme::EcdsaP256Sha256 | Scheme::EcdsaP384Sha256),
        SIG_RSA => |s| matches!(s, Scheme::RsaPkcs1v15Sha256),
        _ => return Err(algorithm),
    };

    let message = signed_data(sct, issuer_key_hash, precert_tbs)?;
    // Report an unusable key only when no candidate key could even be tried; otherwise the
    // signature is what failed.
    let mut key_error = None;
    let mut tried = false;
    for log in logs {
        let key = match CosignPublicKey::from_spki_der(&log.public_key, &log.base_url) {
            Ok(key) => key,
            Err(e) => {
                key_error.get_or_insert(SctError::LogKey {
                    log: log.base_url.clone(),
                    detail: e.to_string(),
                });
                continue;
            }
        };
        tried = true;
        // The scheme check stops e.g. an RSA-PSS signature from passing as the declared
        // PKCS#1 v1.5 one: what verified must be what the SCT says it is.
        if key.verify(&message, sct.signature).is_some_and(fits) {
            return Ok(());
        }
    }
    match key_error {
        Some(e) if !tried => Err(e),
        _ => Err(SctError::BadSignature),
    }
}

/// The `digitally-signed` input of RFC 6962 §3.2 for a precert entry.
fn signed_data(
    sct: &Sct<'_>,
    issuer_key_hash: &[u8],
    precert_tbs: &[u8],
) -> Result<Vec<u8>, SctError> {
    let tbs_len = u32::try_from(precert_tbs.len())
        .ok()
        .filter(|&n| n < 1 << 24)
        .ok_or(SctError::Tbs(
            "TBSCertificate longer than 2^24 bytes".to_owned(),
        ))?;
    let ext_len = u16::try_from(sct.extensions.len())
        .map_err(|_| SctError::Malformed("SCT extensions longer than 2^16 bytes"))?;
    let mut m =
        Vec::with_capacity(1 + 1 + 8 + 2 + 32 + 3 + precert_tbs.len() + 2 + sct.extensions.len());
    m.push(SCT_VERSION_V1);
    m.push(SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP);
    m.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
    m.extend_from_slice(&ENTRY_TYPE_PRECERT.to_be_bytes());
    m.extend_from_slice(issuer_key_hash);
    m.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
    m.extend_from_slice(precert_tbs);
    m.extend_from_slice(&ext_len.to_be_bytes());
    m.extend_from_slice(sct.extensions);
    Ok(m)
}

/// A bounds-checked cursor over TLS-encoded bytes: every read that would run past the end is
/// an error.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SctError> {
        if n > self.rest.len() {
            return Err(SctError::Malformed("length runs past the end"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, SctError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, SctError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    /// A `u16`-length-prefixed byte string.
    fn vec16(&mut self) -> Result<&'a [u8], SctError> {
        let len = self.take(2)?;
        let n = usize::from(u16::from_be_bytes([len[0], len[1]]));
        self.take(n)
    }

    fn finish(&self) -> Result<(), SctError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(SctError::Malformed("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigstore::bundle::Bundle;
    use crate::sigstore::trusted_root::TrustedRoot;
    use der::asn1::OctetString;
    use std::path::Path;

    fn read(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/sigstore")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn leaf_of(name: &str) -> Cert {
        let bundle = Bundle::from_json(&read(name)).unwrap();
        bundle.leaf().unwrap().clone()
    }

    fn root(name: &str) -> TrustedRoot {
        TrustedRoot::from_json(&read(name)).unwrap()
    }

    fn production() -> TrustedRoot {
        root("trusted_root.production.json")
    }

    /// The production Fulcio intermediate (the CA entry valid since 2022).
    fn production_intermediate(root: &TrustedRoot) -> Cert {
        root.certificate_authorities[1].chain[0].clone()
    }

    /// The leaf with its SCT list extension value replaced by `edit(old)`.
    fn with_sct_list(leaf: &Cert, edit: impl Fn(&mut Vec<u8>)) -> Cert {
        let mut cert = leaf.parsed().clone();
        let exts = cert.tbs_certificate.extensions.as_mut().unwrap();
        let ext = exts.iter_mut().find(|e| e.extn_id == OID_SCT_LIST).unwrap();
        let mut inner = OctetStringRef::from_der(ext.extn_value.as_bytes())
            .unwrap()
            .as_bytes()
            .to_vec();
        edit(&mut inner);
        ext.extn_value =
            OctetString::new(OctetString::new(inner).unwrap().to_der().unwrap()).unwrap();
        Cert::from_der(&cert.to_der().unwrap()).unwrap()
    }

    fn sct_list(leaf: &Cert) -> Vec<u8> {
        let ext = leaf
            .parsed()
            .tbs_certificate
            .extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == OID_SCT_LIST)
            .unwrap();
        OctetStringRef::from_der(ext.extn_value.as_bytes())
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn happy_path_v03_verifies() {
        let root = production();
        let leaf = leaf_of("bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        verify_embedded_scts(&leaf, &production_intermediate(&root), &root.ctlogs).unwrap();
    }

    #[test]
    fn older_happy_paths_verify() {
        let root = production();
        for name in ["happy-path-v0.1", "happy-path-v0.2"] {
            let leaf = leaf_of(&format!("bundle-verify/{name}/bundle.sigstore.json"));
            verify_embedded_scts(&leaf, &production_intermediate(&root), &root.ctlogs)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn kubewarden_verifies() {
        let root = production();
        let leaf = leaf_of("kubewarden-controller-v1.34.0.bundle_v03.json");
        verify_embedded_scts(&leaf, &production_intermediate(&root), &root.ctlogs).unwrap();
    }

    #[test]
    fn sct_with_extensions_verifies() {
        let dir = "bundle-verify/bundle-with-sct-with-extensions";
        let root = root(&format!("{dir}/trusted_root.json"));
        let leaf = leaf_of(&format!("{dir}/bundle.sigstore.json"));
        // The SCT really carries extensions (Static CT's leaf index).
        let sct = split_list(&sct_list(&leaf)).unwrap()[0].to_vec();
        assert!(!parse_sct(&sct).unwrap().extensions.is_empty());
        let issuer = root.certificate_authorities[0].chain[0].clone();
        verify_embedded_scts(&leaf, &issuer, &root.ctlogs).unwrap();
    }

    #[test]
    fn invalid_ct_key_fails() {
        let dir = "bundle-verify/invalid-ct-key_fail";
        let root = root(&format!("{dir}/trusted_root.json"));
        let leaf = leaf_of(&format!("{dir}/bundle.sigstore.json"));
        let err =
            verify_embedded_scts(&leaf, &production_intermediate(&root), &root.ctlogs).unwrap_err();
        // The SCT is from production's ctfe.sigstore.dev/2022 (log id dd3d306a…), which this
        // root replaces with staging logs: no trusted key for it.
        assert!(matches!(err, SctError::UnknownLog(_)), "{err}");
        assert_eq!(err.to_string(), "SCT from unknown CT log dd3d306ac6c71132");
    }

    #[test]
    fn flipped_signature_byte_fails() {
        let root = production();
        let leaf = leaf_of("bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        let issuer = production_intermediate(&root);
        // The one SCT ends with its signature; flipping its last byte keeps the DER valid
        // but changes `s`.
        let bad = with_sct_list(&leaf, |list| {
            let last = list.len() - 1;
            list[last] ^= 0x01;
        });
        let err = verify_embedded_scts(&bad, &issuer, &root.ctlogs).unwrap_err();
        assert!(matches!(err, SctError::BadSignature), "{err}");
        // Sanity: the unedited re-encoding still verifies, so the edit is what failed it.
        let same = with_sct_list(&leaf, |_| {});
        verify_embedded_scts(&same, &issuer, &root.ctlogs).unwrap();
    }

    #[test]
    fn wrong_issuer_fails() {
        let root = production();
        let leaf = leaf_of("bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        // The root instead of the intermediate: a different issuer key hash.
        let wrong = root.certificate_authorities[1].chain[1].clone();
        let err = verify_embedded_scts(&leaf, &wrong, &root.ctlogs).unwrap_err();
        assert!(matches!(err, SctError::BadSignature), "{err}");
    }

    #[test]
    fn unknown_log_and_validity() {
        let root = production();
        let leaf = leaf_of("bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        let issuer = production_intermediate(&root);
        let err = verify_embedded_scts(&leaf, &issuer, &[]).unwrap_err();
        assert!(matches!(err, SctError::UnknownLog(_)), "{err}");
        assert!(
            err.to_string().starts_with("SCT from unknown CT log "),
            "{err}"
        );

        // The right log, but it entered service after the SCT was issued.
        let mut ctlogs = root.ctlogs.clone();
        for log in &mut ctlogs {
            log.valid_for.start = leaf.not_after() + time::Duration::days(1);
            log.valid_for.end = None;
        }
        let err = verify_embedded_scts(&leaf, &issuer, &ctlogs).unwrap_err();
        assert!(matches!(err, SctError::OutsideValidity { .. }), "{err}");
    }

    #[test]
    fn declared_algorithm_must_match_the_key() {
        let root = production();
        let leaf = leaf_of("bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        let issuer = production_intermediate(&root);
        let list = sct_list(&leaf);
        // hash_alg and sig_alg sit right before the u16 signature length.
        let sct = parse_sct(split_list(&list).unwrap()[0]).unwrap();
        let sig_alg_at = list.len() - sct.signature.len() - 3;
        assert_eq!(list[sig_alg_at], SIG_ECDSA);
        let rsa = with_sct_list(&leaf, |l| l[sig_alg_at] = SIG_RSA);
        assert!(matches!(
            verify_embedded_scts(&rsa, &issuer, &root.ctlogs),
            Err(SctError::BadSignature)
        ));
        let sha384 = with_sct_list(&leaf, |l| l[sig_alg_at - 1] = 5);
        assert!(matches!(
            verify_embedded_scts(&sha384, &issuer, &root.ctlogs),
            Err(SctError::Algorithm { .. })
        ));
    }

    #[test]
    fn no_sct_extension() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["example.com".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert = Cert::from_der(cert.der()).unwrap();
        let err = verify_embedded_scts(&cert, &cert, &production().ctlogs).unwrap_err();
        assert!(matches!(err, SctError::NoSct), "{err}");
        assert_eq!(err.to_string(), "no embedded SCT");
    }

    #[test]
    fn truncated_or_padded_lists_are_errors_not_panics() {
        let leaf = leaf_of("bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        let list = sct_list(&leaf);
        for n in 0..list.len() {
            let cut = &list[..n];
            let parsed = split_list(cut)
                .and_then(|scts| scts.into_iter().try_for_each(|s| parse_sct(s).map(|_| ())));
            assert!(parsed.is_err(), "truncated to {n} bytes parsed");
        }
        let mut padded = list.clone();
        padded.push(0);
        assert!(split_list(&padded).is_err());
        // The SCT's own length claiming one byte more than the list holds.
        let mut overrun = list.clone();
        let sct_len = u16::from_be_bytes([list[2], list[3]]) + 1;
        overrun[2..4].copy_from_slice(&sct_len.to_be_bytes());
        assert!(split_list(&overrun).is_err());
        // An empty list.
        assert!(matches!(split_list(&[0, 0]), Err(SctError::NoSct)));
    }

    #[test]
    fn too_many_scts() {
        let leaf = leaf_of("bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        let list = sct_list(&leaf);
        let one = split_list(&list).unwrap()[0].to_vec();
        let mut body = Vec::new();
        for _ in 0..=MAX_SCTS {
            body.extend_from_slice(&u16::try_from(one.len()).unwrap().to_be_bytes());
            body.extend_from_slice(&one);
        }
        let mut many = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        many.extend_from_slice(&body);
        assert!(matches!(split_list(&many), Err(SctError::TooMany)));
    }
}
