//! One X.509 certificate: the parsed structure plus the exact DER it came from, since
//! signatures, SCTs and log entries are checked against bytes, not against a re-encoding.

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::Certificate;

/// Certificates in trust evidence are a few KiB; Fulcio leaves with many CI claims ~3 KiB.
pub const MAX_CERT_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    parsed: Box<Certificate>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate larger than {MAX_CERT_BYTES} bytes")]
    TooLarge,
    #[error("malformed certificate: {0}")]
    Malformed(String),
    #[error("certificate has trailing bytes after its DER")]
    Trailing,
}

impl Cert {
    /// Parses one DER certificate; the bytes must be exactly one certificate.
    pub fn from_der(der: &[u8]) -> Result<Cert, CertError> {
        if der.len() > MAX_CERT_BYTES {
            return Err(CertError::TooLarge);
        }
        let parsed = Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        // `from_der` already rejects trailing data; re-encoding must reproduce the input, or
        // the certificate was not DER (BER leniency would let two encodings share a signature).
        let again = parsed
            .to_der()
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        if again != der {
            return Err(CertError::Trailing);
        }
        Ok(Cert {
            der: der.to_vec(),
            parsed: Box::new(parsed),
        })
    }

    /// Parses every PEM `CERTIFICATE` block in `text`, in order.
    pub fn from_pem_chain(text: &[u8]) -> Result<Vec<Cert>, CertError> {
        let certs =
            Certificate::load_pem_chain(text).map_err(|e| CertError::Malformed(e.to_string()))?;
        certs
            .iter()
            .map(|c| {
                let der = c
                    .to_der()
                    .map_err(|e| CertError::Malformed(e.to_string()))?;
                Cert::from_der(&der)
            })
            .collect()
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn parsed(&self) -> &Certificate {
        &self.parsed
    }

    /// DER SubjectPublicKeyInfo of the certificate's key.
    pub fn spki_der(&self) -> Result<Vec<u8>, CertError> {
        self.parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| CertError::Malformed(e.to_string()))
    }

    pub fn not_before(&self) -> OffsetDateTime {
        to_time(self.parsed.tbs_certificate.validity.not_before)
    }

    pub fn not_after(&self) -> OffsetDateTime {
        to_time(self.parsed.tbs_certificate.validity.not_after)
    }

    /// Whether `t` is inside the certificate's validity (both ends inclusive, RFC 5280
    /// §4.1.2.5).
    pub fn valid_at(&self, t: OffsetDateTime) -> bool {
        self.not_before() <= t && t <= self.not_after()
    }
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cert({})", self.parsed.tbs_certificate.subject)
    }
}

fn to_time(t: x509_cert::time::Time) -> OffsetDateTime {
    let secs = t.to_unix_duration().as_secs();
    // X.509 times end in 9999; both fit i64 seconds and `time`'s range.
    OffsetDateTime::from_unix_timestamp(secs as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
