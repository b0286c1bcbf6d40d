//! `roster`: SCIM 2.0 provisioning and a gRPC directory. See `roster --help`.

mod admin_cli;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use roster::{FacadeConfig, ServiceConfig, StartError};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "SCIM 2.0 provisioning (Okta, Entra ID, ...) and a gRPC directory for SaaS products",
    long_about = "SCIM 2.0 provisioning (Okta, Entra ID, ...) and a gRPC directory for SaaS products.\n\n\
                  Every flag can also be set through the environment variable named in its help."
)]
struct Cli {
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `roster=debug`).
    #[arg(long, env = "ROSTER_LOG", default_value = "info", global = true)]
    log: String,
    /// On SIGTERM or Ctrl-C: stop accepting connections, then give the requests already
    /// accepted this many seconds to finish before exiting.
    #[arg(
        long,
        env = "ROSTER_SHUTDOWN_GRACE",
        default_value_t = 30,
        global = true,
        value_name = "SECONDS"
    )]
    shutdown_grace: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The embedded default: the gRPC service and the SCIM facade in one process (the facade
    /// still calls the service over gRPC). Migrates the database, and on an empty one creates
    /// the tenant `default` and prints its SCIM token and an operator token, once.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        scim: ScimArgs,
        /// Address of the gRPC API (for grpcurl and internal services).
        #[arg(long, env = "ROSTER_GRPC_ADDR", default_value = "127.0.0.1:50051")]
        grpc_addr: String,
    },
    /// The gRPC service alone (split deployment: several can share one PostgreSQL). Does not
    /// migrate unless asked: run `roster migrate` once.
    Service {
        #[command(flatten)]
        db: DbArgs,
        /// Address of the gRPC API.
        #[arg(long, env = "ROSTER_GRPC_ADDR", default_value = "127.0.0.1:50051")]
        grpc_addr: String,
        /// Run pending migrations at start-up.
        #[arg(long, env = "ROSTER_MIGRATE")]
        migrate: bool,
        /// The public SCIM base URL of the facades (e.g. https://roster.example.com/scim/v2),
        /// reported with each tenant.
        #[arg(long, env = "ROSTER_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// The SCIM facade alone, calling a `roster service` over gRPC. Stateless.
    Facade {
        #[command(flatten)]
        scim: ScimArgs,
        /// The gRPC service to call, e.g. http://10.0.0.5:50051.
        #[arg(long, env = "ROSTER_SERVICE_URL")]
        service_url: String,
    },
    /// Applies pending database migrations and exits.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Tenants: create, list, update (the operator's path: works directly on the database).
    Tenant {
        #[command(subcommand)]
        command: admin_cli::TenantCommand,
    },
    /// Tokens: create, list, revoke, regenerate (the operator's path).
    Token {
        #[command(subcommand)]
        command: admin_cli::TokenCommand,
    },
    /// Roles: the tenant's catalog, its default role, and group → role mappings (the
    /// operator's path).
    Role {
        #[command(subcommand)]
        command: admin_cli::RoleCommand,
    },
}

#[derive(Args)]
struct DbArgs {
    /// sqlite://PATH (the embedded default) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "ROSTER_DATABASE_URL",
        default_value = "sqlite://roster.db"
    )]
    database_url: String,
    /// Database connections, each served by its own database thread. Default: the number
    /// of cores for SQLite (at least 2), 16 for PostgreSQL.
    #[arg(long, env = "ROSTER_DB_POOL_SIZE")]
    pool_size: Option<u32>,
    /// The longest one database statement of a request may run, in milliseconds (0: no
    /// limit); past it the request answers 503 with Retry-After.
    #[arg(long, env = "ROSTER_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    statement_timeout_ms: u64,
}

impl DbArgs {
    fn statement_timeout(&self) -> Option<std::time::Duration> {
        (self.statement_timeout_ms > 0)
            .then(|| std::time::Duration::from_millis(self.statement_timeout_ms))
    }

    fn pool_size(&self) -> u32 {
        self.pool_size.unwrap_or_else(|| {
            if self.database_url.starts_with("postgres") {
                16
            } else {
                std::thread::available_parallelism()
                    .map(|n| u32::try_from(n.get()).unwrap_or(2))
                    .unwrap_or(2)
                    .max(2)
            }
        })
    }
}

#[derive(Args)]
struct ScimArgs {
    /// Address of the SCIM API.
    #[arg(long, env = "ROSTER_SCIM_ADDR", default_value = "127.0.0.1:8080")]
    scim_addr: String,
    /// The public SCIM base URL, when behind a proxy (e.g. https://roster.example.com/scim/v2).
    /// Default: http://<Host header>/scim/v2.
    #[arg(long, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "ROSTER_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Refuse User and Group attributes that no served schema declares (400 invalidValue)
    /// instead of keeping them as written.
    #[arg(long, env = "ROSTER_STRICT_SCHEMA")]
    strict_schema: bool,
}

