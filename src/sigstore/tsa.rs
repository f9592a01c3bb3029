//! RFC 3161 timestamps (trust-formats.md §2.7): a TimeStampResp from a bundle proves that a
//! trusted timestamp authority saw the signature bytes at `genTime`, which then serves as a
//! trusted time for certificate validation (§2.3).
//!
//! The token is CMS SignedData (RFC 5652) over a TSTInfo (RFC 3161 §2.4.2). Checked, in this
//! order: response status; token structure; the message imprint equals the hash of the
//! signature; exactly one SignerInfo with content-type and message-digest signed attributes
//! that bind the TSTInfo; then, per trusted TSA, that `genTime` is inside the TSA's validity
//! window, that the signer certificate (the trusted root's TSA leaf, or a certificate embedded
//! in the token when the root lists only CAs) is the one the SignerInfo names, chains to the
//! TSA's CAs at `genTime` with EKU timeStamping, and made the signature.
//!
//! Signed bytes are taken from the token as received, never re-encoded: the `der` crate sorts
//! SET OF on decode, so a re-encoding of the signed attributes or of an embedded certificate
//! need not be the bytes that were signed.
//!
//! Not checked (not needed for the guarantee, and sigstore-go does not require them either):
//! the TSTInfo `tsa` name, the ESSCertIDv2 signing-certificate attribute, nonce and policy.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use der::asn1::{Any, AnyRef, ObjectIdentifier, OctetString, SetOfVec};
use der::oid::db::{rfc5280, rfc5911, rfc5912};
use der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::attr::Attributes;
use x509_cert::ext::pkix::{BasicConstraints, SubjectKeyIdentifier};
use x509_tsp::{TimeStampResp, TstInfo};

use super::cert::Cert;
use super::chain::{self, EKU_TIME_STAMPING};
use super::signature::{self, HashAlgorithm};
use super::trusted_root::CertificateAuthority;

/// Sigstore's responses are ~1.5 KiB; one with a long embedded chain a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// id-ct-TSTInfo (RFC 3161 §2.4.2). Not in const-oid's database; a `const` so a typo would
/// fail the build rather than panic at run time.
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// A timestamp that verified: the time it vouches for and which authority vouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    pub time: OffsetDateTime,
    /// `uri` of the trusted root's timestamp-authority entry that verified it.
    pub authority: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("timestamp response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("malformed timestamp: {0}")]
    Malformed(String),
    #[error("timestamp was not granted (status {0})")]
    NotGranted(String),
    #[error("timestamp does not cover the signature: {0}")]
    ImprintMismatch(String),
    #[error("invalid timestamp token: {0}")]
    InvalidToken(String),
    #[error("no trusted timestamp authority verifies the timestamp: {0}")]
    Untrusted(String),
}

