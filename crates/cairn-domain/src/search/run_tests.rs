//! Unit tests for the `runs/search` grammar; expected messages were taken from MLflow 3.17.2
//! (`SearchUtils.parse_search_filter` followed by the SQL store's checks).

use super::*;

fn parse(filter: &str) -> Vec<RunComparison> {
    parse_run_filter(filter).unwrap_or_else(|e| panic!("{filter:?}: {}", e.message))
}

fn one(filter: &str) -> RunComparison {
    let mut comparisons = parse(filter);
    assert_eq!(comparisons.len(), 1, "{filter:?}");
    comparisons.remove(0)
}

fn err(filter: &str) -> String {
    match parse_run_filter(filter) {
        Ok(parsed) => panic!("{filter:?} parsed as {parsed:?}"),
        Err(error) => error.message,
    }
}

fn cmp(key: RunKey, comparator: Comparator, value: FilterValue) -> RunComparison {
    RunComparison { key, comparator, value }
}

fn metric(key: &str) -> RunKey {
    RunKey::Metric(key.to_string())
}

fn param(key: &str) -> RunKey {
    RunKey::Param(key.to_string())
}

fn tag(key: &str) -> RunKey {
    RunKey::Tag(key.to_string())
}

fn s(text: &str) -> FilterValue {
    FilterValue::Str(text.to_string())
}

fn list(items: &[&str]) -> FilterValue {
    FilterValue::List(items.iter().map(|item| item.to_string()).collect())
}

const METRIC_SET: &str = "{'=', '!=', '>', '>=', '<', '<='}";
const KV_SET: &str = "{'=', '!=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL'}";
const STRING_SET: &str = "{'=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}";

#[test]
fn empty_and_blank_filters_have_no_comparisons() {
    assert!(parse("").is_empty());
    assert!(parse("   \t\n").is_empty());
}

#[test]
fn metrics_take_numeric_literals() {
    use Comparator::*;
    assert_eq!(one("metrics.acc > 0.5"), cmp(metric("acc"), Gt, FilterValue::Num(0.5)));
    assert_eq!(one("metrics.acc>0.5"), cmp(metric("acc"), Gt, FilterValue::Num(0.5)));
    assert_eq!(one("metric.acc = 1"), cmp(metric("acc"), Eq, FilterValue::Num(1.0)));
    for (filter, value) in [
        ("metrics.a != -1", -1.0),
        ("metrics.a >= 1e5", 1e5),
        ("metrics.a <= 1.5e-3", 1.5e-3),
        ("metrics.a < .5", 0.5),
        ("metrics.a < 5.", 5.0),
    ] {
        assert_eq!(one(filter).value, FilterValue::Num(value), "{filter}");
    }
    assert_eq!(one("metrics.`val/loss` < 1").key, metric("val/loss"));
    assert_eq!(one("metrics.\"val loss\" < 1").key, metric("val loss"));
    assert_eq!(one("metrics.a.b.c > 1").key, metric("a.b.c"));
    assert_eq!(one("`metrics`.acc > 1").key, metric("acc"));
    assert_eq!(one("metrics.é > 1").key, metric("é"));
}

#[test]
fn metric_errors() {
    assert_eq!(err("metrics.acc = '0.5'"), "Expected numeric value type for metric. Found '0.5'");
    assert_eq!(
        err("metrics.acc = \"0.5\""),
        "Expected numeric value type for metric. Found \"0.5\""
    );
    assert_eq!(err("metrics.acc > 1e"), "Expected numeric value type for metric. Found 1e");
    assert_eq!(err("metrics.acc > NaN"), "Expected numeric value type for metric. Found NaN");
    assert_eq!(err("metrics.acc IN (1,2)"), "Expected numeric value type for metric. Found (1,2)");
    assert_eq!(
        err("metrics.acc IS NULL"),
        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'acc'"
    );
    for op in [">>", "=>", "==", "<>"] {
        assert_eq!(
            err(&format!("metrics.acc {op} 1")),
            format!("Invalid comparator '{op}' not one of '{METRIC_SET}")
        );
    }
    assert_eq!(
        err("metrics.acc like 1"),
        format!("Invalid comparator 'LIKE' not one of '{METRIC_SET}")
    );
}

