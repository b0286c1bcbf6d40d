//! Listing: sortBy/sortOrder (RFC 7644 §3.4.2.3), startIndex/count edges (§3.4.2.4) and cursor
//! paging (RFC 9865), over SCIM, on both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_scim_error, on_both_backends, send};

on_both_backends!(
    sorting_with_ties_and_missing_values,
    sorted_index_paging_sees_every_user_once,
    cursor_paging_forward_and_back,
    bad_cursors_are_refused,
    count_zero_and_clamping,
);

/// (userName, familyName, title), created in this order.
const PEOPLE: [(&str, Option<&str>, Option<&str>); 7] = [
    ("delta", Some("Smith"), Some("cto")),
    ("Alpha", Some("jones"), None),
    ("charlie", None, Some("Engineer")),
    ("bravo", Some("SMITH"), Some("analyst")),
    ("echo", Some("Adams"), None),
    ("foxtrot", None, Some("engineer")),
    ("golf", Some("smith"), Some("Buyer")),
];

/// Creates [`PEOPLE`]; returns their ids in creation order.
async fn people(server: &TestServer) -> Vec<String> {
    let mut ids = Vec::new();
    for (user_name, family, title) in PEOPLE {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "active": true,
        });
        if let Some(f) = family {
            body["name"] = json!({"familyName": f});
        }
        if let Some(t) = title {
            body["title"] = json!(t);
        }
        let (status, created) = send(
            server
                .scim_req(Method::POST, "/Users")
                .header("content-type", "application/scim+json")
                .body(body.to_string()),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    ids
}

fn ids_of(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources: {list}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(server: &TestServer, path: &str) -> Value {
    let (status, body) = send(server.scim_req(Method::GET, path)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// `ids` picked by 0-based creation indexes.
fn pick(ids: &[String], order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| ids[i].clone()).collect()
}

fn reversed(mut v: Vec<String>) -> Vec<String> {
    v.reverse();
    v
}

async fn sorting_with_ties_and_missing_values(server: &TestServer) {
    let ids = people(server).await;
    // familyName without letter case; the three Smiths tie and keep creation order; the two
    // without one come last.
    let by_family = pick(&ids, &[4, 1, 0, 3, 6, 2, 5]);
    let got = list(server, "/Users?sortBy=name.familyName").await;
    assert_eq!(ids_of(&got), by_family);
    assert_eq!(got["totalResults"], 7);
    // Descending is the exact reverse: those without a familyName first.
    let got = list(server, "/Users?sortBy=name.familyName&sortOrder=DESCENDING").await;
    assert_eq!(ids_of(&got), reversed(by_family.clone()));
    // The core schema URN may prefix the attribute, and names ignore case.
    let got = list(
        server,
        "/Users?sortBy=urn:ietf:params:scim:schemas:core:2.0:User:NAME.FAMILYNAME&sortOrder=ascending",
    )
    .await;
    assert_eq!(ids_of(&got), by_family);

    let by_user_name = pick(&ids, &[1, 3, 2, 0, 4, 5, 6]);
    let got = list(server, "/Users?sortBy=userName").await;
    assert_eq!(ids_of(&got), by_user_name);
    let got = list(server, "/Users?sortBy=userName&sortOrder=descending").await;
    assert_eq!(ids_of(&got), reversed(by_user_name));

    // title: "Engineer" and "engineer" tie; missing titles last.
    let by_title = pick(&ids, &[3, 6, 0, 2, 5, 1, 4]);
    let got = list(server, "/Users?sortBy=title").await;
    assert_eq!(ids_of(&got), by_title);

    // meta.created: creation order, and its reverse.
    let got = list(server, "/Users?sortBy=meta.created&sortOrder=descending").await;
    assert_eq!(ids_of(&got), reversed(ids.clone()));
    // A filter and a sort together, by POST too.
    let (status, got) = send(
        server
            .scim_req(Method::POST, "/Users/.search")
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "name.familyName eq \"smith\"",
                    "sortBy": "userName",
                    "sortOrder": "descending"
                })
                .to_string(),
            ),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(ids_of(&got), pick(&ids, &[6, 0, 3]));

    // Unknown or unsortable attributes, and a bad sortOrder: 400 invalidValue.
    for path in [
        "/Users?sortBy=nickName",
        "/Users?sortBy=emails.nope",
        "/Users?sortBy=members",
        "/Users?sortBy=userName&sortOrder=sideways",
        "/Groups?sortBy=userName",
    ] {
        let (status, body) = send(server.scim_req(Method::GET, path)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_scim_error(&body, 400, Some("invalidValue"));
    }

    // Groups: displayName without case; externalId case-exact with the missing last.
    let mut groups = Vec::new();
    for (name, external) in [("beta", Some("x2")), ("Alpha", None), ("gamma", Some("X1"))] {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
        });
        if let Some(e) = external {
            body["externalId"] = json!(e);
        }
        let (status, created) = send(
            server
                .scim_req(Method::POST, "/Groups")
                .header("content-type", "application/scim+json")
                .body(body.to_string()),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        groups.push(created["id"].as_str().unwrap().to_owned());
    }
    let got = list(server, "/Groups?sortBy=displayName").await;
    assert_eq!(ids_of(&got), pick(&groups, &[1, 0, 2]));
    let got = list(server, "/Groups?sortBy=displayName&sortOrder=descending").await;
    assert_eq!(ids_of(&got), pick(&groups, &[2, 0, 1]));
    // "X1" < "x2" (case-exact), then the group without one.
    let got = list(server, "/Groups?sortBy=externalId").await;
    assert_eq!(ids_of(&got), pick(&groups, &[2, 0, 1]));
    let got = list(
        server,
        "/Groups?sortBy=meta.lastModified&sortOrder=descending",
    )
    .await;
    assert_eq!(ids_of(&got), pick(&groups, &[2, 1, 0]));
}

