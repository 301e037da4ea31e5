//! The module's one clock, injected: every call into the engine says what time it is.
//!
//! [`Now`] carries both readings a handler may need: the monotonic instant (payload timeouts,
//! request deadlines, Xmodem retries) and the wall clock (the `+CCLK` time, certificate validity
//! of signed installs, install records). The engine never reads a clock itself, so the
//! transports pass the host's clocks and the tests pass a virtual one that moves only when they
//! say so.

use std::time::{Duration, Instant};

/// A point in time, as the caller's clock reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    mono: Instant,
    unix_ms: i64,
}

/// 2026-12-01 00:00:00 UTC: where [`Now::virtual_start`] puts the wall clock.
pub const VIRTUAL_EPOCH_UNIX_MS: i64 = 1_796_083_200_000;

impl Now {
    /// The time `mono` on the monotonic clock, `unix_ms` milliseconds since the Unix epoch on
    /// the wall clock.
    pub fn new(mono: Instant, unix_ms: i64) -> Now {
        Now { mono, unix_ms }
    }

    /// A virtual clock's start: the monotonic instant `mono` (any instant: only differences
    /// count) and the wall clock at [`VIRTUAL_EPOCH_UNIX_MS`], so transcripts are reproducible.
    pub fn virtual_start(mono: Instant) -> Now {
        Now::new(mono, VIRTUAL_EPOCH_UNIX_MS)
    }

    /// The monotonic reading.
    pub fn mono(&self) -> Instant {
        self.mono
    }

    /// The wall clock, milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> i64 {
        self.unix_ms
    }

    /// The wall clock, whole seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.unix_ms.div_euclid(1000)
    }

    /// The same clock `d` later (both readings move together).
    pub fn after(self, d: Duration) -> Now {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Now {
            mono: self.mono + d,
            unix_ms: self.unix_ms.saturating_add(ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_readings_advance_together() {
        let start = Now::virtual_start(Instant::now());
        let later = start.after(Duration::from_millis(1500));
        assert_eq!(later.mono() - start.mono(), Duration::from_millis(1500));
        assert_eq!(later.unix_ms() - start.unix_ms(), 1500);
        assert_eq!(start.unix(), 1_796_083_200);
        assert_eq!(later.unix(), 1_796_083_201);
        assert_eq!(Now::new(start.mono(), -1).unix(), -1);
    }
}
