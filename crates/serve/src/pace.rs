//! A stream carried at a rate (the timing profile's UART and LTE rates, the bench's
//! `throttle`): each piece waits until the line would have carried it. The pieces follow one
//! another on a schedule, not a sleep each, so the timer's late wake-ups do not add up over a
//! long transfer.

use std::time::Duration;

use tokio::time::Instant;

/// How late after its last byte a line still counts as busy: a piece that comes within this
/// is carried on from where the last ended.
const IDLE: Duration = Duration::from_millis(20);

/// When a line is free again after what it carried.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    free_at: Option<Instant>,
}

impl Schedule {
    /// Waits until `n` more bytes at `bytes_per_s` have been carried; at once without a rate.
    pub(crate) async fn carry(&mut self, n: usize, bytes_per_s: Option<f64>) {
        let Some(rate) = bytes_per_s.filter(|r| *r > 0.0) else {
            self.free_at = None;
            return;
        };
        let now = Instant::now();
        let start = match self.free_at {
            Some(t) if now.saturating_duration_since(t) < IDLE => t,
            _ => now,
        };
        let done = start + Duration::from_secs_f64(n as f64 / rate);
        self.free_at = Some(done);
        tokio::time::sleep_until(done).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 64 reads of 16 KiB at 150 Mbit/s, each handled 0.5 ms after its wake-up (a late timer,
    /// the work of the read): the whole takes what the rate says, not 64 handlings more.
    #[tokio::test(start_paused = true)]
    async fn late_wake_ups_do_not_add_up() {
        let rate = 150e6 / 8.0;
        let mut schedule = Schedule::default();
        let start = Instant::now();
        for _ in 0..64 {
            schedule.carry(16 * 1024, Some(rate)).await;
            tokio::time::advance(Duration::from_micros(500)).await;
        }
        let carried = Duration::from_secs_f64((64 * 16 * 1024) as f64 / rate);
        let took = start.elapsed() - Duration::from_micros(500);
        // The timer's millisecond rounds the last wake-up only (a sleep each: 64 of them and
        // 64 handlings, some 95 ms).
        assert!(took >= carried, "{took:?} vs {carried:?}");
        assert!(
            took - carried < Duration::from_millis(1),
            "{took:?} vs {carried:?}"
        );
    }

    /// A line idle for longer than a moment starts afresh: the idle time is not credit.
    #[tokio::test(start_paused = true)]
    async fn an_idle_line_starts_afresh_and_no_rate_is_no_wait() {
        let mut schedule = Schedule::default();
        schedule.carry(1000, Some(1000.0)).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        let start = Instant::now();
        schedule.carry(500, Some(1000.0)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        let start = Instant::now();
        schedule.carry(500, None).await;
        schedule.carry(500, Some(0.0)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
