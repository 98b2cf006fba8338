//! The `experiments/search` grammar: `name`, `experiment_id`, `creation_time`,
//! `last_update_time` and `tags.` comparisons, and `order_by` over the four attributes.

use super::syntax::{
    ClauseStyle, RawComparison, RawValue, clean_key, eval_string_list, parse_comparisons,
    parse_order_clause, py_float_repr, split_identifier, unquoted_value_error,
};
use super::{
    Comparator, ExperimentComparison, ExperimentKey, ExperimentOrderBy, FilterValue,
    NUMERIC_COMPARATORS, STRING_ATTRIBUTE_COMPARATORS, SearchError, comparator_set, name_set,
};

/// Attribute names, in the order MLflow's messages list them here.
const ATTRIBUTE_KEYS: [&str; 4] = ["name", "experiment_id", "creation_time", "last_update_time"];

fn attribute(key: &str) -> Option<ExperimentKey> {
    Some(match key {
        "name" => ExperimentKey::Name,
        "experiment_id" => ExperimentKey::ExperimentId,
        "creation_time" => ExperimentKey::CreationTime,
        "last_update_time" => ExperimentKey::LastUpdateTime,
        _ => return None,
    })
}

fn is_numeric(key: &ExperimentKey) -> bool {
    matches!(key, ExperimentKey::CreationTime | ExperimentKey::LastUpdateTime)
}

/// MLflow's `SearchExperimentsUtils._get_identifier`: an attribute or `tag(s).<key>`.
fn identify(identifier: &str) -> Result<(ExperimentKey, &str), SearchError> {
    let (prefix, key) = split_identifier(identifier);
    let is_tag = match prefix {
        None | Some("attribute") => false,
        Some("tag" | "tags") => true,
        Some(other) => {
            return Err(SearchError::new(format!(
                "Invalid entity type '{other}'. Valid entity types are ('attribute', 'tag', 'tags')"
            )));
        }
    };
    let key = clean_key(key);
    if is_tag {
        return Ok((ExperimentKey::Tag(key.to_string()), key));
    }
    match attribute(key) {
        Some(attribute) => Ok((attribute, key)),
        None => Err(SearchError::new(format!(
            "Invalid attribute key '{key}' specified. Valid keys are '{}'",
            name_set(&ATTRIBUTE_KEYS)
        ))),
    }
}

/// A number as MLflow's parser reads it: integers stay exact, other literals are floats.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Float(f64),
}

/// The value of a comparison after MLflow's parser.
enum Value {
    Str(String),
    Number(Number),
    List(Vec<String>),
    Null,
}

struct Parsed<'a> {
    key: ExperimentKey,
    key_text: &'a str,
    comparator: String,
    written: String,
    value: Value,
    raw_value: &'a str,
}

fn number(raw: &str) -> Option<Number> {
    if raw.contains(['.', 'e', 'E']) {
        return raw.parse().ok().map(Number::Float);
    }
    raw.parse().ok().map(Number::Int)
}

/// MLflow's `SearchUtils._get_value` with the experiment attribute sets.
fn value(key: &ExperimentKey, key_text: &str, raw: &RawValue<'_>) -> Result<Value, SearchError> {
    let text = raw.raw();
    if is_numeric(key) {
        let numeric = match raw {
            RawValue::Number { raw } => number(raw),
            _ => None,
        };
        // An integer too large for i64 cannot match any timestamp; MLflow's database rejects it.
        return numeric.map(Value::Number).ok_or_else(|| match raw {
            RawValue::Number { raw } => SearchError::new(format!(
                "Invalid value for numeric attribute '{key_text}': '{raw}'"
            )),
            _ => SearchError::new(format!(
                "Expected numeric value type for numeric attribute: {key_text}. Found {text}"
            )),
        });
    }
    match raw {
        RawValue::Quoted { content, .. } => Ok(Value::Str(content.to_string())),
        RawValue::Name { raw } => Err(unquoted_value_error(raw)),
        _ if matches!(key, ExperimentKey::Tag(_)) => Err(SearchError::new(format!(
            "Expected a quoted string value for tag (e.g. 'my-value'). Got value {text}"
        ))),
        RawValue::List { tokens, .. } => {
            if *key != ExperimentKey::ExperimentId {
                return Err(SearchError::new(
                    "Only ['experiment_id'] attributes support comparison with a list of quoted \
                     string values.",
                ));
            }
            eval_string_list(tokens).map(Value::List)
        }
        _ => Err(SearchError::new(format!(
            "Expected a quoted string value for attributes. Got value {text}"
        ))),
    }
}

