//! `sealcell at`, `provision`, `fota` and `demo` as a user runs them: the binary as a child
//! process against `sealcell modem` as another, asserting exit codes and output; a module
//! killed at every step of a plan, then the plan re-run, converging to one sealed state.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{BIN, Modem, OnTerminal, killing_proxy};
use sealcell_https::loopback::{FileServer, LoopbackPki};
use sealcell_testkit::plans::{SEAL_PASSWORD, assert_no_secret, fw_dir, write_plan};

fn sealcell(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "trace")
        .env("SEALCELL_LEDGER", scratch_ledger())
        .output()
        .unwrap()
}

/// A ledger of its own for each run of the binary: these tests share one test IMEI across
/// modules, and the default ledger (`./sealcell-ledger.db`) would link their runs. The ledger's
/// own rules are tested in `station.rs` with ledgers the tests name. (In cargo's scratch
/// directory for integration tests, so nothing is left in /tmp.)
fn scratch_ledger() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "host-ledger-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn port(m: &Modem) -> String {
    format!("tcp:{}", m.addr.unwrap())
}

#[test]
fn at_one_shot_prints_information_lines_and_maps_results_to_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &[]);
    let p = port(&m);
    let out = sealcell(&["at", "--port", &p, "ATI9", "AT+CGMI"]);
    assert_eq!(text(&out.stdout), "17.00,A01.00\nu-blox\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = sealcell(&[
        "at",
        "--port",
        &p,
        "AT+CGMI",
        "AT+USECMNG=4,0,\"nope\"",
        "ATI9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "u-blox\n", "stops at the first error");
    assert!(
        text(&out.stderr).contains(
            "error: the module answered +CME ERROR: Operation not supported to AT+USECMNG=4,0,\"nope\""
        ),
        "{}",
        text(&out.stderr)
    );

    let out = sealcell(&["at", "--port", &p, "--json", "AT+CGMM"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"command": "AT+CGMM", "lines": ["TOBY-L210"], "result": "OK"}])
    );

    let out = sealcell(&["at", "--port", "tcp:127.0.0.1:1", "AT"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("error: cannot open tcp:127.0.0.1:1"));
    assert!(text(&out.stderr).contains("hint: is the emulator running?"));
    let out = sealcell(&["at", "--port", "tcp:nowhere", "AT"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`tcp:nowhere` is not tcp:HOST:PORT"));
}

#[test]
fn at_over_a_pty_sends_a_payload_at_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("module.pty");
    let _m = Modem::start(
        &dir.path().join("module"),
        &["--pty", link.to_str().unwrap()],
    );
    let root = sealcell_testkit::transcript::pki_dir().join("root.pem");
    let size = std::fs::metadata(&root).unwrap().len();
    let out = sealcell(&[
        "at",
        "--port",
        &format!("{}@9600", link.display()),
        "--payload",
        root.to_str().unwrap(),
        &format!("AT+USECMNG=0,0,\"RootCA\",{size}"),
        "AT+USECMNG=3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let facts = sealcell_testkit::transcript::pki_facts().unwrap();
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("+USECMNG: 0,0,\"RootCA\",\"{}\"", facts["root.pem"][0])
    );
    assert!(
        lines[1].starts_with(&format!(
            "\"CA\",\"RootCA\",\"{}\",\"2126/",
            facts["root.pem"][1]
        )),
        "{stdout}"
    );
    assert_eq!(lines.len(), 2);
    let out = sealcell(&[
        "at",
        "--port",
        link.to_str().unwrap(),
        "AT+UDWNFILE=\"x\",3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("none was given"));
}

#[test]
fn at_over_cmux_on_a_pty_uses_its_dlci_and_leaves_the_line_plain() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("module.pty");
    let _m = Modem::start(
        &dir.path().join("module"),
        &["--pty", link.to_str().unwrap()],
    );
    let pty = link.to_str().unwrap();
    let out = sealcell(&[
        "at", "--port", pty, "--cmux", "--dlci", "2", "AT+CMUX?", "AT+CGMI",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "+CMUX: 0,0,0,128,10,3,30,10,2\nu-blox\n");
    // The multiplexer was closed down at the end: plain AT works, and AT+CMUX? has nothing
    // to read back.
    let out = sealcell(&["at", "--port", pty, "AT+CMUX?"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("+CME ERROR: Operation not allowed"),
        "{}",
        text(&out.stderr)
    );
    let out = sealcell(&["at", "--port", pty, "--dlci", "2", "AT"]);
    assert_eq!(out.status.code(), Some(2), "--dlci needs --cmux");
    let out = sealcell(&["at", "--port", pty, "--cmux", "--dlci", "6", "AT"]);
    assert_eq!(out.status.code(), Some(2), "a TOBY-L2 has DLCIs 1..5");
}

#[test]
fn at_without_commands_is_a_terminal_that_reads_lines_until_eof() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &["--imei", common::TEST_IMEI]);
    let mut child = Command::new(BIN)
        .args(["at", "--port", &port(&m)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ATI9\nAT+NOPE\nAT+CGSN\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "17.00,A01.00\nOK\n+CME ERROR: unknown\n{}\nOK\n",
            common::TEST_IMEI
        ),
        "an error answer is shown and the session goes on"
    );
}

#[test]
fn provision_runs_reruns_and_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(&dir.path().join("module"), &["--imei", common::TEST_IMEI]);
    let plan = write_plan(dir.path(), true);
    let plan_s = plan.to_str().unwrap();
    let p = port(&m);

    let dry = sealcell(&["provision", "--port", &p, "--plan", plan_s, "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains("not sealed; would seal"));
    assert!(text(&dry.stdout).contains("dry run: nothing was changed"));

    let first = sealcell(&["provision", "--port", &p, "--plan", plan_s, "--verbose"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("> AT+USECCFG=0,1,\"<redacted>\"\n< OK\n"));
    assert!(text(&first.stderr).contains("> <1874 bytes: private key, redacted>\n"));
    let stdout = text(&first.stdout);
    assert!(
        stdout.starts_with(&format!("module {p}: sealed now\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  PK DeviceKey                    imported      md5 38e0129ca6493a63807c6f7f1727e394\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  profile 1                       set\n"),
        "{stdout}"
    );

    let again = sealcell(&["provision", "--port", &p, "--plan", plan_s, "--json"]);
    assert_eq!(again.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["changed"], false);
    assert_eq!(report["sealed"], true);
    assert_eq!(report["seal"], "already-sealed");
    assert_eq!(report["credentials"].as_array().unwrap().len(), 5);
    assert_eq!(report["credentials"][2]["type"], "PK");
    assert_eq!(report["credentials"][2]["action"], "unchanged");
    let human = sealcell(&["provision", "--port", &p, "--plan", plan_s, "-v"]);
    assert!(
        text(&human.stderr).contains("> AT+USECMNG=4,2,\"DeviceKey\"\n< +USECMNG: 4,2,\"DeviceKey\",\"38e0129ca6493a63807c6f7f1727e394\"\n< OK\n"),
        "{}",
        text(&human.stderr)
    );
    assert_no_secret("verbose stderr", &text(&human.stderr));
    assert!(text(&human.stdout).contains("the module already matches the plan; nothing changed"));

    let transcript = std::fs::read_to_string(dir.path().join("plan.transcript.log")).unwrap();
    assert!(transcript.contains("> AT+USECCFG=0,1,\"<redacted>\""));
    for (what, t) in [
        ("dry stdout", text(&dry.stdout)),
        ("stdout", stdout),
        ("stderr", text(&first.stderr)),
        ("json", text(&again.stdout)),
        ("transcript", transcript),
    ] {
        assert_no_secret(what, &t);
    }
    drop(m);
    let status = sealcell(&[
        "modem",
        "status",
        "--json",
        "--data",
        dir.path().join("module").to_str().unwrap(),
    ]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["sealed"], true);
    assert_eq!(status["credentials"].as_array().unwrap().len(), 5);
}

#[test]
fn provision_refuses_to_strand_plaintext_credentials_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(&dir.path().join("module"), &[]);
    let p = port(&m);
    let root = sealcell_testkit::transcript::pki_dir().join("root.pem");
    let pem = std::fs::read(&root).unwrap();
    let mut at = m.connect();
    assert!(
        at.cmd(&format!("AT+USECMNG=0,0,\"Old\",{}", pem.len()))
            .ends_with(">")
    );
    at.send(&pem);
    at.read_until(b"OK\r\n");
    let plan = write_plan(dir.path(), true);
    let out = sealcell(&[
        "provision",
        "--port",
        &p,
        "--plan",
        plan.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit"], 1);
    assert!(v["error"].as_str().unwrap().contains("CA \"Old\""));
    assert!(v["hint"].as_str().unwrap().contains("--force"));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: the module is not sealed and holds 1 credential(s) imported without the seal (CA \"Old\")"), "{stderr}");
    assert!(stderr.contains("hint: remove them first"), "{stderr}");
    assert!(at.cmd("AT+USECCFG?").contains("+USECCFG: 0,0"));
}

/// The module's state as the plan defines it: seal, items with MD5s (offline status) and the
/// profile's every op (over AT).
fn converged_state(data: &Path) -> (serde_json::Value, String) {
    let m = Modem::start(data, &[]);
    let mut at = m.connect();
    let mut profile = String::new();
    for op in [0, 1, 2, 3, 4, 5, 6, 10, 12] {
        profile.push_str(&at.cmd(&format!("AT+USECPRF=1,{op}")));
    }
    drop(m);
    let out = sealcell(&[
        "modem",
        "status",
        "--json",
        "--data",
        data.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        serde_json::json!({"sealed": v["sealed"], "store_opens": v["store_opens"], "credentials": v["credentials"]}),
        profile,
    )
}

#[test]
fn a_module_killed_at_every_step_of_a_plan_converges_when_the_plan_is_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), true);
    let plan_s = plan.to_str().unwrap().to_string();

    // The reference: one uninterrupted run.
    let reference_dir = dir.path().join("reference");
    let m = Modem::start(&reference_dir, &["--imei", common::TEST_IMEI]);
    let out = sealcell(&["provision", "--port", &port(&m), "--plan", &plan_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    drop(m);
    let reference = converged_state(&reference_dir);
    assert_eq!(reference.0["sealed"], true);

    let mut step = 1;
    loop {
        let data = dir.path().join(format!("kill-{step}"));
        let m = Modem::start(&data, &["--imei", common::TEST_IMEI]);
        let (proxy, seen) = killing_proxy(m.addr.unwrap(), m.child.id(), step);
        let out = sealcell(&[
            "provision",
            "--port",
            &format!("tcp:{proxy}"),
            "--plan",
            &plan_s,
        ]);
        let killed = seen.load(Ordering::SeqCst) >= step;
        drop(m);
        if !killed {
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            break;
        }
        if out.status.code() == Some(0) {
            // Killed after the plan's last line, but the module answered it before SIGKILL
            // landed (the proxy forwards first, then kills): the run is complete, and the
            // module must hold exactly the reference state.
            let state = converged_state(&data);
            assert_eq!(state, reference, "a run that finished at step {step}");
            step += 1;
            break;
        }
        assert_eq!(
            out.status.code(),
            Some(2),
            "step {step}: {}",
            text(&out.stderr)
        );
        let m = Modem::start(&data, &[]);
        let rerun = sealcell(&["provision", "--port", &port(&m), "--plan", &plan_s]);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "re-run after a kill at step {step}: {}",
            text(&rerun.stderr)
        );
        drop(m);
        let state = converged_state(&data);
        assert_eq!(state, reference, "after a kill at step {step}");
        std::fs::remove_dir_all(&data).unwrap();
        step += 1;
        assert!(step < 200, "the plan never finished");
    }
    eprintln!("a module killed at each of {} steps converged", step - 1);
    assert!(
        step > 30,
        "only {step} steps: the proxy did not count commands"
    );
}

struct FotaServer {
    _server: FileServer,
    url: String,
}

/// Provisions a module for the fixture signer and a loopback server holding the fixture package.
fn fota_setup(dir: &Path, m: &Modem) -> FotaServer {
    let pki = LoopbackPki::generate("localhost", 30).unwrap();
    std::fs::write(dir.join("root.pem"), &pki.root_pem).unwrap();
    std::fs::write(dir.join("seal.txt"), SEAL_PASSWORD).unwrap();
    std::fs::write(
        dir.join("fota-plan.toml"),
        format!(
            "[seal]\npassword_file = \"seal.txt\"\n\
             [[credential]]\ntype = \"ca\"\nname = \"RootCA\"\nfile = \"root.pem\"\n\
             [[credential]]\ntype = \"verification-cert\"\nname = \"VC\"\nfile = \"{}\"\n\
             [[profile]]\nid = 1\nvalidation = 3\ntls_version = 3\ncipher = \"C02B\"\n\
             root = \"RootCA\"\nhostname = \"localhost\"\n",
            fw_dir().join("signer.pem").display()
        ),
    )
    .unwrap();
    let out = sealcell(&[
        "provision",
        "--port",
        &port(m),
        "--plan",
        dir.join("fota-plan.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let package = std::fs::read(fw_dir().join("package.zip")).unwrap();
    let files = HashMap::from([("/fw/pkg.zip".to_string(), Arc::new(package))]);
    let server = FileServer::start(&pki, "ECDHE-ECDSA-AES128-GCM-SHA256", files).unwrap();
    FotaServer {
        url: format!("https://localhost:{}/fw/pkg.zip", server.port()),
        _server: server,
    }
}

fn fota(m: &Modem, s: &FotaServer, sig: &Path, extra: &[&str]) -> Output {
    let p = port(m);
    let mut args = vec![
        "fota",
        "--port",
        &p,
        "--url",
        &s.url,
        "--signature",
        sig.to_str().unwrap(),
        "--cert-name",
        "VC",
        "--security-profile",
        "1",
    ];
    args.extend_from_slice(extra);
    sealcell(&args)
}

#[test]
fn fota_installs_a_signed_package_and_refuses_a_wrong_signature_or_md5() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(&dir.path().join("module"), &[]);
    let s = fota_setup(dir.path(), &m);
    let pkg = fw_dir().join("package.zip");
    let pkg_s = pkg.to_str().unwrap();

    // A wrong signature: exit 1 with the module's error; version and package untouched.
    let wrong = fw_dir().join("wrongkey.b64");
    let out = fota(&m, &s, &wrong, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "the module answered +CME ERROR: SEC FW package not valid to AT+UFWSINSTALL="
        ),
        "{}",
        text(&out.stderr)
    );
    let mut at = m.connect();
    assert!(at.cmd("ATI9").contains("17.00,A01.00"));
    let size = std::fs::metadata(&pkg).unwrap().len();
    assert!(
        at.cmd("AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"")
            .contains(&format!("+ULSTFILE: {size}")),
        "the package stays"
    );

    // --file that is not what the server sent: stops before the install.
    let other = dir.path().join("other.zip");
    std::fs::write(&other, b"not the package").unwrap();
    let good = fw_dir().join("good.b64");
    let out = fota(&m, &s, &good, &["--file", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--file has 8dd36ce0adacf3ae1874c3feaccd3d30"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("not installing"));
    assert!(at.cmd("ATI9").contains("17.00,A01.00"));

    let missing = dir.path().join("missing.sig");
    let out = fota(&m, &s, &missing, &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit"], 2);
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );

    // The good signature given inline, and the right file: installed, rebooted, new ATI9; the
    // run is in the ledger.
    let inline = std::fs::read_to_string(&good).unwrap().trim().to_string();
    let ledger = dir.path().join("fota-ledger.db");
    let ledger_s = ledger.to_str().unwrap();
    let out = fota(
        &m,
        &s,
        Path::new(&inline),
        &[
            "--file",
            pkg_s,
            "--json",
            "--ledger",
            ledger_s,
            "--station",
            "fota-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["version_before"], "17.00,A01.00");
    assert_eq!(r["version_after"], "18.00,A01.00");
    assert_eq!(r["md5_matches_file"], true);
    assert_eq!(r["http_status"], 200);
    assert_eq!(
        r["progress"],
        serde_json::json!([0, 20, 40, 60, 80, 100, 128])
    );
    assert_eq!(
        r["md5"],
        std::fs::read_to_string(fw_dir().join("package.md5"))
            .unwrap()
            .trim()
    );
    let listed = sealcell(&["ledger", "--ledger", ledger_s, "list", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let run = &runs[0];
    assert_eq!(run["kind"], "fota");
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["station"], "fota-1");
    assert_eq!(run["firmware"], "17.00");
    assert_eq!(run["sealed_before"], true);
    assert!(
        run["detail"]
            .as_str()
            .unwrap()
            .ends_with("ATI9 17.00,A01.00 -> 18.00,A01.00"),
        "{run}"
    );
    assert_eq!(run["transcript_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn the_demo_runs_the_application_note_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let out = sealcell(&["demo", "--keep", keep.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for expected in [
        "   > AT+USECCFG=0,1,\"<redacted>\"\n",
        "   < +CME ERROR: Operation not allowed\n",
        "   > AT+USECPRF=1,2,255,\"C0\",\"2B\"\n",
        "   < +USECPRF: 1,12,\"ServerPin\",2\n",
        "   < +CME ERROR: SEC FW package not valid\n",
        "   < +UUFWINSTALL: 128\n",
        "   < 18.00,A01.00\n",
        "The application note works end to end",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    let password = std::fs::read_to_string(keep.join("seal-password.txt")).unwrap();
    assert!(!password.is_empty());
    let transcript = std::fs::read_to_string(keep.join("transcript.log")).unwrap();
    for (what, t) in [
        ("stdout", &stdout),
        ("stderr", &text(&out.stderr)),
        ("transcript", &transcript),
    ] {
        assert!(
            !t.contains(password.trim()),
            "{what} holds the seal password"
        );
    }
    // The kept module opens sealed, with the new firmware.
    let status = sealcell(&[
        "modem",
        "status",
        "--json",
        "--data",
        keep.join("module").to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["sealed"], true);
    assert_eq!(v["store_opens"], true);
    assert_eq!(v["firmware"]["version"], "18.00");

    let again = sealcell(&["demo", "--keep", keep.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("is not empty"));
}

/// The interactive terminal on a real terminal (a PTY): line editing on, answers printed, a URC
/// that arrives while the user is idle printed above the prompt, Ctrl-C leaves with exit 0.
#[test]
fn the_interactive_terminal_shows_urcs_as_they_come_and_leaves_on_ctrl_c() {
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &[]);
    let OnTerminal {
        mut child,
        master: mut master_w,
        output: rx,
    } = OnTerminal::spawn(&["at", "--port", &port(&m)]);
    let mut seen = Vec::new();
    // Waits until `needle` has appeared `times` times in the output.
    let mut wait_for = |needle: &str, times: usize, master: &mut std::fs::File| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while String::from_utf8_lossy(&seen).matches(needle).count() < times {
            let chunk = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen))
                });
            // Answer a cursor-position query, as a terminal would.
            if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                master.write_all(b"\x1b[1;1R").unwrap();
            }
            seen.extend_from_slice(&chunk);
        }
    };
    wait_for("AT> ", 1, &mut master_w);
    // One line per prompt: a line editor discards what was typed before it took the terminal.
    for (n, line) in [
        "ATI9",
        "AT+UHTTP=0,0,\"127.0.0.1\"",
        "AT+UHTTP=0,5,1",
        "AT+UHTTPC=0,1,\"/\",\"r\"",
    ]
    .into_iter()
    .enumerate()
    {
        master_w.write_all(format!("{line}\r").as_bytes()).unwrap();
        wait_for("AT> ", n + 2, &mut master_w);
    }
    wait_for("17.00,A01.00", 1, &mut master_w);
    wait_for("+UUHTTPCR: 0,1,0", 1, &mut master_w);
    master_w.write_all(b"\x03").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "Ctrl-C did not end the terminal");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_fota_loop_survives_a_scenario_that_cuts_the_download_then_power_cuts_the_install() {
    // docs/bench.md's worked example: the first download is cut at 80 %, the retry's install
    // loses its power; a third run succeeds.
    let dir = tempfile::tempdir().unwrap();
    let size = std::fs::metadata(fw_dir().join("package.zip"))
        .unwrap()
        .len();
    let scenario = dir.path().join("fota-faults.toml");
    std::fs::write(
        &scenario,
        format!(
            "[[fault]]\naction = \"cut-after\"\nargs = [{}]\n\
             when = {{ command = \"+UHTTPC\", nth = 1 }}\n\
             [[fault]]\naction = \"power-loss\"\n\
             when = {{ command = \"+UFWSINSTALL\", nth = 1 }}\n",
            size * 8 / 10
        ),
    )
    .unwrap();
    let mut m = Modem::start(
        &dir.path().join("module"),
        &[
            "--scenario",
            scenario.to_str().unwrap(),
            "--control",
            "tcp:127.0.0.1:0",
        ],
    );
    let control = m.control();
    // What of the scenario has fired, from the bench's own status.
    let fired = || {
        let out = sealcell(&["ctl", "--control", &control, "status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["fired"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str().map(String::from))
            .filter(|f| f.starts_with("scenario: "))
            .collect::<Vec<_>>()
    };
    let s = fota_setup(dir.path(), &m);
    assert!(fired().is_empty(), "provisioning fired nothing");
    let good = fw_dir().join("good.b64");

    // 1. The download is cut: fota says so, nothing is installed.
    let out = fota(&m, &s, &good, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("download"), "{err}");
    assert_eq!(fired(), [format!("scenario: cut-after {}", size * 8 / 10)]);
    let mut at = m.connect();
    assert!(at.cmd("ATI9").contains("17.00,A01.00"));

    // 2. The retry downloads whole, and its install loses the power: fota fails, the module
    // comes back on its old firmware, sealed, with its credentials.
    let out = fota(&m, &s, &good, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("download"),
        "{}",
        text(&out.stderr)
    );
    // It failed because the power went, and at its install.
    assert_eq!(
        fired().last().map(String::as_str),
        Some("scenario: power-loss")
    );
    let mut at = m.connect();
    assert!(at.cmd("ATI9").contains("17.00,A01.00"), "the old firmware");
    assert!(
        at.cmd("AT+USECCFG?").contains("+USECCFG: 0,1"),
        "still sealed"
    );
    let list = at.cmd("AT+USECMNG=3");
    assert!(
        list.contains("\"VC\"") && list.contains("\"RootCA\""),
        "{list}"
    );

    // 3. Run again: it succeeds.
    let out = fota(&m, &s, &good, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut at = m.connect();
    assert!(at.cmd("ATI9").contains("18.00,A01.00"));
}
