//! Issue 12's figures, each next to its baseline in the same run (TCP loopback to the
//! emulator, a loopback echo server):
//!
//! 1. TCP echo through the module's socket, 1 KiB at a time: `+USOWR` in hex mode (two
//!    writes of 512 bytes, the manual's hex limit) and in binary mode (one 1 KiB write), read
//!    back with `+USORD`, vs the same client writing 1 KiB to the echo server directly and
//!    reading it back: KiB/s, the ratio, and the AT overhead per KiB.
//! 2. Memory: RSS of the process with 7 sockets busy at once on one module, and with 100
//!    modules of one busy socket each, vs the same modules with no socket.
//!
//! Only correctness is asserted (every byte comes back), never a time.
//!
//! Run: `cargo bench -p sealcell-testkit --bench sockets`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use sealcell_modem::Module;
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::test_config;

#[path = "support/tcp_at.rs"]
mod tcp_at;
use tcp_at::{At, contains, find};

/// KiB echoed per measurement.
const KIBS: usize = 1024;
const ROUNDS: usize = 3;
const MODULES: usize = 100;

/// A loopback echo server, one thread per connection.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn emulator() -> (Emulator, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator =
        Emulator::new(Module::open(test_config(dir.path()), system_now()).unwrap()).unwrap();
    let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
    (emulator, addr, dir)
}

