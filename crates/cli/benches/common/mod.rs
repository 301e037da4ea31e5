//! Helpers the benchmarks share.

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release binary under measurement.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sealcell");

/// The median of a run's timings.
pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Writes `mib` MiB of deterministic, non-repeating-looking bytes to `path`.
pub(crate) fn big_file(path: &Path, mib: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    for i in 0..mib {
        for (j, b) in block.iter_mut().enumerate() {
            *b = (i.wrapping_mul(31) ^ j.wrapping_mul(2_654_435_761)) as u8;
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

/// A running `sealcell modem` with a connected AT socket (echo off).
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) at: TcpStream,
    pub(crate) addr: String,
}

/// Starts the emulator and returns it with a connected socket, after the first `OK`.
pub(crate) fn boot(dir: &Path) -> (Running, Duration) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(["modem", "--listen", "tcp:127.0.0.1:0", "--data"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(a) = line.split("listening on tcp:").nth(1) {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let mut at = TcpStream::connect(&addr).unwrap();
    at.set_nodelay(true).unwrap();
    at.write_all(b"ATE0\r").unwrap();
    let mut buf = [0u8; 11];
    at.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ATE0\r\r\nOK\r\n");
    (Running { child, at, addr }, start.elapsed())
}

impl Running {
    pub(crate) fn cmd(&mut self, line: &[u8], expect_end: &[u8]) -> Vec<u8> {
        self.at.write_all(line).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while !got.ends_with(expect_end) {
            let n = self.at.read(&mut chunk).unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        got
    }

    pub(crate) fn import(&mut self, kind: u8, name: &str, data: &[u8]) {
        let prompt = self.cmd(
            format!("AT+USECMNG=0,{kind},\"{name}\",{}\r", data.len()).as_bytes(),
            b">",
        );
        assert_eq!(prompt, b"\r\n>");
        let answer = self.cmd(data, b"OK\r\n");
        assert!(
            answer.starts_with(b"\r\n+USECMNG: 0,"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }

    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
