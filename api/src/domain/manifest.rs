//! `runflow.toml`, the agent manifest every bundle must contain.
//!
//! ```toml
//! name = "support-bot"            # the agent's slug
//! description = "Answers tickets" # optional
//! entrypoint = ["python3", "main.py"]
//! prompts = ["greeting"]          # prompt slugs the agent resolves
//! connectors = ["zendesk"]        # connector slugs it uses
//! idempotent = false              # true: a run lost with its worker is retried
//! ```

use serde::{Deserialize, Serialize};

use super::validate;
use crate::error::{Error, Result};

pub const MANIFEST_PATH: &str = "runflow.toml";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub prompts: Vec<String>,
    #[serde(default)]
    pub connectors: Vec<String>,
    /// Safe to run twice: a run lost with its worker (lease expired) is queued again instead of
    /// failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
}

impl Manifest {
    /// Parses and validates a manifest; errors say what is wrong and where.
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|error| Error::bad_input(format!("{MANIFEST_PATH} is invalid: {}", error.message().trim())))?;
        validate::slug(&format!("{MANIFEST_PATH}: name"), &manifest.name)?;
        if manifest.entrypoint.is_empty() || manifest.entrypoint.iter().any(|part| part.trim().is_empty()) {
            return Err(Error::bad_input(format!(
                "{MANIFEST_PATH}: entrypoint must be a non-empty array of non-empty strings, \
                 for example [\"python3\", \"main.py\"]"
            )));
        }
        validate::slug_list(&format!("{MANIFEST_PATH}: prompts"), &manifest.prompts)?;
        validate::slug_list(&format!("{MANIFEST_PATH}: connectors"), &manifest.connectors)?;
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_manifest_parses() {
        let manifest =
            Manifest::parse("name = \"bot\"\nentrypoint = [\"python3\", \"main.py\"]\nprompts = [\"greet\"]\n")
                .unwrap();
        assert_eq!(manifest.name, "bot");
        assert_eq!(manifest.prompts, vec!["greet"]);
        assert!(manifest.connectors.is_empty());
    }

    #[test]
    fn errors_name_the_problem() {
        let missing = Manifest::parse("name = \"bot\"\n").unwrap_err().to_string();
        assert!(missing.contains("entrypoint"), "{missing}");
        let bad_type = Manifest::parse("name = 3\nentrypoint=[\"x\"]").unwrap_err().to_string();
        assert!(bad_type.contains("runflow.toml is invalid"), "{bad_type}");
        let unknown = Manifest::parse("name = \"bot\"\nentrypoint=[\"x\"]\nfoo=1")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("foo"), "{unknown}");
        let empty = Manifest::parse("name = \"bot\"\nentrypoint=[]")
            .unwrap_err()
            .to_string();
        assert!(empty.contains("non-empty"), "{empty}");
    }
}
