//! Property tests for the search grammar: arbitrary input never panics, and generated
//! comparisons and orderings survive rendering to MLflow syntax and parsing back.

use proptest::prelude::*;

use super::*;

const NUMERIC: [Comparator; 6] = NUMERIC_COMPARATORS;
const KEY_VALUE: [Comparator; 6] = KEY_VALUE_COMPARATORS;
const STRINGS: [Comparator; 4] =
    [Comparator::Eq, Comparator::Ne, Comparator::Like, Comparator::ILike];

/// Keys as MLflow allows them: alphanumerics, `_ - . / :` and spaces.
fn key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_./: -]{1,12}"
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 %_./:-]{0,12}"
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![any::<i32>().prop_map(f64::from), -1e12f64..1e12, Just(0.5), Just(-1e-9)]
}

fn quoted_key(key: &str, backticks: bool) -> String {
    if backticks { format!("`{key}`") } else { format!("\"{key}\"") }
}

fn render_value(value: &FilterValue, double_quotes: bool) -> String {
    let quote = |text: &str| {
        if double_quotes { format!("\"{text}\"") } else { format!("'{text}'") }
    };
    match value {
        FilterValue::Str(text) => quote(text),
        FilterValue::Num(number) => number.to_string(),
        FilterValue::List(items) => {
            format!("({})", items.iter().map(|item| quote(item)).collect::<Vec<_>>().join(", "))
        }
        FilterValue::Null => String::new(),
    }
}

fn keyword_case(word: &str, upper: bool) -> String {
    if upper { word.to_string() } else { word.to_lowercase() }
}

fn render(identifier: String, comparator: Comparator, value: &FilterValue, flip: bool) -> String {
    let comparator = keyword_case(comparator.as_str(), flip);
    format!("{identifier} {comparator} {}", render_value(value, flip)).trim_end().to_string()
}

fn string_value(comparator: Comparator) -> BoxedStrategy<FilterValue> {
    match comparator {
        Comparator::IsNull | Comparator::IsNotNull => Just(FilterValue::Null).boxed(),
        Comparator::In | Comparator::NotIn => {
            prop::collection::vec(text(), 1..4).prop_map(FilterValue::List).boxed()
        }
        _ => text().prop_map(FilterValue::Str).boxed(),
    }
}

/// A valid run comparison and one way of writing it.
fn run_comparison() -> impl Strategy<Value = (RunComparison, String)> {
    let metric = (key(), prop::sample::select(&NUMERIC[..]), number(), any::<bool>()).prop_map(
        |(key, comparator, number, backticks)| {
            let value = FilterValue::Num(number);
            let text = render(
                format!("metrics.{}", quoted_key(&key, backticks)),
                comparator,
                &value,
                false,
            );
            (RunComparison { key: RunKey::Metric(key), comparator, value }, text)
        },
    );
    let key_value = (key(), prop::sample::select(&KEY_VALUE[..]), any::<bool>(), any::<bool>())
        .prop_flat_map(|(key, comparator, is_param, flip)| {
            string_value(comparator).prop_map(move |value| {
                let prefix = if is_param { "params" } else { "tag" };
                let identifier = format!("{prefix}.{}", quoted_key(&key, flip));
                let text = render(identifier, comparator, &value, flip);
                let key =
                    if is_param { RunKey::Param(key.clone()) } else { RunKey::Tag(key.clone()) };
                (RunComparison { key, comparator, value }, text)
            })
        });
    let attributes = vec![
        RunAttribute::RunId,
        RunAttribute::RunName,
        RunAttribute::Status,
        RunAttribute::UserId,
        RunAttribute::ArtifactUri,
    ];
    let string_attribute = (
        prop::sample::select(attributes),
        prop::sample::select(&STRING_ATTRIBUTE_COMPARATORS[..]),
        any::<bool>(),
    )
        .prop_filter("lists are for run_id", |(attribute, comparator, _)| {
            *attribute == RunAttribute::RunId
                || !matches!(comparator, Comparator::In | Comparator::NotIn)
        })
        .prop_flat_map(|(attribute, comparator, flip)| {
            string_value(comparator).prop_map(move |value| {
                let prefix = if flip { "attributes." } else { "" };
                let text =
                    render(format!("{prefix}{}", attribute.as_str()), comparator, &value, flip);
                (RunComparison { key: RunKey::Attribute(attribute), comparator, value }, text)
            })
        });
    let times = vec![RunAttribute::StartTime, RunAttribute::EndTime];
    let numeric_attribute =
        (prop::sample::select(times), prop::sample::select(&NUMERIC[..]), number()).prop_map(
            |(attribute, comparator, number)| {
                let value = FilterValue::Num(number);
                let text = render(attribute.as_str().to_string(), comparator, &value, false);
                (RunComparison { key: RunKey::Attribute(attribute), comparator, value }, text)
            },
        );
    let fields = vec![DatasetField::Name, DatasetField::Digest, DatasetField::Context];
    let dataset = (
        prop::sample::select(fields),
        prop::sample::select(&STRING_ATTRIBUTE_COMPARATORS[..]),
        any::<bool>(),
    )
        .prop_flat_map(|(field, comparator, flip)| {
            string_value(comparator).prop_map(move |value| {
                let text = render(format!("datasets.{}", field.as_str()), comparator, &value, flip);
                (RunComparison { key: RunKey::Dataset(field), comparator, value }, text)
            })
        });
    prop_oneof![metric, key_value, string_attribute, numeric_attribute, dataset]
}

