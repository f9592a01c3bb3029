//! The in-toto statement inside a DSSE envelope: which artifacts it is about (subjects) and
//! what kind of claim it makes (predicate type). cosign v3 signs images as a statement with
//! the predicate type [`COSIGN_SIGN_PREDICATE`] (trust-formats.md §2.9).

use serde::Deserialize;

pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate cosign v3 uses for a plain image signature; any other predicate is an
/// attestation, which is not a signature unless a rule says so.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

const STATEMENT_TYPES: &[&str] = &[
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// A statement caps what it is asked to hold: subjects beyond this are refused.
const MAX_SUBJECTS: usize = 1024;

#[derive(Debug, Clone)]
pub struct Statement {
    pub predicate_type: String,
    /// Lowercase hex SHA-256 digests of the subjects (subjects without one are skipped).
    pub sha256_subjects: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("DSSE payload type is {0:?}, not {PAYLOAD_TYPE}")]
    PayloadType(String),
    #[error("in-toto statement is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("in-toto statement type {0:?} is not supported")]
    Type(String),
    #[error("in-toto statement has more than {MAX_SUBJECTS} subjects")]
    TooManySubjects,
}

impl Statement {
    pub fn parse(payload_type: &str, payload: &[u8]) -> Result<Statement, StatementError> {
        if payload_type != PAYLOAD_TYPE {
            return Err(StatementError::PayloadType(payload_type.to_owned()));
        }
        let raw: RawStatement =
            serde_json::from_slice(payload).map_err(|e| StatementError::Json(e.to_string()))?;
        if !STATEMENT_TYPES.contains(&raw.type_.as_str()) {
            return Err(StatementError::Type(raw.type_));
        }
        if raw.subject.len() > MAX_SUBJECTS {
            return Err(StatementError::TooManySubjects);
        }
        Ok(Statement {
            predicate_type: raw.predicate_type,
            sha256_subjects: raw
                .subject
                .into_iter()
                .filter_map(|s| s.digest.sha256)
                .map(|d| d.to_ascii_lowercase())
                .collect(),
        })
    }

    /// Whether one of the subjects has this SHA-256 digest.
    pub fn has_subject(&self, sha256: &[u8; 32]) -> bool {
        let want = hex::encode(sha256);
        self.sha256_subjects.contains(&want)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(rename = "_type")]
    type_: String,
    #[serde(default)]
    subject: Vec<RawSubject>,
    #[serde(default)]
    predicate_type: String,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    digest: RawDigests,
}

#[derive(Deserialize, Default)]
struct RawDigests {
    sha256: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_sign_statement() {
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"C811D58D00000000000000000000000000000000000000000000000000000172"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1"}"#;
        let s = Statement::parse(PAYLOAD_TYPE, payload).unwrap();
        assert_eq!(s.predicate_type, COSIGN_SIGN_PREDICATE);
        let mut d = [0u8; 32];
        d[0] = 0xc8;
        d[1] = 0x11;
        d[2] = 0xd5;
        d[3] = 0x8d;
        d[31] = 0x72;
        d[30] = 0x01;
        assert!(s.has_subject(&d));
        assert!(!s.has_subject(&[0u8; 32]));
    }

    #[test]
    fn wrong_types_are_refused() {
        assert!(Statement::parse("text/plain", b"{}").is_err());
        assert!(Statement::parse(PAYLOAD_TYPE, br#"{"_type":"x","subject":[]}"#).is_err());
        assert!(Statement::parse(PAYLOAD_TYPE, b"not json").is_err());
    }
}
