//! The cost model: what an operation may ask for, checked on the parsed document before
//! validation or any resolver runs (by [`super::operation`], after access control).
//!
//! - Every field costs 1 for each object it is selected on; `__typename` is free.
//! - A field that takes `first` (or `last`) returns that many items: its sub-selection is
//!   counted that many times (the default page size when the argument is absent; a variable's
//!   value, else its default). The `edges`/`nodes` lists of a connection are already counted
//!   by the connection's `first`.
//! - A list without such an argument counts as the default page size when it reads records
//!   (a root field, or one of [`RECORD_LISTS`]); a list computed from its parent (a diff's
//!   hunks, a release's items) counts once.
//! - Nested lists multiply.
//! - Fragments count once per place they are spread; aliases count like separate fields.
//! - Introspection (`__schema`, `__type`) costs 1: it is bounded by the schema, and can be
//!   turned off (`RUNFLOW_INTROSPECTION=false`).
//!
//! Limits per operation: the cost (`RUNFLOW_MAX_QUERY_COMPLEXITY`), aliases
//! (`RUNFLOW_MAX_ALIASES`) and root fields (`RUNFLOW_MAX_ROOT_FIELDS`). A refused operation
//! fails as a whole with `COST_LIMIT_EXCEEDED`, `ALIAS_LIMIT_EXCEEDED` or
//! `ROOT_FIELD_LIMIT_EXCEEDED`, whose `extensions` carry the computed value and the limit.

use std::collections::HashSet;

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{ErrorExtensionValues, Positioned, ServerError, Value, Variables};
use async_graphql_value::{ConstValue, Value as AstValue};

use crate::domain::pagination::DEFAULT_PAGE_SIZE;

/// Fields visited while computing a cost before the operation is refused as too costly
/// anyway (fragments spread many times can make a short document huge).
const MAX_VISITS: u64 = 100_000;

/// Nested list fields without `first` that read records (type, field): each counts as the
/// default page size.
pub const RECORD_LISTS: &[(&str, &str)] = &[("Commit", "files"), ("Connector", "resources"), ("Execution", "spans")];

/// The limits of one operation.
#[derive(Clone, Copy, Debug)]
pub struct CostLimits {
    pub max_cost: u64,
    pub max_aliases: u64,
    pub max_root_fields: u64,
}

/// What one operation asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub cost: u64,
    pub aliases: u64,
    pub root_fields: u64,
    /// The document was too large to finish counting (the cost is then at least `cost`).
    pub truncated: bool,
}

impl CostLimits {
    /// The error refusing `cost`, if any limit is exceeded.
    pub fn check(&self, cost: &Cost) -> Result<(), ServerError> {
        if cost.aliases > self.max_aliases {
            return Err(refusal(
                "ALIAS_LIMIT_EXCEEDED",
                format!(
                    "this operation uses {} aliases; at most {} are allowed per operation",
                    cost.aliases, self.max_aliases
                ),
                ("aliases", cost.aliases),
                self.max_aliases,
            ));
        }
        if cost.root_fields > self.max_root_fields {
            return Err(refusal(
                "ROOT_FIELD_LIMIT_EXCEEDED",
                format!(
                    "this operation selects {} root fields; at most {} are allowed per operation: split it",
                    cost.root_fields, self.max_root_fields
                ),
                ("rootFields", cost.root_fields),
                self.max_root_fields,
            ));
        }
        if cost.truncated || cost.cost > self.max_cost {
            return Err(refusal(
                "COST_LIMIT_EXCEEDED",
                format!(
                    "this operation costs {}{} points, more than the limit of {}: ask for fewer items \
                     (lower `first`) or fewer nested lists; each list multiplies the cost of what it selects",
                    if cost.truncated { "at least " } else { "" },
                    cost.cost,
                    self.max_cost
                ),
                ("cost", cost.cost),
                self.max_cost,
            ));
        }
        Ok(())
    }
}

fn refusal(code: &str, message: String, (key, value): (&str, u64), limit: u64) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Value::from(code));
    extensions.set(key, Value::from(value));
    extensions.set("limit", Value::from(limit));
    error.extensions = Some(extensions);
    error
}

