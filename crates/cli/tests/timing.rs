//! The timing profile on the real binary (`sealcell modem --timing toby-l2`): a reboot, a
//! 1 MiB download and a file over the pseudo-terminal's UART, each against the same on
//! `--timing fast`. Ratios and the table's lower bounds, never an upper bound on wall time:
//! the exact durations are the virtual-time transcript's (`tests/transcripts/71-timing.at`).

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{At, BIN, Modem, TEST_IMEI, taken};
use sealcell_modem::timing::TOBY_L2;

const MIB: usize = 1 << 20;

fn modem(dir: &std::path::Path, timing: &str, extra: &[&str]) -> Modem {
    let mut args = vec!["--imei", TEST_IMEI, "--timing", timing];
    args.extend_from_slice(extra);
    Modem::start(dir, &args)
}

/// From `AT+CFUN=16` to the greeting of the new boot, with an `AT` sent as soon as the `OK`
/// is in: what the module said meanwhile is exactly the `OK` and the greeting.
fn reboot_time(at: &mut At) -> Duration {
    at.cmd("ATE0");
    assert_eq!(at.cmd("AT+CSGT=1,\"ready\""), "\r\nOK\r\n");
    let start = Instant::now();
    at.send(b"AT+CFUN=16\r");
    let mut said = Vec::new();
    let mut sent_at = false;
    let mut chunk = [0u8; 256];
    while !said.ends_with(b"\r\nready\r\n") {
        let n = at.stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&said));
        said.extend_from_slice(&chunk[..n]);
        if !sent_at && said.starts_with(b"\r\nOK\r\n") {
            at.send(b"AT\r");
            sent_at = true;
        }
    }
    let took = start.elapsed();
    assert_eq!(said, b"\r\nOK\r\n\r\nready\r\n");
    took
}

#[test]
fn a_reboot_takes_a_real_modules_boot_time_and_loses_what_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let fast = modem(&dir.path().join("fast"), "fast", &[]);
    let mut at = fast.connect();
    let fast_boot = reboot_time(&mut at);
    // Fast: the AT after the reboot is answered (echo is on again after a boot).
    assert_eq!(at.read_until(b"\r\nOK\r\n"), b"AT\r\r\nOK\r\n");

    let mut toby = modem(
        &dir.path().join("toby"),
        "toby-l2",
        &["--control", "tcp:127.0.0.1:0"],
    );
    let control = toby.control();
    // The bench says which profile the module runs on.
    let status = taken(&control, &["status"]);
    assert!(status.ends_with("\ntiming: toby-l2\n"), "{status:?}");
    let mut at = toby.connect();
    let toby_boot = reboot_time(&mut at);
    // The OK's latency, then the boot window (the table's lower bound).
    let cfun = TOBY_L2.answer_latency("+CFUN", sealcell_modem::timing::FormKind::Set);
    assert!(toby_boot >= cfun + TOBY_L2.boot, "{toby_boot:?}");
    assert!(
        toby_boot.as_secs_f64() >= 10.0 * fast_boot.as_secs_f64(),
        "toby-l2 {toby_boot:?} vs fast {fast_boot:?}"
    );
    // The AT sent during the boot was lost: the next answer is to the next command.
    assert_eq!(at.cmd("AT+CGMI"), "AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n");

    // The bench's reboot, after the module sat idle: its boot window starts when it is asked
    // for, not at the module's last command.
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    assert_eq!(taken(&control, &["reboot"]), "rebooted\n");
    assert_eq!(at.read_until(b"\r\nready\r\n"), b"\r\nready\r\n");
    let bench_boot = start.elapsed();
    assert!(bench_boot >= TOBY_L2.boot, "{bench_boot:?}");
    eprintln!(
        "reboot: toby-l2 {toby_boot:?}, fast {fast_boot:?}, ratio {:.0}",
        toby_boot.as_secs_f64() / fast_boot.as_secs_f64()
    );
}

/// The response head of a body of `len` bytes.
fn head(len: usize) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
}