/// Verifies the DER TimeStampResp `response_der` (or a bare TimeStampToken) over `signature`
/// against the trusted root's `authorities`; the first that verifies it wins.
pub fn verify_timestamp(
    response_der: &[u8],
    signature: &[u8],
    authorities: &[CertificateAuthority],
) -> Result<VerifiedTimestamp, TsaError> {
    if response_der.len() > MAX_RESPONSE_BYTES {
        return Err(TsaError::TooLarge);
    }
    let token = parse_token(response_der)?;
    let raw = RawSignedData::split(&token)?;

    let encap = EncapsulatedContentInfo::from_der(raw.encap)
        .map_err(|e| malformed("encapContentInfo", e))?;
    if encap.econtent_type != ID_CT_TST_INFO {
        return Err(TsaError::InvalidToken(format!(
            "content type {} is not id-ct-TSTInfo",
            encap.econtent_type
        )));
    }
    let econtent = encap
        .econtent
        .ok_or_else(|| TsaError::InvalidToken("no encapsulated TSTInfo".to_owned()))?;
    if econtent.tag() != Tag::OctetString {
        return Err(TsaError::Malformed(
            "eContent is not an OCTET STRING".to_owned(),
        ));
    }
    let tst_der = econtent.value();
    let tst = TstInfo::from_der(tst_der).map_err(|e| malformed("TSTInfo", e))?;

    let imprint_hash = HashAlgorithm::from_oid(&tst.message_imprint.hash_algorithm.oid)
        .ok_or_else(|| {
            TsaError::ImprintMismatch(format!(
                "unsupported imprint hash {}",
                tst.message_imprint.hash_algorithm.oid
            ))
        })?;
    if tst.message_imprint.hashed_message.as_bytes() != imprint_hash.digest(signature).as_slice() {
        return Err(TsaError::ImprintMismatch(
            "message imprint is not the hash of the signature".to_owned(),
        ));
    }
    let secs = i64::try_from(tst.gen_time.to_unix_duration().as_secs())
        .map_err(|_| TsaError::Malformed("genTime out of range".to_owned()))?;
    let gen_time = OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| TsaError::Malformed("genTime out of range".to_owned()))?;

    let [signer_info_der] = raw.signer_infos.as_slice() else {
        return Err(TsaError::InvalidToken(format!(
            "{} signer infos, expected exactly one",
            raw.signer_infos.len()
        )));
    };
    let signer = Signer::parse(signer_info_der, tst_der)?;
    // The unsigned digestAlgorithms list must at least name the digest actually used.
    let digests = SetOfVec::<AlgorithmIdentifierOwned>::from_der(raw.digest_algorithms)
        .map_err(|e| malformed("digestAlgorithms", e))?;
    if !digests.iter().any(|d| d.oid == signer.info.digest_alg.oid) {
        return Err(TsaError::InvalidToken(
            "digestAlgorithms does not list the signer's digest".to_owned(),
        ));
    }

    let mut reasons = Vec::new();
    for authority in authorities {
        match verify_with(authority, &signer, &raw.certificates, gen_time) {
            Ok(()) => {
                return Ok(VerifiedTimestamp {
                    time: gen_time,
                    authority: authority.uri.clone(),
                })
            }
            Err(reason) => reasons.push(format!("{}: {reason}", authority.uri)),
        }
    }
    if reasons.is_empty() {
        reasons.push("the trusted root has no timestamp authorities".to_owned());
    }
    Err(TsaError::Untrusted(reasons.join("; ")))
}

/// The TimeStampToken (a ContentInfo), from a TimeStampResp whose status grants it or, as
/// sigstore-go also accepts, a bare token.
fn parse_token(der: &[u8]) -> Result<ContentInfo, TsaError> {
    let token = match TimeStampResp::from_der(der) {
        Ok(resp) => {
            // PKIStatus (RFC 3161 §2.4.2): 0 granted, 1 grantedWithMods; the rest carry no
            // token worth trusting. (`cmpv2`, which names the enum, is not a direct
            // dependency; its discriminants are the ASN.1 values.)
            let status = resp.status.status;
            if !matches!(status as u8, 0 | 1) {
                return Err(TsaError::NotGranted(format!("{status:?}")));
            }
            resp.time_stamp_token
                .ok_or_else(|| TsaError::Malformed("granted response without a token".to_owned()))?
        }
        Err(resp_err) => ContentInfo::from_der(der).map_err(|_| {
            TsaError::Malformed(format!(
                "neither a TimeStampResp nor a TimeStampToken: {resp_err}"
            ))
        })?,
    };
    if token.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(TsaError::InvalidToken(format!(
            "token content type {} is not SignedData",
            token.content_type
        )));
    }
    Ok(token)
}

/// The parts of SignedData whose exact bytes matter, sliced from the token as received.
struct RawSignedData<'a> {
    digest_algorithms: &'a [u8],
    encap: &'a [u8],
    /// Each a full Certificate TLV; other CertificateChoices are skipped.
    certificates: Vec<&'a [u8]>,
    signer_infos: Vec<&'a [u8]>,
}

