//! Issue 2's and issue 11's figures, each printed next to a baseline measured in the same run:
//!
//! 1. In-process parse + dispatch + format of `AT` and `AT+CGMI`, commands per second
//!    (goal >= 1 M/s); baseline: the `sealcell-at` line assembler and parser alone.
//! 2. Round trips of `AT` over TCP loopback against the emulator, and against a raw TCP echo
//!    server in this process: the ratio (goal >= 0.8).
//! 3. URC latency to an idle channel: from just before channel A writes `AT+CFUN=4`/`=1` to
//!    channel B (`AT+CEREG=1`, only reading) having read its `+CEREG` line, p50/p99 (goal p99
//!    < 1 ms); baseline: a thread relaying one byte from one loopback socket to another.
//! 4. Idle CPU of 1,000 connected channels (each answered one `AT`) over a 5 s sleep: process
//!    CPU (getrusage) per second and per channel (goal < 1 % of a core); baseline: the same
//!    1,000 connections accepted by a plain `TcpListener` and parked, no emulator running.
//! 5. `AT` round trips p50/p99 idle, then under load from 15 threads alternating a 4 KiB
//!    `+UDWNFILE` and a `+USECMNG` import of `root.pem`: the ratio of the p99s (goal <= 2.0)
//!    and the load's operations per second.
//!
//! The module's data directories are temporary directories; the file system they are on
//! (fsync cost depends on it) is printed first. Only correctness is asserted (the exact
//! answers), never a time.
//!
//! Run: `cargo bench -p sealcell-testkit --bench at_throughput`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};

use sealcell_at::line::{LineAssembler, Push};
use sealcell_at::syntax::{Line, parse_line};
use sealcell_modem::{Channel, Module};
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::transcript::{pki_facts, pki_fixture};
use sealcell_testkit::{test_config, virtual_now};

const IN_PROCESS_COMMANDS: usize = 2_000_000;
const ROUND_TRIPS: usize = 20_000;
const ROUNDS: usize = 3;
/// URC latency samples (half `AT+CFUN=4`, half `AT+CFUN=1`), and as many of the baseline.
const URC_SAMPLES: usize = 1_000;
const IDLE_CHANNELS: usize = 1_000;
const IDLE_SLEEP: Duration = Duration::from_secs(5);
/// `AT` round trips per latency run (idle, then under load), one started every
/// `LATENCY_PERIOD` (or at once when the last one overran): a host asking at random instants.
/// Back to back, a stall of the module would be one slow sample among however many fast ones
/// fit around it, so the p99 would count trips rather than time.
const LATENCY_TRIPS: usize = 2_000;
const LATENCY_PERIOD: Duration = Duration::from_millis(1);
const LOAD_THREADS: usize = 15;
const LOAD_FILE_SIZE: usize = 4096;
/// How long the load runs before the measuring client starts.
const LOAD_SETTLE: Duration = Duration::from_millis(500);
/// Every client socket gives up on a silent module after this long (a hung bench fails).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

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
        "sealcell issue 2 and 11 benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "data directories in {}: {}",
        dir.path().parent().unwrap_or(dir.path()).display(),
        filesystem_of(dir.path())
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

    urc_latency();
    idle_cpu();
    load_latency();
}

/// The file system holding `path` (the longest mount point of `/proc/mounts` it is under):
/// `<type> (<device> on <mount point>)`.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown (no /proc/mounts)".into();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 3 && path.starts_with(f[1]))
                .then(|| (f[1].len(), format!("{} ({} on {})", f[2], f[0], f[1])))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

/// An emulator on a fresh module in a temporary directory, listening on loopback.
fn emulator() -> (Emulator, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator =
        Emulator::new(Module::open(test_config(dir.path()), system_now()).unwrap()).unwrap();
    let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
    (emulator, addr, dir)
}

/// A client socket: `TCP_NODELAY`, and a read that gives up on a silent peer.
fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    s
}

/// A client of the emulator with echo off.
fn quiet_client(addr: SocketAddr) -> TcpStream {
    let mut s = client(addr);
    s.write_all(b"ATE0\r").unwrap();
    expect(&mut s, b"ATE0\r\r\nOK\r\n");
    s
}

/// Reads exactly as many bytes as `reply` has and asserts they are `reply`.
fn expect(stream: &mut TcpStream, reply: &[u8]) {
    let mut got = vec![0u8; reply.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(
        got,
        reply,
        "{:?} instead of {:?}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(reply)
    );
}

/// The p50 and p99 (nearest rank) of `samples`, in microseconds.
fn p50_p99(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1].as_secs_f64() * 1e6
    };
    (at(0.50), at(0.99))
}

