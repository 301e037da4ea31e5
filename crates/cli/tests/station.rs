//! The production line as a station runs it (spec/cli.md, "The production line"): the ledger on
//! SQLite and on a real PostgreSQL server, its rules (another plan, the allowlist, two stations
//! racing for one seal), several modules at once with one of them killed, and the typed seal
//! confirmation on serial lines. Every test runs the `sealcell` binary against `sealcell modem`
//! child processes.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use std::time::{Duration, Instant};

use common::{BIN, Modem, OnTerminal, killing_proxy};
use sealcell_testkit::pg::PgServer;
use sealcell_testkit::plans::{SEAL_PASSWORD, write_plan};

fn sealcell(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SEALCELL_LEDGER")
        .env("SEALCELL_STATION", "station-a")
        .env("SEALCELL_OPERATOR", "tester")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn port(m: &Modem) -> String {
    format!("tcp:{}", m.addr.unwrap())
}

/// A valid IMEI (Luhn) per test module: 35925406 + six digits + check digit.
fn imei(n: u32) -> String {
    let body = format!("35925406{n:06}");
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// The module's seal state, offline (the module stopped).
fn sealed(data: &Path) -> bool {
    let out = sealcell(&[
        "modem",
        "status",
        "--json",
        "--data",
        data.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["sealed"].as_bool().unwrap()
}

fn ledger_json(ledger: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["ledger", "--ledger", ledger];
    all.extend_from_slice(args);
    all.push("--json");
    let out = sealcell(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The ledger suite, the same for SQLite and PostgreSQL: a sealed module's record, a re-run, a
/// module sealed under another plan refused (and `--force`), the allowlist, no secret anywhere.
fn ledger_rules(ledger: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("module");
    let id = imei(1);
    let m = Modem::start(&data, &["--imei", &id]);
    let plan = write_plan(dir.path(), true);
    let plan_s = plan.to_str().unwrap();
    let p = port(&m);

    let first = sealcell(&[
        "provision",
        "--port",
        &p,
        "--plan",
        plan_s,
        "--ledger",
        ledger,
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let again = sealcell(&[
        "provision",
        "--port",
        &p,
        "--plan",
        plan_s,
        "--ledger",
        ledger,
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));

    let story = ledger_json(ledger, &["show", &id]);
    let runs = story.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{story:#}");
    let (one, two) = (&runs[0], &runs[1]);
    assert_eq!(one["outcome"], "succeeded");
    assert_eq!(one["kind"], "provision");
    assert_eq!(one["station"], "station-a");
    assert_eq!(one["operator"], "tester");
    assert_eq!(one["port"], p);
    assert_eq!(one["imei"], id);
    assert_eq!(one["model"], "TOBY-L210");
    assert_eq!(one["firmware"], "17.00");
    assert_eq!(one["iccid"].as_str().unwrap().len(), 20);
    assert_eq!(one["sealed_before"], false);
    assert_eq!(one["sealed_after"], true);
    assert_eq!(two["sealed_before"], true);
    let plan_sha = hex_sha256(&std::fs::read(&plan).unwrap());
    assert_eq!(one["plan_sha256"], plan_sha);
    let creds = one["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 5);
    assert!(creds.iter().all(|c| c["action"] == "imported"), "{creds:?}");
    assert!(
        creds
            .iter()
            .all(|c| c["sha256"].as_str().unwrap().len() == 64)
    );
    assert!(
        two["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "unchanged")
    );
    assert_eq!(one["profiles"][0]["action"], "set");
    assert_eq!(one["transcript_sha256"].as_str().unwrap().len(), 64);

    // Another plan: the same credentials, another profile (so another SHA-256).
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replace("validation = 2", "validation = 1"),
    )
    .unwrap();
    let other_s = other.to_str().unwrap();
    let refused = sealcell(&[
        "provision",
        "--port",
        &p,
        "--plan",
        other_s,
        "--ledger",
        ledger,
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("was sealed under another plan"),
        "{}",
        text(&refused.stderr)
    );
    let forced = sealcell(&[
        "provision",
        "--port",
        &p,
        "--plan",
        other_s,
        "--ledger",
        ledger,
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));

    // The allowlist: another IMEI only; refused before any change.
    let allow = dir.path().join("allow.txt");
    std::fs::write(&allow, format!("# line 4\n{}\n", imei(2))).unwrap();
    let not_listed = sealcell(&[
        "provision",
        "--port",
        &p,
        "--plan",
        plan_s,
        "--ledger",
        ledger,
        "--allowlist",
        allow.to_str().unwrap(),
    ]);
    assert_eq!(not_listed.status.code(), Some(1));
    assert!(text(&not_listed.stderr).contains("is not on the allowlist"));

    let story = ledger_json(ledger, &["show", &id]);
    let outcomes: Vec<&str> = story
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["succeeded", "succeeded", "refused", "succeeded", "refused"]
    );
    let last = story.as_array().unwrap().last().unwrap().clone();
    assert!(last["error"].as_str().unwrap().contains("allowlist"));

    // list and export see the same runs; nothing secret anywhere.
    let list = ledger_json(ledger, &["list"]);
    assert_eq!(list.as_array().unwrap().len(), 5);
    let csv_path = dir.path().join("runs.csv");
    let export = sealcell(&[
        "ledger",
        "--ledger",
        ledger,
        "export",
        "--csv",
        csv_path.to_str().unwrap(),
    ]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    let listed = sealcell(&["ledger", "--ledger", ledger, "list"]);
    assert!(text(&listed.stdout).contains(&id));
    for blob in [csv, list.to_string(), text(&listed.stdout)] {
        assert!(!blob.contains(SEAL_PASSWORD), "a secret in the ledger");
    }
}

/// SHA-256 as `sha256sum` computes it (not the ledger's own code), as lowercase hex.
fn hex_sha256(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    let digest = hex::decode(text(&out.stdout).split_whitespace().next().unwrap()).unwrap();
    assert_eq!(digest.len(), 32);
    hex::encode(digest)
}

#[test]
fn the_sqlite_ledger_records_every_run_and_enforces_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    ledger_rules(db.to_str().unwrap());
    // Not a secret anywhere in the database file (and its write-ahead log), in any column.
    for file in ["ledger.db", "ledger.db-wal"] {
        let Ok(bytes) = std::fs::read(dir.path().join(file)) else {
            continue;
        };
        let bytes = String::from_utf8_lossy(&bytes);
        for secret in sealcell_testkit::plans::secrets() {
            assert!(!bytes.contains(&secret), "{file} holds a secret");
        }
    }
}

#[test]
fn the_postgres_ledger_records_every_run_and_enforces_its_rules() {
    let pg = PgServer::start();
    ledger_rules(&pg.url());
}

/// A TCP proxy in front of a module that holds back the host's seal line for `delay` (so a run
/// that has claimed the seal in the ledger is still about to send it while the other one
/// reaches its own claim: the ledger, not the timing, has to decide).
fn slow_seal_proxy(module: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for host in listener.incoming() {
            let Ok(mut host) = host else { return };
            std::thread::spawn(move || {
                let Ok(mut dce) = std::net::TcpStream::connect(module) else {
                    return;
                };
                let mut back = dce.try_clone().unwrap();
                let mut host_w = host.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut back, &mut host_w);
                });
                let mut buf = [0u8; 4096];
                loop {
                    let n = match host.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if buf[..n].windows(11).any(|w| w == b"USECCFG=0,1") {
                        std::thread::sleep(delay);
                    }
                    if dce.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Two stations start the same plan on one module at the same instant, sharing a ledger: exactly
/// one of them seals; the other is refused by the ledger before it sends the seal.
fn race(ledger: &str) {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("module");
        let id = imei(100 + round);
        let m = Modem::start(&data, &["--imei", &id]);
        let plan = write_plan(dir.path(), true);
        let p = format!(
            "tcp:{}",
            slow_seal_proxy(m.addr.unwrap(), Duration::from_millis(400))
        );
        let start = Arc::new(std::sync::Barrier::new(2));
        let runs: Vec<_> = ["station-a", "station-b"]
            .into_iter()
            .map(|station| {
                let (p, plan, ledger, start) = (
                    p.clone(),
                    plan.clone(),
                    ledger.to_string(),
                    Arc::clone(&start),
                );
                let transcript = dir.path().join(format!("{station}.log"));
                std::thread::spawn(move || {
                    start.wait();
                    let out = Command::new(BIN)
                        .args(["provision", "--port", &p, "--plan"])
                        .arg(&plan)
                        .args(["--ledger", &ledger, "--station", station, "--transcript"])
                        .arg(&transcript)
                        .stdin(Stdio::null())
                        .output()
                        .unwrap();
                    let sent_seal = std::fs::read_to_string(&transcript)
                        .unwrap_or_default()
                        .contains("> AT+USECCFG=0,1,");
                    (out, sent_seal)
                })
            })
            .collect();
        let results: Vec<(Output, bool)> = runs.into_iter().map(|t| t.join().unwrap()).collect();
        drop(m);
        let seals = results.iter().filter(|(_, sent)| *sent).count();
        assert_eq!(seals, 1, "round {round}: both stations sent the seal");
        for (out, sent) in &results {
            if *sent {
                assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            } else {
                // The seal of the winner is held at the proxy while the loser reaches the
                // ledger: refused there (by the module's run lock, or by the seal claim when
                // both got past it), before it sends anything that changes the module.
                assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
                let stderr = text(&out.stderr);
                assert!(
                    stderr.contains("is being provisioned by station")
                        || stderr.contains("is being sealed, or was sealed, by station"),
                    "{stderr}"
                );
            }
        }
        assert!(sealed(&data));
    }
}

#[test]
fn two_stations_racing_on_one_module_cannot_both_seal_it_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    race(dir.path().join("shared.db").to_str().unwrap());
}

#[test]
fn two_stations_racing_on_one_module_cannot_both_seal_it_postgres() {
    let pg = PgServer::start();
    race(&pg.url());
}

/// Eight modules at once on one station; one of them dies in the middle of its plan. The other
/// seven are sealed and recorded; the run exits 2 and says which module failed; the ledger shows
/// the dead one's run as failed, and a re-run of that module alone converges.
#[test]
fn eight_modules_in_parallel_one_killed_the_other_seven_sealed_and_recorded_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    eight_in_parallel(dir.path().join("ledger.db").to_str().unwrap(), 200);
}

#[test]
fn eight_modules_in_parallel_one_killed_the_other_seven_sealed_and_recorded_postgres() {
    let pg = PgServer::start();
    eight_in_parallel(&pg.url(), 220);
}

fn eight_in_parallel(ledger_s: &str, first_imei: u32) {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), true);
    let modules: Vec<(std::path::PathBuf, String, Modem)> = (0..8)
        .map(|i| {
            let data = dir.path().join(format!("module-{i}"));
            let id = imei(first_imei + i);
            let m = Modem::start(&data, &["--imei", &id]);
            (data, id, m)
        })
        .collect();
    // Module 5 dies after 20 command lines (mid-plan: after the seal, among the imports).
    let victim = 5;
    let ports: Vec<String> = modules
        .iter()
        .enumerate()
        .map(|(i, (_, _, m))| {
            if i == victim {
                format!("tcp:{}", killing_proxy(m.addr.unwrap(), m.child.id(), 20).0)
            } else {
                port(m)
            }
        })
        .collect();
    let mut args = vec![
        "provision",
        "--plan",
        plan.to_str().unwrap(),
        "--ledger",
        ledger_s,
    ];
    for p in &ports {
        args.push("--port");
        args.push(p);
    }
    args.push("--json");
    let started = Instant::now();
    let out = sealcell(&args);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("1 of 8 modules were not provisioned"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("error: {}:", ports[victim])),
        "{stderr}"
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["port"], ports[i]);
        if i == victim {
            assert_eq!(line["exit"], 2);
        } else {
            assert_eq!(line["exit"], 0, "{line}");
            assert_eq!(line["imei"], modules[i].1);
            assert_eq!(line["report"]["seal"], "sealed");
        }
    }
    eprintln!("8 modules in {elapsed:?}");
    let list = ledger_json(ledger_s, &["list"]);
    let runs = list.as_array().unwrap();
    assert_eq!(runs.len(), 8);
    for (i, (_, id, _)) in modules.iter().enumerate() {
        let run = runs.iter().find(|r| r["imei"] == *id).unwrap();
        let want = if i == victim { "failed" } else { "succeeded" };
        assert_eq!(run["outcome"], want, "{run}");
    }
    let mut datas = Vec::new();
    for (data, id, m) in modules {
        drop(m);
        datas.push((data, id));
    }
    for (i, (data, _)) in datas.iter().enumerate() {
        if i != victim {
            assert!(sealed(data), "module {i} not sealed");
        }
    }
    // The dead module, restarted, converges on a re-run at the same station.
    let (data, id) = &datas[victim];
    let m = Modem::start(data, &[]);
    let rerun = sealcell(&[
        "provision",
        "--port",
        &port(&m),
        "--plan",
        plan.to_str().unwrap(),
        "--ledger",
        ledger_s,
    ]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun.stderr));
    let story = ledger_json(ledger_s, &["show", id]);
    let outcomes: Vec<&str> = story
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "succeeded"]);
}

/// On a serial line (here a PTY) the seal waits for a confirmation: without a terminal and
/// without `--yes`, provisioning stops before the seal and the module stays unsealed; with
/// `--yes` it seals. `sealcell at` refuses a typed seal without a terminal too.
#[test]
fn the_seal_on_a_serial_line_needs_a_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("module");
    let link = dir.path().join("module.pty");
    let plan = write_plan(dir.path(), true);
    let plan_s = plan.to_str().unwrap();
    let ledger = dir.path().join("ledger.db");
    let pty_port = format!("{}@115200", link.display());
    {
        let _m = Modem::start(&data, &["--pty", link.to_str().unwrap()]);
        let refused = sealcell(&[
            "provision",
            "--port",
            &pty_port,
            "--plan",
            plan_s,
            "--ledger",
            ledger.to_str().unwrap(),
        ]);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
        let stderr = text(&refused.stderr);
        assert!(stderr.contains("without a confirmation"), "{stderr}");
        assert!(stderr.contains("hint: pass --yes"), "{stderr}");
        let at = sealcell(&[
            "at",
            "--port",
            &pty_port,
            &format!("AT+USECCFG=0,1,\"{SEAL_PASSWORD}\""),
        ]);
        assert_eq!(at.status.code(), Some(1), "{}", text(&at.stderr));
        assert!(text(&at.stderr).contains("without a confirmation"));
    }
    assert!(!sealed(&data), "sealed without a confirmation");
    {
        let _m = Modem::start(&data, &["--pty", link.to_str().unwrap()]);
        let confirmed = sealcell(&[
            "provision",
            "--port",
            &pty_port,
            "--plan",
            plan_s,
            "--ledger",
            ledger.to_str().unwrap(),
            "--yes",
        ]);
        assert_eq!(
            confirmed.status.code(),
            Some(0),
            "{}",
            text(&confirmed.stderr)
        );
    }
    assert!(sealed(&data));
}

/// `sealcell at` on a serial line with a terminal asks for the last four IMEI digits before it
/// sends a seal: a wrong answer sends nothing, the right one seals.
#[test]
fn sealcell_at_asks_before_a_seal_on_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("module");
    let link = dir.path().join("module.pty");
    let id = imei(300);
    let run = |typed: &str| -> (Option<i32>, String) {
        let _m = Modem::start(&data, &["--pty", link.to_str().unwrap(), "--imei", &id]);
        let OnTerminal {
            mut child,
            master: mut master_w,
            output: rx,
        } = OnTerminal::spawn(&[
            "at".to_string(),
            "--port".to_string(),
            format!("{}@115200", link.display()),
            format!("AT+USECCFG=0,1,\"{SEAL_PASSWORD}\""),
        ]);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&seen).contains("last four digits") {
            let chunk = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no question in {:?}", text(&seen)));
            seen.extend_from_slice(&chunk);
        }
        master_w.write_all(format!("{typed}\r").as_bytes()).unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "sealcell at did not finish");
            while let Ok(chunk) = rx.try_recv() {
                seen.extend_from_slice(&chunk);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend_from_slice(&chunk);
        }
        (status.code(), text(&seen))
    };
    let (code, screen) = run("0000");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains(&format!("seal module {id}")), "{screen}");
    assert!(screen.contains("was not confirmed"), "{screen}");
    assert!(!sealed(&data));
    let (code, screen) = run(&id[11..]);
    assert_eq!(code, Some(0), "{screen}");
    assert!(sealed(&data));
}