/// A valid experiment comparison and one way of writing it.
fn experiment_comparison() -> impl Strategy<Value = (ExperimentComparison, String)> {
    let name = (prop::sample::select(&STRINGS[..]), text(), any::<bool>()).prop_map(
        |(comparator, text, flip)| {
            let value = FilterValue::Str(text);
            let rendered = render("name".to_string(), comparator, &value, flip);
            (ExperimentComparison { key: ExperimentKey::Name, comparator, value }, rendered)
        },
    );
    let ids = vec![Comparator::Eq, Comparator::Ne, Comparator::In, Comparator::NotIn];
    let id = (prop::sample::select(ids), prop::collection::vec(any::<u32>(), 1..4), any::<bool>())
        .prop_map(|(comparator, ids, flip)| {
            let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
            let value = if matches!(comparator, Comparator::In | Comparator::NotIn) {
                FilterValue::List(ids)
            } else {
                FilterValue::Str(ids[0].clone())
            };
            let rendered = render("experiment_id".to_string(), comparator, &value, flip);
            (ExperimentComparison { key: ExperimentKey::ExperimentId, comparator, value }, rendered)
        });
    let time = (any::<bool>(), prop::sample::select(&NUMERIC[..]), any::<i32>()).prop_map(
        |(created, comparator, millis)| {
            let (key, name) = if created {
                (ExperimentKey::CreationTime, "creation_time")
            } else {
                (ExperimentKey::LastUpdateTime, "last_update_time")
            };
            let value = FilterValue::Num(f64::from(millis));
            let rendered = render(name.to_string(), comparator, &value, false);
            (ExperimentComparison { key, comparator, value }, rendered)
        },
    );
    let tag = (key(), prop::sample::select(&KEY_VALUE[..]), any::<bool>()).prop_flat_map(
        |(key, comparator, flip)| {
            string_value(comparator).prop_map(move |value| {
                let rendered =
                    render(format!("tags.{}", quoted_key(&key, flip)), comparator, &value, flip);
                (
                    ExperimentComparison {
                        key: ExperimentKey::Tag(key.clone()),
                        comparator,
                        value,
                    },
                    rendered,
                )
            })
        },
    );
    prop_oneof![name, id, time, tag]
}

