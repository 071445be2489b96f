//! The BERT encoder of a sentence-transformers model (all-MiniLM-L6-v2), written for this
//! one job: a batch of unpadded inputs in, one mean-pooled, L2-normalised vector per input
//! out.
//!
//! Why not a tensor library: profiled on a 2-core AVX-512 machine, candle's BERT spent 39%
//! of its time in matmuls and the rest allocating a tensor per operation (17% in the kernel
//! zeroing fresh pages), in scalar exact-erf GELU (12%), `expf` (5%) and thread hand-offs,
//! and it computed attention over padding. Here:
//! - the inputs of a batch are concatenated, never padded: the dense layers see exactly
//!   the real tokens and attention runs per (input, head) on that input's length;
//! - weights are packed once at load into the panels the matmul kernel reads;
//! - per layer there are three parallel passes (Q/K/V projection; attention per head; then
//!   per block of rows the output projection, residual, layer norm, feed-forward with GELU,
//!   residual and layer norm, all while the block is in cache), over buffers kept for the
//!   batch rather than a fresh tensor per operation;
//! - the arithmetic runs with the widest instructions the CPU has (AVX-512, else AVX2+FMA,
//!   chosen at run time by `pulp`, so the binary still runs on any x86-64) with no unsafe
//!   code: the matmul microkernel uses pulp's SIMD types, the element-wise kernels (erf,
//!   exp, layer norm) are plain loops that the compiler vectorises inside pulp's dispatch.
//!
//! The numerics follow the PyTorch model: exact (erf) GELU through a rational approximation
//! accurate to float32 rounding (the one Eigen and PyTorch vectorise), softmax with its
//! maximum subtracted, layer norm with the configured epsilon, sums in float32.

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

/// Columns of one packed weight panel: two AVX-512 registers or four AVX2 ones.
const NR: usize = 32;
/// Rows of activations one task carries through a pass: 96 rows of the 1,536-wide
/// intermediate (590 KB) and one weight panel fit together in a 1 MB L2 cache, and a batch
/// of 16 × 200 tokens still splits into 33 tasks to spread over the cores.
const ROWS_PER_TASK: usize = 96;

/// A weight matrix packed for [`matmul`]: `n / NR` panels, each `k` rows of `NR` columns,
/// contiguous, so the kernel reads each panel front to back.
pub(super) struct Packed {
    k: usize,
    n: usize,
    panels: Vec<f32>,
    bias: Vec<f32>,
}

impl Packed {
    /// `weight` in PyTorch's `Linear` layout: `n` rows (outputs) of `k` (inputs); `n` must
    /// be a multiple of [`NR`] (checked by the loader).
    pub(super) fn new(weight: &[f32], bias: Vec<f32>, n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k, "weight shape");
        assert_eq!(bias.len(), n, "bias shape");
        assert_eq!(n % NR, 0, "outputs must be a multiple of {NR}");
        let mut panels = Vec::with_capacity(n * k);
        for p in 0..n / NR {
            for kk in 0..k {
                panels.extend((0..NR).map(|c| weight[(p * NR + c) * k + kk]));
            }
        }
        Self { k, n, panels, bias }
    }

    fn view(&self) -> Panels<'_> {
        Panels {
            k: self.k,
            panels: self.n / NR,
            data: &self.panels,
            bias: Some(&self.bias),
        }
    }
}

/// A borrowed right-hand side for [`matmul`]: weights, or a per-input matrix (keys, values)
/// packed the same way on the fly.
#[derive(Clone, Copy)]
struct Panels<'a> {
    k: usize,
    panels: usize,
    data: &'a [f32],
    bias: Option<&'a [f32]>,
}

