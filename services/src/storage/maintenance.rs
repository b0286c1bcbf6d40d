//! PostgreSQL statistics upkeep.
//!
//! Roster's statements are prepared once per connection, and PostgreSQL keeps a prepared
//! statement's generic plan (and the plans of its foreign-key checks) until the statistics of a
//! table it reads change. Plans made while a table was small choose among the indexes that lead
//! with `tenant_id` as if they cost the same, and go on doing so as the table grows: the
//! foreign-key check of an `INSERT INTO user_emails` then walks a whole tenant through
//! `users_external_id` instead of one row of `users_pkey`. PostgreSQL's autovacuum renews the
//! statistics (and so the plans) as tables grow; where it is turned off, Roster does the same
//! itself: every [`INTERVAL`] it `ANALYZE`s each of its tables that changed by more than
//! autovacuum's default threshold (50 rows + 10 %) since it was last analyzed. One replica at a
//! time does it (an advisory lock), and `ANALYZE` blocks neither reads nor writes.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use super::{Backend, DbConnection, Store};
use crate::domain::DomainError;

/// How often the statistics are checked.
pub const INTERVAL: Duration = Duration::from_secs(15);

/// Roster's tables whose statistics steer the hot paths' plans.
const TABLES: &[&str] = &[
    "users",
    "user_emails",
    "groups",
    "group_members",
    "group_roles",
    "tokens",
    "roles",
    "tenants",
];

/// The advisory lock that keeps two replicas from analyzing at once ("roster" in ASCII).
const LOCK_KEY: i64 = 0x726f_7374_6572;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Bool)]
    on: bool,
}

#[derive(QueryableByName)]
struct Stale {
    #[diesel(sql_type = Text)]
    relname: String,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Whether the server's autovacuum is on (then nothing here is needed).
pub fn autovacuum_on(conn: &mut DbConnection) -> Result<bool, DomainError> {
    let DbConnection::Postgres(c) = conn else {
        return Ok(true);
    };
    let s: Setting = diesel::sql_query("SELECT current_setting('autovacuum') = 'on' AS on")
        .get_result(c)
        .map_err(DomainError::internal)?;
    Ok(s.on)
}

/// Analyzes Roster's tables that changed enough since their last analysis; returns their
/// names. Does nothing (and returns none) while another replica holds the lock.
pub fn analyze_stale(conn: &mut DbConnection) -> Result<Vec<String>, DomainError> {
    let DbConnection::Postgres(c) = conn else {
        return Ok(Vec::new());
    };
    c.transaction(|c| {
        let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(LOCK_KEY)
            .get_result(c)?;
        if !lock.locked {
            return Ok(Vec::new());
        }
        let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
        let stale: Vec<Stale> = diesel::sql_query(
            "SELECT s.relname::text AS relname FROM pg_stat_user_tables s \
             WHERE s.schemaname = current_schema() AND s.relname = ANY($1) \
             AND s.n_mod_since_analyze > 50 + 0.1 * GREATEST(s.n_live_tup, 0)",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(&tables)
        .load(c)?;
        let mut done = Vec::with_capacity(stale.len());
        for t in stale {
            // The name comes from TABLES, never from input.
            if TABLES.contains(&t.relname.as_str()) {
                diesel::sql_query(format!("ANALYZE \"{}\"", t.relname)).execute(c)?;
                done.push(t.relname);
            }
        }
        Ok(done)
    })
    .map_err(|e: diesel::result::Error| DomainError::internal(e))
}

/// On PostgreSQL with autovacuum off, starts the thread that keeps the statistics fresh (see
/// the module's documentation). It stops when the process does.
pub fn start(store: &Store, interval: Duration) -> Result<(), DomainError> {
    if store.backend() != Backend::Postgres {
        return Ok(());
    }
    if store.run_blocking(|db| autovacuum_on(db.conn))? {
        return Ok(());
    }
    tracing::warn!(
        "PostgreSQL's autovacuum is off: Roster analyzes its own tables as they grow (turn autovacuum on in production)"
    );
    // Holds the store weakly: the thread ends once the service's store is gone.
    let shared = std::sync::Arc::downgrade(&store.shared);
    let queues = std::sync::Arc::downgrade(&store.queues);
    std::thread::Builder::new()
        .name("roster-analyze".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let (Some(shared), Some(queues)) = (shared.upgrade(), queues.upgrade()) else {
                    return;
                };
                let store = Store { shared, queues };
                match store.run_blocking(|db| analyze_stale(db.conn)) {
                    Ok(done) if !done.is_empty() => {
                        tracing::debug!(tables = ?done, "analyzed");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not analyze Roster's tables"),
                }
            }
        })
        .map_err(DomainError::internal)?;
    Ok(())
}

impl Store {
    /// [`analyze_stale`] on a connection of its own (for tests and the operator).
    pub fn analyze_stale(&self) -> Result<Vec<String>, DomainError> {
        self.run_blocking(|db| analyze_stale(db.conn))
    }
}