impl<'a> RawSignedData<'a> {
    fn split(token: &'a ContentInfo) -> Result<RawSignedData<'a>, TsaError> {
        if token.content.tag() != Tag::Sequence {
            return Err(TsaError::Malformed(
                "SignedData is not a SEQUENCE".to_owned(),
            ));
        }
        Self::walk(token.content.value()).map_err(|e| malformed("SignedData", e))
    }

    /// SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo,
    /// certificates [0] IMPLICIT OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos SET }
    fn walk(value: &'a [u8]) -> der::Result<RawSignedData<'a>> {
        let mut r = SliceReader::new(value)?;
        // CMSVersion 3 (or 1): what RFC 5652 §5.1 prescribes for a TSTInfo with
        // issuerAndSerialNumber / subjectKeyIdentifier signers.
        let version = u8::decode(&mut r)?;
        if !matches!(version, 1 | 3) {
            return Err(der::ErrorKind::Value { tag: Tag::Integer }.into());
        }
        expect_tag(&r, Tag::Set)?;
        let digest_algorithms = r.tlv_bytes()?;
        expect_tag(&r, Tag::Sequence)?;
        let encap = r.tlv_bytes()?;
        let mut certificates = Vec::new();
        if u8::from(r.peek_tag()?) == 0xA0 {
            let set = AnyRef::decode(&mut r)?;
            for tlv in elements(set.value())? {
                if tlv.first() == Some(&0x30) {
                    certificates.push(tlv);
                }
            }
        }
        if u8::from(r.peek_tag()?) == 0xA1 {
            r.tlv_bytes()?;
        }
        expect_tag(&r, Tag::Set)?;
        let signer_infos = elements(AnyRef::decode(&mut r)?.value())?;
        r.finish(RawSignedData {
            digest_algorithms,
            encap,
            certificates,
            signer_infos,
        })
    }
}

/// The one SignerInfo, with its checks that do not depend on which TSA is trusted done.
struct Signer {
    info: SignerInfo,
    /// DER of the signed attributes as the SET OF they are signed as (RFC 5652 §5.4).
    signed_attrs: Vec<u8>,
    algorithm: AlgorithmIdentifierOwned,
}

impl Signer {
    fn parse(der: &[u8], tst_der: &[u8]) -> Result<Signer, TsaError> {
        let info = SignerInfo::from_der(der).map_err(|e| malformed("SignerInfo", e))?;
        let attrs_value = signed_attrs_value(der)
            .map_err(|e| malformed("SignerInfo", e))?
            .ok_or_else(|| TsaError::InvalidToken("SignerInfo has no signed attributes".into()))?;
        // Signed as an explicit SET OF (tag 0x31), not as the [0] IMPLICIT it is stored with.
        let signed_attrs = Any::new(Tag::Set, attrs_value)
            .and_then(|a| a.to_der())
            .map_err(|e| malformed("signed attributes", e))?;
        let attrs =
            Attributes::from_der(&signed_attrs).map_err(|e| malformed("signed attributes", e))?;

        let digest = HashAlgorithm::from_oid(&info.digest_alg.oid).ok_or_else(|| {
            TsaError::InvalidToken(format!(
                "unsupported SignerInfo digest algorithm {}",
                info.digest_alg.oid
            ))
        })?;
        let content_type: ObjectIdentifier = single_attr(&attrs, rfc5911::ID_CONTENT_TYPE)?;
        if content_type != ID_CT_TST_INFO {
            return Err(TsaError::InvalidToken(format!(
                "signed content-type {content_type} is not id-ct-TSTInfo"
            )));
        }
        let message_digest: OctetString = single_attr(&attrs, rfc5911::ID_MESSAGE_DIGEST)?;
        if message_digest.as_bytes() != digest.digest(tst_der).as_slice() {
            return Err(TsaError::InvalidToken(
                "signed message-digest is not the hash of the TSTInfo".to_owned(),
            ));
        }
        let algorithm = signer_algorithm(&info.signature_algorithm, digest);
        Ok(Signer {
            info,
            signed_attrs,
            algorithm,
        })
    }

    /// Whether `cert` is the certificate the SignerInfo identifies.
    fn names(&self, cert: &Cert) -> bool {
        let tbs = &cert.parsed().tbs_certificate;
        match &self.info.sid {
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer,
                serial_number,
            }) => {
                serial_number == &tbs.serial_number
                    && matches!((issuer.to_der(), tbs.issuer.to_der()), (Ok(a), Ok(b)) if a == b)
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                .extensions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter(|e| e.extn_id == rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
                .any(|e| {
                    SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())
                        .is_ok_and(|own| own == *ski)
                }),
        }
    }
}

/// One authority's verdict: `Ok` if it vouches for this token at `gen_time`.
fn verify_with(
    authority: &CertificateAuthority,
    signer: &Signer,
    embedded: &[&[u8]],
    gen_time: OffsetDateTime,
) -> Result<(), String> {
    if !authority.valid_for.contains(gen_time) {
        return Err(format!(
            "genTime {gen_time} is outside the authority's validity window"
        ));
    }
    let first = authority
        .chain
        .first()
        .ok_or_else(|| "authority has no certificates".to_owned())?;
    // A trusted root either pins the TSA's signing certificate (chain[0], not a CA) or lists
    // only CAs, in which case the token must carry the signer. Embedded certificates are only
    // ever leaves here: they must still chain to this authority's CAs, so another TSA's
    // certificate cannot make the token pass.
    let owned;
    let (leaf, cas): (&Cert, &[Cert]) = if is_ca(first) {
        owned = embedded
            .iter()
            .filter_map(|der| Cert::from_der(der).ok())
            .find(|c| signer.names(c))
            .ok_or_else(|| "token embeds no certificate matching its signer".to_owned())?;
        (&owned, &authority.chain)
    } else {
        if !signer.names(first) {
            return Err("token signer is not the authority's certificate".to_owned());
        }
        (first, &authority.chain[1..])
    };
    chain::verify_path(leaf, cas, gen_time, EKU_TIME_STAMPING).map_err(|e| e.to_string())?;
    timestamping_only(leaf)?;
    let spki = leaf.spki_der().map_err(|e| e.to_string())?;
    signature::verify(
        &spki,
        &signer.algorithm,
        &signer.signed_attrs,
        signer.info.signature.as_bytes(),
    )
    .map_err(|e| format!("token signature: {e}"))
}

/// RFC 3161 §2.3: a TSA's certificate has exactly one extended key usage extension, marked
/// critical, whose only purpose is timeStamping — so a certificate issued for something else
/// under the same CA cannot sign timestamps. (Path validation only checked the purpose is
/// among those listed.)
fn timestamping_only(leaf: &Cert) -> Result<(), String> {
    let ekus: Vec<_> = leaf
        .parsed()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE)
        .collect();
    let [eku] = ekus.as_slice() else {
        return Err(format!(
            "TSA certificate has {} extended key usage extensions, not one",
            ekus.len()
        ));
    };
    if !eku.critical {
        return Err("TSA certificate's extended key usage is not critical".to_owned());
    }
    let purposes = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| format!("TSA certificate's extended key usage: {e}"))?;
    if purposes.0 != [EKU_TIME_STAMPING] {
        return Err("TSA certificate may be used for more than timestamping".to_owned());
    }
    Ok(())
}

