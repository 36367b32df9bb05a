//! `rf releases request|approve|reject|schedule|cancel|requests|scheduled` and `rf audit`:
//! release governance (approvals, scheduled releases, the audit log).

use anyhow::bail;

use crate::client::Client;
use crate::operations::{
    self, ApproveRelease, Audit, CancelScheduledRelease, Publish, RejectRelease, ReleaseRequests, RequestRelease,
    ScheduledReleases,
};
use crate::{Global, emit, lines, releases};

/// `rf releases request`: proposes exactly the pending items (at their current fingerprints).
pub async fn request(global: &Global, all: bool, items: Vec<String>, note: Option<String>) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let chosen = releases::chosen_items(&client, all, &items, "release").await?;
    let input = operations::request_release::RequestReleaseInput {
        items: Some(
            chosen
                .into_iter()
                .map(|(key, fingerprint)| operations::request_release::ReleaseItemInput {
                    key,
                    fingerprint: Some(fingerprint),
                })
                .collect(),
        ),
        all: false,
        fingerprint: None,
        note,
        rollback_to: None,
    };
    let (data, raw) = client
        .run_raw::<RequestRelease>(operations::request_release::Variables { input })
        .await?;
    let request = data.request_release;
    emit(global, raw["requestRelease"].clone(), || {
        format!(
            "Requested release {} ({} item(s)); another publisher approves it with `rf releases approve {}`.",
            request.id,
            request.items.len(),
            request.id
        )
    });
    Ok(())
}

/// `rf releases approve ID` (or `reject ID`).
pub async fn review(global: &Global, id: String, comment: Option<String>, approve: bool) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    if approve {
        let (data, raw) = client
            .run_raw::<ApproveRelease>(operations::approve_release::Variables { id, comment })
            .await?;
        let request = data.approve_release_request;
        emit(global, raw["approveReleaseRequest"].clone(), || {
            format!("Release request {} is now {:?}.", request.id, request.state)
        });
    } else {
        let (data, raw) = client
            .run_raw::<RejectRelease>(operations::reject_release::Variables { id, comment })
            .await?;
        let request = data.reject_release_request;
        emit(global, raw["rejectReleaseRequest"].clone(), || {
            format!("Release request {} is now {:?}.", request.id, request.state)
        });
    }
    Ok(())
}

/// `rf releases schedule --at TIME`: publishes exactly these items at that time.
pub async fn schedule(
    global: &Global,
    all: bool,
    items: Vec<String>,
    at: String,
    note: Option<String>,
) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let chosen = releases::chosen_items(&client, all, &items, "release").await?;
    let mut input = releases::publish_input(
        chosen
            .into_iter()
            .map(|(key, fingerprint)| (key, Some(fingerprint)))
            .collect(),
        note,
    );
    input.at = Some(at);
    let (data, raw) = client
        .run_raw::<Publish>(operations::publish::Variables { input })
        .await?;
    let Some(scheduled) = data.publish.scheduled_release else {
        bail!("the server did not schedule the release (no scheduled release returned)");
    };
    emit(global, raw["publish"]["scheduledRelease"].clone(), || {
        format!(
            "Scheduled release {} for {} ({} item(s)); cancel it with `rf releases cancel {}`.",
            scheduled.id,
            scheduled.at,
            scheduled.items.len(),
            scheduled.id
        )
    });
    Ok(())
}

/// `rf releases cancel ID`: cancels a scheduled release.
pub async fn cancel(global: &Global, id: String) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (data, raw) = client
        .run_raw::<CancelScheduledRelease>(operations::cancel_scheduled_release::Variables { id })
        .await?;
    let cancelled = data.cancel_scheduled_release;
    emit(global, raw["cancelScheduledRelease"].clone(), || {
        format!("Scheduled release {} is now {:?}.", cancelled.id, cancelled.state)
    });
    Ok(())
}

