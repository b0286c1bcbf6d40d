//! The `roster` binary: `migrate`, `tenant create` and `token create` (the operator's path),
//! and `--help`.

use std::process::Command;

use reqwest::Method;

use crate::harness::{Backend, TestServer, send};

fn roster(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env("ROSTER_LOG", "warn")
        .output()
        .expect("run roster")
}

fn explain(out: &std::process::Output) -> String {
    format!(
        "{:?}; stdout {:?}; stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn token_create_prints_a_working_token_and_nothing_else() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let server = TestServer::start(backend).await;
        let db = server.database_url.clone();
        let out = roster(&["migrate", "--database-url", &db]);
        assert!(out.status.success(), "{}", explain(&out));
        let out = roster(&[
            "token",
            "create",
            "--database-url",
            &db,
            "--tenant",
            "default",
            "--kind",
            "scim",
        ]);
        assert!(out.status.success(), "{}", explain(&out));
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        let secret = stdout.trim();
        assert_eq!(stdout.lines().count(), 1, "the secret alone: {stdout:?}");
        assert!(secret.starts_with("rst_"));
        let (status, _) = send(
            server
                .http
                .request(Method::GET, format!("{}/Users", server.scim))
                .bearer_auth(secret),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}");

        let out = roster(&["token", "create", "--database-url", &db, "--tenant", "nope"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
        let out = roster(&["tenant", "create", "--database-url", &db, "beta"]);
        assert!(
            out.status.success(),
            "{backend:?}: {:?} stdout {:?} stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = roster(&["tenant", "create", "--database-url", &db, "Bad Name"]);
        assert!(!out.status.success());
        server.stop().await;
    }
}

#[test]
fn unknown_database_schemes_are_refused() {
    let out = roster(&["migrate", "--database-url", "mysql://localhost/roster"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["service", "--help"],
        vec!["facade", "--help"],
        vec!["migrate", "--help"],
        vec!["token", "create", "--help"],
        vec!["tenant", "create", "--help"],
    ] {
        let out = roster(&args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
    let out = roster(&["serve", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ROSTER_DATABASE_URL") && text.contains("ROSTER_SCIM_ADDR"));
}
