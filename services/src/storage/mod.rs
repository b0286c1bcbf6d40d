//! Storage: one diesel code path over SQLite (the embedded default) and PostgreSQL.
//!
//! The backend comes from the URL scheme (`sqlite://PATH`, `postgres://…`); anything else is an
//! error, never a silently created file. Diesel is synchronous: every piece of database work
//! runs on the store's database threads through [`Store::run`], never on the async workers.
//!
//! Bounded work: each tenant's jobs wait in the tenant's own lane, lanes are served in turn
//! and no lane runs on every thread at once (see [`Lanes`]), so one tenant's expensive requests
//! cannot hold back another's; and every statement a request runs is bounded by the statement
//! timeout (PostgreSQL's `statement_timeout`; on SQLite, which has none, a deadline checked by
//! the filters' SQL, see [`deadline`]). A statement past it is [`DomainError::Timeout`].

pub mod filter;
pub mod groups;
pub mod maintenance;
pub mod paging;
pub mod roles;
pub mod schema;
pub mod tenants;
pub mod tokens;
pub mod users;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

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

    /// Opens a connection; `timeout` bounds each statement run on it (none: unbounded).
    fn establish(&self, timeout: Option<Duration>) -> Result<DbConnection, StoreError> {
        match self {
            DatabaseUrl::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(path)
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                // On every connection: compiled filters call it (it holds unless a database
                // thread set a deadline that has passed).
                deadline::register(&mut conn).map_err(|e| StoreError::Connect(e.to_string()))?;
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
            DatabaseUrl::Postgres(url) => {
                let mut conn = diesel::PgConnection::establish(url)
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                // No JIT: its compilation of a large filter takes seconds that no timeout can
                // interrupt (measured: 2 s before a 50 ms statement_timeout could fire), and
                // Roster's queries are short ones, for which JIT is a cost and never a gain.
                conn.batch_execute("SET jit = off")
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                if let Some(t) = timeout {
                    // Milliseconds, at least one (0 would mean "no timeout").
                    let ms = t.as_millis().clamp(1, i32::MAX as u128);
                    conn.batch_execute(&format!("SET statement_timeout = {ms}"))
                        .map_err(|e| StoreError::Connect(e.to_string()))?;
                }
                Ok(DbConnection::Postgres(conn))
            }
        }
    }
}

/// How the store runs its database work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Database connections, each served by its own database thread.
    pub connections: u32,
    /// The longest one statement of a request may run (`None`: unbounded). Not applied to
    /// migrations nor to [`Store::run_blocking`] (the CLI, start-up).
    pub statement_timeout: Option<Duration>,
    /// The most jobs of one tenant running at once (`None`: [`default_tenant_jobs`]).
    pub tenant_jobs: Option<usize>,
}

impl StoreOptions {
    pub fn new(connections: u32) -> Self {
        StoreOptions {
            connections,
            statement_timeout: None,
            tenant_jobs: None,
        }
    }
}

/// The most jobs of one tenant that run at once on `threads` database threads: all but a
/// quarter of them (at least one kept for the other tenants, when there are two threads or
/// more).
pub fn default_tenant_jobs(threads: usize) -> usize {
    if threads <= 1 {
        1
    } else {
        threads - (threads / 4).max(1)
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
    /// Bounds each statement of the database threads' jobs.
    statement_timeout: Option<Duration>,
}

/// A database thread's own connection: opened at start, reopened after it breaks.
type Slot = Option<DbConnection>;

type Job = Box<dyn FnOnce(&Shared, &mut Slot) + Send>;

/// The service's handle on the database.
///
/// Diesel is synchronous, so all database work runs on a fixed set of database threads (one
/// per pooled connection), never on the async workers. Requests reach them through the
/// tenants' lanes ([`Lanes`]): under load a thread takes job after job without sleeping in
/// between, which costs far fewer context switches than a blocking-pool hand-off per request,
/// and takes them from each waiting tenant in turn. On SQLite a one-writer lock keeps
/// concurrent writers from spinning on `SQLITE_BUSY`.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    queues: Arc<Queues>,
}

