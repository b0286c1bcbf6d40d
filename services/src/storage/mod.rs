//! Storage: one diesel code path over SQLite (the embedded default) and PostgreSQL.
//!
//! The backend comes from the URL scheme (`sqlite://PATH`, `postgres://…`); anything else is an
//! error, never a silently created file. Diesel is synchronous: every piece of database work
//! runs on the store's database threads through [`Store::run`], never on the async workers.

pub mod filter;
pub mod groups;
pub mod maintenance;
pub mod paging;
pub mod roles;
pub mod schema;
pub mod tenants;
pub mod tokens;
pub mod users;

use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::domain::DomainError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path (`sqlite://roster.db`, `sqlite:///var/lib/roster.db`) or `:memory:`.
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                return Err(StoreError::Config(format!(
                    "{url:?} names no SQLite file (try sqlite://roster.db)"
                )));
            }
            Ok(DatabaseUrl::Sqlite(rest.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://USER@HOST/DB"
            )))
        }
    }

    fn establish(&self) -> Result<DbConnection, StoreError> {
        match self {
            DatabaseUrl::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(path)
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                // WAL lets readers run beside the writer; NORMAL sync is safe in WAL mode.
                // The busy timeout first: switching to WAL takes a lock that another
                // process (a CLI command beside the server) may be holding.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000;
                     PRAGMA journal_mode = WAL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA case_sensitive_like = ON;
                     PRAGMA cache_size = -2000;
                     PRAGMA temp_store = MEMORY;",
                )
                .map_err(|e| StoreError::Connect(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => diesel::PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(|e| StoreError::Connect(e.to_string())),
        }
    }
}

/// Errors of opening or migrating the store (request-time errors are `DomainError`s).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Config(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("cannot run the migrations: {0}")]
    Migrate(String),
    #[error("database error: {0}")]
    Query(#[from] DieselError),
    #[error("database threads: {0}")]
    Pool(String),
}

/// Whether an error means the connection itself is gone (the server restarted, the network
/// dropped): such a connection is not reused.
fn is_connection_error(e: &DomainError) -> bool {
    let DomainError::Internal(source) = e else {
        return false;
    };
    match source.downcast_ref::<DieselError>() {
        Some(DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => true,
        Some(DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
            let m = info.message();
            m.contains("server closed the connection")
                || m.contains("connection to server")
                || m.contains("terminating connection")
                || m.contains("no connection to the server")
        }
        _ => false,
    }
}

/// What the database threads share.
struct Shared {
    url: DatabaseUrl,
    backend: Backend,
    write_lock: Mutex<()>,
}

/// A database thread's own connection: opened at start, reopened after it breaks.
type Slot = Option<DbConnection>;

type Job = Box<dyn FnOnce(&Shared, &mut Slot) + Send>;

/// The service's handle on the database.
///
/// Diesel is synchronous, so all database work runs on a fixed set of database threads (one
/// per pooled connection), never on the async workers. Requests reach them through one
/// queue: under load a thread takes job after job without sleeping in between, which costs far
/// fewer context switches than a blocking-pool hand-off per request. On SQLite a one-writer
/// lock keeps concurrent writers from spinning on `SQLITE_BUSY`.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    queues: Arc<Queues>,
}

