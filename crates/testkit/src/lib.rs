//! Test support shared by sealcell's crates (not published).
//!
//! - [`transcript`]: golden AT transcripts: files of `> ` (host sends) and `< ` (module answers)
//!   lines with exact bytes, run by one loop against an in-process module, in chunks and one
//!   byte at a time.
//! - [`escape`]: the escaping used by transcript files (`\r`, `\n`, `\\`, `\xHH`).
//! - [`plans`]: a full provisioning plan over the fixtures, and the secrets to look for.
//! - [`TestModule`]: a module in a temporary directory with a fixed IMEI, a virtual clock and a
//!   network ([`net`]: scripted servers on virtual time, or real connections).
//! - [`pair`]: the host tools' link to a module in memory, no socket in between.
//! - [`settle`], [`advance`]: run a channel's jobs to rest; move the virtual clock through its
//!   timers and network events.
//!
//! ```
//! use sealcell_testkit::TestModule;
//! let mut m = TestModule::new();
//! assert_eq!(m.send(b"AT+CGSN\r"), b"AT+CGSN\r\r\n490154203237518\r\n\r\nOK\r\n");
//! ```
#![forbid(unsafe_code)]
// Test support: failing loudly (panicking) is the right answer to a broken fixture.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub use sealcell_at::escape;
pub mod net;
pub mod pair;
pub mod pg;
pub mod plans;
pub mod softhsm;
pub mod transcript;

use std::path::Path;
use std::time::{Duration, Instant};

use sealcell_modem::job::{Connector, JobDone, JobId, dispatch};
use sealcell_modem::{Channel, Module, ModuleConfig, Now};

use crate::net::{ScriptedNet, ThreadNet};

/// The IMEI every test module gets, so transcripts can show it.
pub const TEST_IMEI: &str = "490154203237518";

/// The default configuration of test modules in `dir`: fixed IMEI, 20 s payload timeout, and
/// the cheap test-only KDF so suites that seal and reboot often stay fast.
pub fn test_config(dir: &Path) -> ModuleConfig {
    let mut c = ModuleConfig::new(dir);
    c.imei = TEST_IMEI.parse().ok();
    c.kdf = sealcell_store::crypto::KdfPolicy::INSECURE_FAST_FOR_TESTS;
    c
}

/// The start of a virtual clock, at the host's time (so certificates made by a test, valid
/// from now, are valid to the module); from then on it moves only when the test says so.
/// Transcripts start at the fixed [`sealcell_modem::time::VIRTUAL_EPOCH_UNIX_MS`] instead.
pub fn virtual_now() -> Now {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Now::new(Instant::now(), unix_ms)
}

/// Opens the module in `dir` with [`test_config`] and a channel set to `ATE0;+CMEE=1` (the
/// suites that reboot a module and compare numeric errors).
pub fn boot(dir: &Path) -> (Module, Channel) {
    let now = virtual_now();
    let mut m = Module::open(test_config(dir), now).unwrap_or_else(|e| panic!("open: {e}"));
    let mut c = Channel::new(&mut m);
    at(&mut m, &mut c, b"ATE0;+CMEE=1\r");
    (m, c)
}

