//! Jobs against the rest of the module: what happens when a job is still queued or running
//! while another channel reboots, seals, deletes or replaces what it works on. Each test holds
//! a job the way an edge does (taken, not yet run) and lets the other channel act first.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealcell_modem::drive::NoNetwork;
use sealcell_modem::job::{DiskJob, JobId, dispatch};
use sealcell_modem::{Channel, Module, OUTPUT_LIMIT};
use sealcell_testkit::transcript::pki_fixture;
use sealcell_testkit::{TestModule, at, test_config, virtual_now};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Feeds `input` and takes the disk jobs it starts without running them.
fn held(m: &mut Module, c: &mut Channel, input: &[u8]) -> (String, Vec<(JobId, DiskJob)>) {
    let now = m.now();
    let mut out = Vec::new();
    c.feed(m, input, now, &mut out);
    let jobs = dispatch(m.take_work(), &mut NoNetwork::default());
    (text(&out), jobs)
}

fn two_channels(dir: &std::path::Path) -> (Module, Channel, Channel) {
    let mut m = Module::open(test_config(dir), virtual_now()).unwrap();
    let mut a = Channel::new(&mut m);
    let mut b = Channel::new(&mut m);
    at(&mut m, &mut a, b"ATE0;+CMEE=1\r");
    at(&mut m, &mut b, b"ATE0;+CMEE=1\r");
    (m, a, b)
}

/// An import queued before a reboot writes nothing after it: an import acknowledged after the
/// reboot survives the next one.
#[test]
fn an_import_queued_before_a_reboot_does_not_undo_one_made_after() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut a, mut b) = two_channels(dir.path());
    assert_eq!(
        at(&mut m, &mut b, b"AT+USECCFG=0,1,\"secretpw1\"\r"),
        "\r\nOK\r\n"
    );
    let pem = pki_fixture("root.pem").unwrap();
    let line = |name: &str| format!("AT+USECMNG=0,0,\"{name}\",{}\r", pem.len());
    assert_eq!(held(&mut m, &mut a, line("X").as_bytes()).0, "\r\n>");
    let (_, stale) = held(&mut m, &mut a, &pem);
    assert_eq!(stale.len(), 1);
    assert_eq!(at(&mut m, &mut b, b"AT+CFUN=16\r"), "\r\nOK\r\n");
    at(&mut m, &mut b, b"ATE0;+CMEE=1\r");
    at(&mut m, &mut b, line("Y").as_bytes());
    assert!(at(&mut m, &mut b, &pem).ends_with("\r\nOK\r\n"));
    // The edge runs the stale job only now.
    for (id, job) in stale {
        m.finish_job(id, job.run());
    }
    at(&mut m, &mut b, b"AT+CFUN=16\r");
    at(&mut m, &mut b, b"ATE0;+CMEE=1\r");
    let list = at(&mut m, &mut b, b"AT+USECMNG=3\r");
    assert!(list.contains("\"Y\""), "{list:?}");
    assert!(!list.contains("\"X\""), "{list:?}");
}

/// The MD5-only install is checked again when its hashing ends: a seal that came meanwhile
/// refuses it.
#[test]
fn a_seal_during_an_md5_install_refuses_the_install() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut a, mut b) = two_channels(dir.path());
    let pkg = b"not really a package";
    at(
        &mut m,
        &mut a,
        format!("AT+UDWNFILE=\"updatePackage.bin\",{},\"FOAT\"\r", pkg.len()).as_bytes(),
    );
    assert_eq!(at(&mut m, &mut a, pkg), "\r\nOK\r\n");
    let (out, jobs) = held(&mut m, &mut a, b"AT+UFWINSTALL\r");
    assert_eq!((out.as_str(), jobs.len()), ("", 1));
    assert_eq!(
        at(&mut m, &mut b, b"AT+USECCFG=0,1,\"secretpw1\"\r"),
        "\r\nOK\r\n"
    );
    for (id, job) in jobs {
        m.finish_job(id, job.run());
    }
    let now = m.now();
    let mut out = Vec::new();
    a.poll(&mut m, now, &mut out);
    assert_eq!(text(&out), "\r\n+CME ERROR: 3\r\n");
    let state = std::fs::read_to_string(dir.path().join("fw/state.toml")).unwrap_or_default();
    assert!(!state.contains("UFWINSTALL"), "{state}");
}

