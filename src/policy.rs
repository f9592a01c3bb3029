//! The policy decision (design.md §5): which rule applies to an image, and whether the evidence
//! the trust sources produced satisfies it. Pure: no IO, no clock, no caches.
//!
//! Forwarding a manifest needs a [`Pass`], and only this module can make one, so a code path
//! that skips the decision cannot compile into a forwarded manifest.

mod glob;

use std::fmt;

pub use glob::{Glob, GlobError};

use crate::config::{Mode, RuleConfig};
use crate::trust::{Failure, Verified};

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub images: Vec<Glob>,
    pub mode: Mode,
    /// Any one of these suffices (empty: no any-of requirement).
    pub any_of: Vec<String>,
    /// All of these are needed (empty: no all-of requirement).
    pub all_of: Vec<String>,
    /// Predicate types whose attestations count as signatures, besides cosign's sign predicate.
    pub predicate_types: Vec<String>,
}

/// The ordered rules.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// Proof that the policy let a manifest through. Only `policy` constructs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass(());

/// The decision label written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Allow,
    Deny,
    Warn,
    Unchecked,
}

/// What the policy decided, with everything the audit record and the client need to know.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: DecisionKind,
    pub rule: Option<String>,
    pub mode: Option<Mode>,
    /// Human-readable reasons, most important first.
    pub reasons: Vec<String>,
    pub signers: Vec<Verified>,
}

/// Forward (with a pass) or refuse.
#[derive(Debug, Clone)]
pub enum Decision {
    Forward(Pass, Outcome),
    Refuse(Outcome),
}

/// The evidence one trust source produced for a manifest.
pub type Evidence = Vec<Result<Verified, Failure>>;

// === impl Policy ===

impl Policy {
    /// Compiles the configured rules; config validation already checked modes and names.
    pub fn new(rules: &[RuleConfig]) -> Result<Policy, GlobError> {
        let rules = rules
            .iter()
            .map(|r| {
                Ok(Rule {
                    name: r.name.clone(),
                    images: r
                        .images
                        .iter()
                        .map(|g| Glob::parse(g))
                        .collect::<Result<_, _>>()?,
                    mode: r.mode,
                    any_of: r.trust.clone(),
                    all_of: r.trust_all.clone(),
                    predicate_types: r.predicate_types.clone(),
                })
            })
            .collect::<Result<_, GlobError>>()?;
        Ok(Policy { rules })
    }

    /// The first rule whose globs match `image` (file order).
    pub fn rule_for(&self, image: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.images.iter().any(|g| g.matches(image)))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

// === impl Rule ===

impl Rule {
    /// The trust sources the gate must run for this rule, each once, in config order.
    pub fn sources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for n in self.any_of.iter().chain(&self.all_of) {
            if !out.contains(&n.as_str()) {
                out.push(n);
            }
        }
        out
    }
}

/// Decides for `rule` (or the absence of one) given the evidence of the rule's sources.
pub fn decide(rule: Option<&Rule>, evidence: &Evidence) -> Decision {
    let Some(rule) = rule else {
        return Decision::Refuse(Outcome {
            kind: DecisionKind::Deny,
            rule: None,
            mode: None,
            reasons: vec!["no rule matches".to_owned()],
            signers: Vec::new(),
        });
    };
    let outcome = |kind, reasons, signers| Outcome {
        kind,
        rule: Some(rule.name.clone()),
        mode: Some(rule.mode),
        reasons,
        signers,
    };
    if rule.mode == Mode::Off {
        return Decision::Forward(
            Pass(()),
            outcome(
                DecisionKind::Unchecked,
                vec!["rule mode is off".into()],
                vec![],
            ),
        );
    }
    let verified = |name: &str| {
        evidence
            .iter()
            .filter_map(|e| e.as_ref().ok())
            .find(|v| v.trust() == name)
    };
    let any_ok = rule.any_of.is_empty() || rule.any_of.iter().any(|n| verified(n).is_some());
    let all_ok = rule.all_of.iter().all(|n| verified(n).is_some());
    // Sources not configured on a warn rule count as unmet, so warn mode shows what enforce
    // would do.
    let has_requirement = !rule.any_of.is_empty() || !rule.all_of.is_empty();
    let satisfied = has_requirement && any_ok && all_ok;
    let signers: Vec<Verified> = rule
        .sources()
        .into_iter()
        .filter_map(|n| verified(n).cloned())
        .collect();
    if satisfied {
        let reasons = signers.iter().map(|v| v.to_string()).collect();
        return Decision::Forward(Pass(()), outcome(DecisionKind::Allow, reasons, signers));
    }
    let reasons = failure_reasons(rule, evidence, any_ok, has_requirement);
    match rule.mode {
        Mode::Warn => Decision::Forward(Pass(()), outcome(DecisionKind::Warn, reasons, signers)),
        _ => Decision::Refuse(outcome(DecisionKind::Deny, reasons, signers)),
    }
}

