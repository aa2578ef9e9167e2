//! Sums of |gradient| per parameter element, in float64, added in input order (docs/pipeline.md, step 2).
//!
//! Each per-input gradient is the float32 value the raw file holds (for a Linear weight,
//! fl32(d_i * a_j), exactly what PyTorch's batch-of-one backward gives), so the averages of
//! `saliency run` equal those `saliency average` computes from its `weight_gradients.json`,
//! to the last bit.

use rayon::prelude::*;

use super::average::{Averages, AvgParam};
use super::gradfile::ParamMeta;
use super::measures::ExtraSums;
use crate::model::{BatchGrads, LayerGrads, ParamSource};

/// Rows handled per rayon task (enough work to amortise scheduling).
const MIN_CHUNK: usize = 1 << 14;

pub struct Accumulator {
    pub sums: Vec<Vec<f64>>,
    /// The other measures' sums (docs/measures.md), when asked for.
    pub extra: Option<Vec<ExtraSums>>,
    pub count: u64,
}

impl Accumulator {
    pub fn new(numels: &[usize]) -> Accumulator {
        Accumulator { sums: numels.iter().map(|&n| vec![0.0; n]).collect(), extra: None, count: 0 }
    }

    /// Also keeps the sums every other measure needs (sum g, sum g^2, max |g|, nonzero).
    pub fn with_measures(numels: &[usize]) -> Accumulator {
        let mut a = Accumulator::new(numels);
        a.extra = Some(numels.iter().map(|&n| ExtraSums::new(n)).collect());
        a
    }

    /// Adds every input of the batch, in order.
    pub fn add_batch(&mut self, sources: &[ParamSource], batch: &BatchGrads) {
        if self.extra.is_some() {
            return self.add_batch_all(sources, batch);
        }
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

    /// `add_batch` keeping every measure's sums: one pass per element over the batch's inputs,
    /// in input order, each gradient formed once (the float32 value the raw file holds).
    fn add_batch_all(&mut self, sources: &[ParamSource], batch: &BatchGrads) {
        let b = batch.n;
        let Some(extra) = self.extra.as_mut() else { return };
        self.sums.par_iter_mut().zip(extra.par_iter_mut()).zip(sources.par_iter()).for_each(|((abs, ex), src)| {
            // Blocks of ALL_CHUNK elements: the five arrays of a block stay in L1 while every
            // input of the batch is added to it (in input order).
            let chunk = ALL_CHUNK;
            abs.par_chunks_mut(chunk)
                .zip(ex.sum.par_chunks_mut(chunk))
                .zip(ex.sq.par_chunks_mut(chunk))
                .zip(ex.max.par_chunks_mut(chunk))
                .zip(ex.nonzero.par_chunks_mut(chunk))
                .enumerate()
                .for_each(|(t, ((((a, s), q), m), z))| {
                    let start = t * chunk;
                    let mut acc = Sums5 { abs: a, sum: s, sq: q, max: m, nz: z };
                    let len = acc.len();
                    match &batch.layers[src.layer] {
                        LayerGrads::Outer { d, a: act, rows, cols } if !src.bias => {
                            let (rows, cols) = (*rows, *cols);
                            // The block may span rows: each row's columns c0..c1 in turn.
                            let mut e = start;
                            while e < start + len {
                                let (i, c0) = (e / cols, e % cols);
                                let c1 = cols.min(c0 + (start + len - e));
                                let mut part = acc.rows(e - start, c1 - c0);
                                for n in 0..b {
                                    part.add_outer(d[n * rows + i], &act[n * cols + c0..n * cols + c1]);
                                }
                                e += c1 - c0;
                            }
                        }
                        LayerGrads::Outer { d, rows, .. } => {
                            for n in 0..b {
                                acc.add_vals(&d[n * rows + start..n * rows + start + len]);
                            }
                        }
                        LayerGrads::Dense { w, b: bias, numel, out } => {
                            let (vals, width) = if src.bias { (bias, *out) } else { (w, *numel) };
                            for n in 0..b {
                                acc.add_vals(&vals[n * width + start..n * width + start + len]);
                            }
                        }
                    }
                });
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

/// Elements per block when every measure is kept (five float64 arrays: 5 x 4 KB, in L1).
const ALL_CHUNK: usize = 512;

/// The five running sums of a range of elements.
struct Sums5<'a> {
    abs: &'a mut [f64],
    sum: &'a mut [f64],
    sq: &'a mut [f64],
    max: &'a mut [f32],
    nz: &'a mut [u32],
}

impl Sums5<'_> {
    fn len(&self) -> usize {
        self.abs.len()
    }

    fn rows(&mut self, start: usize, len: usize) -> Sums5<'_> {
        let r = start..start + len;
        Sums5 {
            abs: &mut self.abs[r.clone()],
            sum: &mut self.sum[r.clone()],
            sq: &mut self.sq[r.clone()],
            max: &mut self.max[r.clone()],
            nz: &mut self.nz[r],
        }
    }

    /// Adds one input's gradients of these elements.
    #[inline]
    fn add_vals(&mut self, vals: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above).
            return unsafe { add_vals_all_avx2(self, vals) };
        }
        add_vals_all(self, vals)
    }

