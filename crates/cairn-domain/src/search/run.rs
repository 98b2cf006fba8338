//! The `runs/search` grammar: `metrics.`, `params.`, `tags.`, `attributes.` and `datasets.`
//! comparisons, and `order_by` over metrics, params, tags and attributes.

use super::syntax::{
    ClauseStyle, RawComparison, RawValue, clean_key, eval_string_list, parse_comparisons,
    parse_order_clause, py_list_repr, split_identifier, trim_backticks, unquoted_value_error,
};
use super::{
    Comparator, DatasetField, FilterValue, KEY_VALUE_COMPARATORS, NUMERIC_COMPARATORS,
    RunAttribute, RunComparison, RunKey, RunOrderBy, STRING_ATTRIBUTE_COMPARATORS, SearchError,
    comparator_set, name_set,
};

/// The entity an identifier's prefix names, with MLflow's canonical spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Metric => "metric",
            Entity::Param => "parameter",
            Entity::Tag => "tag",
            Entity::Attribute => "attribute",
            Entity::Dataset => "dataset",
        }
    }
}

/// Attribute names accepted in filters, in the order MLflow's messages list them here.
const FILTER_ATTRIBUTE_KEYS: [&str; 12] = [
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "user_id",
    "artifact_uri",
    "created",
    "Created",
    "run name",
    "Run name",
    "Run Name",
];

/// Attribute names accepted in `order_by`: the filter ones without the `run name` aliases.
const ORDER_BY_ATTRIBUTE_KEYS: [&str; 9] = [
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "user_id",
    "artifact_uri",
    "created",
    "Created",
];

const DATASET_KEYS: [&str; 3] = ["name", "digest", "context"];

fn attribute(key: &str) -> Option<RunAttribute> {
    Some(match key {
        "run_id" => RunAttribute::RunId,
        "run_name" | "run name" | "Run name" | "Run Name" => RunAttribute::RunName,
        "status" => RunAttribute::Status,
        "user_id" => RunAttribute::UserId,
        "artifact_uri" => RunAttribute::ArtifactUri,
        "start_time" | "created" | "Created" => RunAttribute::StartTime,
        "end_time" => RunAttribute::EndTime,
        _ => return None,
    })
}

fn dataset_field(key: &str) -> Option<DatasetField> {
    Some(match key {
        "name" => DatasetField::Name,
        "digest" => DatasetField::Digest,
        "context" => DatasetField::Context,
        _ => return None,
    })
}

fn entity(prefix: &str) -> Result<Entity, SearchError> {
    let prefix = trim_backticks(prefix);
    Ok(match prefix {
        "metric" | "metrics" => Entity::Metric,
        "parameter" | "parameters" | "param" | "params" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        "dataset" | "datasets" => Entity::Dataset,
        _ => {
            return Err(SearchError::new(format!(
                "Invalid entity type '{prefix}'. Valid values are ['metric', 'parameter', 'tag', \
                 'attribute', 'dataset']"
            )));
        }
    })
}

/// MLflow's `SearchUtils._get_identifier`: entity type and cleaned key, with key checks.
fn identify<'a>(
    identifier: &'a str,
    valid_attributes: &[&str],
) -> Result<(Entity, &'a str), SearchError> {
    let (prefix, key) = split_identifier(identifier);
    let entity = prefix.map_or(Ok(Entity::Attribute), entity)?;
    let key = clean_key(key);
    if entity == Entity::Attribute && !valid_attributes.contains(&key) {
        return Err(SearchError::new(format!(
            "Invalid attribute key '{key}' specified. Valid keys are '{}'",
            name_set(valid_attributes)
        )));
    }
    if entity == Entity::Dataset && !DATASET_KEYS.contains(&key) {
        return Err(SearchError::new(format!(
            "Invalid dataset key '{key}' specified. Valid keys are '{}'",
            name_set(&DATASET_KEYS)
        )));
    }
    Ok((entity, key))
}

