//! The bounded worker pool: photo decoding, detection, embedding and search run on rayon's
//! threads (never on the async executor), at most `workers` at once, with at most `queue`
//! more waiting; beyond that a request is answered 503 at once rather than queued without
//! bound.

use crate::problem::{ApiError, REQUEST_ID};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The pool.
pub struct Pool {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    capacity: usize,
}

impl Pool {
    /// A pool of `workers` threads' worth of work and `queue` waiting places.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Pool {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
            waiting: AtomicUsize::new(0),
            capacity: workers + queue,
        }
    }

    /// Jobs admitted and not finished (running or waiting).
    pub fn depth(&self) -> usize {
        self.capacity - self.admitted.available_permits()
    }

    /// Jobs waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `job` on a blocking thread when a worker is free; 503 when the queue is full.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| ApiError::overloaded())?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let running = self.running.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _running = running.map_err(ApiError::internal)?;
        let id = REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default();
        // The job runs on rayon's pool, where the pipeline's own parallel loops (faces, the
        // engine's GEMMs) run too: they share its threads by work stealing instead of each
        // job blocking a thread of its own while it waits for them. The request id goes with
        // the job, so that its errors carry it too; a panic is a 500, not an abort.
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| REQUEST_ID.sync_scope(id, job)));
            let _ = tx.send(r.unwrap_or_else(|_| Err(ApiError::internal("a photo job panicked"))));
        });
        rx.await.map_err(ApiError::internal)?
    }
}
