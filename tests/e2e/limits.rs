//! Issue 8, findings 2, 11a and 11d: bounded work per request (PATCH, Bulk, any JSON body), the
//! base URL never taken from the `Host` header, and throttled failed authentication.

use std::time::{Duration, Instant};

use reqwest::Method;
use roster_facade::limits::{
    MAX_BULK_VALUES, MAX_JSON_DEPTH, MAX_MULTI_VALUES, MAX_PATCH_OPERATION_VALUES,
    MAX_PATCH_OPERATIONS,
};
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_scim_error, on_both_backends, send};

on_both_backends!(
    a_huge_patch_is_refused_fast_and_changes_nothing,
    patches_at_the_limits_are_accepted,
    deep_json_is_refused,
    bulk_over_its_bounds_is_refused,
    large_and_nested_inputs_never_stall_another_tenant,
    a_forged_host_never_reaches_location,
    a_large_group_replace_is_accepted,
);

mod throttle {
    use super::*;

    on_both_backends!(
        config = roster::FacadeConfig {
            auth_failure_limit: 5,
            auth_failure_window: std::time::Duration::from_secs(1),
            ..roster::FacadeConfig::default()
        };
        failed_authentication_is_throttled_per_client,
    );
}

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// What "refused fast" means here: far above what the refusal takes (milliseconds), far below
/// the 20 s the quadratic PATCH took.
const FAST: Duration = Duration::from_secs(5);

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn strings(prefix: &str, n: usize) -> Vec<Value> {
    (0..n).map(|i| json!(format!("{prefix}{i}"))).collect()
}

async fn create_user(server: &TestServer, name: &str) -> (String, String) {
    let (status, user) = send(
        server
            .scim_req(Method::POST, "/Users")
            .json(&json!({"schemas": [USER], "userName": name})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    (
        user["id"].as_str().unwrap().to_owned(),
        user["meta"]["version"].as_str().unwrap().to_owned(),
    )
}

async fn get_user(server: &TestServer, id: &str) -> Value {
    let (status, user) = send(server.scim_req(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(status, 200, "{user}");
    user
}

async fn a_huge_patch_is_refused_fast_and_changes_nothing(server: &TestServer) {
    let (id, _) = create_user(server, "huge@example.com").await;
    // The custom attribute exists, so that an add must skip the values already there.
    let (status, user) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch(
                json!([{"op": "add", "path": "tags", "value": ["t-first"]}]),
            )),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    let version = user["meta"]["version"].as_str().unwrap().to_owned();
    // The request of the finding: one add of 40 000 values to a custom attribute.
    let body = patch(json!([{"op": "add", "path": "tags", "value": strings("t", 40_000)}]));
    let started = Instant::now();
    let (status, err) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&body),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("tooMany"));
    assert!(took < FAST, "refused after {took:?}");
    // Too many operations, in a Bulk as well as alone.
    let ops =
        vec![json!({"op": "replace", "path": "title", "value": "t"}); MAX_PATCH_OPERATIONS + 1];
    let (status, err) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch(json!(ops))),
    )
    .await;
    assert_scim_error(&err, 400, Some("tooMany"));
    assert_eq!(status, 400);
    let (status, reply) = send(server.scim_req(Method::POST, "/Bulk").json(&json!({
        "schemas": [BULK_REQUEST],
        "Operations": [{"method": "PATCH", "path": format!("/Users/{id}"), "data": body}],
    })))
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Operations"][0]["status"], "400", "{reply}");
    assert_eq!(reply["Operations"][0]["response"]["scimType"], "tooMany");

    let user = get_user(server, &id).await;
    assert_eq!(user["meta"]["version"], version.as_str(), "{user}");
    assert_eq!(user["tags"], json!(["t-first"]), "{user}");
    assert!(user.get("title").is_none(), "{user}");
}

