//! The random baseline's draws: for draw r of seed S, the same number of elements per parameter
//! as the selection, chosen uniformly without replacement. The generator is defined here
//! exactly (docs/ablation.md, "Random draws"), so any implementation, in any language, that
//! follows it gets the same draws; `scripts/reference/make_ablation_reference.py` does.

/// SplitMix64 (Steele, Lea and Flood, 2014): the state advances by the golden-ratio constant and
/// each output is the state mixed.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// The generator of draw `r` for seed `seed`: state = mix(seed) + r * golden, so draws are
    /// independent streams and draw r does not depend on how many draws there are.
    pub fn for_draw(seed: u64, r: u64) -> SplitMix64 {
        SplitMix64 { state: mix(seed).wrapping_add(r.wrapping_mul(GOLDEN)) }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in 0..n (n > 0), by rejection: values at or above the largest multiple of n
    /// that fits in 2^64 are drawn again, so every residue is equally likely.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = (1u128 << 64) / u128::from(n) * u128::from(n);
        loop {
            let x = self.next_u64();
            if u128::from(x) < zone {
                return x % n;
            }
        }
    }
}

/// `count` distinct indices in 0..n, chosen uniformly (Floyd's algorithm: for j from n - count
/// to n - 1, take t uniform in 0..=j; keep t, or j if t was taken), returned sorted.
pub fn distinct(rng: &mut SplitMix64, n: usize, count: usize) -> Vec<usize> {
    let count = count.min(n);
    let mut taken = std::collections::HashSet::with_capacity(count);
    for j in (n - count)..n {
        let t = rng.below(j as u64 + 1) as usize;
        if !taken.insert(t) {
            taken.insert(j);
        }
    }
    let mut out: Vec<usize> = taken.into_iter().collect();
    out.sort_unstable();
    out
}

/// Draw `r`: for each (parameter, count, numel) in parameter order, `count` distinct elements
/// of that parameter, all from draw r's one generator.
pub fn draw(seed: u64, r: u64, per_param: &[(usize, usize, usize)]) -> Vec<(usize, Vec<usize>)> {
    let mut rng = SplitMix64::for_draw(seed, r);
    per_param.iter().map(|&(param, count, numel)| (param, distinct(&mut rng, numel, count))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_published_sequence() {
        // SplitMix64 seeded with 1234567: the reference values of Vigna's splitmix64.c.
        let mut g = SplitMix64 { state: 1234567 };
        assert_eq!(g.next_u64(), 6457827717110365317);
        assert_eq!(g.next_u64(), 3203168211198807973);
        assert_eq!(g.next_u64(), 9817491932198370423);
    }

    #[test]
    fn draws_are_distinct_uniform_and_reproducible() {
        let a = draw(0, 3, &[(0, 5, 10), (2, 40, 64)]);
        assert_eq!(a, draw(0, 3, &[(0, 5, 10), (2, 40, 64)]));
        assert_ne!(a, draw(1, 3, &[(0, 5, 10), (2, 40, 64)]));
        assert_ne!(a, draw(0, 4, &[(0, 5, 10), (2, 40, 64)]));
        for (_, idx) in &a {
            let mut d = idx.clone();
            d.dedup();
            assert_eq!(&d, idx);
        }
        assert_eq!(a[0].1.len(), 5);
        assert!(a[1].1.iter().all(|&i| i < 64));
        // All of a parameter, and more than all, is all of it.
        assert_eq!(draw(7, 0, &[(0, 9, 9)])[0].1, (0..9).collect::<Vec<_>>());
        // Roughly uniform: each of 10 elements is picked about 3000 times in 10000 draws of 3.
        let mut hits = [0usize; 10];
        for r in 0..10_000 {
            for i in &draw(42, r, &[(0, 3, 10)])[0].1 {
                hits[*i] += 1;
            }
        }
        assert!(hits.iter().all(|&h| (2700..3300).contains(&h)), "{hits:?}");
    }

    #[test]
    fn rejection_covers_every_residue() {
        let mut g = SplitMix64::for_draw(5, 0);
        for n in [1u64, 2, 3, 7, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(g.below(n) < n);
            }
        }
    }
}
