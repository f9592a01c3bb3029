//! The signer identity in a Fulcio certificate and the policies it is checked against
//! (trust-formats.md §2.2).
//!
//! Fulcio binds an OIDC identity to an ephemeral key: the token's issuer goes into a
//! Sigstore extension, the token's subject (an email, a CI workflow URI or a username) into
//! the SubjectAltName. A policy names the issuer and the subject it trusts; both must match.
//! This module only reads the identity out of a certificate whose chain is checked elsewhere.

use std::fmt;

use der::asn1::ObjectIdentifier;
use der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::Extension;

use super::cert::Cert;

/// OIDC issuer, deprecated form: the raw string bytes as the extension value, no DER.
pub const OID_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// OIDC issuer, current form: a DER UTF8String.
pub const OID_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// The OtherName type Fulcio uses for plain usernames (UTF8String value).
pub const OID_OTHERNAME_USERNAME: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");
const OID_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// Who a Fulcio certificate says signed: the OIDC issuer and the SAN values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerIdentity {
    /// Absent when the certificate carries neither issuer extension; no policy matches
    /// such a certificate.
    pub issuer: Option<String>,
    /// The email, URI and Sigstore-username SAN values, in certificate order (never empty).
    pub subjects: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FulcioError {
    #[error("certificate has no subject alternative name")]
    NoSan,
    #[error("certificate SAN holds no email, URI or Sigstore username")]
    NoIdentity,
    #[error("certificate has extension {0} more than once")]
    DuplicateExtension(ObjectIdentifier),
    #[error("malformed certificate extension {oid}: {detail}")]
    Malformed {
        oid: ObjectIdentifier,
        detail: String,
    },
    #[error("certificate OIDC issuer extensions disagree: {OID_ISSUER_V2} says {v2:?}, {OID_ISSUER_V1} says {v1:?}")]
    IssuerMismatch { v2: String, v1: String },
}

/// Extracts the OIDC issuer and the SAN identities from a Fulcio leaf.
pub fn signer_identity(leaf: &Cert) -> Result<SignerIdentity, FulcioError> {
    let extensions = leaf
        .parsed()
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or(&[]);
    Ok(SignerIdentity {
        issuer: issuer(extensions)?,
        subjects: subjects(extensions)?,
    })
}

/// The extension with `oid`, if present. RFC 5280 §4.2 forbids repeating an extension; a
/// repeat is an error rather than "take the first", so two parsers cannot read two
/// different identities from one certificate.
fn unique(
    extensions: &[Extension],
    oid: ObjectIdentifier,
) -> Result<Option<&Extension>, FulcioError> {
    let mut found = extensions.iter().filter(|e| e.extn_id == oid);
    let first = found.next();
    if found.next().is_some() {
        return Err(FulcioError::DuplicateExtension(oid));
    }
    Ok(first)
}

fn issuer(extensions: &[Extension]) -> Result<Option<String>, FulcioError> {
    let v2 = unique(extensions, OID_ISSUER_V2)?
        .map(|e| {
            String::from_der(e.extn_value.as_bytes()).map_err(|err| FulcioError::Malformed {
                oid: OID_ISSUER_V2,
                detail: format!("not a DER UTF8String: {err}"),
            })
        })
        .transpose()?;
    let v1 = unique(extensions, OID_ISSUER_V1)?
        .map(|e| {
            String::from_utf8(e.extn_value.as_bytes().to_vec()).map_err(|_| {
                FulcioError::Malformed {
                    oid: OID_ISSUER_V1,
                    detail: "not UTF-8".to_owned(),
                }
            })
        })
        .transpose()?;
    // sigstore-go prefers .8 and only falls back to .1; Fulcio writes the same value into
    // both. A certificate where they differ is not one Fulcio made, and which one another
    // verifier would trust is unknowable, so neither is believed.
    match (v2, v1) {
        (Some(v2), Some(v1)) if v2 != v1 => Err(FulcioError::IssuerMismatch { v2, v1 }),
        (Some(v2), _) => Ok(Some(v2)),
        (None, v1) => Ok(v1),
    }
}

