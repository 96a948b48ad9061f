//! The writer pool: the exporter's own small tokio runtime, where conversion, Parquet encoding and Delta I/O
//! run so that the daemon's reactor keeps answering clients.

use tokio::runtime::{Handle, Runtime};

/// The exporter's own runtime (see the module docs). Dropping it shuts it down without blocking, which is
/// allowed anywhere, also inside the daemon's runtime (dropping a tokio `Runtime` there would panic).
pub(super) struct WriterPool {
    handle: Handle,
    /// Taken only in `drop`.
    runtime: Option<Runtime>,
}

impl WriterPool {
    pub(super) fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("otlake-delta")
            .enable_all()
            .build()?;
        Ok(WriterPool {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// The runtime's handle, to spawn on it into a `JoinSet`.
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(super) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