/// The database threads' queues. When the last [`Store`] goes, the queues close and the
/// threads are joined, so that no thread is still using a connection while the process exits.
struct Queues {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    /// SQLite only: the one writer thread's queue (see [`writer_loop`]).
    writes: Option<crossbeam_channel::Sender<WriteJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Queues {
    fn drop(&mut self) {
        self.jobs.take();
        self.writes.take();
        let me = std::thread::current().id();
        for thread in self.threads.drain(..) {
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

/// What a write job hands back: whether it succeeded, and how to answer its caller once the
/// transaction it ran in has committed (`None`) or failed to (`Some(error)`).
type Finish = Box<dyn FnOnce(Option<&DieselError>) + Send>;
type WriteJob = Box<dyn FnOnce(&mut Db<'_>) -> (bool, Finish) + Send>;

/// Most write jobs committed together.
const MAX_GROUP_COMMIT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.shared.backend)
            .finish()
    }
}

impl Store {
    /// Opens `connections` connections to `url` and as many database threads. Does not
    /// migrate: see [`Store::migrate`].
    pub fn open(url: &str, connections: u32) -> Result<Store, StoreError> {
        let url = DatabaseUrl::parse(url)?;
        let backend = match url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        let connections = connections.max(1);
        // Open every connection now: a bad URL or an unreachable server fails here, with the
        // real error.
        let mut opened = Vec::with_capacity(connections as usize + 1);
        for _ in 0..=connections {
            opened.push(url.establish()?);
        }
        let shared = Arc::new(Shared {
            url,
            backend,
            write_lock: Mutex::new(()),
        });
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let mut queues = Queues {
            jobs: Some(jobs),
            writes: None,
            threads: Vec::new(),
        };
        if backend == Backend::Sqlite {
            let (writes, write_queue) = crossbeam_channel::unbounded::<WriteJob>();
            let shared = Arc::clone(&shared);
            let mut slot = opened.pop();
            let thread = std::thread::Builder::new()
                .name("roster-db-writer".into())
                .spawn(move || writer_loop(&shared, &mut slot, &write_queue))
                .map_err(|e| StoreError::Pool(format!("cannot start the writer thread: {e}")))?;
            queues.writes = Some(writes);
            queues.threads.push(thread);
        }
        for n in 0..connections {
            let queue = queue.clone();
            let shared = Arc::clone(&shared);
            let mut slot = opened.pop();
            let thread = std::thread::Builder::new()
                .name(format!("roster-db-{n}"))
                .spawn(move || {
                    // Ends when every Store handle is gone.
                    while let Ok(job) = queue.recv() {
                        // A panic in one job must not take the thread down with it.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&shared, &mut slot)
                        }))
                        .is_err()
                        {
                            slot = None;
                            tracing::error!("a database job panicked");
                        }
                    }
                })
                .map_err(|e| StoreError::Pool(format!("cannot start a database thread: {e}")))?;
            queues.threads.push(thread);
        }
        Ok(Store {
            shared,
            queues: Arc::new(queues),
        })
    }

    pub fn backend(&self) -> Backend {
        self.shared.backend
    }

    /// Applies the pending migrations of this backend; returns how many ran.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.shared.url.establish()?;
        let migrations = match self.shared.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let done = conn
            .run_pending_migrations(migrations)
            .map_err(|e| StoreError::Migrate(e.to_string()))?
            .len();
        if let Some(rekeyed) = users::finish_name_keys(&mut conn)? {
            tracing::info!(?rekeyed, "recomputed the stored name keys");
        }
        Ok(done)
    }

    /// Runs `f` on a database thread, with that thread's connection.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DomainError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T, DomainError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |shared: &Shared, slot: &mut Slot| {
            // The caller may have gone (a cancelled request): nothing to tell it then.
            let _ = reply.send(shared.run(slot, f));
        });
        self.queues
            .jobs
            .as_ref()
            .ok_or_else(|| DomainError::internal("the database threads have stopped"))?
            .send(job)
            .map_err(|_| DomainError::internal("the database threads have stopped"))?;
        answer
            .await
            .map_err(|_| DomainError::internal("a database thread dropped a request"))?
    }

    /// Runs `f`, which writes through [`Db::write`], like [`Store::run`]. On SQLite it goes to
    /// the writer thread, which commits concurrent writes together: each in a savepoint of one
    /// transaction, so that one's failure undoes only its own changes, and each caller answered
    /// only once the whole transaction has committed.
    pub async fn run_write<T, F>(&self, f: F) -> Result<T, DomainError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T, DomainError> + Send + 'static,
    {
        let Some(writes) = &self.queues.writes else {
            return self.run(f).await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |db: &mut Db<'_>| {
            let result = f(db);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit_error: Option<&DieselError>| {
                let answer = match commit_error {
                    None => result,
                    Some(e) => Err(DomainError::internal(e.to_string())),
                };
                let _ = reply.send(answer);
            });
            (ok, finish)
        });
        writes
            .send(job)
            .map_err(|_| DomainError::internal("the writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| DomainError::internal("the writer thread dropped a request"))?
    }

    /// The synchronous form of [`Store::run`], on the calling thread with a connection of its
    /// own (for the CLI and start-up).
    pub fn run_blocking<T>(
        &self,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        self.shared.run(&mut None, f)
    }
}

