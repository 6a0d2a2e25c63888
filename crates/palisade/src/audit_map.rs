//! Maps the pipeline's notes to audit events: the one place where guard vocabulary becomes audit vocabulary.

use palisade_audit::{Decision as AD, Event, Kind, Status as AS};
use palisade_guard::{Decision, Note, NoteKind, Status};

pub(crate) fn event(server: &str, client: Option<&str>, n: &Note) -> Event {
    let kind = match n.kind {
        NoteKind::Call | NoteKind::Request => Kind::Call,
        NoteKind::List => Kind::List,
        NoteKind::Notify => Kind::Notify,
        NoteKind::Pin => Kind::Pin,
        NoteKind::Policy => Kind::Policy,
        NoteKind::Error => Kind::Error,
    };
    let mut ev = Event::new(kind, server);
    ev.client = client.map(str::to_owned);
    ev.method = n.method.clone();
    ev.tool = n.tool.clone();
    ev.id = n.id.as_ref().map(|i| i.as_json().to_owned());
    ev.decision = Some(match n.decision {
        Decision::Allow => AD::Allow,
        Decision::Deny => AD::Deny,
        Decision::Rewrite => AD::Rewrite,
    });
    ev.reason = n.reason.map(str::to_owned);
    ev.detail = n
        .detail
        .as_deref()
        .map(|d| palisade_audit::redact_str(d).into_owned());
    ev.args = n.args.as_ref().map(palisade_audit::redact);
    ev.status = n.status.map(|s| match s {
        Status::Ok => AS::Ok,
        Status::Error => AS::Error,
        Status::Denied => AS::Denied,
        Status::Timeout => AS::Timeout,
    });
    ev.duration_ms = n
        .duration
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    ev
}

/// The audit event of a tool description with findings at or above `threshold`, seen when the server
/// listed its tools (`palisade run` also warns on stderr; the pinning guard decides whether the tool is
/// usable). `None` when nothing reaches the threshold.
pub(crate) fn description_findings(
    server: &str,
    client: Option<&str>,
    item: &palisade_analyze::describe::ItemFindings,
    threshold: palisade_scan::Severity,
) -> Option<Event> {
    let found: Vec<String> = item
        .findings
        .iter()
        .filter(|f| f.severity >= threshold)
        .map(|f| format!("{} {}: {}", f.severity.as_str(), f.rule, f.message))
        .collect();
    if found.is_empty() {
        return None;
    }
    let mut ev = Event::new(Kind::List, server)
        .method("tools/list")
        .tool(item.name.clone())
        .decision(AD::Allow)
        .reason("description-findings")
        .detail(palisade_audit::redact_str(&found.join("; ")).into_owned());
    ev.client = client.map(str::to_owned);
    Some(ev)
}
