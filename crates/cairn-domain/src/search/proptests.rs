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
