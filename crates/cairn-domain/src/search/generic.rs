//! A grammar-level parse with no entity rules, for searches whose keys are checked by the
//! caller (logged models): `identifier op value` clauses joined by AND, with identifiers
//! normalised to `entity.key` (quotes removed) or a bare attribute name.

use super::syntax::{
    ClauseStyle, RawValue, clean_key, eval_string_list, parse_comparisons, split_identifier,
};
use super::{Comparator, FilterValue, SearchError};

/// Parses `filter` into `(identifier, comparator, value)` triples.
pub fn parse_generic_filter(
    filter: &str,
) -> Result<Vec<(String, Comparator, FilterValue)>, SearchError> {
    let comparisons = parse_comparisons(filter, ClauseStyle::Quoted)?;
    comparisons
        .into_iter()
        .map(|comparison| {
            let comparator = Comparator::from_mlflow(&comparison.comparator).ok_or_else(|| {
                SearchError { message: format!("Invalid comparator '{}'", comparison.comparator) }
            })?;
            let identifier = match split_identifier(comparison.identifier) {
                (Some(entity), key) => format!("{entity}.{}", clean_key(key)),
                (None, key) => clean_key(key).to_string(),
            };
            let value = match &comparison.value {
                RawValue::Absent => FilterValue::Null,
                RawValue::Quoted { content, .. } => FilterValue::Str((*content).to_string()),
                RawValue::Number { raw } => FilterValue::Num(raw.parse::<f64>().map_err(|_| {
                    SearchError { message: format!("Expected numeric value, got '{raw}'") }
                })?),
                RawValue::List { tokens, .. } => FilterValue::List(eval_string_list(tokens)?),
                RawValue::Name { raw } | RawValue::Keyword { raw } => {
                    return Err(super::syntax::unquoted_value_error(raw));
                }
            };
            Ok((identifier, comparator, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_logged_model_filters() {
        let parsed = parse_generic_filter("name = 'model' AND metrics.`val acc` >= 0.5").unwrap();
        assert_eq!(
            parsed[0],
            ("name".to_string(), Comparator::Eq, FilterValue::Str("model".into()))
        );
        assert_eq!(
            parsed[1],
            ("metrics.val acc".to_string(), Comparator::Ge, FilterValue::Num(0.5))
        );
        assert!(parse_generic_filter("name = model").is_err());
        assert!(parse_generic_filter("").unwrap().is_empty());
    }
}
