//! Client secret expiry: which connections are due for a reminder, for being marked expired, or for
//! a rotation, decided from the scan tags alone (no secret value is read for connections that are
//! not due).

use chrono::NaiveDate;

/// Days before expiry at which a reminder goes out, each once.
pub const DEFAULT_THRESHOLDS: [u32; 4] = [30, 14, 7, 1];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderPolicy {
    /// Largest first.
    thresholds: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reminder days must be whole numbers of days, comma-separated, e.g. 30,14,7,1")]
pub struct PolicyError;

impl ReminderPolicy {
    pub fn new(mut thresholds: Vec<u32>) -> Self {
        thresholds.sort_unstable_by(|a, b| b.cmp(a));
        thresholds.dedup();
        Self { thresholds }
    }

    /// `"30,14,7,1"`.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let days: Result<Vec<u32>, _> = s.split(',').map(|d| d.trim().parse::<u32>()).collect();
        match days {
            Ok(d) if !d.is_empty() => Ok(Self::new(d)),
            _ => Err(PolicyError),
        }
    }

    /// The threshold the connection is in now: the smallest one not below `days_left`.
    pub fn current(&self, days_left: i64) -> Option<u32> {
        self.thresholds
            .iter()
            .rev()
            .find(|t| days_left <= i64::from(**t))
            .copied()
    }
}

impl Default for ReminderPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLDS.to_vec())
    }
}

/// What a scan reads of a connection: its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryTags {
    pub expires: NaiveDate,
    pub expired: bool,
    /// The last reminder threshold sent.
    pub reminded: Option<u32>,
    /// Rotation on, this many days before expiry.
    pub rotation_days: Option<u32>,
}

/// What the scan does with one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Remind { threshold: u32 },
    Expire,
    Rotate,
}

/// Due work for one connection on `today` (UTC). Rotation comes before a reminder: a rotated secret
/// needs no reminder.
pub fn due(policy: &ReminderPolicy, tags: &ExpiryTags, today: NaiveDate) -> Option<Due> {
    let days_left = (tags.expires - today).num_days();
    if days_left <= 0 {
        return (!tags.expired).then_some(Due::Expire);
    }
    if tags.rotation_days.is_some_and(|d| days_left <= i64::from(d)) {
        return Some(Due::Rotate);
    }
    let current = policy.current(days_left)?;
    match tags.reminded {
        Some(sent) if sent <= current => None,
        _ => Some(Due::Remind { threshold: current }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn tags(expires: &str, reminded: Option<u32>) -> ExpiryTags {
        ExpiryTags {
            expires: day(expires),
            expired: false,
            reminded,
            rotation_days: None,
        }
    }

    #[test]
    fn thresholds_are_crossed_once_each() {
        let p = ReminderPolicy::default();
        let today = day("2026-11-26");
        assert_eq!(due(&p, &tags("2027-06-01", None), today), None, "far away");
        assert_eq!(
            due(&p, &tags("2026-12-26", None), today),
            Some(Due::Remind { threshold: 30 })
        );
        assert_eq!(
            due(&p, &tags("2026-12-26", Some(30)), today),
            None,
            "already sent"
        );
        // 10 days left: 30 and 14 crossed, only the current one goes out.
        assert_eq!(
            due(&p, &tags("2026-12-06", Some(30)), today),
            Some(Due::Remind { threshold: 14 })
        );
        assert_eq!(
            due(&p, &tags("2026-12-06", None), today),
            Some(Due::Remind { threshold: 14 })
        );
        assert_eq!(
            due(&p, &tags("2026-11-27", Some(7)), today),
            Some(Due::Remind { threshold: 1 })
        );
        assert_eq!(due(&p, &tags("2026-11-27", Some(1)), today), None);
    }

    #[test]
    fn expiry_and_rotation() {
        let p = ReminderPolicy::default();
        let today = day("2026-11-26");
        assert_eq!(due(&p, &tags("2026-11-26", Some(1)), today), Some(Due::Expire));
        let mut t = tags("2026-11-20", None);
        t.expired = true;
        assert_eq!(due(&p, &t, today), None, "announced once");
        let mut t = tags("2026-12-10", None);
        t.rotation_days = Some(30);
        assert_eq!(due(&p, &t, today), Some(Due::Rotate));
        t.rotation_days = Some(7);
        assert_eq!(
            due(&p, &t, today),
            Some(Due::Remind { threshold: 14 }),
            "14 days left"
        );
    }

    #[test]
    fn policies_parse() {
        assert_eq!(ReminderPolicy::parse("7, 30,1").unwrap().current(5), Some(7));
        assert!(ReminderPolicy::parse("soon").is_err());
        assert!(ReminderPolicy::parse("").is_err());
    }
}
