//! Client-side pacing for the embeddings API: token buckets for requests/min and tokens/min
//! (configured, or learned from `x-ratelimit-limit-*` headers), a shared pause after a 429,
//! and a cap on concurrent requests that halves on 429 and grows back on success (AIMD).

use crate::lock::lock;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::headers::RateLimitHeaders;

/// A bucket that refills continuously at `per_minute / 60` per second up to `per_minute`,
/// the way OpenAI's limits behave.
#[derive(Debug, Clone)]
struct Bucket {
    per_minute: f64,
    available: f64,
}

impl Bucket {
    fn new(per_minute: u64) -> Self {
        Self {
            per_minute: per_minute as f64,
            available: per_minute as f64,
        }
    }

    fn refill(&mut self, elapsed: Duration) {
        self.available =
            (self.available + elapsed.as_secs_f64() * self.per_minute / 60.0).min(self.per_minute);
    }

    /// Time until `amount` is available (zero if it is). Amounts above the capacity wait for
    /// a full bucket: such a request can never fit better.
    fn wait_for(&self, amount: f64) -> Duration {
        let amount = amount.min(self.per_minute);
        if self.available >= amount {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((amount - self.available) * 60.0 / self.per_minute)
        }
    }
}

impl State {
    /// Brings both buckets up to now. Every reader and writer of `available` calls this
    /// first: a value synced from headers must not later be credited for time before it.
    fn refill(&mut self) -> Instant {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last_refill);
        self.last_refill = now;
        if let Some(b) = self.requests.as_mut() {
            b.refill(elapsed);
        }
        if let Some(b) = self.tokens.as_mut() {
            b.refill(elapsed);
        }
        now
    }
}

#[derive(Debug)]
struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    /// Limits were configured: headers must not override them.
    configured_requests: bool,
    configured_tokens: bool,
    last_refill: Instant,
    paused_until: Option<Instant>,
    in_flight: usize,
    /// Tokens of the requests in flight, which the provider's `remaining` may not count yet.
    in_flight_tokens: u64,
    /// Current concurrency cap; between 1 and `max_concurrency`.
    window: f64,
    max_concurrency: usize,
}

/// Shared by every request of one provider.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
    released: Notify,
}

/// A granted slot: holds one unit of concurrency until dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a RateLimiter,
    tokens: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.limiter.state);
        s.in_flight -= 1;
        s.in_flight_tokens -= self.tokens;
        drop(s);
        self.limiter.released.notify_waiters();
    }
}

impl RateLimiter {
    /// `rpm`/`tpm` of 0 mean "not configured" (learned from headers, else unlimited).
    pub fn new(rpm: u64, tpm: u64, max_concurrency: usize) -> Self {
        let max_concurrency = max_concurrency.max(1);
        Self {
            state: Mutex::new(State {
                requests: (rpm > 0).then(|| Bucket::new(rpm)),
                tokens: (tpm > 0).then(|| Bucket::new(tpm)),
                configured_requests: rpm > 0,
                configured_tokens: tpm > 0,
                last_refill: Instant::now(),
                paused_until: None,
                in_flight: 0,
                in_flight_tokens: 0,
                window: max_concurrency as f64,
                max_concurrency,
            }),
            released: Notify::new(),
        }
    }

    /// Whether a request could leave now: no pause, a request left in the minute's budget,
    /// and a concurrency slot free. While it could not, the batcher keeps filling the next
    /// request instead of sending a partial one to wait here.
    pub fn request_ready(&self) -> bool {
        let mut s = lock(&self.state);
        let now = s.refill();
        let paused = s.paused_until.is_some_and(|t| t > now);
        let request = s.requests.as_ref().is_none_or(|b| b.available >= 1.0);
        !paused && request && s.in_flight < s.window.floor().max(1.0) as usize
    }