async fn patches_at_the_limits_are_accepted(server: &TestServer) {
    let (id, _) = create_user(server, "limits@example.com").await;
    let path = format!("/Users/{id}");
    // A multi-valued attribute filled to its bound.
    let tags = strings("t", MAX_MULTI_VALUES);
    let (status, user) = send(server.scim_req(Method::PATCH, &path).json(&patch(
        json!([{"op": "add", "path": "tags", "value": tags}]),
    )))
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["tags"].as_array().unwrap().len(), MAX_MULTI_VALUES);
    let version = user["meta"]["version"].clone();
    // One more is refused, and changes nothing.
    let (status, err) = send(server.scim_req(Method::PATCH, &path).json(&patch(
        json!([{"op": "add", "path": "tags", "value": ["t0", "t1", "one-more"]}]),
    )))
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    let user = get_user(server, &id).await;
    assert_eq!(user["tags"].as_array().unwrap().len(), MAX_MULTI_VALUES);
    assert_eq!(user["meta"]["version"], version);
    // Values already there are not added again: adding them at the bound is accepted.
    let (status, user) = send(server.scim_req(Method::PATCH, &path).json(&patch(
        json!([{"op": "add", "path": "tags", "value": ["t0", "t1", "t2"]}]),
    )))
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["tags"].as_array().unwrap().len(), MAX_MULTI_VALUES);

    // One operation carrying exactly the values an operation may: a remove with a value list.
    let doomed = strings("t", MAX_PATCH_OPERATION_VALUES);
    let started = Instant::now();
    let (status, user) = send(server.scim_req(Method::PATCH, &path).json(&patch(
        json!([{"op": "remove", "path": "tags", "value": doomed}]),
    )))
    .await;
    assert_eq!(status, 200, "{user}");
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());
    assert!(user.get("tags").is_none(), "{user}");
    let mut over = strings("t", MAX_PATCH_OPERATION_VALUES);
    over.push(json!("x"));
    let (status, err) = send(server.scim_req(Method::PATCH, &path).json(&patch(
        json!([{"op": "remove", "path": "tags", "value": over}]),
    )))
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("tooMany"));
}

/// `{"a":{"a":...{"a":1}}}`, `depth` objects deep.
fn nested(depth: usize) -> Value {
    (1..depth).fold(json!({"a": 1}), |inner, _| json!({ "a": inner }))
}

async fn deep_json_is_refused(server: &TestServer) {
    // A User whose custom attribute makes the body exactly as deep as allowed: accepted.
    let (status, user) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": [USER], "userName": "deep@example.com", "deep": nested(MAX_JSON_DEPTH - 1),
    })))
    .await;
    assert_eq!(status, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    // One level more: refused, for every kind of body. serde_json's own recursion limit (128)
    // is far above the bound.
    let too_deep = nested(MAX_JSON_DEPTH);
    let bodies = [
        (
            Method::POST,
            "/Users".to_owned(),
            json!({
                "schemas": [USER], "userName": "deeper@example.com", "deep": too_deep,
            }),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            patch(json!([
                {"op": "add", "path": "deep", "value": too_deep},
            ])),
        ),
        (
            Method::POST,
            "/Bulk".to_owned(),
            json!({
                "schemas": [BULK_REQUEST],
                "Operations": [{"method": "POST", "path": "/Users", "bulkId": "b",
                    "data": {"schemas": [USER], "userName": "bulk-deep@example.com", "deep": too_deep}}],
            }),
        ),
        (
            Method::POST,
            "/Users/.search".to_owned(),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "x": too_deep,
            }),
        ),
    ];
    for (method, path, body) in bodies {
        let (status, err) = send(server.scim_req(method.clone(), &path).json(&body)).await;
        assert_eq!(status, 400, "{method} {path}: {err}");
        assert_scim_error(&err, 400, Some("invalidSyntax"));
    }
    // Far deeper than serde_json's own limit: the same answer, not a parse of it.
    let raw = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, err) = send(
        server
            .scim_req(Method::POST, "/Users")
            .header("content-type", "application/scim+json")
            .body(raw),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidSyntax"));
    let (_, list) = send(server.scim_req(Method::GET, "/Users?filter=userName sw \"deep\"")).await;
    assert_eq!(list["totalResults"], 1, "{list}");
}