/// Allows a child manifest of an image index that was allowed under `rule`: the index's
/// verification covers the children it lists (design.md §3). Only for `rule`'s own mode: an
/// index that was merely warned about grants nothing.
pub fn allow_child(
    rule: &Rule,
    index: &crate::registry::Digest,
    signers: Vec<Verified>,
) -> Decision {
    Decision::Forward(
        Pass(()),
        Outcome {
            kind: DecisionKind::Allow,
            rule: Some(rule.name.clone()),
            mode: Some(rule.mode),
            reasons: vec![format!("listed in verified index {index}")],
            signers,
        },
    )
}

/// Why the requirement is not met: each failed source's own reason, named.
fn failure_reasons(
    rule: &Rule,
    evidence: &Evidence,
    any_ok: bool,
    has_requirement: bool,
) -> Vec<String> {
    if !has_requirement {
        return vec!["the rule names no trust source".to_owned()];
    }
    let mut reasons = Vec::new();
    if !any_ok {
        reasons.push(format!(
            "no valid signature from {}",
            rule.any_of.join(", ")
        ));
    }
    for n in &rule.all_of {
        let ok = evidence
            .iter()
            .any(|e| matches!(e, Ok(v) if v.trust() == n));
        if !ok {
            reasons.push(format!("required {n} did not verify"));
        }
    }
    for f in evidence.iter().filter_map(|e| e.as_ref().err()) {
        reasons.push(f.to_string());
    }
    reasons
}

// === impl Outcome ===