impl Shared {
    /// The slot's connection, opened if it has none.
    fn connection<'s>(&self, slot: &'s mut Slot) -> Result<&'s mut DbConnection, DomainError> {
        if slot.is_none() {
            *slot = Some(self.url.establish().map_err(DomainError::internal)?);
        }
        slot.as_mut()
            .ok_or_else(|| DomainError::internal("no database connection"))
    }

    fn run<T>(
        &self,
        slot: &mut Slot,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        let conn = self.connection(slot)?;
        let result = f(&mut Db {
            conn,
            write_lock: &self.write_lock,
            batched: false,
        });
        if let Err(e) = &result
            && is_connection_error(e)
        {
            // Opened afresh for the next job.
            *slot = None;
        }
        result
    }
}

/// A checked-out connection, with the means to open a write transaction.
pub struct Db<'a> {
    pub(crate) conn: &'a mut DbConnection,
    write_lock: &'a Mutex<()>,
    /// Inside the SQLite writer's transaction (a savepoint of it): writes need no
    /// transaction of their own.
    batched: bool,
}

/// The SQLite writer: takes the queued write jobs, runs each in a savepoint of one
/// `BEGIN IMMEDIATE` transaction, commits once, then answers every caller. Under load a commit
/// carries many writes, so the pages they share are written to the WAL once.
fn writer_loop(shared: &Shared, slot: &mut Slot, queue: &crossbeam_channel::Receiver<WriteJob>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP_COMMIT {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let finishes = run_batch(shared, slot, batch);
        for (finish, error) in finishes {
            finish(error.as_ref());
        }
    }
}

/// Runs a batch of write jobs in one transaction; returns how to answer each.
fn run_batch(
    shared: &Shared,
    slot: &mut Slot,
    batch: Vec<WriteJob>,
) -> Vec<(Finish, Option<DieselError>)> {
    let conn = match shared.connection(slot) {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            return batch
                .into_iter()
                .map(|job| fail_unrun(job, &message))
                .collect();
        }
    };
    let _guard = shared.write_lock.lock();
    if let Err(e) = conn.batch_execute("BEGIN IMMEDIATE") {
        let message = e.to_string();
        return batch
            .into_iter()
            .map(|job| fail_unrun(job, &message))
            .collect();
    }
    let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = conn.batch_execute("SAVEPOINT job");
        let (ok, finish) = {
            let mut db = Db {
                conn: &mut *conn,
                write_lock: &shared.write_lock,
                batched: savepoint.is_ok(),
            };
            // A panic in one job must not take the writer down with it.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut db))).unwrap_or_else(
                |_| {
                    tracing::error!("a write job panicked");
                    (false, Box::new(|_: Option<&DieselError>| {}) as Finish)
                },
            )
        };
        let undo = if ok {
            conn.batch_execute("RELEASE job")
        } else {
            conn.batch_execute("ROLLBACK TO job; RELEASE job")
        };
        if let Err(e) = undo {
            tracing::error!(error = %e, "a savepoint of the writer's transaction failed");
        }
        finishes.push(finish);
    }
    let commit = conn.batch_execute("COMMIT");
    if commit.is_err() {
        let _ = conn.batch_execute("ROLLBACK");
    }
    let error = commit.err();
    let message = error.as_ref().map(|e| e.to_string());
    finishes
        .into_iter()
        .map(|finish| {
            let e = message
                .as_ref()
                .map(|m| DieselError::QueryBuilderError(m.clone().into()));
            (finish, e)
        })
        .collect()
}

/// Answers a job that never ran because the transaction could not begin.
fn fail_unrun(job: WriteJob, message: &str) -> (Finish, Option<DieselError>) {
    let message = message.to_owned();
    let finish: Finish = Box::new(move |_| {
        drop(job);
    });
    (finish, Some(DieselError::QueryBuilderError(message.into())))
}

/// How many times a write transaction is tried when the database reports a serialization
/// failure or a concurrent change (PostgreSQL and distributed engines).
const WRITE_ATTEMPTS: usize = 8;

