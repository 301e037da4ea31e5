//! The timing profile's figures (issue 14, "Real-module timing"): what the emulator on
//! `--timing toby-l2` takes, measured on its real edge (TCP loopback and a pseudo-terminal),
//! next to the table's number and to the same on `--timing fast`, with a raw loopback
//! baseline where the wire is the point:
//!
//! 1. `AT` round trip (median of 20) vs the table's answer latency; baseline: a loopback
//!    echo of the same bytes.
//! 2. `AT+CFUN=4`, `AT+CFUN=1` to `+CEREG: 1` vs the table's registration.
//! 3. `AT+CFUN=16` to the greeting vs the table's `+CFUN` latency and boot.
//! 4. A 1 MiB `+UHTTPC` GET to its `+UUHTTPCR` vs 150 Mbit/s plus the round trip; baseline:
//!    a plain TCP client reading the same response from the same server.
//! 5. 11,520 bytes of `+URDFILE` over the pseudo-terminal vs a second at 115200 baud.
//!
//! The install (210 s of spread progress) is not run here: the virtual-time transcript
//! `tests/transcripts/71-timing.at` has it to the millisecond. Nothing is asserted but that
//! each answer is right.
//!
//! Run: `cargo bench -p sealcell-testkit --bench timing` (about 40 s).

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use sealcell_modem::Module;
use sealcell_modem::timing::{FormKind, Profile, TOBY_L2};
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::test_config;

#[path = "support/tcp_at.rs"]
mod tcp_at;
use tcp_at::{At, read_until};

const MIB: usize = 1 << 20;
const UART_BYTES: usize = 11_520;

struct Running {
    _emulator: Emulator,
    addr: SocketAddr,
    pty: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn emulator(profile: Profile) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir.path().join("m"));
    config.timing = profile;
    let mut emulator = Emulator::new(Module::open(config, system_now()).unwrap()).unwrap();
    let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
    let pty = emulator.open_pty(&dir.path().join("pty")).unwrap();
    Running {
        _emulator: emulator,
        addr,
        pty,
        _dir: dir,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn round_trip(at: &mut At) -> Duration {
    median(
        (0..20)
            .map(|_| {
                let start = Instant::now();
                at.command(b"AT\r");
                start.elapsed()
            })
            .collect(),
    )
}

fn echo_round_trip() -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(b"\r\nOK\r\n").is_err() {
                break;
            }
        }
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut got = Vec::new();
    median(
        (0..20)
            .map(|_| {
                let start = Instant::now();
                stream.write_all(b"AT\r").unwrap();
                read_until(&mut stream, &mut got, b"OK\r\n");
                start.elapsed()
            })
            .collect(),
    )
}

fn registration(at: &mut At) -> Duration {
    at.command(b"AT+CEREG=1\r");
    at.command(b"AT+CFUN=4\r");
    at.until(b"+CEREG: 0\r\n");
    let start = Instant::now();
    at.command(b"AT+CFUN=1\r");
    at.until(b"+CEREG: 1\r\n");
    start.elapsed()
}

fn reboot(at: &mut At) -> Duration {
    at.command(b"AT+CSGT=1,\"ready\"\r");
    let start = Instant::now();
    at.send(b"AT+CFUN=16\r");
    at.until(b"ready\r\n");
    let took = start.elapsed();
    at.command(b"ATE0\r");
    took
}

fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let body = vec![b'x'; MIB];
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut request = Vec::new();
            let mut b = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                request.push(b[0]);
            }
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {MIB}\r\nConnection: close\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

fn download(at: &mut At, port: u16) -> Duration {
    at.command(b"AT+UHTTP=0,0,\"127.0.0.1\"\r");
    at.command(format!("AT+UHTTP=0,5,{port}\r").as_bytes());
    median(
        (0..3)
            .map(|_| {
                let start = Instant::now();
                at.command(b"AT+UHTTPC=0,1,\"/\",\"big\"\r");
                at.until(b"+UUHTTPCR: 0,1,1\r\n");
                start.elapsed()
            })
            .collect(),
    )
}

fn raw_download(port: u16) -> Duration {
    median(
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap();
                assert!(all.len() > MIB);
                start.elapsed()
            })
            .collect(),
    )
}

/// Writes a file of [`UART_BYTES`] over TCP, then reads it over the pseudo-terminal.
fn over_the_uart(at: &mut At, pty: &std::path::Path) -> Duration {
    at.send(format!("AT+UDWNFILE=\"u\",{UART_BYTES}\r").as_bytes());
    at.until(b">");
    at.send(&vec![b'u'; UART_BYTES]);
    at.until(b"OK\r\n");
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(pty)
        .unwrap();
    let mut got = Vec::new();
    tty.write_all(b"ATE0\r").unwrap();
    read_until(&mut tty, &mut got, b"OK\r\n");
    let start = Instant::now();
    tty.write_all(b"AT+URDFILE=\"u\"\r").unwrap();
    let answer = read_until(&mut tty, &mut got, b"\"\r\n\r\nOK\r\n");
    let took = start.elapsed();
    assert!(answer.len() > UART_BYTES);
    at.command(b"AT+UDELFILE=\"u\"\r");
    took
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let port = http_server();
    let fast = emulator(Profile::Fast);
    let toby = emulator(Profile::TobyL2);
    let (mut f, mut t) = (At::open(fast.addr), At::open(toby.addr));
    let rate = TOBY_L2.downlink_bytes_per_s.unwrap() as f64;
    let rows = [
        (
            "AT round trip (median of 20)",
            ms(TOBY_L2.answer),
            round_trip(&mut t),
            round_trip(&mut f),
            format!("loopback echo {}", ms(echo_round_trip())),
        ),
        (
            "CFUN=1 to +CEREG: 1",
            ms(TOBY_L2.registration),
            registration(&mut t),
            registration(&mut f),
            String::new(),
        ),
        (
            "CFUN=16 to the greeting",
            ms(TOBY_L2.answer_latency("+CFUN", FormKind::Set) + TOBY_L2.boot),
            reboot(&mut t),
            reboot(&mut f),
            String::new(),
        ),
        (
            "1 MiB +UHTTPC GET (median of 3)",
            ms(TOBY_L2.network_latency + Duration::from_secs_f64(MIB as f64 / rate)),
            download(&mut t, port),
            download(&mut f, port),
            format!("plain TCP client {}", ms(raw_download(port))),
        ),
        (
            "11,520 bytes of +URDFILE on the PTY",
            ms(TOBY_L2.on_the_wire(UART_BYTES)),
            over_the_uart(&mut t, &toby.pty),
            over_the_uart(&mut f, &fast.pty),
            String::new(),
        ),
    ];
    println!(
        "{:<38} {:>12} {:>12} {:>12}  baseline",
        "figure", "table", "toby-l2", "fast"
    );
    for (name, table, toby_l2, fast, baseline) in rows {
        println!(
            "{name:<38} {table:>12} {:>12} {:>12}  {baseline}",
            ms(toby_l2),
            ms(fast)
        );
    }
}
