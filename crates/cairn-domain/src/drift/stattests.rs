//! Each method's statistic, computed from the prepared samples the way Evidently 0.7 computes
//! it: on sorted numbers for numerical columns, on the aligned per-value counts for
//! categorical ones.

use super::binning::{binned_numbers, binned_table};
use super::divergence::{
    hellinger_categorical, hellinger_numerical, jensen_shannon, kl_divergence, psi,
};
use super::ks::{ks_2samp_pvalue, ks_statistic};
use super::prepare::{CountTable, Number};
use super::special::{chi2_sf, ndtr};
use super::{ColumnKind, Method};

/// The statistic of `method` on two sorted numeric samples of a column of kind `kind`
/// (categorical numbers are tested per distinct value). `None` when it cannot be represented
/// (a value range beyond f64).
pub(super) fn on_numbers<T: Number>(
    method: Method,
    kind: ColumnKind,
    reference: &[T],
    current: &[T],
) -> Option<f64> {
    if kind == ColumnKind::Categorical {
        return Some(on_table(method, &CountTable::from_numbers(reference, current)));
    }
    let statistic = match method {
        Method::Ks => {
            let d = ks_statistic(reference, current);
            ks_2samp_pvalue(reference.len(), current.len(), d)
        }
        Method::Wasserstein => wasserstein_normed(reference, current),
        Method::ChiSquare | Method::Z | Method::ChiSquareContingency => {
            on_table(method, &CountTable::from_numbers(reference, current))
        }
        Method::JensenShannon => {
            let binned = binned_numbers(reference, current)?;
            jensen_shannon(&binned.reference, &binned.current)
        }
        Method::Psi => {
            let binned = binned_numbers(reference, current)?;
            psi(&binned.reference, &binned.current)
        }
        Method::KlDiv => {
            let binned = binned_numbers(reference, current)?;
            kl_divergence(&binned.reference, &binned.current)
        }
        Method::Hellinger => hellinger_numerical(reference, current)?,
    };
    Some(statistic)
}

/// The statistic of `method` on per-value counts (categorical columns).
pub(super) fn on_table(method: Method, table: &CountTable) -> f64 {
    match method {
        Method::ChiSquare => chi_square_goodness_of_fit(table),
        Method::Z => z_test(table),
        Method::ChiSquareContingency => chi_square_contingency(table),
        Method::JensenShannon => {
            let binned = binned_table(table);
            jensen_shannon(&binned.reference, &binned.current)
        }
        Method::Psi => {
            let binned = binned_table(table);
            psi(&binned.reference, &binned.current)
        }
        Method::KlDiv => {
            let binned = binned_table(table);
            kl_divergence(&binned.reference, &binned.current)
        }
        Method::Hellinger => hellinger_categorical(table),
        // Not applicable to categorical columns; callers check first.
        Method::Ks | Method::Wasserstein => f64::NAN,
    }
}

/// The normed Wasserstein distance W₁(r, c)/max(σ_r, 0.001), σ_r the reference's population
/// standard deviation (ddof 0).
fn wasserstein_normed<T: Number>(reference: &[T], current: &[T]) -> f64 {
    wasserstein_distance(reference, current) / population_std(reference).max(0.001)
}

/// W₁ = Σ_k |F_r(z_k) − F_c(z_k)|·(z_{k+1} − z_k) over the sorted pooled values z
/// (`scipy.stats.wasserstein_distance`). The walk goes value by value through the merged
/// samples; inside a run of equal values z_{k+1} − z_k = 0, so only each run's last ECDF
/// difference (the right-searchsorted one SciPy uses) contributes.
pub(super) fn wasserstein_distance<T: Number>(reference: &[T], current: &[T]) -> f64 {
    let n = reference.len() as f64;
    let m = current.len() as f64;
    let (mut i, mut j) = (0usize, 0usize);
    let mut distance = 0.0;
    let mut previous: Option<f64> = None;
    let mut diff = 0.0f64;
    loop {
        let take_reference = match (reference.get(i), current.get(j)) {
            (Some(r), Some(c)) => r <= c,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let value = if take_reference { reference[i] } else { current[j] }.to_f64();
        if let Some(previous_value) = previous {
            distance += diff.abs() * (value - previous_value);
        }
        i += usize::from(take_reference);
        j += usize::from(!take_reference);
        diff = i as f64 / n - j as f64 / m;
        previous = Some(value);
    }
    distance
}

/// √(Σ(x − x̄)²/n), the sums compensated (Neumaier) so that the order of the values does not
/// matter beyond the last bit.
fn population_std<T: Number>(values: &[T]) -> f64 {
    let n = values.len() as f64;
    let mean = compensated_sum(values.iter().map(|v| v.to_f64())) / n;
    let squares = compensated_sum(values.iter().map(|v| {
        let deviation = v.to_f64() - mean;
        deviation * deviation
    }));
    (squares / n).sqrt()
}

fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0f64;
    let mut compensation = 0.0f64;
    for value in values {
        let total = sum + value;
        if sum.abs() >= value.abs() {
            compensation += (sum - total) + value;
        } else {
            compensation += (value - total) + sum;
        }
        sum = total;
    }
    sum + compensation
}