/// Two loopback connections and a thread that writes one byte to the second for every byte
/// it reads from the first: what waking another socket's reader costs without the emulator.
fn notify_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let x = client(addr);
    let (mut xs, _) = listener.accept().unwrap();
    let y = client(addr);
    let (mut ys, _) = listener.accept().unwrap();
    ys.set_nodelay(true).unwrap();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        // Ends when `x` is dropped.
        while let Ok(1) = xs.read(&mut byte) {
            if ys.write_all(&byte).is_err() {
                break;
            }
        }
    });
    (x, y)
}

/// Figure 3: channel A toggles the radio; channel B (`+CEREG=1`) only reads, and its `+CEREG`
/// URC is timed from just before A writes. Interleaved with the raw notify baseline.
fn urc_latency() {
    const WARM_UP: usize = 20;
    let (emulator, addr, _dir) = emulator();
    let mut b = quiet_client(addr);
    b.write_all(b"AT+CEREG=1\r").unwrap();
    expect(&mut b, b"\r\nOK\r\n");
    let mut a = quiet_client(addr);
    let (mut x, mut y) = notify_pair();
    let steps: [(&[u8], &[u8]); 2] = [
        (b"AT+CFUN=4\r", b"\r\n+CEREG: 0\r\n"),
        (b"AT+CFUN=1\r", b"\r\n+CEREG: 1\r\n"),
    ];
    let mut emu = Vec::with_capacity(URC_SAMPLES);
    let mut base = Vec::with_capacity(URC_SAMPLES);
    let mut byte = [0u8; 1];
    // An even count: the radio ends on, as it started.
    for i in 0..WARM_UP + URC_SAMPLES {
        let (command, urc) = steps[i % 2];
        let start = Instant::now();
        a.write_all(command).unwrap();
        expect(&mut b, urc);
        let urc_time = start.elapsed();
        expect(&mut a, b"\r\nOK\r\n");

        let start = Instant::now();
        x.write_all(&[1]).unwrap();
        y.read_exact(&mut byte).unwrap();
        let notify_time = start.elapsed();
        if i >= WARM_UP {
            emu.push(urc_time);
            base.push(notify_time);
        }
    }
    // B was sent nothing else: its next answer is exactly an OK.
    b.write_all(b"AT\r").unwrap();
    expect(&mut b, b"\r\nOK\r\n");
    emulator.stop();

    let (emu50, emu99) = p50_p99(emu);
    let (base50, base99) = p50_p99(base);
    println!();
    println!("3. URC latency to an idle channel ({URC_SAMPLES} samples each, interleaved)");
    println!(
        "   emulator  A CFUN=4/1 -> B +CEREG  p50 {emu50:>8.1} us   p99 {emu99:>8.1} us   (goal p99 < 1000 us)"
    );
    println!("   baseline  raw TCP notify thread   p50 {base50:>8.1} us   p99 {base99:>8.1} us");
}

/// Raises the soft `RLIMIT_NOFILE` to at least `need` (within the hard limit); says what it did.
fn raise_nofile(need: u64) -> String {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft >= need {
        return format!("RLIMIT_NOFILE {soft}, not raised");
    }
    assert!(
        hard >= need,
        "the RLIMIT_NOFILE hard limit {hard} is below the {need} descriptors needed"
    );
    setrlimit(Resource::RLIMIT_NOFILE, need, hard).unwrap();
    format!("RLIMIT_NOFILE raised from {soft} to {need}")
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let duration = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap())
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap())
    };
    duration(usage.user_time()) + duration(usage.system_time())
}

/// The process's CPU milliseconds per second over an `IDLE_SLEEP` of the calling thread.
fn idle_cpu_ms_per_s() -> f64 {
    // Let the last answers and accepts finish before counting.
    std::thread::sleep(Duration::from_millis(200));
    let (cpu, start) = (cpu_time(), Instant::now());
    std::thread::sleep(IDLE_SLEEP);
    let (used, elapsed) = (cpu_time() - cpu, start.elapsed());
    used.as_secs_f64() * 1e3 / elapsed.as_secs_f64()
}