async fn bulk_over_its_bounds_is_refused(server: &TestServer) {
    // Values across operations: one POST carrying more than the whole request may (small
    // values, so that the body stays under the byte limit).
    let many = vec![json!(1); MAX_BULK_VALUES];
    let (status, err) = send(server.scim_req(Method::POST, "/Bulk").json(&json!({
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a",
             "data": {"schemas": [USER], "userName": "bulk-a@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "b",
             "data": {"schemas": [USER], "userName": "bulk-b@example.com", "n": many}},
        ],
    })))
    .await;
    assert_eq!(status, 413, "{err}");
    assert_scim_error(&err, 413, None);
    assert!(err["detail"].as_str().unwrap().contains("values"), "{err}");
    // Too many operations (the bound ServiceProviderConfig advertises).
    let (_, spc) = send(server.scim_req(Method::GET, "/ServiceProviderConfig")).await;
    let max = usize::try_from(spc["bulk"]["maxOperations"].as_u64().unwrap()).unwrap();
    let ops: Vec<Value> = (0..=max)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/nope-{i}")}))
        .collect();
    let (status, err) = send(
        server
            .scim_req(Method::POST, "/Bulk")
            .json(&json!({"schemas": [BULK_REQUEST], "Operations": ops})),
    )
    .await;
    assert_eq!(status, 413, "{err}");
    // Nothing ran.
    let (_, list) = send(server.scim_req(Method::GET, "/Users?filter=userName sw \"bulk-\"")).await;
    assert_eq!(list["totalResults"], 0, "{list}");
}

/// A small, seeded generator (xorshift64*): the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    /// Around `limit`: mostly under it, sometimes just over or far over.
    fn around(&mut self, limit: usize) -> usize {
        match self.below(4) {
            0 => self.below(limit) + 1,
            1 => limit,
            2 => limit + 1 + self.below(limit / 10 + 1),
            _ => limit * 2 + self.below(limit),
        }
    }
}