#[test]
fn params_and_tags_take_quoted_strings() {
    use Comparator::*;
    assert_eq!(one("params.lr = '0.01'"), cmp(param("lr"), Eq, s("0.01")));
    assert_eq!(one("params.lr = \"0.01\""), cmp(param("lr"), Eq, s("0.01")));
    for prefix in ["param", "params", "parameter", "parameters"] {
        assert_eq!(one(&format!("{prefix}.lr != 'a'")).key, param("lr"), "{prefix}");
    }
    assert_eq!(one("params.lr like '%a'").comparator, Like);
    assert_eq!(one("params.lr ILIKE '%a'").comparator, ILike);
    assert_eq!(one("params.lr IS NULL"), cmp(param("lr"), IsNull, FilterValue::Null));
    assert_eq!(one("params.lr is not null"), cmp(param("lr"), IsNotNull, FilterValue::Null));
    assert_eq!(one("params.\"my param\" = 'a'").key, param("my param"));
    assert_eq!(one("params.`my param` = 'a'").key, param("my param"));
    assert_eq!(one("params.and = 'a'").key, param("and"));
    assert_eq!(one("params.1a = 'a'").key, param("1a"));
    assert_eq!(one("tags.`mlflow.user` = 'x'"), cmp(tag("mlflow.user"), Eq, s("x")));
    assert_eq!(one("tags.mlflow.user = 'x'").key, tag("mlflow.user"));
    assert_eq!(one("tag.'a' = 'x'").key, tag("a"));
    assert_eq!(one("tags.a = ''").value, s(""));
    assert_eq!(one("tags.a = \"x's\"").value, s("x's"));
    // MLflow keeps the text between the quotes verbatim.
    assert_eq!(one("tags.a = 'it''s'").value, s("it''s"));
    assert_eq!(one(r"tags.a = 'it\'s'").value, s(r"it\'s"));
    assert_eq!(one("tags.a ILIKE '%x_'").value, s("%x_"));
}

#[test]
fn param_and_tag_errors() {
    assert_eq!(
        err("params.lr = 0.01"),
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 0.01"
    );
    assert_eq!(
        err("tags.a = 1"),
        "Expected a quoted string value for tag (e.g. 'my-value'). Got value 1"
    );
    assert_eq!(
        err("params.a = NULL"),
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value NULL"
    );
    assert_eq!(
        err("params.lr IN ('a')"),
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value ('a')"
    );
    for (value, shown) in [("lr", "lr"), ("b.c", "b.c"), ("`x`", "`x`")] {
        assert_eq!(
            err(&format!("params.a = {value}")),
            format!(
                "Parameter value is either not quoted or unidentified quote types used for string \
                 value {shown}. Use either single or double quotes."
            )
        );
    }
    assert_eq!(err("params.lr > 'a'"), format!("Invalid comparator '>' not one of '{KV_SET}'"));
    assert_eq!(
        err("params.a NOT LIKE 'x'"),
        format!("Invalid comparator 'NOT LIKE' not one of '{KV_SET}'")
    );
    assert_eq!(
        err("params.a RLIKE 'x'"),
        format!("Invalid comparator 'RLIKE' not one of '{KV_SET}'")
    );
    assert_eq!(err("tags.a > 'x'"), format!("Invalid comparator '>' not one of '{KV_SET}"));
}

#[test]
fn attributes() {
    use Comparator::*;
    let status = RunKey::Attribute(RunAttribute::Status);
    for prefix in ["attributes.", "attribute.", "attr.", "run.", "", "`attr`."] {
        assert_eq!(one(&format!("{prefix}status = 'RUNNING'")).key, status, "{prefix}");
    }
    assert_eq!(one("status LIKE 'RUN%'"), cmp(status.clone(), Like, s("RUN%")));
    assert_eq!(one("status != 'RUNNING'").comparator, Ne);
    let run_id = RunKey::Attribute(RunAttribute::RunId);
    assert_eq!(one("run_id IN ('a','b')"), cmp(run_id.clone(), In, list(&["a", "b"])));
    assert_eq!(one("run_id in ('a')"), cmp(run_id.clone(), In, list(&["a"])));
    assert_eq!(one("run_id not  in ('a',)"), cmp(run_id.clone(), NotIn, list(&["a"])));
    assert_eq!(one("run_id IN(\"a\")").value, list(&["a"]));
    let start = RunKey::Attribute(RunAttribute::StartTime);
    assert_eq!(one("start_time > 1"), cmp(start.clone(), Gt, FilterValue::Num(1.0)));
    assert_eq!(one("start_time > 1.5").value, FilterValue::Num(1.5));
    assert_eq!(one("created > 1").key, start);
    assert_eq!(one("Created > 1").key, start);
    assert_eq!(one("end_time <= 5").key, RunKey::Attribute(RunAttribute::EndTime));
    let run_name = RunKey::Attribute(RunAttribute::RunName);
    for key in ["run_name", "`run name`", "`Run name`", "\"Run Name\"", "attributes.`run name`"] {
        assert_eq!(one(&format!("{key} = 'x'")).key, run_name, "{key}");
    }
    assert_eq!(one("user_id = 'u'").key, RunKey::Attribute(RunAttribute::UserId));
    assert_eq!(one("artifact_uri = 'x'").key, RunKey::Attribute(RunAttribute::ArtifactUri));
}

