//! Bounded work per request (issue 8 findings 3 and 8b): a filter's cost is checked before any
//! SQL runs, a statement past the statement timeout answers 503 with `Retry-After` instead of
//! holding a database thread, one tenant's slow requests leave another tenant's reads
//! unaffected, and random large filters answer 200 or 400, never 5xx.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use reqwest::{Method, StatusCode};
use roster_proto::v1 as pb;
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, assert_scim_error, authed, send};

crate::harness::on_both_backends!(
    costly_filters_are_refused_before_running,
    filters_at_the_limits_answer_correctly,
    out_of_range_date_times_are_invalid_filters,
    random_large_filters_answer_200_or_400,
);

/// Tests that start their own server (a statement timeout of their own).
macro_rules! on_both_backends_alone {
    ($($name:ident),* $(,)?) => {
        mod alone_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Backend::Sqlite).await;
                }
            )*
        }
        mod alone_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends_alone!(
    a_statement_past_the_timeout_is_a_503,
    one_tenant_cannot_stall_another,
);

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// `GET /Users?filter=…` (or `/Groups`), URL-encoded.
async fn list(server: &TestServer, resource: &str, filter: &str) -> (StatusCode, Value) {
    send(
        server
            .scim_req(Method::GET, &format!("/{resource}"))
            .query(&[("filter", filter), ("count", "200")]),
    )
    .await
}

fn joined(n: usize, term: impl Fn(usize) -> String, op: &str) -> String {
    (0..n).map(term).collect::<Vec<_>>().join(op)
}

/// The ids in a list response.
fn ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn create_user(server: &TestServer, name: &str, email_types: &[&str]) -> String {
    let emails: Vec<Value> = email_types
        .iter()
        .map(|t| json!({"value": format!("{name}.{t}@example.com"), "type": t}))
        .collect();
    let (status, body) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": [USER_URN],
        "userName": name,
        "emails": emails,
    })))
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

// ---------------------------------------------------------------------------------------------
// The cost model.

async fn costly_filters_are_refused_before_running(server: &TestServer) {
    create_user(server, "ada", &["work"]).await;
    // The filter of the report: 300 value filters, inside the parser's limits.
    let f = joined(300, |i| format!("emails[type eq \"w{i}\"]"), " or ");
    assert!(f.len() < 8192);
    let started = Instant::now();
    let (status, body) = list(server, "Users", &f).await;
    assert_eq!(status, 400, "{body}");
    assert_scim_error(&body, 400, Some("invalidFilter"));
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("value filters / JSON subqueries") && detail.contains("at most 16"),
        "{detail}"
    );
    // Refused before running: no time spent in the database.
    assert!(started.elapsed() < Duration::from_secs(5));

    // Each limit names what there is too much of.
    for (resource, f, what) in [
        (
            "Users",
            joined(65, |i| format!("userName eq \"u{i}\""), " or "),
            "65 comparisons and presence tests, and at most 64",
        ),
        (
            "Users",
            joined(17, |i| format!("title co \"t{i}\""), " or "),
            "17 co/sw/ew comparisons, and at most 16",
        ),
        (
            "Groups",
            joined(33, |i| format!("members eq \"m{i}\""), " or "),
            "33 subqueries",
        ),
        (
            "Users",
            joined(17, |i| format!("phoneNumbers.type eq \"p{i}\""), " and "),
            "17 value filters / JSON subqueries",
        ),
    ] {
        let (status, body) = list(server, resource, &f).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_scim_error(&body, 400, Some("invalidFilter"));
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(what), "{what}: {detail}");
    }

    // The same over gRPC: INVALID_ARGUMENT with the invalidFilter reason.
    let mut users = pb::user_service_client::UserServiceClient::new(server.channel().await);
    let err = users
        .list_users(authed(
            &server.scim_token,
            pb::ListUsersRequest {
                filter: f_300(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("too costly");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("at most 16"), "{err:?}");
}

fn f_300() -> String {
    joined(300, |i| format!("emails[type eq \"w{i}\"]"), " or ")
}

async fn filters_at_the_limits_answer_correctly(server: &TestServer) {
    let mut want = Vec::new();
    for i in 0..10 {
        let t = format!("w{i}");
        let id = create_user(server, &format!("user{i}"), &[t.as_str(), "home"]).await;
        if i < 8 {
            want.push(id);
        }
    }
    let other = create_user(server, "other", &["home"]).await;
    want.sort();

    // 8 value filters, each with one test inside: 16 JSON subqueries, the limit.
    let f = joined(8, |i| format!("emails[type eq \"w{i}\"]"), " or ");
    let (status, body) = list(server, "Users", &f).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), want);
    assert_eq!(body["totalResults"], 8);

    // 64 comparisons (the limit), 16 of them patterns (the limit).
    let mut terms: Vec<String> = (0..48)
        .map(|i| format!("userName eq \"user{i}\""))
        .collect();
    terms.extend((0..16).map(|i| format!("userName ew \"zz{i}\"")));
    let f = terms.join(" or ");
    let (status, body) = list(server, "Users", &f).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalResults"], 10, "{body}");

    // 32 subqueries (the limit): lookups of e-mail addresses.
    let f = joined(
        32,
        |i| format!("emails.value eq \"user{}.home@example.com\"", i % 12),
        " or ",
    );
    let (status, body) = list(server, "Users", &f).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalResults"], 10, "{body}");
    assert!(!ids(&body).contains(&other));
}

