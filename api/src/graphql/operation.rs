//! How every GraphQL operation runs: [`RunflowSchema::execute`] (queries, mutations) and
//! [`RunflowSchema::execute_stream`] (subscriptions, and anything sent over a streaming
//! transport), called by every transport (HTTP, WebSocket, SSE, shared executions) and by the
//! tests. The engine underneath is private to this module, so nothing runs an operation
//! without these rules:
//!
//! 1. the document is parsed, or found parsed ([`super::documents`]);
//! 2. the engine's recursion-depth and directive limits are checked on it (the engine checks
//!    them again; here they come first, as they did when parsing, so the checks below never
//!    see a deeper document);
//! 3. on the operation that will run: access control ([`super::access`]: production
//!    read-only, authentication, roles), then the cost limits ([`super::cost`]);
//! 4. the engine validates and executes it;
//! 5. every error gets its code ([`super::errors`]), and the response its fields in query
//!    order ([`super::order`]).
//!
//! A refusal in 1-3 fails the whole operation before validation or any resolver runs. The
//! audit trail is not a step: it is the Mutation root ([`super::audit::Audited`]), so each
//! root mutation field runs with its entry pending.
//!
//! The schema has no async-graphql extension on purpose: with none, the engine resolves each
//! field directly, without building a `ResolveInfo`, looking the field up in the registry and
//! passing it through a chain of boxed futures.

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::{Name, Positioned, Request, Response, Schema, ServerError};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::audit::Audited;
use super::cost::CostLimits;
use super::{Mutation, Query, access, cost, documents, errors, order, subscriptions};
use crate::auth::Authentication;

/// Deepest nesting of selection sets in a document (fragments count as a level).
pub(super) const MAX_RECURSIVE_DEPTH: usize = 32;
/// Most directives on one field.
pub(super) const MAX_DIRECTIVES: usize = 16;

/// The async-graphql schema, which only this module executes.
pub(super) type Engine = Schema<Query, Audited<Mutation>, subscriptions::Subscription>;

/// The served schema: the engine and what the checks before it need.
#[derive(Clone)]
pub struct RunflowSchema {
    engine: Engine,
    /// The engine's types, for the cost model (async-graphql does not expose its registry).
    registry: Arc<Registry>,
    cost: CostLimits,
}

/// A document that passed the checks: what the response is put in order by.
struct Checked {
    document: Arc<ExecutableDocument>,
    operation_name: Option<String>,
}

impl RunflowSchema {
    pub(super) fn new(engine: Engine, registry: Registry, cost: CostLimits) -> RunflowSchema {
        RunflowSchema {
            engine,
            registry: Arc::new(registry),
            cost,
        }
    }

    /// The engine, for the SDL.
    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Runs a query or mutation prepared by [`super::prepare_request`].
    pub async fn execute(&self, mut request: Request) -> Response {
        let checked = match self.check(&mut request) {
            Ok(checked) => checked,
            Err(refused) => return *refused,
        };
        let mut response = self.engine.execute(request).await;
        finish(&checked, &mut response);
        response
    }

    /// Runs an operation as a stream of responses (a subscription's events; one response for
    /// a refusal or another kind of operation), prepared by [`super::prepare_request`] or
    /// [`super::prepare_subscription_request`].
    pub fn execute_stream(&self, mut request: Request) -> BoxStream<'static, Response> {
        let checked = match self.check(&mut request) {
            Ok(checked) => checked,
            Err(refused) => return futures_util::stream::once(async move { *refused }).boxed(),
        };
        self.engine
            .execute_stream(request)
            .map(move |mut response| {
                finish(&checked, &mut response);
                response
            })
            .boxed()
    }

    /// Steps 1-3: the parsed document attached to `request`, or the refusal.
    fn check(&self, request: &mut Request) -> Result<Checked, Box<Response>> {
        let refuse = |error: ServerError| Box::new(Response::from_errors(vec![errors::refusal(error)]));
        let Some(document) = documents::parsed(&request.query) else {
            let error = match async_graphql::parser::parse_query(&request.query) {
                Err(error) => ServerError::from(error),
                Ok(_) => ServerError::new("the document could not be parsed", None),
            };
            return Err(refuse(error));
        };
        check_recursive_depth(&document).map_err(refuse)?;
        check_directives(&document).map_err(refuse)?;
        // An operation that cannot be selected is reported by the engine; nothing runs.
        if let Some(operation) = select_operation(&document, request.operation_name.as_deref()) {
            let anonymous = Authentication::Anonymous;
            let authentication = request
                .data
                .get(&TypeId::of::<Authentication>())
                .and_then(|data| data.downcast_ref::<Authentication>())
                .unwrap_or(&anonymous);
            access::check(&document, operation, &request.variables, authentication)
                .map_err(|error| refuse(errors::from_domain(&error)))?;
            let cost = cost::measure(&self.registry, &document, operation, &request.variables);
            self.cost.check(&cost).map_err(refuse)?;
        }
        request.set_parsed_query(ExecutableDocument::clone(&document));
        Ok(Checked {
            document,
            operation_name: request.operation_name.clone(),
        })
    }
}