/// CMS allows a bare key algorithm (id-ecPublicKey, rsaEncryption) as the signature
/// algorithm, the hash then being the SignerInfo's digest algorithm; name the combination.
fn signer_algorithm(
    given: &AlgorithmIdentifierOwned,
    digest: HashAlgorithm,
) -> AlgorithmIdentifierOwned {
    let oid = match (given.oid, digest) {
        (rfc5912::ID_EC_PUBLIC_KEY, HashAlgorithm::Sha256) => rfc5912::ECDSA_WITH_SHA_256,
        (rfc5912::ID_EC_PUBLIC_KEY, HashAlgorithm::Sha384) => rfc5912::ECDSA_WITH_SHA_384,
        (rfc5912::ID_EC_PUBLIC_KEY, HashAlgorithm::Sha512) => rfc5912::ECDSA_WITH_SHA_512,
        (rfc5912::RSA_ENCRYPTION, HashAlgorithm::Sha256) => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        (rfc5912::RSA_ENCRYPTION, HashAlgorithm::Sha384) => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
        (rfc5912::RSA_ENCRYPTION, HashAlgorithm::Sha512) => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        _ => return given.clone(),
    };
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// The value of the one attribute of type `oid`, which must have exactly one value.
fn single_attr<T: for<'a> Decode<'a>>(
    attrs: &Attributes,
    oid: ObjectIdentifier,
) -> Result<T, TsaError> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let attr = found
        .next()
        .ok_or_else(|| TsaError::InvalidToken(format!("no signed attribute {oid}")))?;
    if found.next().is_some() {
        return Err(TsaError::InvalidToken(format!(
            "signed attribute {oid} repeated"
        )));
    }
    let values: &SetOfVec<Any> = &attr.values;
    let [value] = values.as_slice() else {
        return Err(TsaError::InvalidToken(format!(
            "signed attribute {oid} must have one value"
        )));
    };
    value
        .to_der()
        .and_then(|der| T::from_der(&der))
        .map_err(|e| malformed("signed attribute value", e))
}