// ---------------------------------------------------------------------------------------------
// Finding 8b.

async fn out_of_range_date_times_are_invalid_filters(server: &TestServer) {
    create_user(server, "ada", &["work"]).await;
    for resource in ["Users", "Groups"] {
        for f in [
            r#"meta.created gt "9999-12-31T23:59:59-01:00""#,
            r#"meta.lastModified le "9999-12-31T23:30:00-00:31""#,
            r#"meta.created lt "0000-01-01T00:00:00+01:00""#,
            r#"not (meta.created eq "9999-12-31T23:59:59-23:59")"#,
        ] {
            let (status, body) = list(server, resource, f).await;
            assert_eq!(status, 400, "{resource} {f}: {body}");
            assert_scim_error(&body, 400, Some("invalidFilter"));
        }
        // The ends of the range still compare.
        let (status, body) = list(
            server,
            resource,
            r#"meta.created lt "9999-12-31T23:59:59Z""#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = list(
            server,
            resource,
            r#"meta.created gt "0001-01-01T00:00:00+00:00""#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = list(server, "Users", r#"meta.created lt "9999-12-31T23:59:59Z""#).await;
    assert_eq!(body["totalResults"], 1);
    // Over gRPC too.
    let mut users = pb::user_service_client::UserServiceClient::new(server.channel().await);
    let err = users
        .list_users(authed(
            &server.scim_token,
            pb::ListUsersRequest {
                filter: r#"meta.created gt "9999-12-31T23:59:59-01:00""#.into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("out of range");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// The statement timeout and fairness: users seeded by SQL, so that a filter at the cost limit
// takes seconds.

/// The filter at the cost limit that the seeded users make slow: no user matches, so every
/// row is looked at.
fn slow_filter() -> String {
    joined(8, |i| format!("emails[type eq \"none{i}\"]"), " or ")
}

/// Inserts `n` users with `emails` addresses each into the tenant `tenant`, straight into the
/// database.
async fn seed_users(server: &TestServer, tenant: &str, n: usize, emails: usize) {
    let url = server.database_url.clone();
    let tenant = tenant.to_owned();
    tokio::task::spawn_blocking(move || {
        let list = (0..emails)
            .map(|k| format!("{{\"value\":\"a{k}@example.com\",\"type\":\"t{k}\"}}"))
            .collect::<Vec<_>>()
            .join(",");
        let columns = "tenant_id, id, user_name, user_name_lower, active, emails, attributes, \
                       version, created_at, updated_at";
        if let Some(path) = url.strip_prefix("sqlite://") {
            let mut conn = SqliteConnection::establish(path).expect("sqlite");
            diesel::sql_query("PRAGMA busy_timeout = 10000")
                .execute(&mut conn)
                .expect("busy timeout");
            diesel::sql_query(format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 INSERT INTO users ({columns}) \
                 SELECT t.id, 'seed-' || i, 'seed' || i, 'seed' || i, 1, '[{list}]', '{{}}', 1, \
                 '2026-01-01 00:00:00', '2026-01-01 00:00:00' \
                 FROM n, tenants t WHERE t.name = '{tenant}'"
            ))
            .execute(&mut conn)
            .expect("seed users");
        } else {
            let mut conn = PgConnection::establish(&url).expect("postgres");
            diesel::sql_query(format!(
                "INSERT INTO users ({columns}) \
                 SELECT t.id, 'seed-' || i, 'seed' || i, 'seed' || i, TRUE, '[{list}]', '{{}}', 1, \
                 TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-01-01 00:00:00' \
                 FROM generate_series(1, {n}) i, tenants t WHERE t.name = '{tenant}'"
            ))
            .execute(&mut conn)
            .expect("seed users");
            diesel::sql_query("ANALYZE users")
                .execute(&mut conn)
                .expect("analyze");
        }
    })
    .await
    .expect("seeding");
}

/// Users seeded for the slow filter: enough that it runs for many seconds unbounded.
const SEEDED: usize = 20_000;
const SEEDED_EMAILS: usize = 10;

async fn a_statement_past_the_timeout_is_a_503(backend: Backend) {
    let server = TestServer::start_service_with(backend, roster::FacadeConfig::default(), |s| {
        roster::ServiceConfig {
            statement_timeout: Some(Duration::from_millis(300)),
            ..s
        }
    })
    .await;
    seed_users(&server, "default", SEEDED, SEEDED_EMAILS).await;
    // Ordinary requests finish well within the timeout.
    let (status, body) = list(&server, "Users", r#"userName eq "seed7""#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalResults"], 1);

    for _ in 0..2 {
        let started = Instant::now();
        let resp = server
            .scim_req(Method::GET, "/Users")
            .query(&[("filter", slow_filter().as_str())])
            .send()
            .await
            .expect("request");
        let elapsed = started.elapsed();
        assert_eq!(resp.status(), 503, "after {elapsed:?}");
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let body: Value = resp.json().await.expect("json");
        assert_scim_error(&body, 503, None);
        // Stopped at the timeout rather than running to the end.
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    }

    // Over gRPC: UNAVAILABLE, with the reason and a retry delay.
    let mut users = pb::user_service_client::UserServiceClient::new(server.channel().await);
    let err = users
        .list_users(authed(
            &server.scim_token,
            pb::ListUsersRequest {
                filter: slow_filter(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("timed out");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("statement timeout"), "{err:?}");

    // No thread is stuck and no connection broken: every database thread answers.
    let answers: Vec<_> = (0..8)
        .map(|_| {
            let req = server
                .scim_req(Method::GET, "/Users")
                .query(&[("filter", r#"userName eq "seed11""#)]);
            tokio::spawn(send(req))
        })
        .collect();
    for answer in answers {
        let (status, body) = answer.await.expect("join");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["totalResults"], 1);
    }
    server.stop().await;
}

async fn one_tenant_cannot_stall_another(backend: Backend) {
    // The statement timeout ends tenant A's slow requests after 3 s; B must not wait for it.
    let server = TestServer::start_service_with(backend, roster::FacadeConfig::default(), |s| {
        roster::ServiceConfig {
            statement_timeout: Some(Duration::from_secs(3)),
            pool_size: 4,
            ..s
        }
    })
    .await;
    seed_users(&server, "default", SEEDED, SEEDED_EMAILS).await;

    // Tenant B, with a user of its own.
    let b_token = server.scim_tenant("other").await;
    let as_b = |m: Method, p: &str| {
        server
            .http
            .request(m, format!("{}{p}", server.scim))
            .bearer_auth(&b_token)
    };
    let (status, b_user) = send(as_b(Method::POST, "/Users").json(&json!({
        "schemas": [USER_URN],
        "userName": "bob",
    })))
    .await;
    assert_eq!(status, 201, "{b_user}");
    let b_id = b_user["id"].as_str().expect("id").to_owned();

    // Tenant A: more slow requests at once than there are database threads.
    let slow: Vec<_> = (0..5)
        .map(|_| {
            let req = server
                .scim_req(Method::GET, "/Users")
                .query(&[("filter", slow_filter().as_str())]);
            tokio::spawn(async move {
                let started = Instant::now();
                let status = req.send().await.map(|r| r.status());
                (status, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Meanwhile B's reads answer at once (well within a generous bound, far below the 3 s
    // that A's requests hold their threads).
    let bound = Duration::from_millis(1_500);
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = send(as_b(Method::GET, &format!("/Users/{b_id}"))).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) =
            send(as_b(Method::GET, "/Users").query(&[("filter", r#"userName eq "bob""#)])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["totalResults"], 1);
        slowest = slowest.max(started.elapsed());
    }
    let still_running = slow.iter().filter(|h| !h.is_finished()).count();
    assert!(
        still_running > 0,
        "tenant A's requests ended before B's reads: the test proves nothing"
    );
    assert!(
        slowest < bound,
        "tenant B waited {slowest:?} behind tenant A's requests"
    );
    for h in slow {
        let (status, elapsed) = h.await.expect("join");
        let status = status.expect("A's request");
        // Each of A's requests ends: 503 at the timeout (or 200 on a machine fast enough).
        assert!(status == 503 || status == 200, "{status} after {elapsed:?}");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Random large filters.

/// A small deterministic generator (xorshift), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const ATTRS: &[&str] = &[
    "userName",
    "id",
    "externalId",
    "displayName",
    "title",
    "name.givenName",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "phoneNumbers",
    "phoneNumbers.type",
    "addresses.locality",
    "groups",
    "groups.display",
    "active",
    "meta.created",
    "meta.lastModified",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:roster:2.0:User:effectiveRole",
    "members",
    "members.display",
    "noSuch",
];
const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
const VALUES: &[&str] = &[
    "\"ada\"",
    "\"\"",
    "\"a%b_\\\\\"",
    "true",
    "false",
    "null",
    "42",
    "\"2026-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59-01:00\"",
    "\"0000-01-01T00:00:00+14:00\"",
    "\"not a date\"",
    "\"\\u0000\"",
];
const VALUE_PATHS: &[(&str, &[&str])] = &[
    ("emails", &["value", "type", "primary", "display"]),
    ("phoneNumbers", &["value", "type"]),
    ("addresses", &["locality", "country", "type"]),
    ("groups", &["value", "display"]),
    ("members", &["value", "display"]),
];

fn leaf(rng: &mut Rng) -> String {
    let attr = rng.pick(ATTRS);
    if rng.below(6) == 0 {
        format!("{attr} pr")
    } else {
        format!("{attr} {} {}", rng.pick(OPS), rng.pick(VALUES))
    }
}

fn random_filter(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth == 0 { 2 } else { 6 }) {
        0 => leaf(rng),
        1 => {
            let (attr, subs) = VALUE_PATHS[rng.below(VALUE_PATHS.len())];
            let n = 1 + rng.below(3);
            let inner = (0..n)
                .map(|_| format!("{} {} {}", rng.pick(subs), rng.pick(OPS), rng.pick(VALUES)))
                .collect::<Vec<_>>()
                .join(if rng.below(2) == 0 { " and " } else { " or " });
            format!("{attr}[{inner}]")
        }
        2 => format!("not ({})", random_filter(rng, depth - 1)),
        3 => format!("({})", random_filter(rng, depth - 1)),
        4 => {
            // Long chains of simple terms: up to 300, around and past the limits.
            let n = 2 + rng.below(300);
            let op = if rng.below(2) == 0 { " and " } else { " or " };
            (0..n)
                .map(|_| random_filter(rng, 0))
                .collect::<Vec<_>>()
                .join(op)
        }
        _ => {
            let n = 2 + rng.below(4);
            let op = if rng.below(2) == 0 { " and " } else { " or " };
            (0..n)
                .map(|_| format!("({})", random_filter(rng, depth - 1)))
                .collect::<Vec<_>>()
                .join(op)
        }
    }
}

async fn random_large_filters_answer_200_or_400(server: &TestServer) {
    for (i, name) in ["ada", "bob", "carol"].iter().enumerate() {
        let t = format!("w{i}");
        create_user(server, name, &[t.as_str(), "home"]).await;
    }
    let (status, _) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "eng",
    })))
    .await;
    assert_eq!(status, 201);
    let mut rng = Rng(0x5eed_0000_0000_0008);
    let (mut ok, mut refused, mut skipped) = (0, 0, 0);
    for n in 0..120 {
        let f = random_filter(&mut rng, 3);
        if f.len() > 8192 {
            skipped += 1;
            continue;
        }
        let resource = if n % 4 == 3 { "Groups" } else { "Users" };
        let started = Instant::now();
        let (status, body) = list(server, resource, &f).await;
        let elapsed = started.elapsed();
        match status.as_u16() {
            200 => ok += 1,
            400 => {
                assert_scim_error(&body, 400, body["scimType"].as_str());
                refused += 1;
            }
            _ => panic!("{resource} {f}: {status} {body}"),
        }
        assert!(
            elapsed < Duration::from_secs(10),
            "{resource} {f}: {elapsed:?}"
        );
    }
    eprintln!("random filters: {ok} answered, {refused} refused, {skipped} too long");
    // Both kinds were exercised.
    assert!(ok > 10 && refused > 10, "{ok} answered, {refused} refused");
}
