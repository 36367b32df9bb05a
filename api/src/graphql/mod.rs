//! The GraphQL schema. Resolvers are thin: they turn arguments into domain calls.
//!
//! Cross-cutting rules each live in one place, applied by [`operation`], the one way an
//! operation runs (the schema has no async-graphql extension):
//! - [`access`]: production read-only, authentication and the role policy, checked on the
//!   parsed operation before validation or any resolver; [`cost`]: the cost limits, next;
//! - [`errors`]: every error leaves with a stable `extensions.code`; [`syntax`]: readable
//!   parse errors; [`order`]: response fields in query order;
//! - [`audit`]: every root mutation field is audited, by the Mutation root itself.
//!
//! One module per domain holds its types, queries and mutations.

pub mod access;
mod agents;
pub mod audit;
mod connectors;
pub mod context;
pub mod cost;
pub mod documents;
pub mod errors;
mod executions;
pub mod governance;
pub mod ids;
pub mod loaders;
mod memory;
mod node;
pub mod operation;
pub mod order;
mod pagination;
mod payloads;
mod prompts;
mod releases;
pub use releases::IdempotencyKey;
mod runtime_tokens;
pub mod scalars;
mod sessions;
mod shared;
mod subscriptions;
pub mod syntax;
mod traces;
mod triggers;
mod viewer;
mod webhooks;

use async_graphql::{Enum, MergedObject, Schema};

pub use operation::RunflowSchema;

use crate::services::Services;

/// The two environments of a tenant. Every root field takes one.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::Environment")]
pub enum Environment {
    /// Where every edit happens.
    Staging,
    /// Read-only; changes only by `publish` (and rollbacks).
    Production,
}

#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    viewer::ViewerQuery,
    agents::AgentQuery,
    prompts::PromptQuery,
    releases::ReleaseQuery,
    connectors::ConnectorQuery,
    triggers::TriggerQuery,
    executions::ExecutionQuery,
    sessions::SessionQuery,
    traces::TraceQuery,
    memory::MemoryQuery,
    shared::CredentialQuery,
    shared::KnowledgeBaseQuery,
    shared::LlmProviderQuery,
    shared::DataSourceQuery,
    audit::AuditQuery,
    governance::GovernanceQuery,
    governance::ScheduleQuery,
    webhooks::WebhookQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    agents::AgentMutation,
    prompts::PromptMutation,
    releases::ReleaseMutation,
    runtime_tokens::RuntimeTokenMutation,
    connectors::ConnectorMutation,
    triggers::TriggerMutation,
    executions::ExecutionMutation,
    shared::SharedMutation,
    shared::KnowledgeBaseMutation,
    shared::LlmProviderMutation,
    shared::DataSourceMutation,
    governance::GovernanceMutation,
    governance::ScheduleMutation,
    webhooks::WebhookMutation,
);

/// What resolvers return: domain errors convert with `?` and keep their code (see [`errors`]).
pub type GqlResult<T> = async_graphql::Result<T>;

fn builder() -> async_graphql::SchemaBuilder<Query, audit::Audited<Mutation>, subscriptions::Subscription> {
    Schema::build(
        Query::default(),
        audit::Audited(Mutation::default()),
        subscriptions::Subscription,
    )
}

/// The engine's types, as its builder registers them (async-graphql keeps its own registry
/// private): what the cost model walks. A test checks they match the served schema.
fn registry() -> async_graphql::registry::Registry {
    use async_graphql::{OutputType, SubscriptionType};
    let mut registry = async_graphql::registry::Registry {
        query_type: Query::type_name().to_string(),
        mutation_type: Some(audit::Audited::<Mutation>::type_name().to_string()),
        subscription_type: Some(subscriptions::Subscription::type_name().to_string()),
        ..Default::default()
    };
    Query::create_type_info(&mut registry);
    audit::Audited::<Mutation>::create_type_info(&mut registry);
    subscriptions::Subscription::create_type_info(&mut registry);
    registry
}

