//! The drift methods, named as Evidently names its stattests, with their default thresholds,
//! the comparison that turns a statistic into a verdict, and the column kinds they accept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ColumnKind;

/// A drift test or distance. Serialised as Evidently's stattest name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// Two-sample Kolmogorov–Smirnov p-value (`scipy.stats.ks_2samp`). Numerical columns.
    #[serde(rename = "ks")]
    Ks,
    /// Evidently's χ² goodness-of-fit p-value of the current counts against the reference
    /// shares. Categorical columns.
    #[serde(rename = "chisquare")]
    ChiSquare,
    /// Two-proportion Z-test p-value (smallest value against the rest). Categorical columns.
    #[serde(rename = "z")]
    Z,
    /// First Wasserstein distance divided by the reference's standard deviation. Numerical.
    #[serde(rename = "wasserstein")]
    Wasserstein,
    /// Jensen–Shannon distance of the binned shares (natural log).
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    /// Population stability index of the binned shares.
    #[serde(rename = "psi")]
    Psi,
    /// Kullback–Leibler divergence of the reference from the current binned shares.
    #[serde(rename = "kl_div")]
    KlDiv,
    /// Hellinger distance of the binned distributions.
    #[serde(rename = "hellinger")]
    Hellinger,
    /// χ² test of independence on the 2 × K table of counts (`scipy.stats.chi2_contingency`,
    /// Yates-corrected for two levels): the proper two-sample version of `chisquare`. Not an
    /// Evidently method. Categorical columns.
    #[serde(rename = "chisquare_contingency")]
    ChiSquareContingency,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 9] = [
        Method::Ks,
        Method::ChiSquare,
        Method::Z,
        Method::Wasserstein,
        Method::JensenShannon,
        Method::Psi,
        Method::KlDiv,
        Method::Hellinger,
        Method::ChiSquareContingency,
    ];

    /// Evidently's name of the method ("ks", "chisquare", "z", "wasserstein",
    /// "jensenshannon", "psi", "kl_div", "hellinger"; Cairn's "chisquare_contingency").
    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::ChiSquare => "chisquare",
            Method::Z => "z",
            Method::Wasserstein => "wasserstein",
            Method::JensenShannon => "jensenshannon",
            Method::Psi => "psi",
            Method::KlDiv => "kl_div",
            Method::Hellinger => "hellinger",
            Method::ChiSquareContingency => "chisquare_contingency",
        }
    }

    /// The threshold Evidently uses when none is given: 0.05 for the p-value tests, 0.1 for
    /// the distances.
    pub fn default_threshold(self) -> f64 {
        if self.is_p_value() { 0.05 } else { 0.1 }
    }

    /// Whether the statistic is a p-value (small means drift) rather than a distance (large
    /// means drift).
    pub fn is_p_value(self) -> bool {
        matches!(self, Method::Ks | Method::ChiSquare | Method::Z | Method::ChiSquareContingency)
    }

    /// The verdict, with Evidently's operators: K-S drifts when p ≤ threshold, χ² and Z when
    /// p < threshold, every distance when it is ≥ threshold. NaN never drifts.
    pub fn is_drift(self, statistic: f64, threshold: f64) -> bool {
        match self {
            Method::Ks => statistic <= threshold,
            Method::ChiSquare | Method::Z | Method::ChiSquareContingency => statistic < threshold,
            Method::Wasserstein
            | Method::JensenShannon
            | Method::Psi
            | Method::KlDiv
            | Method::Hellinger => statistic >= threshold,
        }
    }

    /// Whether the method may be chosen for a column of this kind (Evidently's
    /// `allowed_feature_types`). The defaults may still pick χ² or Z for a numerical column
    /// with at most five values, as Evidently does.
    pub fn applies_to(self, kind: ColumnKind) -> bool {
        match self {
            Method::Ks | Method::Wasserstein => kind == ColumnKind::Numerical,
            Method::ChiSquare | Method::Z | Method::ChiSquareContingency => {
                kind == ColumnKind::Categorical
            }
            Method::JensenShannon | Method::Psi | Method::KlDiv | Method::Hellinger => true,
        }
    }

    /// Evidently 0.7's default test (`_get_default_stattest`), from the column kind, the
    /// cleaned reference size and the number of distinct values of both samples together:
    /// up to 1000 reference rows K-S for numerical columns with more than five values, else
    /// χ² (more than two values) or Z; above 1000 rows the normed Wasserstein distance for
    /// numerical columns with more than five values, else Jensen–Shannon.
    pub fn default_for(kind: ColumnKind, reference_rows: usize, distinct_values: usize) -> Method {
        let few_values_test = if distinct_values > 2 { Method::ChiSquare } else { Method::Z };
        match (kind, reference_rows <= 1000) {
            (ColumnKind::Numerical, true) if distinct_values > 5 => Method::Ks,
            (ColumnKind::Numerical, true) | (ColumnKind::Categorical, true) => few_values_test,
            (ColumnKind::Numerical, false) if distinct_values > 5 => Method::Wasserstein,
            (ColumnKind::Numerical, false) | (ColumnKind::Categorical, false) => {
                Method::JensenShannon
            }
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A method name that is not one of [`Method::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown drift method {0:?}; expected one of ks, chisquare, z, wasserstein, jensenshannon, psi, kl_div, hellinger, chisquare_contingency"
)]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(name: &str) -> Result<Method, UnknownMethod> {
        Method::ALL
            .into_iter()
            .find(|method| method.name() == name)
            .ok_or_else(|| UnknownMethod(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for method in Method::ALL {
            assert_eq!(method.name().parse::<Method>(), Ok(method));
            let json = serde_json::to_string(&method).expect("serialise");
            assert_eq!(json, format!("\"{}\"", method.name()));
            assert_eq!(serde_json::from_str::<Method>(&json).expect("deserialise"), method);
        }
        assert!("KS".parse::<Method>().is_err());
    }

    #[test]
    fn verdicts_use_evidently_operators() {
        assert!(Method::Ks.is_drift(0.05, 0.05));
        assert!(!Method::ChiSquare.is_drift(0.05, 0.05));
        assert!(!Method::Z.is_drift(0.05, 0.05));
        assert!(Method::Wasserstein.is_drift(0.1, 0.1));
        assert!(!Method::Psi.is_drift(f64::NAN, 0.1));
    }

    #[test]
    fn defaults_follow_evidently() {
        use ColumnKind::{Categorical, Numerical};
        assert_eq!(Method::default_for(Numerical, 1000, 6), Method::Ks);
        assert_eq!(Method::default_for(Numerical, 1000, 5), Method::ChiSquare);
        assert_eq!(Method::default_for(Numerical, 1000, 2), Method::Z);
        assert_eq!(Method::default_for(Categorical, 1000, 3), Method::ChiSquare);
        assert_eq!(Method::default_for(Categorical, 1000, 2), Method::Z);
        assert_eq!(Method::default_for(Numerical, 1001, 6), Method::Wasserstein);
        assert_eq!(Method::default_for(Numerical, 1001, 5), Method::JensenShannon);
        assert_eq!(Method::default_for(Categorical, 1001, 50), Method::JensenShannon);
    }
}
