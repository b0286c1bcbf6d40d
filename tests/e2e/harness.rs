//! Starts the real Roster (gRPC service + SCIM facade) on 127.0.0.1:0 over a real database:
//! a fresh SQLite file, or a fresh PostgreSQL database from `TEST_DATABASE_URL`.

use std::path::PathBuf;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test, removed when dropped.
enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    fn create(backend: Backend) -> (TestDb, String) {
        let tag = uuid::Uuid::now_v7().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("roster-test-{tag}.db"));
                let url = format!("sqlite://{}", path.display());
                (TestDb::Sqlite(path), url)
            }
            Backend::Postgres => {
                let admin_url =
                    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
                let mut conn = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin_url} ({e}).\n\
                         The PostgreSQL suite needs it: start it with\n  \
                         pg_ctlcluster --skip-systemctl-redirect 15 main start\n\
                         or point TEST_DATABASE_URL at a server where the user may CREATE DATABASE."
                    )
                });
                let name = format!("roster_test_{tag}");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
                let url = match admin_url.rsplit_once('/') {
                    Some((server, _db)) => format!("{server}/{name}"),
                    None => panic!("TEST_DATABASE_URL {admin_url} names no database"),
                };
                (TestDb::Postgres { admin_url, name }, url)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            TestDb::Postgres { admin_url, name } => {
                if let Ok(mut conn) = PgConnection::establish(admin_url) {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn);
                }
            }
        }
    }
}

/// A fresh, empty database for a test that starts Roster itself (e.g. the real binary); it is
/// removed when dropped.
pub struct FreshDb(#[allow(dead_code)] TestDb);

/// A fresh, empty database on `backend` and its URL.
pub fn fresh_database(backend: Backend) -> (FreshDb, String) {
    let (db, url) = TestDb::create(backend);
    (FreshDb(db), url)
}

/// A running Roster and the secrets it minted.
pub struct TestServer {
    /// e.g. `http://127.0.0.1:41234/scim/v2`
    pub scim: String,
    /// e.g. `http://127.0.0.1:41235`
    pub grpc: String,
    pub scim_token: String,
    pub operator_token: String,
    pub database_url: String,
    pub http: reqwest::Client,
    running: Option<roster::Running>,
    _db: TestDb,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, roster::FacadeConfig::default()).await
    }

    /// A server whose facade runs with `config`.
    pub async fn start_with(backend: Backend, config: roster::FacadeConfig) -> TestServer {
        Self::start_service_with(backend, config, |service| service).await
    }

    /// A server whose facade runs with `config`, and whose service runs with the test's
    /// usual service config as `service` changes it.
    pub async fn start_service_with(
        backend: Backend,
        config: roster::FacadeConfig,
        service: impl FnOnce(roster::ServiceConfig) -> roster::ServiceConfig,
    ) -> TestServer {
        let (db, database_url) = TestDb::create(backend);
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
        let scim = TcpListener::bind("127.0.0.1:0").await.expect("bind SCIM");
        let scim_base = format!("http://{}/scim/v2", scim.local_addr().expect("scim addr"));
        let service = roster::open_service(&service(roster::ServiceConfig {
            scim_base_url: scim_base,
            ..roster::ServiceConfig::new(&database_url)
        }))
        .unwrap_or_else(|e| panic!("cannot open {database_url}: {e}"));
        let boot = service
            .bootstrap
            .as_ref()
            .map(|b| (b.scim_token.clone(), b.operator_token.clone()));
        let (scim_token, operator_token) = boot.expect("a new database is bootstrapped");
        let transport = roster::in_process(service.routes.clone());
        let running = roster::start(
            Some(service.routes),
            Some(grpc),
            Some((scim, transport, config)),
        )
        .expect("start");
        let scim = format!("http://{}/scim/v2", running.scim_addr.expect("scim addr"));
        let grpc = format!("http://{}", running.grpc_addr.expect("grpc addr"));
        TestServer {
            scim,
            grpc,
            scim_token,
            operator_token,
            database_url,
            http: reqwest::Client::new(),
            running: Some(running),
            _db: db,
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// A SCIM request with the bootstrap SCIM token.
    pub fn scim_req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.scim))
            .bearer_auth(&self.scim_token)
    }

    /// Creates the tenant `name` (as the operator) and returns a new SCIM token of it.
    pub async fn scim_tenant(&self, name: &str) -> String {
        use roster_proto::v1 as pb;
        let mut admin = pb::admin_service_client::AdminServiceClient::new(self.channel().await);
        admin
            .create_tenant(authed(
                &self.operator_token,
                pb::CreateTenantRequest {
                    name: name.into(),
                    password_policy: 0,
                },
            ))
            .await
            .expect("create tenant");
        admin
            .create_token(authed(
                &self.operator_token,
                pb::CreateTokenRequest {
                    tenant: name.into(),
                    kind: pb::TokenKind::Scim as i32,
                    description: format!("{name} SCIM"),
                    ..Default::default()
                },
            ))
            .await
            .expect("create token")
            .into_inner()
            .secret
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc.clone())
            .expect("grpc url")
            .connect()
            .await
            .expect("connect gRPC")
    }
}

/// A gRPC request carrying `token`.
pub fn authed<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    req
}

/// Sends `req` and returns the status and the JSON body (Null when empty), checking that every
/// response with a body is `application/scim+json`.
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.bytes().await.expect("body");
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    assert_eq!(
        ctype.as_deref(),
        Some("application/scim+json"),
        "content type of a {status} response"
    );
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"));
    (status, body)
}

/// Asserts a SCIM error body: schema, status as a string, detail, and scimType (or its absence).
pub fn assert_scim_error(body: &Value, status: u16, scim_type: Option<&str>) {
    assert_eq!(
        body["schemas"],
        serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{body}"
    );
    assert_eq!(body["status"], Value::String(status.to_string()), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    match scim_type {
        Some(t) => assert_eq!(body["scimType"], t, "{body}"),
        None => assert!(body.get("scimType").is_none(), "{body}"),
    }
}

/// Runs each listed test on SQLite and on PostgreSQL; `config = EXPR;` first starts the facade
/// with that `roster::FacadeConfig`.
macro_rules! on_both_backends {
    (config = $config:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = $crate::harness::TestServer::start_with($crate::harness::Backend::Sqlite, $config).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = $crate::harness::TestServer::start_with($crate::harness::Backend::Postgres, $config).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::harness::on_both_backends!(config = roster::FacadeConfig::default(); $($name),*);
    };
}
pub(crate) use on_both_backends;
