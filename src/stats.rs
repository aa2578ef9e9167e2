//! The statistics RL researchers already use, as pure functions: the interquartile mean with a
//! percentile-bootstrap interval (rliable's convention for scores across seeds), Spearman's
//! rank correlation, the top-K overlap and its chance level, and the Gini coefficient of
//! concentration. Each follows the reference implementation it names (scipy, numpy), so a
//! reader can recompute every number.

use crate::ablation::draw::SplitMix64;

/// `scipy.stats.trim_mean(x, 0.25)`: sort, drop floor(0.25 n) values from each end, mean of the
/// rest. None for no values.
pub fn iqm(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 4;
    let kept = &v[cut..v.len() - cut];
    Some(kept.iter().sum::<f64>() / kept.len() as f64)
}

/// numpy's default percentile (linear interpolation between the closest ranks) of sorted
/// values, `p` in [0, 100].
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// A 95% percentile-bootstrap interval: `replicates` resamples of the n items drawn with
/// replacement (index = next() mod n of SplitMix64 seeded by `seed`, a fresh generator per
/// interval, n draws per replicate in order), the statistic of each, and the 2.5 and 97.5
/// percentiles of those (numpy's linear interpolation). None for fewer than two items or no
/// replicates; replicates whose statistic is undefined (NaN) are left out.
pub fn bootstrap_interval(
    n: usize,
    replicates: usize,
    seed: u64,
    mut stat: impl FnMut(&[usize]) -> f64,
) -> Option<[f64; 2]> {
    if n < 2 || replicates == 0 {
        return None;
    }
    let mut rng = SplitMix64::for_draw(seed, 0);
    let mut idx = vec![0usize; n];
    let mut stats: Vec<f64> = (0..replicates)
        .map(|_| {
            for i in idx.iter_mut() {
                *i = (rng.next_u64() % n as u64) as usize;
            }
            stat(&idx)
        })
        .filter(|v| !v.is_nan())
        .collect();
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    Some([percentile_sorted(&stats, 2.5), percentile_sorted(&stats, 97.5)])
}

/// The bootstrap interval of the IQM of `values` (see `bootstrap_interval`).
pub fn iqm_interval(values: &[f64], replicates: usize, seed: u64) -> Option<[f64; 2]> {
    let mut sample = vec![0.0; values.len()];
    bootstrap_interval(values.len(), replicates, seed, |idx| {
        for (s, &i) in sample.iter_mut().zip(idx) {
            *s = values[i];
        }
        iqm(&sample).unwrap_or(f64::NAN)
    })
}

/// The bootstrap interval of Spearman's correlation of paired values, resampling the pairs
/// (see `bootstrap_interval`; a resample where either side is constant has no correlation
/// and is left out).
pub fn spearman_interval(a: &[f64], b: &[f64], replicates: usize, seed: u64) -> Option<[f64; 2]> {
    let n = a.len().min(b.len());
    let (mut x, mut y) = (vec![0.0; n], vec![0.0; n]);
    bootstrap_interval(n, replicates, seed, |idx| {
        for (k, &i) in idx.iter().enumerate() {
            x[k] = a[i];
            y[k] = b[i];
        }
        spearman(&x, &y).unwrap_or(f64::NAN)
    })
}

/// Ranks from 1, ties given their average rank (`scipy.stats.rankdata(method="average")`).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson's correlation; None when either side is constant (or they differ in length).
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    (saa > 0.0 && sbb > 0.0).then(|| (sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman's correlation: Pearson's of the average ranks (`scipy.stats.spearmanr`); None when
/// a side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    pearson(&average_ranks(a), &average_ranks(b))
}

/// Indices of the `k` largest values (ties: the lower index first).
pub fn top_k(values: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// |A ∩ B| / K for A, B the K largest values of each (ties by position), K = min(k, n).
pub fn top_overlap(a: &[f64], b: &[f64], k: usize) -> f64 {
    let k = k.min(a.len()).min(b.len());
    if k == 0 {
        return 0.0;
    }
    let in_b: std::collections::HashSet<usize> = top_k(b, k).into_iter().collect();
    top_k(a, k).iter().filter(|i| in_b.contains(i)).count() as f64 / k as f64
}

/// The overlap two random top-K sets of n weights have on average: K / n.
pub fn chance_overlap(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        k.min(n) as f64 / n as f64
    }
}

/// The Gini coefficient of non-negative values: sorted ascending x_1..x_n,
/// G = sum_i (2i - n - 1) x_i / (n sum x). 0 when all are equal (or all zero).
pub fn gini(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let sum: f64 = v.iter().sum();
    if v.is_empty() || sum <= 0.0 {
        return 0.0;
    }
    let num: f64 = v.iter().enumerate().map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x).sum();
    num / (n * sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqm_trims_a_quarter_from_each_end() {
        // scipy.stats.trim_mean([1, 2, 3, 4, 100, -50, 7, 8], 0.25) = 4.0 (drops two each end)
        assert_eq!(iqm(&[1.0, 2.0, 3.0, 4.0, 100.0, -50.0, 7.0, 8.0]), Some(4.0));
        // n = 3: floor(0.75) = 0 dropped
        assert_eq!(iqm(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(iqm(&[]), None);
    }

    #[test]
    fn numpy_percentiles_interpolate_linearly() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925]
        assert!((percentile_sorted(&v, 2.5) - 1.075).abs() < 1e-12);
        assert!((percentile_sorted(&v, 97.5) - 3.925).abs() < 1e-12);
        assert_eq!(percentile_sorted(&[5.0], 50.0), 5.0);
    }

    #[test]
    fn ranks_correlations_and_overlaps() {
        // scipy.stats.rankdata([10, 20, 20, 5]) = [2, 3.5, 3.5, 1]
        assert_eq!(average_ranks(&[10.0, 20.0, 20.0, 5.0]), [2.0, 3.5, 3.5, 1.0]);
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic = 0.8207826816681233
        let s = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((s - 0.8207826816681233).abs() < 1e-12, "{s}");
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(top_k(&[1.0, 3.0, 3.0, 2.0], 2), [1, 2]);
        assert_eq!(top_overlap(&[1.0, 3.0, 3.0, 2.0], &[0.0, 3.0, 1.0, 2.0], 2), 0.5);
        assert_eq!(chance_overlap(100, 400), 0.25);
    }

    #[test]
    fn gini_of_equal_and_concentrated_values() {
        assert_eq!(gini(&[1.0, 1.0, 1.0, 1.0]), 0.0);
        // one of four holds everything: (2*4 - 4 - 1) * 1 / (4 * 1) = 0.75
        assert_eq!(gini(&[0.0, 0.0, 0.0, 1.0]), 0.75);
        assert_eq!(gini(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn the_bootstrap_is_seeded_and_brackets_the_iqm() {
        let v = [0.1, 0.4, 0.35, 0.8, 0.2, 0.5];
        let a = iqm_interval(&v, 2000, 0).unwrap();
        assert_eq!(Some(a), iqm_interval(&v, 2000, 0), "the same seed gives the same interval");
        assert_ne!(Some(a), iqm_interval(&v, 2000, 1));
        let m = iqm(&v).unwrap();
        assert!(a[0] <= m && m <= a[1], "{a:?} around {m}");
        assert_eq!(iqm_interval(&[1.0], 2000, 0), None);
    }
}
