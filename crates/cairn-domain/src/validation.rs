//! Validation of names, values and batch sizes, with MLflow's limits and message texts (the
//! MLflow client and its users read these messages, so they match MLflow's wording).

use crate::DomainError;

/// Most metrics one log-batch may carry.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params, and separately most tags, one log-batch may carry.
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// Most entities of all kinds one log-batch may carry.
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Longest metric, param or tag key.
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
/// Longest param value; longer values are truncated.
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
/// Longest run tag value; longer values are truncated.
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
/// Longest experiment tag key.
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
/// Longest experiment tag value.
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20000;
/// Most results one runs/search page may hold.
pub const MAX_RUNS_PER_PAGE: i64 = 50000;
/// Most points one metric-history page may hold.
pub const MAX_HISTORY_PER_PAGE: i64 = 25000;

/// Formats a value as Python's `json.dumps` would, for MLflow's "Invalid value" messages.
pub fn json_repr(value: &serde_json::Value) -> String {
    let compact = serde_json::to_string(value).unwrap_or_default();
    let mut escaped = String::with_capacity(compact.len());
    for character in compact.chars() {
        if character.is_ascii() {
            escaped.push(character);
        } else {
            let mut units = [0u16; 2];
            for unit in character.encode_utf16(&mut units) {
                escaped.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    escaped
}

/// MLflow's "Invalid value … for parameter '…' supplied: …" message.
pub fn invalid_value(path: &str, value: &serde_json::Value, detail: Option<&str>) -> String {
    match detail {
        Some(detail) => {
            format!("Invalid value {} for parameter '{path}' supplied: {detail}", json_repr(value))
        }
        None => format!("Invalid value {} for parameter '{path}' supplied.", json_repr(value)),
    }
}

/// MLflow's message for a missing required field.
pub fn missing_value(path: &str) -> String {
    format!("Missing value for required parameter '{path}'.")
}

/// MLflow's message for a value over its length limit.
pub fn exceeds_maximum_length(path: &str, limit: usize) -> String {
    format!("'{path}' exceeds the maximum length of {limit} characters")
}

/// Joins a JSON path the way MLflow's `append_to_json_path` does.
pub fn json_path(current: &str, field: &str) -> String {
    if current.is_empty() {
        field.to_string()
    } else if field.starts_with('[') {
        format!("{current}{field}")
    } else {
        format!("{current}.{field}")
    }
}

/// Normalises a path as Python's `posixpath.normpath` does.
pub fn posix_normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let leading_slashes = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        let keep_parent = part != ".."
            || (leading_slashes == 0 && parts.is_empty())
            || parts.last() == Some(&"..");
        if keep_parent {
            parts.push(part);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let joined = parts.join("/");
    let normalised = format!("{}{}", "/".repeat(leading_slashes), joined);
    if normalised.is_empty() { ".".to_string() } else { normalised }
}

fn is_valid_name_character(character: char) -> bool {
    character.is_alphanumeric() || matches!(character, '_' | '/' | '.' | '-' | ' ' | ':')
}

fn bad_character_message() -> &'static str {
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
}

fn bad_path_message(name: &str) -> String {
    format!(
        "Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '{}'",
        posix_normpath(name)
    )
}

/// True when normalising `name` as a POSIX path would change it or escape its root.
pub fn path_not_unique(name: &str) -> bool {
    let normalised = posix_normpath(name);
    normalised != name
        || normalised == "."
        || normalised.starts_with("..")
        || normalised.starts_with('/')
}

/// Checks a metric, param or tag key: MLflow's character set and path-uniqueness rule.
pub fn validate_key(name: &str, path: &str) -> Result<(), DomainError> {
    let value = serde_json::Value::String(name.to_string());
    if !name.chars().all(is_valid_name_character) {
        return Err(DomainError::invalid(invalid_value(
            path,
            &value,
            Some(bad_character_message()),
        )));
    }
    if path_not_unique(name) {
        return Err(DomainError::invalid(invalid_value(
            path,
            &value,
            Some(&bad_path_message(name)),
        )));
    }
    Ok(())
}

/// Fails when `value` is longer than `limit` characters.
pub fn validate_length(entity: &str, limit: usize, value: &str) -> Result<(), DomainError> {
    if value.chars().count() > limit {
        return Err(DomainError::invalid(exceeds_maximum_length(entity, limit)));
    }
    Ok(())
}

/// Truncates `value` to `limit` characters, as MLflow does for long param and tag values.
pub fn truncate_chars(value: &str, limit: usize) -> String {
    match value.char_indices().nth(limit) {
        Some((byte_index, _)) => value[..byte_index].to_string(),
        None => value.to_string(),
    }
}

/// Checks the entity counts of one log-batch request.
pub fn validate_batch_limits(
    metrics: usize,
    params: usize,
    tags: usize,
) -> Result<(), DomainError> {
    let check = |entity: &str, limit: usize, length: usize| {
        if length > limit {
            return Err(DomainError::invalid(format!(
                "A batch logging request can contain at most {limit} {entity}. Got {length} {entity}. Please split up {entity} across multiple requests and try again."
            )));
        }
        Ok(())
    };
    check("metrics", MAX_METRICS_PER_BATCH, metrics)?;
    check("params", MAX_PARAMS_TAGS_PER_BATCH, params)?;
    check("tags", MAX_PARAMS_TAGS_PER_BATCH, tags)?;
    check("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, metrics + params + tags)
}

/// Checks an experiment name: present and at most 500 characters.
pub fn validate_experiment_name(name: &str) -> Result<(), DomainError> {
    if name.is_empty() {
        return Err(DomainError::invalid(format!("Invalid experiment name: '{name}'")));
    }
    validate_length("name", MAX_EXPERIMENT_NAME_LENGTH, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normpath_matches_python() {
        let cases = [
            ("a/b", "a/b"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("./x", "x"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/a/../b", "/b"),
            ("//a", "//a"),
            ("///a", "/a"),
            ("a/", "a"),
            ("", "."),
            (".", "."),
        ];
        for (input, expected) in cases {
            assert_eq!(posix_normpath(input), expected, "normpath({input:?})");
        }
    }

    #[test]
    fn keys_follow_mlflow_rules() {
        assert!(validate_key("val/loss", "key").is_ok());
        assert!(validate_key("a b:c-d.e_f", "key").is_ok());
        assert_eq!(
            validate_key("a*b", "key").unwrap_err().message,
            "Invalid value \"a*b\" for parameter 'key' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        );
        assert_eq!(
            validate_key("../a", "key").unwrap_err().message,
            "Invalid value \"../a\" for parameter 'key' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '../a'"
        );
        for bad in ["a//b", "a/./b", "./x", "/abs", "a/"] {
            assert!(validate_key(bad, "key").is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn batch_limits_match_mlflow() {
        assert!(validate_batch_limits(1000, 0, 0).is_ok());
        assert_eq!(
            validate_batch_limits(1001, 0, 0).unwrap_err().message,
            "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. Please split up metrics across multiple requests and try again."
        );
        assert!(validate_batch_limits(0, 101, 0).is_err());
        assert!(validate_batch_limits(900, 100, 1).is_err());
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("ab", 5), "ab");
    }

    #[test]
    fn json_repr_escapes_like_python() {
        assert_eq!(json_repr(&serde_json::json!("é")), "\"\\u00e9\"");
        assert_eq!(json_repr(&serde_json::json!(123)), "123");
    }
}
