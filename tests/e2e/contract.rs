//! The API contract as clients see it: field order, the cost model and its limits, GraphQL
//! over HTTP (media types, status codes, error bodies), CORS and the public-deployment switches.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Server, error_code, tenant, token};

/// A JSON value that keeps the order of object keys as sent (serde_json's `Value` may not).
#[derive(Debug, PartialEq)]
enum Ordered {
    Object(Vec<(String, Ordered)>),
    List(Vec<Ordered>),
    Scalar(Value),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Ordered>()? {
                    entries.push((key, value));
                }
                Ok(Ordered::Object(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Ordered>()? {
                    items.push(item);
                }
                Ok(Ordered::List(items))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(json!(v)))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
        }
        deserializer.deserialize_any(OrderedVisitor)
    }
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(entries) => entries.iter().map(|(key, _)| key.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key}")),
            _ => panic!("not an object"),
        }
    }
}

async fn post_raw(server: &Server, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = server.http().post(format!("{}/graphql", server.url)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("send")
}

/// Root fields that each wait on the database, selected in an order that is neither
/// alphabetical nor the schema's; every response must list them (and nested fields) in it.
async fn fields_come_back_in_query_order(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = token(&tenant(), "viewer");
    let query = "query Order {
        zeta: executions(environment: STAGING, first: 5) { pageInfo { hasPreviousPage hasNextPage } nodes { id } }
        viewer(environment: STAGING) { tenant role subject }
        memoryEntries(environment: STAGING, first: 5) { nodes { id } pageInfo { hasNextPage } }
        alpha: releases(environment: STAGING, first: 5) { pageInfo { hasNextPage hasPreviousPage } nodes { number } }
        traces(environment: STAGING, first: 5) { nodes { id } }
        ...More
        __typename
      }
      fragment More on Query { sessions(environment: STAGING, first: 5) { nodes { id } } zeta: executions(environment: STAGING, first: 5) { edges { cursor } } }";
    for _ in 0..40 {
        let response = post_raw(&server, Some(&viewer), json!({ "query": query })).await;
        let text = response.text().await.expect("body");
        let body: Ordered = serde_json::from_str(&text).expect("json");
        assert_eq!(body.keys(), ["data"], "{text}");
        let data = body.get("data");
        assert_eq!(
            data.keys(),
            [
                "zeta",
                "viewer",
                "memoryEntries",
                "alpha",
                "traces",
                "sessions",
                "__typename"
            ],
            "{text}"
        );
        assert_eq!(data.get("zeta").keys(), ["pageInfo", "nodes", "edges"], "{text}");
        assert_eq!(
            data.get("zeta").get("pageInfo").keys(),
            ["hasPreviousPage", "hasNextPage"]
        );
        assert_eq!(data.get("viewer").keys(), ["tenant", "role", "subject"]);
        assert_eq!(data.get("memoryEntries").keys(), ["nodes", "pageInfo"]);
        assert_eq!(data.get("alpha").keys(), ["pageInfo", "nodes"]);
        assert_eq!(
            data.get("alpha").get("pageInfo").keys(),
            ["hasNextPage", "hasPreviousPage"]
        );
    }
}

/// The examples: nested lists multiply, aliases and root fields are limited, and the
/// refusal carries the computed value and the limit.
async fn costly_operations_are_refused_with_their_cost(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = token(&tenant(), "viewer");

    let nested = "{ executions(environment: STAGING, first: 100) { nodes { agent { \
                  commits(first: 100) { nodes { files { content } } } } } } }";
    let refused = server.gql(Some(&viewer), nested, json!({})).await;
    assert_eq!(error_code(&refused), "COST_LIMIT_EXCEEDED", "{refused:#}");
    assert!(
        refused.get("data").is_none() || refused["data"].is_null(),
        "{refused:#}"
    );
    let extensions = &refused["errors"][0]["extensions"];
    assert_eq!(extensions["limit"], 10_000);
    // 100 executions + 100 agents + 100*100 commits + 100*100*20 file lists, 1 each, + 2e5 contents.
    let cost = extensions["cost"].as_u64().expect("cost");
    assert!(cost > 200_000, "{refused:#}");

    // The same shape with a variable page size, under the limit, runs.
    let small = "query($n: Int = 2) { executions(environment: STAGING, first: $n) { nodes { agent { \
                 commits(first: $n) { nodes { files { path } } } } } } }";
    let ok = server.gql(Some(&viewer), small, json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok:#}");
    let large = server.gql(Some(&viewer), small, json!({ "n": 100 })).await;
    assert_eq!(error_code(&large), "COST_LIMIT_EXCEEDED", "{large:#}");

    // 5,000 aliases of a root list.
    let aliases: String = (0..5000)
        .map(|i| format!("a{i}: releases(environment: STAGING, first: 1) {{ nodes {{ number }} }} "))
        .collect();
    let refused = server.gql(Some(&viewer), &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&refused), "ALIAS_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["aliases"], 5000);
    assert_eq!(refused["errors"][0]["extensions"]["limit"], 30);

    // Root fields, even identical ones, are limited.
    let roots = "viewer(environment: STAGING) { tenant } ".repeat(40);
    let refused = server.gql(Some(&viewer), &format!("{{ {roots} }}"), json!({})).await;
    assert_eq!(error_code(&refused), "ROOT_FIELD_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["rootFields"], 40);
    assert_eq!(refused["errors"][0]["extensions"]["limit"], 20);

    // Aliases hidden in a fragment count at every spread.
    let spreads: String = (0..11)
        .map(|i| format!("s{i}: viewer(environment: STAGING) {{ ...V }} "))
        .collect();
    let fragment = "fragment V on Viewer { t1: tenant t2: tenant }";
    let refused = server
        .gql(Some(&viewer), &format!("{{ {spreads} }} {fragment}"), json!({}))
        .await;
    assert_eq!(error_code(&refused), "ALIAS_LIMIT_EXCEEDED", "{refused:#}");
    assert_eq!(refused["errors"][0]["extensions"]["aliases"], 33);

    // An anonymous caller is told to authenticate before anything is costed.
    let anonymous = server.gql(None, nested, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous:#}");

    // Fragments spread exponentially do not make the server count forever.
    let mut fragments = String::from("fragment F0 on Viewer { tenant }");
    for i in 1..25 {
        fragments.push_str(&format!(" fragment F{i} on Viewer {{ ...F{p} ...F{p} }}", p = i - 1));
    }
    let refused = server
        .gql(
            Some(&viewer),
            &format!("{{ viewer(environment: STAGING) {{ ...F24 }} }} {fragments}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "COST_LIMIT_EXCEEDED", "{refused:#}");

    // The limits are configuration.
    let generous = Server::start_with(
        backend,
        &[
            ("RUNFLOW_MAX_QUERY_COMPLEXITY", "1000000"),
            ("RUNFLOW_MAX_ALIASES", "6000"),
        ],
    )
    .await;
    let ok = generous.gql(Some(&viewer), nested, json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok:#}");
}

on_both_backends!(
    fields_come_back_in_query_order,
    costly_operations_are_refused_with_their_cost
);
