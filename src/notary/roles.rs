//! Role names and delegated paths (trust-formats.md §3.5; notary `tuf/data/roles.go`).
//!
//! Delegations are named like paths (`targets/releases`, `targets/team/alice`), each the direct
//! child of the role that delegates it, and may only sign target names under the string
//! prefixes their parent allows.

/// The top-level targets role; every delegation descends from it.
pub const TARGETS: &str = "targets";
/// notary rejects longer role names (`IsDelegation`).
const MAX_ROLE_NAME: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid role name {0:?}")]
pub struct RoleNameError(pub String);

/// Checks a targets role name: `targets` or `targets/…`, characters `[-a-z0-9_/]`, a clean
/// path (no empty, `.` or `..` segments, no trailing slash), shorter than 256 characters.
pub fn check_targets_role(name: &str) -> Result<(), RoleNameError> {
    let bad = || RoleNameError(name.to_owned());
    if name == TARGETS {
        return Ok(());
    }
    if name.len() > MAX_ROLE_NAME || !name.starts_with("targets/") {
        return Err(bad());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_/".contains(&b))
    {
        return Err(bad());
    }
    if name
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(bad());
    }
    Ok(())
}

/// The chain of roles from `targets` down to `name`, `targets` first (`name` already checked).
pub fn lineage(name: &str) -> Vec<String> {
    let mut out: Vec<String> = name
        .match_indices('/')
        .map(|(i, _)| name[..i].to_owned())
        .collect();
    out.push(name.to_owned());
    out
}

/// The parent of a delegation (`path.Dir`); `None` for `targets`.
pub fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(p, _)| p)
}

/// The child's paths that fall under one of the parent's (`Restrict`): a delegation can only
/// narrow what its parent may sign.
pub fn restrict(parent_paths: &[String], child_paths: &[String]) -> Vec<String> {
    child_paths
        .iter()
        .filter(|c| parent_paths.iter().any(|p| c.starts_with(p.as_str())))
        .cloned()
        .collect()
}

/// Whether a target name is inside `paths` (string prefixes; `""` allows everything).
pub fn allows(paths: &[String], target: &str) -> bool {
    paths.iter().any(|p| target.starts_with(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        for ok in ["targets", "targets/releases", "targets/a/b-c_1"] {
            assert_eq!(check_targets_role(ok), Ok(()), "{ok}");
        }
        let long = format!("targets/{}", "a".repeat(250));
        for bad in [
            "root",
            "targets/",
            "targets//a",
            "targets/./a",
            "targets/../x",
            "targets/A",
            "targets/a b",
            "targetsx/a",
            long.as_str(),
        ] {
            assert!(check_targets_role(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lineage_and_parent() {
        assert_eq!(lineage("targets"), vec!["targets"]);
        assert_eq!(
            lineage("targets/a/b"),
            vec!["targets", "targets/a", "targets/a/b"]
        );
        assert_eq!(parent("targets/a/b"), Some("targets/a"));
        assert_eq!(parent("targets"), None);
    }

    #[test]
    fn paths_narrow_only() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(restrict(&s(&[""]), &s(&["", "v1"])), s(&["", "v1"]));
        assert_eq!(restrict(&s(&["v1"]), &s(&["", "v1.2", "v2"])), s(&["v1.2"]));
        assert!(allows(&s(&["v1"]), "v1.0"));
        assert!(!allows(&s(&["v1"]), "latest"));
        assert!(!allows(&[], "anything"));
    }
}
