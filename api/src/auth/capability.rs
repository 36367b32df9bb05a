//! What a caller of the runtime API may do: the one place that decides it.
//!
//! Two kinds of runtime tokens reach the runtime API:
//! - a **deployment runtime token** (`runflow token --role runtime --environment ...`): an
//!   external runtime reporting for its tenant and environment;
//! - a **run token**, minted by the runner for one execution (subject `execution:<id>`). It is
//!   scoped to its tenant, environment, agent and execution: it reports only on its own
//!   execution (spans, OTLP, finish), reads only the prompts and connectors its agent's
//!   manifest declares, reads and writes only its agent's memory namespace, starts other
//!   executions only as children of its own, and is refused as soon as its execution has
//!   finished (its `exp` also ends with the run's timeout plus a short grace).
//!
//! Handlers get a [`RuntimeCaller`] and ask it (`may_*`); none re-implements a check.

use entity::executions;
use sea_orm::{ColumnTrait, QueryFilter};
use uuid::Uuid;

use super::Actor;
use crate::db::Db;
use crate::domain::executions::{ExecutionStatus, ParentRun};
use crate::domain::manifest::Manifest;
use crate::domain::memory;
use crate::error::{Error, Result};
use crate::scope::Scope;

const RUN_SUBJECT_PREFIX: &str = "execution:";

/// The `sub` of a run's token.
pub fn run_subject(execution: Uuid) -> String {
    format!("{RUN_SUBJECT_PREFIX}{execution}")
}

/// What one run may touch.
#[derive(Clone, Debug)]
pub struct RunCapability {
    pub execution: Uuid,
    pub depth: i32,
    pub agent: String,
    /// The stored memory namespace of the run's agent in its environment.
    namespace: String,
    prompts: Vec<String>,
    connectors: Vec<String>,
}

/// An authenticated caller of the runtime API.
#[derive(Clone, Debug)]
pub struct RuntimeCaller {
    pub scope: Scope,
    /// `Some` for a run's token.
    pub run: Option<RunCapability>,
}

fn refuse(message: impl Into<String>) -> Error {
    Error::Forbidden(message.into())
}

impl RuntimeCaller {
    /// Checks a verified actor: a runtime token, and for a run's token, a run that is still
    /// going on.
    pub async fn authenticate(db: &Db, actor: Actor) -> Result<Self> {
        let environment = super::policy::runtime_api(&actor)?;
        let scope = Scope::of(&actor, environment);
        let Some(id) = actor.subject().strip_prefix(RUN_SUBJECT_PREFIX) else {
            return Ok(RuntimeCaller { scope, run: None });
        };
        let id =
            Uuid::parse_str(id).map_err(|_| Error::Unauthenticated("the run token's subject is malformed".into()))?;
        let row = scope
            .select::<executions::Entity>()
            .filter(executions::Column::Id.eq(id))
            .one(&db.conn)
            .await?
            .ok_or_else(|| Error::Unauthenticated("the run token's execution does not exist".into()))?;
        if ExecutionStatus::parse(&row.status).is_none_or(ExecutionStatus::is_final) {
            return Err(Error::Unauthenticated(format!(
                "the run of execution {id} has ended ({}): its token is no longer valid",
                row.status
            )));
        }
        let manifest = match row.commit_id {
            Some(commit_id) => scope
                .tenant
                .select::<entity::agent_commits::Entity>()
                .filter(entity::agent_commits::Column::Id.eq(commit_id))
                .one(&db.conn)
                .await?
                .and_then(|c| serde_json::from_value::<Manifest>(c.manifest).ok()),
            None => None,
        }
        .ok_or_else(|| Error::Unauthenticated("the run token's agent cannot be found".into()))?;
        Ok(RuntimeCaller {
            run: Some(RunCapability {
                execution: id,
                depth: row.depth,
                namespace: memory::stored_namespace(environment, &manifest.name)?,
                agent: manifest.name,
                prompts: manifest.prompts,
                connectors: manifest.connectors,
            }),
            scope,
        })
    }

    /// Spans, OTLP, finish: a run reports only on its own execution.
    pub fn may_report_on(&self, execution: Uuid) -> Result<()> {
        match &self.run {
            Some(run) if run.execution != execution => Err(refuse(format!(
                "this token belongs to the run of execution {}: it cannot report on execution {execution}",
                run.execution
            ))),
            _ => Ok(()),
        }
    }

    /// The execution reported spans link to: a run's own when none is named; another is refused.
    pub fn report_target(&self, named: Option<Uuid>) -> Result<Option<Uuid>> {
        match (named, &self.run) {
            (Some(id), _) => self.may_report_on(id).map(|()| Some(id)),
            (None, Some(run)) => Ok(Some(run.execution)),
            (None, None) => Ok(None),
        }
    }

    /// Memory: a run uses only its own agent's namespace.
    pub fn may_use_memory(&self, namespace: &str) -> Result<()> {
        let Some(run) = &self.run else { return Ok(()) };
        if memory::stored_namespace(self.scope.environment, namespace)? == run.namespace {
            Ok(())
        } else {
            Err(refuse(format!(
                "a run of agent {:?} may use only its own memory namespace (RUNFLOW_MEMORY_NAMESPACE), not {namespace:?}",
                run.agent
            )))
        }
    }

    /// Prompts: a run reads only those its manifest declares (`prompts = [...]`).
    pub fn may_read_prompt(&self, slug: &str) -> Result<()> {
        match &self.run {
            Some(run) if !run.prompts.iter().any(|p| p == slug) => Err(refuse(format!(
                "agent {:?} does not declare prompt {slug:?} in runflow.toml (`prompts = [...]`)",
                run.agent
            ))),
            _ => Ok(()),
        }
    }

    /// Connectors: a run reads only those its manifest declares (`connectors = [...]`).
    pub fn may_read_connector(&self, slug: &str) -> Result<()> {
        match &self.run {
            Some(run) if !run.connectors.iter().any(|c| c == slug) => Err(refuse(format!(
                "agent {:?} does not declare connector {slug:?} in runflow.toml (`connectors = [...]`)",
                run.agent
            ))),
            _ => Ok(()),
        }
    }

    /// Executions a run starts are its children (linked, one level deeper).
    pub fn parent(&self) -> Option<ParentRun> {
        self.run.as_ref().map(|run| ParentRun {
            id: run.execution,
            depth: run.depth,
        })
    }
}
