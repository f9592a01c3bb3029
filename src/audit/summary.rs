//! `pullgate audit`: summarises an audit log — counts per decision, the most denied images with
//! their reasons, typosquat flags and per-user counts — with filters on time, decision and image.
//! Reads the JSON lines leniently: a line that is not an audit record is counted and skipped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::BufRead;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::clock::parse_rfc3339;
use crate::policy::Glob;

/// The fields the summary reads; everything else in a record is ignored.
#[derive(Debug, Deserialize)]
struct Line {
    time: String,
    #[serde(default)]
    user: Option<String>,
    image: String,
    decision: String,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    typosquat: Option<serde_json::Value>,
}

/// What to include.
pub struct Filter {
    pub since: Option<OffsetDateTime>,
    pub decision: Option<String>,
    pub image: Option<Glob>,
}

/// The tallies.
#[derive(Debug, Default)]
pub struct Summary {
    pub records: u64,
    pub skipped_lines: u64,
    pub by_decision: BTreeMap<String, u64>,
    /// image → (count, reason → count)
    pub denied: HashMap<String, (u64, HashMap<String, u64>)>,
    /// requested image → resembled name → count
    pub typosquats: HashMap<String, (u64, String)>,
    pub by_user: BTreeMap<String, u64>,
}

/// Reads records from `input` and tallies those that pass `filter`.
pub fn summarise(input: impl BufRead, filter: &Filter) -> std::io::Result<Summary> {
    let mut s = Summary::default();
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(rec) = serde_json::from_str::<Line>(&line) else {
            s.skipped_lines += 1;
            continue;
        };
        if let Some(since) = filter.since {
            match parse_rfc3339(&rec.time) {
                Ok(t) if t >= since => {}
                Ok(_) => continue,
                Err(_) => {
                    s.skipped_lines += 1;
                    continue;
                }
            }
        }
        if filter
            .decision
            .as_deref()
            .is_some_and(|d| d != rec.decision)
        {
            continue;
        }
        if filter
            .image
            .as_ref()
            .is_some_and(|g| !g.matches(&rec.image))
        {
            continue;
        }
        s.records += 1;
        *s.by_decision.entry(rec.decision.clone()).or_default() += 1;
        let user = rec.user.clone().unwrap_or_else(|| "(anonymous)".to_owned());
        *s.by_user.entry(user).or_default() += 1;
        if rec.decision == "deny" {
            let e = s.denied.entry(rec.image.clone()).or_default();
            e.0 += 1;
            // The first reason is often the summary ("no valid signature from pins"); all of
            // them together say why.
            let reason = rec.reasons.join("; ");
            *e.1.entry(reason).or_default() += 1;
        }
        if let Some(t) = rec.typosquat.as_ref().filter(|t| !t.is_null()) {
            let similar = t
                .get("similar_to")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_owned();
            let e = s
                .typosquats
                .entry(rec.image.clone())
                .or_insert((0, similar));
            e.0 += 1;
        }
    }
    Ok(s)
}

// === impl Summary ===

impl Summary {
    /// The report printed by `pullgate audit`.
    pub fn render(&self, top: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "records: {}", self.records);
        if self.skipped_lines > 0 {
            let _ = writeln!(
                out,
                "skipped lines (not audit records): {}",
                self.skipped_lines
            );
        }
        let _ = writeln!(out, "\ndecisions:");
        for (d, n) in &self.by_decision {
            let _ = writeln!(out, "  {d:<10} {n}");
        }
        if !self.denied.is_empty() {
            let _ = writeln!(out, "\nmost denied images:");
            let mut denied: Vec<_> = self.denied.iter().collect();
            denied.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
            for (image, (n, reasons)) in denied.into_iter().take(top) {
                let _ = writeln!(out, "  {n:>6}  {image}");
                let mut rs: Vec<_> = reasons.iter().collect();
                rs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                for (r, k) in rs.into_iter().take(3) {
                    let _ = writeln!(out, "          {k} × {r}");
                }
            }
        }
        if !self.typosquats.is_empty() {
            let _ = writeln!(out, "\npossible typosquats:");
            let mut ts: Vec<_> = self.typosquats.iter().collect();
            ts.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
            for (image, (n, similar)) in ts.into_iter().take(top) {
                let _ = writeln!(out, "  {n:>6}  {image} (resembles {similar})");
            }
        }
        let _ = writeln!(out, "\nby user:");
        for (u, n) in &self.by_user {
            let _ = writeln!(out, "  {u:<20} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"v":1,"time":"2026-11-25T10:00:00.000Z","user":"alice","image":"docker.io/library/nginx","reference":"1.27","decision":"allow","reasons":[],"typosquat":null}
{"v":1,"time":"2026-11-25T10:01:00.000Z","user":null,"image":"docker.io/library/ngnix","reference":"latest","decision":"deny","reasons":["docker.io/library/ngnix:latest denied by rule 'default': no rule matches"],"typosquat":{"similar_to":"docker.io/library/nginx"}}
not json
{"v":1,"time":"2026-11-25T10:02:00.000Z","user":"alice","image":"docker.io/library/ngnix","reference":"latest","decision":"deny","reasons":["x"],"typosquat":{"similar_to":"docker.io/library/nginx"}}
{"v":1,"time":"2026-11-25T11:00:00.000Z","user":"bob","image":"ghcr.io/a/b","reference":"1","decision":"warn","reasons":["w"],"typosquat":null}
"#;

    fn all() -> Filter {
        Filter {
            since: None,
            decision: None,
            image: None,
        }
    }

    #[test]
    fn tallies_decisions_denials_typosquats_and_users() {
        let s = summarise(LOG.as_bytes(), &all()).unwrap();
        assert_eq!(s.records, 4);
        assert_eq!(s.skipped_lines, 1);
        assert_eq!(s.by_decision["deny"], 2);
        assert_eq!(s.denied["docker.io/library/ngnix"].0, 2);
        assert_eq!(s.typosquats["docker.io/library/ngnix"].0, 2);
        assert_eq!(s.by_user["alice"], 2);
        assert_eq!(s.by_user["(anonymous)"], 1);
        let text = s.render(10);
        assert!(text.contains("most denied images"), "{text}");
        assert!(text.contains("resembles docker.io/library/nginx"), "{text}");
    }

    #[test]
    fn filters_by_time_decision_and_image() {
        let f = Filter {
            since: Some(parse_rfc3339("2026-11-25T10:01:30Z").unwrap()),
            ..all()
        };
        assert_eq!(summarise(LOG.as_bytes(), &f).unwrap().records, 2);
        let f = Filter {
            decision: Some("warn".into()),
            ..all()
        };
        assert_eq!(summarise(LOG.as_bytes(), &f).unwrap().records, 1);
        let f = Filter {
            image: Some(Glob::parse("docker.io/**").unwrap()),
            ..all()
        };
        assert_eq!(summarise(LOG.as_bytes(), &f).unwrap().records, 3);
    }
}
