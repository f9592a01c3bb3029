//! A role's keys and threshold, and counting the signatures that verify (trust-formats.md
//! §3.4; notary `tuf/signed/verify.go` `VerifySignatures`).

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::error::NotaryError;
use super::keys::PublicKey;
use super::metadata::{KeyJson, Signed};

/// The keys that may sign a role, each under its recomputed id, and how many must.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub keys: BTreeMap<String, PublicKey>,
    pub threshold: u64,
}

impl KeySet {
    /// The keys named by `keyids` out of `available`. A key that does not parse, or whose
    /// content does not hash to its listed id, is left out: it can never count towards the
    /// threshold, which is the failure that then gets reported.
    pub fn from_listed(
        role: &str,
        keyids: &[String],
        threshold: u64,
        available: &BTreeMap<String, KeyJson>,
    ) -> Result<KeySet, NotaryError> {
        if threshold < 1 {
            return Err(NotaryError::Invalid {
                role: role.to_owned(),
                reason: "threshold below 1".to_owned(),
            });
        }
        let keys = keyids
            .iter()
            .filter_map(|id| {
                let key = PublicKey::parse(id, available.get(id)?).ok()?;
                Some((key.id().to_owned(), key))
            })
            .collect();
        Ok(KeySet { keys, threshold })
    }

    /// Distinct ids of keys in this set with a valid signature over `signed`.
    pub fn valid_signers<T>(&self, signed: &Signed<T>) -> BTreeSet<String> {
        let mut ok = BTreeSet::new();
        for sig in &signed.signatures {
            let Some(key) = self.keys.get(&sig.keyid.to_ascii_lowercase()) else {
                continue;
            };
            if ok.contains(key.id()) {
                continue;
            }
            let Ok(raw) = STANDARD.decode(&sig.sig) else {
                continue;
            };
            if key.verify(&sig.method, &signed.canonical, &raw) {
                ok.insert(key.id().to_owned());
            }
        }
        ok
    }

    /// Fails unless at least `threshold` distinct keys signed.
    pub fn check<T>(&self, label: &str, signed: &Signed<T>) -> Result<(), NotaryError> {
        let valid = self.valid_signers(signed).len();
        if (valid as u64) < self.threshold {
            return Err(NotaryError::Threshold {
                role: label.to_owned(),
                valid,
                threshold: self.threshold,
            });
        }
        Ok(())
    }
}
