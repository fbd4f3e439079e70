//! The time a scheduled run says it is for, checked against the clock: a scheduler's delivery is
//! on time or late by at most its retries' age, so a `scheduledAt` from the future, or older
//! than any delivery can be, is an invocation that is not the schedule's (anyone allowed to invoke
//! the function could otherwise run a scan "a month from now" and expire or abandon early).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app::FieldError;

/// What time it is (the system clock; tests move it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// How far ahead of our clock a schedule's time may be (clocks differ a little).
const AHEAD: Duration = Duration::from_secs(300);

/// The run's time: `scheduled_at` when the clock allows it (at most `max_age` old), else the
/// field's error; the clock when none is given.
pub fn trusted(
    scheduled_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<DateTime<Utc>, FieldError> {
    let Some(at) = scheduled_at else {
        return Ok(now);
    };
    let ahead = chrono::Duration::from_std(AHEAD).unwrap_or(chrono::Duration::minutes(5));
    let age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::hours(1));
    if at > now + ahead {
        return Err(FieldError::new("scheduledAt", "is in the future"));
    }
    if at < now - age {
        return Err(FieldError::new(
            "scheduledAt",
            "is older than a scheduled delivery can be",
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_from_the_future_or_too_old_is_not_the_schedules() {
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(trusted(None, now, hour).unwrap(), now);
        let late = now - chrono::Duration::minutes(30);
        assert_eq!(trusted(Some(late), now, hour).unwrap(), late);
        assert!(trusted(Some(now + chrono::Duration::days(31)), now, hour).is_err());
        assert!(trusted(Some(now - chrono::Duration::hours(2)), now, hour).is_err());
        assert!(trusted(Some(now + chrono::Duration::minutes(2)), now, hour).is_ok());
    }
}