/// A partial first Xmodem block does not stop the clock: the block times out (NAK) and time
/// goes on.
#[test]
fn a_partial_first_xmodem_block_times_out_on_time() {
    let mut m = TestModule::new();
    assert_eq!(
        text(&m.send(b"AT+UFWUPD=3\r")),
        "AT+UFWUPD=3\r\r\n+UFWUPD: ONGOING\r\nC"
    );
    assert_eq!(m.send(&[0x02, 0x01]), b"");
    // Nothing for the 10 s the block may take, then a NAK, and a second later the next `C`.
    assert_eq!(m.wait(Duration::from_secs(9)), b"");
    assert_eq!(m.wait(Duration::from_millis(1500)), [0x15]);
    // The next deadline is ahead, never one left behind (an event loop would spin on it).
    let next = m.channel.next_deadline(&m.module).unwrap();
    assert!(
        next > m.now.mono(),
        "{next:?} is not after {:?}",
        m.now.mono()
    );
    assert_eq!(m.wait(Duration::from_secs(1)), b"C");
}

/// A streamed answer reads the file that was there when it started, whatever another channel
/// does to the name meanwhile, and each poll stays within the output limit.
#[test]
fn a_streamed_read_keeps_its_file_when_another_channel_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut a, mut b) = two_channels(dir.path());
    let size = 3 << 20;
    at(
        &mut m,
        &mut b,
        format!("AT+UDWNFILE=\"f\",{size}\r").as_bytes(),
    );
    assert_eq!(at(&mut m, &mut b, &vec![b'A'; size]), "\r\nOK\r\n");
    let now = m.now();
    let mut out = Vec::new();
    a.feed(&mut m, b"AT+URDFILE=\"f\"\r", now, &mut out);
    assert!(a.has_more());
    assert_eq!(at(&mut m, &mut b, b"AT+UDELFILE=\"f\"\r"), "\r\nOK\r\n");
    at(
        &mut m,
        &mut b,
        format!("AT+UDWNFILE=\"f\",{size}\r").as_bytes(),
    );
    assert_eq!(at(&mut m, &mut b, &vec![b'B'; size]), "\r\nOK\r\n");
    while a.has_more() {
        let mut step = Vec::new();
        a.poll(&mut m, now, &mut step);
        assert!(
            step.len() <= OUTPUT_LIMIT + 64 * 1024,
            "{} bytes",
            step.len()
        );
        out.extend_from_slice(&step);
    }
    let head = format!("\r\n+URDFILE: \"f\",{size},\"");
    assert!(out.starts_with(head.as_bytes()));
    let data = &out[head.len()..head.len() + size];
    assert!(data.iter().all(|&c| c == b'A'));
    assert_eq!(&out[head.len() + size..], b"\"\r\n\r\nOK\r\n");
}

/// Input queued behind an install meets the rebooted channel: the greeting, then the power-on
/// settings (echo on), exactly as after `AT+CFUN=16`.
#[test]
fn input_after_an_install_meets_the_rebooted_channel() {
    let mut m = TestModule::new();
    m.send(b"AT+CSGT=1,\"HELLO\"\r");
    m.send(b"ATE0\r");
    let pkg = b"pkg";
    m.send(format!("AT+UDWNFILE=\"updatePackage.bin\",{},\"FOAT\"\r", pkg.len()).as_bytes());
    assert_eq!(text(&m.send(pkg)), "\r\nOK\r\n");
    let installed = text(&m.send(b"AT+UFWINSTALL\rAT+CGMI\r"));
    m.send(b"ATE0\r");
    let rebooted = text(&m.send(b"AT+CFUN=16\rAT+CGMI\r"));
    assert_eq!(
        installed.split("+UUFWINSTALL: 128\r\n").nth(1),
        rebooted.split_once("OK\r\n").map(|(_, rest)| rest),
        "{installed:?} vs {rebooted:?}"
    );
    assert!(installed.ends_with("\r\nHELLO\r\nAT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n"));
}

