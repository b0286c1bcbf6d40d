//! One set of value rules for SCIM and gRPC (issue 8, findings 5, 9 and 11b): the same length
//! limits, no control characters (NUL above all: PostgreSQL cannot store it, and one stored in
//! a JSON document broke that tenant's JSON filters), and names that are the same once
//! trimmed and Unicode-normalised are one name.

use diesel::{Connection, RunQueryDsl};
use reqwest::Method;
use roster_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::harness::{TestServer, assert_scim_error, authed, on_both_backends, send};

on_both_backends!(
    control_characters_are_refused_over_scim,
    control_characters_are_refused_over_grpc,
    grpc_writes_meet_the_scim_limits,
    names_are_one_after_trimming_and_normalising,
    migrate_recomputes_the_keys_of_existing_rows,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user(user_name: &str, extra: Value) -> Value {
    let mut doc = json!({"schemas": [USER, ENTERPRISE], "userName": user_name});
    for (k, v) in extra.as_object().expect("object") {
        doc[k] = v.clone();
    }
    doc
}

async fn list(server: &TestServer, resource: &str, filter: &str) -> Value {
    let (status, body) = send(
        server
            .scim_req(Method::GET, resource)
            .query(&[("filter", filter)]),
    )
    .await;
    assert_eq!(status, 200, "{filter}: {body}");
    body
}

/// The JSON filters that a stored NUL used to break, for the whole tenant (PostgreSQL).
async fn json_filters_answer(server: &TestServer, want: u64) {
    for filter in [
        r#"emails.type eq "work""#,
        r#"emails[type eq "work"]"#,
        "phoneNumbers pr",
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#,
    ] {
        let body = list(server, "/Users", filter).await;
        assert_eq!(body["totalResults"], want, "{filter}: {body}");
    }
}

async fn control_characters_are_refused_over_scim(server: &TestServer) {
    let good = user(
        "ada@example.com",
        json!({
            "emails": [{"value": "ada@example.com", "type": "work", "display": "Ada"}],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            "addresses": [{"formatted": "1 Main St\r\nSpringfield\tUSA"}],
            (ENTERPRISE): {"department": "R&D"},
        }),
    );
    let (status, created) = send(server.scim_req(Method::POST, "/Users").json(&good)).await;
    assert_eq!(status, 201, "{created}");
    // Free text keeps its line breaks.
    assert_eq!(
        created["addresses"][0]["formatted"],
        "1 Main St\r\nSpringfield\tUSA"
    );
    let id = created["id"].as_str().expect("id").to_owned();
    let bad_users = [
        user("a\u{0}da@example.com", json!({})),
        user("ada\n@example.com", json!({})),
        user("bob@example.com", json!({"displayName": "Bob\u{1b}[31m"})),
        user(
            "bob@example.com",
            json!({"emails": [{"value": "bob@example.com", "type": "work", "display": "B\u{0}b"}]}),
        ),
        user(
            "bob@example.com",
            json!({"phoneNumbers": [{"value": "+1\u{0}555", "type": "work"}]}),
        ),
        user(
            "bob@example.com",
            json!({"customThing": {"deep": ["x\u{0}"]}}),
        ),
        user(
            "bob@example.com",
            json!({(ENTERPRISE): {"department": "R\u{0}D"}}),
        ),
        user("bob@example.com", json!({"customThing": {"ke\u{0}y": "v"}})),
    ];
    for body in &bad_users {
        let (status, err) = send(server.scim_req(Method::POST, "/Users").json(body)).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_scim_error(&err, 400, Some("invalidValue"));
        // Nor on a replace of the existing user.
        let mut put = body.clone();
        if body["userName"] == "bob@example.com" {
            put["userName"] = json!("ada@example.com");
        }
        let (status, err) = send(
            server
                .scim_req(Method::PUT, &format!("/Users/{id}"))
                .json(&put),
        )
        .await;
        assert_eq!(status, 400, "{put}: {err}");
        assert_scim_error(&err, 400, Some("invalidValue"));
    }
    // A PATCH too.
    let (status, err) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "phoneNumbers",
                                "value": [{"value": "5\u{0}5", "type": "home"}]}]
            })),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    for body in [
        json!({"schemas": [GROUP], "displayName": "Eng\u{0}"}),
        json!({"schemas": [GROUP], "displayName": "Eng", "externalId": "x\u{0}"}),
    ] {
        let (status, err) = send(server.scim_req(Method::POST, "/Groups").json(&body)).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_scim_error(&err, 400, Some("invalidValue"));
    }
    // Nothing was stored, and the tenant's JSON filters still answer.
    let (status, got) = send(server.scim_req(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(got["emails"], good["emails"], "{got}");
    assert_eq!(got["phoneNumbers"], good["phoneNumbers"], "{got}");
    assert_eq!(got[ENTERPRISE], good[ENTERPRISE], "{got}");
    assert_eq!(list(server, "/Users", "").await["totalResults"], 1);
    assert_eq!(list(server, "/Groups", "").await["totalResults"], 0);
    json_filters_answer(server, 1).await;
}

async fn control_characters_are_refused_over_grpc(server: &TestServer) {
    let channel = server.channel().await;
    let mut users = pb::user_service_client::UserServiceClient::new(channel.clone());
    let mut groups = pb::group_service_client::GroupServiceClient::new(channel);
    let token = &server.scim_token;
    let base = pb::User {
        user_name: "ada@example.com".into(),
        active: true,
        emails: vec![pb::Email {
            value: "ada@example.com".into(),
            r#type: Some("work".into()),
            primary: Some(true),
            display: None,
        }],
        attributes_json: json!({
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            (ENTERPRISE): {"department": "R&D"},
        })
        .to_string(),
        ..Default::default()
    };
    let created = users
        .create_user(authed(
            token,
            pb::CreateUserRequest {
                user: Some(base.clone()),
            },
        ))
        .await
        .expect("CreateUser")
        .into_inner();
    let with_attributes = |attributes: Value| pb::User {
        user_name: "bob@example.com".into(),
        attributes_json: attributes.to_string(),
        ..base.clone()
    };
    let bad = [
        pb::User {
            user_name: "a\u{0}da".into(),
            ..base.clone()
        },
        pb::User {
            user_name: "bob@example.com".into(),
            emails: vec![pb::Email {
                value: "bob@example.com".into(),
                r#type: Some("work".into()),
                primary: None,
                display: Some("B\u{0}b".into()),
            }],
            ..base.clone()
        },
        pb::User {
            user_name: "bob@example.com".into(),
            role: Some("admin\u{0}".into()),
            ..base.clone()
        },
        pb::User {
            user_name: "bob@example.com".into(),
            title: Some("x\u{7}".into()),
            ..base.clone()
        },
        with_attributes(json!({"phoneNumbers": [{"value": "5\u{0}5"}]})),
        with_attributes(json!({"customThing": "x\u{0}"})),
        with_attributes(json!({(ENTERPRISE): {"department": "R\u{0}D"}})),
        with_attributes(json!({"customThing": {"ke\u{0}y": 1}})),
    ];
    for user in bad {
        let err = users
            .create_user(authed(
                token,
                pb::CreateUserRequest {
                    user: Some(user.clone()),
                },
            ))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{user:?}: {err:?}");
        let err = users
            .update_user(authed(
                token,
                pb::UpdateUserRequest {
                    user: Some(pb::User {
                        id: created.id.clone(),
                        ..user.clone()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["*".into()],
                    }),
                    etag: String::new(),
                },
            ))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{user:?}: {err:?}");
    }
    for group in [
        pb::Group {
            display_name: "Eng\u{0}".into(),
            ..Default::default()
        },
        pb::Group {
            display_name: "Eng".into(),
            external_id: Some("x\u{0}".into()),
            ..Default::default()
        },
        pb::Group {
            display_name: "Eng".into(),
            members: vec![pb::Member {
                user_id: format!("{}\u{0}", created.id),
                display: String::new(),
            }],
            ..Default::default()
        },
    ] {
        let err = groups
            .create_group(authed(
                token,
                pb::CreateGroupRequest {
                    group: Some(group.clone()),
                    view: 0,
                },
            ))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{group:?}: {err:?}");
    }
    // An id holding NUL names nothing.
    let err = users
        .get_user(authed(
            token,
            pb::GetUserRequest {
                id: "x\u{0}".into(),
            },
        ))
        .await
        .expect_err("no such user");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // Nothing was stored.
    let got = users
        .get_user(authed(
            token,
            pb::GetUserRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .expect("GetUser")
        .into_inner();
    assert_eq!(got.etag, created.etag);
    let all = users
        .list_users(authed(token, pb::ListUsersRequest::default()))
        .await
        .expect("ListUsers")
        .into_inner();
    assert_eq!(all.total_size, 1);
    let all = groups
        .list_groups(authed(token, pb::ListGroupsRequest::default()))
        .await
        .expect("ListGroups")
        .into_inner();
    assert_eq!(all.total_size, 0);
    json_filters_answer(server, 1).await;
}

async fn grpc_writes_meet_the_scim_limits(server: &TestServer) {
    let channel = server.channel().await;
    let mut users = pb::user_service_client::UserServiceClient::new(channel.clone());
    let mut groups = pb::group_service_client::GroupServiceClient::new(channel);
    let token = &server.scim_token;
    let long = |n: usize| "x".repeat(n);
    let named = |user_name: String| pb::User {
        user_name,
        active: true,
        ..Default::default()
    };
    let too_long = [
        named(long(257)),
        named(long(4000)),
        pb::User {
            title: Some(long(1025)),
            ..named("a".into())
        },
        pb::User {
            emails: vec![pb::Email {
                value: format!("{}@example.com", long(243)),
                ..Default::default()
            }],
            ..named("a".into())
        },
        pb::User {
            attributes_json: json!({"customThing": {"deep": [long(1025)]}}).to_string(),
            ..named("a".into())
        },
        pb::User {
            attributes_json: json!({ long(1025): 1 }).to_string(),
            ..named("a".into())
        },
        pb::User {
            attributes_json: json!({ "big": vec![long(1000); 70] }).to_string(),
            ..named("a".into())
        },
    ];
    for user in too_long {
        let err = users
            .create_user(authed(
                token,
                pb::CreateUserRequest {
                    user: Some(user.clone()),
                },
            ))
            .await
            .expect_err("too long");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    // At the limits: accepted, as over SCIM (characters, not bytes).
    let created = users
        .create_user(authed(
            token,
            pb::CreateUserRequest {
                user: Some(pb::User {
                    title: Some(long(1024)),
                    ..named("é".repeat(256))
                }),
            },
        ))
        .await
        .expect("at the limits")
        .into_inner();
    let (status, _) = send(
        server
            .scim_req(Method::POST, "/Users")
            .json(&user(&"é".repeat(257), json!({}))),
    )
    .await;
    assert_eq!(status, 400, "SCIM has the same limit");

    for group in [
        pb::Group {
            display_name: long(257),
            ..Default::default()
        },
        pb::Group {
            display_name: "Eng".into(),
            external_id: Some(long(3 * 1024 * 1024)),
            ..Default::default()
        },
        pb::Group {
            display_name: "Eng".into(),
            external_id: Some(long(1025)),
            ..Default::default()
        },
    ] {
        let err = groups
            .create_group(authed(
                token,
                pb::CreateGroupRequest {
                    group: Some(group),
                    view: 0,
                },
            ))
            .await
            .expect_err("too long");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    let group = groups
        .create_group(authed(
            token,
            pb::CreateGroupRequest {
                group: Some(pb::Group {
                    display_name: long(256),
                    external_id: Some(long(1024)),
                    ..Default::default()
                }),
                view: 0,
            },
        ))
        .await
        .expect("at the limits")
        .into_inner();
    let err = groups
        .update_group(authed(
            token,
            pb::UpdateGroupRequest {
                group: Some(pb::Group {
                    id: group.id.clone(),
                    external_id: Some(long(1025)),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["external_id".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .expect_err("too long");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = users
        .update_user(authed(
            token,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: created.id.clone(),
                    ..named(long(257))
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["user_name".into()],
                }),
                etag: String::new(),
            },
        ))
        .await
        .expect_err("too long");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // Nothing else was stored.
    let all = users
        .list_users(authed(token, pb::ListUsersRequest::default()))
        .await
        .expect("ListUsers")
        .into_inner();
    assert_eq!(all.total_size, 1);
    assert_eq!(all.users[0].user_name, "é".repeat(256));
    let all = groups
        .list_groups(authed(token, pb::ListGroupsRequest::default()))
        .await
        .expect("ListGroups")
        .into_inner();
    assert_eq!(all.total_size, 1);
    assert_eq!(
        all.groups[0].external_id.as_deref(),
        Some(long(1024).as_str())
    );
}

async fn names_are_one_after_trimming_and_normalising(server: &TestServer) {
    let nfc = "Jos\u{e9}@example.com";
    let nfd = "Jose\u{301}@example.com";
    let post = |path: &str, body: Value| server.scim_req(Method::POST, path).json(&body);
    let (status, ada) = send(post("/Users", user("ada", json!({})))).await;
    assert_eq!(status, 201, "{ada}");
    let (status, jose) = send(post("/Users", user(nfc, json!({})))).await;
    assert_eq!(status, 201, "{jose}");
    for same in ["ada ", " ada", "ADA\u{2003}", "ada\u{a0}"] {
        let (status, err) = send(post("/Users", user(same, json!({})))).await;
        assert_eq!(status, 409, "{same:?}: {err}");
        assert_scim_error(&err, 409, Some("uniqueness"));
    }
    let (status, err) = send(post("/Users", user(nfd, json!({})))).await;
    assert_eq!(status, 409, "{err}");
    assert_scim_error(&err, 409, Some("uniqueness"));
    // The name is kept as written.
    assert_eq!(jose["userName"], nfc);

    // `userName eq` finds the user from either form: the point lookup, and a compound filter.
    for (form, id) in [
        (nfc, &jose["id"]),
        (nfd, &jose["id"]),
        ("JOSE\u{301}@EXAMPLE.COM", &jose["id"]),
        ("ada ", &ada["id"]),
        ("Ada", &ada["id"]),
    ] {
        for filter in [
            format!("userName eq \"{form}\""),
            format!("userName eq \"{form}\" and active eq true"),
        ] {
            let body = list(server, "/Users", &filter).await;
            assert_eq!(body["totalResults"], 1, "{filter}: {body}");
            assert_eq!(&body["Resources"][0]["id"], id, "{filter}");
        }
    }
    // A rename onto the other form is a clash too.
    let (status, err) = send(
        server
            .scim_req(
                Method::PUT,
                &format!("/Users/{}", ada["id"].as_str().expect("id")),
            )
            .json(&user(nfd, json!({}))),
    )
    .await;
    assert_eq!(status, 409, "{err}");

    // Groups' displayName likewise.
    let (status, team) = send(post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Équipe"}),
    ))
    .await;
    assert_eq!(status, 201, "{team}");
    for same in ["E\u{301}quipe", "équipe ", " ÉQUIPE"] {
        let (status, err) = send(post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": same}),
        ))
        .await;
        assert_eq!(status, 409, "{same:?}: {err}");
        assert_scim_error(&err, 409, Some("uniqueness"));
    }
    for form in ["E\u{301}quipe", "équipe "] {
        let body = list(server, "/Groups", &format!("displayName eq \"{form}\"")).await;
        assert_eq!(body["totalResults"], 1, "{form}: {body}");
        assert_eq!(body["Resources"][0]["id"], team["id"]);
    }
}

/// Runs raw SQL on the test's database, as an older Roster would have left it.
fn raw_sql(server: &TestServer, statements: &[String]) {
    let url = &server.database_url;
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut c = diesel::SqliteConnection::establish(path).expect("open SQLite");
            for s in statements {
                diesel::sql_query(s).execute(&mut c).expect(s);
            }
        }
        None => {
            let mut c = diesel::PgConnection::establish(url).expect("open PostgreSQL");
            for s in statements {
                diesel::sql_query(s).execute(&mut c).expect(s);
            }
        }
    }
}

/// Rows written before the name keys (keys lower-cased only, a NUL inside a stored JSON
/// document): `roster migrate` recomputes the keys, so that lookups by either form find them,
/// repairs the JSON, and keeps a row whose new key another row has under its old one.
async fn migrate_recomputes_the_keys_of_existing_rows(server: &TestServer) {
    let nfd = "Jose\u{301}@example.com";
    let mut ids = Vec::new();
    for name in ["jose", "ada", "bob", "bobx"] {
        let (status, created) = send(server.scim_req(Method::POST, "/Users").json(&user(
            name,
            json!({"emails": [{"value": format!("{name}@example.com"), "type": "work"}]}),
        )))
        .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let (status, group) = send(
        server
            .scim_req(Method::POST, "/Groups")
            .json(&json!({"schemas": [GROUP], "displayName": "team"})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().expect("id");
    let q = |s: &str| s.replace('\'', "''");
    raw_sql(
        server,
        &[
            // As written by the old code: the key lower-cased, nothing more.
            format!(
                "UPDATE users SET user_name = '{}', user_name_lower = '{}' WHERE id = '{}'",
                q(nfd),
                q(&nfd.to_lowercase()),
                ids[0]
            ),
            format!(
                "UPDATE users SET user_name = 'Ada ', user_name_lower = 'ada ', \
                 emails = '[{{\"value\":\"ada@example.com\",\"type\":\"work\",\"display\":\"A\\u0000\"}}]' \
                 WHERE id = '{}'",
                ids[1]
            ),
            // "bob " and "bob" are one name now: this one keeps its old key.
            format!(
                "UPDATE users SET user_name = 'bob ', user_name_lower = 'bob ' WHERE id = '{}'",
                ids[3]
            ),
            format!(
                "UPDATE user_emails SET value_lower = '{}' WHERE user_id = '{}'",
                q(&nfd.to_lowercase()),
                ids[0]
            ),
            format!(
                "UPDATE users SET emails = '[{{\"value\":\"{}\",\"type\":\"work\"}}]' WHERE id = '{}'",
                q(nfd),
                ids[0]
            ),
            format!(
                "UPDATE groups SET display_name = 'Team ', display_name_lower = 'team ' WHERE id = '{group_id}'"
            ),
            "CREATE TABLE rekey_pending (pending BOOLEAN NOT NULL)".to_owned(),
        ],
    );
    // Before: the new keys miss the old rows.
    let before = list(server, "/Users", "userName eq \"Ada\"").await;
    assert_eq!(before["totalResults"], 0, "{before}");

    let store = roster_service::Store::open(&server.database_url, 1).expect("open");
    store.migrate().expect("migrate");
    store.migrate().expect("a second run has nothing to do");
    drop(store);

    let nfc = "Jos\u{e9}@example.com";
    for (filter, id) in [
        (format!("userName eq \"{nfc}\""), &ids[0]),
        (format!("userName eq \"{nfd}\""), &ids[0]),
        (format!("emails.value eq \"{nfc}\""), &ids[0]),
        ("userName eq \"ada\"".to_owned(), &ids[1]),
        (
            "userName eq \"Ada \" and active eq true".to_owned(),
            &ids[1],
        ),
        ("userName eq \"bob\"".to_owned(), &ids[2]),
    ] {
        let body = list(server, "/Users", &filter).await;
        assert_eq!(body["totalResults"], 1, "{filter}: {body}");
        assert_eq!(body["Resources"][0]["id"], id.as_str(), "{filter}");
    }
    let body = list(server, "/Groups", "displayName eq \"team\"").await;
    assert_eq!(body["totalResults"], 1, "{body}");
    // The clashing row is still there, under its old key.
    let (status, bob) = send(server.scim_req(Method::GET, &format!("/Users/{}", ids[3]))).await;
    assert_eq!(status, 200);
    assert_eq!(bob["userName"], "bob ");
    // The NUL is gone from the stored JSON, and the JSON filters answer.
    let (status, ada) = send(server.scim_req(Method::GET, &format!("/Users/{}", ids[1]))).await;
    assert_eq!(status, 200);
    assert_eq!(ada["emails"][0]["display"], "A\u{fffd}", "{ada}");
    let body = list(server, "/Users", r#"emails[type eq "work"]"#).await;
    assert_eq!(body["totalResults"], 4, "{body}");
}