fn and_join(parts: &[String], upper: bool) -> String {
    parts.join(if upper { " AND " } else { " and " })
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(input in any::<String>()) {
        let _ = parse_run_filter(&input);
        let _ = parse_experiment_filter(&input);
        let _ = parse_run_order_by(std::slice::from_ref(&input));
        let _ = parse_experiment_order_by(std::slice::from_ref(&input));
    }

    #[test]
    fn grammar_like_input_never_panics(input in "[a-z0-9_ .'\"`()<>=!,;%+\\\\-]{0,40}") {
        let _ = parse_run_filter(&input);
        let _ = parse_experiment_filter(&input);
        let _ = parse_run_order_by(std::slice::from_ref(&input));
        let _ = parse_experiment_order_by(std::slice::from_ref(&input));
    }

    #[test]
    fn run_comparisons_round_trip(items in prop::collection::vec(run_comparison(), 1..5), upper: bool) {
        let (expected, parts): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let filter = and_join(&parts, upper);
        prop_assert_eq!(parse_run_filter(&filter).map_err(|e| e.message), Ok(expected), "{}", filter);
    }

    #[test]
    fn experiment_comparisons_round_trip(
        items in prop::collection::vec(experiment_comparison(), 1..5),
        upper: bool,
    ) {
        let (expected, parts): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let filter = and_join(&parts, upper);
        prop_assert_eq!(parse_experiment_filter(&filter).map_err(|e| e.message), Ok(expected), "{}", filter);
    }

    #[test]
    fn run_order_by_round_trips(
        keys in prop::collection::btree_set(key(), 1..4),
        directions in prop::collection::vec(prop::option::of(any::<bool>()), 4),
    ) {
        let mut expected = Vec::new();
        let mut clauses = Vec::new();
        for ((index, key), direction) in keys.into_iter().enumerate().zip(directions) {
            let (run_key, prefix) = match index % 3 {
                0 => (RunKey::Metric(key.clone()), "metrics"),
                1 => (RunKey::Param(key.clone()), "params"),
                _ => (RunKey::Tag(key.clone()), "tags"),
            };
            let suffix = match direction {
                None => "",
                Some(true) => " ASC",
                Some(false) => " desc",
            };
            clauses.push(format!("{prefix}.{}{suffix}", quoted_key(&key, index % 2 == 0)));
            expected.push(RunOrderBy { key: run_key, ascending: direction.unwrap_or(true) });
        }
        prop_assert_eq!(parse_run_order_by(&clauses).map_err(|e| e.message), Ok(expected));
    }
}

// Fuzzing on a budget (issue 10's hostile input): token soup built from the grammar's own words
// and its near misses, fed to every parser of the search grammar, and a re-rendering property
// for whatever of it parses.

/// Fixed case count of the fuzzing properties: enough to reach every token pairing often, small
/// enough that the whole set runs in seconds in a debug build.
const FUZZ_CASES: u32 = 512;

/// Words of the grammar, of its neighbours (SQL, MLflow's other entities) and hostile odds and
/// ends: quotes, escapes, NUL, right-to-left override, huge and odd numbers.
const WORDS: &[&str] = &[
    "metrics.",
    "metric.",
    "params.",
    "param.",
    "parameters.",
    "tags.",
    "tag.",
    "attributes.",
    "attribute.",
    "attr.",
    "run.",
    "datasets.",
    "dataset.",
    "experiment.",
    "model.",
    "name",
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "created",
    "Created",
    "run name",
    "creation_time",
    "last_update_time",
    "experiment_id",
    "user_id",
    "artifact_uri",
    "model_id",
    "version_number",
    "source_run_id",
    "digest",
    "context",
    "`",
    "\"",
    "'",
    "(",
    ")",
    "()",
    ",",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "=>",
    ">>",
    "LIKE",
    "like",
    "ILIKE",
    "IN",
    "in",
    "NOT",
    "NOT IN",
    "not in",
    "IS",
    "is",
    "NULL",
    "null",
    "IS NULL",
    "IS NOT NULL",
    "AND",
    "and",
    "OR",
    "ASC",
    "DESC",
    "desc",
    "%",
    "_",
    "\\",
    "\\'",
    "''",
    "-",
    "+",
    ".",
    "..",
    "1e308",
    "-1e309",
    "1.5",
    "-0",
    "NaN",
    "inf",
    "-Infinity",
    "0x10",
    "1_000",
    "99999999999999999999999",
    "00",
    ";",
    "--",
    "/*",
    "*/",
    "\0",
    "\u{7f}",
    "é",
    "🙂",
    "\u{202e}",
    "\u{feff}",
    "\n",
    "\t",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => "[a-z0-9_.]{1,6}",
        1 => "'[^']{0,6}'",
        1 => "`[^`]{0,6}`",
        1 => any::<i64>().prop_map(|number| number.to_string()),
        1 => any::<f64>().prop_map(|number| number.to_string()),
    ]
}

/// Words joined by nothing, a space or a newline.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((word(), prop::sample::select(&["", " ", " ", "\n"][..])), 0..14)
        .prop_map(|parts| parts.into_iter().map(|(word, gap)| word + gap).collect())
}

