//! The one retry policy: how long to wait before attempt `n` ([`Backoff`]), and how to keep
//! calling something until it succeeds, fails for good, or a deadline would pass ([`until`]).
//! Used by the compare-and-swap writes, Connect Account's Azure calls and propagation waits, and
//! the rotation's test of a new secret.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How much of each wait is random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential value.
    None,
    /// Uniform in the upper half: `[d/2, d]`.
    Half,
    /// Uniform in `[0, d]` (spreads racing writers best).
    Full,
}

/// Exponential backoff: `base × 2^attempt`, at most `max`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// A compare-and-swap write that lost a race: 10 ms doubling to 400 ms, full jitter.
    /// A lost race on an organization's index, which every start of the organization writes: a
    /// burst of them spreads out over seconds (100 ms doubling to 3.2 s, full jitter) instead of
    /// all trying again within the same few hundred milliseconds.
    pub const INDEX: Self = Self {
        base: Duration::from_millis(100),
        max: Duration::from_millis(3200),
        jitter: Jitter::Full,
    };
    pub const CAS: Self = Self {
        base: Duration::from_millis(10),
        max: Duration::from_millis(400),
        jitter: Jitter::Full,
    };
    /// A transient Azure failure without Retry-After: 100 ms doubling to 3.2 s, upper-half jitter.
    pub const AZURE: Self = Self {
        base: Duration::from_millis(100),
        max: Duration::from_millis(3200),
        jitter: Jitter::Half,
    };
    /// A role assignment not visible yet: 500 ms doubling to 5 s.
    pub const PROPAGATION: Self = Self {
        base: Duration::from_millis(500),
        max: Duration::from_secs(5),
        jitter: Jitter::None,
    };
    /// Polling for a new secret to be accepted: every 500 ms.
    pub const POLL: Self = Self {
        base: Duration::from_millis(500),
        max: Duration::from_millis(500),
        jitter: Jitter::None,
    };

    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.max);
        let ms = exp.as_millis() as u64;
        let ms = match self.jitter {
            Jitter::None => ms,
            Jitter::Half => ms / 2 + fastrand::u64(0..=ms - ms / 2),
            Jitter::Full => fastrand::u64(0..=ms),
        };
        Duration::from_millis(ms)
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Final: give up with this error.
    Stop,
    /// Try again after the backoff's wait.
    Retry,
    /// Try again after exactly this wait (Retry-After).
    RetryAfter(Duration),
}

/// Why [`until`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp<E> {
    /// A final failure.
    Failed(E),
    /// The next wait would pass the deadline; the last transient failure.
    OutOfTime(E),
    /// An attempt was still running at the deadline.
    TimedOut,
}

/// Calls `f` until it succeeds, fails for good (`classify` says [`Verdict::Stop`]), or waiting
/// for another attempt would pass `deadline`. Each attempt is cut off at the deadline too.
pub async fn until<T, E, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    mut f: F,
    classify: impl Fn(&E) -> Verdict,
) -> Result<T, GaveUp<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = match tokio::time::timeout(remaining, f()).await {
            Ok(r) => r,
            Err(_) => return Err(GaveUp::TimedOut),
        };
        let err = match result {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wait = match classify(&err) {
            Verdict::Stop => return Err(GaveUp::Failed(err)),
            Verdict::Retry => backoff.delay(attempt),
            Verdict::RetryAfter(d) => d,
        };
        // A wait of any size (a Retry-After of years) is only compared, never added blindly.
        if Instant::now().checked_add(wait).is_none_or(|at| at >= deadline) {
            return Err(GaveUp::OutOfTime(err));
        }
        tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, "retrying");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum E {
        Busy,
        BusyFor(Duration),
        Gone,
    }

    fn classify(e: &E) -> Verdict {
        match e {
            E::Busy => Verdict::Retry,
            E::BusyFor(d) => Verdict::RetryAfter(*d),
            E::Gone => Verdict::Stop,
        }
    }

    #[test]
    fn delays_grow_and_stay_within_their_bounds() {
        for attempt in 0..40 {
            let d = Backoff::CAS.delay(attempt);
            assert!(d <= Duration::from_millis(400), "{d:?}");
            let d = Backoff::AZURE.delay(attempt);
            let cap = Duration::from_millis(100 << attempt.min(5)).min(Duration::from_millis(3200));
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {attempt}: {d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
        assert_eq!(Backoff::PROPAGATION.delay(0), Duration::from_millis(500));
        assert_eq!(Backoff::PROPAGATION.delay(1), Duration::from_secs(1));
        assert_eq!(Backoff::PROPAGATION.delay(10), Duration::from_secs(5));
        assert_eq!(Backoff::POLL.delay(7), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let mut calls = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        let r = until(
            deadline,
            Backoff::AZURE,
            || {
                calls += 1;
                let n = calls;
                async move { if n < 3 { Err(E::Busy) } else { Ok(n) } }
            },
            classify,
        )
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_exactly() {
        let started = Instant::now();
        let mut calls = 0;
        let r = until(
            started + Duration::from_secs(10),
            Backoff::AZURE,
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 2 {
                        Err(E::BusyFor(Duration::from_secs(2)))
                    } else {
                        Ok(())
                    }
                }
            },
            classify,
        )
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_beyond_the_deadline_gives_up_at_once() {
        let started = Instant::now();
        let r: Result<(), _> = until(
            started + Duration::from_secs(5),
            Backoff::AZURE,
            || async { Err(E::BusyFor(Duration::from_secs(60))) },
            classify,
        )
        .await;
        assert_eq!(r, Err(GaveUp::OutOfTime(E::BusyFor(Duration::from_secs(60)))));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn final_failures_are_not_retried() {
        let mut calls = 0;
        let r: Result<(), _> = until(
            Instant::now() + Duration::from_secs(5),
            Backoff::AZURE,
            || {
                calls += 1;
                async { Err(E::Gone) }
            },
            classify,
        )
        .await;
        assert_eq!(r, Err(GaveUp::Failed(E::Gone)));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cut_off_at_the_deadline() {
        let started = Instant::now();
        let r: Result<(), GaveUp<E>> = until(
            started + Duration::from_secs(3),
            Backoff::AZURE,
            std::future::pending::<Result<(), E>>,
            classify,
        )
        .await;
        assert_eq!(r, Err(GaveUp::TimedOut));
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn busy_until_the_deadline_ends_out_of_time_with_the_last_failure() {
        let started = Instant::now();
        let r: Result<(), _> = until(
            started + Duration::from_secs(4),
            Backoff::POLL,
            || async { Err(E::Busy) },
            classify,
        )
        .await;
        assert_eq!(r, Err(GaveUp::OutOfTime(E::Busy)));
        assert!(started.elapsed() <= Duration::from_secs(4));
        assert!(started.elapsed() >= Duration::from_millis(3500));
    }
}
