//! The GraphQL operations the CLI sends, typed from `schema.graphql` at build time by
//! graphql_client: an operation that no longer matches the schema does not compile.

#![allow(clippy::all, dead_code)]

use graphql_client::GraphQLQuery;

/// Scalars of the schema.
#[allow(clippy::upper_case_acronyms)]
pub type JSON = serde_json::Value;
pub type DateTime = String;

/// Declares each operation: `Name from "file"` is the operation `Name` of
/// `src/queries/file.graphql`, typed against `schema.graphql`.
macro_rules! operations {
    ($($name:ident from $file:tt;)*) => {
        $(
            #[derive(GraphQLQuery)]
            #[graphql(
                schema_path = "../schema.graphql",
                query_path = $file,
                response_derives = "Debug, Clone",
                variables_derives = "Debug, Clone"
            )]
            pub struct $name;
        )*
    };
}

operations! {
    Viewer from "src/queries/viewer.graphql";
    Deploy from "src/queries/deploy.graphql";
    Agent from "src/queries/agent.graphql";
    Agents from "src/queries/agents.graphql";
    Pending from "src/queries/pending.graphql";
    Plan from "src/queries/plan.graphql";
    Publish from "src/queries/publish.graphql";
    Releases from "src/queries/releases.graphql";
    Executions from "src/queries/executions.graphql";
    RuntimeToken from "src/queries/runtime_token.graphql";
    Follow from "src/queries/follow.graphql";
    RequestRelease from "src/queries/request_release.graphql";
    ApproveRelease from "src/queries/review_release.graphql";
    RejectRelease from "src/queries/review_release.graphql";
    CancelScheduledRelease from "src/queries/cancel_scheduled_release.graphql";
    ReleaseRequests from "src/queries/governance.graphql";
    ScheduledReleases from "src/queries/governance.graphql";
    Audit from "src/queries/audit.graphql";
    WebhookEndpoints from "src/queries/webhooks.graphql";
    CreateWebhookEndpoint from "src/queries/webhooks.graphql";
    DeleteWebhookEndpoint from "src/queries/webhooks.graphql";
    WebhookDeliveries from "src/queries/webhooks.graphql";
}
