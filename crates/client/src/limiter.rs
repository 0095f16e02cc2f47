//! A token-bucket rate limiter shared by every transfer job.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Caps the combined rate of all callers of [`RateLimiter::acquire`].
///
/// Tokens are bytes. A caller takes what it used (the balance may go negative) and sleeps
/// until the balance is repaid, so the long-run rate never exceeds `rate` bytes per second
/// and bursts are bounded by `burst` bytes.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limiter allowing `bytes_per_sec` (≥ 1) with a burst of a tenth of a second.
    pub fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        let burst = (rate / 10.0).max(64.0 * 1024.0);
        RateLimiter {
            rate,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// The configured rate in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    /// Accounts for `n` bytes and returns how long the caller must wait before going on.
    pub fn reserve(&self, n: usize) -> Duration {
        self.reserve_at(n, Instant::now())
    }

    fn reserve_at(&self, n: usize, now: Instant) -> Duration {
        let mut b = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now.max(b.last);
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.tokens -= n as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }

    /// Blocks the current (blocking) thread until `n` bytes may pass.
    pub fn acquire_blocking(&self, n: usize) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_grows_with_usage_and_is_repaid_over_time() {
        let l = RateLimiter::new(1_000_000);
        let t0 = Instant::now();
        // The initial burst (100 kB) passes without waiting.
        assert_eq!(l.reserve_at(100_000, t0), Duration::ZERO);
        // The next 500 kB must wait half a second at 1 MB/s.
        let w = l.reserve_at(500_000, t0);
        assert_eq!(w.as_millis(), 500);
        // A second later the debt is repaid and 400 kB of credit accrued, capped at the burst.
        let w = l.reserve_at(100_000, t0 + Duration::from_secs(2));
        assert_eq!(w, Duration::ZERO);
    }

    #[test]
    fn rate_is_shared_between_callers() {
        let l = RateLimiter::new(1_000_000);
        let t0 = Instant::now();
        let _ = l.reserve_at(100_000, t0);
        let a = l.reserve_at(250_000, t0);
        let b = l.reserve_at(250_000, t0);
        assert_eq!(a.as_millis(), 250);
        assert_eq!(b.as_millis(), 500);
    }
}