/// The schema's limits, as plain values (the caller reads them from configuration).
#[derive(Clone, Debug)]
pub struct SchemaOptions {
    pub cost: cost::CostLimits,
    pub max_depth: usize,
    pub introspection: bool,
}

/// The schema served by the API. No extension: the rules run around the engine
/// ([`operation`]) and in the Mutation root ([`audit::Audited`]).
pub fn build_schema(services: Services, options: SchemaOptions) -> RunflowSchema {
    let builder = builder()
        .data(services)
        .limit_depth(options.max_depth)
        .limit_recursive_depth(operation::MAX_RECURSIVE_DEPTH)
        .limit_directives(operation::MAX_DIRECTIVES)
        .disable_suggestions();
    let engine = if options.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    };
    RunflowSchema::new(engine, registry(), options.cost)
}

/// How long a request's DataLoaders keep what they load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LoaderCache {
    /// For the request: one query or mutation.
    PerRequest,
    /// Not at all: a subscription lives for hours, and a cache would hold stale data and grow
    /// without bound. Loads within one event are still batched.
    Off,
}

/// Attaches what resolvers need to a request: who is calling and, for an authenticated
/// caller, per-request DataLoaders scoped to its tenant. Run it with
/// [`RunflowSchema::execute`] (or `execute_stream`).
pub fn prepare_request(
    services: &Services,
    authentication: crate::auth::Authentication,
    request: async_graphql::Request,
) -> async_graphql::Request {
    prepare(services, authentication, request, LoaderCache::PerRequest)
}

/// Like [`prepare_request`], for a subscription: its DataLoaders keep no cache, so the nested
/// fields of every event are read fresh.
pub fn prepare_subscription_request(
    services: &Services,
    authentication: crate::auth::Authentication,
    request: async_graphql::Request,
) -> async_graphql::Request {
    prepare(services, authentication, request, LoaderCache::Off)
}

fn prepare(
    services: &Services,
    authentication: crate::auth::Authentication,
    request: async_graphql::Request,
    cache: LoaderCache,
) -> async_graphql::Request {
    let mut request = request.data(authentication.clone());
    if let crate::auth::Authentication::Authenticated(actor) = authentication {
        let loader = loaders::request_loader(services.db.clone(), crate::scope::Tenant::of(&actor));
        if cache == LoaderCache::Off {
            loader.enable_all_cache(false);
        }
        request = request.data(loader).data(actor);
    }
    request
}

/// The SDL that `schema.graphql` must equal (with `@specifiedBy` on custom scalars).
pub fn sdl() -> String {
    engine_sdl(&builder().finish())
}

/// The SDL of a built schema, printed the one way this project prints it.
pub fn sdl_of(schema: &RunflowSchema) -> String {
    engine_sdl(schema.engine())
}

