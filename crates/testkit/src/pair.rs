//! An in-memory host <-> module pair (the rustls `make_pair` idea): the host tools' [`Link`] on
//! one side, a module in a temporary directory on the other, no socket in between.
//!
//! What the host writes is fed to the module's channel at once and answered on the module's
//! virtual clock; a read with nothing to read moves that clock on by the read's timeout (so
//! payload timeouts, request deadlines and scripted servers fire as they would in real time,
//! without the wait) and then times out as a serial port would. The test keeps a
//! [`ModuleSide`] to script the network and inspect the module while the host side runs.
//!
//! ```
//! use std::io::{Read, Write};
//! let (mut link, _module) = sealcell_testkit::pair::memory_pair();
//! link.write_all(b"AT+CGMI\r").unwrap();
//! let mut buf = [0u8; 64];
//! let n = link.read(&mut buf).unwrap();
//! assert_eq!(&buf[..n], b"AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n");
//! ```

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sealcell_host::port::Link;
use sealcell_modem::{Module, Now};

use crate::net::ScriptedNet;
use crate::{Network, advance, settle, test_config, virtual_now};

struct Inner {
    _dir: tempfile::TempDir,
    module: Module,
    /// The module end of the line: plain AT, or multiplexed after `AT+CMUX`.
    channel: sealcell_modem::Link,
    now: Now,
    net: Network,
    /// Answers not yet read by the host.
    unread: Vec<u8>,
}

/// The module's side of a pair: script its network, look at its state.
#[derive(Clone)]
pub struct ModuleSide(Arc<Mutex<Inner>>);

/// The host's side of a pair: a [`Link`] to the module.
pub struct MemoryLink {
    inner: Arc<Mutex<Inner>>,
    read_timeout: Duration,
}

/// A new module (with [`test_config`], in a temporary directory) and a link to it.
pub fn memory_pair() -> (MemoryLink, ModuleSide) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let now = virtual_now();
    let mut module =
        Module::open(test_config(dir.path()), now).unwrap_or_else(|e| panic!("open: {e}"));
    let channel = sealcell_modem::Link::new(&mut module);
    let inner = Arc::new(Mutex::new(Inner {
        _dir: dir,
        module,
        channel,
        now,
        net: Network::default(),
        unread: Vec::new(),
    }));
    (
        MemoryLink {
            inner: inner.clone(),
            read_timeout: Duration::from_millis(200),
        },
        ModuleSide(inner),
    )
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl ModuleSide {
    /// Runs `f` on the module.
    pub fn with_module<T>(&self, f: impl FnOnce(&mut Module) -> T) -> T {
        f(&mut lock(&self.0).module)
    }

    /// Runs `f` on the scripted network.
    pub fn with_net<T>(&self, f: impl FnOnce(&mut ScriptedNet) -> T) -> T {
        f(lock(&self.0).net.scripted())
    }

    /// The virtual time now.
    pub fn now(&self) -> Now {
        lock(&self.0).now
    }
}

impl Inner {
    /// Takes what the host wrote and runs it to rest.
    fn host_wrote(&mut self, bytes: &[u8]) {
        let now = self.now;
        self.channel
            .feed(&mut self.module, bytes, now, &mut self.unread);
        settle(
            &mut self.module,
            &mut self.channel,
            now,
            &mut self.net,
            &mut self.unread,
        );
    }

    /// Moves the clock on by `d`, collecting what the module says meanwhile.
    fn wait(&mut self, d: Duration) {
        advance(
            &mut self.module,
            &mut self.channel,
            &mut self.now,
            d,
            &mut self.net,
            &mut self.unread,
        );
    }
}

impl io::Write for MemoryLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.inner).host_wrote(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for MemoryLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut g = lock(&self.inner);
        if g.unread.is_empty() {
            g.wait(self.read_timeout);
        }
        if g.unread.is_empty() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "nothing to read"));
        }
        let n = buf.len().min(g.unread.len());
        buf[..n].copy_from_slice(&g.unread[..n]);
        g.unread.drain(..n);
        Ok(n)
    }
}

impl Link for MemoryLink {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.read_timeout = timeout.max(Duration::from_millis(1));
        Ok(())
    }
}
