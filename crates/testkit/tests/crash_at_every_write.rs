//! Crash at every storage step (MCUboot `perm_with_fails` style) for every state-changing AT
//! command of the module: count the steps the command takes on the simulated disk, then for
//! each step i fail there ("power off"), reboot on what the disk kept, and check the module
//! boots and shows exactly the old state or the new one. Both crash models run: power loss
//! (only fsynced data and directory entries survive) and process death (kill -9).
//! And an acknowledged command (its `OK` was sent) survives power loss.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use sealcell_modem::{Channel, Module};
use sealcell_store::{CrashMode, SimStorage, Storage};
use sealcell_testkit::test_config;

fn boot(disk: &SimStorage) -> Result<(Module, Channel), String> {
    let mut module = Module::open_with_storage(
        test_config(Path::new("sim")),
        Arc::new(disk.clone()),
        sealcell_testkit::virtual_now(),
    )
    .map_err(|e| e.to_string())?;
    let mut channel = Channel::new(&mut module);
    sealcell_testkit::at(&mut module, &mut channel, b"ATE0\r");
    Ok((module, channel))
}

fn send(m: &mut Module, c: &mut Channel, input: &[u8]) -> String {
    sealcell_testkit::at(m, c, input)
}

struct Scenario {
    name: &'static str,
    setup: Vec<Vec<u8>>,
    change: Vec<Vec<u8>>,
    observe: Vec<Vec<u8>>,
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn pki(name: &str) -> Vec<u8> {
    sealcell_testkit::transcript::pki_fixture(name).unwrap()
}

/// `AT+USECMNG=0,<type>,"<name>",<size>` and the fixture's bytes.
fn import(kind: u8, name: &str, file: &str) -> [Vec<u8>; 2] {
    let data = pki(file);
    [
        b(&format!("AT+USECMNG=0,{kind},\"{name}\",{}\r", data.len())),
        data,
    ]
}

fn scenarios() -> Vec<Scenario> {
    let creds = || {
        vec![
            b("AT+USECCFG?\r"),
            b("AT+USECMNG=3\r"),
            b("AT+USECMNG=4,2,\"Key\"\r"),
        ]
    };
    vec![
        Scenario {
            name: "upload a new file",
            setup: vec![],
            change: vec![b("AT+UDWNFILE=\"new.bin\",5\r"), b("hello")],
            observe: vec![b("AT+ULSTFILE\r"), b("AT+URDFILE=\"new.bin\"\r")],
        },
        Scenario {
            name: "append to a file",
            setup: vec![b("AT+UDWNFILE=\"log\",3\r"), b("old")],
            change: vec![b("AT+UDWNFILE=\"log\",4\r"), b("+new")],
            observe: vec![b("AT+ULSTFILE\r"), b("AT+URDFILE=\"log\"\r")],
        },
        Scenario {
            name: "upload the update package",
            setup: vec![b("AT+UDWNFILE=\"notes\",2,\"FOAT\"\r"), b("n1")],
            change: vec![
                b("AT+UDWNFILE=\"updatePackage.bin\",8,\"FOAT\"\r"),
                b("PK\x03\x04\x00\"\r\n"),
            ],
            observe: vec![
                b("AT+ULSTFILE=0,\"FOAT\"\r"),
                b("AT+URDFILE=\"updatePackage.bin\",\"FOAT\"\r"),
            ],
        },
        Scenario {
            name: "delete a file",
            setup: vec![b("AT+UDWNFILE=\"gone\",1\r"), b("x")],
            change: vec![b("AT+UDELFILE=\"gone\"\r")],
            observe: vec![b("AT+ULSTFILE\r")],
        },
        Scenario {
            name: "change persistent settings",
            setup: vec![b("AT+UMNOPROF=1\r")],
            change: vec![b("AT+UMNOPROF=100\r")],
            observe: vec![b("AT+UMNOPROF?\r")],
        },
        Scenario {
            name: "define a PDP context",
            setup: vec![],
            change: vec![b("AT+CGDCONT=2,\"IPV4V6\",\"iot.example\"\r")],
            observe: vec![b("AT+CGDCONT?\r")],
        },
        Scenario {
            name: "PDP authentication with a sealed password",
            setup: vec![b("AT+UAUTHREQ=1,1,\"old\",\"pw1\"\r")],
            change: vec![b("AT+UAUTHREQ=1,2,\"new\",\"pw2\"\r")],
            observe: vec![b("AT+UAUTHREQ?\r")],
        },
        Scenario {
            name: "turn LwM2M off",
            setup: vec![],
            change: vec![b("AT+ULWM2M=1\r")],
            observe: vec![b("AT+ULWM2M?\r"), b("AT+UGPRF?\r")],
        },
        Scenario {
            name: "update the SIM's forbidden networks",
            setup: vec![],
            change: vec![b("AT+CRSM=214,28539,0,0,3,\"13F001\"\r")],
            observe: vec![b("AT+CRSM=176,28539,0,0,24\r")],
        },
        Scenario {
            name: "configure a GPIO pin",
            setup: vec![],
            change: vec![b("AT+UGPIOC=16,0,1\r")],
            observe: vec![b("AT+UGPIOC?\r")],
        },
        Scenario {
            name: "seal with credentials present",
            setup: import(2, "Key", "client-pkcs1.pem").to_vec(),
            change: vec![b("AT+USECCFG=0,1,\"my_pwd\"\r")],
            observe: creds(),
        },
        Scenario {
            name: "import a key after the seal",
            setup: vec![b("AT+USECCFG=0,1,\"my_pwd\"\r")],
            change: import(2, "Key", "server-sec1.pem").to_vec(),
            observe: creds(),
        },
        Scenario {
            name: "replace a sealed key",
            setup: [
                vec![b("AT+USECCFG=0,1,\"my_pwd\"\r")],
                import(2, "Key", "server-sec1.pem").to_vec(),
            ]
            .concat(),
            change: import(2, "Key", "client-pkcs8.der").to_vec(),
            observe: creds(),
        },
        Scenario {
            name: "remove a sealed key",
            setup: [
                vec![b("AT+USECCFG=0,1,\"my_pwd\"\r")],
                import(2, "Key", "server-sec1.pem").to_vec(),
            ]
            .concat(),
            change: vec![b("AT+USECMNG=2,2,\"Key\"\r")],
            observe: creds(),
        },
        Scenario {
            name: "install firmware (MD5 path)",
            setup: vec![
                b("AT+UDWNFILE=\"updatePackage.bin\",3,\"FOAT\"\r"),
                b("pkg"),
            ],
            change: vec![b("AT+UFWINSTALL\r")],
            // A non-ZIP package keeps the version; whether the package is gone shows the install.
            observe: vec![b("AT+CGMR\r"), b("AT+ULSTFILE=0,\"FOAT\"\r")],
        },
        Scenario {
            name: "import from a file after the seal",
            setup: vec![
                b("AT+USECCFG=0,1,\"my_pwd\"\r"),
                b("AT+UDWNFILE=\"k.pem\",121\r"),
                pki("server-sec1.der"),
            ],
            change: vec![b("AT+USECMNG=1,2,\"Key\",\"k.pem\"\r")],
            observe: creds(),
        },
    ]
}

fn observe(disk: &SimStorage, s: &Scenario) -> Result<String, String> {
    let (mut m, mut c) = boot(disk)?;
    Ok(s.observe
        .iter()
        .map(|cmd| send(&mut m, &mut c, cmd))
        .collect())
}

fn temp_files(disk: &SimStorage) -> Vec<String> {
    disk.snapshot()
        .keys()
        .map(|p| p.display().to_string())
        .filter(|p| p.rsplit('/').next().is_some_and(|n| n.contains(':')))
        .collect()
}

#[test]
fn every_command_survives_a_crash_at_every_storage_step() {
    let mut total_crashes = 0;
    let all = scenarios();
    for s in &all {
        // The state before: a module with the scenario's setup applied.
        let base = SimStorage::new();
        {
            let (mut m, mut c) = boot(&base).unwrap();
            for cmd in &s.setup {
                send(&mut m, &mut c, cmd);
            }
        }
        let base = base.crash(CrashMode::LoseUnsynced);
        let old = observe(&base.crash(CrashMode::KeepAll), s).unwrap();

        // A clean run: count its steps; what it acknowledged must survive power loss.
        let probe = base.crash(CrashMode::KeepAll);
        let (mut m, mut c) = boot(&probe).unwrap();
        let before = probe.steps();
        let answers: String = s
            .change
            .iter()
            .map(|cmd| send(&mut m, &mut c, cmd))
            .collect();
        assert!(
            answers.ends_with("\r\nOK\r\n") || answers.ends_with("+UUFWINSTALL: 128\r\n"),
            "{}: {answers:?}",
            s.name
        );
        let steps = probe.steps() - before;
        drop((m, c));
        let new = observe(&probe.crash(CrashMode::LoseUnsynced), s).unwrap();
        assert_ne!(old, new, "{}: the change must be visible", s.name);
        assert!(steps > 0, "{}", s.name);

        for fail in 1..=steps {
            for mode in [CrashMode::LoseUnsynced, CrashMode::KeepAll] {
                let disk = base.crash(CrashMode::KeepAll);
                let (mut m, mut c) = boot(&disk).unwrap();
                disk.fail_at(Some(disk.steps() + fail));
                for cmd in &s.change {
                    send(&mut m, &mut c, cmd);
                }
                assert!(disk.is_dead(), "{}: step {fail} was never reached", s.name);
                drop((m, c));

                let after = disk.crash(mode);
                let seen = observe(&after, s)
                    .unwrap_or_else(|e| panic!("{} step {fail} {mode:?}: no boot: {e}", s.name));
                assert!(
                    seen == old || seen == new,
                    "{} step {fail}/{steps} {mode:?}: neither old nor new state:\n  old  {old:?}\n  new  {new:?}\n  seen {seen:?}",
                    s.name
                );
                assert!(
                    temp_files(&after).is_empty(),
                    "{} step {fail} {mode:?}: temp files after boot",
                    s.name
                );
                // The rebooted module is fully usable.
                let (mut m, mut c) = boot(&after).unwrap();
                assert_eq!(
                    send(&mut m, &mut c, b"AT+CGMI\r"),
                    "\r\nu-blox\r\n\r\nOK\r\n"
                );
                total_crashes += 1;
            }
        }
    }
    eprintln!(
        "{total_crashes} crashes simulated across {} commands",
        all.len()
    );
    assert!(total_crashes > 50, "only {total_crashes} crashes simulated");
}

#[test]
fn a_stale_upload_is_removed_at_boot_even_when_a_directory_sync_made_it_durable() {
    // An upload in progress, then another file committed in the same directory (whose fsync
    // makes the temp file's entry durable), then power loss.
    let disk = SimStorage::new();
    let (mut m, mut c) = boot(&disk).unwrap();
    let mut other = Channel::new(&mut m);
    assert!(send(&mut m, &mut c, b"AT+UDWNFILE=\"slow\",10\r").ends_with(">"));
    send(&mut m, &mut c, b"12345");
    let out = sealcell_testkit::at(&mut m, &mut other, b"AT+UDWNFILE=\"fast\",1\rx");
    assert!(out.ends_with("\r\nOK\r\n"));
    drop((m, c, other));
    let after = disk.crash(CrashMode::LoseUnsynced);
    assert_eq!(
        temp_files(&after).len(),
        1,
        "the partial upload's entry was made durable"
    );
    let (mut m, mut c) = boot(&after).unwrap();
    assert_eq!(
        send(&mut m, &mut c, b"AT+ULSTFILE\r"),
        "\r\n+ULSTFILE: \"fast\"\r\n\r\nOK\r\n"
    );
    assert!(temp_files(&after).is_empty());
    assert_eq!(after.list(Path::new("fs/USER")).unwrap(), ["fast"]);
}
