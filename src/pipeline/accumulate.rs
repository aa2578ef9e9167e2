//! Sums of |gradient| per parameter element, in float64, added in input order (docs/pipeline.md, step 2).
//!
//! Each per-input gradient is the float32 value the raw file holds (for a Linear weight,
//! fl32(d_i * a_j), exactly what PyTorch's batch-of-one backward gives), so the averages of
//! `saliency run` equal those `saliency average` computes from its `weight_gradients.json`,
//! to the last bit.

use rayon::prelude::*;

use super::average::{Averages, AvgParam};
use super::gradfile::ParamMeta;
use crate::model::{BatchGrads, LayerGrads, ParamSource};

/// Rows handled per rayon task (enough work to amortise scheduling).
const MIN_CHUNK: usize = 1 << 14;

pub struct Accumulator {
    pub sums: Vec<Vec<f64>>,
    pub count: u64,
}

impl Accumulator {
    pub fn new(numels: &[usize]) -> Accumulator {
        Accumulator { sums: numels.iter().map(|&n| vec![0.0; n]).collect(), count: 0 }
    }

    /// Adds every input of the batch, in order.
    pub fn add_batch(&mut self, sources: &[ParamSource], batch: &BatchGrads) {
        let b = batch.n;
        self.sums.par_iter_mut().zip(sources.par_iter()).for_each(|(sum, src)| match &batch.layers[src.layer] {
            LayerGrads::Outer { d, a, rows, cols } => {
                let (rows, cols) = (*rows, *cols);
                if src.bias {
                    for n in 0..b {
                        add_abs(sum, &d[n * rows..(n + 1) * rows]);
                    }
                } else {
                    let rows_per_task = (MIN_CHUNK / cols.max(1)).max(1);
                    sum.par_chunks_mut(rows_per_task * cols).enumerate().for_each(|(t, chunk)| {
                        for (r, acc) in chunk.chunks_exact_mut(cols).enumerate() {
                            let i = t * rows_per_task + r;
                            for n in 0..b {
                                add_outer_abs(acc, d[n * rows + i], &a[n * cols..(n + 1) * cols]);
                            }
                        }
                    });
                }
            }
            LayerGrads::Dense { w, b: bias, numel, out } => {
                let (vals, width) = if src.bias { (bias, *out) } else { (w, *numel) };
                sum.par_chunks_mut(MIN_CHUNK).enumerate().for_each(|(t, chunk)| {
                    let start = t * MIN_CHUNK;
                    for n in 0..b {
                        let row = &vals[n * width + start..n * width + start + chunk.len()];
                        add_abs(chunk, row);
                    }
                });
            }
        });
        self.count += b as u64;
    }

    /// Means: each sum divided once by the number of inputs so far.
    pub fn averages(&self, params: &[ParamMeta]) -> Averages {
        let n = self.count as f64;
        Averages {
            num_examples: Some(self.count as i64),
            params: params
                .iter()
                .zip(&self.sums)
                .map(|(p, s)| AvgParam {
                    name: p.name.clone(),
                    shape: p.shape.clone(),
                    data: s.iter().map(|&x| x / n).collect(),
                })
                .collect(),
        }
    }
}

/// acc[j] += |vals[j]| (as f64)
#[inline]
fn add_abs(acc: &mut [f64], vals: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { add_abs_avx2(acc, vals) };
    }
    add_abs_generic(acc, vals)
}

/// acc[j] += |fl32(di * a[j])| (as f64): the magnitude of a Linear weight's per-input gradient.
#[inline]
fn add_outer_abs(acc: &mut [f64], di: f32, a: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { add_outer_abs_avx2(acc, di, a) };
    }
    add_outer_abs_generic(acc, di, a)
}

// The same loops compiled for AVX2 (4 f64 lanes instead of SSE2's 2). Results are identical:
// the operations and their order per element do not change, only how many run at once.

#[inline(always)]
fn add_abs_generic(acc: &mut [f64], vals: &[f32]) {
    for (s, &v) in acc.iter_mut().zip(vals) {
        *s += f64::from(v.abs());
    }
}

#[inline(always)]
fn add_outer_abs_generic(acc: &mut [f64], di: f32, a: &[f32]) {
    for (s, &aj) in acc.iter_mut().zip(a) {
        *s += f64::from((di * aj).abs());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_abs_avx2(acc: &mut [f64], vals: &[f32]) {
    add_abs_generic(acc, vals)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_outer_abs_avx2(acc: &mut [f64], di: f32, a: &[f32]) {
    add_outer_abs_generic(acc, di, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_the_scalar_rule() {
        let a: Vec<f32> = (0..1001).map(|i| ((i as f32) * 0.37).sin() * 1e-3).collect();
        let mut fast = vec![0.5f64; a.len()];
        let mut slow = fast.clone();
        add_outer_abs(&mut fast, -0.123_456_7, &a);
        add_abs(&mut fast, &a);
        for (s, &aj) in slow.iter_mut().zip(&a) {
            *s += f64::from((-0.123_456_7f32 * aj).abs());
            *s += f64::from(aj.abs());
        }
        assert_eq!(fast, slow);
    }
}
