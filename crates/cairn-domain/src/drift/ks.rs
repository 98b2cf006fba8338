//! The two-sample Kolmogorov–Smirnov test as `scipy.stats.ks_2samp(x, y)` computes it
//! (two-sided, `method='auto'`): the statistic from the merged ECDFs, then the exact p-value
//! when both samples have at most 10 000 values, else the one-sample Kolmogorov distribution
//! with n = round(n₁n₂/(n₁+n₂)).

use super::kolmogorov::kstwo_sf;
use super::prepare::{Number, merged_steps};

/// Above this sample size `method='auto'` leaves the exact computation.
const MAX_EXACT_N: usize = 10_000;

/// D = max_z |F_r(z) − F_c(z)| over the pooled values z, with F(z) = #{x ≤ z}/n, as SciPy
/// evaluates it: the larger of max(F_r − F_c) and max(F_c − F_r) clipped at 0.
pub(super) fn ks_statistic<T: Number>(reference: &[T], current: &[T]) -> f64 {
    let n = reference.len() as f64;
    let m = current.len() as f64;
    let mut max_diff = f64::NEG_INFINITY;
    let mut min_diff = f64::INFINITY;
    for step in merged_steps(reference, current) {
        let diff = step.reference_at_or_below as f64 / n - step.current_at_or_below as f64 / m;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    let min_s = (-min_diff).clamp(0.0, 1.0);
    if min_s > max_diff { min_s } else { max_diff }
}

/// The two-sided p-value of `ks_2samp` for statistic `d` and sample sizes `n1`, `n2` (both > 0).
pub(super) fn ks_2samp_pvalue(n1: usize, n2: usize, d: f64) -> f64 {
    if n1.max(n2) <= MAX_EXACT_N
        && let Some(p) = exact_pvalue(n1 as u64, n2 as u64, d)
    {
        return p.clamp(0.0, 1.0);
    }
    let (large, small) = if n1 >= n2 { (n1 as f64, n2 as f64) } else { (n2 as f64, n1 as f64) };
    let en = large * small / (large + small);
    kstwo_sf(d, en.round_ties_even() as u64).clamp(0.0, 1.0)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `_attempt_exact_2kssamp`: D is moved onto the lattice h/lcm(n1, n2) (h rounded half to
/// even), then P(D ≥ h/lcm) comes from the lattice-path counts. `None` when the computation
/// leaves [0, 1], where SciPy falls back to the asymptotic distribution.
fn exact_pvalue(n1: u64, n2: u64, d: f64) -> Option<f64> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    if h == 0 {
        return Some(1.0);
    }
    let p = if n1 == n2 { prob_outside_square(n1, h) } else { outer_prob_inside(n1, n2, g, h) };
    (0.0..=1.0).contains(&p).then_some(p)
}

/// P(D_{n,n} ≥ h/n) = 2·Σ_{k≥1} (−1)^(k+1)·C(2n, n−kh)/C(2n, n), in SciPy's Horner form
/// 2·A₀(1 − A₁(1 − A₂(…))) with A_k = Π_{j<h} (n − kh − j)/(n + kh + j + 1), each factor
/// multiplied then divided in that order.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let n_float = n as f64;
    let h_float = h as f64;
    let mut p = 0.0;
    let mut k = (n_float / h_float).floor() as i64;
    while k >= 0 {
        let kh = k as f64 * h_float;
        let mut p1 = 1.0;
        for j in 0..h {
            let j = j as f64;
            p1 = (n_float - kh - j) * p1 / (n_float + kh + j + 1.0);
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// 1 − P(|x/m − y/n| < h/lcm for the whole path) by Hodges' inside method, with Viehmann's
/// (2021) recursion that carries 1 − p directly: column i of the lattice holds
/// A(i, j) = (i·A(i−1, j) + j·A(i, j−1))/(i + j), A = 1 outside the band, over a sliding window
/// of j. Port of SciPy's `_compute_outer_prob_inside_method`.
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n as i64, m as i64) } else { (m as i64, n as i64) };
    let g = g as i64;
    let h = h as i64;
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for cell in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *cell = 0.0;
    }
    for i in 1..=m {
        let last_minj = minj;
        let last_len = curlen;
        minj = (floor_div(ng * i - h, mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let i_float = i as f64;
        let mut value = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let j_float = j as f64;
            value = (a[(jj + minj - last_minj) as usize] * i_float + value * j_float)
                / (i_float + j_float);
            a[jj as usize] = value;
        }
        curlen = maxj - minj;
        if last_len > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (last_len - curlen) as usize).min(len_a);
            for cell in &mut a[start.min(len_a)..end] {
                *cell = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

fn floor_div(numerator: i64, denominator: i64) -> i64 {
    numerator.div_euclid(denominator)
}

fn ceil_div(numerator: i64, denominator: i64) -> i64 {
    -(-numerator).div_euclid(denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, rtol: f64, what: &str) {
        let relative = ((actual - expected) / expected).abs();
        assert!(relative <= rtol, "{what}: {actual:e} vs {expected:e} (relative {relative:e})");
    }

    /// The reference 0, 1, …, n−1 and a current sample of m values spread over the same range
    /// and shifted by `shift`.
    fn shifted(n: usize, m: usize, shift: f64) -> (Vec<f64>, Vec<f64>) {
        let reference = (0..n).map(|i| i as f64).collect();
        let current = (0..m).map(|i| i as f64 * (n as f64 / m as f64) + shift).collect();
        (reference, current)
    }

    /// `ks_2samp(np.arange(n), np.arange(m) * (n / m) + shift)` for the (n, m, shift) below,
    /// SciPy 1.17.1: exact n = m, exact n ≠ m (coprime and not), and the asymptotic path.
    #[test]
    fn ks_2samp_matches_scipy() {
        let expected = [
            (20, 20, 3.5, 0.2, 0.8319696107963263),
            (1000, 1000, 40.5, 0.041, 0.37012017606173),
            (1000, 1000, 120.5, 0.121, 8.513708327314542e-07),
            (950, 1000, 30.25, 0.032842105263157895, 0.653212940911633),
            (997, 1000, 80.25, 0.08149348044132397, 0.0024248976948343056),
            (300, 20_000, 20.5, 0.0716500000000001, 0.09116167641797723),
            (20_000, 30_000, 200.5, 0.010066666666666724, 0.17441028462924713),
        ];
        for (n, m, shift, statistic, p_value) in expected {
            let (reference, current) = shifted(n, m, shift);
            let d = ks_statistic(&reference, &current);
            assert_close(d, statistic, 1e-12, &format!("D({n}, {m}, {shift})"));
            let p = ks_2samp_pvalue(n, m, d);
            assert_close(p, p_value, 1e-9, &format!("p({n}, {m}, {shift})"));
        }
    }

    #[test]
    fn identical_samples_have_p_one() {
        let sample: Vec<f64> = (0..50).map(f64::from).collect();
        let d = ks_statistic(&sample, &sample);
        assert_eq!(d, 0.0);
        assert_eq!(ks_2samp_pvalue(50, 50, d), 1.0);
    }
}
