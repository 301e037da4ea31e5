//! What the edge's tests share: an emulator over real TCP in a temporary directory, and a
//! client that asserts exact bytes.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sealcell_modem::Module;
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::test_config;

/// A running emulator listening on loopback, and its data directory.
pub struct Rig {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Rig {
    pub fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let module = Module::open(test_config(dir.path()), system_now()).unwrap();
        let mut emulator = Emulator::new(module).unwrap();
        let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
        Rig {
            emulator,
            addr,
            _dir: dir,
        }
    }

    pub fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream }
    }

    /// Waits until the edge runs no job (bounded).
    pub fn wait_for_no_jobs(&self, bound: Duration) {
        let start = Instant::now();
        while self.emulator.edge().jobs_running() > 0 {
            assert!(
                start.elapsed() < bound,
                "{} jobs still running after {bound:?}",
                self.emulator.edge().jobs_running()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One AT connection.
pub struct Client {
    pub stream: TcpStream,
}

impl Client {
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads exactly `expected.len()` bytes within `bound` and asserts they are `expected`;
    /// returns how long they took.
    pub fn expect_within(&mut self, expected: &[u8], bound: Duration) -> Duration {
        let start = Instant::now();
        let mut got = Vec::with_capacity(expected.len());
        let mut buf = vec![0u8; expected.len().clamp(1, 64 * 1024)];
        while got.len() < expected.len() {
            let left = bound.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "after {bound:?}: got {:?}, want {:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(expected)
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            let want = (expected.len() - got.len()).min(buf.len());
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => panic!(
                    "connection closed; got {:?}, want {:?}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(expected)
                ),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        assert!(
            got == expected,
            "got {:?}, want {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
        start.elapsed()
    }

    /// Reads until the output ends with `end` (within 10 s and 64 KiB); returns all of it.
    pub fn read_until(&mut self, end: &[u8]) -> Vec<u8> {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(end) {
            assert!(
                start.elapsed() < Duration::from_secs(10) && got.len() < 64 * 1024,
                "no {:?} in {:?}",
                String::from_utf8_lossy(end),
                String::from_utf8_lossy(&got)
            );
            self.stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            match self.stream.read(&mut byte) {
                Ok(0) => panic!("connection closed; got {:?}", String::from_utf8_lossy(&got)),
                Ok(_) => got.push(byte[0]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        got
    }

    /// [`Client::expect_within`] 10 s.
    pub fn expect(&mut self, expected: &[u8]) {
        self.expect_within(expected, Duration::from_secs(10));
    }

    /// Asserts that nothing arrives for `d`.
    pub fn quiet(&mut self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(n) => panic!(
                "unexpected output: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) => panic!("read: {e}"),
        }
    }

    /// `ATE0`, so answers are not preceded by the echo.
    pub fn echo_off(&mut self) {
        self.send(b"ATE0\r");
        self.expect(b"ATE0\r\r\nOK\r\n");
    }
}