/// Figure 4: the process's CPU while 1,000 channels sit idle; baseline: the same connections
/// parked on a plain listener, with no emulator in the process.
fn idle_cpu() {
    let limit = raise_nofile(2 * IDLE_CHANNELS as u64 + 256);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = std::thread::spawn(move || {
        (0..IDLE_CHANNELS)
            .map(|_| listener.accept().unwrap().0)
            .collect::<Vec<_>>()
    });
    let clients: Vec<TcpStream> = (0..IDLE_CHANNELS).map(|_| client(addr)).collect();
    let parked = acceptor.join().unwrap();
    let base = idle_cpu_ms_per_s();
    drop(parked);
    drop(clients);

    let (emulator, addr, _dir) = emulator();
    let mut clients: Vec<TcpStream> = (0..IDLE_CHANNELS)
        .map(|_| {
            let mut c = client(addr);
            c.write_all(b"AT\r").unwrap();
            expect(&mut c, b"AT\r\r\nOK\r\n");
            c
        })
        .collect();
    let emu = idle_cpu_ms_per_s();
    // The channels are still there and answer.
    for c in clients.iter_mut().step_by(50) {
        c.write_all(b"AT\r").unwrap();
        expect(c, b"AT\r\r\nOK\r\n");
    }
    emulator.stop();
    drop(clients);

    let per_channel = |ms_per_s: f64| ms_per_s * 1e3 / IDLE_CHANNELS as f64;
    println!();
    println!(
        "4. idle CPU of the process over {} s, {IDLE_CHANNELS} connections, each answered one AT ({limit})",
        IDLE_SLEEP.as_secs()
    );
    println!(
        "   emulator  {IDLE_CHANNELS} open channels      {emu:>8.3} ms/s   ({:.3} % of a core, {:.3} us/s per channel)   (goal < 1 % of a core)",
        emu / 10.0,
        per_channel(emu)
    );
    println!(
        "   baseline  parked TcpListener      {base:>8.3} ms/s   ({:.3} % of a core, {:.3} us/s per channel)",
        base / 10.0,
        per_channel(base)
    );
}

/// `LATENCY_TRIPS` timed `AT` round trips, one per `LATENCY_PERIOD`, after 200 untimed ones.
fn at_latencies(s: &mut TcpStream) -> Vec<Duration> {
    latencies(s, b"AT\r", b"\r\nOK\r\n")
}

/// `LATENCY_TRIPS` timed round trips of `request` answered by `reply`, one per
/// `LATENCY_PERIOD`, after 200 untimed ones.
fn latencies(s: &mut TcpStream, request: &[u8], reply: &[u8]) -> Vec<Duration> {
    let mut buf = vec![0u8; reply.len()];
    let mut once = || {
        let start = Instant::now();
        s.write_all(request).unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, reply);
        start.elapsed()
    };
    for _ in 0..200 {
        once();
    }
    let mut next = Instant::now();
    (0..LATENCY_TRIPS)
        .map(|_| {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            next = Instant::now() + LATENCY_PERIOD;
            once()
        })
        .collect()
}

/// What one load thread did.
#[derive(Default)]
struct LoadStats {
    /// Each `+UDWNFILE`, from its command to its `OK`.
    uploads: Vec<Duration>,
    /// Each `+USECMNG` import, from its command to its `OK`.
    imports: Vec<Duration>,
}