#[test]
fn attribute_errors() {
    let keys = "{'run_id', 'run_name', 'status', 'start_time', 'end_time', 'user_id', \
                'artifact_uri', 'created', 'Created', 'run name', 'Run name', 'Run Name'}";
    for key in ["foo", "experiment_id", "lifecycle_stage", "tags"] {
        assert_eq!(
            err(&format!("{key} = 'x'")),
            format!("Invalid attribute key '{key}' specified. Valid keys are '{keys}'")
        );
    }
    assert_eq!(err("attributes.foo = 'x'"), err("foo = 'x'"));
    let only_run_id =
        "Only ['run_id'] attributes support comparison with a list of quoted string values.";
    assert_eq!(err("status IN ('RUNNING')"), only_run_id);
    assert_eq!(err("status = ('a')"), only_run_id);
    assert_eq!(
        err("run_id IN ()"),
        "While parsing a list in the query, expected a non-empty list of string values, but got \
         empty list"
    );
    assert_eq!(
        err("run_id IN (1,2)"),
        "While parsing a list in the query, expected string value, punctuation, or whitespace, \
         but got different type in list: (1, 2)"
    );
    assert_eq!(
        err("start_time > '1'"),
        "Expected numeric value type for numeric attribute: start_time. Found '1'"
    );
    assert_eq!(
        err("created IN (1)"),
        "Expected numeric value type for numeric attribute: created. Found (1)"
    );
    assert_eq!(err("status = 1"), "Expected a quoted string value for attributes. Got value 1");
    assert_eq!(
        err("status IS NULL"),
        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'attribute' 'status'"
    );
    assert_eq!(err("status > 'a'"), format!("Invalid comparator '>' not one of '{STRING_SET}'"));
    assert_eq!(
        err("start_time LIKE 1"),
        format!("Invalid comparator 'LIKE' not one of '{STRING_SET}")
    );
    // MLflow accepts these and then builds odd SQL; a list needs IN / NOT IN here.
    assert_eq!(
        err("run_id = ('a','b')"),
        "Expected a quoted string value for attributes. Got value ('a','b')"
    );
    assert_eq!(
        err("datasets.name LIKE ('a')"),
        "Expected a quoted string value for dataset attributes. Got value ('a')"
    );
}

#[test]
fn datasets() {
    use Comparator::*;
    let name = RunKey::Dataset(DatasetField::Name);
    assert_eq!(one("datasets.name = 'x'"), cmp(name.clone(), Eq, s("x")));
    assert_eq!(one("dataset.digest = 'x'").key, RunKey::Dataset(DatasetField::Digest));
    assert_eq!(one("datasets.context = 'train'").key, RunKey::Dataset(DatasetField::Context));
    assert_eq!(one("datasets.name IN ('a','b')"), cmp(name.clone(), In, list(&["a", "b"])));
    assert_eq!(one("datasets.name NOT IN ('a')"), cmp(name, NotIn, list(&["a"])));
    assert_eq!(
        err("datasets.foo = 'x'"),
        "Invalid dataset key 'foo' specified. Valid keys are '{'name', 'digest', 'context'}'"
    );
    assert_eq!(
        err("datasets.name > 'x'"),
        format!("Invalid comparator '>' not one of '{STRING_SET}")
    );
    assert_eq!(
        err("datasets.name = 1"),
        "Expected a quoted string value for dataset attributes. Got value 1"
    );
    assert_eq!(
        err("datasets.name IS NULL"),
        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'dataset' 'name'"
    );
}

