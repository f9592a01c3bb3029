//! The pull audit log (design.md §8): one JSON object per line, one per manifest request,
//! written by its own sink — never through the tracing filter — and flushed as it is written.
//!
//! The file is opened in append mode, so `logrotate` with `copytruncate` works; `reopen` (on
//! SIGHUP) supports rotation by rename. Whether a failed write denies the pull is the caller's
//! decision, from `audit.on_error`.

pub mod summary;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::{AuditConfig, AuditSink, Mode, OnAuditError};
use crate::policy::DecisionKind;
use crate::trust::Verified;

/// The record format version (`v`). Fields may be added; removing one needs a new version.
pub const RECORD_VERSION: u32 = 1;

/// One audit record.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub v: u32,
    pub time: String,
    pub client: String,
    pub user: Option<String>,
    pub method: String,
    pub image: String,
    pub reference: String,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub decision: DecisionKind,
    pub rule: Option<String>,
    pub mode: Option<&'static str>,
    pub reasons: Vec<String>,
    pub signers: Vec<Verified>,
    pub typosquat: Option<serde_json::Value>,
    pub upstream_status: Option<u16>,
    pub duration_ms: u64,
    /// `hit` when the verdict came from the cache, `miss` when this request verified, `null`
    /// when no verification was involved.
    pub cache: Option<&'static str>,
}

/// Where records go.
pub struct AuditLog {
    target: Target,
    on_error: OnAuditError,
}

enum Target {
    Stdout,
    File { path: PathBuf, file: Mutex<File> },
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open audit log {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write audit record: {0}")]
    Write(std::io::Error),
    #[error("cannot encode audit record: {0}")]
    Encode(serde_json::Error),
}

// === impl AuditLog ===

impl AuditLog {
    pub fn open(cfg: &AuditConfig) -> Result<AuditLog, AuditError> {
        let target = match &cfg.sink {
            AuditSink::Stdout => Target::Stdout,
            AuditSink::File(path) => Target::File {
                file: Mutex::new(open_append(path)?),
                path: path.clone(),
            },
        };
        Ok(AuditLog {
            target,
            on_error: cfg.on_error,
        })
    }

    pub fn on_error(&self) -> OnAuditError {
        self.on_error
    }

    /// Writes one record as a single `write` of one line, so concurrent records never
    /// interleave and a crash loses at most the record being written.
    pub fn write(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(AuditError::Encode)?;
        line.push(b'\n');
        match &self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&line)
                    .and_then(|()| out.flush())
                    .map_err(AuditError::Write)
            }
            Target::File { file, .. } => {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                f.write_all(&line).map_err(AuditError::Write)
            }
        }
    }

    /// Reopens the file (after it was renamed by log rotation).
    pub fn reopen(&self) -> Result<(), AuditError> {
        if let Target::File { path, file } = &self.target {
            let new = open_append(path)?;
            *file.lock().unwrap_or_else(|p| p.into_inner()) = new;
        }
        Ok(())
    }
}

fn open_append(path: &PathBuf) -> Result<File, AuditError> {
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The log names who pulled what: readable by the owner and its group only.
        opts.mode(0o640);
    }
    opts.open(path).map_err(|source| AuditError::Open {
        path: path.display().to_string(),
        source,
    })
}

/// The audit spelling of a rule mode.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Warn => "warn",
        Mode::Off => "off",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrustKind;

    fn record() -> AuditRecord {
        AuditRecord {
            v: RECORD_VERSION,
            time: "2026-11-25T10:00:00.123Z".into(),
            client: "10.0.0.7:51234".into(),
            user: None,
            method: "GET".into(),
            image: "docker.io/library/nginx".into(),
            reference: "1.27".into(),
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            media_type: Some("application/vnd.oci.image.index.v1+json".into()),
            decision: DecisionKind::Allow,
            rule: Some("official".into()),
            mode: Some("enforce"),
            reasons: vec!["signed by pins (key 3f2a)".into()],
            signers: vec![Verified::for_test("pins", TrustKind::Pins, "key:3f2a")],
            typosquat: None,
            upstream_status: Some(200),
            duration_ms: 12,
            cache: Some("miss"),
        }
    }

    #[test]
    fn record_has_every_contract_field() {
        let v: serde_json::Value = serde_json::to_value(record()).unwrap();
        for k in [
            "v",
            "time",
            "client",
            "user",
            "method",
            "image",
            "reference",
            "digest",
            "media_type",
            "decision",
            "rule",
            "mode",
            "reasons",
            "signers",
            "typosquat",
            "upstream_status",
            "duration_ms",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["decision"], "allow");
        assert_eq!(v["signers"][0]["kind"], "pins");
        assert_eq!(v["signers"][0]["identity"], "key:3f2a");
        assert_eq!(v["user"], serde_json::Value::Null);
    }

    #[test]
    fn file_sink_appends_lines_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditConfig {
            sink: AuditSink::File(path.clone()),
            on_error: OnAuditError::Deny,
        })
        .unwrap();
        log.write(&record()).unwrap();
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
        log.reopen().unwrap();
        log.write(&record()).unwrap();
        log.write(&record()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("audit.jsonl.1"))
                .unwrap()
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn unopenable_path_is_an_error() {
        let e = AuditLog::open(&AuditConfig {
            sink: AuditSink::File("/nonexistent-dir/x/audit.jsonl".into()),
            on_error: OnAuditError::Deny,
        });
        assert!(e.is_err());
    }
}
