//! A test-only RFC 3161 timestamp authority for the test Sigstore in `sigstore_signer`
//! (trust-formats.md §2.7).
//!
//! It stands in for Sigstore's timestamp authority (timestamp.sigstore.dev), which cannot be
//! reached from the test machine and which, like any TSA, only signs "now". pullgate never
//! talks to a TSA: it checks the token a TSA returned, offline, against the trusted root's
//! `timestampAuthorities`. So this module makes that token the way a real TSA does, with the
//! time chosen by the test:
//!
//! - a P-256 root CA and a signing leaf with a *critical* EKU timeStamping and keyUsage
//!   digitalSignature (RFC 3161 §2.3), listed in the trusted root as `[leaf, root]` like
//!   Sigstore's own TSA entry;
//! - a DER `TimeStampResp` (status granted) whose token is CMS SignedData (RFC 5652) with
//!   eContentType id-ct-TSTInfo, a TSTInfo whose messageImprint is SHA-256 of the signature
//!   bytes, the leaf embedded, and one SignerInfo (issuerAndSerialNumber) with the signed
//!   attributes a TSA sets: content-type, message-digest (SHA-256 of the TSTInfo DER) and
//!   signingCertificateV2 (RFC 5816), ECDSA P-256 / SHA-256 over their DER SET OF.
//!
//! Every structure is built with the `cms`, `x509-tsp`, `x509-cert` and `der` types and
//! encoded with `der`, so the bytes are the DER a conforming TSA emits.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{GeneralizedTime, Int, ObjectIdentifier, OctetString, SetOfVec};
use der::oid::db::{rfc5911, rfc5912};
use der::{Any, Decode as _, Encode as _, Tag};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_tsp::{Accuracy, MessageImprint, TspVersion, TstInfo};

/// id-ct-TSTInfo (RFC 3161 §2.4.2).
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-kp-timeStamping.
const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// Sigstore's TSA policy; pullgate does not check the policy, any OID would do.
const TSA_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.2");
/// The trusted root entry's validity start: long before any test runs.
const TRUSTED_SINCE: &str = "2020-01-01T00:00:00Z";

/// ESSCertIDv2 (RFC 5035 §5.4.1) with the default hash algorithm (SHA-256), which DER omits.
#[derive(Clone, Debug, der::Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

/// IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }
#[derive(Clone, Debug, der::Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies OPTIONAL }
#[derive(Clone, Debug, der::Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// A timestamp authority: its CA, its signing certificate and key.
pub(crate) struct TestTsa {
    pub uri: String,
    root_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf: Certificate,
    key: SigningKey,
}

fn sha256_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: rfc5912::ID_SHA_256,
        parameters: None,
    }
}

fn attribute(oid: ObjectIdentifier, value: &impl der::Encode) -> Attribute {
    Attribute {
        oid,
        values: SetOfVec::try_from(vec![Any::from_der(&value.to_der().unwrap()).unwrap()]).unwrap(),
    }
}

fn key_pair() -> (rcgen::KeyPair, SigningKey) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let sk = SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
    (kp, sk)
}

fn params(cn: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "pullgate.test");
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.not_before = OffsetDateTime::now_utc() - time::Duration::days(30);
    p.not_after = OffsetDateTime::now_utc() + time::Duration::days(365);
    p
}

// === impl TestTsa ===