/// `rf releases requests`: release requests, newest first.
pub async fn requests(global: &Global) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (data, raw) = client
        .run_raw::<ReleaseRequests>(operations::release_requests::Variables {})
        .await?;
    let nodes: Vec<_> = data.release_requests.edges.into_iter().map(|e| e.node).collect();
    emit(global, nodes_json(&raw["releaseRequests"]), || {
        lines(&nodes, "No release requests.", |r| {
            let items: Vec<&str> = r.items.iter().map(|i| i.key.as_str()).collect();
            format!(
                "{:<10} {}  by {}  {}  {}",
                format!("{:?}", r.state),
                r.id,
                r.requested_by,
                items.join(","),
                r.note
            )
        })
    });
    Ok(())
}

/// `rf releases scheduled`: scheduled releases, newest first.
pub async fn scheduled(global: &Global) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (data, raw) = client
        .run_raw::<ScheduledReleases>(operations::scheduled_releases::Variables {})
        .await?;
    let nodes: Vec<_> = data.scheduled_releases.edges.into_iter().map(|e| e.node).collect();
    emit(global, nodes_json(&raw["scheduledReleases"]), || {
        lines(&nodes, "No scheduled releases.", |r| {
            let failure = r.failure.as_deref().map(|f| format!("  ({f})")).unwrap_or_default();
            format!(
                "{:<10} {}  at {}  by {}{failure}",
                format!("{:?}", r.state),
                r.id,
                r.at,
                r.created_by
            )
        })
    });
    Ok(())
}

/// `rf audit`: the audit log (admins), newest first.
pub async fn audit(
    global: &Global,
    production: bool,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    first: i64,
) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let filter = operations::audit::AuditLogFilter {
        actor,
        action,
        record_kind: None,
        record_key: None,
        since,
        until: None,
    };
    let environment = if production {
        operations::audit::Environment::PRODUCTION
    } else {
        operations::audit::Environment::STAGING
    };
    let (data, raw) = client
        .run_raw::<Audit>(operations::audit::Variables {
            environment,
            filter: Some(filter),
            first: Some(first.clamp(1, 100)),
        })
        .await?;
    let nodes: Vec<_> = data.audit_log.edges.into_iter().map(|e| e.node).collect();
    emit(global, nodes_json(&raw["auditLog"]), || {
        lines(&nodes, "No audit entries.", |e| {
            let change = change_summary(e.before.as_ref(), e.after.as_ref());
            format!(
                "{}  {:<24} {:<26} {:<14} {}{}",
                e.created_at,
                e.actor,
                e.action,
                e.record_kind,
                e.record_key.as_deref().unwrap_or("-"),
                if change.is_empty() {
                    String::new()
                } else {
                    format!("  {change}")
                }
            )
        })
    });
    Ok(())
}

/// What an audit entry's before/after summaries say changed, in a few words:
/// `created`, `deleted`, or the top-level fields that differ (`revision 1 -> 2`).
fn change_summary(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Array(items) => format!("[{} items]", items.len()),
        Value::Object(_) => "{..}".into(),
        other => other.to_string(),
    };
    match (before, after) {
        (None | Some(Value::Null), Some(Value::Object(_))) => "created".into(),
        (Some(Value::Object(_)), None | Some(Value::Null)) => "deleted".into(),
        (Some(Value::Object(old)), Some(Value::Object(new))) => {
            let mut changes = Vec::new();
            for (key, value) in new {
                match (old.get(key.as_str()), value) {
                    (Some(was), now) if was == now => {}
                    // One level of nesting is spelled out: `deployment.revision 1 -> 2`.
                    (Some(Value::Object(was)), Value::Object(now)) => {
                        for (inner, value) in now {
                            if was.get(inner.as_str()) != Some(value) {
                                let before = was.get(inner.as_str()).map_or_else(|| "-".into(), scalar);
                                changes.push(format!("{key}.{inner} {before} -> {}", scalar(value)));
                            }
                        }
                    }
                    (was, now) => {
                        let before = was.map_or_else(|| "-".into(), scalar);
                        changes.push(format!("{key} {before} -> {}", scalar(now)));
                    }
                }
            }
            changes.truncate(4);
            changes.join(", ")
        }
        _ => String::new(),
    }
}

fn nodes_json(connection: &serde_json::Value) -> serde_json::Value {
    serde_json::Value::Array(
        connection["edges"]
            .as_array()
            .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
            .unwrap_or_default(),
    )
}