fn subjects(extensions: &[Extension]) -> Result<Vec<String>, FulcioError> {
    let ext = unique(extensions, OID_SUBJECT_ALT_NAME)?.ok_or(FulcioError::NoSan)?;
    let malformed = |detail: String| FulcioError::Malformed {
        oid: OID_SUBJECT_ALT_NAME,
        detail,
    };
    // A SAN kind x509-cert cannot decode (x400Address) fails the whole extension: Fulcio
    // never writes one, so failing closed costs nothing.
    let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
        .map_err(|e| malformed(e.to_string()))?;
    let mut out = Vec::new();
    for name in &san.0 {
        match name {
            GeneralName::Rfc822Name(s) | GeneralName::UniformResourceIdentifier(s) => {
                out.push(s.as_str().to_owned())
            }
            GeneralName::OtherName(other) if other.type_id == OID_OTHERNAME_USERNAME => {
                let value = other
                    .value
                    .decode_as::<String>()
                    .map_err(|e| malformed(format!("username is not a UTF8String: {e}")))?;
                out.push(value);
            }
            // DNS names, IP addresses and foreign OtherNames are not OIDC identities
            // Fulcio issues; a policy must not be able to match them.
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(FulcioError::NoIdentity);
    }
    Ok(out)
}

/// How a policy names an issuer or a subject.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    /// Always anchored at both ends (see [`Matcher::regex`]).
    Regex(regex::Regex),
}

impl Matcher {
    pub fn exact(s: impl Into<String>) -> Matcher {
        Matcher::Exact(s.into())
    }

    /// Compiles `pattern` to match whole values only. cosign's Go regexes are unanchored, so
    /// `https://github.com/org/` there also matches `https://evil.example/?https://github.com/org/`;
    /// wrapping in `^(?:…)$` makes the pattern mean what its author most likely meant.
    pub fn regex(pattern: &str) -> Result<Matcher, regex::Error> {
        regex::Regex::new(&format!("^(?:{pattern})$")).map(Matcher::Regex)
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(want) => want == s,
            Matcher::Regex(re) => re.is_match(s),
        }
    }
}

/// The identity a signature must come from.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    pub issuer: Matcher,
    pub subject: Matcher,
}

impl IdentityPolicy {
    /// The issuer must be present and match, and at least one subject must match: the
    /// subject alone means nothing, since every OIDC provider can mint any email or URI
    /// within its own namespace.
    pub fn matches(&self, id: &SignerIdentity) -> bool {
        let issuer_ok = id
            .issuer
            .as_deref()
            .is_some_and(|issuer| self.issuer.matches(issuer));
        issuer_ok && id.subjects.iter().any(|s| self.subject.matches(s))
    }
}

impl fmt::Display for SignerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.subjects.join(", "))?;
        match &self.issuer {
            Some(issuer) => write!(f, " (issuer {issuer})"),
            None => write!(f, " (no issuer)"),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s}"),
            // The anchored form, which is what is actually matched.
            Matcher::Regex(re) => write!(f, "regex {}", re.as_str()),
        }
    }
}

