//! Properties every drift statistic must have, on arbitrary samples: no panic on any input
//! (NaN, ±∞, empty, constant, single rows), p-values and distances within their ranges,
//! symmetry where the definition is symmetric, and no drift between identical samples.

use proptest::prelude::*;

use super::divergence::{hellinger_numerical, jensen_shannon};
use super::ks::ks_statistic;
use super::prepare::{CountTable, PreparedColumn, Sample};
use super::stattests::wasserstein_distance;
use super::*;

/// Floats with a good share of ties, NaN, ±∞ and extreme magnitudes.
fn float_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => (-50i32..50).prop_map(|i| f64::from(i) / 4.0),
        3 => -1.0e3f64..1.0e3,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => prop::num::f64::ANY,
    ]
}

fn floats(max_len: usize) -> impl Strategy<Value = Values> {
    prop::collection::vec(float_value(), 0..max_len).prop_map(Values::Floats)
}

fn integers(max_len: usize) -> impl Strategy<Value = Values> {
    prop::collection::vec(prop::option::weighted(0.9, -6i64..30), 0..max_len)
        .prop_map(Values::Integers)
}

fn labels(max_len: usize) -> impl Strategy<Value = Values> {
    let label = prop::sample::select(vec!["a", "b", "c", "d", "ä", "z", ""]);
    prop::collection::vec(prop::option::weighted(0.9, label.prop_map(String::from)), 0..max_len)
        .prop_map(Values::Labels)
}

fn any_values() -> impl Strategy<Value = Values> {
    prop_oneof![floats(40), integers(40), labels(40)]
}

fn options() -> impl Strategy<Value = ColumnOptions> {
    let kind = prop::option::of(prop::sample::select(vec![
        ColumnKind::Numerical,
        ColumnKind::Categorical,
    ]));
    let method = prop::option::of(prop::sample::select(Method::ALL.to_vec()));
    (kind, method).prop_map(|(kind, method)| ColumnOptions { kind, method, threshold: None })
}

/// Finite samples of at least one value, sorted, for the raw statistics.
fn finite_sorted() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-40i32..40).prop_map(|i| f64::from(i) / 8.0), 1..50).prop_map(
        |mut values| {
            values.sort_by(f64::total_cmp);
            values
        },
    )
}

fn check_ranges(drift: &ColumnDrift) {
    let statistic = drift.statistic;
    match drift.method {
        Method::Ks | Method::ChiSquare | Method::Z | Method::ChiSquareContingency => {
            assert!((0.0..=1.0).contains(&statistic), "{:?} p = {statistic}", drift.method);
        }
        Method::JensenShannon => {
            assert!(
                (0.0..=std::f64::consts::LN_2.sqrt() + 1e-12).contains(&statistic),
                "JS = {statistic}"
            );
        }
        Method::Hellinger => assert!((0.0..=1.0).contains(&statistic), "H = {statistic}"),
        Method::Psi | Method::KlDiv | Method::Wasserstein => {
            assert!(statistic >= -1e-12, "{:?} = {statistic}", drift.method)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_stays_in_range(
        reference in any_values(),
        current in any_values(),
        options in options(),
    ) {
        if let Ok(drift) = column_drift(&reference, &current, &options) {
            check_ranges(&drift);
            prop_assert!(drift.reference_rows <= reference.len());
            prop_assert!(drift.current_rows <= current.len());
        }
    }

    #[test]
    fn identical_samples_never_drift(values in any_values(), method in prop::option::of(
        prop::sample::select(Method::ALL.to_vec())
    )) {
        let options = ColumnOptions { method, ..ColumnOptions::default() };
        match column_drift(&values, &values, &options) {
            Ok(drift) => {
                prop_assert!(!drift.drifted, "{drift:?}");
                if drift.method.is_p_value() {
                    prop_assert!((drift.statistic - 1.0).abs() < 1e-9, "{drift:?}");
                }
            }
            Err(DriftError::InsufficientData { .. } | DriftError::MethodNotApplicable { .. }
                | DriftError::NotNumeric | DriftError::OutOfRange { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn distances_are_symmetric(reference in finite_sorted(), current in finite_sorted()) {
        prop_assert_eq!(ks_statistic(&reference, &current), ks_statistic(&current, &reference));
        let forward = wasserstein_distance(&reference, &current);
        let backward = wasserstein_distance(&current, &reference);
        prop_assert!((forward - backward).abs() <= 1e-12 * forward.abs().max(1.0));
        let forward = hellinger_numerical(&reference, &current).expect("finite");
        let backward = hellinger_numerical(&current, &reference).expect("finite");
        prop_assert!((forward - backward).abs() <= 1e-12);
        prop_assert!((0.0..=1.0).contains(&forward));
    }

    #[test]
    fn jensen_shannon_is_symmetric_and_bounded(
        reference in prop::collection::vec(0u64..20, 1..12),
        current in prop::collection::vec(0u64..20, 1..12),
    ) {
        let size = reference.len().min(current.len());
        let mut reference = reference[..size].to_vec();
        let mut current = current[..size].to_vec();
        reference[0] += 1;
        current[size - 1] += 1;
        let table = CountTable {
            labels: (0..size).map(|i| i.to_string()).collect(),
            reference_total: reference.iter().sum(),
            current_total: current.iter().sum(),
            reference,
            current,
        };
        let (p, q) = table.shares();
        let forward = jensen_shannon(&p, &q);
        let backward = jensen_shannon(&q, &p);
        prop_assert!((forward - backward).abs() <= 1e-12);
        prop_assert!((0.0..=std::f64::consts::LN_2.sqrt() + 1e-12).contains(&forward));
    }

    #[test]
    fn prepared_samples_are_sorted_and_finite(values in floats(60)) {
        let prepared = PreparedColumn::new(&values);
        let Sample::Floats(sorted) = &prepared.sample else { unreachable!() };
        prop_assert!(sorted.iter().all(|v| v.is_finite()));
        prop_assert!(sorted.windows(2).all(|pair| pair[0] <= pair[1]));
    }
}
