//! The test bench's power cut at every storage write of the operations that must never be
//! torn (cli.md, "A test bench"): the seal, an import into the sealed store, and a signed
//! firmware install. At each write in turn the power goes (`power-loss-at-write N`), the
//! module comes back from its disk, and its state is the old one or the new one: never a
//! half-sealed store, a credential with the wrong bytes, a firmware half installed, or an
//! unsealed module after a seal.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealcell_fw::credential::CredentialType;
use sealcell_modem::faults::Fault;
use sealcell_modem::status;
use sealcell_testkit::TestModule;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The MD5 `+USECMNG=4` gives for this credential (of its DER), as the host checks it.
fn md5_of(kind: CredentialType, bytes: &[u8]) -> String {
    sealcell_fw::credential::parse(kind, bytes, None)
        .unwrap()
        .facts
        .md5_hex()
}

fn fixture(name: &str) -> Vec<u8> {
    sealcell_testkit::transcript::pki_fixture(name).unwrap()
}

fn fw(name: &str) -> Vec<u8> {
    std::fs::read(sealcell_testkit::plans::fw_dir().join(name)).unwrap()
}

/// A fresh module, `ATE0;+CMEE=1`.
fn module() -> TestModule {
    let mut m = TestModule::new();
    m.send(b"ATE0;+CMEE=1\r");
    m
}

fn ok(m: &mut TestModule, line: &str) {
    assert_eq!(
        text(&m.send(format!("{line}\r").as_bytes())),
        "\r\nOK\r\n",
        "{line}"
    );
}

/// Imports `bytes` as `kind`/`name`; the whole answer (or nothing, if the power went).
fn import(m: &mut TestModule, kind: u8, name: &str, bytes: &[u8]) -> String {
    let prompt = m.send(format!("AT+USECMNG=0,{kind},\"{name}\",{}\r", bytes.len()).as_bytes());
    if prompt != b"\r\n>" {
        return text(&prompt);
    }
    text(&m.send(bytes))
}

/// After a cut the channel starts again with power-on settings.
fn after_power(m: &mut TestModule) {
    m.send(b"ATE0;+CMEE=1\r");
}

/// Runs `op` on a module set up by `setup`, with the power cut at write `n`; returns the module
/// and whether the cut came (`false`: `op` needs fewer writes).
fn with_cut_at(
    n: u64,
    setup: impl Fn(&mut TestModule),
    op: impl Fn(&mut TestModule),
) -> (TestModule, bool) {
    let mut m = module();
    setup(&mut m);
    m.module.inject(Fault::PowerLossAtWrite(n)).unwrap();
    op(&mut m);
    let cut = m.module.power_epoch() > 0;
    if cut {
        after_power(&mut m);
    } else {
        // Disarmed, so the checks after do not cut.
        m.module.inject(Fault::Clear).unwrap();
    }
    (m, cut)
}

/// Every cut point of `op`, then once with no cut; `check` sees each resulting module.
fn at_every_write(
    setup: impl Fn(&mut TestModule) + Copy,
    op: impl Fn(&mut TestModule) + Copy,
    check: impl Fn(&mut TestModule, bool),
) -> u64 {
    let mut n = 1;
    loop {
        let (mut m, cut) = with_cut_at(n, setup, op);
        check(&mut m, cut);
        // The store opens with the module's key, after the cut as before it.
        let problem = m.module.store().problem().map(|p| p.to_string());
        assert_eq!(problem, None, "write {n}");
        if !cut {
            return n - 1;
        }
        n += 1;
        assert!(n < 200, "the operation never ends");
    }
}

#[test]
fn the_seal_is_whole_or_not_at_all_at_every_write() {
    let root = fixture("root.pem");
    let writes = at_every_write(
        |m| {
            assert!(import(m, 0, "PreSeal", &fixture("root.pem")).ends_with("OK\r\n"));
        },
        |m| {
            m.send(b"AT+USECCFG=0,1,\"my_pwd\"\r");
        },
        |m, cut| {
            let state = text(&m.send(b"AT+USECCFG?\r"));
            let list = text(&m.send(b"AT+USECMNG=3\r"));
            match state.as_str() {
                "\r\n+USECCFG: 0,0\r\n\r\nOK\r\n" => {
                    assert!(cut, "the seal answered OK and did not seal");
                    // Unsealed: as before, the credential there and whole.
                    assert!(list.contains("\"PreSeal\""), "{list}");
                    let md5 = text(&m.send(b"AT+USECMNG=4,0,\"PreSeal\"\r"));
                    let want = md5_of(CredentialType::TrustedRootCa, &root);
                    assert!(md5.contains(&want), "{md5} vs {want}");
                }
                "\r\n+USECCFG: 0,1\r\n\r\nOK\r\n" => {
                    // Sealed: what was imported before is unusable and unlisted.
                    assert!(!list.contains("PreSeal"), "{list}");
                }
                other => panic!("neither unsealed nor sealed: {other:?}"),
            }
        },
    );
    eprintln!("the seal: {writes} writes");
    assert_eq!(writes, 2, "the seal took {writes} writes");
}

