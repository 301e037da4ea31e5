//! The raw payload mode after the `>` prompt (at-contract §0, "Raw payload").
//!
//! After the prompt the module reads exactly `<size>` bytes: no echo, no CR or `AT` handling,
//! any byte value. If no byte arrives for the inter-byte timeout (20 s on a real module,
//! configurable for tests) the command fails with its own timeout error. Time is injected:
//! the caller passes `now` to every method, so tests run on a virtual clock.

use std::time::{Duration, Instant};

/// The inter-byte timeout of a real TOBY-L2.
pub const DEFAULT_PAYLOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// Counts the bytes of one payload and watches the inter-byte deadline.
#[derive(Clone, Debug)]
pub struct PayloadReceiver {
    remaining: u64,
    timeout: Duration,
    deadline: Instant,
}

impl PayloadReceiver {
    /// Starts waiting for `size` bytes at `now`.
    pub fn new(size: u64, timeout: Duration, now: Instant) -> Self {
        PayloadReceiver {
            remaining: size,
            timeout,
            deadline: now + timeout,
        }
    }

    /// Splits `input` into the part that belongs to the payload and the rest, which is
    /// command-mode input again. Restarts the inter-byte timer when any byte is taken.
    pub fn take<'b>(&mut self, input: &'b [u8], now: Instant) -> (&'b [u8], &'b [u8]) {
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        if n > 0 {
            self.remaining -= n as u64;
            self.deadline = now + self.timeout;
        }
        input.split_at(n)
    }

    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Whether every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }

    /// Whether the inter-byte timeout has run out at `now`.
    pub fn timed_out(&self, now: Instant) -> bool {
        !self.is_complete() && now >= self.deadline
    }

    /// When the timeout will run out, for a transport that wants to sleep until then.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_exactly_and_restarts_the_timer() {
        let t0 = Instant::now();
        let mut p = PayloadReceiver::new(5, Duration::from_secs(20), t0);
        let (a, rest) = p.take(b"\r\nA", t0 + Duration::from_secs(19));
        assert_eq!((a, rest), (&b"\r\nA"[..], &b""[..]));
        assert!(!p.timed_out(t0 + Duration::from_secs(38)));
        assert!(p.timed_out(t0 + Duration::from_secs(39)));
        let (b, rest) = p.take(b"T\0AT\r", t0 + Duration::from_secs(20));
        assert_eq!((b, rest), (&b"T\0"[..], &b"AT\r"[..]));
        assert!(p.is_complete());
        assert!(!p.timed_out(t0 + Duration::from_secs(1000)));
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let t0 = Instant::now();
        let mut p = PayloadReceiver::new(u64::MAX, Duration::from_secs(1), t0);
        let (a, _) = p.take(b"xyz", t0);
        assert_eq!(a.len(), 3);
        assert_eq!(p.remaining(), u64::MAX - 3);
    }
}
