//! Model quality from predictions joined with ground truth: classification (accuracy,
//! precision, recall, F1, ROC AUC, log loss) and regression (MAE, RMSE, R², MAPE), with
//! scikit-learn's definitions.
//!
//! - accuracy = correct / n.
//! - precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2·TP / (2·TP + FP + FN), for the
//!   positive label; 0 when the denominator is 0 (scikit-learn's `zero_division=0`).
//! - ROC AUC = the probability that a random positive row scores above a random negative one,
//!   ties counting ½ (the Mann–Whitney U statistic over n₊·n₋; equal to the trapezoidal area
//!   under scikit-learn's ROC curve). Undefined with one class only.
//! - log loss = −(1/n) Σ ln p(true class), with p clipped to [ε, 1 − ε], ε = 2.22e-16 (the
//!   float64 machine epsilon, as scikit-learn ≥ 1.5 clips).
//! - MAE = (1/n) Σ |y − ŷ|; RMSE = √((1/n) Σ (y − ŷ)²); R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (undefined
//!   when every y is equal); MAPE = (1/n) Σ |y − ŷ| / |y| over rows with y ≠ 0 (a share, not a
//!   percentage; scikit-learn divides by max(|y|, ε) instead, which explodes on zeros).

use std::collections::BTreeMap;

use crate::monitoring::QualityMetric;

/// One classification row: the true label, the predicted label, and the predicted
/// probability of the positive label when the model gives probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// Whether the truth is the positive label.
    pub truth_positive: bool,
    /// Whether the truth equals the predicted label.
    pub correct: bool,
    /// Whether the prediction is the positive label.
    pub predicted_positive: bool,
    /// The probability given to the positive label.
    pub positive_probability: Option<f64>,
    /// The probability given to the true label.
    pub truth_probability: Option<f64>,
}

/// Computes the requested classification metrics; a metric that cannot be computed (no
/// probabilities, one class only) is reported in the error map instead.
pub fn classification(
    rows: &[Classified],
    metrics: &[QualityMetric],
) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let mut values = BTreeMap::new();
    let mut errors = BTreeMap::new();
    if rows.is_empty() {
        for metric in metrics {
            errors.insert(metric.name().into(), "no rows with ground truth".into());
        }
        return (values, errors);
    }
    let n = rows.len() as f64;
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for row in rows {
        match (row.predicted_positive, row.truth_positive) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            (false, false) => {}
        }
    }
    let ratio = |num: f64, den: f64| if den == 0.0 { 0.0 } else { num / den };
    for metric in metrics {
        let value = match metric {
            QualityMetric::Accuracy => Ok(rows.iter().filter(|r| r.correct).count() as f64 / n),
            QualityMetric::Precision => Ok(ratio(tp, tp + fp)),
            QualityMetric::Recall => Ok(ratio(tp, tp + fn_)),
            QualityMetric::F1 => Ok(ratio(2.0 * tp, 2.0 * tp + fp + fn_)),
            QualityMetric::RocAuc => roc_auc(rows),
            QualityMetric::LogLoss => log_loss(rows),
            other => Err(format!("{} is a regression metric", other.name())),
        };
        match value {
            Ok(value) => {
                values.insert(metric.name().into(), value);
            }
            Err(error) => {
                errors.insert(metric.name().into(), error);
            }
        }
    }
    (values, errors)
}

