//! The one way a rule checks the parsed operation before validation or any resolver runs.
//!
//! [`AccessControl`](super::access::AccessControl) and [`CostControl`](super::cost::CostControl)
//! are each an [`OperationCheck`]; [`OnParsedOperation`] turns one into an async-graphql
//! extension: it remembers the request's operation name, lets the document be parsed, selects
//! the operation that will run and hands it to the check. An error fails the whole request.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{Name, Request, ServerResult, Variables};

/// A rule over the operation that is about to run.
pub trait OperationCheck: Send + Sync + 'static {
    fn check(
        &self,
        ctx: &ExtensionContext<'_>,
        document: &ExecutableDocument,
        operation: &OperationDefinition,
        variables: &Variables,
    ) -> ServerResult<()>;
}

/// The extension factory of an [`OperationCheck`].
pub struct OnParsedOperation<C>(pub Arc<C>);

impl<C: OperationCheck> ExtensionFactory for OnParsedOperation<C> {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CheckExtension {
            check: self.0.clone(),
            operation_name: Mutex::new(None),
        })
    }
}

struct CheckExtension<C> {
    check: Arc<C>,
    operation_name: Mutex<Option<String>>,
}

#[async_graphql::async_trait::async_trait]
impl<C: OperationCheck> Extension for CheckExtension<C> {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operation_name = self.operation_name.lock().ok().and_then(|name| name.clone());
        // An operation that cannot be selected fails in validation; nothing runs.
        if let Some(operation) = select_operation(&document, operation_name.as_deref()) {
            self.check.check(ctx, &document, operation, variables)?;
        }
        Ok(document)
    }
}

fn select_operation<'d>(document: &'d ExecutableDocument, name: Option<&str>) -> Option<&'d OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(&Name::new(name)).map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}