async fn sorted_index_paging_sees_every_user_once(server: &TestServer) {
    let ids = people(server).await;
    let by_family = pick(&ids, &[4, 1, 0, 3, 6, 2, 5]);
    for (order, expected) in [
        ("ascending", by_family.clone()),
        ("descending", reversed(by_family.clone())),
    ] {
        // Twice: the second walk is served from the first one's continuations.
        for _ in 0..2 {
            let mut seen = Vec::new();
            for start in [1, 3, 5, 7] {
                let page = list(
                    server,
                    &format!(
                        "/Users?sortBy=name.familyName&sortOrder={order}&startIndex={start}&count=2"
                    ),
                )
                .await;
                assert_eq!(page["startIndex"], start);
                assert_eq!(page["totalResults"], 7);
                assert!(page.get("nextCursor").is_none(), "{page}");
                seen.extend(ids_of(&page));
            }
            assert_eq!(seen, expected, "{order}");
        }
    }
    // A position nobody paged to (OFFSET) agrees with the walk.
    let page = list(server, "/Users?sortBy=name.familyName&startIndex=4&count=3").await;
    assert_eq!(ids_of(&page), by_family[3..6].to_vec());
}

/// Follows `nextCursor` from the first page; returns the pages.
async fn walk_forward(server: &TestServer, query: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = list(server, &format!("/Users?{query}&cursor={cursor}")).await;
        assert!(page.get("startIndex").is_none(), "{page}");
        assert_eq!(
            page.get("previousCursor").is_some(),
            !pages.is_empty(),
            "previousCursor on every page but the first: {page}"
        );
        let next = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        pages.push(page);
        match next {
            Some(c) => {
                // RFC 3986 unreserved characters only.
                assert!(
                    c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
                    "{c}"
                );
                cursor = c;
            }
            None => return pages,
        }
        assert!(pages.len() < 20, "paging does not end");
    }
}

async fn cursor_paging_forward_and_back(server: &TestServer) {
    let ids = people(server).await;
    let by_family = pick(&ids, &[4, 1, 0, 3, 6, 2, 5]);
    for (order, expected) in [
        ("ascending", by_family.clone()),
        ("descending", reversed(by_family.clone())),
    ] {
        let query = format!("sortBy=name.familyName&sortOrder={order}&count=2");
        let pages = walk_forward(server, &query).await;
        let forward: Vec<String> = pages.iter().flat_map(ids_of).collect();
        assert_eq!(forward, expected, "{order}");
        assert_eq!(pages.len(), 4);
        assert!(pages.iter().all(|p| p["totalResults"] == 7));

        // Back from the last page by previousCursor: the same pages, in reverse.
        let mut page = pages.last().unwrap().clone();
        for earlier in pages.iter().rev().skip(1) {
            let previous = page["previousCursor"].as_str().unwrap().to_owned();
            page = list(server, &format!("/Users?{query}&cursor={previous}")).await;
            assert_eq!(ids_of(&page), ids_of(earlier), "{order}");
            assert!(page.get("nextCursor").is_some());
        }
        assert!(
            page.get("previousCursor").is_none(),
            "the first page: {page}"
        );
    }

    // Without sortBy: creation order. By POST, the cursor in the body.
    let pages = walk_forward(server, "count=3").await;
    let forward: Vec<String> = pages.iter().flat_map(ids_of).collect();
    assert_eq!(forward, ids);
    let (status, page) = send(
        server
            .scim_req(Method::POST, "/Users/.search")
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "cursor": pages[0]["nextCursor"],
                    "count": 3
                })
                .to_string(),
            ),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids_of(&page), ids[3..6].to_vec());

    // A deletion at the cursor's position skips nothing and repeats nothing.
    let query = "sortBy=userName&count=3";
    let first = list(server, &format!("/Users?{query}&cursor=")).await;
    let by_user_name = pick(&ids, &[1, 3, 2, 0, 4, 5, 6]);
    assert_eq!(ids_of(&first), by_user_name[..3].to_vec());
    let (status, _) =
        send(server.scim_req(Method::DELETE, &format!("/Users/{}", by_user_name[2]))).await;
    assert_eq!(status, 204);
    let next = first["nextCursor"].as_str().unwrap();
    let second = list(server, &format!("/Users?{query}&cursor={next}")).await;
    assert_eq!(ids_of(&second), by_user_name[3..6].to_vec());
    assert_eq!(second["totalResults"], 6);
}

