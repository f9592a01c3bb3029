//! The notary dialect of TUF metadata (trust-formats.md §3.2): typed views of the four role
//! files, parsed from bytes with size and count caps, plus the canonical bytes each
//! envelope's signatures cover.
//!
//! Unknown fields are ignored (newer notary versions add some); missing required fields,
//! a wrong `_type` or an oversized collection are errors.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::canonical;

/// notary's own cap for `timestamp.json` (`notary.MaxTimestampSize`).
pub const MAX_TIMESTAMP_BYTES: usize = 1024 * 1024;
/// Root, snapshot, targets and delegation files: real ones are a few KiB; a targets file with
/// thousands of tags stays well under this.
pub const MAX_METADATA_BYTES: usize = 4 * 1024 * 1024;
/// Keys, delegated roles, snapshot entries and targets per file.
pub const MAX_ENTRIES: usize = 10_000;
/// Signatures per envelope: thresholds are small; many signatures only cost verification time.
pub const MAX_SIGNATURES: usize = 64;

/// One signature of an envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct Signature {
    pub keyid: String,
    pub method: String,
    pub sig: String,
}

/// A public key as metadata carries it; what `public` holds depends on `keytype` (§3.3).
#[derive(Debug, Clone, Deserialize)]
pub struct KeyJson {
    pub keytype: String,
    pub keyval: KeyVal,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyVal {
    pub public: String,
}

/// Key ids and threshold of a role.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u64,
}

/// Hashes (base64, by algorithm name) and length of a file listed by a parent role.
#[derive(Debug, Clone, Deserialize)]
pub struct FileMeta {
    pub hashes: BTreeMap<String, String>,
    pub length: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub type_: String,
    pub version: u64,
    pub expires: String,
    pub keys: BTreeMap<String, KeyJson>,
    pub roles: BTreeMap<String, RoleKeys>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    pub type_: String,
    pub version: u64,
    pub expires: String,
    pub meta: BTreeMap<String, FileMeta>,
}

/// Snapshot has the same shape as timestamp; only `_type` and the listed roles differ.
pub type Snapshot = Timestamp;

#[derive(Debug, Clone, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub type_: String,
    pub version: u64,
    pub expires: String,
    pub targets: BTreeMap<String, TargetMeta>,
    #[serde(default)]
    pub delegations: Delegations,
}

/// A target: hashes may be missing or in unknown algorithms; those targets are skipped later,
/// not rejected here, so one odd entry does not take down the whole role.
#[derive(Debug, Clone, Deserialize)]
pub struct TargetMeta {
    #[serde(default)]
    pub hashes: BTreeMap<String, String>,
    pub length: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Delegations {
    #[serde(default)]
    pub keys: BTreeMap<String, KeyJson>,
    #[serde(default)]
    pub roles: Vec<DelegatedRole>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DelegatedRole {
    pub name: String,
    pub keyids: Vec<String>,
    pub threshold: u64,
    /// String prefixes of target names; `""` means every name. Absent means none: notary's
    /// `path_hash_prefixes` alternative is not supported, so such a role delegates nothing.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// A parsed envelope: the typed `signed` part, its canonical bytes, and the signatures.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    pub signed: T,
    pub canonical: Vec<u8>,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("no \"signed\" object")]
    NoSigned,
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("_type is {found:?}, expected {expected:?}")]
    WrongType {
        found: String,
        expected: &'static str,
    },
    #[error("more than {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    #[error("{0}")]
    Canonical(#[from] crate::canonical::CanonicalError),
}

/// What every role file shares, to check `_type` and counts generically.
pub trait RoleFile: DeserializeOwned {
    /// The capitalised `_type` notary writes.
    const TYPE: &'static str;
    fn type_(&self) -> &str;
    /// (what, count) pairs to hold against [`MAX_ENTRIES`].
    fn counts(&self) -> Vec<(&'static str, usize)>;
}

impl RoleFile for Root {
    const TYPE: &'static str = "Root";
    fn type_(&self) -> &str {
        &self.type_
    }
    fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut c = vec![("keys", self.keys.len()), ("roles", self.roles.len())];
        c.extend(
            self.roles
                .values()
                .map(|r| ("role key ids", r.keyids.len())),
        );
        c
    }
}

impl RoleFile for Timestamp {
    const TYPE: &'static str = "Timestamp";
    fn type_(&self) -> &str {
        &self.type_
    }
    fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![("meta entries", self.meta.len())]
    }
}

impl RoleFile for Targets {
    const TYPE: &'static str = "Targets";
    fn type_(&self) -> &str {
        &self.type_
    }
    fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut c = vec![
            ("targets", self.targets.len()),
            ("delegation keys", self.delegations.keys.len()),
            ("delegated roles", self.delegations.roles.len()),
        ];
        c.extend(
            self.delegations
                .roles
                .iter()
                .flat_map(|r| [("role key ids", r.keyids.len()), ("paths", r.paths.len())]),
        );
        c
    }
}

/// Snapshot shares `Timestamp`'s struct; this wrapper carries its own `_type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct SnapshotFile(pub Snapshot);

impl RoleFile for SnapshotFile {
    const TYPE: &'static str = "Snapshot";
    fn type_(&self) -> &str {
        &self.0.type_
    }
    fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![("meta entries", self.0.meta.len())]
    }
}

/// Parses an envelope whose size the caller has already capped.
pub fn parse<T: RoleFile>(bytes: &[u8]) -> Result<Signed<T>, MetadataError> {
    let mut top: Value =
        serde_json::from_slice(bytes).map_err(|e| MetadataError::Json(e.to_string()))?;
    let obj = top
        .as_object_mut()
        .ok_or_else(|| MetadataError::Malformed("not a JSON object".to_owned()))?;
    let signed = obj.remove("signed").ok_or(MetadataError::NoSigned)?;
    if !signed.is_object() {
        return Err(MetadataError::NoSigned);
    }
    let signatures: Vec<Signature> = match obj.remove("signatures") {
        // notary writes `null` for an unsigned file; that is zero signatures, not an error.
        None | Some(Value::Null) => Vec::new(),
        Some(v) => {
            if v.as_array().is_some_and(|a| a.len() > MAX_SIGNATURES) {
                return Err(MetadataError::TooMany {
                    what: "signatures",
                    limit: MAX_SIGNATURES,
                });
            }
            serde_json::from_value(v)
                .map_err(|e| MetadataError::Malformed(format!("signatures: {e}")))?
        }
    };
    // The signatures cover the re-encoded generic value, not the served bytes (§3.4).
    let canonical = canonical(&signed)?;
    let typed: T =
        serde_json::from_value(signed).map_err(|e| MetadataError::Malformed(e.to_string()))?;
    if typed.type_() != T::TYPE {
        return Err(MetadataError::WrongType {
            found: typed.type_().to_owned(),
            expected: T::TYPE,
        });
    }
    for (what, n) in typed.counts() {
        if n > MAX_ENTRIES {
            return Err(MetadataError::TooMany {
                what,
                limit: MAX_ENTRIES,
            });
        }
    }
    Ok(Signed {
        signed: typed,
        canonical,
        signatures,
    })
}