#[test]
fn entity_errors() {
    let valid = "Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']";
    assert_eq!(err("foo.bar = 'x'"), format!("Invalid entity type 'foo'. {valid}"));
    assert_eq!(err("\"metrics\".acc > 1"), format!("Invalid entity type '\"metrics\"'. {valid}"));
    assert_eq!(err("`tags.a` = 'b'"), format!("Invalid entity type '`tags'. {valid}"));
    assert_eq!(
        err("params.a = 'x'andparams.b='y'"),
        format!("Invalid entity type 'andparams'. {valid}")
    );
}

#[test]
fn and_joins_comparisons() {
    for filter in [
        "metrics.acc > 0.5 AND params.lr = '0.01'",
        "metrics.acc > 0.5 and params.lr = '0.01'",
        "metrics.acc > 0.5 And params.lr = '0.01'",
        "metrics.acc > 0.5\tand\nparams.lr = '0.01'",
        "metrics.acc>0.5 and params.lr='0.01'and",
        "and metrics.acc > 0.5 and and params.lr = '0.01' and ",
        // MLflow only checks that every piece is a comparison or AND.
        "metrics.acc > 0.5 params.lr = '0.01'",
    ] {
        assert_eq!(
            parse(filter),
            vec![
                cmp(metric("acc"), Comparator::Gt, FilterValue::Num(0.5)),
                cmp(param("lr"), Comparator::Eq, s("0.01")),
            ],
            "{filter}"
        );
    }
}

#[test]
fn invalid_clauses() {
    for (filter, clauses) in [
        ("a = 'x' OR b = 'y'", "'OR'"),
        ("(metrics.acc > 0.5)", "'(metrics.acc > 0.5)'"),
        ("NOT metrics.acc > 0.5", "'NOT'"),
        ("metrics.acc", "'metrics.acc'"),
        ("metrics.acc >", "'metrics.acc', '>'"),
        ("> 1", "'>', '1'"),
        ("metrics.acc = +1", "'metrics.acc', '=', '+', '1'"),
        ("metrics.acc > - 1", "'metrics.acc', '>', '-', '1'"),
        ("metrics.acc > 1.2.3", "'.3'"),
        ("params.a = 'x';", "';'"),
        ("params.a = 'unterminated", "'params.a', '=', ''', 'unterminated'"),
        ("tags.a = 'x' -- comment", "'-- comment'"),
        ("params.a IS 'x'", "'params.a', 'IS', ''x''"),
        ("params.a IS NOT 'x'", "'params.a', 'IS', 'NOT', ''x''"),
        ("params.a IS NULL 'x'", "''x''"),
        ("params.a LIKE", "'params.a', 'LIKE'"),
        ("params.a = and", "'params.a', '='"),
        ("run_id IN 'a'", "'run_id', 'IN', ''a''"),
        ("tags.a:b = 'x'", "'tags.a', ':'"),
    ] {
        assert_eq!(
            err(filter),
            format!("Invalid clause(s) in filter string: {clauses}"),
            "{filter}"
        );
    }
    // Structure is checked before any comparison.
    assert_eq!(err("foo = 1 OR x"), "Invalid clause(s) in filter string: 'OR', 'x'");
}

#[test]
fn multiple_statements() {
    assert_eq!(
        err("params.a = 'x'; params.b = 'y'"),
        "Search filter contained multiple expression \"params.a = 'x'; params.b = 'y'\". Provide \
         AND-ed expression list."
    );
    // A semicolon inside parentheses does not end the statement.
    assert_eq!(
        err("(tags.a IS NULL;run_id != 'y')"),
        "Invalid clause(s) in filter string: '(tags.a IS NULL;run_id != 'y')'"
    );
}

#[test]
fn errors_come_in_mlflow_order() {
    // Identifier and value errors of every comparison precede comparator errors.
    let param_error = "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1";
    assert_eq!(err("params.a = 1 and metrics.b >> 2"), param_error);
    assert_eq!(err("metrics.b >> 2 and params.a = 1"), param_error);
    assert_eq!(
        err("metrics.b >> 2 and params.a > 'x'"),
        format!("Invalid comparator '>>' not one of '{METRIC_SET}")
    );
    assert_eq!(
        err("metrics.acc = 1 and status IN ('x')"),
        "Only ['run_id'] attributes support comparison with a list of quoted string values."
    );
}

