//! The gated manifest route: fetch the manifest (or, for HEAD, its digest) upstream, check its
//! integrity, ask the gate, and answer — forward with a policy pass or refuse with 403 — writing
//! exactly one audit record per request, also when the upstream failed.

use std::time::Instant;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::gate::{SquatAction, Subject};
use super::proxy::{header_str, status_error, upstream_req, Call, Proxy, DOCKER_CONTENT_DIGEST};
use super::respond::{self, ProxyBody, ProxyError};
use crate::audit::{mode_name, AuditRecord, RECORD_VERSION};
use crate::cache::CacheUse;
use crate::clock::rfc3339_millis;
use crate::config::OnAuditError;
use crate::policy::{Decision, DecisionKind};
use crate::registry::manifest::{self, MAX_MANIFEST_BYTES};
use crate::registry::{read_capped, Digest, Reference, Target};

/// The `Accept` of `pullgate verify`: like a client that takes every manifest type.
const VERIFY_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest as fetched and integrity-checked, not yet allowed.
struct Fetched {
    digest: Digest,
    /// Content-Type and Content-Length to send on.
    headers: HeaderMap,
    /// The bytes (GET); `None` when a HEAD's digest header sufficed.
    bytes: Option<Bytes>,
    status: StatusCode,
}

// === impl Proxy ===

impl Proxy {
    /// Answers a manifest request and audits it.
    pub(super) async fn manifest(
        &self,
        call: &Call<'_>,
        name: &str,
        reference: &str,
    ) -> Response<ProxyBody> {
        let start = Instant::now();
        let mut rec = self.draft(call, name, reference);
        let resp = match self.gated(call, name, reference, &mut rec).await {
            Ok(r) => r,
            Err(e) => {
                fail(&mut rec, &e);
                tracing::info!(error = %e, "manifest request refused");
                respond::error(&e, call.head)
            }
        };
        rec.duration_ms = start.elapsed().as_millis() as u64;
        self.write_audit(&rec, resp, call.head)
    }

    /// Audits a manifest request refused for lack of client credentials.
    pub(super) fn audit_unauthenticated(
        &self,
        call: &Call<'_>,
        name: &str,
        reference: &str,
        why: &str,
    ) {
        let mut rec = self.draft(call, name, reference);
        // The audit log names images in their normalised form (design.md §2), also here.
        if let Ok(t) = self.resolver.resolve(name, call.ns.as_deref()) {
            rec.image = t.image;
        }
        rec.reasons = vec![format!("client not authenticated: {why}")];
        if let Err(e) = self.audit.write(&rec) {
            tracing::error!(error = %e, "audit record lost");
        }
    }

