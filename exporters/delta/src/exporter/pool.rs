//! The writer pool: the exporter's own small tokio runtime, where conversion, Parquet encoding and Delta I/O
//! run so that the daemon's reactor keeps answering clients.

/// The exporter's own runtime (see the module docs). Dropping it shuts it down without blocking, which is
/// allowed anywhere, also inside the daemon's runtime (dropping a tokio `Runtime` there would panic).
pub(super) struct WriterPool(Option<tokio::runtime::Runtime>);

impl WriterPool {
    pub(super) fn start(threads: usize) -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("otlake-delta")
            .enable_all()
            .build()
            .map(|rt| WriterPool(Some(rt)))
    }

    pub(super) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(rt) => rt.spawn(future),
            // Unreachable: the runtime is only taken in `drop`.
            None => tokio::spawn(future),
        }
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
