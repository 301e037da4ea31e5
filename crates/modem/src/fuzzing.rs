//! The hook shared by the `engine` cargo-fuzz target and the corpus replay test.

use std::time::Duration;

use crate::drive::settle;
use crate::{Channel, Module};

/// Feeds arbitrary bytes to a new channel of `module` in uneven chunks on a virtual clock,
/// lets any payload time out, and checks the channel still answers `AT+CGMI` exactly. Jobs run
/// inline; network jobs fail as if nothing answered (the fuzzer never opens a connection).
pub fn engine(module: &mut Module, data: &[u8]) {
    let mut channel = Channel::new(module);
    let mut now = module.now();
    let mut out = Vec::new();
    let mut rest = data;
    let mut step = 1usize;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        channel.feed(module, &rest[..n], now, &mut out);
        settle(module, &mut channel, now, &mut out);
        rest = &rest[n..];
        step = step % 61 + 7;
        now = now.after(Duration::from_millis(5));
    }
    now = now.after(module.config().payload_timeout + Duration::from_secs(1));
    channel.poll(module, now, &mut out);
    settle(module, &mut channel, now, &mut out);
    out.clear();
    channel.feed(module, b"\rATE0V1Q0\r", now, &mut out);
    settle(module, &mut channel, now, &mut out);
    out.clear();
    channel.feed(module, b"AT+CGMI\r", now, &mut out);
    assert_eq!(
        out, b"\r\nu-blox\r\n\r\nOK\r\n",
        "the channel stopped answering"
    );
    channel.close(module);
}
