//! The agent's environment-variable contract: what a run of agent code finds in its
//! environment, whether the server's runner starts it or `rf test` does on a laptop.

/// The base URL of the runtime API (the sandbox's forwarder inside a sandbox).
pub const API_URL: &str = "RUNFLOW_API_URL";
/// The run's token (role `runtime`, scoped to the run's execution).
pub const TOKEN: &str = "RUNFLOW_TOKEN";
/// The tenant the run belongs to.
pub const TENANT: &str = "RUNFLOW_TENANT";
/// `staging` or `production`.
pub const ENVIRONMENT: &str = "RUNFLOW_ENVIRONMENT";
/// The execution this run reports to.
pub const EXECUTION_ID: &str = "RUNFLOW_EXECUTION_ID";
/// The memory namespace of the agent in this environment.
pub const MEMORY_NAMESPACE: &str = "RUNFLOW_MEMORY_NAMESPACE";

/// The variables of one run (except [`API_URL`], which depends on where the process runs:
/// see [`AgentEnv::with_api_url`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentEnv {
    /// Known to the server; `rf test` does not know it and leaves it unset.
    pub tenant: Option<String>,
    pub environment: String,
    pub execution_id: String,
    pub memory_namespace: String,
    pub token: String,
}

impl AgentEnv {
    /// The variables to set, by name.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::with_capacity(5);
        if let Some(tenant) = &self.tenant {
            vars.push((TENANT, tenant.clone()));
        }
        vars.push((ENVIRONMENT, self.environment.clone()));
        vars.push((EXECUTION_ID, self.execution_id.clone()));
        vars.push((MEMORY_NAMESPACE, self.memory_namespace.clone()));
        vars.push((TOKEN, self.token.clone()));
        vars
    }

    /// [`AgentEnv::vars`] plus the API URL.
    pub fn with_api_url(&self, api_url: &str) -> Vec<(&'static str, String)> {
        let mut vars = vec![(API_URL, api_url.to_string())];
        vars.extend(self.vars());
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_names_every_variable_once() {
        let env = AgentEnv {
            tenant: Some("acme".into()),
            environment: "staging".into(),
            execution_id: "e".into(),
            memory_namespace: "staging:bot".into(),
            token: "t".into(),
        };
        let names: Vec<&str> = env.with_api_url("http://x").iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [API_URL, TENANT, ENVIRONMENT, EXECUTION_ID, MEMORY_NAMESPACE, TOKEN]
        );
        let without_tenant = AgentEnv { tenant: None, ..env };
        assert!(without_tenant.vars().iter().all(|(k, _)| *k != TENANT));
    }
}
