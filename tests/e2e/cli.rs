//! The `roster` binary: `migrate`, the operator's `tenant`, `token` and `role` commands, and
//! `--help`.

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

/// Runs `roster` and returns its stdout, failing the test (with its stderr) if it fails.
fn ok(args: &[&str]) -> String {
    let out = roster(args);
    assert!(out.status.success(), "{args:?}: {}", explain(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn operator_commands_manage_tenants_tokens_and_roles() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let server = TestServer::start(backend).await;
        let db = server.database_url.clone();
        let db = ["--database-url", db.as_str()];
        let with = |args: &[&str]| -> Vec<String> {
            args.iter()
                .map(|a| (*a).to_owned())
                .chain(db.iter().map(|a| (*a).to_owned()))
                .collect()
        };
        let run = |args: &[&str]| {
            let args = with(args);
            ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
        };

        // Tenants: list (with the SCIM base URL given), update.
        let listed = ok(&[
            "tenant",
            "list",
            "--database-url",
            db[1],
            "--public-url",
            "https://roster.example.com/scim/v2",
        ]);
        assert!(
            listed.contains("default\tscim=on\tpasswords=ignore\tdefault_role=reporting\thttps://roster.example.com/scim/v2"),
            "{listed}"
        );
        let updated = run(&["tenant", "update", "--scim", "off"]);
        assert!(updated.contains("scim=off"), "{updated}");
        let (status, _) = send(server.scim_req(Method::GET, "/Users")).await;
        assert_eq!(status, 403, "{backend:?}: SCIM is off");
        run(&["tenant", "update", "--scim", "on"]);
        // The CLI is another process: the server trusts what it checked for up to a second.
        let mut status = 0;
        for _ in 0..30 {
            status = send(server.scim_req(Method::GET, "/Users"))
                .await
                .0
                .as_u16();
            if status == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(status, 200, "{backend:?}: SCIM is on again within a second");
        let out = roster(
            &with(&["tenant", "update"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(!out.status.success(), "nothing to change");

        // Tokens: a service token, listed, regenerated, revoked.
        let secret = run(&[
            "token",
            "create",
            "--kind",
            "service",
            "--read-only",
            "--description",
            "reports",
        ]);
        let secret = secret.trim();
        assert!(secret.starts_with("rst_"), "{secret}");
        let listed = run(&["token", "list"]);
        let line = listed
            .lines()
            .find(|l| l.ends_with("\treports"))
            .unwrap_or_else(|| panic!("{listed}"));
        assert!(line.contains("service (read-only)\tlive"), "{line}");
        let id = line.split('\t').next().expect("id").to_owned();
        let id = id.as_str();
        let new = run(&["token", "regenerate", id]);
        assert!(new.trim().starts_with("rst_") && new.trim() != secret);
        let listed = run(&["token", "list"]);
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(id) && l.contains("\trevoked\t")),
            "{listed}"
        );
        let out = roster(
            &with(&["token", "revoke", id])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(!out.status.success(), "already replaced: {}", explain(&out));
        // Basic credentials print `username:password`.
        let basic = run(&["token", "create", "--kind", "scim", "--basic"]);
        let (user, password) = basic.trim().split_once(':').expect("user:password");
        let (status, _) = send(
            server
                .http
                .get(format!("{}/Users", server.scim))
                .basic_auth(user, Some(password)),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}");
        let out = roster(
            &with(&["token", "create", "--kind", "admin"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(!out.status.success(), "an admin token needs --user");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("user_id"),
            "{}",
            explain(&out)
        );

        // Roles: a tenant role, the default, a group mapping by the group's name.
        run(&[
            "role",
            "create",
            "auditor",
            "--permission",
            "reporting.view",
            "--permission",
            "audit_log.view",
        ]);
        run(&["role", "default", "auditor"]);
        let roles = run(&["role", "list"]);
        assert!(
            roles.contains("auditor *\treporting.view audit_log.view"),
            "{roles}"
        );
        let (status, group) = send(server.scim_req(Method::POST, "/Groups").json(
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "App - Admin"
            }),
        ))
        .await;
        assert_eq!(status, 201, "{group}");
        run(&["role", "map", "App - Admin", "admin", "--priority", "1"]);
        let mappings = run(&["role", "mappings"]);
        assert!(
            mappings.starts_with(&format!(
                "1\tadmin\tApp - Admin\t{}",
                group["id"].as_str().expect("id")
            )),
            "{mappings}"
        );
        let out = roster(
            &with(&["role", "delete", "auditor"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(!out.status.success(), "the default role is in use");
        run(&["role", "unmap", "App - Admin"]);
        assert_eq!(run(&["role", "mappings"]), "");
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
        vec!["token", "list", "--help"],
        vec!["token", "revoke", "--help"],
        vec!["token", "regenerate", "--help"],
        vec!["tenant", "create", "--help"],
        vec!["tenant", "list", "--help"],
        vec!["tenant", "update", "--help"],
        vec!["role", "list", "--help"],
        vec!["role", "create", "--help"],
        vec!["role", "default", "--help"],
        vec!["role", "map", "--help"],
        vec!["role", "mappings", "--help"],
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
