//! Reading what an OpenAI-compatible provider says about its rate limits.

use std::time::Duration;

use http::HeaderMap;

/// Rate-limit facts from one response's headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitHeaders {
    /// `retry-after-ms` or `retry-after` (seconds).
    pub retry_after: Option<Duration>,
    pub reset_requests: Option<Duration>,
    pub reset_tokens: Option<Duration>,
    pub limit_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
}

impl RateLimitHeaders {
    pub fn parse(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
        let retry_after = text("retry-after-ms")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .or_else(|| {
                text("retry-after")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
            });
        Self {
            retry_after,
            reset_requests: text("x-ratelimit-reset-requests").and_then(parse_reset),
            reset_tokens: text("x-ratelimit-reset-tokens").and_then(parse_reset),
            limit_requests: number("x-ratelimit-limit-requests"),
            limit_tokens: number("x-ratelimit-limit-tokens"),
            remaining_requests: number("x-ratelimit-remaining-requests"),
            remaining_tokens: number("x-ratelimit-remaining-tokens"),
        }
    }

    /// How long to wait before the next try after a 429: the explicit Retry-After, else the
    /// longer of the two resets (the exhausted limit is the one that resets later or the
    /// only one reported).
    pub fn wait_hint(&self) -> Option<Duration> {
        self.retry_after
            .or_else(|| match (self.reset_requests, self.reset_tokens) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            })
    }
}

/// Parses OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`, `0.5s`; a bare number
/// is seconds.
pub fn parse_reset(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0f64;
    let mut rest = value;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(split);
        let num: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += num * scale;
        rest = tail;
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn parses_openai_reset_formats() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_reset("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_reset("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_reset("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset("5x"), None);
        assert_eq!(parse_reset(""), None);
    }

    #[test]
    fn retry_after_wins_then_longest_reset() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-reset-requests",
            HeaderValue::from_static("200ms"),
        );
        h.insert("x-ratelimit-reset-tokens", HeaderValue::from_static("6m0s"));
        h.insert(
            "x-ratelimit-limit-tokens",
            HeaderValue::from_static("1000000"),
        );
        h.insert(
            "x-ratelimit-remaining-tokens",
            HeaderValue::from_static("999"),
        );
        let parsed = RateLimitHeaders::parse(&h);
        assert_eq!(parsed.wait_hint(), Some(Duration::from_secs(360)));
        assert_eq!(parsed.limit_tokens, Some(1_000_000));
        assert_eq!(parsed.remaining_tokens, Some(999));
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(
            RateLimitHeaders::parse(&h).wait_hint(),
            Some(Duration::from_secs(3))
        );
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(
            RateLimitHeaders::parse(&h).wait_hint(),
            Some(Duration::from_millis(1500))
        );
    }
}