/// `out[r][..panels × NR] = a[r][..k] · B (+ bias)` for `rows` rows; `a` rows start every
/// `lda` floats, `out` rows every `ldo`. Single-threaded: callers split rows or heads.
#[inline(always)]
fn matmul<S: Simd>(
    simd: S,
    a: &[f32],
    lda: usize,
    rows: usize,
    b: Panels<'_>,
    out: &mut [f32],
    ldo: usize,
) {
    if rows == 0 {
        return;
    }
    assert!(a.len() >= (rows - 1) * lda + b.k, "lhs too short");
    assert!(
        out.len() >= (rows - 1) * ldo + b.panels * NR,
        "output too short"
    );
    assert_eq!(b.data.len(), b.panels * b.k * NR, "rhs shape");
    match S::F32_LANES {
        // AVX-512: 8 rows × 2 registers = 16 accumulators of the 32 registers.
        16 => matmul_tiles::<S, 8, 2>(simd, a, lda, rows, b, out, ldo),
        // AVX2: 3 rows × 4 registers = 12 accumulators of the 16 registers.
        8 => matmul_tiles::<S, 3, 4>(simd, a, lda, rows, b, out, ldo),
        _ => matmul_scalar(a, lda, rows, b, out, ldo),
    }
}

#[inline(always)]
fn matmul_tiles<S: Simd, const MR: usize, const NV: usize>(
    simd: S,
    a: &[f32],
    lda: usize,
    rows: usize,
    b: Panels<'_>,
    out: &mut [f32],
    ldo: usize,
) {
    debug_assert_eq!(NV * S::F32_LANES, NR);
    let panel_len = b.k * NR;
    for p in 0..b.panels {
        let panel = S::as_simd_f32s(&b.data[p * panel_len..(p + 1) * panel_len]).0;
        let bias = b.bias.map(|bias| &bias[p * NR..(p + 1) * NR]);
        let mut r = 0;
        while r + MR <= rows {
            tile::<S, MR, NV>(simd, a, lda, r, b.k, panel, bias, out, ldo, p);
            r += MR;
        }
        while r < rows {
            tile::<S, 1, NV>(simd, a, lda, r, b.k, panel, bias, out, ldo, p);
            r += 1;
        }
    }
}

/// One `MR × NR` block of the product, accumulated in registers over all of `k`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<S: Simd, const MR: usize, const NV: usize>(
    simd: S,
    a: &[f32],
    lda: usize,
    r0: usize,
    k: usize,
    panel: &[S::f32s],
    bias: Option<&[f32]>,
    out: &mut [f32],
    ldo: usize,
    p: usize,
) {
    let lhs: [&[f32]; MR] = core::array::from_fn(|i| &a[(r0 + i) * lda..][..k]);
    let mut acc = [[simd.splat_f32s(0.0); NV]; MR];
    for (kk, b) in panel.chunks_exact(NV).enumerate() {
        let b: [S::f32s; NV] = core::array::from_fn(|v| b[v]);
        for (acc, lhs) in acc.iter_mut().zip(&lhs) {
            let x = simd.splat_f32s(lhs[kk]);
            for (acc, &b) in acc.iter_mut().zip(&b) {
                *acc = simd.mul_add_f32s(x, b, *acc);
            }
        }
    }
    let bias = bias.map(|bias| S::as_simd_f32s(bias).0);
    for (i, acc) in acc.iter().enumerate() {
        let row = &mut out[(r0 + i) * ldo + p * NR..][..NR];
        let row = S::as_mut_simd_f32s(row).0;
        for (v, (dst, &acc)) in row.iter_mut().zip(acc).enumerate() {
            *dst = match bias {
                Some(bias) => simd.add_f32s(acc, bias[v]),
                None => acc,
            };
        }
    }
}

/// The same product on CPUs without AVX2 (pulp's scalar fallback).
fn matmul_scalar(a: &[f32], lda: usize, rows: usize, b: Panels<'_>, out: &mut [f32], ldo: usize) {
    let panel_len = b.k * NR;
    for r in 0..rows {
        let lhs = &a[r * lda..][..b.k];
        for p in 0..b.panels {
            let panel = &b.data[p * panel_len..(p + 1) * panel_len];
            let mut acc = [0f32; NR];
            if let Some(bias) = b.bias {
                acc.copy_from_slice(&bias[p * NR..(p + 1) * NR]);
            }
            for (x, row) in lhs.iter().zip(panel.chunks_exact(NR)) {
                for (acc, w) in acc.iter_mut().zip(row) {
                    *acc += x * w;
                }
            }
            out[r * ldo + p * NR..][..NR].copy_from_slice(&acc);
        }
    }
}