/// The database threads' queues. When the last [`Store`] goes, the queues close and the
/// threads are joined, so that no thread is still using a connection while the process exits.
struct Queues {
    jobs: Arc<Lanes>,
    /// SQLite only: the one writer thread's queue (see [`writer_loop`]).
    writes: Option<crossbeam_channel::Sender<WriteJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Queues {
    fn drop(&mut self) {
        self.jobs.close();
        self.writes.take();
        let me = std::thread::current().id();
        for thread in self.threads.drain(..) {
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

/// The lane of work not tied to a tenant (tenant ids are UUIDs, never empty).
const SHARED_LANE: &str = "";

/// The database threads' queue of jobs (reads; on PostgreSQL writes too): one lane per tenant.
///
/// A thread takes the next job of the lane at the front of `ready`, then puts that lane at the
/// back if it has more: waiting tenants are served in turn, each job of one tenant behind at
/// most one job of every other waiting tenant. And a lane never runs more than `per_lane` jobs
/// at once (by default all threads but a quarter), so that while one tenant keeps every
/// thread it may use busy, the others find a free thread at once.
struct Lanes {
    state: Mutex<LaneState>,
    wake: Condvar,
    per_lane: usize,
    /// How many lanes are in `ready` (read without the lock by threads about to sleep).
    ready_count: AtomicUsize,
}

#[derive(Default)]
struct LaneState {
    lanes: HashMap<Arc<str>, Lane>,
    /// The lanes with a waiting job and room to run it, in the order they are served.
    ready: VecDeque<Arc<str>>,
    /// Jobs waiting in every lane.
    queued: usize,
    /// No more jobs come: the threads finish the waiting ones, then end.
    closed: bool,
    /// Threads asleep on `wake` (only they need a wake-up: a notification costs a system
    /// call).
    sleepers: usize,
}

#[derive(Default)]
struct Lane {
    jobs: VecDeque<Job>,
    running: usize,
    /// Whether the lane is in `ready`.
    ready: bool,
}

impl Lanes {
    fn new(per_lane: usize) -> Self {
        Lanes {
            state: Mutex::new(LaneState::default()),
            wake: Condvar::new(),
            per_lane: per_lane.max(1),
            ready_count: AtomicUsize::new(0),
        }
    }

    /// The state; a panic never happens while it is held, but a poisoned lock would still
    /// hold consistent queues.
    fn state(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` in the lane `key`; gives it back once the lanes are closed.
    fn push(&self, key: &str, job: Job) -> Result<(), Job> {
        let mut guard = self.state();
        let state = &mut *guard;
        if state.closed {
            return Err(job);
        }
        let key: Arc<str> = match state.lanes.get_key_value(key) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(key),
        };
        let lane = state.lanes.entry(Arc::clone(&key)).or_default();
        lane.jobs.push_back(job);
        state.queued += 1;
        if !lane.ready && lane.running < self.per_lane {
            lane.ready = true;
            state.ready.push_back(key);
            self.made_ready(state);
        }
        Ok(())
    }

    /// A lane was put in `ready`: count it, and wake a sleeping thread if there is one.
    fn made_ready(&self, state: &LaneState) {
        self.ready_count.store(state.ready.len(), Ordering::Release);
        if state.sleepers > 0 {
            self.wake.notify_one();
        }
    }

    /// The next job to run and its lane; `None` once the lanes are closed and empty.
    ///
    /// With nothing ready, a thread first spins and yields for a few microseconds before it
    /// sleeps: under load the next job comes sooner than a sleep and a wake-up would take.
    fn next(&self) -> Option<(Arc<str>, Job)> {
        let mut guard = self.state();
        let mut spun = false;
        loop {
            let state = &mut *guard;
            let popped = state.ready.pop_front();
            self.ready_count.store(state.ready.len(), Ordering::Release);
            if let Some(key) = popped {
                let Some(lane) = state.lanes.get_mut(&key) else {
                    continue;
                };
                lane.ready = false;
                let Some(job) = lane.jobs.pop_front() else {
                    continue;
                };
                lane.running += 1;
                state.queued -= 1;
                if !lane.jobs.is_empty() && lane.running < self.per_lane {
                    lane.ready = true;
                    state.ready.push_back(Arc::clone(&key));
                    self.made_ready(state);
                }
                return Some((key, job));
            }
            if state.closed && state.queued == 0 {
                return None;
            }
            if !spun {
                spun = true;
                drop(guard);
                let backoff = crossbeam_utils::Backoff::new();
                while !backoff.is_completed() && self.ready_count.load(Ordering::Acquire) == 0 {
                    backoff.snooze();
                }
                guard = self.state();
                continue;
            }
            spun = false;
            guard.sleepers += 1;
            guard = self
                .wake
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
            guard.sleepers -= 1;
        }
    }

    /// A job of the lane `key` has finished.
    fn done(&self, key: &Arc<str>) {
        let mut guard = self.state();
        let state = &mut *guard;
        if let Some(lane) = state.lanes.get_mut(key) {
            lane.running = lane.running.saturating_sub(1);
            if lane.jobs.is_empty() {
                if lane.running == 0 {
                    state.lanes.remove(key);
                }
            } else if !lane.ready {
                lane.ready = true;
                state.ready.push_back(Arc::clone(key));
                self.made_ready(state);
            }
        }
        if state.closed && state.queued == 0 {
            self.wake.notify_all();
        }
    }

    /// Takes no more jobs; the threads end once the waiting ones have run.
    fn close(&self) {
        self.state().closed = true;
        self.wake.notify_all();
    }
}

/// SQLite's statement timeout. SQLite has no such setting, and diesel exposes neither a
/// progress handler nor `sqlite3_interrupt` (both would need the raw handle, and `unsafe`).
/// Instead each database thread sets a deadline for the job it runs, and the SQL that
/// compiled filters produce (the one kind of statement whose cost grows with the request)
/// calls `roster_in_time()` for every row and JSON element it looks at: past the deadline the
/// function fails, and SQLite stops the statement with [`MESSAGE`].
pub(crate) mod deadline {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use diesel::serialize::{IsNull, Output, ToSql};
    use diesel::sql_types::Bool;
    use diesel::sqlite::Sqlite;

    /// The error of a statement stopped by the deadline.
    pub const MESSAGE: &str = "roster: the statement ran past the statement timeout";

    /// The SQL that holds while the current job is within its deadline.
    pub const SQL: &str = "roster_in_time()";

    thread_local! {
        static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    diesel::define_sql_function! {
        /// True while the running job is within its deadline; an error after it.
        fn roster_in_time() -> Bool;
    }

    /// The result of `roster_in_time()`: serialized, it fails past the deadline.
    #[derive(Debug)]
    struct InTime;

    impl ToSql<Bool, Sqlite> for InTime {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> diesel::serialize::Result {
            let late = DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() >= at));
            if late {
                return Err(MESSAGE.into());
            }
            out.set_value(1);
            Ok(IsNull::No)
        }
    }

    /// Registers `roster_in_time()` on a connection (not deterministic: SQLite calls it for
    /// every row rather than once per statement).
    pub fn register(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<()> {
        roster_in_time_utils::register_nondeterministic_impl(conn, || InTime)
    }

    /// The current thread's deadline while it lives.
    pub struct Guard(());

    impl Guard {
        pub fn start(timeout: Duration) -> Guard {
            let at = Instant::now().checked_add(timeout);
            DEADLINE.with(|d| d.set(at));
            Guard(())
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(None));
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
    /// Opens `connections` connections to `url` and as many database threads, without a
    /// statement timeout. Does not migrate: see [`Store::migrate`].
    pub fn open(url: &str, connections: u32) -> Result<Store, StoreError> {
        Store::open_with(url, &StoreOptions::new(connections))
    }

    /// Opens the store as `options` say. Does not migrate: see [`Store::migrate`].
    pub fn open_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let url = DatabaseUrl::parse(url)?;
        let backend = match url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        let connections = options.connections.max(1);
        let timeout = options.statement_timeout;
        // Open every connection now: a bad URL or an unreachable server fails here, with the
        // real error.
        let mut opened = Vec::with_capacity(connections as usize + 1);
        for _ in 0..=connections {
            opened.push(url.establish(timeout)?);
        }
        let shared = Arc::new(Shared {
            url,
            backend,
            write_lock: Mutex::new(()),
            statement_timeout: timeout,
        });
        let threads = connections as usize;
        let per_lane = options
            .tenant_jobs
            .unwrap_or_else(|| default_tenant_jobs(threads))
            .clamp(1, threads);
        let lanes = Arc::new(Lanes::new(per_lane));
        let mut queues = Queues {
            jobs: Arc::clone(&lanes),
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
            let lanes = Arc::clone(&lanes);
            let shared = Arc::clone(&shared);
            let mut slot = opened.pop();
            let thread = std::thread::Builder::new()
                .name(format!("roster-db-{n}"))
                .spawn(move || {
                    // Ends when every Store handle is gone and the lanes are empty.
                    while let Some((lane, job)) = lanes.next() {
                        // A panic in one job must not take the thread down with it.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&shared, &mut slot)
                        }))
                        .is_err()
                        {
                            slot = None;
                            tracing::error!("a database job panicked");
                        }
                        lanes.done(&lane);
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
        let mut conn = self.shared.url.establish(None)?;
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

    /// Runs `f` on a database thread, with that thread's connection, in the shared lane of
    /// work not tied to a tenant (checking credentials, start-up). A tenant's work goes
    /// through [`Store::run_for`].
    pub async fn run<T, F>(&self, f: F) -> Result<T, DomainError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T, DomainError> + Send + 'static,
    {
        self.run_for(SHARED_LANE, f).await
    }

    /// Runs `f` on a database thread for the tenant `tenant_id`: in that tenant's lane, so
    /// that it waits behind the tenant's own work, not behind other tenants'.
    pub async fn run_for<T, F>(&self, tenant_id: &str, f: F) -> Result<T, DomainError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T, DomainError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |shared: &Shared, slot: &mut Slot| {
            // The caller may have gone (a cancelled request): nothing to tell it then.
            let _ = reply.send(shared.run_bounded(slot, f));
        });
        self.queues
            .jobs
            .push(tenant_id, job)
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
        self.run_write_for(SHARED_LANE, f).await
    }

    /// [`Store::run_write`] for the tenant `tenant_id`: on PostgreSQL in the tenant's lane
    /// (see [`Store::run_for`]); on SQLite on the one writer thread, whose group commits take
    /// every tenant's writes together.
    pub async fn run_write_for<T, F>(&self, tenant_id: &str, f: F) -> Result<T, DomainError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T, DomainError> + Send + 'static,
    {
        let Some(writes) = &self.queues.writes else {
            return self.run_for(tenant_id, f).await;
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
            *slot = Some(
                self.url
                    .establish(self.statement_timeout)
                    .map_err(DomainError::internal)?,
            );
        }
        slot.as_mut()
            .ok_or_else(|| DomainError::internal("no database connection"))
    }

    /// [`Shared::run`] on a database thread: on SQLite, the statements of `f` end at the
    /// statement timeout, counted from now (PostgreSQL counts each statement itself).
    fn run_bounded<T>(
        &self,
        slot: &mut Slot,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        let _deadline = self.statement_timeout.map(deadline::Guard::start);
        self.run(slot, f)
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
            let _deadline = shared.statement_timeout.map(deadline::Guard::start);
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
        e if is_statement_timeout(&e) => {
            tracing::warn!(error = %e, "a statement ran past the statement timeout");
            DomainError::Timeout
        }
        other => DomainError::internal(other),
    }
}

/// PostgreSQL's message for SQLSTATE 57014 by `statement_timeout` (diesel does not expose the
/// SQLSTATE; the server's `lc_messages` is English unless configured otherwise).
const PG_STATEMENT_TIMEOUT: &str = "canceling statement due to statement timeout";

/// Whether `e` is a statement stopped by the statement timeout, on either backend.
pub fn is_statement_timeout(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(_, info) => {
            let m = info.message();
            m.contains(PG_STATEMENT_TIMEOUT) || m.contains(deadline::MESSAGE)
        }
        _ => false,
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn noop() -> Job {
        Box::new(|_: &Shared, _: &mut Slot| {})
    }

    #[test]
    fn lanes_take_turns_and_never_run_on_every_thread() {
        let lanes = Lanes::new(2);
        for _ in 0..5 {
            assert!(lanes.push("a", noop()).is_ok());
        }
        assert!(lanes.push("b", noop()).is_ok());
        assert!(lanes.push("b", noop()).is_ok());
        let next = || lanes.next().map(|(lane, _)| lane.to_string());
        // a, then b (its turn), then a again: then a has its two running and waits.
        assert_eq!(next().as_deref(), Some("a"));
        assert_eq!(next().as_deref(), Some("b"));
        assert_eq!(next().as_deref(), Some("a"));
        assert_eq!(next().as_deref(), Some("b"));
        {
            let state = lanes.state();
            assert!(state.ready.is_empty(), "a is at its limit, b is empty");
            assert_eq!(state.queued, 3);
        }
        // A job of a ends: a may run one more.
        lanes.done(&Arc::from("a"));
        assert_eq!(
            lanes.next().map(|(l, _)| l.to_string()).as_deref(),
            Some("a")
        );
        // A newcomer goes before a's waiting jobs once a thread is free.
        assert!(lanes.push("c", noop()).is_ok());
        lanes.done(&Arc::from("a"));
        let order: Vec<String> = (0..2)
            .filter_map(|_| lanes.next().map(|(l, _)| l.to_string()))
            .collect();
        assert_eq!(order, ["c", "a"]);
        // Finished lanes are forgotten.
        lanes.done(&Arc::from("b"));
        lanes.done(&Arc::from("b"));
        lanes.done(&Arc::from("c"));
        assert!(!lanes.state().lanes.contains_key("b"));
        // Closed: the waiting job still runs, then the threads end.
        lanes.close();
        assert!(lanes.push("d", noop()).is_err());
        lanes.done(&Arc::from("a"));
        assert_eq!(
            lanes.next().map(|(l, _)| l.to_string()).as_deref(),
            Some("a")
        );
        lanes.done(&Arc::from("a"));
        lanes.done(&Arc::from("a"));
        assert!(lanes.next().is_none());
    }

    #[test]
    fn every_tenant_leaves_a_thread_to_the_others() {
        assert_eq!(default_tenant_jobs(1), 1);
        assert_eq!(default_tenant_jobs(2), 1);
        assert_eq!(default_tenant_jobs(4), 3);
        assert_eq!(default_tenant_jobs(16), 12);
    }

    fn temp_sqlite() -> (String, impl Drop) {
        struct Remove(std::path::PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
                }
            }
        }
        let path = std::env::temp_dir().join(format!("roster-unit-{}.db", new_id()));
        (format!("sqlite://{}", path.display()), Remove(path))
    }

    /// A statement that checks the deadline for every row and would run for minutes.
    const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                           WHERE roster_in_time() AND x < 1000000000000) SELECT count(*) FROM c";

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        #[allow(dead_code)]
        count: i64,
    }

    fn endless(db: &mut Db<'_>) -> Result<(), DomainError> {
        diesel::sql_query(ENDLESS).load::<Count>(db.conn)?;
        Ok(())
    }

    #[tokio::test]
    async fn sqlite_statements_end_at_the_timeout() {
        let (url, _file) = temp_sqlite();
        let store = Store::open_with(
            &url,
            &StoreOptions {
                statement_timeout: Some(Duration::from_millis(50)),
                ..StoreOptions::new(2)
            },
        )
        .unwrap();
        let started = Instant::now();
        let err = store.run_for("t1", endless).await.unwrap_err();
        assert!(matches!(err, DomainError::Timeout), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // The thread and its connection go on serving.
        let one = store
            .run_for("t1", |db| {
                Ok(
                    diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                        .get_result::<i32>(db.conn)?,
                )
            })
            .await
            .unwrap();
        assert_eq!(one, 1);
        // The next job has a deadline of its own.
        let err = store.run_for("t1", endless).await.unwrap_err();
        assert!(matches!(err, DomainError::Timeout), "{err:?}");
    }

    #[test]
    fn without_a_deadline_the_check_holds() {
        // The CLI's connections (run_blocking) and start-up have none.
        let (url, _file) = temp_sqlite();
        let store = Store::open(&url, 1).unwrap();
        let n = store
            .run_blocking(|db| {
                Ok(diesel::sql_query(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                     WHERE roster_in_time() AND x < 1000) SELECT count(*) AS count FROM c",
                )
                .load::<Count>(db.conn)?
                .len())
            })
            .unwrap();
        assert_eq!(n, 1);
    }
}