/// The content of SignerInfo's `signedAttrs [0] IMPLICIT`, if present, from the SignerInfo
/// TLV: SEQUENCE { version, sid, digestAlgorithm, signedAttrs [0] OPTIONAL, … }.
fn signed_attrs_value(signer_info: &[u8]) -> der::Result<Option<&[u8]>> {
    let seq = AnyRef::from_der(signer_info)?;
    let mut r = SliceReader::new(seq.value())?;
    for _ in 0..3 {
        r.tlv_bytes()?;
    }
    if u8::from(r.peek_tag()?) == 0xA0 {
        return Ok(Some(AnyRef::decode(&mut r)?.value()));
    }
    Ok(None)
}

/// Each element TLV of a SET / SEQUENCE body, as bytes.
fn elements(body: &[u8]) -> der::Result<Vec<&[u8]>> {
    let mut r = SliceReader::new(body)?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(r.tlv_bytes()?);
    }
    Ok(out)
}

fn expect_tag(r: &SliceReader<'_>, tag: Tag) -> der::Result<()> {
    let found = r.peek_tag()?;
    if found == tag {
        Ok(())
    } else {
        Err(der::ErrorKind::TagUnexpected {
            expected: Some(tag),
            actual: found,
        }
        .into())
    }
}

fn is_ca(cert: &Cert) -> bool {
    cert.parsed()
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|e| e.extn_id == rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .any(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|bc| bc.ca))
}

