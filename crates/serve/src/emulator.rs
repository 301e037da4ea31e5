//! The whole emulator for synchronous callers: one module, its [`Edge`], the transports, and
//! the runtime they all run on.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sealcell_modem::Module;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Edge, SharedModule, control, pty, session, stdio, tcp};

/// How often [`Emulator::wait`] looks at the shutdown flag, for a flag set from outside the
/// emulator (a `signal-hook` handler, another thread). Channels never look at it: they are
/// stopped by the runtime's own signal, which [`Emulator::stop_on_signals`], [`Emulator::stop`]
/// and the end of stdio send at once.
const FLAG_CHECK: Duration = Duration::from_millis(100);

/// How long the runtime's shutdown waits for blocking work (a read on a silent stdin, an
/// fsync) after every task has ended.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The request to stop: the public flag and the runtime-side signal, set together.
#[derive(Clone, Debug)]
struct Stop {
    flag: Arc<AtomicBool>,
    signal: Arc<watch::Sender<bool>>,
}

impl Stop {
    fn new() -> Stop {
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(watch::Sender::new(false)),
        }
    }

    fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.signal.send_replace(true);
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || *self.signal.borrow()
    }

    fn receiver(&self) -> watch::Receiver<bool> {
        self.signal.subscribe()
    }
}

/// A running emulator: the module, the transports serving it and the jobs it started, on one
/// multi-thread tokio runtime that the emulator owns.
///
/// Use it from synchronous code: [`Emulator::wait`], [`Emulator::stop`] and dropping it block
/// on the runtime, which must not happen inside another tokio runtime.
#[derive(Debug)]
pub struct Emulator {
    runtime: Option<Runtime>,
    edge: Edge,
    stop: Stop,
    tasks: Vec<JoinHandle<()>>,
    pty_links: Vec<PathBuf>,
}

impl Emulator {
    /// Serves `module` (no transport yet). Fails only if the runtime cannot start (no threads
    /// or no event queue to be had).
    pub fn new(module: Module) -> io::Result<Emulator> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("sealcell-edge")
            .build()?;
        let edge = Edge::new(SharedModule::new(module), runtime.handle().clone());
        Ok(Emulator {
            runtime: Some(runtime),
            edge,
            stop: Stop::new(),
            tasks: Vec::new(),
            pty_links: Vec::new(),
        })
    }

    /// The flag that stops everything when set. [`Emulator::wait`] notices a flag set from
    /// outside within 100 ms; prefer [`Emulator::stop_on_signals`] for signals.
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop.flag)
    }

    /// Stops the emulator on SIGINT or SIGTERM, at once (the signals are received by the
    /// runtime, which then stops every channel).
    pub fn stop_on_signals(&mut self) -> io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let handle = self.edge.handle().clone();
        let _runtime = handle.enter();
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let stop = self.stop.clone();
        let mut stopped = self.stop.receiver();
        self.tasks.push(handle.spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
                _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
                () = session::stopped(&mut stopped) => return,
            }
            stop.trigger();
        }));
        Ok(())
    }

    /// The shared module.
    pub fn module(&self) -> &SharedModule {
        self.edge.module()
    }

    /// The edge: the module's channels and jobs on the emulator's runtime.
    pub fn edge(&self) -> &Edge {
        &self.edge
    }

    /// Listens on `addr` (`127.0.0.1:5555`; port 0 picks one) and returns the bound address.
    pub fn listen_tcp(&mut self, addr: &str) -> io::Result<SocketAddr> {
        let (local, task) = tcp::spawn(&self.edge, addr, self.stop.receiver())?;
        self.tasks.push(task);
        Ok(local)
    }

    /// Opens the test bench's control socket on `addr` (loopback only; port 0 picks one) and
    /// returns the bound address ([`crate::control`]).
    pub fn listen_control(&mut self, addr: &str) -> io::Result<SocketAddr> {
        let (local, task) = control::spawn(&self.edge, addr, self.stop.receiver())?;
        self.tasks.push(task);
        Ok(local)
    }

    /// Opens a pseudo-terminal and points the symlink `link` at its slave; returns the slave
    /// path. The link is removed when the emulator stops.
    pub fn open_pty(&mut self, link: &Path) -> io::Result<PathBuf> {
        let (slave, task) = pty::spawn(&self.edge, link, self.stop.receiver())?;
        self.tasks.push(task);
        self.pty_links.push(link.to_path_buf());
        Ok(slave)
    }

    /// Speaks AT on stdin/stdout; end of input (once every answer is written) stops the
    /// emulator when `stop_on_eof`.
    pub fn attach_stdio(&mut self, stop_on_eof: bool) -> io::Result<()> {
        let stop = self.stop.clone();
        let task = stdio::spawn(&self.edge, self.stop.receiver(), move || {
            if stop_on_eof {
                stop.trigger();
            }
        });
        self.tasks.push(task);
        Ok(())
    }

    /// Blocks until shutdown is requested (the flag, a signal given to
    /// [`Emulator::stop_on_signals`], the end of stdio), then stops everything.
    pub fn wait(mut self) {
        let stop = self.stop.clone();
        if let Some(runtime) = &self.runtime {
            runtime.block_on(async move {
                let mut stopped = stop.receiver();
                while !stop.is_set() {
                    tokio::select! {
                        () = session::stopped(&mut stopped) => {}
                        () = tokio::time::sleep(FLAG_CHECK) => {}
                    }
                }
            });
        }
        self.finish();
    }

    /// Stops every transport and job and waits for them.
    pub fn stop(mut self) {
        self.finish();
    }

    /// Stops everything: channels end at once (closing their connections), then every job
    /// task is aborted and joined, the PTY links are removed and the runtime shut down.
    fn finish(&mut self) {
        self.stop.trigger();
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let tasks = std::mem::take(&mut self.tasks);
        let edge = self.edge.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside another runtime (a misuse): blocking here would panic; the tasks are
            // dropped with the runtime instead.
            tracing::warn!("the emulator was stopped inside an async context; not waiting");
            runtime.shutdown_background();
            return;
        }
        {
            runtime.block_on(async move {
                for task in tasks {
                    let _ = task.await;
                }
                edge.shutdown().await;
            });
        }
        for link in self.pty_links.drain(..) {
            if link.is_symlink() {
                let _ = std::fs::remove_file(&link);
            }
        }
        runtime.shutdown_timeout(SHUTDOWN_GRACE);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.finish();
    }
}
