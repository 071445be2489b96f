//! The one packing rule for requests, used by the batcher (files sharing requests) and by
//! one-off embedding (queries): inputs in order, at most `max_inputs` per request and no
//! more than `max_tokens` tokens, except that an input over the token limit goes alone
//! rather than never.

use std::ops::Range;

/// How many inputs from the front of `tokens` fit in one request, and their tokens.
pub(super) fn fits(
    tokens: impl IntoIterator<Item = usize>,
    max_inputs: usize,
    max_tokens: usize,
) -> (usize, usize) {
    let mut count = 0;
    let mut total = 0;
    for t in tokens.into_iter().take(max_inputs) {
        if count > 0 && total + t > max_tokens {
            break;
        }
        count += 1;
        total += t;
    }
    (count, total)
}

/// Splits inputs into consecutive requests by [`fits`].
pub(super) fn plan_batches(
    token_counts: &[usize],
    max_inputs: usize,
    max_tokens: usize,
) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < token_counts.len() {
        let (count, _) = fits(
            token_counts[start..].iter().copied(),
            max_inputs.max(1),
            max_tokens,
        );
        batches.push(start..start + count);
        start += count;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_input_and_token_limits() {
        let counts = vec![100, 200, 300, 50, 50, 400, 10];
        let batches = plan_batches(&counts, 3, 500);
        assert_eq!(batches, vec![0..2, 2..5, 5..7]);
        for b in &batches {
            assert!(b.len() <= 3);
            assert!(counts[b.clone()].iter().sum::<usize>() <= 500);
        }
        // Every input appears exactly once, in order.
        let flat: Vec<usize> = batches.into_iter().flatten().collect();
        assert_eq!(flat, (0..counts.len()).collect::<Vec<_>>());
        assert!(plan_batches(&[], 3, 10).is_empty());
        assert_eq!(plan_batches(&[1; 5], 2, 100), vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn a_request_is_filled_to_both_limits() {
        let tokens = [300, 300, 300, 50];
        assert_eq!(fits(tokens, 10, 700), (2, 600));
        assert_eq!(fits(tokens, 3, 10_000), (3, 900));
        // A single input over the token limit still goes alone rather than never.
        assert_eq!(fits(tokens, 10, 100), (1, 300));
        assert_eq!(plan_batches(&[300, 20], 10, 100), vec![0..1, 1..2]);
    }
}
