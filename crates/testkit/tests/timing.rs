//! The timing profile where a transcript cannot say it well: an install whose host goes away,
//! and a channel that waits at a prompt while another channel's install keeps the module
//! quiet (one channel per transcript step).

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealcell_modem::Channel;
use sealcell_modem::timing::{Profile, TOBY_L2};
use sealcell_testkit::TestModule;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fw(name: &str) -> Vec<u8> {
    std::fs::read(sealcell_testkit::plans::fw_dir().join(name)).unwrap()
}

/// A module on the toby-l2 profile, echo off, with the test package in its FOAT area.
fn with_package() -> TestModule {
    let mut m = TestModule::new();
    let mut config = m.module.config().clone();
    config.timing = Profile::TobyL2;
    m.module = sealcell_modem::Module::open(config, m.now).unwrap();
    m.channel = Channel::new(&mut m.module);
    m.send(b"ATE0\r");
    m.wait(TOBY_L2.answer);
    let package = fw("package.zip");
    m.send(
        format!(
            "AT+UDWNFILE=\"updatePackage.bin\",{},\"FOAT\"\r",
            package.len()
        )
        .as_bytes(),
    );
    assert_eq!(text(&m.wait(TOBY_L2.answer)), "\r\n>");
    assert_eq!(text(&m.send(&package)), "\r\nOK\r\n");
    m
}

/// Starts the install; returns once its OK is said.
fn install(m: &mut TestModule) {
    let md5 = String::from_utf8(fw("package.md5")).unwrap();
    m.send(format!("AT+UFWINSTALL=\"{}\"\r", md5.trim()).as_bytes());
    assert_eq!(text(&m.wait(Duration::from_secs(1))), "\r\nOK\r\n");
}

#[test]
fn an_install_goes_on_when_its_host_goes_away_and_ends_with_its_reboot() {
    let mut m = with_package();
    install(&mut m);
    assert_eq!(
        text(&m.wait(Duration::from_secs(30))),
        "\r\n+UUFWINSTALL: 0\r\n"
    );
    // The host hangs up; another comes while the install goes on.
    let gone = std::mem::replace(&mut m.channel, Channel::new(&mut m.module));
    gone.close(&mut m.module);
    // The module is quiet for the rest of the install (179 s) and the boot (10 s): what the
    // new host sends is lost, and it hears nothing.
    m.send(b"AT+CGMR\r");
    assert_eq!(text(&m.wait(Duration::from_secs(189))), "");
    m.send(b"AT+CGMR\r");
    assert_eq!(text(&m.wait(Duration::from_millis(999))), "");
    // The boot's end: the new firmware, echo on again after the reboot.
    m.wait(Duration::from_millis(1));
    assert_eq!(text(&m.send(b"AT+CGMR\r")), "AT+CGMR\r");
    assert_eq!(text(&m.wait(TOBY_L2.answer)), "\r\n18.00\r\n\r\nOK\r\n");
}

#[test]
fn a_prompt_waiting_through_another_channels_install_keeps_a_deadline_ahead() {
    let mut m = with_package();
    let mut other = Channel::new(&mut m.module);
    let mut said = Vec::new();
    other.feed(&mut m.module, b"AT+UDWNFILE=\"p\",3\r", m.now, &mut said);
    // Its job runs with the first channel's wait; then the prompt is due.
    m.wait(TOBY_L2.answer);
    other.poll(&mut m.module, m.now, &mut said);
    assert_eq!(text(&said), "AT+UDWNFILE=\"p\",3\r\r\n>");
    install(&mut m);
    // Past the payload's 20 s timeout, the module still installing: the other channel's next
    // deadline is ahead (the install's end), not its payload timer's in the past, which would
    // leave a transport with nothing to wake it.
    m.wait(Duration::from_secs(60));
    let deadline = other.next_deadline(&m.module).unwrap();
    assert!(
        deadline > m.now.mono(),
        "{deadline:?} <= {:?}",
        m.now.mono()
    );
    assert_eq!(
        deadline - m.now.mono(),
        TOBY_L2.install + Duration::from_secs(1) - Duration::from_secs(61)
    );
    said.clear();
    other.poll(&mut m.module, m.now, &mut said);
    assert_eq!(text(&said), "");
}
