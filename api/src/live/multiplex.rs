//! Shared subscription executions (multiplexing): subscribers of one tenant and role that send
//! the same document, operation name and variables share one execution of it, and every result
//! is serialised once for all of them.
//!
//! A subscription is executed per event: with 20,000 dashboards following the same
//! `executionEvents(environment: PRODUCTION)`, executing and serialising it per subscriber would
//! cost 20,000 executions per event. Here it costs one; a subscriber is an entry in its group's
//! member list (a few hundred bytes), and a result reaches each member as the same
//! `Arc<str>` payload (the transport wraps it in its own frame, with the member's id).
//!
//! What decides sharing (the [`GroupKey`]): the tenant and the caller's kind (a person's role),
//! which are all the access checks of a subscription look at, and the request's text, operation
//! name and variables. Only subscriptions are shared (a query or mutation sent over a
//! subscription transport runs once per request), and never one that replays history (`after:`
//! set, by value, variable or default): a member joining later would miss the replay (see
//! [`shareable`]); the transport runs those alone.
//!
//! Joining a group that already runs delivers the events from then on, as a subscription of its
//! own would (it starts at the head of the log). A group ends when its stream ends (shutdown, or
//! a refusal: every member gets it), or when its last member leaves (its execution is
//! dropped). A member that cannot take a result without waiting (its connection's queue is
//! full) is removed from the group and told so ([`Delivered::Refused`]); a slow member never
//! delays the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use futures_util::{Stream, StreamExt};
use tokio::task::AbortHandle;

use crate::auth::{Actor, ActorKind};

/// What makes two subscriptions the same execution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    tenant: String,
    kind: ActorKind,
    query: String,
    operation_name: Option<String>,
    /// The variables as JSON text (same text, same key; a different key order only costs a
    /// second execution).
    variables: String,
}

impl GroupKey {
    /// The key of `request` sent by `actor`, or None when it must run alone: it is not a
    /// subscription (a query or mutation sent over a subscription transport runs once per
    /// request, always), it replays history, or it does not parse (its own execution reports
    /// why).
    pub fn of(actor: &Actor, request: &async_graphql::Request) -> Option<GroupKey> {
        if !shareable(request) {
            return None;
        }
        Some(GroupKey {
            tenant: actor.tenant_id().to_string(),
            kind: actor.kind(),
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
        })
    }
}

/// Whether `request` may share an execution: it parses, the operation it runs is a
/// subscription, and it does not ask for a replay (no root field with a non-null `after`: a
/// literal, a variable that is set, or a variable's default).
pub fn shareable(request: &async_graphql::Request) -> bool {
    // The parsed-document cache: the execution that follows finds the same parse there.
    let Some(document) = crate::graphql::documents::parsed(&request.query) else {
        return false;
    };
    let mut operations = document
        .operations
        .iter()
        .filter(|(name, _)| match &request.operation_name {
            Some(wanted) => name.map(|n| n.as_str()) == Some(wanted.as_str()),
            None => true,
        });
    let (Some((_, operation)), None) = (operations.next(), operations.next()) else {
        // None, or several without a name to choose: its own execution reports the error.
        return false;
    };
    let operation = &operation.node;
    if operation.ty != OperationType::Subscription {
        return false;
    }
    // A variable's value: the request's, else its declared default.
    let mut variables = request.variables.clone();
    for definition in &operation.variable_definitions {
        let name = &definition.node.name.node;
        if !variables.contains_key(name)
            && let Some(default) = &definition.node.default_value
        {
            variables.insert(name.clone(), default.node.clone());
        }
    }
    !selects_after(&document, &operation.selection_set.node, &variables, 0)
}

fn selects_after(
    document: &ExecutableDocument,
    set: &SelectionSet,
    variables: &async_graphql::Variables,
    depth: usize,
) -> bool {
    // Fragments nest at the root only through spreads and inline fragments; a cycle is a
    // validation error, so a small bound is enough.
    if depth > 8 {
        return true;
    }
    set.items.iter().any(|selection| match &selection.node {
        Selection::Field(field) => field.node.arguments.iter().any(|(name, value)| {
            name.node.as_str() == "after"
                && match &value.node {
                    async_graphql_value::Value::Null => false,
                    async_graphql_value::Value::Variable(variable) => {
                        !matches!(variables.get(variable), None | Some(async_graphql::Value::Null))
                    }
                    _ => true,
                }
        }),
        Selection::InlineFragment(fragment) => {
            selects_after(document, &fragment.node.selection_set.node, variables, depth + 1)
        }
        Selection::FragmentSpread(spread) => match document.fragments.get(&spread.node.fragment_name.node) {
            Some(fragment) => selects_after(document, &fragment.node.selection_set.node, variables, depth + 1),
            None => true,
        },
    })
}

