//! PostgreSQL plans that stay right as a tenant grows. Roster's statements are prepared once per
//! connection, and PostgreSQL keeps their plans until a table's statistics change: with
//! autovacuum off, Roster renews the statistics of its own tables as they grow (see
//! `roster_service::storage::maintenance`).

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, TestServer, send};

#[derive(QueryableByName)]
struct Analyzed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    analyzed: bool,
    #[diesel(sql_type = diesel::sql_types::Float)]
    reltuples: f32,
}

fn users_stats(url: &str) -> Analyzed {
    let mut conn = PgConnection::establish(url).expect("connect");
    diesel::sql_query(
        "SELECT (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL) AS analyzed, \
         c.reltuples FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.relname = 'users'",
    )
    .get_result(&mut conn)
    .expect("users statistics")
}

fn autovacuum_on(url: &str) -> bool {
    let mut conn = PgConnection::establish(url).expect("connect");
    #[derive(QueryableByName)]
    struct On {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        on: bool,
    }
    let on: On = diesel::sql_query("SELECT current_setting('autovacuum') = 'on' AS on")
        .get_result(&mut conn)
        .expect("autovacuum setting");
    on.on
}

async fn create_users(server: &TestServer, n: usize) {
    for i in 0..n {
        let (status, body) = send(server.scim_req(Method::POST, "/Users").json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("grow{i}@example.com"),
            "emails": [{"value": format!("grow{i}@example.com"), "type": "work", "primary": true}],
        })))
        .await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_tables_are_analyzed_once_and_then_left_alone() {
    let server = TestServer::start(Backend::Postgres).await;
    create_users(&server, 300).await;
    let store = roster::Store::open(&server.database_url, 1).expect("store");
    let done = store.analyze_stale().expect("analyze");
    // Whoever analyzed first (this call, Roster's own upkeep or autovacuum), the statistics
    // now know the table's size, and a second look finds nothing stale.
    let stats = users_stats(&server.database_url);
    assert!(
        stats.analyzed,
        "users was never analyzed (this call analyzed {done:?})"
    );
    assert!(
        stats.reltuples >= 300.0,
        "users: reltuples {}",
        stats.reltuples
    );
    let again = store.analyze_stale().expect("analyze");
    assert!(
        !again.contains(&"users".to_owned()),
        "analyzed again: {again:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_autovacuum_off_roster_analyzes_its_growing_tables() {
    let server =
        TestServer::start_service_with(Backend::Postgres, roster::FacadeConfig::default(), |c| {
            roster::ServiceConfig {
                analyze_interval: Duration::from_millis(200),
                ..c
            }
        })
        .await;
    if autovacuum_on(&server.database_url) {
        // Autovacuum keeps the statistics itself; Roster's upkeep stays off.
        eprintln!(
            "autovacuum is on here: Roster's own ANALYZE is not started (covered by the test above)"
        );
        server.stop().await;
        return;
    }
    create_users(&server, 300).await;
    let start = Instant::now();
    loop {
        let stats = users_stats(&server.database_url);
        // Analyzed as it grew, the statistics lag the table by at most the threshold (50 rows
        // and 10 %).
        if stats.analyzed && stats.reltuples >= (300.0 - 50.0) / 1.1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "users was not analyzed by Roster within 20 s (reltuples {})",
            stats.reltuples
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}