/// erf(x) as Eigen and PyTorch vectorise it: a rational approximation on [-4, 4] (erf is
/// ±1 in float32 beyond), accurate to a few float32 ulps.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.7261424e-10 + 2.7706815e-8;
    p = x2 * p + -2.101024e-6;
    p = x2 * p + -5.6925062e-5;
    p = x2 * p + -7.3499064e-4;
    p = x2 * p + -2.9546e-3;
    p = x2 * p + -1.6096033e-2;
    let p = x * p;
    let mut q = x2 * -1.4566072e-5 + -2.1337406e-4;
    q = x2 * q + -1.682827e-3;
    q = x2 * q + -7.373329e-3;
    q = x2 * q + -1.4264739e-2;
    p / q
}

/// BERT's GELU, the exact form `x · Φ(x)` (not the tanh approximation).
#[inline(always)]
fn gelu_in_place(xs: &mut [f32]) {
    for x in xs {
        *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// e^x for x ≤ 0 (softmax after subtracting the maximum): Cephes' polynomial on the
/// reduced argument, scaled by 2^n built from the exponent bits; within 2 ulps, and 0 below
/// -87 (where e^x is under float32's smallest normal number anyway).
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * 6.933594e-1 - n * -2.1219444e-4;
    let r2 = r * r;
    let mut y = 1.9875691e-4 * r + 1.3981999e-3;
    y = y * r + 8.333452e-3;
    y = y * r + 4.1665796e-2;
    y = y * r + 1.6666666e-1;
    y = y * r + 5e-1;
    let y = y * r2 + r + 1.0;
    // n ∈ [-126, 0]: a normal power of two.
    y * f32::from_bits((((n as i32) + 127) as u32) << 23)
}

/// Lanes of the partial sums below: the compiler keeps float additions in order, so a
/// reduction vectorises only if written as this many independent ones.
const LANES: usize = 16;

/// Σ xs, as 16 interleaved partial sums (vectorised).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// max xs (−∞ for none), vectorised the same way.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(x);
        }
    }
    lanes.iter().copied().fold(tail, f32::max)
}

/// Softmax of one row of attention scores, in place.
#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let max = max(row);
    for x in row.iter_mut() {
        *x = exp_nonpositive(*x - max);
    }
    let scale = 1.0 / sum(row);
    for x in row.iter_mut() {
        *x *= scale;
    }
}

/// `row = LayerNorm(row + residual)`, PyTorch's: biased variance, `eps` inside the root.
#[inline(always)]
fn add_layer_norm(row: &mut [f32], residual: Option<&[f32]>, norm: &Norm, eps: f32) {
    if let Some(residual) = residual {
        for (x, r) in row.iter_mut().zip(residual) {
            *x += r;
        }
    }
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut lanes = [0f32; LANES];
    for chunk in row.chunks(LANES) {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += (x - mean) * (x - mean);
        }
    }
    let var = lanes.iter().sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
        *x = (*x - mean) * inv * g + b;
    }
}

/// A layer norm's scale and shift.
pub(super) struct Norm {
    pub(super) gamma: Vec<f32>,
    pub(super) beta: Vec<f32>,
}

/// One encoder layer's weights. The query projection is pre-scaled by 1/√head_dim, so the
/// attention scores come out of the matmul already scaled.
pub(super) struct Layer {
    /// Query, key and value projections side by side: `3 × hidden` outputs.
    pub(super) qkv: Packed,
    pub(super) attention_out: Packed,
    pub(super) attention_norm: Norm,
    pub(super) intermediate: Packed,
    pub(super) output: Packed,
    pub(super) output_norm: Norm,
}

/// The dimensions the forward pass needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    pub(super) hidden: usize,
    pub(super) heads: usize,
    pub(super) intermediate: usize,
    pub(super) eps: f32,
}

impl Shape {
    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// The model: embeddings, encoder layers, and the CPU features found at load.
pub(super) struct Bert {
    pub(super) shape: Shape,
    /// `vocab × hidden`, `positions × hidden`, `types × hidden`.
    pub(super) word: Vec<f32>,
    pub(super) position: Vec<f32>,
    pub(super) token_type: Vec<f32>,
    pub(super) embedding_norm: Norm,
    pub(super) layers: Vec<Layer>,
    pub(super) arch: Arch,
}

/// One input of a batch: token ids and token type ids, already truncated.
pub(super) struct Input<'a> {
    pub(super) ids: &'a [u32],
    pub(super) type_ids: &'a [u32],
}

