//! The emulated module's edge: everything `sealcell-modem` leaves out on purpose. Its AT
//! channels over TCP, a pseudo-terminal or stdio (at-contract §0, "Channels"), the sockets and
//! TLS of its HTTP jobs, the disk work of its long commands, and the clocks.
//!
//! The engine is sans-I/O: a [`sealcell_modem::Channel`] takes bytes and the time and returns
//! bytes; long work comes out as jobs ([`sealcell_modem::job`]). This crate runs them all on
//! **one tokio runtime**, event-driven:
//!
//! - each channel is a task that sleeps until something concerns it: input from its peer (read
//!   only while the channel wants input), its waker (a URC, the end of its job, a reboot), the
//!   engine's next deadline for it (payload timeout, request deadline), or shutdown. There is
//!   no polling tick: a URC reaches an idle channel as soon as it is posted;
//! - output is bounded per channel (the engine stops producing at about 1 MiB) and written
//!   before the channel reads again, so a host that pipelines commands and never reads
//!   holds back its own input, not the module's memory;
//! - every net job is a task ([`Edge`]): resolve, connect, TLS, request, response, bounded by
//!   the job's deadline; a cancelled job (deadline, reboot) is aborted and joined, which closes
//!   its socket;
//! - the module's own sockets (`+USOCR`, `+USOLI`, `+UDNSRN`) are tasks too: a reader that
//!   keeps to the room the engine reports (TCP back-pressure) and a writer each;
//! - disk and CPU work runs on the runtime's blocking pool, never under the module lock.
//!
//! # Why tokio
//!
//! One process may serve many channels and many modules, each with downloads in flight, timers
//! and URCs. Threads per connection with short read timeouts (the previous design) woke every
//! channel 50 times a second to look for URCs and deadlines, could not stop a request blocked
//! in `connect` or a TLS read, and needed a thread per download. tokio gives one reactor for
//! sockets, PTYs and timers, cancellation that closes sockets (aborting a task drops it),
//! `spawn_blocking` for fsync-heavy work, and `tokio-openssl` drives the same OpenSSL client
//! as the blocking path (`sealcell_https::tls::ssl`), so the TLS behaviour has one definition.
//!
//! # Which API to use
//!
//! - [`Emulator`]: the whole emulator as the binary and the integration tests use it, with its
//!   own runtime: [`Emulator::listen_tcp`], [`Emulator::open_pty`], [`Emulator::attach_stdio`],
//!   then [`Emulator::wait`] or [`Emulator::stop`]. Use it from synchronous code only.
//! - [`Edge`]: the pieces, on a runtime of your own: [`Edge::serve`] runs one AT channel over
//!   any async byte stream, [`Edge::dispatch`] runs the jobs a module hands out.
//! - [`system_now`]: the host's clocks as the engine wants them; the only clock reader.
//!
//! ```no_run
//! use sealcell_modem::{Module, ModuleConfig};
//! use sealcell_serve::{Emulator, system_now};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let module = Module::open(ModuleConfig::new("./sealcell-module"), system_now())?;
//! let mut emulator = Emulator::new(module)?;
//! let addr = emulator.listen_tcp("127.0.0.1:0")?;
//! println!("AT on tcp:{addr}");
//! emulator.stop_on_signals()?;
//! emulator.wait();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod control;
mod edge;
mod emulator;
mod net;
mod pace;
pub mod pty;
mod session;
mod socket;
mod stdio;
mod tcp;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sealcell_modem::Module;
use sealcell_modem::time::Now;

pub use edge::{Edge, MAX_DISK_JOBS, MAX_LONG_DISK_JOBS};
pub use emulator::Emulator;

/// A module shared by several channels and jobs.
///
/// The lock is a plain mutex: every holder runs engine code that neither blocks nor awaits
/// (the engine is sans-I/O), and the edge never holds it across an `.await`.
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

/// The host's clocks now, for every call into the engine: the monotonic clock and the wall
/// clock. The edge reads the time nowhere else, so the engine sees one coherent clock.
pub fn system_now() -> Now {
    let unix_ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        // A host clock before 1970: negative, as the engine's clock allows.
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    };
    Now::new(Instant::now(), unix_ms)
}

/// Locks a mutex of the edge's own bookkeeping; a panic while it was held (a bug) leaves the
/// data usable, so it is taken as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_now_reads_both_host_clocks() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let a = system_now();
        let b = system_now();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        assert!(b.mono() >= a.mono());
        let ms = u128::try_from(a.unix_ms()).unwrap_or(0);
        assert!(before <= ms && ms <= after, "{before} <= {ms} <= {after}");
    }
}
