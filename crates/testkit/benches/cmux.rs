//! Issue 13's figures, each next to its plain-AT baseline on the same transport in the same
//! run (TCP loopback to the emulator, one module per measurement):
//!
//! 1. `AT` round trips per second through a 27.010 DLCI (host side: sealcell-at's
//!    multiplexer, as `sealcell at --cmux` uses it) vs plain AT on a connection of its own:
//!    the ratio (goal >= 0.8).
//! 2. A 1 MiB `+UDWNFILE` through a DLCI (N1 128, as ubxlib asks, and N1 1509, the largest)
//!    vs plain: bytes per second, prompt to `OK`.
//!
//! Only correctness is asserted (the exact answers), never a time.
//!
//! Run: `cargo bench -p sealcell-testkit --bench cmux`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sealcell_at::cmux::mux::{Config, Event, Multiplexer, Role};
use sealcell_modem::Module;
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::test_config;

const ROUND_TRIPS: usize = 20_000;
const ROUNDS: usize = 3;
const FILE_SIZE: usize = 1 << 20;
const FILE_ROUNDS: usize = 5;

fn emulator() -> (Emulator, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.fs_capacity = 16 << 20;
    let mut emulator = Emulator::new(Module::open(config, system_now()).unwrap()).unwrap();
    let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
    (emulator, addr, dir)
}

/// One end of the line: plain AT, or one DLCI of a multiplexer.
trait Line {
    fn send(&mut self, bytes: &[u8]);
    /// Reads until the data received ends with `end`; returns it.
    fn until(&mut self, end: &[u8]) -> Vec<u8>;
}

struct Plain(TcpStream);

impl Line for Plain {
    fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }
    fn until(&mut self, end: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(end) {
            let n = self.0.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        got
    }
}

struct Muxed {
    stream: TcpStream,
    mux: Multiplexer,
    frames: Vec<u8>,
}

impl Muxed {
    fn open(addr: SocketAddr, n1: u16) -> Muxed {
        let mut plain = Plain(client(addr));
        plain.send(format!("AT+CMUX=0,0,,{n1}\r").as_bytes());
        plain.until(b"\r\nOK\r\n");
        let mut m = Muxed {
            stream: plain.0,
            mux: Multiplexer::new(Config {
                role: Role::Initiator,
                n1: usize::from(n1),
                max_dlci: 5,
            }),
            frames: Vec::new(),
        };
        let mut frames = Vec::new();
        m.mux.open(0, &mut frames);
        m.mux.open(1, &mut frames);
        m.stream.write_all(&frames).unwrap();
        let mut opened = 0;
        let mut buf = [0u8; 256];
        while opened < 2 {
            let n = m.stream.read(&mut buf).unwrap();
            let mut input = &buf[..n];
            let mut replies = Vec::new();
            while let Some(e) = m.mux.receive(&mut input, &mut replies) {
                if matches!(e, Event::Opened(_)) {
                    opened += 1;
                }
            }
        }
        m
    }
}

impl Line for Muxed {
    fn send(&mut self, bytes: &[u8]) {
        self.frames.clear();
        self.mux.send(1, bytes, &mut self.frames);
        self.stream.write_all(&self.frames).unwrap();
    }
    fn until(&mut self, end: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let mut replies = Vec::new();
        while !got.ends_with(end) {
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {got:?}");
            let mut input = &buf[..n];
            while let Some(e) = self.mux.receive(&mut input, &mut replies) {
                if let Event::Data { dlci: 1, data } = e {
                    got.extend_from_slice(data);
                }
            }
            if !replies.is_empty() {
                self.stream.write_all(&replies).unwrap();
                replies.clear();
            }
        }
        got
    }
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn quiet(line: &mut dyn Line) {
    line.send(b"ATE0\r");
    assert_eq!(line.until(b"OK\r\n"), b"ATE0\r\r\nOK\r\n");
}

fn round_trips(line: &mut dyn Line) -> f64 {
    let mut once = || {
        line.send(b"AT\r");
        assert_eq!(line.until(b"\r\nOK\r\n"), b"\r\nOK\r\n");
    };
    for _ in 0..1000 {
        once();
    }
    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        once();
    }
    ROUND_TRIPS as f64 / start.elapsed().as_secs_f64()
}

/// A 1 MiB `+UDWNFILE`, prompt to `OK`, then deleted; bytes per second.
fn download(line: &mut dyn Line, payload: &[u8]) -> f64 {
    line.send(format!("AT+UDWNFILE=\"big\",{}\r", payload.len()).as_bytes());
    assert_eq!(line.until(b">"), b"\r\n>");
    let start = Instant::now();
    line.send(payload);
    assert_eq!(line.until(b"\r\nOK\r\n"), b"\r\nOK\r\n");
    let rate = payload.len() as f64 / start.elapsed().as_secs_f64();
    line.send(b"AT+UDELFILE=\"big\"\r");
    assert_eq!(line.until(b"\r\nOK\r\n"), b"\r\nOK\r\n");
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let (emulator, addr, _dir) = emulator();
    let mut plain = Plain(client(addr));
    quiet(&mut plain);
    let mut muxed = Muxed::open(addr, 128);
    quiet(&mut muxed);

    let mut plain_rates = Vec::new();
    let mut mux_rates = Vec::new();
    for _ in 0..ROUNDS {
        plain_rates.push(round_trips(&mut plain));
        mux_rates.push(round_trips(&mut muxed));
    }
    let (p, m) = (median(plain_rates), median(mux_rates));
    println!("1. AT round trips over TCP loopback ({ROUND_TRIPS} per round, median of {ROUNDS})");
    println!("   plain AT                         {p:>10.0} /s");
    println!("   CMUX DLCI 1 (N1 128)             {m:>10.0} /s");
    println!(
        "   ratio CMUX / plain               {:>10.2}   (goal >= 0.8)",
        m / p
    );

    let payload: Vec<u8> = (0..FILE_SIZE).map(|i| (i * 31 + i / 256) as u8).collect();
    let mut muxed_max = Muxed::open(addr, 1509);
    quiet(&mut muxed_max);
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..FILE_ROUNDS {
        rates[0].push(download(&mut plain, &payload));
        rates[1].push(download(&mut muxed, &payload));
        rates[2].push(download(&mut muxed_max, &payload));
    }
    let [plain_bps, mux_bps, max_bps] = rates.map(median);
    let mib = |bps: f64| bps / f64::from(1u32 << 20);
    println!();
    println!("2. 1 MiB +UDWNFILE, prompt to OK (median of {FILE_ROUNDS})");
    println!(
        "   plain AT                         {:>10.1} MiB/s",
        mib(plain_bps)
    );
    println!(
        "   CMUX DLCI 1 (N1 128)             {:>10.1} MiB/s   ratio {:.2}",
        mib(mux_bps),
        mux_bps / plain_bps
    );
    println!(
        "   CMUX DLCI 1 (N1 1509)            {:>10.1} MiB/s   ratio {:.2}",
        mib(max_bps),
        max_bps / plain_bps
    );
    emulator.stop();
}
