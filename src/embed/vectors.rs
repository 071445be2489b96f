//! Vector maths on what a backend answered: back in input order and checked, decoded from
//! base64, and split inputs folded back into one vector each.

use std::ops::Range;

use base64::Engine;
use half::f16;
use pgvector::HalfVector;

use super::EmbedError;

/// Folds the vectors of split inputs back into one per original input: the token-weighted
/// mean of its parts, normalised (parts have equal weight per token, as in OpenAI's
/// cookbook recipe for long inputs).
pub(super) fn combine_parts(vectors: Vec<HalfVector>, parts: &[Range<usize>]) -> Vec<HalfVector> {
    if parts.iter().all(|r| r.len() == 1) {
        return vectors;
    }
    let vectors: Vec<Vec<f16>> = vectors.into_iter().map(Vec::from).collect();
    parts
        .iter()
        .map(|range| {
            if range.len() == 1 {
                return HalfVector::from(vectors[range.start].clone());
            }
            let dims = vectors[range.start].len();
            let mut sum = vec![0f32; dims];
            for v in &vectors[range.clone()] {
                for (s, x) in sum.iter_mut().zip(v) {
                    *s += x.to_f32();
                }
            }
            let norm = sum
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            HalfVector::from(
                sum.iter()
                    .map(|x| f16::from_f32(x / norm))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Puts vectors back in input order by the response's `index` field and checks that every
/// input got exactly one vector of the configured dimension.
pub(super) fn order_by_index(
    indexed: Vec<(u32, Vec<f16>)>,
    expected: usize,
    dimensions: usize,
) -> Result<Vec<HalfVector>, EmbedError> {
    if indexed.len() != expected {
        return Err(EmbedError::BadResponse(format!(
            "{} embeddings for {expected} inputs",
            indexed.len()
        )));
    }
    let mut slots: Vec<Option<HalfVector>> = vec![None; expected];
    for (index, vector) in indexed {
        if vector.len() != dimensions {
            return Err(EmbedError::BadResponse(format!(
                "embedding of dimension {}, but embedding.dimensions is {dimensions}",
                vector.len()
            )));
        }
        check_values(index as usize, &vector)?;
        let slot = slots.get_mut(index as usize).ok_or_else(|| {
            EmbedError::BadResponse(format!(
                "embedding index {index} out of range for {expected} inputs"
            ))
        })?;
        if slot.replace(HalfVector::from(vector)).is_some() {
            return Err(EmbedError::BadResponse(format!(
                "embedding index {index} appears twice"
            )));
        }
    }
    // Every slot is filled: the count matched and no index repeated.
    Ok(slots.into_iter().flatten().collect())
}

/// A vector that cannot be searched is the provider's fault, never stored: NaN or infinite
/// values (recent Ollama versions answer NaN for some inputs; a value beyond half
/// precision's range becomes infinite), or all zeros, whose cosine similarity is undefined.
pub(super) fn check_values(index: usize, vector: &[f16]) -> Result<(), EmbedError> {
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(EmbedError::BadResponse(format!(
            "the embedding of chunk {index} has NaN or infinite values (a provider bug; nothing was stored)"
        )));
    }
    if vector.iter().all(|x| x.to_f32() == 0.0) {
        return Err(EmbedError::BadResponse(format!(
            "the embedding of chunk {index} is all zeros (a provider bug; nothing was stored)"
        )));
    }
    Ok(())
}

/// base64 of little-endian f32s, straight to f16.
pub(super) fn decode_base64(encoded: &str) -> Result<Vec<f16>, EmbedError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| EmbedError::BadResponse(format!("invalid base64 embedding: {e}")))?;
    if bytes.len() % 4 != 0 {
        return Err(EmbedError::BadResponse(
            "base64 embedding is not a whole number of f32 values".into(),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_ordered_by_index_and_checked() {
        let v = |x: f32| vec![f16::from_f32(x); 2];
        let out = order_by_index(vec![(1, v(1.0)), (0, v(0.5))], 2, 2).unwrap();
        assert_eq!(out[0].to_vec()[0], f16::from_f32(0.5));
        assert_eq!(out[1].to_vec()[0], f16::from_f32(1.0));
        let err = order_by_index(vec![(0, v(0.5))], 2, 2).unwrap_err();
        assert!(
            err.to_string().contains("1 embeddings for 2 inputs"),
            "{err}"
        );
        let err = order_by_index(vec![(0, vec![f16::ONE; 3])], 1, 2).unwrap_err();
        assert!(err.to_string().contains("dimension 3"), "{err}");
        let err = order_by_index(vec![(0, v(0.5)), (0, v(0.5))], 2, 2).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let err = order_by_index(vec![(5, v(0.5))], 1, 2).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        for (bad, reason) in [
            (vec![f16::ONE, f16::NAN], "NaN or infinite"),
            (vec![f16::INFINITY, f16::ONE], "NaN or infinite"),
            (vec![f16::ZERO, f16::NEG_ZERO], "all zeros"),
        ] {
            let err = order_by_index(vec![(0, v(0.5)), (1, bad)], 2, 2).unwrap_err();
            assert!(
                err.to_string().contains(&format!(
                    "chunk 1 {}",
                    if reason == "all zeros" { "is" } else { "has" }
                )),
                "{err}"
            );
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn base64_decodes_little_endian_f32() {
        let raw: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(
            decode_base64(&encoded).unwrap(),
            vec![f16::from_f32(1.5), f16::from_f32(-2.0)]
        );
        assert!(decode_base64("AAA=").is_err());
    }
}
