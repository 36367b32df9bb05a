//! Talking to a Runflow server: where it is and who we are (flags, `RUNFLOW_URL` /
//! `RUNFLOW_TOKEN`, or the file `rf login` wrote), GraphQL over HTTP, the runtime API.

use std::path::PathBuf;

use anyhow::{Context, bail};
use graphql_client::{GraphQLQuery, Response};
use runflow_common::private_file::{self, Existing};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A failure with the server's error code, printed as `error: CODE: message`.
#[derive(Debug)]
pub struct ApiFailure {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiFailure {}

fn failure(code: &str, message: impl Into<String>) -> anyhow::Error {
    ApiFailure {
        code: code.to_string(),
        message: message.into(),
    }
    .into()
}

/// What `rf login` stores.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

/// `~/.config/runflow/credentials.toml` (or the platform's config directory).
pub fn credentials_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RUNFLOW_CONFIG_DIR") {
        return Ok(PathBuf::from(dir).join("credentials.toml"));
    }
    Ok(dirs::config_dir()
        .context("no configuration directory on this system")?
        .join("runflow")
        .join("credentials.toml"))
}

pub fn save_credentials(credentials: &Credentials) -> anyhow::Result<PathBuf> {
    let path = credentials_path()?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    private_file::write(&path, toml::to_string(credentials)?.as_bytes(), Existing::Replace)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

pub struct Client {
    pub url: String,
    pub token: String,
    http: reqwest::Client,
}

impl Client {
    /// Flags first, then `RUNFLOW_URL` / `RUNFLOW_TOKEN` (clap fills both), then `rf login`'s file.
    pub fn resolve(url: Option<String>, token: Option<String>) -> anyhow::Result<Self> {
        let stored: Option<Credentials> = credentials_path()
            .ok()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| toml::from_str(&text).ok());
        let url = url.or_else(|| stored.as_ref().map(|c| c.url.clone()));
        let token = token.or_else(|| stored.as_ref().map(|c| c.token.clone()));
        match (url, token) {
            (Some(url), Some(token)) => Ok(Self::new(url, token)),
            _ => bail!("not logged in: run `rf login --url URL --token TOKEN` (or set RUNFLOW_URL and RUNFLOW_TOKEN)"),
        }
    }

    pub fn new(url: String, token: String) -> Self {
        Client {
            url: url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    /// Runs a typed operation; GraphQL errors become [`ApiFailure`]s.
    pub async fn run<Q: GraphQLQuery>(&self, variables: Q::Variables) -> anyhow::Result<Q::ResponseData> {
        Ok(self.run_raw::<Q>(variables).await?.0)
    }

    /// Like [`Client::run`], with the response's `data` as JSON too (what `--json` prints).
    pub async fn run_raw<Q: GraphQLQuery>(&self, variables: Q::Variables) -> anyhow::Result<(Q::ResponseData, Value)> {
        let body = Q::build_query(variables);
        let response = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let status = response.status();
        let text = response.text().await?;
        let raw: Value = serde_json::from_str(&text).map_err(|_| {
            failure(
                "HTTP",
                format!("{status}: {}", text.chars().take(300).collect::<String>()),
            )
        })?;
        let parsed: Response<Q::ResponseData> = serde_json::from_value(raw.clone())
            .map_err(|e| failure("RESPONSE", format!("unexpected response shape: {e}")))?;
        if let Some(error) = parsed.errors.as_ref().and_then(|errors| errors.first()) {
            let code = error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("ERROR")
                .to_string();
            return Err(failure(&code, error.message.clone()));
        }
        let data = parsed
            .data
            .ok_or_else(|| failure("ERROR", "the server returned no data"))?;
        Ok((data, raw["data"].clone()))
    }

    /// Calls the runtime API with a runtime token.
    pub async fn runtime(&self, token: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/v1/runtime{path}", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = value.pointer("/error/code").and_then(Value::as_str).unwrap_or("HTTP");
            let message = value
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("request failed");
            return Err(failure(code, message.to_string()));
        }
        Ok(value)
    }
}
