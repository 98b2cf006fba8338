//! The histograms shown in reports next to each verdict: Sturges bins over the pooled sample
//! for numerical columns (the bins Evidently's divergence tests use; Sturges' rule keeps them
//! to about log₂N + 1, so 18 for 100 000 rows and 25 for ten million), and the most frequent
//! values plus "other" for categorical ones.

use serde::{Deserialize, Serialize};

use super::binning::{histogram_counts, pooled_range, sturges_edges};
use super::prepare::{CountTable, Number};

/// Categorical histograms show at most this many bars: the most frequent values, then one
/// "other" bar for the rest.
pub const MAX_HISTOGRAM_CATEGORIES: usize = 20;

/// The label of the bar that gathers the less frequent values.
const OTHER: &str = "other";

/// The shares of each sample per bin or per value, for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Histogram {
    /// Numerical column: `edges.len() − 1` bins [e_j, e_{j+1}), the last one closed.
    Bins {
        /// Bin edges, ascending.
        edges: Vec<f64>,
        /// Share of the reference sample in each bin.
        reference: Vec<f64>,
        /// Share of the current sample in each bin.
        current: Vec<f64>,
    },
    /// Categorical column: one bar per value, most frequent first (both samples together).
    Categories {
        /// The values, the last one possibly "other".
        labels: Vec<String>,
        /// Share of the reference sample per value.
        reference: Vec<f64>,
        /// Share of the current sample per value.
        current: Vec<f64>,
    },
}

/// Sturges bins over the pooled sorted samples (both non-empty). A range beyond f64 gives an
/// empty histogram.
pub(super) fn numerical<T: Number>(reference: &[T], current: &[T]) -> Histogram {
    let (lo, hi) = pooled_range(reference, current);
    let Some(edges) =
        sturges_edges(lo.to_f64(), hi.to_f64(), reference.len() + current.len(), T::INTEGER)
    else {
        return Histogram::Bins { edges: Vec::new(), reference: Vec::new(), current: Vec::new() };
    };
    let shares = |sample: &[T]| -> Vec<f64> {
        let size = sample.len() as f64;
        histogram_counts(sample, &edges).into_iter().map(|count| count as f64 / size).collect()
    };
    Histogram::Bins { reference: shares(reference), current: shares(current), edges }
}

/// The most frequent values (by reference plus current share), the rest folded into "other".
pub(super) fn categorical(table: &CountTable) -> Histogram {
    let (reference_shares, current_shares) = table.shares();
    let mut order: Vec<usize> = (0..table.len()).collect();
    order.sort_by(|&left, &right| {
        let left_share = reference_shares[left] + current_shares[left];
        let right_share = reference_shares[right] + current_shares[right];
        right_share
            .total_cmp(&left_share)
            .then_with(|| table.labels[left].cmp(&table.labels[right]))
    });
    let shown = if order.len() > MAX_HISTOGRAM_CATEGORIES {
        MAX_HISTOGRAM_CATEGORIES - 1
    } else {
        order.len()
    };
    let mut labels: Vec<String> = order[..shown].iter().map(|&i| table.labels[i].clone()).collect();
    let mut reference: Vec<f64> = order[..shown].iter().map(|&i| reference_shares[i]).collect();
    let mut current: Vec<f64> = order[..shown].iter().map(|&i| current_shares[i]).collect();
    if shown < order.len() {
        let rest = &order[shown..];
        let other_label = if labels.iter().any(|label| label == OTHER) {
            format!("({OTHER})")
        } else {
            OTHER.to_owned()
        };
        labels.push(other_label);
        reference.push(rest.iter().map(|&i| reference_shares[i]).sum());
        current.push(rest.iter().map(|&i| current_shares[i]).sum());
    }
    Histogram::Categories { labels, reference, current }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_categories_fold_into_other() {
        let levels = 50;
        let table = CountTable {
            labels: (0..levels).map(|i| format!("level_{i:02}")).collect(),
            reference: (0..levels).map(|i| i + 1).collect(),
            current: (0..levels).map(|i| i + 1).collect(),
            reference_total: (1..=levels).sum(),
            current_total: (1..=levels).sum(),
        };
        let Histogram::Categories { labels, reference, current } = categorical(&table) else {
            panic!("categories")
        };
        assert_eq!(labels.len(), MAX_HISTOGRAM_CATEGORIES);
        assert_eq!(labels[0], "level_49");
        assert_eq!(labels.last().map(String::as_str), Some("other"));
        assert!((reference.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((current.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn numerical_bins_cover_both_samples() {
        let reference: Vec<f64> = (0..100).map(f64::from).collect();
        let current: Vec<f64> = (50..150).map(f64::from).collect();
        let Histogram::Bins { edges, reference, current } = numerical(&reference, &current) else {
            panic!("bins")
        };
        assert_eq!(edges.first(), Some(&0.0));
        assert_eq!(edges.last(), Some(&149.0));
        assert_eq!(reference.len(), edges.len() - 1);
        assert!((reference.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((current.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