    /// Waits until a request of `tokens` may be sent, then takes its share of both buckets
    /// and one concurrency slot.
    pub async fn acquire(&self, tokens: u64) -> Permit<'_> {
        loop {
            // Register interest before checking, so a release between the check and the
            // wait is not missed.
            let released = self.released.notified();
            let wait = {
                let mut s = lock(&self.state);
                let now = s.refill();
                let paused = s
                    .paused_until
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
                let wait = paused
                    .max(
                        s.requests
                            .as_ref()
                            .map_or(Duration::ZERO, |b| b.wait_for(1.0)),
                    )
                    .max(
                        s.tokens
                            .as_ref()
                            .map_or(Duration::ZERO, |b| b.wait_for(tokens as f64)),
                    );
                if wait.is_zero() && s.in_flight < s.window.floor().max(1.0) as usize {
                    if let Some(b) = s.requests.as_mut() {
                        b.available -= 1.0;
                    }
                    if let Some(b) = s.tokens.as_mut() {
                        // May go negative for an over-capacity request: later ones wait it off.
                        b.available -= tokens as f64;
                    }
                    s.in_flight += 1;
                    s.in_flight_tokens += tokens;
                    return Permit {
                        limiter: self,
                        tokens,
                    };
                }
                wait
            };
            if wait.is_zero() {
                // Only the concurrency cap is in the way: wait for a slot.
                released.await;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = released => {}
                }
            }
        }
    }

    /// After any response: learns the limits the provider announces (unless configured),
    /// and never believes more is left than the provider says, less what is still in
    /// flight (which its count may not include yet). This keeps several workers sharing
    /// one API key from drifting apart from the provider's view.
    pub fn observe(&self, headers: &RateLimitHeaders) {
        let mut s = lock(&self.state);
        s.refill();
        let (others, other_tokens) = (s.in_flight as f64, s.in_flight_tokens as f64);
        if !s.configured_requests {
            if let Some(limit) = headers.limit_requests.filter(|&l| l > 0) {
                learn(&mut s.requests, limit);
            }
        }
        if !s.configured_tokens {
            if let Some(limit) = headers.limit_tokens.filter(|&l| l > 0) {
                learn(&mut s.tokens, limit);
            }
        }
        if let (Some(b), Some(r)) = (s.requests.as_mut(), headers.remaining_requests) {
            b.available = b.available.min(r as f64 - others);
        }
        if let (Some(b), Some(r)) = (s.tokens.as_mut(), headers.remaining_tokens) {
            b.available = b.available.min(r as f64 - other_tokens);
        }
    }

    /// After a 429: nobody sends until the provider's window resets, and the concurrency
    /// cap halves.
    pub fn rate_limited(&self, wait: Option<Duration>) {
        let mut s = lock(&self.state);
        s.refill();
        let until = Instant::now() + wait.unwrap_or(Duration::from_secs(1));
        s.paused_until = Some(s.paused_until.map_or(until, |t| t.max(until)));
        s.window = (s.window / 2.0).max(1.0);
        // Our bucket was too optimistic: start the token bucket again from empty.
        if let Some(b) = s.tokens.as_mut() {
            b.available = b.available.min(0.0);
        }
    }

    /// After a success: the cap grows back by one request per window's worth of successes.
    pub fn succeeded(&self) {
        let mut s = lock(&self.state);
        let max = s.max_concurrency as f64;
        s.window = (s.window + 1.0 / s.window).min(max);
    }

    /// The tokens-per-minute limit in force (configured or learned), if any.
    pub fn tokens_per_minute(&self) -> Option<u64> {
        lock(&self.state)
            .tokens
            .as_ref()
            .map(|b| b.per_minute as u64)
    }

    /// Current concurrency cap.
    #[cfg(test)]
    pub fn concurrency(&self) -> usize {
        lock(&self.state).window.floor() as usize
    }
}

fn learn(bucket: &mut Option<Bucket>, limit: u64) {
    match bucket {
        Some(b) => b.per_minute = limit as f64,
        None => *bucket = Some(Bucket::new(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn token_bucket_paces_to_the_configured_rate() {
        let limiter = RateLimiter::new(0, 60_000, 100); // 1000 tokens/s
        let start = Instant::now();
        // The full bucket (60k) goes at once, then 10k more tokens take 10 s.
        for _ in 0..7 {
            drop(limiter.acquire(10_000).await);
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(10) && elapsed < Duration::from_millis(10_100),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_are_paced() {
        let limiter = RateLimiter::new(60, 0, 100); // one request per second after the burst
        for _ in 0..60 {
            drop(limiter.acquire(1).await);
        }
        let start = Instant::now();
        for _ in 0..5 {
            drop(limiter.acquire(1).await);
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(5) && elapsed < Duration::from_millis(5_100),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_request_is_ready_only_while_the_limits_would_let_it_leave() {
        let limiter = RateLimiter::new(2, 0, 8);
        assert!(limiter.request_ready());
        let _first = limiter.acquire(10).await;
        let _second = limiter.acquire(10).await;
        // The minute's two requests are spent: a third would wait, so it is not ready.
        assert!(!limiter.request_ready());
        let one = RateLimiter::new(0, 0, 1);
        let held = one.acquire(10).await;
        assert!(!one.request_ready(), "the only concurrency slot is taken");
        drop(held);
        assert!(one.request_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_everyone_and_halves_concurrency() {
        let limiter = RateLimiter::new(0, 0, 8);
        assert_eq!(limiter.concurrency(), 8);
        limiter.rate_limited(Some(Duration::from_secs(6)));
        assert_eq!(limiter.concurrency(), 4);
        let start = Instant::now();
        drop(limiter.acquire(10).await);
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        // Growth is additive: one slot back after about `window` successes.
        for _ in 0..4 {
            limiter.succeeded();
        }
        assert_eq!(limiter.concurrency(), 4);
        limiter.succeeded();
        assert_eq!(limiter.concurrency(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_cap_blocks_until_a_permit_is_released() {
        let limiter = std::sync::Arc::new(RateLimiter::new(0, 0, 1));
        let first = limiter.acquire(1).await;
        let l2 = limiter.clone();
        let second = tokio::spawn(async move {
            let _p = l2.acquire(1).await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        let released_at = Instant::now();
        drop(first);
        assert!(second.await.unwrap() >= released_at);
    }

    #[test]
    fn limits_are_learned_from_headers_unless_configured() {
        let limiter = RateLimiter::new(0, 500, 4);
        limiter.observe(&RateLimitHeaders {
            limit_requests: Some(3000),
            limit_tokens: Some(1_000_000),
            remaining_requests: Some(2999),
            ..Default::default()
        });
        let s = lock(&limiter.state);
        assert_eq!(s.requests.as_ref().unwrap().per_minute, 3000.0);
        // The one request it answered was no longer in flight: nothing else to subtract.
        assert_eq!(s.requests.as_ref().unwrap().available, 2999.0);
        assert_eq!(
            s.tokens.as_ref().unwrap().per_minute,
            500.0,
            "configured wins"
        );
    }
}
