//! Test support shared by sealcell's crates (not published).
//!
//! - [`transcript`]: golden AT transcripts: files of `> ` (host sends) and `< ` (module answers)
//!   lines with exact bytes, run by one loop against an in-process module, in chunks and one
//!   byte at a time.
//! - [`escape`]: the escaping used by transcript files (`\r`, `\n`, `\\`, `\xHH`).
//! - [`plans`]: a full provisioning plan over the fixtures, and the secrets to look for.
//! - [`TestModule`]: a module in a temporary directory with a fixed IMEI.
//!
//! ```
//! use sealcell_testkit::TestModule;
//! let mut m = TestModule::new();
//! assert_eq!(m.send(b"AT+CGSN\r"), b"AT+CGSN\r\r\n490154203237518\r\n\r\nOK\r\n");
//! ```
#![forbid(unsafe_code)]
// Test support: failing loudly (panicking) is the right answer to a broken fixture.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod escape;
pub mod pg;
pub mod plans;
pub mod softhsm;
pub mod transcript;

use std::path::Path;
use std::time::{Duration, Instant};

use sealcell_modem::{Channel, Module, ModuleConfig};

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

/// Opens the module in `dir` with [`test_config`] and a channel set to `ATE0;+CMEE=1` (the
/// suites that reboot a module and compare numeric errors).
pub fn boot(dir: &Path) -> (Module, Channel) {
    let mut m = Module::open(test_config(dir)).unwrap_or_else(|e| panic!("open: {e}"));
    let mut c = Channel::new(&mut m);
    let mut out = Vec::new();
    c.feed(&mut m, b"ATE0;+CMEE=1\r", Instant::now(), &mut out);
    (m, c)
}

/// Feeds `input` to the channel and returns the answer as text.
pub fn at(m: &mut Module, c: &mut Channel, input: &[u8]) -> String {
    let mut out = Vec::new();
    c.feed(m, input, Instant::now(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A module in its own temporary directory, with one channel and a virtual clock.
pub struct TestModule {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The module.
    pub module: Module,
    /// Its first channel.
    pub channel: Channel,
    /// The virtual clock's current time.
    pub now: Instant,
}

impl TestModule {
    /// A new module with [`test_config`].
    pub fn new() -> TestModule {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut module =
            Module::open(test_config(dir.path())).unwrap_or_else(|e| panic!("open: {e}"));
        let channel = Channel::new(&mut module);
        TestModule {
            dir,
            module,
            channel,
            now: Instant::now(),
        }
    }

    /// Sends bytes on the channel and returns the answer.
    pub fn send(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.channel
            .feed(&mut self.module, input, self.now, &mut out);
        out
    }

    /// Advances the virtual clock and polls the channel.
    pub fn wait(&mut self, d: Duration) -> Vec<u8> {
        self.now += d;
        let mut out = Vec::new();
        self.channel.poll(&mut self.module, self.now, &mut out);
        out
    }

    /// Simulates a power cycle of the process: the module is reopened from its directory.
    pub fn restart(&mut self) {
        let config = self.module.config().clone();
        self.module = Module::open(config).unwrap_or_else(|e| panic!("reopen: {e}"));
        self.channel = Channel::new(&mut self.module);
    }
}

impl Default for TestModule {
    fn default() -> Self {
        Self::new()
    }
}