/// One module on two `--port`s of one run (a module's two USB interfaces, or a typo): it is
/// provisioned once, on the first port that identifies it; the other port is refused before any
/// change, and only one seal is sent.
#[test]
fn one_module_on_two_ports_of_one_run_is_provisioned_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("module");
    let id = imei(400);
    let m = Modem::start(&data, &["--imei", &id]);
    let plan = write_plan(dir.path(), true);
    let addr = m.addr.unwrap();
    // The first port's seal is held back, so its run is surely still going when the second
    // port identifies the same module.
    let ports = [
        format!("tcp:{}", slow_seal_proxy(addr, Duration::from_millis(600))),
        format!("tcp:localhost:{}", addr.port()),
    ];
    let ledger = dir.path().join("ledger.db");
    let out = sealcell(&[
        "provision",
        "--plan",
        plan.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
        "--port",
        &ports[0],
        "--port",
        &ports[1],
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("module {id} answers on")),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 2 modules were not provisioned"),
        "{stderr}"
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exits: Vec<i64> = lines.iter().map(|l| l["exit"].as_i64().unwrap()).collect();
    let mut sorted = exits.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1], "{lines:?}");
    drop(m);
    assert!(sealed(&data));
    let story = ledger_json(ledger.to_str().unwrap(), &["show", &id]);
    let outcomes: Vec<&str> = story
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    let mut outcomes = outcomes;
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["refused", "succeeded"]);
}