/// Feeds `input` to the channel, runs the jobs it starts to their end (no network: a request
/// fails to connect) and returns the answer as text.
pub fn at(m: &mut Module, c: &mut Channel, input: &[u8]) -> String {
    let now = m.now();
    let mut out = Vec::new();
    c.feed(m, input, now, &mut out);
    settle(m, c, now, &mut Network::default(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The network a test module's requests reach.
pub enum Network {
    /// Scripted servers on virtual time (the default: nothing answers until scripted).
    Scripted(Box<ScriptedNet>),
    /// Real connections.
    Real(ThreadNet),
}

impl Default for Network {
    fn default() -> Self {
        Network::Scripted(Box::default())
    }
}

impl Network {
    fn connector(&mut self) -> &mut dyn Connector {
        match self {
            Network::Scripted(n) => n.as_mut(),
            Network::Real(n) => n,
        }
    }

    fn take_ended(&mut self, now: Instant) -> Vec<(JobId, JobDone)> {
        match self {
            Network::Scripted(n) => {
                n.advance(now);
                n.take_ended()
            }
            Network::Real(n) => n.take_ended(),
        }
    }

    /// Reports socket events due at `now` to `module`; whether there were any.
    fn pump_sockets(&mut self, module: &mut Module, now: Instant) -> bool {
        match self {
            Network::Scripted(n) => n.pump_sockets(module, now),
            Network::Real(n) => n.refuse_sockets(module),
        }
    }

    fn set_now(&mut self, now: Instant) {
        match self {
            Network::Scripted(n) => n.set_now(now),
            Network::Real(n) => n.set_now(now),
        }
    }

    fn next_event(&self) -> Option<Instant> {
        match self {
            Network::Scripted(n) => n.next_event(),
            Network::Real(_) => None,
        }
    }

    /// The scripted network (panics on a real one: a test bug).
    pub fn scripted(&mut self) -> &mut ScriptedNet {
        match self {
            Network::Scripted(n) => n,
            Network::Real(_) => panic!("this test module has a real network"),
        }
    }
}

/// What the test drivers drive: an AT channel, or a link (plain or multiplexed).
pub use sealcell_modem::drive::Endpoint as Drive;

/// Runs `channel` to rest at `now`: starts the jobs its module queued (disk jobs inline,
/// network jobs on `net`), reports their ends, and polls until the channel has nothing more to
/// say. The answer is appended to `out`.
pub fn settle<D: Drive + ?Sized>(
    m: &mut Module,
    c: &mut D,
    now: Now,
    net: &mut Network,
    out: &mut Vec<u8>,
) {
    // Connections made from here on start at `now` on the virtual clock, shaped as the
    // bench says.
    net.set_now(now.mono());
    if let Network::Scripted(n) = net {
        n.set_shaping(m.network_shaping());
    }
    loop {
        let work = m.take_work();
        let mut progressed = !work.is_empty();
        for (id, job) in dispatch(work, net.connector()) {
            m.finish_job(id, job.run());
        }
        let ended = net.take_ended(now.mono());
        progressed |= !ended.is_empty();
        for (id, done) in ended {
            m.finish_job(id, done);
        }
        progressed |= net.pump_sockets(m, now.mono());
        if !progressed && !c.has_more() {
            return;
        }
        poll(m, c, now, out);
    }
}

/// Polls into a buffer of its own, as a transport that has sent everything would, so the
/// channel's output limit never holds back a test that collects the whole answer.
fn poll<D: Drive + ?Sized>(m: &mut Module, c: &mut D, now: Now, out: &mut Vec<u8>) {
    let mut step = Vec::new();
    c.poll(m, now, &mut step);
    out.append(&mut step);
}

/// Moves the virtual clock `now` on by `d`, stopping at every timer and scripted network
/// event on the way so each fires at its time; the channel's answers are appended to `out`.
pub fn advance<D: Drive + ?Sized>(
    m: &mut Module,
    c: &mut D,
    now: &mut Now,
    d: Duration,
    net: &mut Network,
    out: &mut Vec<u8>,
) {
    let target = now.mono() + d;
    loop {
        // Only events ahead of now: one at or before now was handled by the last poll (and a
        // deadline a poll leaves in the past must not stop the clock).
        let next = [net.next_event(), c.next_deadline(m)]
            .into_iter()
            .flatten()
            .filter(|t| *t > now.mono() && *t <= target)
            .min();
        let step_to = next.unwrap_or(target);
        if step_to > now.mono() {
            *now = now.after(step_to - now.mono());
        }
        poll(m, c, *now, out);
        settle(m, c, *now, net, out);
        if next.is_none() {
            return;
        }
    }
}

/// A module in its own temporary directory, with one channel, a virtual clock and a network
/// (scripted unless [`TestModule::with_real_network`]).
pub struct TestModule {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The module.
    pub module: Module,
    /// Its first channel.
    pub channel: Channel,
    /// The virtual clock's current time.
    pub now: Now,
    /// Where its requests go.
    pub net: Network,
}

impl TestModule {
    /// A new module with [`test_config`].
    pub fn new() -> TestModule {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let now = virtual_now();
        let mut module =
            Module::open(test_config(dir.path()), now).unwrap_or_else(|e| panic!("open: {e}"));
        let channel = Channel::new(&mut module);
        TestModule {
            dir,
            module,
            channel,
            now,
            net: Network::default(),
        }
    }

    /// A new module whose requests make real connections (test servers, `openssl s_server`).
    pub fn with_real_network() -> TestModule {
        let mut m = TestModule::new();
        m.net = Network::Real(ThreadNet::default());
        m
    }

    /// Sends bytes on the channel and returns the answer (jobs run to their end).
    pub fn send(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.channel
            .feed(&mut self.module, input, self.now, &mut out);
        settle(
            &mut self.module,
            &mut self.channel,
            self.now,
            &mut self.net,
            &mut out,
        );
        out
    }

    /// Advances the virtual clock, firing what falls due, and returns what the channel said.
    pub fn wait(&mut self, d: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        advance(
            &mut self.module,
            &mut self.channel,
            &mut self.now,
            d,
            &mut self.net,
            &mut out,
        );
        out
    }

    /// Simulates a power cycle of the process: the module is reopened from its directory.
    pub fn restart(&mut self) {
        let config = self.module.config().clone();
        self.module = Module::open(config, self.now).unwrap_or_else(|e| panic!("reopen: {e}"));
        self.channel = Channel::new(&mut self.module);
    }
}

impl Default for TestModule {
    fn default() -> Self {
        Self::new()
    }
}