    /// Adds one input's gradients fl32(di * a[j]) of a Linear weight row.
    #[inline]
    fn add_outer(&mut self, di: f32, a: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above).
            return unsafe { add_outer_all_avx2(self, di, a) };
        }
        add_outer_all(self, di, a)
    }
}

/// The five updates for each gradient `g(v)` of `vals`, in lockstep over the five arrays (zipped
/// iterators: no bounds checks, so the loop vectorises).
#[inline(always)]
fn add_each(s: &mut Sums5, vals: &[f32], g: impl Fn(f32) -> f32) {
    let it = s.abs.iter_mut().zip(s.sum.iter_mut()).zip(s.sq.iter_mut()).zip(s.max.iter_mut()).zip(s.nz.iter_mut());
    for (((((a, su), q), m), z), &v) in it.zip(vals) {
        let gv = g(v);
        let x = f64::from(gv);
        *a += x.abs();
        *su += x;
        *q += x * x;
        let ag = gv.abs();
        *m = if ag > *m { ag } else { *m };
        *z += u32::from(gv != 0.0);
    }
}

#[inline(always)]
fn add_vals_all(s: &mut Sums5, vals: &[f32]) {
    add_each(s, vals, |v| v)
}

#[inline(always)]
fn add_outer_all(s: &mut Sums5, di: f32, a: &[f32]) {
    add_each(s, a, |aj| di * aj)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_vals_all_avx2(s: &mut Sums5, vals: &[f32]) {
    add_vals_all(s, vals)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_outer_all_avx2(s: &mut Sums5, di: f32, a: &[f32]) {
    add_outer_all(s, di, a)
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

    #[test]
    fn every_measure_sum_follows_the_scalar_rule() {
        let a: Vec<f32> = (0..3001).map(|i| if i % 7 == 0 { 0.0 } else { ((i as f32) * 0.37).sin() * 1e-3 }).collect();
        let n = a.len();
        let (mut abs, mut ex) = (vec![0.25f64; n], ExtraSums::new(n));
        let mut s = Sums5 { abs: &mut abs, sum: &mut ex.sum, sq: &mut ex.sq, max: &mut ex.max, nz: &mut ex.nonzero };
        s.add_outer(-0.5, &a);
        s.add_vals(&a);
        for (j, &aj) in a.iter().enumerate() {
            let (g1, g2) = (f64::from(-0.5f32 * aj), f64::from(aj));
            assert_eq!(abs[j], 0.25 + g1.abs() + g2.abs());
            assert_eq!(ex.sum[j], g1 + g2);
            assert_eq!(ex.sq[j], g1 * g1 + g2 * g2);
            assert_eq!(f64::from(ex.max[j]), g1.abs().max(g2.abs()));
            assert_eq!(ex.nonzero[j], if aj == 0.0 { 0 } else { 2 });
        }
    }
}