/// A network job's `Debug` never shows its request (the Basic credentials are in it).
#[test]
fn a_network_job_does_not_show_its_credentials() {
    let mut m = TestModule::new();
    let now = m.now;
    let mut out = Vec::new();
    m.channel.feed(
        &mut m.module,
        b"AT+UHTTP=0,1,\"example.com\";+UHTTP=0,2,\"user\";+UHTTP=0,3,\"hunter2\";\
          +UHTTP=0,4,1;+UHTTPC=0,1,\"/\",\"r\"\r",
        now,
        &mut out,
    );
    assert!(text(&out).ends_with("\r\nOK\r\n"), "{:?}", text(&out));
    let work = format!("{:?}", m.module.take_work());
    // base64("user:hunter2"), as text and as the decimal bytes a derived Debug of a Vec shows.
    let token = "dXNlcjpodW50ZXIy";
    let decimal = token
        .bytes()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(!work.contains(token), "{work}");
    assert!(!work.contains(&decimal), "{work}");
    assert!(
        !work.contains("71, 69, 84, 32"),
        "the request's bytes (GET ) are shown: {work}"
    );
    assert!(work.contains("request_len"), "{work}");
}

/// A job that could not run to its end fails its command; the channel goes on.
#[test]
fn a_job_that_fails_to_run_fails_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut a, _b) = two_channels(dir.path());
    let (_, jobs) = held(&mut m, &mut a, b"AT+UDELFILE=\"x\";+CGMI\r");
    let [(id, _job)] = <[_; 1]>::try_from(jobs).ok().unwrap();
    m.fail_job(id);
    let now = m.now();
    let mut out = Vec::new();
    a.poll(&mut m, now, &mut out);
    assert_eq!(text(&out), "\r\n+CME ERROR: 23\r\n");
    assert_eq!(at(&mut m, &mut a, b"AT\r"), "\r\nOK\r\n");
}

/// With many channels, each gets its share of the module's output budget: a streamed answer
/// on one of 200 channels stops at its share, not at a full megabyte.
#[test]
fn many_channels_share_the_output_budget() {
    use sealcell_modem::{MIN_OUTPUT_LIMIT, MODULE_OUTPUT_BUDGET, output_limit};
    assert_eq!(output_limit(1), OUTPUT_LIMIT);
    assert_eq!(output_limit(16), OUTPUT_LIMIT);
    assert_eq!(output_limit(64), MODULE_OUTPUT_BUDGET / 64);
    assert_eq!(output_limit(10_000), MIN_OUTPUT_LIMIT);

    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut a, mut b) = two_channels(dir.path());
    let size = 1 << 20;
    at(
        &mut m,
        &mut b,
        format!("AT+UDWNFILE=\"f\",{size}\r").as_bytes(),
    );
    assert_eq!(at(&mut m, &mut b, &vec![b'A'; size]), "\r\nOK\r\n");
    let others: Vec<Channel> = (0..198).map(|_| Channel::new(&mut m)).collect();
    let share = output_limit(200);
    let now = m.now();
    let mut out = Vec::new();
    a.feed(
        &mut m,
        b"AT+URDFILE=\"f\"\rAT+URDFILE=\"f\"\r",
        now,
        &mut out,
    );
    assert!(out.len() <= share, "{} bytes, share {share}", out.len());
    assert!(out.len() > share / 2, "{} bytes, share {share}", out.len());
    assert!(!a.wants_input(out.len()));
    // Drained, it goes on to the end of both answers.
    let mut total = out.len();
    while a.has_more() {
        let mut step = Vec::new();
        a.poll(&mut m, now, &mut step);
        assert!(step.len() <= share, "{} bytes", step.len());
        total += step.len();
    }
    let answer = format!("\r\n+URDFILE: \"f\",{size},\"\"\r\n\r\nOK\r\n").len() + size;
    assert_eq!(total, 2 * answer);
    for c in others {
        c.close(&mut m);
    }
}

/// A file-system job from before a reboot changes no file after it: a delete queued before
/// `AT+CFUN=16` leaves a file written after it alone.
#[test]
fn a_delete_queued_before_a_reboot_leaves_a_file_written_after() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut a, mut b) = two_channels(dir.path());
    at(&mut m, &mut b, b"AT+UDWNFILE=\"f\",3\r");
    assert_eq!(at(&mut m, &mut b, b"old"), "\r\nOK\r\n");
    let (_, stale) = held(&mut m, &mut a, b"AT+UDELFILE=\"f\"\r");
    assert_eq!(stale.len(), 1);
    assert_eq!(at(&mut m, &mut b, b"AT+CFUN=16\r"), "\r\nOK\r\n");
    at(&mut m, &mut b, b"ATE0;+CMEE=1;+UDELFILE=\"f\"\r");
    at(&mut m, &mut b, b"AT+UDWNFILE=\"f\",3\r");
    assert_eq!(at(&mut m, &mut b, b"new"), "\r\nOK\r\n");
    for (id, job) in stale {
        m.finish_job(id, job.run());
    }
    assert_eq!(
        at(&mut m, &mut b, b"AT+URDFILE=\"f\"\r"),
        "\r\n+URDFILE: \"f\",3,\"new\"\r\n\r\nOK\r\n"
    );
}