    /// Decides about `name:reference` exactly as a GET through the proxy would, without
    /// writing an audit record (`pullgate verify`). Returns the record and whether it is allowed.
    pub async fn verify_image(&self, name: &str, reference: &str) -> (AuditRecord, bool) {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(VERIFY_ACCEPT));
        let call = Call {
            method: &Method::GET,
            head: false,
            headers: &headers,
            ns: None,
            query: Vec::new(),
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            user: None,
        };
        let start = Instant::now();
        let mut rec = self.draft(&call, name, reference);
        rec.client = "pullgate verify".to_owned();
        let allowed = match self.gated(&call, name, reference, &mut rec).await {
            Ok(_) => true,
            Err(e) => {
                fail(&mut rec, &e);
                false
            }
        };
        rec.duration_ms = start.elapsed().as_millis() as u64;
        (rec, allowed)
    }

    /// An audit record for this request, filled in as the request goes; it says "deny" until
    /// a decision says otherwise.
    fn draft(&self, call: &Call<'_>, name: &str, reference: &str) -> AuditRecord {
        AuditRecord {
            v: RECORD_VERSION,
            time: rfc3339_millis(self.clock.now()),
            client: call.peer.to_string(),
            user: call.user.clone(),
            method: call.method.to_string(),
            image: name.to_owned(),
            reference: reference.to_owned(),
            digest: None,
            media_type: None,
            decision: DecisionKind::Deny,
            rule: None,
            mode: None,
            reasons: Vec::new(),
            signers: Vec::new(),
            typosquat: None,
            upstream_status: None,
            duration_ms: 0,
            cache: None,
        }
    }

    async fn gated(
        &self,
        call: &Call<'_>,
        name: &str,
        reference: &str,
        rec: &mut AuditRecord,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let target = self.target(call, name)?;
        rec.image = target.image.clone();
        let reference = Reference::parse(reference).map_err(ProxyError::Reference)?;
        let image_ref = match &reference {
            Reference::Tag(t) => format!("{}:{t}", target.image),
            Reference::Digest(d) => format!("{}@{d}", target.image),
        };
        // The name is judged before anything is fetched: a blocked look-alike never reaches
        // the upstream.
        let squat = match self.gate.typosquat(&target.image) {
            SquatAction::None => None,
            SquatAction::Warn(v) => Some((v, false)),
            SquatAction::Block(v) => Some((v, true)),
        };
        let mut squat_note = None;
        if let Some((v, block)) = &squat {
            rec.typosquat = v.finding().and_then(|f| serde_json::to_value(f).ok());
            let similar = v.similar_to.as_deref().unwrap_or("a known image");
            let why = v.reason.as_deref().unwrap_or("near-miss name");
            let note = format!("possible typosquat of {similar} ({why})");
            if *block {
                rec.reasons = vec![note.clone()];
                return Err(ProxyError::Denied(format!(
                    "{image_ref} denied: {note}; did you mean {similar}?"
                )));
            }
            squat_note = Some(note);
        }
        let fetched = self.fetch(call, &target, &reference).await?;
        rec.digest = Some(fetched.digest.to_string());
        rec.media_type = header_str(&fetched.headers, &CONTENT_TYPE).map(str::to_owned);
        rec.upstream_status = Some(fetched.status.as_u16());

        let verdict = self
            .gate
            .check(&Subject {
                image: &target.image,
                reference: &reference,
                digest: &fetched.digest,
                manifest: fetched.bytes.as_deref(),
                target: &target,
                // The gate replaces these with the matching rule's.
                signatures: &target,
                predicate_types: &[],
            })
            .await;
        rec.cache = verdict.cache.map(|c| match c {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
        });
        let (Decision::Forward(_, outcome) | Decision::Refuse(outcome)) = verdict.decision.as_ref();
        rec.decision = outcome.kind;
        rec.rule = outcome.rule.clone();
        rec.mode = outcome.mode.map(mode_name);
        rec.reasons = outcome.reasons.clone();
        if let Some(note) = &squat_note {
            rec.reasons.push(note.clone());
        }
        rec.signers = outcome.signers.clone();
        tracing::debug!(
            digest = %fetched.digest,
            decision = %outcome.kind,
            rule = outcome.rule.as_deref().unwrap_or("-"),
            cache = rec.cache.unwrap_or("-"),
            "manifest decision"
        );
        match verdict.decision.as_ref() {
            Decision::Forward(pass, outcome) => {
                let mut warnings = Vec::new();
                if outcome.kind == DecisionKind::Warn {
                    warnings.push(outcome.message(&image_ref));
                }
                if let Some(note) = &squat_note {
                    warnings.push(format!("{image_ref}: {note}"));
                }
                Ok(respond::manifest(
                    pass,
                    &fetched.digest,
                    &fetched.headers,
                    if call.head { None } else { fetched.bytes },
                    &warnings,
                ))
            }
            Decision::Refuse(outcome) => {
                let mut message = outcome.message(&image_ref);
                if let Some(note) = &squat_note {
                    message.push_str("; ");
                    message.push_str(note);
                }
                Err(ProxyError::Denied(message))
            }
        }
    }

    /// Fetches the manifest: for HEAD, the upstream's HEAD suffices when it names the digest.
    async fn fetch(
        &self,
        call: &Call<'_>,
        target: &Target,
        reference: &Reference,
    ) -> Result<Fetched, ProxyError> {
        let mut headers = HeaderMap::new();
        respond::copy_headers(call.headers, &mut headers, &[ACCEPT]);
        let path = format!("{}/manifests/{}", target.repository, reference);
        let registry = target.upstream.name().to_owned();
        let bad = |source| ProxyError::Manifest {
            registry: registry.clone(),
            source,
        };
        if call.head {
            let req = upstream_req(Method::HEAD, target, path.clone(), None, headers.clone());
            let resp = target.upstream.send(req).await?;
            if !resp.status().is_success() {
                return Err(status_error(target, resp).await);
            }
            if let Some(h) = header_str(resp.headers(), &DOCKER_CONTENT_DIGEST) {
                let digest = manifest::verify_head(reference, h).map_err(bad)?;
                let mut out = HeaderMap::new();
                respond::copy_headers(resp.headers(), &mut out, &[CONTENT_TYPE, CONTENT_LENGTH]);
                return Ok(Fetched {
                    digest,
                    headers: out,
                    bytes: None,
                    status: resp.status(),
                });
            }
        }
        let req = upstream_req(Method::GET, target, path, None, headers);
        let resp = target.upstream.send(req).await?;
        if !resp.status().is_success() {
            return Err(status_error(target, resp).await);
        }
        let status = resp.status();
        let (parts, body) = resp.into_parts();
        let idle = target.upstream.config().idle_timeout;
        let bytes = read_capped(body, MAX_MANIFEST_BYTES, idle, &registry, "a manifest").await?;
        let digest = manifest::verify(
            reference,
            header_str(&parts.headers, &DOCKER_CONTENT_DIGEST),
            &bytes,
        )
        .map_err(bad)?;
        let mut out = HeaderMap::new();
        respond::copy_headers(&parts.headers, &mut out, &[CONTENT_TYPE]);
        out.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        Ok(Fetched {
            digest,
            headers: out,
            bytes: Some(bytes),
            status,
        })
    }

    /// Writes the record; if that fails and `audit.on_error = "deny"`, a pull that would have
    /// gone through is refused instead, since it could not be accounted for.
    fn write_audit(
        &self,
        rec: &AuditRecord,
        resp: Response<ProxyBody>,
        head: bool,
    ) -> Response<ProxyBody> {
        let Err(e) = self.audit.write(rec) else {
            return resp;
        };
        tracing::error!(error = %e, image = %rec.image, "audit record could not be written");
        if self.audit.on_error() == OnAuditError::Deny && resp.status().is_success() {
            return respond::error(&ProxyError::AuditUnavailable, head);
        }
        resp
    }
}

/// Records an error that ended the request before (or instead of) a decision.
fn fail(rec: &mut AuditRecord, e: &ProxyError) {
    rec.decision = DecisionKind::Deny;
    if let ProxyError::UpstreamStatus { status, .. } = e {
        rec.upstream_status = Some(status.as_u16());
    }
    if !matches!(e, ProxyError::Denied(_)) {
        rec.reasons = vec![e.to_string()];
    }
}
