//! Access control for every GraphQL operation, in one place, before anything else runs.
//!
//! On the parsed document, before validation, lookups or resolvers, in this order:
//! 1. **Production is read-only**: a root mutation field whose `environment` argument is
//!    `PRODUCTION` fails the whole operation with `PRODUCTION_READ_ONLY` (nothing runs, so
//!    nothing is written). The only exception is `publish`, the one way production changes.
//! 2. **Authentication**: every root field except introspection needs a valid token.
//! 3. **Roles**: each root field needs the role the one policy table names
//!    ([`crate::auth::policy::ROOT_FIELDS`], applied by [`policy::authorize_field`]); a
//!    runtime token is refused.
//!
//! The checks look at root fields only, through fragments, with variables resolved, so a new
//! mutation is covered without anyone remembering to.

use std::collections::HashSet;

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Positioned, Variables};
use async_graphql_value::{ConstValue, Value as AstValue};

use crate::auth::policy::{self, Root};
use crate::auth::{Actor, Authentication};
use crate::error::Error;

/// Root mutation fields allowed to target production.
pub const PRODUCTION_MUTATIONS: &[&str] = &["publish"];

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
        let root = match operation.ty {
            OperationType::Query => Root::Query,
            OperationType::Mutation => Root::Mutation,
            OperationType::Subscription => Root::Subscription,
        };
        for field in &fields {
            policy::authorize_field(actor, root, field.name.node.as_str())?;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::auth::policy::{ROOT_FIELDS, Root};

    /// The root fields of the served schema, by introspection.
    async fn served_root_fields() -> BTreeSet<(String, String)> {
        let schema = super::super::builder().finish();
        let response = schema
            .execute(
                "{ __schema { queryType { fields(includeDeprecated: true) { name } } mutationType { fields(includeDeprecated: true) { name } } \
                 subscriptionType { fields(includeDeprecated: true) { name } } } }",
            )
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let Ok(data) = response.data.into_json() else {
            panic!("introspection is not JSON");
        };
        let mut fields = BTreeSet::new();
        for (root, key) in [
            ("Query", "queryType"),
            ("Mutation", "mutationType"),
            ("Subscription", "subscriptionType"),
        ] {
            let listed = data["__schema"][key]["fields"].as_array().cloned().unwrap_or_default();
            assert!(!listed.is_empty(), "the schema has no {root} fields");
            for field in listed {
                let name = field["name"].as_str().unwrap_or_default().to_string();
                fields.insert((root.to_string(), name));
            }
        }
        fields
    }

    /// The role table as (root, field) names.
    fn table_fields(table: &[(Root, &str, crate::auth::Role)]) -> BTreeSet<(String, String)> {
        table
            .iter()
            .map(|(root, field, _)| {
                let root = match root {
                    Root::Query => "Query",
                    Root::Mutation => "Mutation",
                    Root::Subscription => "Subscription",
                };
                (root.to_string(), field.to_string())
            })
            .collect()
    }

    /// What the completeness check reports: root fields without a role, and entries for no field.
    type Mismatch = (Vec<(String, String)>, Vec<(String, String)>);

    fn mismatch(served: &BTreeSet<(String, String)>, table: &BTreeSet<(String, String)>) -> Mismatch {
        (
            served.difference(table).cloned().collect(),
            table.difference(served).cloned().collect(),
        )
    }

    /// Every root field of the schema has an entry in the role table, and the table names no
    /// field the schema does not have.
    #[tokio::test]
    async fn the_role_table_matches_the_schema() {
        let served = served_root_fields().await;
        let (missing, stale) = mismatch(&served, &table_fields(ROOT_FIELDS));
        assert!(
            missing.is_empty(),
            "root fields without a role in auth/policy.rs: {missing:?}"
        );
        assert!(
            stale.is_empty(),
            "entries of auth/policy.rs for no root field: {stale:?}"
        );
    }

    /// The check above can fail: a table that lacks one entry (a mutation added without a
    /// role) or names a field the schema lost is reported, naming the field.
    #[tokio::test]
    async fn a_missing_or_stale_entry_is_reported() {
        let served = served_root_fields().await;
        let mut table = table_fields(ROOT_FIELDS);
        let publish = ("Mutation".to_string(), "publish".to_string());
        assert!(table.remove(&publish), "the table has an entry for publish");
        table.insert(("Query".to_string(), "removedLongAgo".to_string()));
        let (missing, stale) = mismatch(&served, &table);
        assert_eq!(missing, [publish]);
        assert_eq!(stale, [("Query".to_string(), "removedLongAgo".to_string())]);
    }
}