/// A comparison whose identifier and value passed MLflow's parser.
struct Parsed<'a> {
    entity: Entity,
    key: &'a str,
    comparator: String,
    value: FilterValue,
    raw_value: &'a str,
}

fn number(raw: &str, message: impl FnOnce() -> String) -> Result<FilterValue, SearchError> {
    raw.parse::<f64>().map(FilterValue::Num).map_err(|_| SearchError::new(message()))
}

/// MLflow's `SearchUtils._get_value`.
fn value(entity: Entity, key: &str, raw: &RawValue<'_>) -> Result<FilterValue, SearchError> {
    let text = raw.raw();
    match (entity, raw) {
        (Entity::Metric, RawValue::Number { .. }) => {
            number(text, || format!("Expected numeric value type for metric. Found {text}"))
        }
        (Entity::Metric, _) => {
            Err(SearchError::new(format!("Expected numeric value type for metric. Found {text}")))
        }
        (Entity::Attribute, _) if attribute(key).is_some_and(RunAttribute::is_numeric) => {
            let message = || {
                format!("Expected numeric value type for numeric attribute: {key}. Found {text}")
            };
            match raw {
                RawValue::Number { .. } => number(text, message),
                _ => Err(SearchError::new(message())),
            }
        }
        (_, RawValue::Quoted { content, .. }) => Ok(FilterValue::Str(content.to_string())),
        (_, RawValue::Name { raw }) => Err(unquoted_value_error(raw)),
        (Entity::Param | Entity::Tag, _) => Err(SearchError::new(format!(
            "Expected a quoted string value for {} (e.g. 'my-value'). Got value {text}",
            entity.name()
        ))),
        (Entity::Attribute, RawValue::List { tokens, .. }) => {
            if key != "run_id" {
                return Err(SearchError::new(
                    "Only ['run_id'] attributes support comparison with a list of quoted string \
                     values.",
                ));
            }
            eval_string_list(tokens).map(FilterValue::List)
        }
        (Entity::Dataset, RawValue::List { tokens, .. }) => {
            eval_string_list(tokens).map(FilterValue::List)
        }
        (Entity::Attribute, _) => Err(SearchError::new(format!(
            "Expected a quoted string value for attributes. Got value {text}"
        ))),
        (Entity::Dataset, _) => Err(SearchError::new(format!(
            "Expected a quoted string value for dataset attributes. Got value {text}"
        ))),
    }
}

/// MLflow's `SearchUtils._get_comparison`.
fn parse_comparison<'a>(raw: &RawComparison<'a>) -> Result<Parsed<'a>, SearchError> {
    let (entity, key) = identify(raw.identifier, &FILTER_ATTRIBUTE_KEYS)?;
    let value = if raw.value == RawValue::Absent {
        if !matches!(entity, Entity::Param | Entity::Tag) {
            return Err(SearchError::new(format!(
                "IS NULL / IS NOT NULL is only supported for tags and params, not for '{}' '{key}'",
                entity.name()
            )));
        }
        FilterValue::Null
    } else {
        value(entity, key, &raw.value)?
    };
    let comparator = raw.comparator.clone();
    Ok(Parsed { entity, key, comparator, value, raw_value: raw.value.raw() })
}

