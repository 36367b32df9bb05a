//! `rf releases`, `rf publish`, `rf rollback`.

use anyhow::bail;

use crate::client::Client;
use crate::operations::{self, Pending, Plan, Publish, Releases};
use crate::{Global, agents, confirm, emit, lines};

pub async fn pending(global: &Global) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (data, raw) = client.run_raw::<Pending>(operations::pending::Variables {}).await?;
    let pending = data.pending_changes;
    emit(global, raw["pendingChanges"].clone(), || {
        lines(&pending, "Nothing to publish: production matches staging.", |c| {
            format!("{:<9?} {:<32} fingerprint {}", c.change, c.key, c.fingerprint)
        })
    });
    Ok(())
}

/// `rf releases --history`: the releases of production, newest first.
pub async fn history(global: &Global) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let (data, raw) = client.run_raw::<Releases>(operations::releases::Variables {}).await?;
    let releases: Vec<_> = data.releases.edges.into_iter().map(|e| e.node).collect();
    let json: Vec<serde_json::Value> = raw["releases"]["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
        .unwrap_or_default();
    emit(global, serde_json::Value::Array(json), || {
        lines(
            &releases,
            "No releases yet: production has never been published to.",
            |r| {
                let note = if r.note.is_empty() {
                    String::new()
                } else {
                    format!("  {}", r.note)
                };
                format!(
                    "#{:<4} {:<9?} {:>3} item(s)  {}  by {}{note}",
                    r.number,
                    r.kind,
                    r.items.len(),
                    r.created_at,
                    r.created_by
                )
            },
        )
    });
    Ok(())
}

/// The items to `action` (publish, request or schedule), each with the fingerprint pending now
/// (what you review with `rf releases`): every pending item with `all`, else the ones named.
pub(crate) async fn chosen_items(
    client: &Client,
    all: bool,
    items: &[String],
    action: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    if !all && items.is_empty() {
        bail!("say what to {action}: item keys (see `rf releases`) or --all");
    }
    let pending = client
        .run::<Pending>(operations::pending::Variables {})
        .await?
        .pending_changes;
    let chosen: Vec<(String, String)> = if all {
        pending.iter().map(|c| (c.key.clone(), c.fingerprint.clone())).collect()
    } else {
        items
            .iter()
            .map(|key| match pending.iter().find(|c| &c.key == key) {
                Some(change) => Ok((key.clone(), change.fingerprint.clone())),
                None => bail!("{key} has nothing to publish (see `rf releases`)"),
            })
            .collect::<anyhow::Result<_>>()?
    };
    if chosen.is_empty() {
        bail!("nothing to {action}: production matches staging");
    }
    Ok(chosen)
}

/// The `publish` input for these items (each with the fingerprint reviewed, or none for a
/// rollback), published now.
pub(crate) fn publish_input(
    items: Vec<(String, Option<String>)>,
    note: Option<String>,
) -> operations::publish::PublishInput {
    operations::publish::PublishInput {
        items: Some(
            items
                .into_iter()
                .map(|(key, fingerprint)| operations::publish::PublishItemInput { key, fingerprint })
                .collect(),
        ),
        all: false,
        fingerprint: None,
        note,
        idempotency_key: None,
        rollback_to: None,
        emergency_override: false,
        at: None,
    }
}

pub async fn publish(
    global: &Global,
    all: bool,
    items: Vec<String>,
    note: Option<String>,
    yes: bool,
) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let chosen: Vec<(String, Option<String>)> = chosen_items(&client, all, &items, "publish")
        .await?
        .into_iter()
        .map(|(key, fingerprint)| (key, Some(fingerprint)))
        .collect();
    let plan_items: Vec<operations::plan::PublishItemInput> = chosen
        .iter()
        .map(|(key, fingerprint)| operations::plan::PublishItemInput {
            key: key.clone(),
            fingerprint: fingerprint.clone(),
        })
        .collect();
    let plan = client
        .run::<Plan>(operations::plan::Variables {
            input: agents::plan_input(plan_items, None),
        })
        .await?
        .publish_plan;
    if !plan.can_publish {
        bail!("cannot publish: {}", plan.missing.join("; "));
    }
    if !global.json {
        for item in &plan.items {
            eprintln!("  {:?} {}", item.change, item.key);
        }
        for warning in &plan.warnings {
            eprintln!("  warning: {warning}");
        }
    }
    if !confirm(&format!("Publish {} item(s) to production?", plan.items.len()), yes)? {
        bail!("cancelled: nothing was published");
    }
    let (data, raw) = client
        .run_raw::<Publish>(operations::publish::Variables {
            input: publish_input(chosen, note),
        })
        .await?;
    let Some(release) = data.publish.release else {
        bail!("the server did not publish (no release returned)");
    };
    emit(global, raw["publish"]["release"].clone(), || {
        format!("Published release #{} ({} items).", release.number, release.items.len())
    });
    Ok(())
}

pub async fn rollback(
    global: &Global,
    release: &str,
    items: Vec<String>,
    note: Option<String>,
    yes: bool,
) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    let releases = client
        .run::<Releases>(operations::releases::Variables {})
        .await?
        .releases
        .edges;
    let Some(target) = releases
        .iter()
        .map(|e| &e.node)
        .find(|r| r.id == release || r.number.to_string() == release)
    else {
        bail!("no release {release} (see the release numbers with `rf releases --history`)");
    };
    if !confirm(
        &format!("Roll production back to before release #{}?", target.number),
        yes,
    )? {
        bail!("cancelled: nothing was rolled back");
    }
    let mut input = publish_input(items.into_iter().map(|id| (id, None)).collect(), note);
    if input.items.as_ref().is_some_and(Vec::is_empty) {
        input.items = None;
    }
    input.rollback_to = Some(target.id.clone());
    let (data, raw) = client
        .run_raw::<Publish>(operations::publish::Variables { input })
        .await?;
    let Some(result) = data.publish.release else {
        bail!("the server did not roll back (no release returned)");
    };
    emit(global, raw["publish"]["release"].clone(), || {
        format!("Rolled back release #{} in release #{}.", target.number, result.number)
    });
    Ok(())
}
