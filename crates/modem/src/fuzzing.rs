//! The hook shared by the `engine` cargo-fuzz target and the corpus replay test.

use std::time::Duration;

use crate::drive::settle;
use crate::{Link, Module};

/// Enough flags to bring any 27.010 decoder back between frames: an information field is at
/// most 1509 bytes (N1), then an FCS and the closing flag.
const RESYNC: [u8; 1520] = [0xF9; 1520];

/// How many timers the harness lets run out before it checks the link (a transfer's retries,
/// a payload timeout).
const MAX_TIMER_STEPS: usize = 100;

/// The close-down frame in its one-byte form (CLD without its length octet, as at-cmux sends
/// it): it fits any N1, even `AT+CMUX=0,,,1`'s.
const CLOSE_DOWN: [u8; 7] = [0xF9, 0x03, 0xEF, 0x03, 0xC3, 0x16, 0xF9];

/// Feeds arbitrary bytes to a new link of `module` in uneven chunks on a virtual clock (plain
/// AT, or 27.010 frames once the input starts the multiplexer), lets any payload time out,
/// closes any multiplexer down and checks the link still answers `AT+CGMI` exactly. Jobs run
/// inline; network jobs fail as if nothing answered (the fuzzer never opens a connection).
pub fn engine(module: &mut Module, data: &[u8]) {
    let mut channel = Link::new(module);
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
    // End any line the input left open (it may be an `AT+CMUX` or a payload command), and
    // let any payload time out.
    channel.feed(module, b"\r", now, &mut out);
    settle(module, &mut channel, now, &mut out);
    now = now.after(module.config().payload_timeout + Duration::from_secs(1));
    channel.poll(module, now, &mut out);
    settle(module, &mut channel, now, &mut out);
    // Every timer still set runs out (an Xmodem transfer gives up only after its retries).
    for _ in 0..MAX_TIMER_STEPS {
        let Some(deadline) = channel.next_deadline(module) else {
            break;
        };
        now = now.after(deadline.saturating_duration_since(now.mono()) + Duration::from_millis(1));
        channel.poll(module, now, &mut out);
        settle(module, &mut channel, now, &mut out);
    }
    if channel.is_multiplexed() {
        channel.feed(module, &RESYNC, now, &mut out);
        channel.feed(module, &CLOSE_DOWN, now, &mut out);
        settle(module, &mut channel, now, &mut out);
        assert!(!channel.is_multiplexed(), "the close-down was not taken");
    }
    out.clear();
    channel.feed(module, b"ATE0V1Q0\r", now, &mut out);
    settle(module, &mut channel, now, &mut out);
    out.clear();
    channel.feed(module, b"AT+CGMI\r", now, &mut out);
    assert_eq!(
        out, b"\r\nu-blox\r\n\r\nOK\r\n",
        "the channel stopped answering"
    );
    channel.close(module);
}