/// Comparison-shaped soup: `identifier comparator value`, joined by AND (sometimes OR).
fn clause_soup() -> impl Strategy<Value = String> {
    let identifier = (
        prop::sample::select(
            &[
                "metrics.",
                "params.",
                "tags.",
                "attributes.",
                "datasets.",
                "",
                "run.",
                "tag.",
                "metric.",
            ][..],
        ),
        prop_oneof![
            prop::sample::select(
                &[
                    "name",
                    "run_id",
                    "status",
                    "start_time",
                    "end_time",
                    "run_name",
                    "digest",
                    "context",
                    "experiment_id",
                    "creation_time",
                    "last_update_time",
                    "user_id",
                    "source_run_id",
                    "model_id",
                    "created",
                ][..]
            )
            .prop_map(str::to_string),
            key().prop_map(|key| format!("`{key}`")),
            key().prop_map(|key| format!("\"{key}\"")),
            "[a-z_]{1,5}",
        ],
    )
        .prop_map(|(prefix, key)| format!("{prefix}{key}"));
    let comparator = prop::sample::select(
        &[
            "=",
            "!=",
            ">",
            ">=",
            "<",
            "<=",
            "LIKE",
            "ilike",
            "IN",
            "NOT IN",
            "IS NULL",
            "IS NOT NULL",
            "<>",
            "==",
        ][..],
    );
    let value = prop_oneof![
        text().prop_map(|text| format!("'{text}'")),
        text().prop_map(|text| format!("\"{text}\"")),
        number().prop_map(|number| number.to_string()),
        prop::collection::vec(text(), 0..3).prop_map(|items| format!(
            "({})",
            items.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ")
        )),
        Just(String::new()),
        word(),
    ];
    let clause = (identifier, comparator, value)
        .prop_map(|(identifier, comparator, value)| format!("{identifier} {comparator} {value}"));
    (prop::collection::vec(clause, 1..4), prop::sample::select(&[" AND ", " and ", " OR "][..]))
        .prop_map(|(clauses, joiner)| clauses.join(joiner))
}

fn parse_everything(input: &str) {
    let _ = parse_run_filter(input);
    let _ = parse_experiment_filter(input);
    let _ = parse_generic_filter(input);
    let _ = parse_run_order_by(std::slice::from_ref(&input.to_string()));
    let _ = parse_experiment_order_by(std::slice::from_ref(&input.to_string()));
    let clauses: Vec<String> = input.split(',').map(str::to_string).collect();
    let _ = parse_run_order_by(&clauses);
    let _ = parse_experiment_order_by(&clauses);
}

/// A string as a quoted filter value, or `None` when no quote character can hold it verbatim
/// (MLflow does not unescape).
fn quote_value(text: &str) -> Option<String> {
    if text.contains('\\') {
        return None;
    }
    if !text.contains('\'') {
        return Some(format!("'{text}'"));
    }
    (!text.contains('"')).then(|| format!("\"{text}\""))
}

/// A key as a quoted identifier part, or `None` when neither backticks nor double quotes can.
fn quote_key(key: &str) -> Option<String> {
    if !key.contains('`') {
        return Some(format!("`{key}`"));
    }
    (!key.contains('"') && !key.contains('\\')).then(|| format!("\"{key}\""))
}

fn render_filter_value(value: &FilterValue) -> Option<String> {
    match value {
        FilterValue::Str(text) => quote_value(text),
        // Whole numbers as integers: time attributes take no fraction.
        FilterValue::Num(number) if number.fract() == 0.0 && number.abs() < 9.2e18 => {
            Some(format!("{}", *number as i64))
        }
        FilterValue::Num(number) if number.is_finite() => Some(format!("{number:?}")),
        FilterValue::Num(_) => None,
        FilterValue::List(items) => {
            if items.iter().any(|item| item.contains(['\'', '\\', '"'])) {
                return None;
            }
            Some(format!(
                "({})",
                items.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ")
            ))
        }
        FilterValue::Null => Some(String::new()),
    }
}

/// Renders parsed run comparisons back to MLflow syntax (`None` when a part cannot be).
fn render_run_filter(comparisons: &[RunComparison]) -> Option<String> {
    let mut parts = Vec::new();
    for comparison in comparisons {
        let identifier = match &comparison.key {
            RunKey::Metric(key) => format!("metrics.{}", quote_key(key)?),
            RunKey::Param(key) => format!("params.{}", quote_key(key)?),
            RunKey::Tag(key) => format!("tags.{}", quote_key(key)?),
            RunKey::Attribute(attribute) => format!("attributes.{}", attribute.as_str()),
            RunKey::Dataset(field) => format!("datasets.{}", field.as_str()),
        };
        let value = render_filter_value(&comparison.value)?;
        parts
            .push(format!("{identifier} {} {value}", comparison.comparator).trim_end().to_string());
    }
    Some(parts.join(" AND "))
}

