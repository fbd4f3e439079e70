//! Backing off before ARM's buckets run dry: what an answer says is left
//! (`x-ms-ratelimit-remaining-*`) decides how long the next read waits.

use std::time::Duration;

/// ARM's buckets left with fewer read tokens than this space out the calls that follow, so that
/// they refill instead of running dry (ARM: reads 250 burst, 25 a second refill, per principal
/// and subscription or tenant; `../shared/reference/azure.md`, "Scale").
const PACE_BELOW: u32 = 25;
/// The time ARM takes to give one read token back (25 a second).
const READ_REFILL: Duration = Duration::from_millis(40);
/// The headers in which ARM says what is left of a caller's read buckets.
const REMAINING_READS: [&str; 3] = [
    "x-ms-ratelimit-remaining-subscription-reads",
    "x-ms-ratelimit-remaining-tenant-reads",
    "x-ms-ratelimit-remaining-subscription-global-reads",
];

/// How long to wait before the next ARM read, from what the last answer said is left: nothing
/// while a second's refill is left, then one refill for each token missing.
pub(super) fn pace(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let left = REMAINING_READS
        .iter()
        .filter_map(|h| headers.get(*h)?.to_str().ok()?.trim().parse::<u32>().ok())
        .min()?;
    (left < PACE_BELOW).then(|| READ_REFILL * (PACE_BELOW - left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_reads_are_spaced_out_only_when_few_tokens_are_left() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = reqwest::header::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert_eq!(pace(&headers(&[])), None);
        assert_eq!(
            pace(&headers(&[(
                "x-ms-ratelimit-remaining-subscription-reads",
                "249"
            )])),
            None
        );
        assert_eq!(
            pace(&headers(&[("x-ms-ratelimit-remaining-tenant-reads", "20")])),
            Some(Duration::from_millis(200))
        );
        // The emptiest bucket decides.
        assert_eq!(
            pace(&headers(&[
                ("x-ms-ratelimit-remaining-subscription-reads", "200"),
                ("x-ms-ratelimit-remaining-subscription-global-reads", "0"),
            ])),
            Some(Duration::from_millis(1000))
        );
    }
}