fn parse_comparison<'a>(raw: &RawComparison<'a>) -> Result<Parsed<'a>, SearchError> {
    let (key, key_text) = identify(raw.identifier)?;
    let value = if raw.value == RawValue::Absent {
        if !matches!(key, ExperimentKey::Tag(_)) {
            return Err(SearchError::new(format!(
                "IS NULL / IS NOT NULL is only supported for tags, not for attribute '{key_text}'"
            )));
        }
        Value::Null
    } else {
        value(&key, key_text, &raw.value)?
    };
    let (comparator, written) = (raw.comparator.clone(), raw.written.clone());
    Ok(Parsed { key, key_text, comparator, written, value, raw_value: raw.value.raw() })
}

/// Python's `int()` of an experiment id string, normalised to canonical decimal.
fn experiment_id(raw: &str) -> Result<String, SearchError> {
    let trimmed = raw.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    let cleaned: String = trimmed.chars().filter(|c| *c != '_').collect();
    well_formed.then(|| cleaned.parse::<i64>().ok()).flatten().map(|id| id.to_string()).ok_or_else(
        || {
            SearchError::new(format!(
                "Invalid experiment ID '{raw}'. Experiment ID must be a valid integer."
            ))
        },
    )
}

/// The comparator and value checks of MLflow's SQL store, then the typed comparison.
fn check(parsed: Parsed<'_>) -> Result<ExperimentComparison, SearchError> {
    let Parsed { key, key_text, comparator, written: text, value, raw_value } = parsed;
    // MLflow's experiment checks echo the comparator as written (`like`), not upper-cased.
    let comparator = Comparator::from_mlflow(&comparator);
    let allowed = |allowed: &[Comparator]| comparator.filter(|c| allowed.contains(c));
    let invalid = |closing: &str| {
        SearchError::new(format!(
            "Invalid comparator '{text}' not one of '{}{closing}",
            comparator_set(&STRING_ATTRIBUTE_COMPARATORS)
        ))
    };
    let comparator = match &key {
        ExperimentKey::ExperimentId => {
            allowed(&[Comparator::Eq, Comparator::Ne, Comparator::In, Comparator::NotIn])
                .ok_or_else(|| {
                    SearchError::new(format!("Invalid comparator for experiment_id: {text}"))
                })?
        }
        ExperimentKey::Name => {
            allowed(&STRING_ATTRIBUTE_COMPARATORS).ok_or_else(|| invalid("'"))?
        }
        ExperimentKey::CreationTime | ExperimentKey::LastUpdateTime => {
            allowed(&NUMERIC_COMPARATORS).ok_or_else(|| invalid(""))?
        }
        ExperimentKey::Tag(_) => allowed(&[
            Comparator::Eq,
            Comparator::Ne,
            Comparator::Like,
            Comparator::ILike,
            Comparator::IsNull,
            Comparator::IsNotNull,
        ])
        .ok_or_else(|| SearchError::new(format!("Invalid comparator for tag: {text}")))?,
    };
    let value = match value {
        Value::Null => FilterValue::Null,
        Value::Number(Number::Int(number)) => FilterValue::Num(number as f64),
        Value::Number(Number::Float(number)) => {
            return Err(SearchError::new(format!(
                "Invalid value for numeric attribute '{key_text}': '{}'",
                py_float_repr(number)
            )));
        }
        Value::Str(text) if key == ExperimentKey::ExperimentId => {
            FilterValue::Str(experiment_id(&text)?)
        }
        Value::Str(text) => FilterValue::Str(text),
        Value::List(items) => FilterValue::List(
            items.iter().map(|item| experiment_id(item)).collect::<Result<_, _>>()?,
        ),
    };
    let is_list = matches!(value, FilterValue::List(_));
    if is_list != matches!(comparator, Comparator::In | Comparator::NotIn) {
        return Err(SearchError::new(format!(
            "Expected a quoted string value for attributes. Got value {raw_value}"
        )));
    }
    Ok(ExperimentComparison { key, comparator, value })
}