async fn bad_cursors_are_refused(server: &TestServer) {
    people(server).await;
    let first = list(server, "/Users?sortBy=userName&count=2&cursor=").await;
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    // Still good with the same query.
    list(
        server,
        &format!("/Users?sortBy=userName&count=2&cursor={cursor}"),
    )
    .await;
    let mut damaged = cursor.clone().into_bytes();
    damaged[5] = if damaged[5] == b'A' { b'B' } else { b'A' };
    let damaged = String::from_utf8(damaged).unwrap();
    for path in [
        // Garbage, a damaged cursor.
        "/Users?count=2&cursor=nope".to_owned(),
        format!("/Users?sortBy=userName&count=2&cursor={damaged}"),
        // Another sort, order, filter or resource type.
        format!("/Users?sortBy=title&count=2&cursor={cursor}"),
        format!("/Users?sortBy=userName&sortOrder=descending&count=2&cursor={cursor}"),
        format!("/Users?sortBy=userName&filter=active+eq+true&count=2&cursor={cursor}"),
        format!("/Groups?count=2&cursor={cursor}"),
    ] {
        let (status, body) = send(server.scim_req(Method::GET, &path)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_scim_error(&body, 400, Some("invalidCursor"));
    }
    // Both paging methods; a cursor page of no resources.
    let (status, body) = send(server.scim_req(
        Method::GET,
        &format!("/Users?sortBy=userName&startIndex=3&cursor={cursor}"),
    ))
    .await;
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidValue"));
    let (status, body) = send(server.scim_req(Method::GET, "/Users?cursor=&count=0")).await;
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidCount"));
    // The root search sorts and pages per resource type only.
    let (status, body) = send(
        server
            .scim_req(Method::POST, "/.search")
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "cursor": ""
                })
                .to_string(),
            ),
    )
    .await;
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidValue"));
}

async fn count_zero_and_clamping(server: &TestServer) {
    let ids = people(server).await;
    // count=0 (and a negative count): the total alone.
    for count in ["0", "-3"] {
        let got = list(server, &format!("/Users?count={count}&sortBy=userName")).await;
        assert_eq!(got["totalResults"], 7, "{got}");
        assert_eq!(got["itemsPerPage"], 0);
        assert_eq!(got["Resources"], json!([]));
        let got = list(server, &format!("/Users?count={count}&filter=title+pr")).await;
        assert_eq!(got["totalResults"], 5, "{got}");
        assert_eq!(got["Resources"], json!([]));
    }
    // startIndex below 1 is 1.
    for start in ["0", "-5"] {
        let got = list(server, &format!("/Users?startIndex={start}&count=2")).await;
        assert_eq!(got["startIndex"], 1);
        assert_eq!(ids_of(&got), ids[..2].to_vec());
    }
    // Past the end: no resources, the total.
    let got = list(server, "/Users?startIndex=50&count=2").await;
    assert_eq!(
        (got["totalResults"].clone(), got["itemsPerPage"].clone()),
        (json!(7), json!(0))
    );
    // A count above the maximum is the maximum, which the configuration advertises once.
    let got = list(server, "/Users?count=1000000").await;
    assert_eq!(ids_of(&got), ids);
    let config = list(server, "/ServiceProviderConfig").await;
    assert_eq!(config["sort"]["supported"], true);
    let max = &config["filter"]["maxResults"];
    assert_eq!(&config["pagination"]["maxPageSize"], max);
    assert_eq!(config["pagination"]["cursor"], true);
    assert_eq!(config["pagination"]["index"], true);
    assert_eq!(config["pagination"]["defaultPaginationMethod"], "index");
    assert!(max.as_i64().unwrap() >= 1);
}
