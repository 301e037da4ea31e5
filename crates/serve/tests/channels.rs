//! AT channels over real TCP: the answer to a command, and URCs reaching a channel that sends
//! nothing (at-contract §0, "URCs", "Channels").

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::Rig;

#[test]
fn at_is_answered_exactly() {
    let rig = Rig::start();
    let mut c = rig.connect();
    c.send(b"AT\r");
    c.expect(b"AT\r\r\nOK\r\n");
    c.quiet(Duration::from_millis(200));
    rig.emulator.stop();
}

#[test]
fn a_urc_reaches_an_idle_channel_without_input_from_it() {
    let rig = Rig::start();
    let mut idle = rig.connect();
    idle.echo_off();
    idle.send(b"AT+CEREG=1\r");
    idle.expect(b"\r\nOK\r\n");

    // Another channel deregisters the module: the idle channel, which asked for +CEREG
    // reports, hears of it at once, with no byte sent on it.
    let mut other = rig.connect();
    other.send(b"AT+CFUN=0\r");
    other.expect(b"AT+CFUN=0\r\r\nOK\r\n");
    let took = idle.expect_within(b"\r\n+CEREG: 0\r\n", Duration::from_secs(2));
    assert!(took < Duration::from_secs(1), "the URC took {took:?}");

    other.send(b"AT+CFUN=1\r");
    other.expect(b"AT+CFUN=1\r\r\nOK\r\n");
    idle.expect_within(b"\r\n+CEREG: 1\r\n", Duration::from_secs(2));
    // The channel that did not ask for reports gets none.
    other.quiet(Duration::from_millis(200));
    idle.quiet(Duration::from_millis(200));
    rig.emulator.stop();
}

#[test]
fn a_channel_closed_by_its_peer_is_detached_and_the_rest_go_on() {
    let rig = Rig::start();
    let mut a = rig.connect();
    a.send(b"AT+CGMI\r");
    a.expect(b"AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n");
    drop(a);
    let mut b = rig.connect();
    b.send(b"AT\r");
    b.expect(b"AT\r\r\nOK\r\n");
    rig.emulator.stop();
}
