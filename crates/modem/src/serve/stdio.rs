//! AT on stdin/stdout, for a host program that spawns the emulator as a child process.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::SharedModule;
use super::pty::FdTransport;
use super::session;

pub(super) fn spawn(
    module: SharedModule,
    shutdown: Arc<AtomicBool>,
    stop_on_eof: bool,
) -> io::Result<JoinHandle<()>> {
    let reader = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let writer = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    std::thread::Builder::new()
        .name("stdio".into())
        .spawn(move || {
            let mut t = FdTransport {
                reader,
                writer,
                drop_when_full: false,
            };
            session::run(&module, &mut t, &shutdown, "stdio");
            if stop_on_eof {
                shutdown.store(true, Ordering::Relaxed);
            }
        })
}