impl Db<'_> {
    /// Runs `f` inside one write transaction, retried on serialization failures.
    ///
    /// SQLite: `BEGIN IMMEDIATE` under the process's one-writer lock (readers are never
    /// blocked: WAL). PostgreSQL: an ordinary transaction; rows changed concurrently are
    /// detected by the version checks of the queries and answered with [`TxError::Retry`].
    pub fn write<T>(
        &mut self,
        mut f: impl FnMut(&mut DbConnection) -> Result<T, TxError>,
    ) -> Result<T, DomainError> {
        if self.batched {
            // One writer, so no concurrent change can make this attempt stale.
            return match f(self.conn) {
                Ok(v) => Ok(v),
                Err(TxError::Retry) => {
                    Err(DomainError::internal("a batched write was asked to retry"))
                }
                Err(TxError::Db(e)) => Err(map_db_error(e)),
                Err(TxError::Domain(e)) => Err(e),
            };
        }
        for _ in 0..WRITE_ATTEMPTS {
            let outcome = match self.conn {
                DbConnection::Sqlite(_) => {
                    let _guard = self
                        .write_lock
                        .lock()
                        .map_err(|_| DomainError::internal("the SQLite writer lock is poisoned"))?;
                    sqlite_immediate(self.conn, &mut f)
                }
                DbConnection::Postgres(_) => self.conn.transaction(|c| f(c)),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(TxError::Retry) => continue,
                Err(TxError::Db(e)) if is_serialization_failure(&e) => continue,
                Err(TxError::Db(e)) => return Err(map_db_error(e)),
                Err(TxError::Domain(e)) => return Err(e),
            }
        }
        Err(DomainError::internal(
            "the write kept conflicting with concurrent writes; try again",
        ))
    }
}

fn sqlite_immediate<T>(
    conn: &mut DbConnection,
    f: &mut impl FnMut(&mut DbConnection) -> Result<T, TxError>,
) -> Result<T, TxError> {
    conn.batch_execute("BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(v) => match conn.batch_execute("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = conn.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// The error of one attempt of a write transaction.
#[derive(Debug)]
pub enum TxError {
    /// A concurrent writer changed the row: run the whole transaction again.
    Retry,
    Db(DieselError),
    Domain(DomainError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Db(e)
    }
}

impl From<DomainError> for TxError {
    fn from(e: DomainError) -> Self {
        TxError::Domain(e)
    }
}

fn is_serialization_failure(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
    )
}

/// Maps a database error that escaped the query code: uniqueness clashes are named by the
/// query code itself (see [`unique_violation`]); the rest is internal.
pub fn map_db_error(e: DieselError) -> DomainError {
    match e {
        DieselError::NotFound => DomainError::not_found("resource", ""),
        other => DomainError::internal(other),
    }
}

/// Whether `e` is a unique-constraint violation.
pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Turns a unique violation into a `uniqueness` conflict on `attribute`.
pub fn unique_violation(e: DieselError, attribute: &'static str, value: &str) -> TxError {
    if is_unique_violation(&e) {
        TxError::Domain(DomainError::Conflict {
            attribute,
            detail: format!("{attribute} {value:?} is already taken"),
        })
    } else {
        TxError::Db(e)
    }
}

impl From<DieselError> for DomainError {
    fn from(e: DieselError) -> Self {
        map_db_error(e)
    }
}

/// Now, as stored: UTC without an offset, truncated to microseconds (both backends keep µs).
pub fn now() -> PrimitiveDateTime {
    let now = OffsetDateTime::now_utc();
    let micros = now.microsecond();
    let now = now.replace_nanosecond(micros * 1000).unwrap_or(now);
    PrimitiveDateTime::new(now.date(), now.time())
}

/// A stored timestamp as UTC.
pub fn utc(t: PrimitiveDateTime) -> OffsetDateTime {
    t.assume_utc()
}

/// A new resource id: a time-ordered UUID (v7), so that ids sort in creation order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Runs a query, written once, on the concrete connection of either backend.
///
/// Through the backend-neutral connection diesel rebuilds a query's SQL text on every call
/// to find its cached statement; on the concrete connection a query with a fixed shape is
/// found by its type. Hot queries go through here (and batch inserts must: they do not pass
/// through the neutral connection at all).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::storage::DbConnection::Sqlite($c) => $body,
            $crate::storage::DbConnection::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Rows are inserted and looked up in chunks of this many bound values.
pub const CHUNK: usize = 500;

/// The first row of a point lookup. Point lookups load without `LIMIT`: SQLite binds a
/// `LIMIT ?` parameter into its plan, and re-binding it expires the cached statement, which
/// then re-compiles on every call.
pub fn first<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}