impl fmt::Display for IdentityPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (issuer {})", self.subject, self.issuer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigstore::bundle::Bundle;
    use std::path::Path;

    const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

    fn leaf_of(name: &str) -> Cert {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/sigstore")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bundle = Bundle::from_json(&bytes).unwrap();
        bundle.leaf().unwrap().clone()
    }

    /// A self-signed certificate with the given SANs and extra extensions.
    fn made(sans: Vec<rcgen::SanType>, extensions: Vec<(&[u64], Vec<u8>)>) -> Cert {
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = sans;
        params.custom_extensions = extensions
            .into_iter()
            .map(|(oid, content)| rcgen::CustomExtension::from_oid_content(oid, content))
            .collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Cert::from_der(cert.der()).unwrap()
    }

    const ISSUER_V1: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];
    const ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];

    fn utf8_der(s: &str) -> Vec<u8> {
        use der::Encode;
        der::asn1::Utf8StringRef::new(s).unwrap().to_der().unwrap()
    }

    fn uri(s: &str) -> rcgen::SanType {
        rcgen::SanType::URI(s.try_into().unwrap())
    }

    #[test]
    fn conformance_leaf_has_the_default_identity() {
        let id = signer_identity(&leaf_of(
            "bundle-verify/happy-path-v0.3/bundle.sigstore.json",
        ))
        .unwrap();
        assert_eq!(id.issuer.as_deref(), Some(GITHUB_ISSUER));
        assert_eq!(id.subjects, vec![DEFAULT_IDENTITY.to_owned()]);
        assert_eq!(
            id.to_string(),
            format!("{DEFAULT_IDENTITY} (issuer {GITHUB_ISSUER})")
        );
    }

    #[test]
    fn policy_matching() {
        let id = signer_identity(&leaf_of(
            "bundle-verify/happy-path-v0.3/bundle.sigstore.json",
        ))
        .unwrap();
        let policy = |issuer: Matcher, subject: Matcher| IdentityPolicy { issuer, subject };

        assert!(policy(
            Matcher::exact(GITHUB_ISSUER),
            Matcher::exact(DEFAULT_IDENTITY)
        )
        .matches(&id));
        assert!(policy(
            Matcher::exact(GITHUB_ISSUER),
            Matcher::regex(r"https://github\.com/sigstore-conformance/.*").unwrap()
        )
        .matches(&id));
        // Anchored: a pattern matching only part of the value does not match.
        assert!(!policy(
            Matcher::exact(GITHUB_ISSUER),
            Matcher::regex("sigstore-conformance").unwrap()
        )
        .matches(&id));
        assert!(!policy(
            Matcher::regex(r"https://token\.actions").unwrap(),
            Matcher::exact(DEFAULT_IDENTITY)
        )
        .matches(&id));
        // Issuer regex that does cover the whole value.
        assert!(policy(
            Matcher::regex(r"https://token\.actions\.githubusercontent\.com").unwrap(),
            Matcher::exact(DEFAULT_IDENTITY)
        )
        .matches(&id));
        // Wrong issuer, right subject.
        assert!(!policy(
            Matcher::exact("https://accounts.google.com"),
            Matcher::exact(DEFAULT_IDENTITY)
        )
        .matches(&id));
        // Wrong subject, right issuer.
        assert!(!policy(
            Matcher::exact(GITHUB_ISSUER),
            Matcher::exact("https://github.com/sigstore-conformance/other")
        )
        .matches(&id));
        // No issuer in the certificate: even a match-anything issuer regex fails.
        let no_issuer = SignerIdentity {
            issuer: None,
            ..id.clone()
        };
        assert!(!policy(
            Matcher::regex(".*").unwrap(),
            Matcher::exact(DEFAULT_IDENTITY)
        )
        .matches(&no_issuer));

        let shown = policy(
            Matcher::exact(GITHUB_ISSUER),
            Matcher::regex("https://github.com/x/.*").unwrap(),
        )
        .to_string();
        assert_eq!(
            shown,
            format!("regex ^(?:https://github.com/x/.*)$ (issuer {GITHUB_ISSUER})")
        );
    }

    #[test]
    fn kubewarden_leaf() {
        let id =
            signer_identity(&leaf_of("kubewarden-controller-v1.34.0.bundle_v03.json")).unwrap();
        assert_eq!(id.issuer.as_deref(), Some(GITHUB_ISSUER));
        assert_eq!(id.subjects.len(), 1);
        let san = &id.subjects[0];
        assert_eq!(
            san,
            "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"
        );
        let policy = IdentityPolicy {
            issuer: Matcher::exact(GITHUB_ISSUER),
            subject: Matcher::regex(r"https://github\.com/kubewarden/.+").unwrap(),
        };
        assert!(policy.matches(&id));
    }

    #[test]
    fn disagreeing_issuer_extensions_are_an_error() {
        let cert = made(
            vec![uri(
                "https://github.com/org/repo/.github/workflows/x.yml@refs/tags/v1",
            )],
            vec![
                (ISSUER_V2, utf8_der(GITHUB_ISSUER)),
                (ISSUER_V1, b"https://evil.example".to_vec()),
            ],
        );
        let err = signer_identity(&cert).unwrap_err();
        assert!(matches!(err, FulcioError::IssuerMismatch { .. }), "{err}");
    }

    #[test]
    fn agreeing_issuer_extensions_are_fine() {
        let cert = made(
            vec![uri(
                "https://github.com/org/repo/.github/workflows/x.yml@refs/tags/v1",
            )],
            vec![
                (ISSUER_V2, utf8_der(GITHUB_ISSUER)),
                (ISSUER_V1, GITHUB_ISSUER.as_bytes().to_vec()),
            ],
        );
        let id = signer_identity(&cert).unwrap();
        assert_eq!(id.issuer.as_deref(), Some(GITHUB_ISSUER));
        assert_eq!(
            id.to_string(),
            format!(
                "https://github.com/org/repo/.github/workflows/x.yml@refs/tags/v1 (issuer {GITHUB_ISSUER})"
            )
        );
    }

    #[test]
    fn deprecated_issuer_extension_alone() {
        let cert = made(
            vec![uri("https://example.com/ci")],
            vec![(ISSUER_V1, b"https://oauth2.sigstore.dev/auth".to_vec())],
        );
        let id = signer_identity(&cert).unwrap();
        assert_eq!(
            id.issuer.as_deref(),
            Some("https://oauth2.sigstore.dev/auth")
        );
    }

    #[test]
    fn issuer_v2_must_be_der() {
        // The raw-string form in the .8 extension is not a UTF8String.
        let cert = made(
            vec![uri("https://example.com/ci")],
            vec![(ISSUER_V2, GITHUB_ISSUER.as_bytes().to_vec())],
        );
        assert!(matches!(
            signer_identity(&cert),
            Err(FulcioError::Malformed { .. })
        ));
    }

    #[test]
    fn email_and_username_sans() {
        let cert = made(
            vec![
                rcgen::SanType::Rfc822Name("alice@example.com".try_into().unwrap()),
                rcgen::SanType::DnsName("ignored.example.com".try_into().unwrap()),
                rcgen::SanType::OtherName((vec![1, 3, 6, 1, 4, 1, 57264, 1, 7], "alice".into())),
                // A foreign OtherName is not an identity.
                rcgen::SanType::OtherName((
                    vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                    "upn@example.com".into(),
                )),
            ],
            vec![(ISSUER_V2, utf8_der("https://accounts.google.com"))],
        );
        let id = signer_identity(&cert).unwrap();
        assert_eq!(id.subjects, vec!["alice@example.com", "alice"]);
        assert_eq!(id.issuer.as_deref(), Some("https://accounts.google.com"));
        let policy = IdentityPolicy {
            issuer: Matcher::exact("https://accounts.google.com"),
            subject: Matcher::exact("alice@example.com"),
        };
        assert!(policy.matches(&id));
    }

    #[test]
    fn no_issuer_is_none_not_an_error() {
        let cert = made(vec![uri("https://example.com/ci")], vec![]);
        assert_eq!(signer_identity(&cert).unwrap().issuer, None);
    }

    #[test]
    fn identity_needs_a_usable_san() {
        let only_dns = made(
            vec![rcgen::SanType::DnsName("example.com".try_into().unwrap())],
            vec![(ISSUER_V2, utf8_der(GITHUB_ISSUER))],
        );
        assert!(matches!(
            signer_identity(&only_dns),
            Err(FulcioError::NoIdentity)
        ));
        let none = made(vec![], vec![(ISSUER_V2, utf8_der(GITHUB_ISSUER))]);
        assert!(matches!(signer_identity(&none), Err(FulcioError::NoSan)));
    }

    #[test]
    fn duplicate_issuer_extension_is_an_error() {
        let cert = made(
            vec![uri("https://example.com/ci")],
            vec![
                (ISSUER_V1, b"https://a.example".to_vec()),
                (ISSUER_V1, b"https://b.example".to_vec()),
            ],
        );
        assert!(matches!(
            signer_identity(&cert),
            Err(FulcioError::DuplicateExtension(_))
        ));
    }
}
