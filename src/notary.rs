//! STUB: replaced by the notary-core branch at merge.
#![allow(dead_code, unused_variables)]
use std::collections::BTreeMap;
pub trait Fetch {
    async fn fetch(
        &self,
        gun: &str,
        name: &str,
        limit: usize,
    ) -> Result<Option<bytes::Bytes>, FetchError>;
}
#[derive(Debug, thiserror::Error, Clone)]
#[error("{0}")]
pub struct FetchError(pub String);
pub enum RootTrust {
    Keys(Vec<String>),
    File(Vec<u8>),
    FirstUse,
}
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub root: Option<String>,
    pub versions: BTreeMap<String, u64>,
}
pub async fn update(
    fetch: &impl Fetch,
    gun: &str,
    trust: &RootTrust,
    roles: &[String],
    state: &State,
    now: time::OffsetDateTime,
) -> Result<(TrustData, State), NotaryError> {
    Err(NotaryError::Stub)
}
#[derive(Debug, Clone)]
pub struct TrustData {
    gun: String,
}
impl TrustData {
    pub fn gun(&self) -> &str {
        &self.gun
    }
    pub fn expires(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }
    pub fn tag(&self, tag: &str, roles: &[String]) -> Option<SignedTarget> {
        None
    }
    pub fn digest(
        &self,
        digest: &crate::registry::Digest,
        roles: &[String],
    ) -> Option<SignedTarget> {
        None
    }
    pub fn notes(&self) -> &[String] {
        &[]
    }
    pub fn version(&self, role: &str) -> Option<u64> {
        None
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTarget {
    pub role: String,
    pub name: String,
    pub digest: crate::registry::Digest,
    pub length: u64,
}
#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    #[error("stub")]
    Stub,
    #[error("notary server: {0}")]
    Fetch(FetchError),
}
impl NotaryError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, NotaryError::Fetch(_))
    }
}