/// Free space counts what downloads in progress have written and what uploads promised; an
/// append keeps its copy of the old file counted even if the old file is deleted meanwhile.
#[test]
fn free_space_counts_work_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.fs_capacity = 100;
    let mut m = Module::open(config, virtual_now()).unwrap();
    let mut a = Channel::new(&mut m);
    let mut b = Channel::new(&mut m);
    at(&mut m, &mut a, b"ATE0;+CMEE=1\r");
    at(&mut m, &mut b, b"ATE0;+CMEE=1\r");
    at(&mut m, &mut b, b"AT+UDWNFILE=\"a\",50\r");
    assert_eq!(at(&mut m, &mut b, &[b'x'; 50]), "\r\nOK\r\n");
    // An append of 10 to "a" starts (its start job has run: the prompt is out).
    assert_eq!(at(&mut m, &mut a, b"AT+UDWNFILE=\"a\",10\r"), "\r\n>");
    let free = |m: &mut Module, b: &mut Channel| at(m, b, b"AT+ULSTFILE=1\r");
    // 50 in "a", 50 in the append's copy, 10 promised: nothing left.
    assert_eq!(free(&mut m, &mut b), "\r\n+ULSTFILE: 0\r\n\r\nOK\r\n");
    assert_eq!(at(&mut m, &mut b, b"AT+UDELFILE=\"a\"\r"), "\r\nOK\r\n");
    // The copy still counts: 40 free, so 90 more cannot be promised.
    assert_eq!(free(&mut m, &mut b), "\r\n+ULSTFILE: 40\r\n\r\nOK\r\n");
    assert_eq!(
        at(&mut m, &mut b, b"AT+UDWNFILE=\"b\",90\r"),
        "\r\n+CME ERROR: 1637\r\n"
    );
    assert_eq!(at(&mut m, &mut a, &[b'y'; 10]), "\r\nOK\r\n");
    assert_eq!(free(&mut m, &mut b), "\r\n+ULSTFILE: 40\r\n\r\nOK\r\n");
}

/// The same after a reboot that runs as the rest of a line behind a long stream.
#[test]
fn input_after_a_reboot_behind_a_stream_meets_the_rebooted_channel() {
    let mut m = TestModule::new();
    m.send(b"AT+CSGT=1,\"HELLO\"\r");
    m.send(b"ATE0\r");
    let size = 3 << 20;
    m.send(format!("AT+UDWNFILE=\"a\",{size}\r").as_bytes());
    assert_eq!(text(&m.send(&vec![b'z'; size])), "\r\nOK\r\n");
    let out = m.send(b"AT+URDFILE=\"a\";+CFUN=16\rAT+CGMI\r");
    let tail = text(&out[out.len() - 60..]);
    assert!(
        tail.ends_with("\"\r\n\r\nOK\r\n\r\nHELLO\r\nAT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n"),
        "{tail:?}"
    );
}

/// A reboot that cannot reopen the module (its identity is unreadable) leaves the module as
/// it was, file system included: files can still be written and read.
#[test]
fn a_failed_reboot_keeps_the_file_system_working() {
    let mut m = TestModule::new();
    m.send(b"ATE0;+CMEE=1\r");
    let identity = m.dir.path().join("otp/identity.toml");
    let good = std::fs::read(&identity).unwrap();
    std::fs::write(&identity, b"not toml [").unwrap();
    assert_eq!(text(&m.send(b"AT+CFUN=16\r")), "\r\nOK\r\n");
    // Still the same boot: echo still off, and the file system works.
    assert_eq!(text(&m.send(b"AT+UDWNFILE=\"f\",2\r")), "\r\n>");
    assert_eq!(text(&m.send(b"ok")), "\r\nOK\r\n");
    assert_eq!(
        text(&m.send(b"AT+URDFILE=\"f\"\r")),
        "\r\n+URDFILE: \"f\",2,\"ok\"\r\n\r\nOK\r\n"
    );
    std::fs::write(&identity, good).unwrap();
}