#[test]
fn a_sealed_import_is_whole_or_absent_at_every_write() {
    let key = fixture("client-pkcs8.pem");
    let writes = at_every_write(
        |m| ok(m, "AT+USECCFG=0,1,\"my_pwd\""),
        |m| {
            import(m, 2, "DeviceKey", &fixture("client-pkcs8.pem"));
        },
        |m, cut| {
            let list = text(&m.send(b"AT+USECMNG=3\r"));
            assert!(
                text(&m.send(b"AT+USECCFG?\r")).contains("+USECCFG: 0,1"),
                "never unsealed"
            );
            if list.contains("\"DeviceKey\"") {
                let md5 = text(&m.send(b"AT+USECMNG=4,2,\"DeviceKey\"\r"));
                let want = md5_of(CredentialType::ClientPrivateKey, &key);
                assert!(md5.contains(&want), "{md5}");
            } else {
                assert!(cut, "the import answered OK and is not there: {list}");
            }
        },
    );
    eprintln!("a sealed import: {writes} writes");
    assert_eq!(writes, 3, "the import took {writes} writes");
}

#[test]
fn a_signed_install_is_old_or_new_firmware_at_every_write() {
    let writes = at_every_write(
        |m| {
            ok(m, "AT+USECCFG=0,1,\"my_pwd\"");
            assert!(import(m, 4, "FwCert", &fw("signer.pem")).ends_with("OK\r\n"));
            let package = fw("package.zip");
            let prompt = m.send(
                format!(
                    "AT+UDWNFILE=\"updatePackage.bin\",{},\"FOAT\"\r",
                    package.len()
                )
                .as_bytes(),
            );
            assert_eq!(prompt, b"\r\n>");
            assert_eq!(text(&m.send(&package)), "\r\nOK\r\n");
        },
        |m| {
            let sig = text(&fw("good.b64"));
            m.send(format!("AT+UFWSINSTALL=\"{}\",\"FwCert\"\r", sig.trim()).as_bytes());
        },
        |m, cut| {
            let version = text(&m.send(b"AT+CGMR\r"));
            let s = status::gather(m.dir.path()).unwrap();
            assert!(
                text(&m.send(b"AT+USECCFG?\r")).contains("+USECCFG: 0,1"),
                "the seal survives"
            );
            assert!(
                text(&m.send(b"AT+USECMNG=3\r")).contains("\"FwCert\""),
                "the verification certificate survives"
            );
            if version.contains("17.00") {
                assert!(cut, "the install answered OK and installed nothing");
                assert!(s.firmware.installs.is_empty(), "{:?}", s.firmware.installs);
            } else {
                assert_eq!(s.firmware.installs.len(), 1, "{version}");
                assert_eq!(s.firmware.version, "18.00", "the package's version");
                assert!(version.contains("18.00"), "{version}");
            }
        },
    );
    eprintln!("a signed install: {writes} writes");
    assert_eq!(writes, 2, "the install took {writes} writes");
}

#[test]
fn power_loss_now_drops_what_was_being_said_and_keeps_what_was_written() {
    let mut m = module();
    ok(&mut m, "AT+CEREG=1");
    assert!(import(&mut m, 0, "root", &fixture("root.pem")).ends_with("OK\r\n"));
    // Something being said when the power goes: an answer the line holds back.
    m.module.inject(Fault::LinkStall(5000)).unwrap();
    assert_eq!(text(&m.send(b"AT+CGMI\r")), "");
    assert_eq!(m.module.inject(Fault::PowerLoss).unwrap(), "power lost");
    assert_eq!(
        text(&m.wait(std::time::Duration::from_secs(10))),
        "",
        "it is never said"
    );
    assert_eq!(m.module.power_epoch(), 1);
    // Power-on settings (echo on, +CMEE=0), the credential kept: it was written.
    assert_eq!(
        text(&m.send(b"AT+CMEE?\r")),
        "AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n"
    );
    after_power(&mut m);
    assert!(text(&m.send(b"AT+USECMNG=3\r")).contains("\"root\""));
}
