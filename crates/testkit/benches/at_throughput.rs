//! Issue 2's figures, each printed next to a baseline measured in the same run:
//!
//! 1. In-process parse + dispatch + format of `AT` and `AT+CGMI`, commands per second
//!    (goal >= 1 M/s); baseline: the `sealcell-at` line assembler and parser alone.
//! 2. Round trips of `AT` over TCP loopback against the emulator, and against a raw TCP echo
//!    server in this process: the ratio (goal >= 0.8).
//!
//! Run: `cargo bench -p sealcell-testkit --bench at_throughput`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use sealcell_at::line::{LineAssembler, Push};
use sealcell_at::syntax::{Line, parse_line};
use sealcell_modem::{Channel, Module};
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::{test_config, virtual_now};

const IN_PROCESS_COMMANDS: usize = 2_000_000;
const ROUND_TRIPS: usize = 20_000;
const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn engine_rate(module: &mut Module, channel: &mut Channel, line: &[u8], expect: &[u8]) -> f64 {
    let mut out = Vec::with_capacity(64);
    // One virtual instant for the whole run: the clock is not what is measured.
    let now = virtual_now();
    channel.feed(module, line, now, &mut out);
    assert_eq!(out, expect, "{:?}", String::from_utf8_lossy(line));
    let start = Instant::now();
    for _ in 0..IN_PROCESS_COMMANDS {
        out.clear();
        channel.feed(module, line, now, &mut out);
    }
    std::hint::black_box(&out);
    IN_PROCESS_COMMANDS as f64 / start.elapsed().as_secs_f64()
}

fn parser_rate(line: &[u8]) -> f64 {
    let mut a = LineAssembler::new();
    let start = Instant::now();
    let mut commands = 0usize;
    for _ in 0..IN_PROCESS_COMMANDS {
        for &b in line {
            if a.push(b) == Push::Line
                && let Ok(Line::Commands(cl)) = parse_line(a.line())
            {
                commands += cl.commands().count() + 1;
            }
        }
    }
    std::hint::black_box(commands);
    IN_PROCESS_COMMANDS as f64 / start.elapsed().as_secs_f64()
}

fn round_trips(stream: &mut TcpStream, request: &[u8], reply: &[u8]) -> f64 {
    let mut buf = [0u8; 256];
    let mut once = || {
        stream.write_all(request).unwrap();
        let mut got = 0;
        while got < reply.len() {
            let n = stream.read(&mut buf[got..]).unwrap();
            assert!(n > 0);
            got += n;
        }
        assert_eq!(&buf[..got], reply);
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

fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            s.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let now = virtual_now();
    let mut module = Module::open(test_config(dir.path()), now).unwrap();
    let mut channel = Channel::new(&mut module);
    let mut out = Vec::new();
    channel.feed(&mut module, b"ATE0\r", now, &mut out);

    println!(
        "sealcell issue 2 benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "1. in-process, commands per second (median of {ROUNDS} runs of {IN_PROCESS_COMMANDS})"
    );
    println!(
        "   {:<12} {:>16} {:>26}",
        "command", "engine (goal 1M)", "baseline: assembler+parser"
    );
    for (line, expect) in [
        (&b"AT\r"[..], &b"\r\nOK\r\n"[..]),
        (b"AT+CGMI\r", b"\r\nu-blox\r\n\r\nOK\r\n"),
    ] {
        let engine = median(
            (0..ROUNDS)
                .map(|_| engine_rate(&mut module, &mut channel, line, expect))
                .collect(),
        );
        let parser = median((0..ROUNDS).map(|_| parser_rate(line)).collect());
        let name = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
        println!(
            "   {name:<12} {:>14.2} M {:>24.2} M",
            engine / 1e6,
            parser / 1e6
        );
    }
    drop(channel);
    drop(module);

    let dir = tempfile::tempdir().unwrap();
    let mut emulator =
        Emulator::new(Module::open(test_config(dir.path()), system_now()).unwrap()).unwrap();
    let at_addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
    let mut at = TcpStream::connect(at_addr).unwrap();
    at.set_nodelay(true).unwrap();
    at.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    at.write_all(b"ATE0\r").unwrap();
    let mut ack = [0u8; 11];
    at.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"ATE0\r\r\nOK\r\n");
    let mut echo = TcpStream::connect(echo_server()).unwrap();
    echo.set_nodelay(true).unwrap();

    let mut emu_rates = Vec::new();
    let mut echo_rates = Vec::new();
    for _ in 0..ROUNDS {
        emu_rates.push(round_trips(&mut at, b"AT\r", b"\r\nOK\r\n"));
        echo_rates.push(round_trips(&mut echo, b"AT\r", b"AT\r"));
    }
    let (emu, base) = (median(emu_rates), median(echo_rates));
    println!();
    println!(
        "2. TCP loopback round trips per second (median of {ROUNDS} runs of {ROUND_TRIPS}, interleaved)"
    );
    println!(
        "   emulator  AT -> OK           {emu:>10.0} /s   ({:.1} us each)",
        1e6 / emu
    );
    println!(
        "   baseline  raw TCP echo       {base:>10.0} /s   ({:.1} us each)",
        1e6 / base
    );
    println!(
        "   ratio emulator / echo        {:>10.2}      (goal >= 0.80)",
        emu / base
    );
    emulator.stop();
}
