//! AT on stdin/stdout, for a host program that spawns the emulator as a child process.
//!
//! tokio's stdin and stdout work with whatever the parent gave (a pipe, a file, a terminal);
//! they run the blocking reads and writes on the blocking pool, which is why the emulator's
//! runtime is shut down with a timeout: a read that waits on a silent stdin cannot be stopped.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Edge;
use crate::session::{self, Transport};

/// Spawns the stdio channel; `on_eof` runs once the channel ends because input ended (or
/// failed), not because of `stop`.
pub(crate) fn spawn(
    edge: &Edge,
    stop: watch::Receiver<bool>,
    on_eof: impl FnOnce() + Send + 'static,
) -> JoinHandle<()> {
    let edge = edge.clone();
    edge.handle().clone().spawn(async move {
        let stopping = stop.clone();
        let transport = Transport {
            label: "stdio",
            stall: None,
            hang_up: false,
            baud: None,
        };
        session::run(
            &edge,
            tokio::io::stdin(),
            tokio::io::stdout(),
            transport,
            stop,
        )
        .await;
        if !*stopping.borrow() {
            on_eof();
        }
    })
}