fn malformed(what: &str, e: der::Error) -> TsaError {
    TsaError::Malformed(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigstore::bundle::Bundle;
    use crate::sigstore::trusted_root::TrustedRoot;
    use std::path::{Path, PathBuf};

    fn sigstore(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/sigstore")
            .join(rel)
    }

    fn load_case(case: &str) -> (Bundle, TrustedRoot) {
        let dir = sigstore("bundle-verify").join(case);
        let bundle =
            Bundle::from_json(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap()).unwrap();
        let root_path = dir.join("trusted_root.json");
        let root_path = if root_path.exists() {
            root_path
        } else {
            sigstore("trusted_root.production.json")
        };
        (bundle, TrustedRoot::load(&root_path).unwrap())
    }

    fn run(case: &str) -> Result<VerifiedTimestamp, TsaError> {
        let (bundle, root) = load_case(case);
        verify_timestamp(
            &bundle.timestamps[0],
            bundle.signature(),
            &root.timestamp_authorities,
        )
    }

    #[test]
    fn a_tsa_certificate_is_for_timestamping_only_and_says_so_critically() {
        use rcgen::{CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, KeyPair};
        use x509_cert::ext::pkix::ExtendedKeyUsage;
        let cert = |eku: Option<(&[ObjectIdentifier], bool)>, rcgen_eku: bool| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            if rcgen_eku {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::TimeStamping];
            }
            if let Some((oids, critical)) = eku {
                let der = ExtendedKeyUsage(oids.to_vec()).to_der().unwrap();
                let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], der);
                ext.set_criticality(critical);
                p.custom_extensions = vec![ext];
            }
            let c = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
            Cert::from_der(c.der()).unwrap()
        };
        let ts = [EKU_TIME_STAMPING];
        assert_eq!(timestamping_only(&cert(Some((&ts, true)), false)), Ok(()));
        let err = |c: Cert| timestamping_only(&c).unwrap_err();
        assert!(err(cert(Some((&ts, false)), false)).contains("not critical"));
        assert!(
            err(cert(None, true)).contains("not critical"),
            "rcgen's EKU"
        );
        let two = [EKU_TIME_STAMPING, chain::EKU_CODE_SIGNING];
        assert!(err(cert(Some((&two, true)), false)).contains("more than timestamping"));
        assert!(err(cert(None, false)).contains("0 extended key usage"));
    }

    #[test]
    fn valid_timestamp_cases_verify() {
        for case in [
            "rekor2-happy-path",
            "rekor2-timestamp-without-embedded-cert",
            "rekor2-timestamp-with-expired-cert-chain",
        ] {
            let ts = run(case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert!(ts.time.year() == 2025, "{case}: {ts:?}");
        }
    }

    #[test]
    fn failing_timestamp_cases_fail() {
        for case in [
            "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
            "rekor2-timestamp-payload-mismatch_fail",
            "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
            "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
        ] {
            let r = run(case);
            assert!(r.is_err(), "{case} verified: {r:?}");
        }
        assert!(matches!(
            run("rekor2-timestamp-payload-mismatch_fail"),
            Err(TsaError::ImprintMismatch(_))
        ));
        let err = run("rekor2-timestamp-outside-trust-root-tsa-validity_fail").unwrap_err();
        assert!(err.to_string().contains("validity window"), "{err}");
        for case in [
            "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
            "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
        ] {
            let err = run(case).unwrap_err();
            assert!(matches!(err, TsaError::Untrusted(_)), "{case}: {err}");
        }
    }

    #[test]
    fn kubewarden_cosign_v3_timestamp_verifies_against_production() {
        let bundle = Bundle::from_json(
            &std::fs::read(sigstore("kubewarden-controller-v1.34.0.bundle_v03.json")).unwrap(),
        )
        .unwrap();
        let root = TrustedRoot::load(&sigstore("trusted_root.production.json")).unwrap();
        let ts = verify_timestamp(
            &bundle.timestamps[0],
            bundle.signature(),
            &root.timestamp_authorities,
        )
        .unwrap();
        // `openssl ts -reply -text`: "Time stamp: Apr  9 07:23:29 2026 GMT".
        assert_eq!(
            ts.time.unix_timestamp(),
            1_775_719_409,
            "genTime {}",
            ts.time
        );
        assert_eq!(
            ts.authority,
            "https://timestamp.sigstore.dev/api/v1/timestamp"
        );
        // Another signature is not covered.
        assert!(matches!(
            verify_timestamp(&bundle.timestamps[0], b"other", &root.timestamp_authorities),
            Err(TsaError::ImprintMismatch(_))
        ));
        // No authorities: nothing vouches.
        assert!(matches!(
            verify_timestamp(&bundle.timestamps[0], bundle.signature(), &[]),
            Err(TsaError::Untrusted(_))
        ));
    }

    #[test]
    fn any_flipped_byte_in_the_signed_parts_fails() {
        let (bundle, root) = load_case("rekor2-happy-path");
        let good = &bundle.timestamps[0];
        // The signed parts: the TSTInfo, the signed attributes and the signature value. The
        // rest (PKIStatus, SignedData version, embedded certificates the trusted root's
        // pinned leaf makes irrelevant) is unsigned by design.
        let resp = TimeStampResp::from_der(good).unwrap();
        let token = resp.time_stamp_token.unwrap();
        let raw = RawSignedData::split(&token).unwrap();
        let encap = EncapsulatedContentInfo::from_der(raw.encap).unwrap();
        let tst = encap.econtent.unwrap().value().to_vec();
        let attrs = signed_attrs_value(raw.signer_infos[0])
            .unwrap()
            .unwrap()
            .to_vec();
        let info = SignerInfo::from_der(raw.signer_infos[0]).unwrap();
        let sig = info.signature.as_bytes().to_vec();
        let mut checked = 0;
        for part in [&tst, &attrs, &sig] {
            let start = good
                .windows(part.len())
                .position(|w| w == part.as_slice())
                .unwrap();
            for i in start..start + part.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x01;
                let r = verify_timestamp(&bad, bundle.signature(), &root.timestamp_authorities);
                assert!(r.is_err(), "flipping byte {i} still verified: {r:?}");
                checked += 1;
            }
        }
        assert!(checked > 300, "{checked}");
        // Also the digestAlgorithms set, which must name the SignerInfo's digest.
        let mut bad = good.clone();
        let sha256 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
        let first = good.windows(9).position(|w| w == sha256).unwrap();
        bad[first + 8] ^= 0x01;
        assert!(verify_timestamp(&bad, bundle.signature(), &root.timestamp_authorities).is_err());
    }

    #[test]
    fn bare_token_and_caps() {
        let (bundle, root) = load_case("rekor2-happy-path");
        let resp = TimeStampResp::from_der(&bundle.timestamps[0]).unwrap();
        let token = resp.time_stamp_token.unwrap().to_der().unwrap();
        verify_timestamp(&token, bundle.signature(), &root.timestamp_authorities).unwrap();
        let huge = vec![0u8; MAX_RESPONSE_BYTES + 1];
        assert!(matches!(
            verify_timestamp(&huge, bundle.signature(), &root.timestamp_authorities),
            Err(TsaError::TooLarge)
        ));
    }
}