/// A server on loopback that answers every request with `body`.
fn serve(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let _ = stream.write_all(head(body.len()).as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// The fastest of three `+UHTTPC` GETs of `port`'s body, from the command to its URC.
fn download_time(at: &mut At, port: u16) -> Duration {
    at.cmd("ATE0;+CMEE=1");
    assert_eq!(at.cmd("AT+UHTTP=0,0,\"127.0.0.1\""), "\r\nOK\r\n");
    assert_eq!(at.cmd(&format!("AT+UHTTP=0,5,{port}")), "\r\nOK\r\n");
    (0..3)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(at.cmd("AT+UHTTPC=0,1,\"/\",\"big\""), "\r\nOK\r\n");
            assert_eq!(
                at.read_until(b"\r\n+UUHTTPCR: 0,1,1\r\n"),
                b"\r\n+UUHTTPCR: 0,1,1\r\n"
            );
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn a_mebibyte_comes_down_at_the_lte_cat_4_rate() {
    let dir = tempfile::tempdir().unwrap();
    let port = serve(vec![b'x'; MIB]);
    let fast = modem(&dir.path().join("fast"), "fast", &[]);
    let fast_time = download_time(&mut fast.connect(), port);
    let toby = modem(&dir.path().join("toby"), "toby-l2", &[]);
    let mut at = toby.connect();
    let toby_time = download_time(&mut at, port);
    // The file is whole: the response's head and body.
    assert_eq!(
        at.cmd("AT+ULSTFILE=2,\"big\""),
        format!("\r\n+ULSTFILE: {}\r\n\r\nOK\r\n", head(MIB).len() + MIB)
    );
    // 150 Mbit/s and the radio's round trip, at least.
    let rate = TOBY_L2.downlink_bytes_per_s.unwrap();
    let floor = TOBY_L2.network_latency + Duration::from_secs_f64(MIB as f64 / rate as f64);
    assert!(toby_time >= floor, "{toby_time:?} < {floor:?}");
    assert!(
        toby_time.as_secs_f64() >= 1.5 * fast_time.as_secs_f64(),
        "toby-l2 {toby_time:?} vs fast {fast_time:?}"
    );
    eprintln!(
        "1 MiB download: toby-l2 {toby_time:?}, fast {fast_time:?}, ratio {:.1}",
        toby_time.as_secs_f64() / fast_time.as_secs_f64()
    );
}

/// Uploads and reads back `size` bytes with `sealcell at` over the pseudo-terminal `link`.
fn over_the_uart(link: &std::path::Path, size: usize) -> Duration {
    let file = link.with_extension("bin");
    std::fs::write(&file, vec![b'u'; size]).unwrap();
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(["at", "--port", link.to_str().unwrap(), "--payload"])
        .arg(&file)
        .args([
            &format!("AT+UDWNFILE=\"u\",{size}"),
            "AT+URDFILE=\"u\"",
            "AT+UDELFILE=\"u\"",
        ])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("+URDFILE: \"u\",{size},\"{}\"", "u".repeat(size))),
        "{stdout}"
    );
    took
}

#[test]
fn a_pseudo_terminal_carries_bytes_at_115200_baud() {
    let dir = tempfile::tempdir().unwrap();
    let size = 11_520; // a second of the UART, each way
    let fast_link = dir.path().join("fast.pty");
    let _fast = modem(
        &dir.path().join("fast"),
        "fast",
        &["--pty", fast_link.to_str().unwrap()],
    );
    let fast_time = over_the_uart(&fast_link, size);
    let toby_link = dir.path().join("toby.pty");
    let _toby = modem(
        &dir.path().join("toby"),
        "toby-l2",
        &["--pty", toby_link.to_str().unwrap()],
    );
    let toby_time = over_the_uart(&toby_link, size);
    // The file went down the line and came back up it.
    assert!(toby_time >= 2 * TOBY_L2.on_the_wire(size), "{toby_time:?}");
    assert!(
        toby_time.as_secs_f64() >= 4.0 * fast_time.as_secs_f64(),
        "toby-l2 {toby_time:?} vs fast {fast_time:?}"
    );
    eprintln!(
        "11,520 bytes each way on a PTY: toby-l2 {toby_time:?}, fast {fast_time:?}, ratio {:.1}",
        toby_time.as_secs_f64() / fast_time.as_secs_f64()
    );
}
