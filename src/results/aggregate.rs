//! Statistics over replications: mean, standard deviation, the 95% confidence interval of a mean
//! (Student t), and percentiles (linear interpolation between order statistics, "type 7").

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Two-sided 95%: the upper quantile used for intervals of a mean.
const CI_LEVEL_UPPER: f64 = 0.975;
/// The 2.5 and 97.5 percentiles bound a "band" (MODEL.md).
pub const BAND: (f64, f64) = (0.025, 0.975);

/// Student t quantile t_{0.975, n−1} for a 95% interval of a mean of `n` values.
pub fn t_quantile(n: usize) -> f64 {
    let dof = (n.max(2) - 1) as f64;
    StudentsT::new(0.0, 1.0, dof)
        .expect("dof ≥ 1")
        .inverse_cdf(CI_LEVEL_UPPER)
}

/// Summary statistics of one metric over the replications where it exists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub p05: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n − 1 in the denominator).
pub fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Percentile `q` ∈ [0, 1] of sorted values, interpolating linearly (Hyndman–Fan type 7).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The 95% CI of a mean from n values with standard deviation `sd`.
pub fn ci_of_mean(m: f64, sd: f64, n: usize) -> Option<(f64, f64)> {
    (n >= 2).then(|| {
        let half = t_quantile(n) * sd / (n as f64).sqrt();
        (m - half, m + half)
    })
}

/// Stats of the present values (`None` entries are replications where the metric does not exist).
pub fn stats(values: &[Option<f64>]) -> Stats {
    let mut xs: Vec<f64> = values.iter().flatten().copied().collect();
    if xs.is_empty() {
        return Stats::default();
    }
    let (m, sd) = (mean(&xs), std_dev(&xs));
    xs.sort_by(f64::total_cmp);
    Stats {
        n: xs.len(),
        mean: Some(m),
        std: Some(sd),
        ci: ci_of_mean(m, sd, xs.len()),
        p05: Some(percentile_sorted(&xs, 0.05)),
        p50: Some(percentile_sorted(&xs, 0.5)),
        p95: Some(percentile_sorted(&xs, 0.95)),
    }
}

/// Ratio of means ȳ/x̄ with a delta-method 95% interval (for `iroi`).
pub fn ratio_of_means(y: &[f64], x: &[f64]) -> (Option<f64>, Option<(f64, f64)>) {
    let n = y.len();
    let (my, mx) = (mean(y), mean(x));
    if n == 0 || mx == 0.0 {
        return (None, None);
    }
    let r = my / mx;
    if n < 2 {
        return (Some(r), None);
    }
    // Var(ȳ − r x̄) / x̄² over n: the linearised ratio's variance.
    let resid: Vec<f64> = y.iter().zip(x).map(|(a, b)| a - r * b).collect();
    let se = std_dev(&resid) / (n as f64).sqrt() / mx.abs();
    let half = t_quantile(n) * se;
    (Some(r), Some((r - half, r + half)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy_default() {
        // numpy.percentile([1, 2, 3, 4], [5, 50, 95]) = [1.15, 2.5, 3.85].
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile_sorted(&xs, 0.05) - 1.15).abs() < 1e-12);
        assert!((percentile_sorted(&xs, 0.5) - 2.5).abs() < 1e-12);
        assert!((percentile_sorted(&xs, 0.95) - 3.85).abs() < 1e-12);
    }

    #[test]
    fn t_quantile_matches_tables() {
        // t_{0.975} with 9 and 99 degrees of freedom: 2.2622 and 1.9842 (standard tables).
        assert!((t_quantile(10) - 2.2622).abs() < 1e-4);
        assert!((t_quantile(100) - 1.9842).abs() < 1e-4);
    }

    #[test]
    fn stats_skip_missing_values() {
        let s = stats(&[Some(1.0), None, Some(3.0)]);
        assert_eq!(s.n, 2);
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(stats(&[None]).mean, None);
    }
}
