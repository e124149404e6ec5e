//! Fast, allocation-free samplers shared by the generators and the workload.

use rand::Rng;

/// Zipf distribution over `1..=n` (rank 1 is the most frequent), O(1) memory and time.
///
/// Rejection-inversion after Hörmann & Derflinger (1996), as in Apache Commons
/// `RejectionInversionZipfSampler`; works for any exponent > 0, including 1.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    squeeze: f64,
}

impl Zipf {
    /// A sampler over `1..=n` (n is raised to 1) with probability of rank k proportional to k^-exponent.
    pub fn new(n: u64, exponent: f64) -> Self {
        assert!(
            exponent > 0.0,
            "Zipf exponent must be positive, got {exponent}"
        );
        let n = n.max(1) as f64;
        let mut z = Self {
            n,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            squeeze: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n + 0.5);
        z.squeeze = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// Number of items the sampler draws from.
    pub fn len(&self) -> u64 {
        self.n as u64
    }

    /// Always false: a sampler covers at least one item.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Draws one rank in `1..=n`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        loop {
            let u =
                self.h_integral_n + rng.random::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near zero.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near zero.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// Categorical distribution over a small weighted table (indices into that table).
#[derive(Debug, Clone)]
pub struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    /// Builds the sampler from the weights of `table` (weights need not sum to 1).
    pub fn new<T>(table: &[(T, f64)]) -> Self {
        Self::from_weights(table.iter().map(|(_, w)| *w))
    }

    /// Builds the sampler from bare weights.
    pub fn from_weights(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let mut cumulative: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                total += w.max(0.0);
                total
            })
            .collect();
        assert!(total > 0.0, "weighted table needs a positive weight");
        for c in &mut cumulative {
            *c /= total;
        }
        Self { cumulative }
    }

    /// Index chosen by a uniform `u` in [0, 1): lets a hash pick a stable value.
    pub fn pick(&self, u: f64) -> usize {
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }

    /// Draws one index.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        self.pick(rng.random::<f64>())
    }
}

/// One draw from exp(N(mu, sigma)) via Box–Muller.
pub fn log_normal<R: Rng + ?Sized>(rng: &mut R, mu: f64, sigma: f64) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mu + sigma * z).exp()
}

/// SplitMix64 finalizer: a fast, well-mixed 64-bit hash of `x`.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Maps a hash to a uniform f64 in [0, 1).
pub fn unit_f64(hash: u64) -> f64 {
    (hash >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn zipf_matches_expected_frequencies() {
        for exponent in [0.8, 1.0, 1.1] {
            let n = 50u64;
            let zipf = Zipf::new(n, exponent);
            let mut rng = StdRng::seed_from_u64(7);
            let mut counts = vec![0u64; n as usize + 1];
            let draws = 200_000;
            for _ in 0..draws {
                let k = zipf.sample(&mut rng);
                assert!((1..=n).contains(&k));
                counts[k as usize] += 1;
            }
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-exponent)).sum();
            for k in [1u64, 2, 5, 20] {
                let expected = f64::from(draws) * (k as f64).powf(-exponent) / norm;
                let got = counts[k as usize] as f64;
                assert!(
                    (got - expected).abs() < 0.05 * expected + 30.0,
                    "s={exponent} k={k}: {got} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn zipf_single_item() {
        let zipf = Zipf::new(0, 1.1);
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..100).all(|_| zipf.sample(&mut rng) == 1));
    }

    #[test]
    fn weighted_picks_follow_weights() {
        let w = Weighted::new(&[("a", 1.0), ("b", 3.0), ("c", 0.0), ("d", 1.0)]);
        assert_eq!(w.pick(0.0), 0);
        assert_eq!(w.pick(0.19), 0);
        assert_eq!(w.pick(0.21), 1);
        assert_eq!(w.pick(0.79), 1);
        assert_eq!(w.pick(0.81), 3);
        assert_eq!(w.pick(0.999_999), 3);
    }

    #[test]
    fn unit_f64_in_range() {
        for i in 0..1000u64 {
            let u = unit_f64(mix64(i));
            assert!((0.0..1.0).contains(&u));
        }
        assert!(unit_f64(u64::MAX) < 1.0);
    }
}
