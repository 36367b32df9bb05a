//! Access control for every GraphQL operation, in one place, before anything else runs.
//!
//! On the parsed document, before validation, lookups or resolvers, in this order:
//! 1. **Production is read-only**: a root mutation field whose `environment` argument is
//!    `PRODUCTION` fails the whole operation with `PRODUCTION_READ_ONLY` (nothing runs, so
//!    nothing is written). The only exception is `publish`, the one way production changes.
//! 2. **Authentication**: every root field except introspection needs a valid token.
//! 3. **Roles**: reads need `viewer`; each mutation needs the role of
//!    [`crate::auth::policy::required_role_for_mutation`].
//!
//! The checks look at root fields only, through fragments, with variables resolved, so a new
//! mutation is covered without anyone remembering to.

use std::collections::HashSet;

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Positioned, ServerResult, Variables};
use async_graphql_value::{ConstValue, Value as AstValue};

use super::errors::from_domain;
use super::operation_check::OperationCheck;
use crate::auth::policy::{required_role_for_mutation, required_role_for_query};
use crate::auth::{Actor, Authentication};
use crate::error::Error;

/// Root mutation fields allowed to target production.
pub const PRODUCTION_MUTATIONS: &[&str] = &["publish"];

pub struct AccessControl;

impl OperationCheck for AccessControl {
    fn check(
        &self,
        ctx: &ExtensionContext<'_>,
        document: &ExecutableDocument,
        operation: &OperationDefinition,
        variables: &Variables,
    ) -> ServerResult<()> {
        let authentication = ctx
            .data_opt::<Authentication>()
            .cloned()
            .unwrap_or(Authentication::Anonymous);
        check(document, operation, variables, &authentication).map_err(|e| from_domain(&e))
    }
}

/// The access decision for one operation (see the module docs for the order).
pub fn check(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
    authentication: &Authentication,
) -> Result<(), Error> {
    let fields = root_fields(document, &operation.selection_set);

    if operation.ty == OperationType::Mutation {
        let offending: Vec<&str> = fields
            .iter()
            .filter(|field| !PRODUCTION_MUTATIONS.contains(&field.name.node.as_str()))
            .filter(|field| targets_production(field, operation, variables))
            .map(|field| field.name.node.as_str())
            .collect();
        if !offending.is_empty() {
            return Err(Error::ProductionReadOnly);
        }
    }

    let needs_identity = fields.iter().any(|field| !field.name.node.starts_with("__"));
    let actor: Option<&Actor> = match authentication {
        Authentication::Rejected(reason) => return Err(Error::Unauthenticated(reason.clone())),
        Authentication::Anonymous if needs_identity => {
            return Err(Error::Unauthenticated(
                "this operation needs a token: send `Authorization: Bearer <token>` \
                 (mint one with `runflow token`)"
                    .into(),
            ));
        }
        Authentication::Anonymous => None,
        Authentication::Authenticated(actor) => Some(actor),
    };

    if let Some(actor) = actor {
        for field in &fields {
            let name = field.name.node.as_str();
            if name.starts_with("__") {
                continue;
            }
            let required = match operation.ty {
                OperationType::Mutation => required_role_for_mutation(name),
                _ => required_role_for_query(name),
            };
            if actor.role < required {
                return Err(Error::Forbidden(format!(
                    "`{name}` needs the {required} role; your token has the {} role",
                    actor.role
                )));
            }
        }
    }
    Ok(())
}

/// Root fields of a selection set, looking through fragment spreads and inline fragments.
fn root_fields<'d>(document: &'d ExecutableDocument, selection_set: &'d Positioned<SelectionSet>) -> Vec<&'d Field> {
    let mut fields = Vec::new();
    let mut visited = HashSet::new();
    collect_fields(document, selection_set, &mut fields, &mut visited);
    fields
}

fn collect_fields<'d>(
    document: &'d ExecutableDocument,
    selection_set: &'d Positioned<SelectionSet>,
    fields: &mut Vec<&'d Field>,
    visited: &mut HashSet<&'d str>,
) {
    for selection in &selection_set.node.items {
        match &selection.node {
            Selection::Field(field) => fields.push(&field.node),
            Selection::InlineFragment(fragment) => {
                collect_fields(document, &fragment.node.selection_set, fields, visited)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if visited.insert(name)
                    && let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                {
                    collect_fields(document, &fragment.node.selection_set, fields, visited);
                }
            }
        }
    }
}

/// Whether a field's `environment` argument is PRODUCTION, as a literal or via a variable
/// (its value, else its default).
fn targets_production(field: &Field, operation: &OperationDefinition, variables: &Variables) -> bool {
    let Some(argument) = field.get_argument("environment") else {
        return false;
    };
    match &argument.node {
        AstValue::Enum(name) => name.as_str() == "PRODUCTION",
        AstValue::String(text) => text == "PRODUCTION",
        AstValue::Variable(variable) => {
            let value = variables.get(variable).cloned().or_else(|| {
                operation
                    .variable_definitions
                    .iter()
                    .find(|definition| definition.node.name.node == *variable)
                    .and_then(|definition| definition.node.default_value.as_ref().map(|d| d.node.clone()))
            });
            match value {
                Some(ConstValue::Enum(name)) => name.as_str() == "PRODUCTION",
                Some(ConstValue::String(text)) => text == "PRODUCTION",
                _ => false,
            }
        }
        _ => false,
    }
}