/// Parses an `experiments/search` filter. An empty or blank filter has no comparisons.
///
/// Experiment ids in the result are canonical decimal strings (`'+01'` becomes `"1"`).
pub fn parse_experiment_filter(filter: &str) -> Result<Vec<ExperimentComparison>, SearchError> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let raw = parse_comparisons(filter, ClauseStyle::Plain)?;
    let parsed = raw.iter().map(parse_comparison).collect::<Result<Vec<_>, _>>()?;
    parsed.into_iter().map(check).collect()
}

/// Parses an `experiments/search` `order_by` list: each entry `<attribute> [ASC|DESC]`,
/// ascending by default. Tags are rejected ("Invalid order_by entity: tag"); repeated keys are
/// allowed, as in MLflow.
pub fn parse_experiment_order_by(
    order_by: &[String],
) -> Result<Vec<ExperimentOrderBy>, SearchError> {
    order_by
        .iter()
        .map(|clause| {
            let (identifier, ascending) = parse_order_clause(clause)?;
            let (key, _) = identify(&identifier)?;
            if matches!(key, ExperimentKey::Tag(_)) {
                return Err(SearchError::new("Invalid order_by entity: tag"));
            }
            Ok(ExperimentOrderBy { key, ascending })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(filter: &str) -> Vec<ExperimentComparison> {
        parse_experiment_filter(filter).unwrap_or_else(|e| panic!("{filter:?}: {}", e.message))
    }

    fn one(filter: &str) -> ExperimentComparison {
        let mut comparisons = parse(filter);
        assert_eq!(comparisons.len(), 1, "{filter:?}");
        comparisons.remove(0)
    }

    fn err(filter: &str) -> String {
        match parse_experiment_filter(filter) {
            Ok(parsed) => panic!("{filter:?} parsed as {parsed:?}"),
            Err(error) => error.message,
        }
    }

    fn cmp(key: ExperimentKey, comparator: Comparator, value: FilterValue) -> ExperimentComparison {
        ExperimentComparison { key, comparator, value }
    }

    fn s(text: &str) -> FilterValue {
        FilterValue::Str(text.to_string())
    }

    const STRING_SET: &str = "{'=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}";

    #[test]
    fn names() {
        use Comparator::*;
        assert!(parse(" ").is_empty());
        assert_eq!(one("name = 'a'"), cmp(ExperimentKey::Name, Eq, s("a")));
        assert_eq!(one("name != \"a\"").comparator, Ne);
        assert_eq!(one("name LIKE 'a%'").comparator, Like);
        assert_eq!(one("name ilike 'a%'").comparator, ILike);
        for key in ["attribute.name", "`name`", "\"name\""] {
            assert_eq!(one(&format!("{key} = 'a'")).key, ExperimentKey::Name, "{key}");
        }
        let only = "Only ['experiment_id'] attributes support comparison with a list of quoted \
                    string values.";
        assert_eq!(err("name IN ('a','b')"), only);
        assert_eq!(err("name NOT IN ('a')"), only);
        assert_eq!(err("name IN ()"), only);
        assert_eq!(err("name > 'a'"), format!("Invalid comparator '>' not one of '{STRING_SET}'"));
        assert_eq!(
            err("name >> 'a'"),
            format!("Invalid comparator '>>' not one of '{STRING_SET}'")
        );
        assert_eq!(
            err("name = a"),
            "Parameter value is either not quoted or unidentified quote types used for string \
             value a. Use either single or double quotes."
        );
        assert_eq!(err("name = 1"), "Expected a quoted string value for attributes. Got value 1");
        assert_eq!(
            err("name IS NULL"),
            "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"
        );
    }

    #[test]
    fn experiment_ids() {
        use Comparator::*;
        let id = ExperimentKey::ExperimentId;
        assert_eq!(one("experiment_id = '1'"), cmp(id.clone(), Eq, s("1")));
        assert_eq!(one("experiment_id != '1'").comparator, Ne);
        let list =
            |items: &[&str]| FilterValue::List(items.iter().map(|i| i.to_string()).collect());
        assert_eq!(one("experiment_id IN ('4','0')"), cmp(id.clone(), In, list(&["4", "0"])));
        assert_eq!(one("experiment_id not in ('4')"), cmp(id.clone(), NotIn, list(&["4"])));
        for (raw, canonical) in
            [(" 1", "1"), ("+1", "1"), ("-1", "-1"), ("1_0", "10"), ("007", "7")]
        {
            assert_eq!(one(&format!("experiment_id = '{raw}'")).value, s(canonical), "{raw}");
        }
        for bad in ["abc", "", "1__0", "_1", "1.5", "99999999999999999999999"] {
            assert_eq!(
                err(&format!("experiment_id = '{bad}'")),
                format!("Invalid experiment ID '{bad}'. Experiment ID must be a valid integer.")
            );
        }
        assert_eq!(
            err("experiment_id IN ('4','x')"),
            "Invalid experiment ID 'x'. Experiment ID must be a valid integer."
        );
        assert_eq!(
            err("experiment_id = 1"),
            "Expected a quoted string value for attributes. Got value 1"
        );
        assert_eq!(
            err("experiment_id IN (4, 0)"),
            "While parsing a list in the query, expected string value, punctuation, or \
             whitespace, but got different type in list: (4, 0)"
        );
        assert_eq!(err("experiment_id > '1'"), "Invalid comparator for experiment_id: >");
        assert_eq!(err("experiment_id LIKE '1%'"), "Invalid comparator for experiment_id: LIKE");
        assert_eq!(
            err("experiment_id = ('1','2')"),
            "Expected a quoted string value for attributes. Got value ('1','2')"
        );
    }

    #[test]
    fn timestamps() {
        use Comparator::*;
        assert_eq!(
            one("creation_time > 1"),
            cmp(ExperimentKey::CreationTime, Gt, FilterValue::Num(1.0))
        );
        assert_eq!(one("creation_time > -1").value, FilterValue::Num(-1.0));
        assert_eq!(one("last_update_time < 100").key, ExperimentKey::LastUpdateTime);
        for (literal, shown) in [("1.5", "1.5"), ("1e3", "1000.0"), ("1.0", "1.0")] {
            assert_eq!(
                err(&format!("creation_time >= {literal}")),
                format!("Invalid value for numeric attribute 'creation_time': '{shown}'")
            );
        }
        assert_eq!(
            err("creation_time > '1'"),
            "Expected numeric value type for numeric attribute: creation_time. Found '1'"
        );
        assert_eq!(
            err("creation_time IN (1)"),
            "Expected numeric value type for numeric attribute: creation_time. Found (1)"
        );
        assert_eq!(
            err("creation_time LIKE 1"),
            format!("Invalid comparator 'LIKE' not one of '{STRING_SET}")
        );
        assert_eq!(
            err("creation_time not like 1"),
            format!("Invalid comparator 'not like' not one of '{STRING_SET}")
        );
    }

    #[test]
    fn tags() {
        use Comparator::*;
        let tag = |key: &str| ExperimentKey::Tag(key.to_string());
        assert_eq!(one("tags.a = 'x'"), cmp(tag("a"), Eq, s("x")));
        assert_eq!(one("tag.a != 'x'").key, tag("a"));
        assert_eq!(one("tags.`a b` = 'x'").key, tag("a b"));
        assert_eq!(one("tags.a IS NULL"), cmp(tag("a"), IsNull, FilterValue::Null));
        assert_eq!(one("tags.a is not null").comparator, IsNotNull);
        assert_eq!(one("tags.a like '%x'").comparator, Like);
        assert_eq!(err("tags.a > 'x'"), "Invalid comparator for tag: >");
        assert_eq!(
            err("tags.a IN ('x')"),
            "Expected a quoted string value for tag (e.g. 'my-value'). Got value ('x')"
        );
        assert_eq!(
            err("tags.a = 1"),
            "Expected a quoted string value for tag (e.g. 'my-value'). Got value 1"
        );
        assert_eq!(
            parse("name = 'a' and tags.a = 'b' and"),
            vec![cmp(ExperimentKey::Name, Eq, s("a")), cmp(tag("a"), Eq, s("b"))]
        );
    }

    #[test]
    fn entity_key_and_clause_errors() {
        let valid = "Valid entity types are ('attribute', 'tag', 'tags')";
        for prefix in ["params", "metrics", "attributes", "attr", "run", "`attribute`"] {
            assert_eq!(
                err(&format!("{prefix}.name = 'a'")),
                format!("Invalid entity type '{prefix}'. {valid}")
            );
        }
        let keys = "{'name', 'experiment_id', 'creation_time', 'last_update_time'}";
        for key in ["lifecycle_stage", "foo"] {
            assert_eq!(
                err(&format!("{key} = 'x'")),
                format!("Invalid attribute key '{key}' specified. Valid keys are '{keys}'")
            );
        }
        assert_eq!(
            err("tags.a = 'x' OR tags.b = 'y' OR x"),
            "Invalid clause(s) in filter string: OR, OR, x"
        );
        assert_eq!(err("(name = 'a')"), "Invalid clause(s) in filter string: (name = 'a')");
        assert_eq!(err("name = 'a';"), "Invalid clause(s) in filter string: ;");
        assert_eq!(
            err("name = 'a'; name = 'b'"),
            "Search filter contained multiple expression \"name = 'a'; name = 'b'\". Provide \
             AND-ed expression list."
        );
        assert_eq!(
            err("tags.a IS NULL and name IS NULL"),
            "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"
        );
    }

    fn order(clauses: &[&str]) -> Result<Vec<ExperimentOrderBy>, String> {
        let clauses: Vec<String> = clauses.iter().map(|c| c.to_string()).collect();
        parse_experiment_order_by(&clauses).map_err(|e| e.message)
    }

    #[test]
    fn order_by() {
        let by = |key, ascending| ExperimentOrderBy { key, ascending };
        assert_eq!(order(&["name"]).unwrap(), vec![by(ExperimentKey::Name, true)]);
        assert_eq!(order(&["name DESC"]).unwrap(), vec![by(ExperimentKey::Name, false)]);
        assert_eq!(
            order(&["experiment_id ASC"]).unwrap(),
            vec![by(ExperimentKey::ExperimentId, true)]
        );
        assert_eq!(
            order(&["creation_time desc"]).unwrap(),
            vec![by(ExperimentKey::CreationTime, false)]
        );
        assert_eq!(
            order(&["last_update_time"]).unwrap(),
            vec![by(ExperimentKey::LastUpdateTime, true)]
        );
        assert_eq!(order(&["attribute.name"]).unwrap(), vec![by(ExperimentKey::Name, true)]);
        assert_eq!(order(&["`name`"]).unwrap(), vec![by(ExperimentKey::Name, true)]);
        assert_eq!(
            order(&["name", "name DESC"]).unwrap(),
            vec![by(ExperimentKey::Name, true), by(ExperimentKey::Name, false)]
        );
        assert_eq!(order(&["tags.a"]).unwrap_err(), "Invalid order_by entity: tag");
        assert_eq!(order(&["tag.a DESC", "foo"]).unwrap_err(), "Invalid order_by entity: tag");
        assert_eq!(
            order(&["params.a"]).unwrap_err(),
            "Invalid entity type 'params'. Valid entity types are ('attribute', 'tag', 'tags')"
        );
        assert_eq!(
            order(&["name", "lifecycle_stage"]).unwrap_err(),
            "Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{'name', \
             'experiment_id', 'creation_time', 'last_update_time'}'"
        );
        assert_eq!(
            order(&["name UP"]).unwrap_err(),
            "Invalid ordering key in order_by clause 'name UP'."
        );
        assert_eq!(order(&[""]).unwrap_err(), "Invalid order_by clause ''. Could not be parsed.");
    }
}