impl Bert {
    /// The mean-pooled, L2-normalised embedding of each input, in order. Ids must be in the
    /// vocabulary and inputs no longer than the position table (the loader's tokenizer and
    /// truncation see to both; checked here too).
    pub(super) fn embed(&self, inputs: &[Input<'_>]) -> Vec<Vec<f32>> {
        let shape = self.shape;
        let h = shape.hidden;
        let starts: Vec<usize> = inputs
            .iter()
            .scan(0, |offset, input| {
                let start = *offset;
                *offset += input.ids.len();
                Some(start)
            })
            .collect();
        let tokens: usize = inputs.iter().map(|i| i.ids.len()).sum();
        if tokens == 0 {
            // Unreachable with [CLS]/[SEP] added; the passes below need at least one row.
            return inputs.iter().map(|_| vec![0f32; h]).collect();
        }

        let mut hidden = vec![0f32; tokens * h];
        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut context = vec![0f32; tokens * h];

        self.embeddings(inputs, &starts, &mut hidden);
        let spans: Vec<(usize, usize)> = inputs
            .iter()
            .zip(&starts)
            .map(|(input, &start)| (start, input.ids.len()))
            .collect();
        for layer in &self.layers {
            // Pass 1: Q, K and V for every token.
            let w = layer.qkv.view();
            hidden
                .par_chunks(ROWS_PER_TASK * h)
                .zip(qkv.par_chunks_mut(ROWS_PER_TASK * 3 * h))
                .for_each(|(rows, out)| self.arch.dispatch(Project { a: rows, b: w, out }));
            // Pass 2: attention, one task per head over every input; `context` is laid out
            // head by head (`heads × tokens × head_dim`).
            let hd = shape.head_dim();
            context
                .par_chunks_mut(tokens * hd)
                .enumerate()
                .for_each(|(head, out)| {
                    self.arch.dispatch(Attention {
                        qkv: &qkv,
                        spans: &spans,
                        shape,
                        head,
                        out,
                    })
                });
            // Pass 3: output projection, residual, norm, feed-forward, residual, norm.
            hidden
                .par_chunks_mut(ROWS_PER_TASK * h)
                .enumerate()
                .for_each(|(block, rows)| {
                    self.arch.dispatch(FeedForward {
                        layer,
                        shape,
                        context: &context,
                        tokens,
                        first_row: block * ROWS_PER_TASK,
                        rows,
                    })
                });
        }

        spans
            .iter()
            .map(|&(start, len)| pool(&hidden[start * h..(start + len) * h], h))
            .collect()
    }

    /// Word + position + token type embeddings, then layer norm, into `hidden`.
    fn embeddings(&self, inputs: &[Input<'_>], starts: &[usize], hidden: &mut [f32]) {
        let h = self.shape.hidden;
        let eps = self.shape.eps;
        let vocab = self.word.len() / h;
        let positions = self.position.len() / h;
        let types = self.token_type.len() / h;
        let mut rows: Vec<&mut [f32]> = hidden.chunks_mut(h).collect();
        let mut work: Vec<(&mut [f32], usize, usize, usize)> = Vec::with_capacity(rows.len());
        for (input, &start) in inputs.iter().zip(starts) {
            assert!(
                input.ids.len() <= positions,
                "input longer than the positions"
            );
            for (p, (&id, &ty)) in input.ids.iter().zip(input.type_ids).enumerate() {
                let (id, ty) = (id as usize, ty as usize);
                assert!(id < vocab && ty < types, "token id outside the vocabulary");
                work.push((std::mem::take(&mut rows[start + p]), id, p, ty));
            }
        }
        work.par_iter_mut().for_each(|(row, id, p, ty)| {
            let word = &self.word[*id * h..][..h];
            let position = &self.position[*p * h..][..h];
            let token_type = &self.token_type[*ty * h..][..h];
            for (((x, w), p), t) in row.iter_mut().zip(word).zip(position).zip(token_type) {
                *x = w + p + t;
            }
            add_layer_norm(row, None, &self.embedding_norm, eps);
        });
    }
}

/// Mean over an input's tokens, then L2 normalisation with torch's epsilon (1e-12), as
/// sentence-transformers' Pooling and Normalize modules do.
fn pool(rows: &[f32], h: usize) -> Vec<f32> {
    let mut mean = vec![0f32; h];
    let count = (rows.len() / h).max(1) as f32;
    for row in rows.chunks_exact(h) {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    for m in &mut mean {
        *m /= count;
    }
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for m in &mut mean {
        *m /= norm;
    }
    mean
}

/// Pass 1 on a block of rows: `out = rows · W_qkv + b`.
struct Project<'a> {
    a: &'a [f32],
    b: Panels<'a>,
    out: &'a mut [f32],
}

impl WithSimd for Project<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let k = self.b.k;
        let n = self.b.panels * NR;
        matmul(simd, self.a, k, self.a.len() / k, self.b, self.out, n);
    }
}