/// One result of a group's execution, serialised once for all its members.
pub struct SharedResult {
    /// The GraphQL response as JSON (`{"data":...}`).
    pub payload: Arc<str>,
    cursor: OnceLock<Option<String>>,
}

impl SharedResult {
    fn new(payload: Arc<str>) -> SharedResult {
        SharedResult {
            payload,
            cursor: OnceLock::new(),
        }
    }

    /// The event's `cursor`, if the result has one (read from the payload once, for the
    /// first member that needs it: a transport that cannot send the result names it).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor
            .get_or_init(|| {
                serde_json::from_str::<serde_json::Value>(&self.payload)
                    .ok()
                    .and_then(|response| cursor_of(&response).map(str::to_string))
            })
            .as_deref()
    }
}

/// The `cursor` of the event a subscription result carries (`{"data": {"<field>": {"cursor":
/// ...}}}`), if any.
pub fn cursor_of(response: &serde_json::Value) -> Option<&str> {
    response
        .get("data")?
        .as_object()?
        .values()
        .find_map(|event| event.get("cursor")?.as_str())
}

/// What a group hands its members.
pub enum Delivery<'a> {
    /// A result.
    Next(&'a SharedResult),
    /// The execution was refused before its first result: the serialised `errors` array.
    Refused(&'a Arc<str>),
    /// The execution ended; nothing follows.
    Complete,
}

/// What a member did with a delivery.
pub enum Delivered {
    /// Queued (or nothing to do).
    Taken,
    /// It could not take it without waiting, or its connection is gone: it leaves the group
    /// (and, for a full queue, tells its client itself).
    Refused,
}

/// A subscriber of a group: a transport's end (for the WebSocket, an id on a connection).
pub trait Member: Send + Sync + 'static {
    /// Takes a delivery without waiting (it is called for every member in turn, with the
    /// group's lock held: it must not join or leave a group).
    fn deliver(&self, delivery: Delivery<'_>) -> Delivered;
}

/// The groups of this process.
#[derive(Default)]
pub struct SharedSubscriptions {
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
}

struct Group {
    key: GroupKey,
    state: Mutex<GroupState>,
}

#[derive(Default)]
struct GroupState {
    next_member: u64,
    members: HashMap<u64, Arc<dyn Member>>,
    /// Set once the group ended or lost its last member: nobody joins it any more.
    closed: bool,
    execution: Option<AbortHandle>,
}

/// A member's place in its group; dropping it leaves (and the last one out stops the
/// execution).
pub struct Membership {
    registry: Weak<SharedSubscriptions>,
    group: Arc<Group>,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        registry.leave(&self.group, self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SharedSubscriptions {
    pub fn new() -> Arc<Self> {
        Arc::new(SharedSubscriptions::default())
    }

    /// Executions running now (one per group).
    pub fn executions(&self) -> usize {
        lock(&self.groups).len()
    }

    /// Adds `member` to the group of `key`, starting its execution with `start` when there is
    /// none (`start` is called at most once, and only then; it must only build the stream).
    pub fn join<S>(self: &Arc<Self>, key: GroupKey, member: Arc<dyn Member>, start: impl FnOnce() -> S) -> Membership
    where
        S: Stream<Item = async_graphql::Response> + Send + 'static,
    {
        let mut groups = lock(&self.groups);
        if let Some(group) = groups.get(&key) {
            let mut state = lock(&group.state);
            if !state.closed {
                let id = state.next_member;
                state.next_member += 1;
                state.members.insert(id, member);
                drop(state);
                return Membership {
                    registry: Arc::downgrade(self),
                    group: group.clone(),
                    id,
                };
            }
        }
        // Built before the group is registered: nobody can join a group without an execution.
        let stream = start();
        let group = Arc::new(Group {
            key: key.clone(),
            state: Mutex::new(GroupState {
                next_member: 1,
                members: HashMap::from([(0, member)]),
                ..GroupState::default()
            }),
        });
        groups.insert(key, group.clone());
        drop(groups);
        // Counted from now (not from the task's first poll), so the gauge never lags the groups.
        let counted = crate::http::metrics::SharedExecution::start();
        let task = tokio::spawn(run(Arc::downgrade(self), group.clone(), stream, counted));
        let mut state = lock(&group.state);
        if state.closed {
            // Ended (or left) before the handle was stored.
            task.abort();
        } else {
            state.execution = Some(task.abort_handle());
        }
        drop(state);
        Membership {
            registry: Arc::downgrade(self),
            group,
            id: 0,
        }
    }

    fn leave(&self, group: &Arc<Group>, id: u64) {
        let mut groups = lock(&self.groups);
        let mut state = lock(&group.state);
        state.members.remove(&id);
        if state.members.is_empty() && !state.closed {
            state.closed = true;
            if let Some(execution) = state.execution.take() {
                execution.abort();
            }
            drop(state);
            forget(&mut groups, group);
        }
    }

    /// Ends `group`: nobody joins it any more; returns the members it had.
    fn close(&self, group: &Arc<Group>) -> Vec<Arc<dyn Member>> {
        let mut groups = lock(&self.groups);
        let mut state = lock(&group.state);
        state.closed = true;
        state.execution = None;
        let members = std::mem::take(&mut state.members).into_values().collect();
        drop(state);
        forget(&mut groups, group);
        members
    }
}

/// Removes `group` from the registry if it is still the one registered under its key.
fn forget(groups: &mut HashMap<GroupKey, Arc<Group>>, group: &Arc<Group>) {
    if groups
        .get(&group.key)
        .is_some_and(|current| Arc::ptr_eq(current, group))
    {
        groups.remove(&group.key);
    }
}

/// Ends a group however its execution stops: at the end of its stream, or if it panics (its
/// members get `complete`, and the key is free for a new execution). When the execution was
/// stopped because its last member left, there is nobody left to tell.
struct Ending {
    registry: Weak<SharedSubscriptions>,
    group: Arc<Group>,
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            for member in registry.close(&self.group) {
                member.deliver(Delivery::Complete);
            }
        }
    }
}

/// Runs a group's execution and hands each result to every member.
/// `_counted` keeps it in `runflow_subscription_executions` until the task ends (or is dropped
/// unpolled when aborted).
async fn run<S>(
    registry: Weak<SharedSubscriptions>,
    group: Arc<Group>,
    stream: S,
    _counted: crate::http::metrics::SharedExecution,
) where
    S: Stream<Item = async_graphql::Response> + Send + 'static,
{
    let _ending = Ending {
        registry: registry.clone(),
        group: group.clone(),
    };
    let mut stream = std::pin::pin!(stream);
    let mut first = true;
    while let Some(response) = stream.next().await {
        if first && response.is_err() && response.data == async_graphql::Value::Null {
            let errors: Arc<str> = serde_json::to_string(&response.errors)
                .unwrap_or_else(|_| "[]".into())
                .into();
            if let Some(registry) = registry.upgrade() {
                for member in registry.close(&group) {
                    member.deliver(Delivery::Refused(&errors));
                }
            }
            return;
        }
        first = false;
        let result = match serde_json::to_string(&response) {
            Ok(text) => SharedResult::new(text.into()),
            Err(error) => {
                tracing::error!(%error, "shared subscription: cannot serialise a result");
                continue;
            }
        };
        broadcast(&registry, &group, &result);
    }
}

/// Hands `result` to every member; those that refuse it leave.
fn broadcast(registry: &Weak<SharedSubscriptions>, group: &Arc<Group>, result: &SharedResult) {
    let mut refused = Vec::new();
    {
        let state = lock(&group.state);
        for (id, member) in &state.members {
            if let Delivered::Refused = member.deliver(Delivery::Next(result)) {
                refused.push(*id);
            }
        }
    }
    if refused.is_empty() {
        return;
    }
    if let Some(registry) = registry.upgrade() {
        for id in refused {
            registry.leave(group, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, variables: serde_json::Value) -> async_graphql::Request {
        async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables))
    }

    #[test]
    fn only_subscriptions_without_a_replay_are_shared() {
        let none = serde_json::json!({});
        let shared = |query: &str, variables: &serde_json::Value| shareable(&request(query, variables.clone()));
        assert!(shared(
            "subscription { executionEvents(environment: STAGING) { cursor } }",
            &none
        ));
        assert!(shared(
            "subscription { executionEvents(environment: STAGING, after: null) { cursor } }",
            &none
        ));
        assert!(!shared(
            "subscription { executionEvents(environment: STAGING, after: \"12\") { cursor } }",
            &none
        ));
        let by_variable =
            "subscription($after: String) { executionEvents(environment: STAGING, after: $after) { cursor } }";
        assert!(shared(by_variable, &none));
        assert!(shared(by_variable, &serde_json::json!({ "after": null })));
        assert!(!shared(by_variable, &serde_json::json!({ "after": "12" })));
        let by_default =
            "subscription($after: String = \"5\") { executionEvents(environment: STAGING, after: $after) { cursor } }";
        assert!(!shared(by_default, &none), "a variable's default counts");
        assert!(shared(by_default, &serde_json::json!({ "after": null })));
        let in_fragment = "subscription { ...F } fragment F on Subscription { traceEvents(environment: STAGING, after: \"3\") { cursor } }";
        assert!(!shared(in_fragment, &none));
        let inline =
            "subscription { ... on Subscription { traceEvents(environment: STAGING, after: \"3\") { cursor } } }";
        assert!(!shared(inline, &none));
        // Only the operation that runs counts.
        let two = "subscription A { executionEvents(environment: STAGING) { cursor } } \
                   subscription B { executionEvents(environment: STAGING, after: \"1\") { cursor } }";
        assert!(shareable(&request(two, none.clone()).operation_name("A")));
        assert!(!shareable(&request(two, none.clone()).operation_name("B")));
        assert!(
            !shared(two, &none),
            "two operations and no name: its own execution refuses it"
        );
        // Queries and mutations are never shared: each request runs.
        assert!(!shared("{ viewer(environment: STAGING) { role } }", &none));
        assert!(!shared(
            "mutation { createRuntimeToken(environment: STAGING, input: {name: \"x\"}) { token } }",
            &none
        ));
        assert!(!shared("subscription {", &none));
    }

    struct Recorder(Mutex<Vec<String>>, bool);

    impl Member for Recorder {
        fn deliver(&self, delivery: Delivery<'_>) -> Delivered {
            let text = match delivery {
                Delivery::Next(result) => format!("next {}", result.payload),
                Delivery::Refused(errors) => format!("refused {errors}"),
                Delivery::Complete => "complete".to_string(),
            };
            self.0.lock().unwrap().push(text);
            if self.1 { Delivered::Refused } else { Delivered::Taken }
        }
    }

    fn key(query: &str) -> GroupKey {
        GroupKey {
            tenant: "t".into(),
            kind: ActorKind::Person(crate::auth::Role::Viewer),
            query: query.into(),
            operation_name: None,
            variables: "{}".into(),
        }
    }

    #[tokio::test]
    async fn members_of_one_key_share_one_execution_and_the_last_one_out_stops_it() {
        let shared = SharedSubscriptions::new();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<async_graphql::Response>();
        let mut starts = 0;
        let a = Arc::new(Recorder(Mutex::default(), false));
        let b = Arc::new(Recorder(Mutex::default(), false));
        let slow = Arc::new(Recorder(Mutex::default(), true));
        let mut receiver = Some(receiver);
        let mut start = || {
            starts += 1;
            tokio_stream_of(receiver.take().unwrap())
        };
        let first = shared.join(key("q"), a.clone(), &mut start);
        let second = shared.join(key("q"), b.clone(), || -> futures_util::stream::Empty<_> {
            panic!("a second execution started")
        });
        let _slow = shared.join(key("q"), slow.clone(), || -> futures_util::stream::Empty<_> {
            panic!("a second execution started")
        });
        assert_eq!(starts, 1);
        assert_eq!(shared.executions(), 1);
        sender
            .send(async_graphql::Response::new(async_graphql::value!({ "n": 1 })))
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(*a.0.lock().unwrap(), vec![r#"next {"data":{"n":1}}"#.to_string()]);
        assert_eq!(*b.0.lock().unwrap(), *a.0.lock().unwrap());
        // The member that refused left: it gets nothing more.
        sender
            .send(async_graphql::Response::new(async_graphql::value!({ "n": 2 })))
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(a.0.lock().unwrap().len(), 2);
        assert_eq!(slow.0.lock().unwrap().len(), 1);
        // Another key is another execution.
        let other = shared.join(key("other"), Arc::new(Recorder(Mutex::default(), false)), || {
            futures_util::stream::pending()
        });
        assert_eq!(shared.executions(), 2);
        drop(other);
        drop(first);
        assert_eq!(shared.executions(), 1);
        drop(second);
        assert_eq!(shared.executions(), 0, "the last member out stops the execution");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(sender.is_closed(), "the execution's stream was dropped");
    }

    #[tokio::test]
    async fn a_refusal_reaches_every_member_and_ends_the_group() {
        let shared = SharedSubscriptions::new();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<async_graphql::Response>();
        let a = Arc::new(Recorder(Mutex::default(), false));
        let b = Arc::new(Recorder(Mutex::default(), false));
        let _a = shared.join(key("q"), a.clone(), || tokio_stream_of(receiver));
        let _b = shared.join(key("q"), b.clone(), futures_util::stream::pending);
        sender
            .send(async_graphql::Response::from_errors(vec![
                async_graphql::ServerError::new("no", None),
            ]))
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        for member in [&a, &b] {
            let got = member.0.lock().unwrap().clone();
            assert_eq!(got.len(), 1);
            assert!(got[0].starts_with("refused [{\"message\":\"no\""), "{got:?}");
        }
        assert_eq!(shared.executions(), 0);
    }

    fn tokio_stream_of(
        mut receiver: tokio::sync::mpsc::UnboundedReceiver<async_graphql::Response>,
    ) -> impl Stream<Item = async_graphql::Response> + Send + 'static {
        async_stream::stream! {
            while let Some(item) = receiver.recv().await {
                yield item;
            }
        }
    }
}
