//! The test bench's faults where a transcript cannot say it well: what a reboot does to held
//! output, scenarios with several cuts, `clear`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealcell_modem::faults::Fault;
use sealcell_modem::scenario::Scenario;
use sealcell_testkit::TestModule;
use sealcell_testkit::net::Script;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn output_held_by_a_stall_is_gone_with_a_reboot() {
    let mut m = TestModule::new();
    m.send(b"ATE0\r");
    m.module.inject(Fault::LinkStall(5000)).unwrap();
    assert_eq!(text(&m.send(b"AT+CGMI\r")), "");
    m.module.inject(Fault::Reboot).unwrap();
    // After the boot: the answer to a new command, and nothing of the old boot's.
    assert_eq!(text(&m.send(b"AT\r")), "AT\r\r\nOK\r\n");
    assert_eq!(text(&m.wait(Duration::from_secs(10))), "");
}

#[test]
fn a_scenario_fires_each_of_its_storage_cuts_and_clear_drops_the_rest() {
    let mut m = TestModule::new();
    let done = m.module.power_switch().unwrap().writes();
    let scenario = Scenario::parse(&format!(
        "[[fault]]\naction = \"power-loss\"\nwhen = {{ storage_write = {} }}\n\
         [[fault]]\naction = \"power-loss\"\nwhen = {{ storage_write = {} }}\n\
         [[fault]]\naction = \"detach\"\nwhen = {{ command = \"+CGMR\", nth = 1 }}\n",
        done + 1,
        done + 3
    ))
    .unwrap();
    m.module.load_scenario(scenario, Some(7));
    assert_eq!(m.module.seed(), Some(7));
    let upload = |m: &mut TestModule, name: &str| {
        m.send(format!("AT+UDWNFILE=\"{name}\",1\r").as_bytes());
        m.send(b"x");
    };
    // Write 1: the cut.
    upload(&mut m, "a");
    assert_eq!(m.module.power_epoch(), 1);
    // Write 2 happens; write 3 is the second cut.
    upload(&mut m, "b");
    upload(&mut m, "c");
    assert_eq!(m.module.power_epoch(), 2);
    let fired = m.module.faults().fired();
    assert_eq!(
        fired
            .iter()
            .filter(|f| f.starts_with("scenario: power-loss at storage write"))
            .count(),
        2,
        "{fired:?}"
    );
    m.send(b"ATE0\r");
    let files = text(&m.send(b"AT+ULSTFILE=0\r"));
    assert!(
        files.contains("\"b\"") && !files.contains("\"a\"") && !files.contains("\"c\""),
        "{files}"
    );
    // clear drops what is left of the scenario: +CGMR no longer detaches.
    assert!(m.module.armed_faults().iter().any(|a| a.contains("+CGMR")));
    m.module.inject(Fault::Clear).unwrap();
    assert!(m.module.armed_faults().is_empty());
    assert!(text(&m.send(b"AT+CGMR\r")).contains("OK"));
    assert!(text(&m.send(b"AT+CSQ\r")).contains("+CSQ: 24,99"));
}

#[test]
fn a_download_bytes_cut_takes_the_download_not_a_socket() {
    let mut m = TestModule::new();
    m.send(b"ATE0;+CMEE=1\r");
    m.net
        .scripted()
        .serve("192.0.2.20", 7, Script::reply(b"0123456789".to_vec()));
    m.net.scripted().serve(
        "192.0.2.10",
        80,
        Script::reply(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n0123456789".to_vec()),
    );
    let scenario =
        Scenario::parse("[[fault]]\naction = \"cut-after\"\nwhen = { download_bytes = 20 }\n")
            .unwrap();
    m.module.load_scenario(scenario, None);
    m.send(b"AT+USOCR=6\r");
    m.send(b"AT+USOCO=0,\"192.0.2.20\",7\r");
    assert!(text(&m.send(b"AT+USORD=0,100\r")).contains("+USORD: 0,10,\"0123456789\""));
    m.send(b"AT+UHTTP=0,0,\"192.0.2.10\"\r");
    assert!(text(&m.send(b"AT+UHTTPC=0,1,\"/\",\"r\"\r")).contains("+UUHTTPCR: 0,1,0"));
    assert!(text(&m.send(b"AT+UHTTPER=0\r")).contains("+UHTTPER: 0,3,13"));
}
