//! The transports: TCP listeners, a pseudo-terminal and stdio, each connection an AT channel
//! of one shared module (at-contract §0, "Channels").
//!
//! Each connection runs [`session::run`] on its own thread: read with a short timeout, feed the
//! bytes to its [`crate::Channel`], write the answer, poll timers and URCs. The module sits
//! behind a mutex held only while one chunk is processed. A shutdown flag (set by SIGINT or
//! SIGTERM in the binary) stops every loop within one tick.

mod pty;
mod session;
mod stdio;
mod tcp;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::module::Module;

/// How often idle loops look at the shutdown flag and queued URCs.
pub const TICK: Duration = Duration::from_millis(20);

/// A module shared by several channels.
#[derive(Clone, Debug)]
pub struct SharedModule(Arc<Mutex<Module>>);

impl SharedModule {
    /// Shares `module`.
    pub fn new(module: Module) -> SharedModule {
        SharedModule(Arc::new(Mutex::new(module)))
    }

    /// Locks the module. A panic while locked (a bug) does not take the other channels down.
    pub fn lock(&self) -> MutexGuard<'_, Module> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running emulator: the module and the threads serving it.
#[derive(Debug)]
pub struct Emulator {
    module: SharedModule,
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pty_links: Vec<PathBuf>,
}

impl Emulator {
    /// Serves `module` (no transport yet).
    pub fn new(module: Module) -> Emulator {
        Emulator {
            module: SharedModule::new(module),
            shutdown: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            pty_links: Vec::new(),
        }
    }

    /// The flag that stops everything when set (give it to a signal handler).
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    /// The shared module.
    pub fn module(&self) -> &SharedModule {
        &self.module
    }

    /// Listens on `addr` (`127.0.0.1:5555`; port 0 picks one) and returns the bound address.
    pub fn listen_tcp(&mut self, addr: &str) -> io::Result<SocketAddr> {
        let (local, handle) = tcp::spawn(addr, self.module.clone(), self.shutdown.clone())?;
        self.threads.push(handle);
        Ok(local)
    }

    /// Opens a pseudo-terminal and points the symlink `link` at its slave; returns the slave path.
    pub fn open_pty(&mut self, link: &Path) -> io::Result<PathBuf> {
        let (slave, handle) = pty::spawn(link, self.module.clone(), self.shutdown.clone())?;
        self.threads.push(handle);
        self.pty_links.push(link.to_path_buf());
        Ok(slave)
    }

    /// Speaks AT on stdin/stdout; end of input stops the emulator when `stop_on_eof`.
    pub fn attach_stdio(&mut self, stop_on_eof: bool) -> io::Result<()> {
        let handle = stdio::spawn(self.module.clone(), self.shutdown.clone(), stop_on_eof)?;
        self.threads.push(handle);
        Ok(())
    }

    /// Blocks until the shutdown flag is set and every thread has finished.
    pub fn wait(mut self) {
        while !self.shutdown.load(Ordering::Relaxed) {
            std::thread::sleep(TICK);
        }
        self.join();
    }

    /// Stops every transport and waits for them.
    pub fn stop(mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        self.join();
    }

    fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for link in self.pty_links.drain(..) {
            if link.is_symlink() {
                let _ = std::fs::remove_file(&link);
            }
        }
    }
}