fn order(clauses: &[&str]) -> Result<Vec<RunOrderBy>, String> {
    let clauses: Vec<String> = clauses.iter().map(|c| c.to_string()).collect();
    parse_run_order_by(&clauses).map_err(|e| e.message)
}

fn by(key: RunKey, ascending: bool) -> RunOrderBy {
    RunOrderBy { key, ascending }
}

#[test]
fn order_by_keys_and_directions() {
    assert_eq!(order(&[]).unwrap(), vec![]);
    assert_eq!(order(&["metrics.acc"]).unwrap(), vec![by(metric("acc"), true)]);
    assert_eq!(order(&["metrics.acc DESC"]).unwrap(), vec![by(metric("acc"), false)]);
    assert_eq!(order(&["metrics.acc desc"]).unwrap(), vec![by(metric("acc"), false)]);
    assert_eq!(order(&["metrics.acc Asc"]).unwrap(), vec![by(metric("acc"), true)]);
    assert_eq!(order(&["metrics.`val loss` DESC"]).unwrap(), vec![by(metric("val loss"), false)]);
    assert_eq!(order(&["metrics.\"val loss\""]).unwrap(), vec![by(metric("val loss"), true)]);
    assert_eq!(
        order(&["params.lr", "tags.`mlflow.runName` ASC"]).unwrap(),
        vec![by(param("lr"), true), by(tag("mlflow.runName"), true)]
    );
    let start = RunKey::Attribute(RunAttribute::StartTime);
    assert_eq!(order(&["start_time"]).unwrap(), vec![by(start.clone(), true)]);
    assert_eq!(order(&["created DESC"]).unwrap(), vec![by(start.clone(), false)]);
    assert_eq!(order(&["attributes.start_time"]).unwrap(), vec![by(start, true)]);
    for (clause, attribute) in [
        ("run_id", RunAttribute::RunId),
        ("run_name", RunAttribute::RunName),
        ("status", RunAttribute::Status),
        ("user_id", RunAttribute::UserId),
        ("artifact_uri", RunAttribute::ArtifactUri),
        ("end_time", RunAttribute::EndTime),
    ] {
        assert_eq!(order(&[clause]).unwrap(), vec![by(RunKey::Attribute(attribute), true)]);
    }
    assert_eq!(order(&["metrics.a.b DESC"]).unwrap(), vec![by(metric("a.b"), false)]);
}

#[test]
fn order_by_errors() {
    let keys = "{'run_id', 'run_name', 'status', 'start_time', 'end_time', 'user_id', \
                'artifact_uri', 'created', 'Created'}";
    for key in ["`run name`", "experiment_id", "foo", "timestamp"] {
        let shown = key.trim_matches('`');
        assert_eq!(
            order(&[key]).unwrap_err(),
            format!("Invalid attribute key '{shown}' specified. Valid keys are '{keys}'")
        );
    }
    assert_eq!(
        order(&["metrics.acc UP"]).unwrap_err(),
        "Invalid ordering key in order_by clause 'metrics.acc UP'."
    );
    for clause in ["metrics.acc DESC extra", "", "  metrics.acc  ", "metrics.acc, params.b"] {
        assert_eq!(
            order(&[clause]).unwrap_err(),
            format!("Invalid order_by clause '{clause}'. Could not be parsed.")
        );
    }
    assert_eq!(order(&["datasets.name"]).unwrap_err(), "Invalid identifier type 'dataset'");
    assert_eq!(
        order(&["foo.bar"]).unwrap_err(),
        "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', \
         'dataset']"
    );
    assert_eq!(
        order(&["metrics.acc", "metrics.acc DESC"]).unwrap_err(),
        "`order_by` contains duplicate fields: ['metrics.acc', 'metrics.acc DESC']"
    );
    assert_eq!(
        order(&["start_time", "created"]).unwrap_err(),
        "`order_by` contains duplicate fields: ['start_time', 'created']"
    );
    assert_eq!(
        order(&["metric.acc", "metrics.acc", "foo.bar"]).unwrap_err(),
        "`order_by` contains duplicate fields: ['metric.acc', 'metrics.acc', 'foo.bar']"
    );
    assert!(order(&["params.a", "tags.a"]).is_ok());
}
