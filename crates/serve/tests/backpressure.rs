//! A host that pipelines commands and never reads costs the module about one output buffer,
//! and the other channels go on; once it reads, it gets every answer, whole and in order.
//!
//! In a file of its own: it measures the resident memory of this test process, which holds
//! the emulator, so no other test may run beside it.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use common::Rig;

const FILE_SIZE: usize = 1 << 20;
const READS: usize = 1024;

/// The resident set of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_client_that_does_not_read_holds_back_its_own_input_only() {
    let rig = Rig::start();
    let mut greedy = rig.connect();
    greedy.echo_off();
    let data: Vec<u8> = (0..FILE_SIZE).map(|i| (i * 31 + 7) as u8).collect();
    greedy.send(format!("AT+UDWNFILE=\"big\",{FILE_SIZE}\r").as_bytes());
    greedy.expect(b"\r\n>");
    greedy.send(&data);
    greedy.expect_within(b"\r\nOK\r\n", Duration::from_secs(30));

    let mut answer = format!("\r\n+URDFILE: \"big\",{FILE_SIZE},\"").into_bytes();
    answer.extend_from_slice(&data);
    answer.extend_from_slice(b"\"\r\n\r\nOK\r\n");
    let mut commands = Vec::new();
    for _ in 0..READS {
        commands.extend_from_slice(b"AT+URDFILE=\"big\"\r");
    }

    // 1,024 answers of 1 MiB asked for at once, and none read.
    let before = rss();
    greedy.send(&commands);
    let mut peak = before;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(3) {
        peak = peak.max(rss());
        std::thread::sleep(Duration::from_millis(50));
    }
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 64 << 20,
        "resident memory grew by {} MiB",
        growth >> 20
    );

    // Another channel is answered meanwhile.
    let mut other = rig.connect();
    other.send(b"AT\r");
    let took = other.expect_within(b"AT\r\r\nOK\r\n", Duration::from_secs(5));
    assert!(
        took < Duration::from_secs(1),
        "the second channel waited {took:?}"
    );

    // Now the first reads: every answer, complete, in order, and nothing else.
    let total = answer.len() * READS;
    let mut seen = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    greedy
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    while seen < total {
        let n = greedy.stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {seen} of {total} bytes");
        assert!(seen + n <= total, "more than {READS} answers");
        let mut i = 0;
        while i < n {
            let off = seen % answer.len();
            let k = (answer.len() - off).min(n - i);
            assert!(
                buf[i..i + k] == answer[off..off + k],
                "answer {} differs at or after byte {off}",
                seen / answer.len()
            );
            i += k;
            seen += k;
        }
        peak = peak.max(rss());
    }
    greedy
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    match greedy.stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("after the last answer: {other:?}"),
    }
    let growth = peak.saturating_sub(before);
    eprintln!(
        "resident memory: {} MiB before, peak growth {} KiB",
        before >> 20,
        growth >> 10
    );
    assert!(
        growth < 64 << 20,
        "resident memory grew by {} MiB while the answers were read",
        growth >> 20
    );
    rig.emulator.stop();
}
