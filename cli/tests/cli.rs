//! The `rf` binary on its own (the end-to-end scenarios against a server live in the
//! workspace's `tests/e2e/cli.rs`, which runs this same binary).

use std::process::Command;

fn rf() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rf"));
    command.env_remove("RUNFLOW_URL").env_remove("RUNFLOW_TOKEN");
    command
}

#[test]
fn help_lists_the_commands() {
    let output = rf().arg("--help").output().expect("run rf");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "login",
        "agents",
        "test",
        "releases",
        "publish",
        "rollback",
        "executions",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn without_a_login_it_says_how_to_log_in() {
    let config = tempfile::tempdir().expect("dir");
    let output = rf()
        .env("RUNFLOW_CONFIG_DIR", config.path())
        .arg("releases")
        .output()
        .expect("run rf");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("rf login"));
}

#[test]
fn there_is_no_way_to_deploy_to_production() {
    let output = rf()
        .args(["agents", "deploy", "--environment", "production"])
        .output()
        .expect("run rf");
    assert_eq!(output.status.code(), Some(2), "clap refuses the unknown flag");
}