/// Pass 2 for one head: for each input, `softmax(Q Kᵀ) V` over its own tokens.
struct Attention<'a> {
    qkv: &'a [f32],
    spans: &'a [(usize, usize)],
    shape: Shape,
    head: usize,
    /// This head's context vectors, `tokens × head_dim`.
    out: &'a mut [f32],
}

impl WithSimd for Attention<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let h = self.shape.hidden;
        let hd = self.shape.head_dim();
        let ld = 3 * h;
        let (q_col, k_col, v_col) = (self.head * hd, h + self.head * hd, 2 * h + self.head * hd);
        let longest = self.spans.iter().map(|s| s.1).max().unwrap_or(0);
        let padded = longest.div_ceil(NR) * NR;
        // Kᵀ and V packed as panels, and the score matrix, reused across inputs.
        let mut keys = vec![0f32; hd * padded];
        let mut values = vec![0f32; padded * hd];
        let mut scores = vec![0f32; longest * padded];
        for &(start, len) in self.spans {
            let width = len.div_ceil(NR) * NR;
            let rows = &self.qkv[start * ld..(start + len) * ld];
            // Kᵀ: panel p holds keys p·NR.. as columns, one row per head dimension; keys past
            // `len` in the last panel are zero and their scores are dropped below.
            let keys = &mut keys[..hd * width];
            for p in 0..width / NR {
                let panel = &mut keys[p * hd * NR..(p + 1) * hd * NR];
                for c in 0..NR {
                    let j = p * NR + c;
                    for d in 0..hd {
                        panel[d * NR + c] = if j < len {
                            rows[j * ld + k_col + d]
                        } else {
                            0.0
                        };
                    }
                }
            }
            let keys = Panels {
                k: hd,
                panels: width / NR,
                data: keys,
                bias: None,
            };
            let scores = &mut scores[..len * width];
            matmul(simd, &rows[q_col..], ld, len, keys, scores, width);
            for row in scores.chunks_exact_mut(width) {
                softmax_in_place(&mut row[..len]);
                row[len..].fill(0.0);
            }
            // V as panels of NR head dimensions, `width` rows (zero past `len`).
            let values = &mut values[..width * hd];
            for p in 0..hd / NR {
                let panel = &mut values[p * width * NR..(p + 1) * width * NR];
                for j in 0..width {
                    let dst = &mut panel[j * NR..(j + 1) * NR];
                    if j < len {
                        let src = v_col + p * NR;
                        dst.copy_from_slice(&rows[j * ld + src..][..NR]);
                    } else {
                        dst.fill(0.0);
                    }
                }
            }
            let values = Panels {
                k: width,
                panels: hd / NR,
                data: values,
                bias: None,
            };
            let out = &mut self.out[start * hd..(start + len) * hd];
            matmul(simd, scores, width, len, values, out, hd);
        }
    }
}