/// Renders parsed experiment comparisons back to MLflow syntax.
fn render_experiment_filter(comparisons: &[ExperimentComparison]) -> Option<String> {
    let mut parts = Vec::new();
    for comparison in comparisons {
        let identifier = match &comparison.key {
            ExperimentKey::Name => "name".to_string(),
            ExperimentKey::ExperimentId => "experiment_id".to_string(),
            ExperimentKey::CreationTime => "creation_time".to_string(),
            ExperimentKey::LastUpdateTime => "last_update_time".to_string(),
            ExperimentKey::Tag(key) => format!("tags.{}", quote_key(key)?),
        };
        let value = render_filter_value(&comparison.value)?;
        parts
            .push(format!("{identifier} {} {value}", comparison.comparator).trim_end().to_string());
    }
    Some(parts.join(" AND "))
}

/// Renders generic `(identifier, comparator, value)` triples back to MLflow syntax.
fn render_generic_filter(comparisons: &[(String, Comparator, FilterValue)]) -> Option<String> {
    let mut parts = Vec::new();
    for (identifier, comparator, value) in comparisons {
        // An identifier whose "entity" is not a word (`` `.` `` splits into `` ` `` and `` ` ``)
        // has no rendering of its own; the callers refuse such keys anyway.
        let identifier = match identifier.split_once('.') {
            Some((entity, key))
                if !entity.is_empty()
                    && entity.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                format!("{entity}.{}", quote_key(key)?)
            }
            Some(_) => return None,
            None => quote_key(identifier)?,
        };
        let value = render_filter_value(value)?;
        parts.push(format!("{identifier} {comparator} {value}").trim_end().to_string());
    }
    Some(parts.join(" AND "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: FUZZ_CASES, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(input in token_soup()) {
        parse_everything(&input);
    }

    #[test]
    fn clause_soup_never_panics(input in clause_soup()) {
        parse_everything(&input);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        parse_everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn order_by_lists_never_panic(clauses in prop::collection::vec(token_soup(), 0..4)) {
        let _ = parse_run_order_by(&clauses);
        let _ = parse_experiment_order_by(&clauses);
    }

    /// Whatever parses, rendered back to MLflow syntax, parses to the same comparisons.
    #[test]
    fn parsed_filters_render_and_parse_back(input in prop_oneof![clause_soup(), token_soup()]) {
        if let Ok(parsed) = parse_run_filter(&input)
            && let Some(rendered) = render_run_filter(&parsed)
        {
            prop_assert_eq!(parse_run_filter(&rendered).map_err(|e| e.message), Ok(parsed), "{} -> {}", input, rendered);
        }
        if let Ok(parsed) = parse_experiment_filter(&input)
            && let Some(rendered) = render_experiment_filter(&parsed)
        {
            prop_assert_eq!(parse_experiment_filter(&rendered).map_err(|e| e.message), Ok(parsed), "{} -> {}", input, rendered);
        }
        if let Ok(parsed) = parse_generic_filter(&input)
            && let Some(rendered) = render_generic_filter(&parsed)
        {
            prop_assert_eq!(parse_generic_filter(&rendered).map_err(|e| e.message), Ok(parsed), "{} -> {}", input, rendered);
        }
    }

    #[test]
    fn experiment_order_by_round_trips(
        keys in prop::collection::vec(
            prop::sample::select(&["name", "experiment_id", "creation_time", "last_update_time"][..]),
            1..4,
        ),
        directions in prop::collection::vec(prop::option::of(any::<bool>()), 4),
    ) {
        let mut expected = Vec::new();
        let mut clauses = Vec::new();
        for (name, direction) in keys.into_iter().zip(directions) {
            let key = match name {
                "name" => ExperimentKey::Name,
                "experiment_id" => ExperimentKey::ExperimentId,
                "creation_time" => ExperimentKey::CreationTime,
                _ => ExperimentKey::LastUpdateTime,
            };
            let suffix = match direction {
                None => "",
                Some(true) => " asc",
                Some(false) => " DESC",
            };
            clauses.push(format!("{name}{suffix}"));
            expected.push(ExperimentOrderBy { key, ascending: direction.unwrap_or(true) });
        }
        prop_assert_eq!(parse_experiment_order_by(&clauses).map_err(|e| e.message), Ok(expected));
    }
}
