//! ARM's throttling, as Azure Resource Manager documents it ("Understand how Azure Resource
//! Manager throttles requests", summed up in `../shared/reference/azure.md`, "Scale"): token
//! buckets for each security principal and each subscription — reads 250 burst with 25 a second
//! refill, writes and deletes 200 burst with 10 a second — and the same buckets per tenant for
//! tenant-level operations (management groups, their descendants, the subscriptions list). Every
//! answer says what is left (`x-ms-ratelimit-remaining-subscription-reads`, `…-writes`,
//! `…-tenant-reads`, `…-tenant-writes`); a request that finds its bucket empty is answered 429
//! with `Retry-After` (whole seconds until a token is back) and takes nothing.
//!
//! Stricter readings where the documents leave room: the per-subscription global limit (15× the
//! per-principal one, shared by every principal) is not modelled, being looser than the
//! principal's own bucket for one caller; Microsoft Graph and the token endpoint are not ARM and
//! keep their own switch (`throttleNext`).

use std::collections::HashMap;
use std::time::Instant;

/// What a request takes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BucketKey {
    principal: String,
    /// `subscription:{id}` or `tenant:{id}`.
    scope: String,
    write: bool,
}

impl BucketKey {
    /// The bucket of an ARM request to `path` by `principal` of `tenant`.
    pub(crate) fn of(principal: &str, tenant: &str, path: &str, write: bool) -> Self {
        let scope = match path.strip_prefix("/subscriptions/") {
            Some(rest) if !rest.is_empty() => {
                let id = rest.split('/').next().unwrap_or(rest);
                format!("subscription:{}", id.to_ascii_lowercase())
            }
            _ => format!("tenant:{}", tenant.to_ascii_lowercase()),
        };
        Self {
            principal: principal.to_ascii_lowercase(),
            scope,
            write,
        }
    }

    /// The header that tells what is left in this bucket.
    pub(crate) fn header(&self) -> &'static str {
        match (self.scope.starts_with("tenant:"), self.write) {
            (false, false) => "x-ms-ratelimit-remaining-subscription-reads",
            (false, true) => "x-ms-ratelimit-remaining-subscription-writes",
            (true, false) => "x-ms-ratelimit-remaining-tenant-reads",
            (true, true) => "x-ms-ratelimit-remaining-tenant-writes",
        }
    }

    /// ARM's error code for a throttled request of this bucket.
    pub(crate) fn code(&self) -> &'static str {
        if self.scope.starts_with("tenant:") {
            "TenantRequestsThrottled"
        } else {
            "SubscriptionRequestsThrottled"
        }
    }
}

/// A bucket's size and refill, reads or writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub(crate) burst: u32,
    pub(crate) per_second: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every bucket the emulator has seen.
#[derive(Debug, Default)]
pub(crate) struct Buckets(HashMap<BucketKey, Bucket>);

/// What a request found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Taken: this many tokens are left.
    Left(u32),
    /// Empty: again after this many whole seconds.
    Throttled(u64),
}

impl Buckets {
    /// Takes a token from `key`'s bucket (full at first), refilled for the time since it was
    /// last looked at.
    pub(crate) fn take(&mut self, key: BucketKey, limit: Limit, now: Instant) -> Take {
        let burst = f64::from(limit.burst);
        let rate = f64::from(limit.per_second.max(1));
        let bucket = self.0.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            // Whole tokens left, as the header counts them.
            Take::Left(bucket.tokens.floor() as u32)
        } else {
            Take::Throttled(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_its_rate_and_says_when() {
        let mut b = Buckets::default();
        let key = BucketKey::of("sp-1", "t", "/subscriptions/S1/providers/x", false);
        assert_eq!(key.header(), "x-ms-ratelimit-remaining-subscription-reads");
        let limit = Limit {
            burst: 3,
            per_second: 2,
        };
        let t0 = Instant::now();
        assert_eq!(b.take(key.clone(), limit, t0), Take::Left(2));
        assert_eq!(b.take(key.clone(), limit, t0), Take::Left(1));
        assert_eq!(b.take(key.clone(), limit, t0), Take::Left(0));
        assert_eq!(b.take(key.clone(), limit, t0), Take::Throttled(1));
        // Half a second: one token back (two a second).
        assert_eq!(
            b.take(key.clone(), limit, t0 + Duration::from_millis(500)),
            Take::Left(0)
        );
        // Another principal, another subscription, the tenant: buckets of their own.
        let other = BucketKey::of("sp-2", "t", "/subscriptions/S1", false);
        assert_eq!(b.take(other, limit, t0), Take::Left(2));
        let tenant = BucketKey::of(
            "sp-1",
            "t",
            "/providers/Microsoft.Management/managementGroups/g",
            false,
        );
        assert_eq!(tenant.header(), "x-ms-ratelimit-remaining-tenant-reads");
        assert_eq!(tenant.code(), "TenantRequestsThrottled");
        assert_eq!(b.take(tenant, limit, t0), Take::Left(2));
    }
}
