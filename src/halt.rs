//! A circuit breaker held for a while: after an error that every further request would meet
//! too (a provider's quota or authentication refusal, storage rejecting the credentials),
//! work stops until the halt expires instead of failing or retrying file after file.

use crate::lock::lock;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The error that stopped work, until when.
#[derive(Debug)]
pub struct Halt<E> {
    state: Mutex<Option<(Instant, E)>>,
}

impl<E: Clone> Halt<E> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(None),
        }
    }

    /// Stops work for `period` because of `err`.
    pub fn trip(&self, period: Duration, err: E) {
        *lock(&self.state) = Some((Instant::now() + period, err));
    }

    /// The error that stopped work, while the halt holds.
    pub fn current(&self) -> Option<E> {
        let mut state = lock(&self.state);
        match &*state {
            Some((until, _)) if Instant::now() >= *until => {
                *state = None;
                None
            }
            Some((_, err)) => Some(err.clone()),
            None => None,
        }
    }
}

impl<E: Clone> Default for Halt<E> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_halt_holds_for_its_period_then_lifts() {
        let halt = Halt::new();
        assert_eq!(halt.current(), None);
        halt.trip(Duration::from_secs(60), "refused");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(halt.current(), Some("refused"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(halt.current(), None);
    }
}