fn roc_auc(rows: &[Classified]) -> Result<f64, String> {
    let mut scored: Vec<(f64, bool)> = Vec::with_capacity(rows.len());
    for row in rows {
        let score = row
            .positive_probability
            .filter(|p| p.is_finite())
            .ok_or("roc_auc needs the model's probabilities")?;
        scored.push((score, row.truth_positive));
    }
    let positives = scored.iter().filter(|(_, positive)| *positive).count() as f64;
    let negatives = scored.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Err("roc_auc is undefined when the ground truth has one class only".into());
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' ranks (1-based, ties sharing their average rank).
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < scored.len() {
        let mut end = start;
        while end + 1 < scored.len() && scored[end + 1].0 == scored[start].0 {
            end += 1;
        }
        let average_rank = (start + end) as f64 / 2.0 + 1.0;
        let tied_positives = scored[start..=end].iter().filter(|(_, p)| *p).count() as f64;
        rank_sum += average_rank * tied_positives;
        start = end + 1;
    }
    Ok((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

fn log_loss(rows: &[Classified]) -> Result<f64, String> {
    let epsilon = f64::EPSILON;
    let mut total = 0.0;
    for row in rows {
        let p = row
            .truth_probability
            .filter(|p| p.is_finite())
            .ok_or("log_loss needs the model's probabilities")?;
        total -= p.clamp(epsilon, 1.0 - epsilon).ln();
    }
    Ok(total / rows.len() as f64)
}

/// Computes the requested regression metrics from (truth, prediction) pairs.
pub fn regression(
    pairs: &[(f64, f64)],
    metrics: &[QualityMetric],
) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let mut values = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let pairs: Vec<(f64, f64)> =
        pairs.iter().copied().filter(|(y, p)| y.is_finite() && p.is_finite()).collect();
    if pairs.is_empty() {
        for metric in metrics {
            errors.insert(metric.name().into(), "no rows with numeric ground truth".into());
        }
        return (values, errors);
    }
    let n = pairs.len() as f64;
    let mean = pairs.iter().map(|(y, _)| y).sum::<f64>() / n;
    let squared: f64 = pairs.iter().map(|(y, p)| (y - p) * (y - p)).sum();
    for metric in metrics {
        let value = match metric {
            QualityMetric::Mae => Ok(pairs.iter().map(|(y, p)| (y - p).abs()).sum::<f64>() / n),
            QualityMetric::Rmse => Ok((squared / n).sqrt()),
            QualityMetric::R2 => {
                let total: f64 = pairs.iter().map(|(y, _)| (y - mean) * (y - mean)).sum();
                if total == 0.0 {
                    Err("r2 is undefined when every true value is equal".to_string())
                } else {
                    Ok(1.0 - squared / total)
                }
            }
            QualityMetric::Mape => {
                let nonzero: Vec<f64> = pairs
                    .iter()
                    .filter(|(y, _)| *y != 0.0)
                    .map(|(y, p)| ((y - p) / y).abs())
                    .collect();
                if nonzero.is_empty() {
                    Err("mape is undefined when every true value is 0".to_string())
                } else {
                    Ok(nonzero.iter().sum::<f64>() / nonzero.len() as f64)
                }
            }
            other => Err(format!("{} is a classification metric", other.name())),
        };
        match value {
            Ok(value) => {
                values.insert(metric.name().into(), value);
            }
            Err(error) => {
                errors.insert(metric.name().into(), error);
            }
        }
    }
    (values, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(truth: bool, predicted: bool, probability: f64) -> Classified {
        Classified {
            truth_positive: truth,
            correct: truth == predicted,
            predicted_positive: predicted,
            positive_probability: Some(probability),
            truth_probability: Some(if truth { probability } else { 1.0 - probability }),
        }
    }

    #[test]
    fn classification_matches_scikit_learn() {
        // y_true = [1,0,1,1,0,0,1,0], p(1) = [.9,.2,.4,.8,.6,.1,.55,.5], ŷ = p ≥ .5 (0.5 → 1);
        // the expected values are counted by hand below (scikit-learn 1.9.1's `accuracy_score`,
        // `precision_score`, `recall_score`, `f1_score`, `roc_auc_score` and `log_loss` give the
        // same on these arrays).
        let truth = [true, false, true, true, false, false, true, false];
        let p = [0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.55, 0.5];
        let rows: Vec<Classified> =
            truth.iter().zip(p).map(|(&t, p)| row(t, p >= 0.5, p)).collect();
        let all = [
            QualityMetric::Accuracy,
            QualityMetric::Precision,
            QualityMetric::Recall,
            QualityMetric::F1,
            QualityMetric::RocAuc,
            QualityMetric::LogLoss,
        ];
        let (values, errors) = classification(&rows, &all);
        assert!(errors.is_empty(), "{errors:?}");
        let close = |name: &str, want: f64| {
            let got = values[name];
            assert!((got - want).abs() < 1e-12, "{name}: {got} vs {want}");
        };
        // TP = 3 (.9,.8,.55), FP = 2 (.6,.5), FN = 1 (.4), TN = 2.
        close("accuracy", 5.0 / 8.0);
        close("precision", 3.0 / 5.0);
        close("recall", 3.0 / 4.0);
        close("f1", 6.0 / 9.0);
        // Positive scores .9,.4,.8,.55 against negatives .2,.6,.1,.5: pairs won 4+2+4+3 = 13 of 16.
        close("roc_auc", 13.0 / 16.0);
        let loss =
            -[0.9_f64, 0.8, 0.4, 0.8, 0.4, 0.9, 0.55, 0.5].iter().map(|p| p.ln()).sum::<f64>()
                / 8.0;
        close("log_loss", loss);
        // scikit-learn 1.9.1 `log_loss` on these arrays: 0.4725717223759935.
        close("log_loss", 0.472_571_722_375_993_5);
    }

    #[test]
    fn undefined_metrics_say_why() {
        let rows = vec![row(true, true, 0.9), row(true, false, 0.3)];
        let (values, errors) =
            classification(&rows, &[QualityMetric::RocAuc, QualityMetric::Accuracy]);
        assert!(errors["roc_auc"].contains("one class"));
        assert_eq!(values["accuracy"], 0.5);
        let (_, errors) = classification(&[], &[QualityMetric::Accuracy]);
        assert!(errors["accuracy"].contains("no rows"));
        let (_, errors) = regression(&[(1.0, 2.0), (1.0, 3.0)], &[QualityMetric::R2]);
        assert!(errors["r2"].contains("equal"));
    }

    #[test]
    fn regression_matches_the_definitions() {
        let pairs = [(3.0, 2.5), (-0.5, 0.0), (2.0, 2.0), (7.0, 8.0)];
        let all = [QualityMetric::Mae, QualityMetric::Rmse, QualityMetric::R2, QualityMetric::Mape];
        let (values, errors) = regression(&pairs, &all);
        assert!(errors.is_empty());
        // scikit-learn's documented example: MAE 0.5, MSE 0.375, R² 0.9486081370449679.
        assert!((values["mae"] - 0.5).abs() < 1e-12);
        assert!((values["rmse"] - 0.375_f64.sqrt()).abs() < 1e-12);
        assert!((values["r2"] - 0.948_608_137_044_967_9).abs() < 1e-12);
        let mape = (0.5 / 3.0 + 0.5 / 0.5 + 0.0 + 1.0 / 7.0) / 4.0;
        assert!((values["mape"] - mape).abs() < 1e-12);
    }
}
