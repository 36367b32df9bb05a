//! Agents: the state is the commit an environment runs, `{"commit", "number", "hash"}`.

use std::collections::HashMap;

use entity::{agent_commits, agent_deployments, agents};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use uuid::Uuid;

use super::super::publish::ProductionWrite;
use super::super::{ItemKind, ItemRef, commit_of};
use super::{Edge, Item, Publishable, Target, uuid_field};
use crate::domain::agents::{self as domain, AgentInEnv};
use crate::error::{Error, Result};
use crate::scope::{Scope, Tenant};

pub(super) struct Agent;

impl Publishable for Agent {
    async fn snapshot<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<Vec<(String, Value)>> {
        let deployed = domain::all_in(db, scope).await?;
        let commit_ids: Vec<Uuid> = deployed.iter().map(|a| a.deployment.commit_id).collect();
        let commits: HashMap<Uuid, agent_commits::Model> = scope
            .tenant
            .select::<agent_commits::Entity>()
            .filter(agent_commits::Column::Id.is_in(commit_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        Ok(deployed
            .into_iter()
            .filter_map(|AgentInEnv { agent, deployment }| {
                let commit = commits.get(&deployment.commit_id)?;
                Some((
                    agent.slug,
                    json!({ "commit": commit.id.to_string(), "number": commit.seq, "hash": commit.hash }),
                ))
            })
            .collect())
    }

    /// An agent needs the prompts and connectors its commit's manifest lists.
    async fn requires<C: ConnectionTrait>(db: &C, tenant: &Tenant, items: &[Item<'_>]) -> Result<Vec<Edge>> {
        let commit_ids: Vec<Uuid> = items.iter().filter_map(|(_, state)| commit_of(Some(state))).collect();
        let manifests: HashMap<Uuid, Value> = tenant
            .select::<agent_commits::Entity>()
            .filter(agent_commits::Column::Id.is_in(commit_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.id, c.manifest))
            .collect();
        let mut edges = Vec::new();
        for (slug, state) in items {
            let dependent = ItemRef {
                kind: ItemKind::Agent,
                slug: slug.to_string(),
            };
            let manifest = commit_of(Some(state)).and_then(|id| manifests.get(&id));
            for (field, kind) in [("prompts", ItemKind::Prompt), ("connectors", ItemKind::Connector)] {
                for slug in crate::domain::string_array(manifest.and_then(|m| m.get(field))) {
                    edges.push((dependent.clone(), ItemRef { kind, slug }));
                }
            }
        }
        Ok(edges)
    }

    async fn lock_staging<C: ConnectionTrait>(db: &C, staging: &Scope, slugs: Vec<String>) -> Result<()> {
        let agent_ids: Vec<Uuid> = staging
            .tenant
            .select::<agents::Entity>()
            .filter(agents::Column::Slug.is_in(slugs))
            .all(db)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        staging
            .select::<agent_deployments::Entity>()
            .filter(agent_deployments::Column::AgentId.is_in(agent_ids))
            .lock_exclusive()
            .all(db)
            .await?;
        Ok(())
    }

    async fn remove<C: ConnectionTrait>(db: &C, write: &ProductionWrite, slug: &str) -> Result<()> {
        domain::remove_deployment(db, write, slug).await
    }

    async fn put<C: ConnectionTrait>(db: &C, target: Target<'_>) -> Result<Value> {
        let (write, slug, state) = (target.write, target.slug, target.state);
        let agent = write
            .tenant()
            .select::<agents::Entity>()
            .filter(agents::Column::Slug.eq(slug))
            .one(db)
            .await?
            .ok_or_else(|| Error::not_found(format!("agent {slug:?}")))?;
        domain::set_deployment(db, write, agent.id, uuid_field(state, "commit")?, target.actor).await?;
        Ok(state.clone())
    }
}
