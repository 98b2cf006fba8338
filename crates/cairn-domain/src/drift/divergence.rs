//! Distances between two binned distributions, as Evidently computes them: Jensen–Shannon
//! (`scipy.spatial.distance.jensenshannon`, natural log), PSI, Kullback–Leibler
//! (`scipy.stats.entropy`) and Hellinger (Evidently's own loop).

use super::binning::{fill_zeroes, histogram_counts, sturges_edges};
use super::prepare::{CountTable, Number, merged_steps};

/// The elementwise relative entropy x·ln(x/y) of `scipy.special.rel_entr`: 0 for x = 0,
/// +∞ for y = 0 < x, and x·log1p((x − y)/y) when x/y is within (½, 2) for accuracy.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 || y <= 0.0 {
        if x == 0.0 && y >= 0.0 {
            return 0.0;
        }
        return f64::INFINITY;
    }
    let ratio = x / y;
    if 0.5 < ratio && ratio < 2.0 {
        return x * ((x - y) / y).ln_1p();
    }
    if f64::MIN_POSITIVE < ratio && ratio < f64::INFINITY {
        return x * ratio.ln();
    }
    x * (x.ln() - y.ln())
}

/// The vector divided by its sum.
fn normalised(shares: &[f64]) -> Vec<f64> {
    let total: f64 = shares.iter().sum();
    shares.iter().map(|share| share / total).collect()
}

/// The Jensen–Shannon distance √(½·(Σ p·ln(p/m) + Σ q·ln(q/m))) with p, q normalised to sum
/// to 1 and m = (p + q)/2; in [0, √ln 2].
pub(super) fn jensen_shannon(reference: &[f64], current: &[f64]) -> f64 {
    let p = normalised(reference);
    let q = normalised(current);
    let mut left = 0.0;
    let mut right = 0.0;
    for (&pi, &qi) in p.iter().zip(&q) {
        let mi = (pi + qi) / 2.0;
        left += rel_entr(pi, mi);
        right += rel_entr(qi, mi);
    }
    ((left + right) / 2.0).sqrt()
}

/// The population stability index Σ (r − c)·ln(r/c) over the shares, after Evidently's
/// zero fill.
pub(super) fn psi(reference: &[f64], current: &[f64]) -> f64 {
    let mut reference = reference.to_vec();
    let mut current = current.to_vec();
    fill_zeroes(&mut reference);
    fill_zeroes(&mut current);
    reference.iter().zip(&current).map(|(&r, &c)| (r - c) * (r / c).ln()).sum()
}

/// The Kullback–Leibler divergence KL(r ‖ c) = Σ r·ln(r/c) of the normalised shares, after
/// Evidently's zero fill (`scipy.stats.entropy(r, c)`).
pub(super) fn kl_divergence(reference: &[f64], current: &[f64]) -> f64 {
    let mut reference = reference.to_vec();
    let mut current = current.to_vec();
    fill_zeroes(&mut reference);
    fill_zeroes(&mut current);
    let p = normalised(&reference);
    let q = normalised(&current);
    p.iter().zip(&q).map(|(&pi, &qi)| rel_entr(pi, qi)).sum()
}

/// The Hellinger distance √(1 − Σ √(p·q)) of the per-value shares (Evidently's categorical
/// branch), the sum clipped to [0, 1].
pub(super) fn hellinger_categorical(table: &CountTable) -> f64 {
    let (reference, current) = table.shares();
    let overlap: f64 = reference.iter().zip(&current).map(|(&p, &q)| (p * q).sqrt()).sum();
    (1.0 - overlap.clamp(0.0, 1.0)).sqrt()
}

/// The Hellinger distance of a numerical column, Evidently's numerical branch: Sturges edges
/// over the *distinct* values of both samples, density histograms h = count/(width·n), then
/// √(1 − Σ √(h_r·h_c)·w̄) with w̄ the mean bin width, the sum clipped to [0, 1]. `None` when the
/// range overflows f64.
pub(super) fn hellinger_numerical<T: Number>(reference: &[T], current: &[T]) -> Option<f64> {
    let mut distinct = 0usize;
    let mut lo = None;
    let mut hi = None;
    for step in merged_steps(reference, current) {
        distinct += 1;
        lo.get_or_insert(step.value);
        hi = Some(step.value);
    }
    let (lo, hi) = (lo?, hi?);
    let edges = sturges_edges(lo.to_f64(), hi.to_f64(), distinct, T::INTEGER)?;
    let reference_density = densities(reference, &edges);
    let current_density = densities(current, &edges);
    let bins = edges.len() - 1;
    let bin_width = (edges[bins] - edges[0]) / bins as f64;
    let mut overlap = 0.0;
    for (&p, &q) in reference_density.iter().zip(&current_density) {
        // √p·√q rather than √(p·q): densities of very wide bins would underflow the product.
        overlap += p.sqrt() * q.sqrt() * bin_width;
    }
    Some((1.0 - overlap.clamp(0.0, 1.0)).sqrt())
}

/// `np.histogram(x, edges, density=True)[0]`: count/width/Σcount per bin.
fn densities<T: Number>(sorted: &[T], edges: &[f64]) -> Vec<f64> {
    let counts = histogram_counts(sorted, edges);
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .zip(edges.windows(2))
        .map(|(&count, pair)| count as f64 / (pair[1] - pair[0]) / total as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scipy.spatial.distance.jensenshannon`, `scipy.stats.entropy` and Evidently's PSI
    /// formula on p = [0.1, 0.4, 0.5, 0.0], q = [0.2, 0.2, 0.3, 0.3], SciPy 1.17.1:
    /// `jensenshannon(p, q)`, `entropy(fill(p), fill(q))`, `sum((fp - fq) * log(fp / fq))`.
    #[test]
    fn divergences_match_scipy() {
        let p = [0.1, 0.4, 0.5, 0.0];
        let q = [0.2, 0.2, 0.3, 0.3];
        let close = |actual: f64, expected: f64| {
            assert!(((actual - expected) / expected).abs() < 1e-13, "{actual} vs {expected}")
        };
        close(jensen_shannon(&p, &q), 0.3769489482198971);
        close(kl_divergence(&p, &q), 0.46241008328605204);
        close(psi(&p, &q), 2.7112189124594908);
    }

    #[test]
    fn identical_distributions_are_at_distance_zero() {
        let p = [0.25, 0.25, 0.5];
        assert_eq!(jensen_shannon(&p, &p), 0.0);
        assert_eq!(psi(&p, &p), 0.0);
        assert_eq!(kl_divergence(&p, &p), 0.0);
    }
}