fn engine_sdl(engine: &operation::Engine) -> String {
    engine.sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_schema;

    /// Every source file under `src/graphql`, with its text.
    fn graphql_sources() -> Vec<(std::path::PathBuf, String)> {
        let mut sources = Vec::new();
        let mut folders = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/graphql")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("read src/graphql") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let text = std::fs::read_to_string(&path).expect("read source");
                    sources.push((path, text));
                }
            }
        }
        sources
    }

    /// Where `text` imports the application module (`app`, which builds the schema).
    fn app_imports(text: &str) -> Vec<String> {
        // Spelled in two parts, so that this file does not name it.
        let app = concat!("crate::", "app");
        text.lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .filter(|line| {
                line.match_indices(app)
                    .any(|(at, _)| !line[at + app.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
            })
            .map(|line| line.trim().to_string())
            .collect()
    }

    /// No import cycle between `graphql` and `app`: `app` builds the schema, so the schema takes
    /// what it needs as plain values (`crate::services::Services`) and never imports `app`.
    #[test]
    fn graphql_does_not_import_app() {
        let offending: Vec<String> = graphql_sources()
            .into_iter()
            .flat_map(|(path, text)| {
                app_imports(&text)
                    .into_iter()
                    .map(move |line| format!("{}: {line}", path.display()))
            })
            .collect();
        assert!(offending.is_empty(), "graphql imports app:\n{}", offending.join("\n"));
        // The check can fail.
        let bad = concat!(
            "use crate::",
            "app::Services;\nuse crate::",
            "app;\nuse crate::",
            "application::X;"
        );
        assert_eq!(app_imports(bad).len(), 2);
    }

    /// The GraphQL layer (resolvers and DataLoaders) builds no database query: it calls domain
    /// functions, which own every query (`scope.rs` scopes them). Read over the sources, like
    /// the clippy rule on unscoped queries.
    #[test]
    fn resolvers_and_loaders_build_no_queries() {
        let builders = [
            ".select::<",
            ".update_many::<",
            ".delete_many::<",
            ".insert_into(",
            ".insert_many(",
        ];
        let mut offending = Vec::new();
        for (path, text) in graphql_sources() {
            for (number, line) in text.lines().enumerate() {
                // Comments and this test's own list of patterns (string literals) are not code.
                let trimmed = line.trim_start();
                let code = !trimmed.starts_with("//") && !trimmed.starts_with('"');
                if code && builders.iter().any(|b| line.contains(b)) {
                    offending.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
                }
            }
        }
        assert!(
            offending.is_empty(),
            "queries built in the GraphQL layer (move them into a domain function):\n{}",
            offending.join("\n")
        );
    }
    /// Where `text` (a source file of `src/graphql`) names the storage layer:
    /// an `entity::` path other than `entity::Environment` (the environment enum every layer
    /// shares), or sea-orm itself. Comment lines are skipped.
    fn storage_names(text: &str) -> Vec<String> {
        let allowed = |item: &str| item == "Environment";
        let code: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        // Spelled in two parts, so that this file does not name them.
        let (prefix, orm) = (concat!("entity", "::"), concat!("sea", "_orm"));
        let mut found = Vec::new();
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            // `other_entity::` is not the entity crate.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let items: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(|item| item.split_whitespace().next().unwrap_or(""))
                    .filter(|item| !item.is_empty())
                    .collect(),
                None => vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or(""),
                ],
            };
            found.extend(items.into_iter().filter(|item| !allowed(item)).map(str::to_string));
        }
        if code.contains(orm) {
            found.push(orm.to_string());
        }
        found
    }

    /// The GraphQL layer wraps domain values: its object types, DataLoaders and converters
    /// never name a storage entity (`entity::<table>`) or sea-orm. Domain modules convert rows
    /// at the storage boundary.
    #[test]
    fn graphql_names_no_storage_entity() {
        let mut offending = Vec::new();
        for (path, text) in graphql_sources() {
            for item in storage_names(&text) {
                offending.push(format!("{}: {item}", path.display()));
            }
        }
        assert!(
            offending.is_empty(),
            "the GraphQL layer names storage types (wrap a domain type instead):\n{}",
            offending.join("\n")
        );
    }

    /// The check above can fail: it finds every way the fixture names an entity.
    #[test]
    fn the_storage_check_rejects_its_fixture() {
        let fixture = include_str!("../../../tests/lint-fixtures/graphql_names_entity.rs");
        let found = storage_names(fixture);
        assert_eq!(
            found,
            [
                "sessions",
                "spans",
                "traces",
                "executions",
                "events",
                concat!("sea", "_orm")
            ],
            "the storage check missed a way of naming an entity"
        );
    }

    /// The registry the cost model walks ([`super::registry`]) has every type and field of the
    /// served schema, with the same field types and arguments, and nothing else.
    #[tokio::test]
    async fn the_cost_models_registry_matches_the_schema() {
        let registry = super::registry();
        let engine = super::builder().finish();
        let response = engine
            .execute(
                "{ __schema { queryType { name } mutationType { name } subscriptionType { name } \
                 types { name fields(includeDeprecated: true) { name args { name } type { ...T } } } } } \
                 fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }",
            )
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("JSON");
        let schema = &data["__schema"];
        assert_eq!(schema["queryType"]["name"], registry.query_type.as_str());
        assert_eq!(
            schema["mutationType"]["name"].as_str(),
            registry.mutation_type.as_deref()
        );
        assert_eq!(
            schema["subscriptionType"]["name"].as_str(),
            registry.subscription_type.as_deref()
        );
        fn type_ref(ty: &serde_json::Value) -> String {
            match ty["kind"].as_str() {
                Some("NON_NULL") => format!("{}!", type_ref(&ty["ofType"])),
                Some("LIST") => format!("[{}]", type_ref(&ty["ofType"])),
                _ => ty["name"].as_str().unwrap_or_default().to_string(),
            }
        }
        let mut checked = 0;
        for ty in schema["types"].as_array().expect("types") {
            let name = ty["name"].as_str().expect("name");
            let Some(fields) = ty["fields"].as_array() else {
                continue;
            };
            if name.starts_with("__") {
                continue;
            }
            let ours = registry
                .types
                .get(name)
                .and_then(|t| t.fields())
                .unwrap_or_else(|| panic!("{name} is not in the cost model's registry"));
            let served: Vec<&str> = fields.iter().filter_map(|f| f["name"].as_str()).collect();
            let registered: Vec<&str> = ours
                .keys()
                .map(String::as_str)
                .filter(|f| !f.starts_with("__"))
                .collect();
            assert_eq!(served, registered, "fields of {name}");
            for field in fields {
                let field_name = field["name"].as_str().expect("name");
                let meta = &ours[field_name];
                assert_eq!(meta.ty, type_ref(&field["type"]), "{name}.{field_name}");
                let args: Vec<&str> = field["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .filter_map(|a| a["name"].as_str())
                    .collect();
                assert_eq!(
                    args,
                    meta.args.keys().map(String::as_str).collect::<Vec<_>>(),
                    "{name}.{field_name}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} fields compared");
    }

    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    /// Every type, field, argument, input field and enum value of the served schema has a
    /// description, and none is a library's boilerplate.
    #[test]
    fn every_schema_element_is_described() {
        let document = parse_schema(super::sdl()).expect("the SDL parses");
        let mut missing = Vec::new();
        let mut check = |what: String, description: Option<&str>| match description {
            None => missing.push(what),
            Some(text)
                if [
                    "Implement the",
                    "aid in pagination",
                    "A list of edges",
                    "The item at the end",
                ]
                .iter()
                .any(|b| text.contains(b)) =>
            {
                missing.push(format!("{what} (boilerplate: {text:?})"))
            }
            Some(_) => {}
        };
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let ty = &ty.node;
            let name = ty.name.node.as_str();
            if matches!(name, "Query" | "Mutation" | "Subscription") {
                // Root types are described by their fields.
            } else {
                check(name.to_string(), ty.description.as_ref().map(|d| d.node.as_str()));
            }
            let fields = match &ty.kind {
                TypeKind::Object(o) => &o.fields,
                TypeKind::Interface(i) => &i.fields,
                TypeKind::Enum(e) => {
                    for value in &e.values {
                        let what = format!("{name}.{}", value.node.value.node);
                        check(what, value.node.description.as_ref().map(|d| d.node.as_str()));
                    }
                    continue;
                }
                TypeKind::InputObject(i) => {
                    for field in &i.fields {
                        let what = format!("{name}.{}", field.node.name.node);
                        check(what, field.node.description.as_ref().map(|d| d.node.as_str()));
                    }
                    continue;
                }
                _ => continue,
            };
            for field in fields {
                let field_name = format!("{name}.{}", field.node.name.node);
                check(
                    field_name.clone(),
                    field.node.description.as_ref().map(|d| d.node.as_str()),
                );
                for argument in &field.node.arguments {
                    let what = format!("{field_name}({})", argument.node.name.node);
                    check(what, argument.node.description.as_ref().map(|d| d.node.as_str()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "undescribed schema elements:\n{}",
            missing.join("\n")
        );
    }
}