/// One load thread: alternately a `LOAD_FILE_SIZE` `+UDWNFILE` to `load<i>` (appended: the
/// module's `+UDWNFILE` appends to an existing file) and a `+USECMNG` import of `pem` as the
/// trusted root CA `ca<i>`, until `stop`.
fn load(
    addr: SocketAddr,
    i: usize,
    pem: &[u8],
    md5: &str,
    stop: &AtomicBool,
    ops: &AtomicU64,
    ready: &Barrier,
) -> LoadStats {
    let mut s = quiet_client(addr);
    let data: Vec<u8> = (0..LOAD_FILE_SIZE).map(|n| (n % 251) as u8).collect();
    let upload = format!("AT+UDWNFILE=\"load{i}\",{LOAD_FILE_SIZE}\r");
    let import = format!("AT+USECMNG=0,0,\"ca{i}\",{}\r", pem.len());
    let imported = format!("\r\n+USECMNG: 0,0,\"ca{i}\",\"{md5}\"\r\n\r\nOK\r\n");
    let mut stats = LoadStats::default();
    ready.wait();
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        if stats.uploads.len() <= stats.imports.len() {
            s.write_all(upload.as_bytes()).unwrap();
            expect(&mut s, b"\r\n>");
            s.write_all(&data).unwrap();
            expect(&mut s, b"\r\nOK\r\n");
            stats.uploads.push(start.elapsed());
        } else {
            s.write_all(import.as_bytes()).unwrap();
            expect(&mut s, b"\r\n>");
            s.write_all(pem).unwrap();
            expect(&mut s, imported.as_bytes());
            stats.imports.push(start.elapsed());
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
    stats
}

/// Figure 5: `AT` round trips of one client, idle and then while `LOAD_THREADS` threads upload
/// files and import certificates on their own channels.
fn load_latency() {
    let (emulator, addr, _dir) = emulator();
    let pem = pki_fixture("root.pem").unwrap();
    let md5 = pki_facts().unwrap()["root.pem"][0].clone();
    let mut probe = quiet_client(addr);
    let idle = at_latencies(&mut probe);
    // The machine's own share: the same round trip against a raw echo server in this process,
    // idle and under the same load. On a small machine the load's threads (its clients are in
    // this process too) and its fsyncs slow every round trip, emulator or not.
    let mut echo = client(echo_server());
    let echo_idle = latencies(&mut echo, b"\r\nOK\r\n", b"\r\nOK\r\n");

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(LOAD_THREADS + 1));
    let threads: Vec<_> = (0..LOAD_THREADS)
        .map(|i| {
            let (stop, ops, ready) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&ready));
            let (pem, md5) = (pem.clone(), md5.clone());
            std::thread::spawn(move || load(addr, i, &pem, &md5, &stop, &ops, &ready))
        })
        .collect();
    ready.wait();
    let load_start = Instant::now();
    std::thread::sleep(LOAD_SETTLE);
    let (ops_before, start) = (ops.load(Ordering::Relaxed), Instant::now());
    let loaded = at_latencies(&mut probe);
    let (ops_during, measured) = (ops.load(Ordering::Relaxed) - ops_before, start.elapsed());
    let echo_loaded = latencies(&mut echo, b"\r\nOK\r\n", b"\r\nOK\r\n");
    stop.store(true, Ordering::Relaxed);
    let stats: Vec<LoadStats> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let load_time = load_start.elapsed();
    // The module still answers exactly.
    probe.write_all(b"AT\r").unwrap();
    expect(&mut probe, b"\r\nOK\r\n");
    emulator.stop();

    let uploads: Vec<Duration> = stats.iter().flat_map(|s| s.uploads.clone()).collect();
    let imports: Vec<Duration> = stats.iter().flat_map(|s| s.imports.clone()).collect();
    assert!(
        stats
            .iter()
            .all(|s| !s.uploads.is_empty() && !s.imports.is_empty()),
        "every load thread uploads and imports"
    );
    let largest = stats.iter().map(|s| s.uploads.len()).max().unwrap_or(0) * LOAD_FILE_SIZE;
    let (n_uploads, n_imports) = (uploads.len(), imports.len());
    let (idle50, idle99) = p50_p99(idle);
    let (load50, load99) = p50_p99(loaded);
    let (echo_idle50, echo_idle99) = p50_p99(echo_idle);
    let (echo_load50, echo_load99) = p50_p99(echo_loaded);
    let (up50, up99) = p50_p99(uploads);
    let (im50, im99) = p50_p99(imports);
    println!();
    println!(
        "5. AT round trips, idle then under load ({LATENCY_TRIPS} each, one per {} ms; {LOAD_THREADS} threads alternating +UDWNFILE {LOAD_FILE_SIZE} B / +USECMNG root.pem)",
        LATENCY_PERIOD.as_millis()
    );
    println!("   idle      AT -> OK                p50 {idle50:>8.1} us   p99 {idle99:>8.1} us");
    println!("   loaded    AT -> OK                p50 {load50:>8.1} us   p99 {load99:>8.1} us");
    println!(
        "   ratio p99 loaded / idle                            {:>8.2}      (goal <= 2.00)",
        load99 / idle99
    );
    println!(
        "   baseline  raw TCP echo, idle      p50 {echo_idle50:>8.1} us   p99 {echo_idle99:>8.1} us"
    );
    println!(
        "   baseline  raw TCP echo, loaded    p50 {echo_load50:>8.1} us   p99 {echo_load99:>8.1} us   (the same load on the emulator)"
    );
    println!(
        "   ratio p99 loaded / idle, echo                      {:>8.2}      (the machine's share)",
        echo_load99 / echo_idle99
    );
    println!(
        "   ratio p99 loaded, emulator / echo                  {:>8.2}",
        load99 / echo_load99
    );
    println!(
        "   load      operations                  {:>8.0} /s   while measured ({ops_during} in {:.1} s)",
        ops_during as f64 / measured.as_secs_f64(),
        measured.as_secs_f64()
    );
    println!(
        "   load      +UDWNFILE {LOAD_FILE_SIZE} B          p50 {up50:>8.1} us   p99 {up99:>8.1} us   ({n_uploads} in {:.1} s; files appended to {} KiB)",
        load_time.as_secs_f64(),
        largest / 1024
    );
    println!(
        "   load      +USECMNG import         p50 {im50:>8.1} us   p99 {im99:>8.1} us   ({n_imports})"
    );
}
