//! The host library against a module in memory (sealcell_testkit::pair): no socket, no
//! thread, the module on a virtual clock. Provisioning runs whole; a request to a server that
//! trickles meets its deadline on the module's clock without the test waiting for it.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use sealcell_host::client::{AtClient, ClientOptions};
use sealcell_host::mux::{MuxLink, MuxOptions};
use sealcell_host::plan::Plan;
use sealcell_host::provision::{
    CredentialAction, ProvisionOptions, SealAction, list_credentials, provision, seal_state,
};
use sealcell_testkit::net::{Script, ScriptEnd};
use sealcell_testkit::pair::memory_pair;
use sealcell_testkit::plans::write_plan;

#[test]
fn provisioning_runs_whole_over_the_in_memory_pair() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::load(&write_plan(dir.path(), true)).unwrap();
    let (link, module) = memory_pair();
    let mut at = AtClient::from_link(Box::new(link), ClientOptions::default());
    let report = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    assert_eq!(report.seal, SealAction::Sealed);
    assert!(
        report
            .credentials
            .iter()
            .all(|c| c.action == CredentialAction::Imported),
        "{:?}",
        report.credentials
    );
    assert!(seal_state(&mut at).unwrap());
    let listed = list_credentials(&mut at).unwrap();
    assert_eq!(listed.len(), plan.credentials.len());
    assert!(module.with_module(|m| m.is_sealed()));
    // A re-run changes nothing.
    let again = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    assert!(!again.changed);
}

#[test]
fn provisioning_runs_over_cmux_on_the_in_memory_pair() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::load(&write_plan(dir.path(), true)).unwrap();
    let (link, module) = memory_pair();
    let muxed = MuxLink::open(
        Box::new(link),
        MuxOptions::default(),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut at = AtClient::from_link(Box::new(muxed), ClientOptions::default());
    at.synchronise().unwrap();
    let report = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    assert_eq!(report.seal, SealAction::Sealed);
    assert!(module.with_module(|m| m.is_sealed()));
    assert_eq!(
        at.ok_line("AT+CMUX?").unwrap().lines,
        ["+CMUX: 0,0,0,128,10,3,30,10,2"]
    );
}

#[test]
fn a_numeric_ok_to_at_cmux_counts_as_started() {
    use std::io::{Read, Write};
    let (mut link, _module) = memory_pair();
    link.write_all(b"ATV0\r").unwrap();
    let mut buf = [0u8; 64];
    let n = link.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ATV0\r0\r");
    let muxed = MuxLink::open(
        Box::new(link),
        MuxOptions::default(),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(muxed.started(), "ATV0's `0` is the OK");
}

#[test]
fn a_trickling_server_meets_its_deadline_on_the_virtual_clock() {
    let (link, module) = memory_pair();
    module.with_net(|net| {
        net.serve(
            "192.0.2.10",
            80,
            Script::trickle(
                b"HTTP/1.0 200 OK\r\n",
                Duration::from_secs(1),
                ScriptEnd::Hang,
            ),
        )
    });
    let mut at = AtClient::from_link(Box::new(link), ClientOptions::default());
    for line in [
        "ATE0;+CMEE=1",
        "AT+UHTTP=0,0,\"192.0.2.10\"",
        "AT+UHTTP=0,7,30",
        "AT+UHTTPC=0,1,\"/slow\",\"slow\"",
    ] {
        at.ok_line(line).unwrap();
    }
    let start = module.now();
    let real = Instant::now();
    // The host's reads move the module's clock on: 30 virtual seconds pass in a moment.
    let urc = at
        .wait_urc(|u| u.starts_with("+UUHTTPCR:"), Duration::from_secs(60))
        .unwrap();
    assert_eq!(urc, "+UUHTTPCR: 0,1,0");
    let waited = module.now().mono() - start.mono();
    assert!(
        (Duration::from_secs(30)..Duration::from_secs(31)).contains(&waited),
        "{waited:?}"
    );
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "{:?}",
        real.elapsed()
    );
    let er = at.ok_line("AT+UHTTPER=0").unwrap();
    assert_eq!(er.lines, vec!["+UHTTPER: 0,3,12".to_string()]);
    assert_eq!(module.with_net(|net| net.open_connections()), 0);
    let (server, request) = module.with_net(|net| net.requests[0].clone());
    assert_eq!(server, ("192.0.2.10".to_string(), 80));
    assert_eq!(
        String::from_utf8(request).unwrap(),
        "GET /slow HTTP/1.0\r\nHost: 192.0.2.10\r\nUser-Agent: sealcell TOBY-L2\r\n\r\n"
    );
}