/// One generated request: method, path and body.
fn generated(rng: &mut Rng, user: &str, group: &str) -> (Method, String, Value) {
    let user_path = format!("/Users/{user}");
    match rng.below(7) {
        // Many values in one add.
        0 => {
            let n = rng.around(MAX_PATCH_OPERATION_VALUES);
            let value = strings("g", n);
            (
                Method::PATCH,
                user_path,
                patch(json!([{"op": "add", "path": "tags", "value": value}])),
            )
        }
        // Many operations.
        1 => {
            let n = rng.around(MAX_PATCH_OPERATIONS);
            let ops: Vec<Value> = (0..n)
                .map(|i| json!({"op": "add", "path": "tags", "value": [format!("o{i}")]}))
                .collect();
            (Method::PATCH, user_path, patch(json!(ops)))
        }
        // Nesting.
        2 => {
            let depth = 1 + rng.below(MAX_JSON_DEPTH + 8);
            (
                Method::PATCH,
                user_path,
                patch(json!([{"op": "add", "path": "nest", "value": nested(depth)}])),
            )
        }
        // A pathless value with many keys.
        3 => {
            let n = rng.around(MAX_PATCH_OPERATION_VALUES);
            let value: serde_json::Map<String, Value> =
                (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
            (
                Method::PATCH,
                user_path,
                patch(json!([{"op": "replace", "value": value}])),
            )
        }
        // Members of a group, existing or not.
        4 => {
            let n = rng.around(MAX_PATCH_OPERATION_VALUES / 2);
            let members: Vec<Value> = (0..n)
                .map(|i| json!({"value": if i == 0 { user.to_owned() } else { format!("nobody-{i}") }}))
                .collect();
            (
                Method::PATCH,
                format!("/Groups/{group}"),
                patch(json!([{"op": "add", "path": "members", "value": members}])),
            )
        }
        // A value filter in a long path.
        5 => {
            let terms = 1 + rng.below(120);
            let filter: Vec<String> = (0..terms).map(|i| format!("type eq \"w{i}\"")).collect();
            let path = format!("emails[{}].display", filter.join(" or "));
            (
                Method::PATCH,
                user_path,
                patch(json!([{"op": "replace", "path": path, "value": "d"}])),
            )
        }
        // A Bulk of PATCHes, large or nested.
        _ => {
            let count = if rng.below(4) == 0 {
                1_000 + rng.below(300)
            } else {
                1 + rng.below(20)
            };
            let values = rng.around(MAX_PATCH_OPERATION_VALUES / 4);
            let depth = 1 + rng.below(MAX_JSON_DEPTH);
            let ops: Vec<Value> = (0..count)
                .map(|i| {
                    let value = if i % 2 == 0 {
                        json!(strings("b", values))
                    } else {
                        nested(depth)
                    };
                    json!({"method": "PATCH", "path": user_path.clone(),
                        "data": patch(json!([{"op": "add", "path": "bulk", "value": value}]))})
                })
                .collect();
            (
                Method::POST,
                "/Bulk".to_owned(),
                json!({"schemas": [BULK_REQUEST], "Operations": ops}),
            )
        }
    }
}

/// The bound on each generated request (an unoptimised build on a shared two-core machine;
/// the 40 000-value PATCH took 20 s before the fix).
const REQUEST_BOUND: Duration = Duration::from_secs(15);
/// The bound on each read of the other tenant while they run.
const READ_BOUND: Duration = Duration::from_secs(2);
const GENERATED: usize = 24;
const CONCURRENT: usize = 3;

async fn large_and_nested_inputs_never_stall_another_tenant(server: &TestServer) {
    let (user, _) = create_user(server, "target@example.com").await;
    let (status, group) = send(
        server
            .scim_req(Method::POST, "/Groups")
            .json(&json!({"schemas": [GROUP], "displayName": "target"})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let group = group["id"].as_str().unwrap().to_owned();

    // Another tenant, with a user to read.
    let other_token = server.scim_tenant("bystander").await;
    let (status, bystander) = send(
        server
            .http
            .post(format!("{}/Users", server.scim))
            .bearer_auth(&other_token)
            .json(&json!({"schemas": [USER], "userName": "bystander@example.com"})),
    )
    .await;
    assert_eq!(status, 201, "{bystander}");
    let read_url = format!(
        "{}/Users/{}",
        server.scim,
        bystander["id"].as_str().unwrap()
    );

    let mut rng = Rng(0x5EED_0008_0002);
    let requests: Vec<(Method, String, Value)> = (0..GENERATED)
        .map(|_| generated(&mut rng, &user, &group))
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(requests));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let reader = {
        let (http, done) = (server.http.clone(), done.clone());
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let response = http
                    .get(&read_url)
                    .bearer_auth(&other_token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let took = started.elapsed();
                assert!(took < READ_BOUND, "another tenant's read took {took:?}");
                slowest = slowest.max(took);
                reads += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (reads, slowest)
        })
    };
    let workers: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (http, queue) = (server.http.clone(), queue.clone());
            let (base, token) = (server.scim.clone(), server.scim_token.clone());
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                loop {
                    let Some((method, path, body)) = queue.lock().unwrap().pop() else {
                        return slowest;
                    };
                    let bytes = serde_json::to_vec(&body).unwrap();
                    let size = bytes.len();
                    let started = Instant::now();
                    let sent = http
                        .request(method.clone(), format!("{base}{path}"))
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(bytes)
                        .send()
                        .await;
                    let response = match sent {
                        Ok(response) => response,
                        // A body over the limit may be answered 413 and the connection closed
                        // while the client is still writing it.
                        Err(e) if size > roster::FacadeConfig::default().body_limit => {
                            eprintln!("{method} {path} ({size} bytes): refused while sent ({e})");
                            continue;
                        }
                        Err(e) => panic!("{method} {path} ({size} bytes): {e}"),
                    };
                    let status = response.status();
                    let text = response.text().await.unwrap();
                    let took = started.elapsed();
                    assert!(
                        status.is_success() || status.is_client_error(),
                        "{method} {path} ({size} bytes): {status} {text:.300}"
                    );
                    if method == Method::POST && status.is_success() {
                        // Bulk: every operation's own answer is no 5xx either.
                        let reply: Value = serde_json::from_str(&text).unwrap();
                        for op in reply["Operations"].as_array().unwrap() {
                            let op_status: u16 = op["status"].as_str().unwrap().parse().unwrap();
                            assert!(op_status < 500, "{op}");
                        }
                    }
                    assert!(
                        took < REQUEST_BOUND,
                        "{method} {path} ({size} bytes) took {took:?}"
                    );
                    slowest = slowest.max(took);
                }
            })
        })
        .collect();
    let mut slowest_request = Duration::ZERO;
    for worker in workers {
        slowest_request = slowest_request.max(worker.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, slowest_read) = reader.await.unwrap();
    assert!(reads > 0);
    eprintln!(
        "{GENERATED} generated requests: slowest {slowest_request:?} (bound {REQUEST_BOUND:?}); \
         {reads} reads of another tenant: slowest {slowest_read:?} (bound {READ_BOUND:?})"
    );
}