impl Outcome {
    /// The client-facing sentence: `IMAGE:REF denied by rule 'R': reason; reason`.
    pub fn message(&self, image_ref: &str) -> String {
        let verb = match self.kind {
            DecisionKind::Deny => "denied",
            DecisionKind::Warn => "would be denied",
            DecisionKind::Allow => "allowed",
            DecisionKind::Unchecked => "not checked",
        };
        let rule = match &self.rule {
            Some(r) => format!(" by rule '{r}'"),
            None => String::new(),
        };
        format!("{image_ref} {verb}{rule}: {}", self.reasons.join("; "))
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecisionKind::Allow => "allow",
            DecisionKind::Deny => "deny",
            DecisionKind::Warn => "warn",
            DecisionKind::Unchecked => "unchecked",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrustKind;

    fn rule(mode: Mode, any: &[&str], all: &[&str]) -> Rule {
        Rule {
            name: "r".into(),
            images: vec![Glob::parse("**").unwrap()],
            mode,
            any_of: any.iter().map(|s| s.to_string()).collect(),
            all_of: all.iter().map(|s| s.to_string()).collect(),
            predicate_types: vec![],
        }
    }

    fn ok(name: &str) -> Result<Verified, Failure> {
        Ok(Verified::for_test(name, TrustKind::Pins, "key:abc"))
    }

    fn bad(name: &str, why: &str) -> Result<Verified, Failure> {
        Err(Failure::new(name, why))
    }

    fn kind(d: &Decision) -> DecisionKind {
        match d {
            Decision::Forward(_, o) | Decision::Refuse(o) => o.kind,
        }
    }

    #[test]
    fn decision_table() {
        use DecisionKind::{Allow, Deny, Unchecked};
        use Mode::{Enforce, Off};
        let (warn_mode, warned) = (Mode::Warn, DecisionKind::Warn);
        let cases: Vec<(Rule, Evidence, DecisionKind)> = vec![
            (
                rule(Enforce, &["a", "b"], &[]),
                vec![ok("a"), bad("b", "no signature")],
                Allow,
            ),
            (
                rule(Enforce, &["a", "b"], &[]),
                vec![bad("a", "x"), ok("b")],
                Allow,
            ),
            (
                rule(Enforce, &["a", "b"], &[]),
                vec![bad("a", "x"), bad("b", "y")],
                Deny,
            ),
            (rule(Enforce, &["a"], &[]), vec![], Deny),
            (
                rule(Enforce, &[], &["a", "b"]),
                vec![ok("a"), ok("b")],
                Allow,
            ),
            (
                rule(Enforce, &[], &["a", "b"]),
                vec![ok("a"), bad("b", "y")],
                Deny,
            ),
            (
                rule(Enforce, &["a"], &["b"]),
                vec![ok("a"), bad("b", "y")],
                Deny,
            ),
            (rule(Enforce, &["a"], &["b"]), vec![ok("a"), ok("b")], Allow),
            // Evidence from a source the rule does not name never counts.
            (rule(Enforce, &["a"], &[]), vec![ok("z")], Deny),
            (rule(warn_mode, &["a"], &[]), vec![bad("a", "x")], warned),
            (rule(warn_mode, &["a"], &[]), vec![ok("a")], Allow),
            (rule(warn_mode, &[], &[]), vec![], warned),
            (rule(Off, &["a"], &[]), vec![bad("a", "x")], Unchecked),
        ];
        for (i, (r, ev, want)) in cases.iter().enumerate() {
            let d = decide(Some(r), ev);
            assert_eq!(kind(&d), *want, "case {i}");
            let forwarded = matches!(d, Decision::Forward(..));
            assert_eq!(forwarded, *want != Deny, "case {i}");
        }
    }

    #[test]
    fn no_rule_denies() {
        let d = decide(None, &vec![]);
        let Decision::Refuse(o) = d else {
            panic!("forwarded")
        };
        assert_eq!(o.reasons, ["no rule matches"]);
    }

    #[test]
    fn denial_message_names_rule_sources_and_reasons() {
        let r = rule(Mode::Enforce, &["acme", "k8s"], &[]);
        let d = decide(
            Some(&r),
            &vec![
                bad("acme", "no signature"),
                bad("k8s", "signed by an untrusted key"),
            ],
        );
        let Decision::Refuse(o) = d else {
            panic!("forwarded")
        };
        assert_eq!(
            o.message("docker.io/library/ngnix:latest"),
            "docker.io/library/ngnix:latest denied by rule 'r': no valid signature from acme, k8s; acme: no signature; k8s: signed by an untrusted key"
        );
    }

    #[test]
    fn first_matching_rule_wins() {
        let cfg = |name: &str, images: &[&str]| RuleConfig {
            name: name.into(),
            images: images.iter().map(|s| s.to_string()).collect(),
            mode: Mode::Off,
            trust: vec![],
            trust_all: vec![],
            signature_repository: None,
            predicate_types: vec![],
        };
        let p = Policy::new(&[
            cfg("official", &["docker.io/library/*"]),
            cfg("all", &["**"]),
        ])
        .unwrap();
        assert_eq!(
            p.rule_for("docker.io/library/nginx").unwrap().name,
            "official"
        );
        assert_eq!(p.rule_for("docker.io/library/a/b").unwrap().name, "all");
        let empty = Policy::new(&[cfg("lib", &["docker.io/library/*"])]).unwrap();
        assert!(empty.rule_for("ghcr.io/x/y").is_none());
    }

    #[test]
    fn sources_are_listed_once() {
        let r = rule(Mode::Enforce, &["a", "b"], &["b", "c"]);
        assert_eq!(r.sources(), ["a", "b", "c"]);
    }
}