/// Step 5, on each response of the engine.
fn finish(checked: &Checked, response: &mut Response) {
    errors::set_codes(response);
    order::order_response(&checked.document, checked.operation_name.as_deref(), &mut response.data);
}

/// The operation the engine will run: the single one, or the one named.
fn select_operation<'d>(document: &'d ExecutableDocument, name: Option<&str>) -> Option<&'d OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(&Name::new(name)).map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The engine's recursion limit (`limit_recursive_depth`), with its message: every
/// operation's selection sets, a fragment or inline fragment counting as one more level.
fn check_recursive_depth(document: &ExecutableDocument) -> Result<(), ServerError> {
    fn visit(document: &ExecutableDocument, set: &Positioned<SelectionSet>, depth: usize) -> Result<(), ServerError> {
        if depth > MAX_RECURSIVE_DEPTH {
            return Err(ServerError::new(
                format!("The recursion depth of the query cannot be greater than `{MAX_RECURSIVE_DEPTH}`"),
                Some(set.pos),
            ));
        }
        for selection in &set.node.items {
            let inner = match &selection.node {
                Selection::Field(field) if field.node.selection_set.node.items.is_empty() => None,
                Selection::Field(field) => Some(&field.node.selection_set),
                Selection::FragmentSpread(spread) => document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map(|fragment| &fragment.node.selection_set),
                Selection::InlineFragment(fragment) => Some(&fragment.node.selection_set),
            };
            if let Some(inner) = inner {
                visit(document, inner, depth + 1)?;
            }
        }
        Ok(())
    }
    for (_, operation) in document.operations.iter() {
        visit(document, &operation.node.selection_set, 0)?;
    }
    Ok(())
}

/// The engine's directive limit (`limit_directives`), with its message.
fn check_directives(document: &ExecutableDocument) -> Result<(), ServerError> {
    fn visit(document: &ExecutableDocument, set: &Positioned<SelectionSet>) -> Result<(), ServerError> {
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    if field.node.directives.len() > MAX_DIRECTIVES {
                        return Err(ServerError::new(
                            format!(
                                "The number of directives on the field `{}` cannot be greater than `{MAX_DIRECTIVES}`",
                                field.node.name.node
                            ),
                            Some(field.pos),
                        ));
                    }
                    visit(document, &field.node.selection_set)?;
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                        visit(document, &fragment.node.selection_set)?;
                    }
                }
                Selection::InlineFragment(fragment) => visit(document, &fragment.node.selection_set)?,
            }
        }
        Ok(())
    }
    for (_, operation) in document.operations.iter() {
        visit(document, &operation.node.selection_set)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Query;

    #[Object]
    impl Query {
        async fn a(&self) -> Query {
            Query
        }
        async fn b(&self) -> i32 {
            1
        }
    }

    /// The limits checked before access control refuse what the engine's own would, with the
    /// same message and position.
    #[tokio::test]
    async fn the_limits_match_the_engines() {
        let engine = Schema::build(Query, EmptyMutation, EmptySubscription)
            .limit_recursive_depth(super::MAX_RECURSIVE_DEPTH)
            .limit_directives(super::MAX_DIRECTIVES)
            .finish();
        // Selection sets nested `depth` levels below the operation's.
        let nested = |depth: usize| format!("{}b{}", "{ a ".repeat(depth + 1), " }".repeat(depth + 1));
        let fragments = format!(
            "{{ ...F0 }} {} fragment F{n} on Query {{ b }}",
            (0..super::MAX_RECURSIVE_DEPTH)
                .map(|i| format!("fragment F{i} on Query {{ ... on Query {{ ...F{} }} }}", i + 1))
                .collect::<Vec<_>>()
                .join(" "),
            n = super::MAX_RECURSIVE_DEPTH
        );
        let directives = |count: usize| format!("{{ b {} }}", "@include(if: true) ".repeat(count));
        for (query, refused) in [
            (nested(super::MAX_RECURSIVE_DEPTH), false),
            (nested(super::MAX_RECURSIVE_DEPTH + 1), true),
            (fragments, true),
            (directives(super::MAX_DIRECTIVES), false),
            (directives(super::MAX_DIRECTIVES + 1), true),
        ] {
            let document = async_graphql::parser::parse_query(&query).expect("parses");
            let ours = super::check_recursive_depth(&document).and_then(|()| super::check_directives(&document));
            let theirs = engine.execute(query.as_str()).await;
            match ours {
                Err(error) => {
                    assert!(refused, "{query}");
                    assert_eq!(theirs.errors.len(), 1, "{query}");
                    assert_eq!(error.message, theirs.errors[0].message, "{query}");
                    assert_eq!(error.locations, theirs.errors[0].locations, "{query}");
                }
                Ok(()) => {
                    assert!(!refused, "{query}");
                    assert!(
                        theirs.errors.iter().all(|e| !e.message.contains("cannot be greater")),
                        "{query}: {:?}",
                        theirs.errors
                    );
                }
            }
        }
    }
}