async fn a_forged_host_never_reaches_location(server: &TestServer) {
    let (status, created, location) = {
        let response = server
            .scim_req(Method::POST, "/Users")
            .header("host", "evil.example")
            .json(&json!({"schemas": [USER], "userName": "host@example.com"}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        (status, response.json::<Value>().await.unwrap(), location)
    };
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    // The address the test connected to, which is the listener's.
    let expected = format!("{}/Users/{id}", server.scim);
    assert_eq!(location, expected);
    assert_eq!(created["meta"]["location"], expected.as_str());
    let (_, user) = send(
        server
            .scim_req(Method::GET, &format!("/Users/{id}"))
            .header("host", "evil.example"),
    )
    .await;
    assert_eq!(user["meta"]["location"], expected.as_str());
    assert!(!user.to_string().contains("evil.example"), "{user}");
}

async fn failed_authentication_is_throttled_per_client(server: &TestServer) {
    let get = |client: &reqwest::Client, token: &str| {
        client
            .get(format!("{}/Users?count=1", server.scim))
            .bearer_auth(token)
    };
    // Successes do not count.
    for _ in 0..10 {
        assert_eq!(send(get(&server.http, &server.scim_token)).await.0, 200);
    }
    for _ in 0..2 {
        let (status, err) = send(get(&server.http, "wrong-token")).await;
        assert_eq!(status, 401, "{err}");
    }
    // Another tenant of the same identity provider, from the same address, succeeds
    // in between.
    assert_eq!(send(get(&server.http, &server.scim_token)).await.0, 200);
    for _ in 0..3 {
        let (status, err) = send(get(&server.http, "wrong-token")).await;
        assert_eq!(status, 401, "{err}");
    }
    // The sixth failure in the window: 429 for any credentials not seen to succeed from this
    // client since its first failure, with Retry-After...
    for token in ["wrong-token", "another-wrong-token"] {
        let response = get(&server.http, token).send().await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        let (_, err) = send(get(&server.http, token)).await;
        assert_scim_error(&err, 429, None);
    }
    // ...while the token that succeeded goes on.
    assert_eq!(send(get(&server.http, &server.scim_token)).await.0, 200);
    // Another client (another loopback address) is not affected.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(send(get(&other, &server.scim_token)).await.0, 200);
    // Once the window has passed, the client is served again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(send(get(&server.http, &server.scim_token)).await.0, 200);
}

/// A full member list of a large group (Okta's "replace members") is not held to the User
/// PATCH bounds: 6 000 members in one operation are accepted.
async fn a_large_group_replace_is_accepted(server: &TestServer) {
    let mut ids = Vec::new();
    let mut ops = Vec::new();
    for i in 0..6_000 {
        ops.push(json!({
            "method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
            "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("member{i}@example.com")}
        }));
    }
    for chunk in ops.chunks(1_000) {
        let (status, body) = send(server.scim_req(Method::POST, "/Bulk").json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": chunk,
        })))
        .await;
        assert_eq!(status, 200, "{body}");
        for op in body["Operations"].as_array().expect("operations") {
            assert_eq!(op["status"], "201", "{op}");
            let location = op["location"].as_str().expect("location");
            ids.push(location.rsplit('/').next().expect("id").to_owned());
        }
    }
    let (status, group) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"
    })))
    .await;
    assert_eq!(status, 201, "{group}");
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let (status, body) = send(
        server
            .scim_req(
                Method::PATCH,
                &format!("/Groups/{}", group["id"].as_str().expect("id")),
            )
            .json(&patch(
                json!([{"op": "replace", "path": "members", "value": members}]),
            )),
    )
    .await;
    assert!(status == 200 || status == 204, "{status}: {body}");
    let (_, read) = send(server.scim_req(
        Method::GET,
        &format!(
            "/Groups/{}?attributes=members",
            group["id"].as_str().expect("id")
        ),
    ))
    .await;
    assert_eq!(read["members"].as_array().map(Vec::len), Some(6_000));
}
