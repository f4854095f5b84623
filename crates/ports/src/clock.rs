//! Time as a port, so tests can stand at any instant (session expiry, signature tolerance).

use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    /// The current instant, in UTC.
    ///
    /// # Errors
    /// None: reading the clock cannot fail, so it is neither async nor fallible.
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock, at microsecond precision: what SQL timestamps keep, so a value
/// read back from storage equals the one written.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        let micros = now.nanosecond() / 1_000 * 1_000;
        now.replace_nanosecond(micros).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_ticks_in_whole_microseconds() {
        for _ in 0..100 {
            assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
        }
    }
}