/// Evidently's χ² test: expected_k = reference_k·(m/n), observed_k = current_k,
/// χ² = Σ (observed − expected)²/expected (∞ when a value is new in the current sample),
/// p = Q((K − 1)/2, χ²/2). One distinct value gives p = 1 (SciPy would give NaN or 0).
fn chi_square_goodness_of_fit(table: &CountTable) -> f64 {
    if table.len() < 2 {
        return 1.0;
    }
    let scale = table.current_total as f64 / table.reference_total as f64;
    let statistic: f64 = table
        .reference
        .iter()
        .zip(&table.current)
        .map(|(&reference, &current)| {
            let expected = reference as f64 * scale;
            let difference = current as f64 - expected;
            difference * difference / expected
        })
        .sum();
    chi2_sf((table.len() - 1) as f64, statistic)
}

/// Evidently's Z-test: each value is coded 0 if it equals the smallest value of the union,
/// else 1; with p₁, p₂ the means of the codes and P = (p₁n + p₂m)/(n + m),
/// z = (p₁ − p₂)/√(P(1 − P)(1/n + 1/m)) and p = 2·(1 − Φ(|z|)). Both samples holding the same
/// single value give p = 1.
fn z_test(table: &CountTable) -> f64 {
    if table.len() < 2 {
        return 1.0;
    }
    let n = table.reference_total as f64;
    let m = table.current_total as f64;
    let p1 = (table.reference_total - table.reference[0]) as f64 / n;
    let p2 = (table.current_total - table.current[0]) as f64 / m;
    let pooled = (p1 * n + p2 * m) / (n + m);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n + 1.0 / m)).sqrt();
    2.0 * (1.0 - ndtr(z.abs()))
}

/// `scipy.stats.chi2_contingency` on the 2 × K table (reference and current counts):
/// expected = row total·column total/total, Yates' correction (observed moved towards expected
/// by at most ½) when K = 2, χ² = Σ (observed − expected)²/expected, p = Q((K − 1)/2, χ²/2).
fn chi_square_contingency(table: &CountTable) -> f64 {
    let dof = table.len().saturating_sub(1);
    if dof == 0 {
        return 1.0;
    }
    let rows = [table.reference_total as f64, table.current_total as f64];
    let total = rows[0] + rows[1];
    let mut statistic = 0.0;
    for (&reference, &current) in table.reference.iter().zip(&table.current) {
        let column = (reference + current) as f64;
        for (row, observed) in rows.iter().zip([reference as f64, current as f64]) {
            let expected = row * column / total;
            let mut observed = observed;
            if dof == 1 {
                let difference = expected - observed;
                observed += difference.abs().min(0.5) * difference.signum();
            }
            let deviation = observed - expected;
            statistic += deviation * deviation / expected;
        }
    }
    chi2_sf(dof as f64, statistic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(reference: &[u64], current: &[u64]) -> CountTable {
        CountTable {
            labels: (0..reference.len()).map(|i| i.to_string()).collect(),
            reference: reference.to_vec(),
            current: current.to_vec(),
            reference_total: reference.iter().sum(),
            current_total: current.iter().sum(),
        }
    }

    /// `scipy.stats.chi2_contingency(np.array([r, c])).pvalue` for the tables below,
    /// SciPy 1.17.1.
    #[test]
    fn contingency_matches_scipy() {
        let cases = [
            (vec![30, 70], vec![45, 55], 0.04087153408900628),
            (vec![10, 20, 30], vec![30, 20, 10], 4.539992976248486e-05),
            (vec![5, 0], vec![5, 3], 0.3763141129660127),
        ];
        for (reference, current, expected) in cases {
            let p = chi_square_contingency(&table(&reference, &current));
            assert!(((p - expected) / expected).abs() < 1e-12, "{reference:?}: {p} vs {expected}");
        }
    }

    #[test]
    fn a_new_value_gives_chi_square_p_zero() {
        assert_eq!(chi_square_goodness_of_fit(&table(&[10, 10, 0], &[10, 10, 1])), 0.0);
    }
}
