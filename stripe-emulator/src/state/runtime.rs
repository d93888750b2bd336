//! The runtime webhook deliveries run on (one thread of its own, started on first use) and
//! its HTTP client; stopping it stops every delivery for good.

use std::future::Future;
use std::sync::Mutex;

use crate::sync::lock;

/// What the runtime slot holds.
#[derive(Debug, Default)]
enum Runtime {
    #[default]
    NotStarted,
    Running(tokio::runtime::Runtime, reqwest::Client),
    Stopped,
}

/// Emulator-wide: the runtime deliveries run on, and its HTTP client.
#[derive(Debug, Default)]
pub struct Deliverer {
    runtime: Mutex<Runtime>,
}

impl Deliverer {
    /// Runs `make(client)` on the delivery runtime (started on first use); does nothing
    /// once stopped.
    pub(crate) fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce(reqwest::Client) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut slot = lock(&self.runtime);
        if matches!(*slot, Runtime::NotStarted) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("stripe-emulator-webhooks")
                .enable_all()
                .build();
            // Deliveries go to receivers on this machine: no proxy from the environment.
            let client = reqwest::Client::builder().no_proxy().build();
            match (runtime, client) {
                (Ok(runtime), Ok(client)) => *slot = Runtime::Running(runtime, client),
                (runtime, client) => {
                    tracing::error!(
                        runtime_error = ?runtime.err(),
                        client_error = ?client.err(),
                        "stripe emulator: webhook delivery cannot start"
                    );
                    *slot = Runtime::Stopped;
                }
            }
        }
        if let Runtime::Running(runtime, client) = &*slot {
            runtime.spawn(make(client.clone()));
        }
    }

    /// Stops every delivery (in flight, waiting to retry, queued) for good.
    pub fn stop(&self) {
        let previous = std::mem::replace(&mut *lock(&self.runtime), Runtime::Stopped);
        if let Runtime::Running(runtime, _) = previous {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Deliverer {
    /// Never drops the runtime the blocking way (which panics in async code).
    fn drop(&mut self) {
        self.stop();
    }
}
