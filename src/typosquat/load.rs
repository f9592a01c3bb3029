//! Reading the `[typosquat]` configuration into a [`Detector`]: the built-in reference set,
//! plus the `known` files, minus the `allow` globs. The only IO of the typosquat module; the
//! server and `pullgate typosquat` call it once at start-up.

use crate::config::TyposquatConfig;
use crate::policy::Glob;

use super::{Detector, ReferenceSet, TyposquatError};

/// Builds the detector `config` describes, reading its `known` files.
pub fn detector(config: &TyposquatConfig) -> Result<Detector, TyposquatError> {
    let mut reference = ReferenceSet::builtin();
    for path in &config.known {
        let text = std::fs::read_to_string(path).map_err(|source| TyposquatError::Read {
            path: path.clone(),
            source,
        })?;
        reference
            .add_known(&text)
            .map_err(|e| TyposquatError::Known {
                path: path.clone(),
                source: Box::new(e),
            })?;
    }
    let allow = config
        .allow
        .iter()
        .map(|g| Glob::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Detector::new(reference, allow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TyposquatMode;

    fn config(known: Vec<std::path::PathBuf>, allow: &[&str]) -> TyposquatConfig {
        TyposquatConfig {
            mode: TyposquatMode::Warn,
            known,
            allow: allow.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn known_files_and_allow_globs_change_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let known = dir.path().join("known.txt");
        std::fs::write(&known, "acme/widget\n").unwrap();
        let d = detector(&config(vec![known], &["docker.io/ngnix-labs/**"])).unwrap();
        assert!(d.check("docker.io/acme/widgets").suspect);
        assert!(!d.check("docker.io/acme/widget").suspect);
        assert!(!d.check("docker.io/ngnix-labs/nginx").suspect);
        assert!(d.check("docker.io/library/ngnix").suspect);
    }

    #[test]
    fn unreadable_files_and_bad_globs_are_errors_naming_the_culprit() {
        let missing = std::path::PathBuf::from("/nonexistent/known.txt");
        let err = detector(&config(vec![missing], &[])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/known.txt"), "{err}");
        let err = detector(&config(vec![], &["a//b"])).unwrap_err();
        assert!(err.to_string().contains("a//b"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "ok/name\nBad Name!\n").unwrap();
        let err = detector(&config(vec![bad.clone()], &[])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("bad.txt") && text.contains("line 2"),
            "{text}"
        );
    }
}