/// The comparator checks of MLflow's SQL store, then the typed comparison.
fn check_comparator(parsed: Parsed<'_>) -> Result<RunComparison, SearchError> {
    let Parsed { entity, key, comparator, value, raw_value } = parsed;
    let (allowed, allowed_text, closing_quote): (&[Comparator], _, _) = match entity {
        Entity::Metric => (&NUMERIC_COMPARATORS, comparator_set(&NUMERIC_COMPARATORS), ""),
        Entity::Param => (&KEY_VALUE_COMPARATORS, comparator_set(&KEY_VALUE_COMPARATORS), "'"),
        Entity::Tag => (&KEY_VALUE_COMPARATORS, comparator_set(&KEY_VALUE_COMPARATORS), ""),
        Entity::Dataset => {
            (&STRING_ATTRIBUTE_COMPARATORS, comparator_set(&STRING_ATTRIBUTE_COMPARATORS), "")
        }
        // MLflow lists the string comparators even for numeric attributes.
        Entity::Attribute if attribute(key).is_some_and(RunAttribute::is_numeric) => {
            (&NUMERIC_COMPARATORS, comparator_set(&STRING_ATTRIBUTE_COMPARATORS), "")
        }
        Entity::Attribute => {
            (&STRING_ATTRIBUTE_COMPARATORS, comparator_set(&STRING_ATTRIBUTE_COMPARATORS), "'")
        }
    };
    let comparator =
        Comparator::from_mlflow(&comparator).filter(|c| allowed.contains(c)).ok_or_else(|| {
            SearchError::new(format!(
                "Invalid comparator '{comparator}' not one of '{allowed_text}{closing_quote}"
            ))
        })?;
    let is_list = matches!(value, FilterValue::List(_));
    if is_list != matches!(comparator, Comparator::In | Comparator::NotIn) {
        let what = if entity == Entity::Dataset { "dataset attributes" } else { "attributes" };
        return Err(SearchError::new(format!(
            "Expected a quoted string value for {what}. Got value {raw_value}"
        )));
    }
    let key = match entity {
        Entity::Metric => RunKey::Metric(key.to_string()),
        Entity::Param => RunKey::Param(key.to_string()),
        Entity::Tag => RunKey::Tag(key.to_string()),
        Entity::Attribute => RunKey::Attribute(attribute(key).unwrap_or(RunAttribute::RunId)),
        Entity::Dataset => RunKey::Dataset(dataset_field(key).unwrap_or(DatasetField::Name)),
    };
    Ok(RunComparison { key, comparator, value })
}

/// Parses a `runs/search` filter. An empty or blank filter has no comparisons.
///
/// Errors carry MLflow's messages, e.g. `Invalid clause(s) in filter string: 'OR'` or
/// `Expected numeric value type for metric. Found '0.5'`.
pub fn parse_run_filter(filter: &str) -> Result<Vec<RunComparison>, SearchError> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let raw = parse_comparisons(filter, ClauseStyle::Quoted)?;
    let parsed = raw.iter().map(parse_comparison).collect::<Result<Vec<_>, _>>()?;
    parsed.into_iter().map(check_comparator).collect()
}

/// Parses a `runs/search` `order_by` list: each entry `<identifier> [ASC|DESC]`, ascending by
/// default. Dataset keys, bad directions and repeated keys (after alias resolution, so
/// `start_time` and `created` clash) are rejected with MLflow's messages.
pub fn parse_run_order_by(order_by: &[String]) -> Result<Vec<RunOrderBy>, SearchError> {
    let mut parsed: Vec<RunOrderBy> = Vec::with_capacity(order_by.len());
    for clause in order_by {
        let (identifier, ascending) = parse_order_clause(clause)?;
        let (entity, key) = identify(&identifier, &ORDER_BY_ATTRIBUTE_KEYS)?;
        let key = match entity {
            Entity::Metric => RunKey::Metric(key.to_string()),
            Entity::Param => RunKey::Param(key.to_string()),
            Entity::Tag => RunKey::Tag(key.to_string()),
            Entity::Attribute => RunKey::Attribute(attribute(key).unwrap_or(RunAttribute::RunId)),
            Entity::Dataset => {
                return Err(SearchError::new("Invalid identifier type 'dataset'"));
            }
        };
        if parsed.iter().any(|earlier| earlier.key == key) {
            return Err(SearchError::new(format!(
                "`order_by` contains duplicate fields: {}",
                py_list_repr(order_by)
            )));
        }
        parsed.push(RunOrderBy { key, ascending });
    }
    Ok(parsed)
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
