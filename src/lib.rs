//! Starting Roster's processes: the embedded default (service + facade in one process, the
//! facade still speaking gRPC to the service), the service alone, and the facade alone.
//! `main.rs` parses the command line and calls these; the end-to-end tests call them too.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

pub use roster_facade::{FacadeConfig, Transport};
pub use roster_service::{Bootstrap, Store};

/// Errors of starting a process.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] roster_service::StoreError),
    #[error("{0}")]
    Domain(#[from] roster_service::domain::DomainError),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("invalid service URL {url:?}: {source}")]
    ServiceUrl {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How the service opens its database.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub database_url: String,
    pub pool_size: u32,
    /// Run pending migrations at start-up (the embedded default does; replicas should not).
    pub migrate: bool,
    /// Create the `default` tenant and its tokens on an empty database.
    pub bootstrap: bool,
    pub hashing_threads: usize,
    /// Reported as each tenant's SCIM base URL (e.g. `https://roster.example.com/scim/v2`).
    pub scim_base_url: String,
    /// PostgreSQL with autovacuum off: how often Roster checks whether its tables need
    /// `ANALYZE` (see `roster_service::storage::maintenance`).
    pub analyze_interval: std::time::Duration,
    /// The longest one statement of a request may run (`None`: unbounded); past it the
    /// request answers 503 with `Retry-After` (gRPC `UNAVAILABLE`).
    pub statement_timeout: Option<Duration>,
}

/// The default statement timeout: well under the 60 s after which Okta gives up.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

impl ServiceConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        ServiceConfig {
            database_url: database_url.into(),
            pool_size: 4,
            migrate: true,
            bootstrap: true,
            hashing_threads: 1,
            scim_base_url: String::new(),
            analyze_interval: roster_service::storage::maintenance::INTERVAL,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
        }
    }
}

/// An opened service: its store, its gRPC routes, and the secrets minted if the database was
/// new.
pub struct Service {
    pub store: Store,
    pub routes: tonic::service::Routes,
    pub bootstrap: Option<Bootstrap>,
}

/// Opens the store (migrating and bootstrapping as configured) and builds the gRPC routes.
pub fn open_service(config: &ServiceConfig) -> Result<Service, StartError> {
    let store = Store::open_with(
        &config.database_url,
        &roster_service::storage::StoreOptions {
            statement_timeout: config.statement_timeout,
            ..roster_service::storage::StoreOptions::new(config.pool_size)
        },
    )?;
    if config.migrate {
        store.migrate()?;
    }
    roster_service::storage::maintenance::start(&store, config.analyze_interval)?;
    let bootstrap = if config.bootstrap {
        roster_service::bootstrap(&store)?
    } else {
        None
    };
    let api = roster_service::Api::new(store.clone(), config.hashing_threads)
        .with_scim_base_url(&config.scim_base_url);
    let routes = roster_service::routes(api)?.prepare();
    Ok(Service {
        store,
        routes,
        bootstrap,
    })
}

/// The facade's transport to a service in the same process: requests cross the real gRPC
/// encoding, without a socket.
pub fn in_process(routes: tonic::service::Routes) -> Transport {
    let routes = ServiceExt::<http::Request<tonic::body::Body>>::map_err(
        routes,
        |e: Infallible| -> Box<dyn std::error::Error + Send + Sync> { match e {} },
    );
    Transport::new(routes)
}

/// The facade's transport to a service elsewhere (`http://HOST:PORT`). Connects lazily and
/// reconnects on its own.
pub fn remote(url: &str) -> Result<Transport, StartError> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|source| StartError::ServiceUrl {
            url: url.to_owned(),
            source,
        })?
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(Transport::new(channel.map_err(
        |e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) },
    )))
}

/// A running process, stopped by [`Running::shutdown`] or when dropped.
pub struct Running {
    pub scim_addr: Option<SocketAddr>,
    pub grpc_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops serving and waits for the servers to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// Stops accepting connections, lets the requests already accepted finish for at most
    /// `grace`, then returns. Returns whether every request finished in time (when not, the
    /// servers' remaining tasks are aborted and their connections closed).
    pub async fn drain(mut self, grace: std::time::Duration) -> bool {
        let _ = self.stop.send(true);
        let mut tasks = std::mem::take(&mut self.tasks);
        let finished = tokio::time::timeout(grace, async {
            for task in &mut tasks {
                let _ = task.await;
            }
        })
        .await
        .is_ok();
        if !finished {
            for task in &tasks {
                task.abort();
            }
        }
        finished
    }

    /// Completes when any server stops on its own (an error) or the process is asked to stop.
    pub async fn wait(&mut self) {
        if let Some(task) = self.tasks.first_mut() {
            let _ = task.await;
            // A finished task is not awaited again.
            self.tasks.remove(0);
        }
    }

    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves the gRPC routes on `grpc` (if given) and the SCIM facade on `scim` (if given), the
/// facade reaching the service through `transport`.
pub fn start(
    routes: Option<tonic::service::Routes>,
    grpc: Option<TcpListener>,
    scim: Option<(TcpListener, Transport, FacadeConfig)>,
) -> Result<Running, StartError> {
    let (stop, _) = watch::channel(false);
    let mut running = Running {
        scim_addr: None,
        grpc_addr: None,
        stop,
        tasks: Vec::new(),
    };
    if let (Some(listener), Some(routes)) = (grpc, routes) {
        running.grpc_addr = Some(listener.local_addr()?);
        let stopped = running.stopped();
        running.tasks.push(tokio::spawn(async move {
            if let Err(e) = roster_service::serve(listener, routes, stopped).await {
                tracing::error!(error = %e, "the gRPC server stopped");
            }
        }));
    }
    if let Some((listener, transport, config)) = scim {
        running.scim_addr = Some(listener.local_addr()?);
        let stopped = running.stopped();
        let router = roster_facade::router(transport, config);
        running.tasks.push(tokio::spawn(async move {
            if let Err(e) = roster_facade::serve(listener, router, stopped).await {
                tracing::error!(error = %e, "the SCIM server stopped");
            }
        }));
    }
    Ok(running)
}
