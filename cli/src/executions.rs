//! `rf executions [--follow]`.

use futures_util::{SinkExt, StreamExt};
use graphql_client::GraphQLQuery;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::Client;
use crate::operations::{self, Executions, Follow};
use crate::{Env, Global, emit};

pub async fn run(global: &Global, follow: bool, environment: Env) -> anyhow::Result<()> {
    let client = Client::resolve(global.url.clone(), global.token.clone())?;
    if !follow {
        let environment = match environment {
            Env::Staging => operations::executions::Environment::STAGING,
            Env::Production => operations::executions::Environment::PRODUCTION,
        };
        let (data, raw) = client
            .run_raw::<Executions>(operations::executions::Variables { environment })
            .await?;
        let rows: Vec<_> = data.executions.edges.into_iter().map(|e| e.node).collect();
        let json_rows: Vec<Value> = raw["executions"]["edges"]
            .as_array()
            .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
            .unwrap_or_default();
        emit(global, Value::Array(json_rows), || {
            rows.iter()
                .map(|e| {
                    format!(
                        "{} {:<10?} {:<20} {}",
                        e.created_at,
                        e.status,
                        e.agent.as_ref().map_or("-", |a| a.slug.as_str()),
                        e.id
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        return Ok(());
    }
    // The live feed: graphql-transport-ws on /graphql/ws, the typed Follow subscription.
    let url = format!("{}/graphql/ws", client.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", client.token) } });
    socket.send(Message::text(init.to_string())).await?;
    let body = Follow::build_query(operations::follow::Variables {
        environment: match environment {
            Env::Staging => operations::follow::Environment::STAGING,
            Env::Production => operations::follow::Environment::PRODUCTION,
        },
    });
    while let Some(message) = socket.next().await {
        let text = match message? {
            Message::Text(text) => text.to_string(),
            Message::Close(frame) => {
                anyhow::bail!(
                    "the server closed the feed: {}",
                    frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default()
                )
            }
            _ => continue,
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("connection_ack") => {
                let subscribe = json!({ "type": "subscribe", "id": "executions", "payload": body });
                socket.send(Message::text(subscribe.to_string())).await?;
                if !global.json {
                    eprintln!(
                        "Following {} executions (Ctrl-C to stop)...",
                        environment.name().to_lowercase()
                    );
                }
            }
            Some("ping") => {
                socket
                    .send(Message::text(json!({ "type": "pong" }).to_string()))
                    .await?
            }
            Some("next") => {
                let data: operations::follow::ResponseData =
                    serde_json::from_value(message["payload"]["data"].clone())?;
                let event = data.execution_events;
                emit(global, message["payload"]["data"]["executionEvents"].clone(), || {
                    format!(
                        "{:<9?} {:<20} {:<10?} {}{}",
                        event.kind,
                        event.execution.agent.as_ref().map_or("-", |a| a.slug.as_str()),
                        event.execution.status,
                        event.execution.id,
                        event
                            .execution
                            .error
                            .as_ref()
                            .map(|e| format!("  {e}"))
                            .unwrap_or_default()
                    )
                });
            }
            Some("error") | Some("complete") => anyhow::bail!("the feed ended: {}", message["payload"]),
            _ => {}
        }
    }
    Ok(())
}
