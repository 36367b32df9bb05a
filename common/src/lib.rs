//! What the server (`runflow`) and the CLI (`rf`) must agree on, written once: the environment
//! an agent process gets ([`agent_env`]) and how a file only its owner may read is written
//! ([`private_file`]). Standard library only, so the CLI stays small.

pub mod agent_env;
pub mod private_file;
