//! A linked connection's health. Connect Account checks a connection once; afterwards customers
//! delete role assignments, edit the role, revoke secrets, disable apps or subscriptions. The
//! health check runs Connect Account's validation again on a schedule: a definite failure moves a
//! connected connection to `degraded` (inputs kept, the diagnosis recorded), a healthy check of a
//! degraded one restores it, and a transient failure changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ids::ConnectionId;

pub use super::connection::{HealthRecord, HealthVerdict};

/// Where in each period a connection is checked: a stable offset derived from its id, so that
/// checks spread over the period instead of bursting at its start, and a connection keeps its
/// slot from one period to the next.
pub fn slot(id: &ConnectionId, period: Duration) -> Duration {
    let secs = period.as_secs().max(1);
    Duration::from_secs(stable_hash(id.to_string().as_bytes()) % secs)
}

/// FNV-1a: stable across builds and platforms (std's hasher is not), for slots and keys.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether the connection's slot falls in the window `(from, to]` of the time line (periods are
/// aligned on the Unix epoch). Consecutive windows share no slot, so consecutive runs never check
/// a connection twice.
pub fn due_in(id: &ConnectionId, period: Duration, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    let p = i64::try_from(period.as_secs().max(1)).unwrap_or(i64::MAX);
    let s = i64::try_from(slot(id, period).as_secs()).unwrap_or(0);
    let (from, to) = (from.timestamp(), to.timestamp());
    if to - from >= p {
        return true;
    }
    // The number of slot instants k·p + s at or before t is ⌊(t − s) / p⌋ (+ a constant).
    (to - s).div_euclid(p) > (from - s).div_euclid(p)
}

/// The period a moment falls in (its index since the epoch): what names a check's request, so
/// that every run of one period writes with the same idempotency key.
pub fn period_index(at: DateTime<Utc>, period: Duration) -> i64 {
    let p = i64::try_from(period.as_secs().max(1)).unwrap_or(i64::MAX);
    at.timestamp().div_euclid(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn ids(n: usize) -> Vec<ConnectionId> {
        (0..n).map(|_| ConnectionId::new_random()).collect()
    }

    #[test]
    fn slots_are_stable_and_spread_over_the_period() {
        let all = ids(2_000);
        for id in &all[..10] {
            assert_eq!(slot(id, DAY), slot(id, DAY));
            assert!(slot(id, DAY) < DAY);
        }
        // Each of the 24 hours gets its share (±50 %), not a burst at midnight.
        let mut hours = [0usize; 24];
        for id in &all {
            hours[(slot(id, DAY).as_secs() / 3600) as usize] += 1;
        }
        let even = all.len() / 24;
        for (h, n) in hours.iter().enumerate() {
            assert!(
                *n > even / 2 && *n < even * 3 / 2,
                "hour {h}: {n} of {}",
                all.len()
            );
        }
    }

    #[test]
    fn consecutive_windows_check_each_connection_exactly_once_per_period() {
        let all = ids(500);
        let start: DateTime<Utc> = "2026-11-27T00:07:00Z".parse().unwrap();
        // A run every 15 minutes, for exactly one period.
        let step = chrono::Duration::minutes(15);
        for id in &all {
            let hits = (0..96)
                .filter(|k| due_in(id, DAY, start + step * *k, start + step * (*k + 1)))
                .count();
            assert_eq!(hits, 1, "{id}");
        }
        // A window as long as the period takes everyone.
        assert!(
            all.iter()
                .all(|id| due_in(id, DAY, start, start + chrono::Duration::days(1)))
        );
        // An empty window takes no one.
        assert!(all.iter().all(|id| !due_in(id, DAY, start, start)));
    }

    #[test]
    fn periods_are_numbered_from_the_epoch() {
        let a: DateTime<Utc> = "2026-11-27T00:00:00Z".parse().unwrap();
        assert_eq!(
            period_index(a, DAY),
            period_index(a + chrono::Duration::hours(23), DAY)
        );
        assert_eq!(
            period_index(a, DAY) + 1,
            period_index(a + chrono::Duration::hours(24), DAY)
        );
    }
}
