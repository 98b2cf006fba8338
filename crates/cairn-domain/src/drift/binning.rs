//! Histogram binning as numpy does it for Evidently: `np.histogram_bin_edges(x, 'sturges')`
//! (k = ⌈range/width⌉ equal bins with width = range/(log₂N + 1), edges by `np.linspace`) and
//! `np.histogram` counts (bins [e_j, e_{j+1}), the last one closed), plus Evidently's
//! `get_binned_data`, which picks between those bins and one bin per distinct value.

use super::prepare::{CountTable, Number, distinct_sorted};

/// Numerical columns whose reference has more than this many distinct values are binned with
/// Sturges' rule; others get one bin per distinct value (Evidently's `get_binned_data`).
pub(super) const MAX_VALUES_FOR_PER_VALUE_BINS: usize = 20;

/// The edges of `np.histogram_bin_edges(x, bins='sturges')` for data spanning [lo, hi] with
/// `count` values: lo = hi widens to [lo − ½, hi + ½]; width = (hi − lo)/(log₂ count + 1), at
/// least 1 for integer data; k = ⌈(last − first)/width⌉ (1 when the width is 0); edge
/// j = j·((last − first)/k) + first, the last edge exactly `last`. `None` when the range
/// overflows f64.
pub(super) fn sturges_edges(lo: f64, hi: f64, count: usize, integer: bool) -> Option<Vec<f64>> {
    let ptp = hi - lo;
    if !ptp.is_finite() {
        return None;
    }
    let (first, last) = if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) };
    let mut width = ptp / ((count as f64).log2() + 1.0);
    let bins = if width != 0.0 {
        if integer && width < 1.0 {
            width = 1.0;
        }
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    let bins = bins.max(1);
    Some(linspace(first, last, bins + 1))
}

/// `np.linspace(start, stop, num)`: y_j = j·step + start with step = (stop − start)/(num − 1),
/// the last point set to `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    debug_assert!(num >= 2);
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut points: Vec<f64> = if step == 0.0 {
        (0..num).map(|j| j as f64 / div * delta + start).collect()
    } else {
        (0..num).map(|j| j as f64 * step + start).collect()
    };
    points[num - 1] = stop;
    points
}

/// `np.histogram(sorted, edges)[0]`: how many values fall in [e_j, e_{j+1}) for each bin, the
/// last bin closed, values outside the edges ignored. `sorted` must be ascending.
pub(super) fn histogram_counts<T: Number>(sorted: &[T], edges: &[f64]) -> Vec<u64> {
    let last = edges.len() - 1;
    let positions: Vec<usize> = edges
        .iter()
        .enumerate()
        .map(|(index, &edge)| {
            if index == last {
                sorted.partition_point(|value| value.to_f64() <= edge)
            } else {
                sorted.partition_point(|value| value.to_f64() < edge)
            }
        })
        .collect();
    positions.windows(2).map(|pair| (pair[1].saturating_sub(pair[0])) as u64).collect()
}

/// The smallest and largest value of two non-empty sorted samples.
pub(super) fn pooled_range<T: Number>(reference: &[T], current: &[T]) -> (T, T) {
    let lo = if reference[0] <= current[0] { reference[0] } else { current[0] };
    let r_hi = reference[reference.len() - 1];
    let c_hi = current[current.len() - 1];
    let hi = if r_hi >= c_hi { r_hi } else { c_hi };
    (lo, hi)
}

/// Shares of each sample per bin, as Evidently's `get_binned_data` makes them for the
/// divergence tests, and whether they are Sturges bins (`Some(edges)`) or one bin per value.
pub(super) struct Binned {
    pub(super) reference: Vec<f64>,
    pub(super) current: Vec<f64>,
}

/// `get_binned_data` for a numerical column: Sturges bins over the pooled sample when the
/// reference has more than 20 distinct values, else one bin per distinct value of the union.
pub(super) fn binned_numbers<T: Number>(reference: &[T], current: &[T]) -> Option<Binned> {
    let reference_distinct = distinct_sorted(reference, MAX_VALUES_FOR_PER_VALUE_BINS + 1);
    if reference_distinct > MAX_VALUES_FOR_PER_VALUE_BINS {
        let (lo, hi) = pooled_range(reference, current);
        let edges =
            sturges_edges(lo.to_f64(), hi.to_f64(), reference.len() + current.len(), T::INTEGER)?;
        let n = reference.len() as f64;
        let m = current.len() as f64;
        let reference_shares =
            histogram_counts(reference, &edges).into_iter().map(|c| c as f64 / n).collect();
        let current_shares =
            histogram_counts(current, &edges).into_iter().map(|c| c as f64 / m).collect();
        Some(Binned { reference: reference_shares, current: current_shares })
    } else {
        Some(binned_table(&CountTable::from_numbers(reference, current)))
    }
}

/// `get_binned_data` for one bin per distinct value: count/n and count/m.
pub(super) fn binned_table(table: &CountTable) -> Binned {
    let (reference, current) = table.shares();
    Binned { reference, current }
}

/// Evidently's "fill zeroes" for PSI and KL: in each vector separately, empty bins get
/// min(non-zero share)/10⁶ if that minimum is at most 10⁻⁴, else 10⁻⁴.
pub(super) fn fill_zeroes(shares: &mut [f64]) {
    let smallest = shares.iter().copied().filter(|&s| s != 0.0).fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let fill = if smallest <= 0.0001 { smallest / 1_000_000.0 } else { 0.0001 };
    for share in shares.iter_mut().filter(|s| **s == 0.0) {
        *share = fill;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.histogram_bin_edges(x, 'sturges')` for `x = np.arange(30)` (int and float),
    /// `x = [2.0] * 7` and `x = np.array([0, 1, 2])` (int), numpy 2.4.6.
    #[test]
    fn sturges_edges_match_numpy() {
        let edges = sturges_edges(0.0, 29.0, 30, true).expect("finite");
        let expected = [
            0.0,
            4.833333333333333,
            9.666666666666666,
            14.5,
            19.333333333333332,
            24.166666666666664,
            29.0,
        ];
        assert_eq!(edges, expected);
        assert_eq!(sturges_edges(0.0, 29.0, 30, false).expect("finite"), expected);
        assert_eq!(sturges_edges(2.0, 2.0, 7, false).expect("finite"), vec![1.5, 2.5]);
        assert_eq!(sturges_edges(0.0, 2.0, 3, true).expect("finite"), vec![0.0, 1.0, 2.0]);
        assert_eq!(
            sturges_edges(0.0, 2.0, 3, false).expect("finite"),
            vec![0.0, 0.6666666666666666, 1.3333333333333333, 2.0]
        );
        assert!(sturges_edges(-f64::MAX, f64::MAX, 2, false).is_none());
    }

    #[test]
    fn histogram_closes_the_last_bin() {
        let counts = histogram_counts(&[0.0, 1.0, 1.0, 2.0, 3.0], &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(counts, vec![1, 2, 2]);
    }

    #[test]
    fn fill_zeroes_uses_evidently_rule() {
        let mut shares = vec![0.5, 0.0, 0.5];
        fill_zeroes(&mut shares);
        assert_eq!(shares, vec![0.5, 0.0001, 0.5]);
        let mut tiny = vec![0.00005, 0.0, 0.99995];
        fill_zeroes(&mut tiny);
        assert_eq!(tiny[1], 0.00005 / 1_000_000.0);
    }
}
