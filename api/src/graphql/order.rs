//! Response fields in the order of the query (GraphQL spec, "Serialized Map Ordering").
//!
//! async-graphql resolves the fields of a query concurrently and inserts each into the result
//! map when it *completes*, so two fields that wait on the database can come back in either
//! order from run to run. [`order_response`] puts every object of the response back in the
//! order in which its response keys (alias or name) first appear in the operation's selection
//! sets, looking through fragments, as the spec's CollectFields does; [`super::operation`]
//! applies it to every response, subscription events too.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Value};

/// Reorders `data` (the result of one operation of `document`) into query order.
pub fn order_response(document: &ExecutableDocument, operation_name: Option<&str>, data: &mut Value) {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => match operations.get(&Name::new(name)) {
            Some(operation) => operation,
            None => return,
        },
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => match operations.values().next() {
            Some(operation) => operation,
            None => return,
        },
        (DocumentOperations::Multiple(_), None) => return,
    };
    let root = [&operation.node.selection_set];
    Orderer {
        document,
        memo: HashMap::new(),
    }
    .order_value(&root, data);
}

/// Response keys of a selection, each with the sub-selections of its fields.
type Keys<'d> = Vec<(Name, Vec<&'d Positioned<SelectionSet>>)>;

/// One reordering pass over a response. The keys of a selection are collected once per pass,
/// not once per object: every item of a list, and the same field of every item, share them
/// (memoised by the address of the selection sets, which live as long as the document).
struct Orderer<'d> {
    document: &'d ExecutableDocument,
    memo: HashMap<(usize, usize), Rc<Keys<'d>>>,
}

impl<'d> Orderer<'d> {
    fn order_value(&mut self, sets: &[&'d Positioned<SelectionSet>], value: &mut Value) {
        if matches!(value, Value::List(_) | Value::Object(_)) {
            let keys = self.keys(sets);
            self.order_with(&keys, value);
        }
    }

    fn keys(&mut self, sets: &[&'d Positioned<SelectionSet>]) -> Rc<Keys<'d>> {
        // `sets` is the operation's root (one set) or a children list held by a memoised
        // `Keys`, so its address identifies it for the whole pass.
        let id = (sets.as_ptr() as usize, sets.len());
        if let Some(keys) = self.memo.get(&id) {
            return keys.clone();
        }
        let mut keys = Vec::new();
        let mut visited = HashSet::new();
        for set in sets {
            collect(self.document, set, &mut keys, &mut visited);
        }
        let keys = Rc::new(keys);
        self.memo.insert(id, keys.clone());
        keys
    }

    fn order_with(&mut self, keys: &Keys<'d>, value: &mut Value) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.order_with(keys, item);
                }
            }
            Value::Object(map) => {
                // Rebuilt only when out of order (most objects complete in order).
                let mut wanted = keys.iter().map(|(key, _)| key).filter(|key| map.contains_key(*key));
                let in_order = map.keys().all(|key| wanted.next() == Some(key)) && wanted.next().is_none();
                if !in_order {
                    let mut ordered = async_graphql::indexmap::IndexMap::with_capacity(map.len());
                    for (key, _) in keys {
                        if let Some(child) = map.shift_remove(key) {
                            ordered.insert(key.clone(), child);
                        }
                    }
                    // Anything the selection does not name (there should be nothing) keeps its place last.
                    ordered.extend(std::mem::take(map));
                    *map = ordered;
                }
                for (key, children) in keys {
                    if !children.is_empty()
                        && let Some(child) = map.get_mut(key)
                    {
                        self.order_value(children, child);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Response keys of a selection set in first-appearance order, each with the sub-selections
/// that the fields of that key carry (merged, as the executor merges them).
fn collect<'d>(
    document: &'d ExecutableDocument,
    set: &'d Positioned<SelectionSet>,
    keys: &mut Vec<(Name, Vec<&'d Positioned<SelectionSet>>)>,
    visited: &mut HashSet<&'d str>,
) {
    for selection in &set.node.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                let children = &field.node.selection_set;
                let has_children = !children.node.items.is_empty();
                match keys.iter_mut().find(|(existing, _)| *existing == key) {
                    Some((_, sets)) => {
                        if has_children {
                            sets.push(children);
                        }
                    }
                    None => keys.push((key, if has_children { vec![children] } else { Vec::new() })),
                }
            }
            Selection::InlineFragment(fragment) => collect(document, &fragment.node.selection_set, keys, visited),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if visited.insert(name)
                    && let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                {
                    collect(document, &fragment.node.selection_set, keys, visited);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered(query: &str, data: serde_json::Value) -> String {
        let document = async_graphql::parser::parse_query(query).expect("query");
        let mut data = Value::from_json(data).expect("value");
        order_response(&document, None, &mut data);
        serde_json::to_string(&data.into_json().expect("json")).expect("text")
    }

    #[test]
    fn every_item_of_every_list_comes_back_in_query_order() {
        let query = "{ list { b a ...F nested { y x } } other { y x } } fragment F on T { c a }";
        let data = serde_json::json!({
            "other": { "x": 1, "y": 2 },
            "list": [
                { "c": 1, "nested": { "x": 1, "y": 2 }, "a": 1, "b": 2 },
                { "a": 1, "b": 2, "c": 3, "nested": [{ "x": 1, "y": 2 }, { "y": 3, "x": 4 }] },
                { "b": 0, "a": 0, "c": 0, "nested": null }
            ]
        });
        assert_eq!(
            ordered(query, data),
            r#"{"list":[{"b":2,"a":1,"c":1,"nested":{"y":2,"x":1}},{"b":2,"a":1,"c":3,"nested":[{"y":2,"x":1},{"y":3,"x":4}]},{"b":0,"a":0,"c":0,"nested":null}],"other":{"y":2,"x":1}}"#
        );
    }

    #[test]
    fn the_same_field_in_two_places_keeps_each_selection() {
        // Two fields named `node` under different parents select different keys.
        let query = "{ a { node { q p } } b { node { p q } } }";
        let data = serde_json::json!({
            "b": { "node": [{ "q": 1, "p": 2 }] },
            "a": { "node": [{ "p": 1, "q": 2 }] }
        });
        assert_eq!(
            ordered(query, data),
            r#"{"a":{"node":[{"q":2,"p":1}]},"b":{"node":[{"p":2,"q":1}]}}"#
        );
    }
}
