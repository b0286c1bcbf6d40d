//! CPU-heavy steps of a request (parsing a large body, applying a large PATCH) run here: on
//! tokio's blocking pool, at most [`CpuPool::permits`] at a time, so that they never hold an
//! async worker and a burst of them queues instead of taking every core from the requests of
//! other tenants.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::ScimError;

/// The bound on concurrent CPU-heavy steps. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct CpuPool {
    permits: Arc<Semaphore>,
}

impl CpuPool {
    /// One permit per core but one (at least one), leaving a core to the async workers.
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::with_permits(cores.saturating_sub(1).max(1))
    }

    pub(crate) fn with_permits(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    #[cfg(test)]
    pub(crate) fn permits(&self) -> usize {
        self.permits.available_permits()
    }

    /// Runs `work` on the blocking pool once a permit is free.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, ScimError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ScimError::internal())?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a CPU-heavy request step failed");
            ScimError::internal()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_returns_the_permit() {
        let pool = CpuPool::with_permits(2);
        assert_eq!(pool.run(|| 40 + 2).await.unwrap(), 42);
        assert_eq!(pool.permits(), 2);
    }

    #[tokio::test]
    async fn work_waits_for_a_permit() {
        let pool = CpuPool::with_permits(1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || rx.recv().is_ok()).await })
        };
        // Wait until the first job holds the only permit.
        while pool.permits() != 0 {
            tokio::task::yield_now().await;
        }
        let second = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| true).await })
        };
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        tx.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert!(second.await.unwrap().unwrap());
    }
}