/// Pass 3 on a block of rows: everything after attention, while the block is in cache.
struct FeedForward<'a> {
    layer: &'a Layer,
    shape: Shape,
    /// Head-major context vectors from pass 2.
    context: &'a [f32],
    tokens: usize,
    first_row: usize,
    /// The block's hidden states: read as the residual, overwritten with the layer output.
    rows: &'a mut [f32],
}

impl WithSimd for FeedForward<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Shape {
            hidden: h,
            heads,
            intermediate,
            eps,
        } = self.shape;
        let hd = self.shape.head_dim();
        let n = self.rows.len() / h;
        // The block's context rows, back from head-major to token-major.
        let mut context = vec![0f32; n * h];
        for head in 0..heads {
            let src = &self.context[head * self.tokens * hd..][self.first_row * hd..][..n * hd];
            for (dst, src) in context.chunks_exact_mut(h).zip(src.chunks_exact(hd)) {
                dst[head * hd..(head + 1) * hd].copy_from_slice(src);
            }
        }
        let layer = self.layer;
        let mut attended = vec![0f32; n * h];
        matmul(
            simd,
            &context,
            h,
            n,
            layer.attention_out.view(),
            &mut attended,
            h,
        );
        for (row, residual) in attended.chunks_exact_mut(h).zip(self.rows.chunks_exact(h)) {
            add_layer_norm(row, Some(residual), &layer.attention_norm, eps);
        }
        let mut inner = vec![0f32; n * intermediate];
        matmul(
            simd,
            &attended,
            h,
            n,
            layer.intermediate.view(),
            &mut inner,
            intermediate,
        );
        gelu_in_place(&mut inner);
        matmul(
            simd,
            &inner,
            intermediate,
            n,
            layer.output.view(),
            self.rows,
            h,
        );
        for (row, residual) in self.rows.chunks_exact_mut(h).zip(attended.chunks_exact(h)) {
            add_layer_norm(row, Some(residual), &layer.output_norm, eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], rows: usize, k: usize, weight: &[f32], bias: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let dot: f64 = (0..k)
                    .map(|i| f64::from(a[r * k + i]) * f64::from(weight[c * k + i]))
                    .sum();
                out[r * n + c] = dot as f32 + bias[c];
            }
        }
        out
    }

    fn numbers(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn matmul_matches_a_naive_product_on_every_instruction_set() {
        let (rows, k, n) = (29, 70, 64);
        let a = numbers(rows * k, 1);
        let weight = numbers(n * k, 2);
        let bias = numbers(n, 3);
        let expected = naive(&a, rows, k, &weight, &bias, n);
        let packed = Packed::new(&weight, bias, n, k);
        for arch in [Arch::new(), Arch::Scalar] {
            let mut out = vec![0f32; rows * n];
            arch.dispatch(Project {
                a: &a,
                b: packed.view(),
                out: &mut out,
            });
            let worst = out
                .iter()
                .zip(&expected)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{arch:?}: off by {worst}");
        }
    }

    #[test]
    fn erf_is_accurate_to_float_rounding() {
        let worst = (-6000..=6000)
            .map(|i| i as f64 / 1000.0)
            .map(|x| (f64::from(erf(x as f32)) - libm_erf(x)).abs())
            .fold(0f64, f64::max);
        assert!(worst < 5e-7, "erf off by {worst}");
    }

    #[test]
    fn exp_is_accurate_to_float_rounding() {
        let worst = (0..=87_000)
            .map(|i| -(i as f32) / 1000.0)
            .map(|x| {
                // Against e^x of the float32 argument itself: rounding x to float32 would
                // alone move e^x by up to 4e-6 near -87.
                let exact = f64::from(x).exp();
                (f64::from(exp_nonpositive(x)) - exact).abs() / exact
            })
            .filter(|e| e.is_finite())
            .fold(0f64, f64::max);
        assert!(worst < 1e-6, "exp off by a relative {worst}");
    }

    /// erf in float64 from its Taylor series (|x| < 3) and continued fraction (beyond),
    /// good to 1e-12: the reference for the float32 approximation.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut term = x;
            let mut sum = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let z = x.abs();
            let mut f = 0.0;
            for n in (1..200).rev() {
                f = n as f64 / 2.0 / (z + f);
            }
            let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + f);
            (1.0 - erfc).copysign(x)
        }
    }
}
