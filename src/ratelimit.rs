//! Per-tenant and per-caller request limits (token buckets, `governor`): one tenant, or one
//! user of a tenant, cannot take the database pool and the Stripe budget from the others.
//! Checked once a caller is authenticated (`auth`), so every API route is limited, while the
//! Stripe receiver and the health checks, which have no caller, never are. Over the limit:
//! 429 `rate_limited` with `Retry-After`, before the handler runs, so nothing is done.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Settings;
use crate::error::ApiError;

/// How often idle buckets are dropped, so the key space stays bounded by who called recently.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The tenant's and the callers' buckets. A limit of 0 requests per second turns it off.
pub struct RateLimits {
    tenant: Option<DefaultKeyedRateLimiter<String>>,
    caller: Option<DefaultKeyedRateLimiter<(String, String)>>,
    /// Installs started on Stripe's side (the public callback without a state of ours) make
    /// this service exchange a code with Stripe before anyone is authenticated: a few per
    /// second for everyone together, so nobody can spend the platform's Stripe budget.
    installs: DefaultDirectRateLimiter,
}

/// Installs per second (and burst) the public callback accepts.
const INSTALLS_PER_SEC: u32 = 2;
const INSTALLS_BURST: u32 = 20;

fn installs() -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(INSTALLS_PER_SEC).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(INSTALLS_BURST).unwrap_or(rate);
    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_second: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl RateLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            tenant: limiter(
                settings.rate_limit_tenant_per_sec,
                settings.rate_limit_tenant_burst,
            ),
            caller: limiter(
                settings.rate_limit_caller_per_sec,
                settings.rate_limit_caller_burst,
            ),
            installs: installs(),
        }
    }

    /// Takes one install from the shared bucket; 429 when it is empty.
    pub fn check_install(&self) -> Result<(), ApiError> {
        self.installs.check().map_err(|not_until| {
            crate::metrics::rate_limited("install");
            ApiError::rate_limited(
                "Too many installations at once; retry after the time in Retry-After.",
                not_until.wait_time_from(self.installs.clock().now()),
            )
        })
    }

    /// Takes one request from the caller's bucket, then from the tenant's; 429 when either is
    /// empty. The caller's is checked first, so a caller refused by its own limit does not use
    /// up the tenant's.
    pub fn check(&self, tenant_id: &str, subject: &str) -> Result<(), ApiError> {
        if let Some(limiter) = &self.caller
            && let Err(not_until) = limiter.check_key(&(tenant_id.to_owned(), subject.to_owned()))
        {
            crate::metrics::rate_limited("caller");
            return Err(ApiError::rate_limited(
                "Too many requests from this user; retry after the time in Retry-After.",
                not_until.wait_time_from(limiter.clock().now()),
            ));
        }
        if let Some(limiter) = &self.tenant
            && let Err(not_until) = limiter.check_key(&tenant_id.to_owned())
        {
            crate::metrics::rate_limited("tenant");
            return Err(ApiError::rate_limited(
                "Too many requests for this app; retry after the time in Retry-After.",
                not_until.wait_time_from(limiter.clock().now()),
            ));
        }
        Ok(())
    }

    /// Drops the buckets that are full again (their callers have been idle long enough that
    /// a fresh bucket is the same).
    pub fn prune(&self) {
        if let Some(limiter) = &self.tenant {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.caller {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Buckets currently kept (tenants plus callers).
    pub fn tracked(&self) -> usize {
        self.tenant.as_ref().map_or(0, |l| l.len()) + self.caller.as_ref().map_or(0, |l| l.len())
    }
}

/// Prunes the buckets every minute, for as long as the service runs.
pub fn start_pruning(limits: std::sync::Arc<RateLimits>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        loop {
            every.tick().await;
            limits.prune();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_sec: u32, burst: u32) -> RateLimits {
        RateLimits {
            tenant: limiter(per_sec * 2, burst * 2),
            caller: limiter(per_sec, burst),
            installs: installs(),
        }
    }

    #[test]
    fn a_caller_past_its_burst_is_refused_with_a_retry_after_and_others_are_not() {
        let limits = limits(1, 3);
        for _ in 0..3 {
            limits.check("t1", "alice").unwrap();
        }
        let refused = limits.check("t1", "alice").unwrap_err();
        assert_eq!(refused.status.as_u16(), 429);
        assert_eq!(refused.code, "rate_limited");
        assert_eq!(refused.retry_after, Some(1));
        // Another caller of the same tenant, and another tenant, go on.
        limits.check("t1", "bob").unwrap();
        limits.check("t2", "alice").unwrap();
        // The tenant's own bucket (burst 6): alice 3 + bob 1 + 2 more callers, then full.
        limits.check("t1", "carol").unwrap();
        limits.check("t1", "dave").unwrap();
        let refused = limits.check("t1", "erin").unwrap_err();
        assert!(refused.detail.contains("app"), "{}", refused.detail);
        assert_eq!(limits.tracked(), 2 + 6);
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = limits(0, 0);
        for _ in 0..1000 {
            limits.check("t", "u").unwrap();
        }
        assert_eq!(limits.tracked(), 0);
    }
}