impl At {
    /// Opens socket 0.. to `echo`; returns its id.
    fn connect(&mut self, echo: SocketAddr) -> u8 {
        let answer = self.command(b"AT+USOCR=6\r");
        let id = text(&answer)
            .split("+USOCR: ")
            .nth(1)
            .and_then(|s| s.trim().split('\r').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap();
        self.command(format!("AT+USOCO={id},\"127.0.0.1\",{}\r", echo.port()).as_bytes());
        id
    }

    /// Reads `len` bytes back from socket `id`, in reads of at most `chunk`.
    fn read_back(&mut self, id: u8, len: usize, chunk: usize, hex: bool) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            let want = chunk.min(len - data.len());
            self.stream
                .write_all(format!("AT+USORD={id},{want}\r").as_bytes())
                .unwrap();
            let answer = self.until(b"\r\nOK\r\n");
            let head = format!("+USORD: {id},");
            let start = find(&answer, head.as_bytes()).unwrap() + head.len();
            let comma = start + answer[start..].iter().position(|b| *b == b',').unwrap();
            let n: usize = text(&answer[start..comma]).parse().unwrap();
            if n == 0 {
                // Nothing yet: the URC says when.
                self.until(b"+UUSORD: ");
                continue;
            }
            let body = &answer[comma + 2..];
            if hex {
                data.extend(hex::decode(&body[..2 * n]).unwrap());
            } else {
                data.extend_from_slice(&body[..n]);
            }
        }
        data
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn kib(i: usize) -> Vec<u8> {
    (0..1024).map(|j| ((i * 7 + j * 13) % 256) as u8).collect()
}

/// KiB/s echoing [`KIBS`] KiB straight to the echo server.
fn direct(echo: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(echo).unwrap();
    s.set_nodelay(true).unwrap();
    let start = Instant::now();
    let mut back = [0u8; 1024];
    for i in 0..KIBS {
        let block = kib(i);
        s.write_all(&block).unwrap();
        s.read_exact(&mut back).unwrap();
        assert_eq!(back.as_slice(), block.as_slice());
    }
    KIBS as f64 / start.elapsed().as_secs_f64()
}

/// KiB/s echoing [`KIBS`] KiB through the module's socket.
fn through_module(addr: SocketAddr, echo: SocketAddr, hex: bool) -> f64 {
    let mut at = At::open(addr);
    at.command(if hex {
        b"AT+UDCONF=1,1\r"
    } else {
        b"AT+UDCONF=1,0\r"
    });
    let id = at.connect(echo);
    let start = Instant::now();
    for i in 0..KIBS {
        let block = kib(i);
        if hex {
            for half in block.chunks(512) {
                let line = format!("AT+USOWR={id},512,\"{}\"\r", hex::encode_upper(half));
                let answer = at.command(line.as_bytes());
                assert!(contains(&answer, format!("+USOWR: {id},512").as_bytes()));
            }
        } else {
            at.stream
                .write_all(format!("AT+USOWR={id},1024\r").as_bytes())
                .unwrap();
            at.until(b"@");
            at.stream.write_all(&block).unwrap();
            let answer = at.until(b"OK\r\n");
            assert!(contains(&answer, format!("+USOWR: {id},1024").as_bytes()));
        }
        let back = at.read_back(id, 1024, if hex { 512 } else { 1024 }, hex);
        assert_eq!(back, block);
    }
    let rate = KIBS as f64 / start.elapsed().as_secs_f64();
    at.command(format!("AT+USOCL={id}\r").as_bytes());
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Keeps every socket busy: each echoes 64 KiB through the module (binary writes, reads).
fn busy(at: &mut At, ids: &[u8]) {
    for round in 0..64 {
        for id in ids {
            at.stream
                .write_all(format!("AT+USOWR={id},1024\r").as_bytes())
                .unwrap();
            at.until(b"@");
            at.stream.write_all(&kib(round)).unwrap();
            at.until(b"OK\r\n");
        }
        for id in ids {
            assert_eq!(at.read_back(*id, 1024, 1024, false), kib(round));
        }
    }
}

fn main() {
    let echo = echo_server();
    let (_emulator, addr, _dir) = emulator();

    let d = median((0..ROUNDS).map(|_| direct(echo)).collect());
    let h = median(
        (0..ROUNDS)
            .map(|_| through_module(addr, echo, true))
            .collect(),
    );
    let b = median(
        (0..ROUNDS)
            .map(|_| through_module(addr, echo, false))
            .collect(),
    );
    println!("1. TCP echo, 1 KiB at a time ({KIBS} KiB per round, median of {ROUNDS})");
    println!("   direct to the echo server              {d:>9.0} KiB/s");
    println!(
        "   module, +USOWR hex (2 x 512) + +USORD  {h:>9.0} KiB/s  ratio {:.3}  AT overhead {:.1} us/KiB",
        h / d,
        (1.0 / h - 1.0 / d) * 1e6
    );
    println!(
        "   module, +USOWR binary (1024) + +USORD  {b:>9.0} KiB/s  ratio {:.3}  AT overhead {:.1} us/KiB",
        b / d,
        (1.0 / b - 1.0 / d) * 1e6
    );

    println!();
    println!("2. RSS of this process (VmRSS)");
    let base = rss_kib();
    let mut at = At::open(addr);
    let ids: Vec<u8> = (0..7).map(|_| at.connect(echo)).collect();
    busy(&mut at, &ids);
    let seven = rss_kib();
    println!("   one module, no socket                  {base:>9} KiB");
    println!(
        "   one module, 7 sockets busy             {seven:>9} KiB  (+{} KiB)",
        seven.saturating_sub(base)
    );

    let modules: Vec<_> = (0..MODULES).map(|_| emulator()).collect();
    let idle = rss_kib();
    let mut lines: Vec<(At, u8)> = modules
        .iter()
        .map(|(_, addr, _)| {
            let mut at = At::open(*addr);
            let id = at.connect(echo);
            (at, id)
        })
        .collect();
    for (at, id) in &mut lines {
        busy(at, &[*id]);
    }
    let hundred = rss_kib();
    println!("   {MODULES} more modules, no socket            {idle:>9} KiB");
    println!(
        "   {MODULES} modules, one socket busy each      {hundred:>9} KiB  (+{} KiB, {:.1} KiB a socket)",
        hundred.saturating_sub(idle),
        hundred.saturating_sub(idle) as f64 / MODULES as f64
    );
}
