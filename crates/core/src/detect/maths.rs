//! The statistics behind the volume detector, free of state and I/O.

/// ln(n!) — exact sum for small n, Stirling's series beyond (error < 1e-10).
fn ln_factorial(n: u64) -> f64 {
    if n < 32 {
        return (2..=n).map(|k| (k as f64).ln()).sum();
    }
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x * x * x)
}

/// Smallest `k` with P(X ≥ k) ≤ `p` for X ~ Poisson(`lambda`).
///
/// Sums the tail downwards from far beyond the mean, relative to the pmf
/// there, so nothing underflows even for large `lambda` (e^-λ does for
/// λ > 745).
pub(crate) fn poisson_upper(lambda: f64, p: f64) -> u64 {
    if lambda <= 0.0 {
        return 1;
    }
    let top = (lambda + 14.0 * lambda.sqrt() + 40.0).ceil() as u64;
    let ln_top = top as f64 * lambda.ln() - lambda - ln_factorial(top);
    let ln_p = p.ln();
    // rel = pmf(k) / pmf(top); tail = pmf(top) * sum.
    let (mut rel, mut sum) = (1.0_f64, 1.0_f64);
    let mut k = top;
    while k > 0 {
        // pmf(k-1) = pmf(k) * k / λ
        rel *= k as f64 / lambda;
        sum += rel;
        if ln_top + sum.ln() > ln_p {
            return k;
        }
        k -= 1;
    }
    0
}

/// The second largest value (0 with fewer than two): a level reached at
/// least twice, so one past incident does not become the norm.
pub(crate) fn second_largest(values: impl IntoIterator<Item = u32>) -> u32 {
    let (mut a, mut b) = (0, 0);
    for v in values {
        if v > a {
            b = a;
            a = v;
        } else if v > b {
            b = v;
        }
    }
    b
}

/// The median of `values` (0 when empty), as f64.
pub(super) fn median(values: &mut [u32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 {
        f64::from(values[n / 2])
    } else {
        (f64::from(values[n / 2 - 1]) + f64::from(values[n / 2])) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(X ≥ k) computed the naive way, for small λ.
    fn tail(lambda: f64, k: u64) -> f64 {
        let mut pmf = (-lambda).exp();
        let mut cdf = 0.0;
        for j in 0..k {
            cdf += pmf;
            pmf *= lambda / (j + 1) as f64;
        }
        1.0 - cdf
    }

    #[test]
    fn poisson_upper_is_the_smallest_count_that_rare() {
        for &lambda in &[0.5, 1.0, 3.0, 10.0, 40.0] {
            for &p in &[1e-3, 1e-6] {
                let k = poisson_upper(lambda, p);
                assert!(tail(lambda, k) <= p * 1.0001, "λ={lambda} p={p} k={k}");
                assert!(
                    tail(lambda, k - 1) > p,
                    "λ={lambda} p={p} k={k} not smallest"
                );
            }
        }
    }

    #[test]
    fn poisson_upper_handles_large_means() {
        // Normal approximation: λ + 4.75 σ for p = 1e-6.
        let k = poisson_upper(10_000.0, 1e-6) as f64;
        assert!((10_430.0..10_520.0).contains(&k), "{k}");
        assert_eq!(poisson_upper(0.0, 1e-6), 1);
    }

    #[test]
    fn second_largest_needs_two() {
        assert_eq!(second_largest([]), 0);
        assert_eq!(second_largest([500]), 0);
        assert_eq!(second_largest([0, 500, 3, 480]), 480);
        assert_eq!(second_largest([7, 7]), 7);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [5, 1, 3]), 3.0);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2.5);
    }
}