impl ScimArgs {
    fn config(&self) -> FacadeConfig {
        FacadeConfig {
            public_base_url: self.public_url.clone(),
            body_limit: self.body_limit,
            strict_schema: self.strict_schema,
            ..FacadeConfig::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command, Duration::from_secs(cli.shutdown_grace)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn bind(addr: &str, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))
}

/// Prints the secrets minted for a new database, once.
fn print_secrets(b: &roster::Bootstrap, base: &str, grpc_at: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Roster created the tenant {:?}. These secrets are shown once:",
        b.tenant
    )?;
    writeln!(out, "  SCIM base URL:  {base}")?;
    writeln!(out, "  SCIM token:     {}", b.scim_token)?;
    writeln!(
        out,
        "  operator token: {}  (gRPC admin, e.g. grpcurl on {grpc_at})",
        b.operator_token
    )?;
    out.flush()
}

/// Completes on SIGTERM (what orchestrators send) or SIGINT (Ctrl-C).
async fn stop_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot handle Ctrl-C")?;
        Ok("Ctrl-C")
    }
}

/// Serves until a stop signal (or a server's failure), then stops gracefully: no new
/// connections, and the requests already accepted finish within `grace`.
async fn until_signal(mut running: roster::Running, grace: Duration) -> anyhow::Result<()> {
    let signal = stop_signal();
    tokio::select! {
        got = signal => {
            let got = got?;
            tracing::info!(signal = got, grace_seconds = grace.as_secs(), "stopping: finishing the requests in flight");
        }
        _ = running.wait() => {}
    }
    if running.drain(grace).await {
        tracing::info!("stopped");
    } else {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "stopped with requests still in flight after the grace period"
        );
    }
    Ok(())
}

fn run(command: Command, grace: Duration) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            db,
            scim,
            grpc_addr,
        } => runtime()?.block_on(async {
            let grpc = bind(&grpc_addr, "gRPC").await?;
            let scim_listener = bind(&scim.scim_addr, "SCIM").await?;
            let base = match &scim.public_url {
                Some(url) => url.clone(),
                None => format!("http://{}/scim/v2", scim_listener.local_addr()?),
            };
            let service = roster::open_service(&ServiceConfig {
                pool_size: db.pool_size(),
                statement_timeout: db.statement_timeout(),
                scim_base_url: base.clone(),
                ..ServiceConfig::new(&db.database_url)
            })?;
            let transport = roster::in_process(service.routes.clone());
            let running = roster::start(
                Some(service.routes),
                Some(grpc),
                Some((scim_listener, transport, scim.config())),
            )?;
            let grpc_at = running.grpc_addr.map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(scim = %base, grpc = %grpc_at, "roster is serving");
            if let Some(b) = &service.bootstrap {
                // A closed stdout must not stop the server (println! would panic).
                let shown = print_secrets(b, &base, &grpc_at);
                if let Err(e) = shown {
                    tracing::warn!(error = %e, "could not print the bootstrap secrets");
                }
            }
            until_signal(running, grace).await
        }),
        Command::Service {
            db,
            grpc_addr,
            migrate,
            public_url,
        } => runtime()?.block_on(async {
            let service = roster::open_service(&ServiceConfig {
                pool_size: db.pool_size(),
                statement_timeout: db.statement_timeout(),
                migrate,
                scim_base_url: public_url.unwrap_or_default(),
                bootstrap: false,
                ..ServiceConfig::new(&db.database_url)
            })?;
            let grpc = bind(&grpc_addr, "gRPC").await?;
            let running = roster::start(Some(service.routes), Some(grpc), None)?;
            tracing::info!(grpc = ?running.grpc_addr, "roster service is serving");
            until_signal(running, grace).await
        }),
        Command::Facade { scim, service_url } => runtime()?.block_on(async {
            let transport = roster::remote(&service_url)?;
            let listener = bind(&scim.scim_addr, "SCIM").await?;
            let running = roster::start(None, None, Some((listener, transport, scim.config())))?;
            tracing::info!(scim = ?running.scim_addr, service = %service_url, "roster facade is serving");
            until_signal(running, grace).await
        }),
        Command::Migrate { db } => {
            let store = roster::Store::open(&db.database_url, 1).map_err(StartError::from)?;
            let n = store.migrate().map_err(StartError::from)?;
            eprintln!("applied {n} migration(s)");
            Ok(())
        }
        Command::Tenant { command } => admin_cli::tenant(command),
        Command::Token { command } => admin_cli::token(command),
        Command::Role { command } => admin_cli::role(command),
    }
}