impl TestTsa {
    /// A new authority (fresh keys) that calls itself `uri` in the trusted root.
    pub(crate) fn new(uri: &str) -> TestTsa {
        let (root_kp, _) = key_pair();
        let mut root = params(&format!("{uri} root"));
        root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        root.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let root = root.self_signed(&root_kp).unwrap();

        let (leaf_kp, key) = key_pair();
        let mut leaf = params(&format!("{uri} signer"));
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        // RFC 3161 §2.3: exactly one EKU, timeStamping, and the extension MUST be critical.
        // rcgen marks its own EKU extension non-critical, hence a custom one.
        let mut eku = rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 37],
            ExtendedKeyUsage(vec![ID_KP_TIME_STAMPING])
                .to_der()
                .unwrap(),
        );
        eku.set_criticality(true);
        leaf.custom_extensions = vec![eku];
        let leaf = leaf.signed_by(&leaf_kp, &root, &root_kp).unwrap();
        TestTsa {
            uri: uri.to_owned(),
            root_der: root.der().to_vec(),
            leaf: Certificate::from_der(leaf.der()).unwrap(),
            leaf_der: leaf.der().to_vec(),
            key,
        }
    }

    /// This authority as a trusted root `timestampAuthorities` entry: the signing leaf, then
    /// the root.
    pub(crate) fn authority(&self) -> Value {
        json!({
            "subject": { "organization": "pullgate.test", "commonName": self.uri },
            "uri": self.uri,
            "certChain": { "certificates": [
                { "rawBytes": STANDARD.encode(&self.leaf_der) },
                { "rawBytes": STANDARD.encode(&self.root_der) },
            ] },
            "validFor": { "start": TRUSTED_SINCE },
        })
    }

    /// A DER `TimeStampResp` granting a token that says `signature` existed at `gen_time`
    /// (whole seconds are kept, as Sigstore's TSA does with its one-second accuracy).
    pub(crate) fn timestamp(&self, signature: &[u8], gen_time: OffsetDateTime) -> Vec<u8> {
        let secs = u64::try_from(gen_time.unix_timestamp()).unwrap();
        let mut serial = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
        serial[0] = (serial[0] & 0x7f) | 0x10; // positive, no leading zero octet
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: TSA_POLICY,
            message_imprint: MessageImprint {
                hash_algorithm: sha256_alg(),
                hashed_message: OctetString::new(Sha256::digest(signature).to_vec()).unwrap(),
            },
            serial_number: Int::new(&serial).unwrap(),
            gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
                .unwrap(),
            accuracy: Some(Accuracy {
                seconds: Some(1),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: None,
            tsa: None,
            extensions: None,
        };
        let tst_der = tst.to_der().unwrap();

        let tbs = &self.leaf.tbs_certificate;
        let signing_certificate = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(Sha256::digest(&self.leaf_der).to_vec()).unwrap(),
                issuer_serial: IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                    serial_number: tbs.serial_number.clone(),
                },
            }],
        };
        // A DER SET OF is sorted by encoding; `try_from` sorts, so these encode as signed.
        let signed_attrs = SetOfVec::try_from(vec![
            attribute(rfc5911::ID_CONTENT_TYPE, &ID_CT_TST_INFO),
            attribute(
                rfc5911::ID_MESSAGE_DIGEST,
                &OctetString::new(Sha256::digest(&tst_der).to_vec()).unwrap(),
            ),
            attribute(rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2, &signing_certificate),
        ])
        .unwrap();
        // RFC 5652 §5.4: the signature is over the attributes' DER as a SET OF (tag 0x31),
        // not as the [0] IMPLICIT they are stored with.
        let sig: Signature = self.key.sign(&signed_attrs.to_der().unwrap());
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
            digest_alg: sha256_alg(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: OctetString::new(sig.to_der().as_bytes().to_vec()).unwrap(),
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![sha256_alg()]).unwrap(),
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(Any::new(Tag::OctetString, tst_der).unwrap()),
            },
            // Like a TSA asked with certReq: the signer's certificate travels with the token.
            certificates: Some(CertificateSet(
                SetOfVec::try_from(vec![CertificateChoices::Certificate(self.leaf.clone())])
                    .unwrap(),
            )),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).unwrap()),
        };
        let token = ContentInfo {
            content_type: rfc5911::ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data).unwrap(),
        };
        // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken }. x509-tsp's
        // PKIStatusInfo type lives in `cmpv2`, not a dependency here; the granted status is
        // a fixed five bytes: SEQUENCE { INTEGER 0 }.
        let status = [0x30, 0x03, 0x02, 0x01, 0x00];
        let body = [status.as_slice(), &token.to_der().unwrap()].concat();
        Any::new(Tag::Sequence, body).unwrap().to_der().unwrap()
    }
}

// === Checked with pullgate's verifier directly ===

#[test]
fn test_tsa_tokens_verify_with_pullgate_and_only_over_their_signature_and_authority() {
    use pullgate::sigstore::trusted_root::TrustedRoot;
    use pullgate::sigstore::tsa::{verify_timestamp, TsaError};

    let tsa = TestTsa::new("https://tsa.pullgate.test/api/v1/timestamp");
    let stranger = TestTsa::new("https://tsa.stranger.test/api/v1/timestamp");
    let root = |authorities: Vec<Value>| {
        let json = json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [], "ctlogs": [], "certificateAuthorities": [],
            "timestampAuthorities": authorities,
        });
        TrustedRoot::from_json(&serde_json::to_vec(&json).unwrap()).unwrap()
    };
    let trusting = root(vec![tsa.authority()]);
    // Inside the certificates' validity (issued 30 days ago), whole seconds.
    let at = OffsetDateTime::from_unix_timestamp(
        (OffsetDateTime::now_utc() - time::Duration::hours(1)).unix_timestamp(),
    )
    .unwrap();
    let response = tsa.timestamp(b"the signature bytes", at);

    let ts = verify_timestamp(
        &response,
        b"the signature bytes",
        &trusting.timestamp_authorities,
    )
    .unwrap();
    assert_eq!(ts.time, at);
    assert_eq!(ts.authority, tsa.uri);

    // Parsed as what it claims to be: a granted response with the leaf embedded and the
    // three signed attributes.
    let parsed = x509_tsp::TimeStampResp::from_der(&response).unwrap();
    let token = parsed.time_stamp_token.unwrap();
    let signed_data: SignedData = token.content.decode_as().unwrap();
    assert_eq!(signed_data.certificates.unwrap().0.len(), 1);
    let info = signed_data.signer_infos.0.iter().next().unwrap();
    let oids: Vec<_> = info
        .signed_attrs
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.oid)
        .collect();
    for oid in [
        rfc5911::ID_CONTENT_TYPE,
        rfc5911::ID_MESSAGE_DIGEST,
        rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2,
    ] {
        assert!(oids.contains(&oid), "{oid} missing from {oids:?}");
    }

    // The signer certificate carries a critical EKU of exactly timeStamping (RFC 3161 §2.3).
    let eku = tsa
        .leaf
        .tbs_certificate
        .extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.37"))
        .unwrap();
    assert!(eku.critical);
    assert_eq!(
        ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
            .unwrap()
            .0,
        vec![ID_KP_TIME_STAMPING]
    );

    assert!(matches!(
        verify_timestamp(&response, b"other bytes", &trusting.timestamp_authorities),
        Err(TsaError::ImprintMismatch(_))
    ));
    let foreign = stranger.timestamp(b"the signature bytes", at);
    let err = verify_timestamp(
        &foreign,
        b"the signature bytes",
        &trusting.timestamp_authorities,
    )
    .unwrap_err();
    assert!(matches!(err, TsaError::Untrusted(_)), "{err}");
    // The stranger's token verifies where the stranger is trusted: the refusal above is
    // about trust, not about a malformed token.
    verify_timestamp(
        &foreign,
        b"the signature bytes",
        &root(vec![stranger.authority()]).timestamp_authorities,
    )
    .unwrap();
}