/// The cost, aliases and root fields of one operation of `document`.
pub fn measure(
    registry: &Registry,
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
) -> Cost {
    let root_type = match operation.ty {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    let mut counter = Counter {
        registry,
        document,
        operation,
        variables,
        cost: Cost::default(),
        visits: 0,
        root_type: "",
    };
    if let Some(root_type) = root_type {
        counter.cost.root_fields = count_root_fields(document, &operation.selection_set, &mut HashSet::new());
        counter.root_type = root_type;
        counter.selection_set(&operation.selection_set, root_type, 1, &mut Vec::new());
    }
    counter.cost
}

fn count_root_fields<'d>(
    document: &'d ExecutableDocument,
    set: &'d Positioned<SelectionSet>,
    visited: &mut HashSet<&'d str>,
) -> u64 {
    let mut count = 0;
    for selection in &set.node.items {
        count += match &selection.node {
            Selection::Field(field) => u64::from(field.node.name.node != "__typename"),
            Selection::InlineFragment(fragment) => count_root_fields(document, &fragment.node.selection_set, visited),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match document.fragments.get(&spread.node.fragment_name.node) {
                    Some(fragment) if visited.insert(name) => {
                        count_root_fields(document, &fragment.node.selection_set, visited)
                    }
                    _ => 0,
                }
            }
        };
    }
    count
}

struct Counter<'a> {
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    cost: Cost,
    visits: u64,
    root_type: &'a str,
}

impl<'a> Counter<'a> {
    /// Adds the cost of `set`, selected on `multiplier` objects of `parent_type`.
    /// `path` holds the fragments being expanded (a cycle is a validation error; it stops here).
    fn selection_set(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        parent_type: &str,
        multiplier: u64,
        path: &mut Vec<&'a str>,
    ) {
        for selection in &set.node.items {
            if self.cost.truncated {
                return;
            }
            match &selection.node {
                Selection::Field(field) => self.field(&field.node, parent_type, multiplier, path),
                Selection::InlineFragment(fragment) => {
                    let on = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(parent_type, |condition| condition.node.on.node.as_str());
                    self.selection_set(&fragment.node.selection_set, on, multiplier, path);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if path.contains(&name) {
                        continue;
                    }
                    if let Some(fragment) = self.document.fragments.get(&spread.node.fragment_name.node) {
                        path.push(name);
                        let on = fragment.node.type_condition.node.on.node.as_str();
                        self.selection_set(&fragment.node.selection_set, on, multiplier, path);
                        path.pop();
                    }
                }
            }
        }
    }

    fn field(&mut self, field: &'a Field, parent_type: &str, multiplier: u64, path: &mut Vec<&'a str>) {
        self.visits += 1;
        if self.visits > MAX_VISITS {
            self.cost.truncated = true;
            return;
        }
        if field.alias.is_some() {
            self.cost.aliases += 1;
        }
        let name = field.name.node.as_str();
        if name == "__typename" {
            return;
        }
        self.cost.cost = self.cost.cost.saturating_add(multiplier);
        if name.starts_with("__") {
            // Introspection: bounded by the schema's size.
            return;
        }
        let Some(meta_field) = self
            .registry
            .types
            .get(parent_type)
            .and_then(|ty| ty.field_by_name(name))
        else {
            // Unknown field: validation reports it.
            return;
        };
        let child_type = MetaTypeName::concrete_typename(&meta_field.ty);
        let paged = meta_field.args.contains_key("first") || meta_field.args.contains_key("last");
        let items = if paged {
            self.page_size(field)
        } else if MetaTypeName::create(&meta_field.ty).is_list()
            && (parent_type == self.root_type || RECORD_LISTS.contains(&(parent_type, name)))
        {
            DEFAULT_PAGE_SIZE
        } else {
            1
        };
        if !field.selection_set.node.items.is_empty() {
            self.selection_set(&field.selection_set, child_type, multiplier.saturating_mul(items), path);
        }
    }

    /// `first` or `last` as sent (literal, variable, or the variable's default), else the
    /// default page size.
    fn page_size(&self, field: &Field) -> u64 {
        ["first", "last"]
            .iter()
            .filter_map(|argument| field.get_argument(argument))
            .filter_map(|value| self.int_value(&value.node))
            .max()
            .unwrap_or(DEFAULT_PAGE_SIZE)
    }

    fn int_value(&self, value: &AstValue) -> Option<u64> {
        let constant = match value {
            AstValue::Number(number) => return number.as_u64(),
            AstValue::Variable(variable) => self.variables.get(variable).cloned().or_else(|| {
                self.operation
                    .variable_definitions
                    .iter()
                    .find(|definition| definition.node.name.node == *variable)
                    .and_then(|definition| definition.node.default_value.as_ref().map(|d| d.node.clone()))
            })?,
            _ => return None,
        };
        match constant {
            ConstValue::Number(number) => number.as_u64(),
            _ => None,
        }
    }
}
