"""Error cases: the error codes (and, where users or the client read them, the messages) of
MLflow's answers, through the client and on the wire."""

import time
import uuid

import mlflow
import pytest
from helpers import assert_error_response, error_code, rest, unique_name
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException, RestException


def raises_code(code, fn, *args, **kwargs) -> MlflowException:
    with pytest.raises(MlflowException) as excinfo:
        fn(*args, **kwargs)
    assert error_code(excinfo.value) == code, excinfo.value
    return excinfo.value


# --- through the client -------------------------------------------------------------------------


def test_get_missing_run(client):
    run_id = uuid.uuid4().hex

    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_run, run_id)

    assert isinstance(exc, RestException)
    assert exc.get_http_status_code() == 404
    assert f"Run with id={run_id} not found" in exc.message


def test_other_operations_on_a_missing_run(client):
    run_id = uuid.uuid4().hex

    raises_code("RESOURCE_DOES_NOT_EXIST", client.set_terminated, run_id)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_run, run_id)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.log_param, run_id, "p", "v")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.log_metric, run_id, "m", 1.0)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.set_tag, run_id, "t", "v")
    # Unknown run or metric: an empty history, not an error.
    assert client.get_metric_history(run_id, "m") == []


def test_get_missing_experiment(client):
    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_experiment, "987654321")

    assert "No Experiment with id=987654321 exists" in exc.message
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_experiment, "987654321")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.set_experiment_tag, "987654321", "k", "v")


def test_get_experiment_with_non_numeric_id(client):
    raises_code("INVALID_PARAMETER_VALUE", client.get_experiment, "not-a-number")


def test_get_experiment_by_name_of_missing_name_returns_none(client):
    assert client.get_experiment_by_name(unique_name("nope")) is None


def test_create_duplicate_experiment(client):
    name = unique_name("dup")
    client.create_experiment(name)

    exc = raises_code("RESOURCE_ALREADY_EXISTS", client.create_experiment, name)

    assert exc.get_http_status_code() == 400
    assert f"Experiment(name={name}) already exists" in exc.message


def test_name_of_a_deleted_experiment_stays_reserved(client):
    name = unique_name("reserved")
    client.delete_experiment(client.create_experiment(name))

    raises_code("RESOURCE_ALREADY_EXISTS", client.create_experiment, name)


def test_rename_to_an_existing_name_is_a_400(client):
    taken = unique_name("taken")
    client.create_experiment(taken)
    exp_id = client.create_experiment(unique_name("renamed"))

    with pytest.raises(MlflowException) as excinfo:
        client.rename_experiment(exp_id, taken)

    # Stock MLflow answers BAD_REQUEST with the SQL error as message; the exact code is not
    # something the client relies on, the 400 (no retry) is.
    assert excinfo.value.get_http_status_code() == 400
    assert error_code(excinfo.value) in {"BAD_REQUEST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE"}


def test_experiment_name_longer_than_500(client):
    exc = raises_code("INVALID_PARAMETER_VALUE", client.create_experiment, "x" * 501)

    assert "'name' exceeds the maximum length of 500 characters" in exc.message


def test_changing_a_param_is_rejected(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")  # same value: fine

    exc = raises_code("INVALID_PARAMETER_VALUE", client.log_param, run_id, "lr", "0.2")

    assert exc.get_http_status_code() == 400
    # The client appends a hint about nested runs to the server's message.
    assert (
        "Changing param values is not allowed. Param with key='lr' was already logged with "
        f"value='0.1' for run ID='{run_id}'. Attempted logging new value '0.2'."
    ) in exc.message
    assert client.get_run(run_id).data.params == {"lr": "0.1"}


def test_changing_a_param_in_a_batch_is_rejected(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(run_id, params=[Param("lr", "0.1")])

    exc = raises_code("INVALID_PARAMETER_VALUE", client.log_batch, run_id, params=[Param("lr", "0.3")])

    assert "Changing param values is not allowed" in exc.message


def test_changing_a_param_through_the_fluent_api(experiment_id):
    with mlflow.start_run():
        mlflow.log_param("depth", 3)
        with pytest.raises(MlflowException) as excinfo:
            mlflow.log_param("depth", 4)

    assert error_code(excinfo.value) == "INVALID_PARAMETER_VALUE"


def test_logging_to_a_deleted_run_fails(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)

    for fn, args in [
        (client.log_metric, (run_id, "m", 1.0)),
        (client.log_param, (run_id, "p", "v")),
        (client.set_tag, (run_id, "t", "v")),
        (client.log_batch, (run_id, [Metric("m", 1.0, 1, 0)])),
    ]:
        exc = raises_code("INVALID_PARAMETER_VALUE", fn, *args)
        assert f"The run {run_id} must be in the 'active' state. Current state is deleted." in exc.message

    # Reading a deleted run still works.
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"


def test_creating_a_run_in_a_deleted_experiment_fails(client):
    exp_id = client.create_experiment(unique_name("deleted-exp"))
    client.delete_experiment(exp_id)

    exc = raises_code("INVALID_PARAMETER_VALUE", client.create_run, exp_id)

    assert f"The experiment {exp_id} must be in the 'active' state. Current state is deleted." in exc.message


def test_creating_a_run_in_a_missing_experiment_fails(client):
    raises_code("RESOURCE_DOES_NOT_EXIST", client.create_run, "987654321")


def test_deleting_a_missing_tag(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id

    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_tag, run_id, "nosuchtag")

    assert f"No tag with name: nosuchtag in run with id {run_id}" in exc.message


def test_deleting_a_missing_experiment_tag(client):
    exp_id = client.create_experiment(unique_name("no-exp-tag"))

    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_experiment_tag, exp_id, "nosuch")

    assert f"No tag with name: nosuch in experiment with id {exp_id}" in exc.message


@pytest.mark.parametrize(
    "key, message",
    [
        ("a*b", "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."),
        ("../escape", "Names may be treated as files in certain cases, and must not resolve to other names when treated as such."),
        ("k" * 251, "exceeds the maximum length of 250 characters"),
    ],
)
def test_invalid_param_keys(experiment_id, client, key, message):
    run_id = client.create_run(experiment_id).info.run_id

    exc = raises_code("INVALID_PARAMETER_VALUE", client.log_param, run_id, key, "v")

    assert message in exc.message


@pytest.mark.parametrize(
    "filter_string, message",
    [
        ("metrics.acc >> 1", "Invalid comparator '>>'"),
        ("params.a = 'x' OR params.a = 'y'", "Invalid clause(s) in filter string: 'OR'"),
        ("attributes.foo = 'x'", "Invalid attribute key 'foo' specified."),
        ("metrics.acc > '0.5'", "Expected numeric value type for metric."),
        ("params.a = unquoted", "Parameter value is either not quoted or unidentified quote types used"),
    ],
)
def test_invalid_search_filters(experiment_id, client, filter_string, message):
    exc = raises_code("INVALID_PARAMETER_VALUE", client.search_runs, [experiment_id], filter_string)

    assert exc.get_http_status_code() == 400
    assert message in exc.message


def test_invalid_search_order_by(experiment_id, client):
    exc = raises_code("INVALID_PARAMETER_VALUE", client.search_runs, [experiment_id], order_by=["metrics.acc UP"])

    assert "Invalid ordering key in order_by clause 'metrics.acc UP'." in exc.message


def test_invalid_page_token(experiment_id, client):
    raises_code("INVALID_PARAMETER_VALUE", client.search_runs, [experiment_id], page_token="garbage")


def test_search_runs_max_results_limit(experiment_id, client):
    assert client.search_runs([experiment_id], max_results=50000) == []
    raises_code("INVALID_PARAMETER_VALUE", client.search_runs, [experiment_id], max_results=50001)


def test_search_experiments_invalid_filter(client):
    exc = raises_code("INVALID_PARAMETER_VALUE", client.search_experiments, filter_string="params.a = 'b'")

    assert "Invalid entity type 'params'" in exc.message


# --- on the wire ---------------------------------------------------------------------------------


def test_error_body_shape(experiment_id):
    run_id = uuid.uuid4().hex

    response = rest("GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id})

    body = assert_error_response(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert body["message"] == f"Run with id={run_id} not found"


def test_missing_required_field():
    response = rest("POST", "/api/2.0/mlflow/experiments/create", json={})

    body = assert_error_response(response, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith("Missing value for required parameter 'name'.")


def test_wrong_json_type_for_a_field():
    response = rest("POST", "/api/2.0/mlflow/experiments/create", json={"name": 123})

    body = assert_error_response(response, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith("Invalid value 123 for parameter 'name' supplied")


def test_post_without_content_type():
    response = rest("POST", "/api/2.0/mlflow/experiments/create", data=b'{"name": "no-content-type"}')

    body = assert_error_response(response, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Bad Request. Content-Type header is missing."


def test_log_metric_without_timestamp(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id

    response = rest("POST", "/api/2.0/mlflow/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1.0})

    body = assert_error_response(response, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith("Missing value for required parameter 'timestamp'.")


@pytest.mark.parametrize(
    "counts, message",
    [
        (
            (1001, 0, 0),
            "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. "
            "Please split up metrics across multiple requests and try again.",
        ),
        ((0, 101, 0), "A batch logging request can contain at most 100 params. Got 101 params."),
        ((0, 0, 101), "A batch logging request can contain at most 100 tags. Got 101 tags."),
        (
            (901, 100, 0),
            "A batch logging request can contain at most 1000 metrics, params, and tags. "
            "Got 1001 metrics, params, and tags. Please split up metrics, params, and tags across "
            "multiple requests and try again.",
        ),
    ],
)
def test_log_batch_limits(experiment_id, client, counts, message):
    run_id = client.create_run(experiment_id).info.run_id
    n_metrics, n_params, n_tags = counts
    ts = int(time.time() * 1000)
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": i, "timestamp": ts, "step": i} for i in range(n_metrics)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(n_params)],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(n_tags)],
    }

    response = rest("POST", "/api/2.0/mlflow/runs/log-batch", json=body)

    result = assert_error_response(response, 400, "INVALID_PARAMETER_VALUE")
    assert result["message"].startswith(message), result["message"]
    # Nothing of a rejected batch is stored.
    data = client.get_run(run_id).data
    assert data.metrics == {} and data.params == {}


def test_param_change_messages_on_the_wire(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "lr", "0.1")

    single = rest("POST", "/api/2.0/mlflow/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"})
    batch = rest("POST", "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "params": [{"key": "lr", "value": "0.3"}]})

    assert assert_error_response(single, 400, "INVALID_PARAMETER_VALUE")["message"] == (
        "Changing param values is not allowed. Param with key='lr' was already logged with "
        f"value='0.1' for run ID='{run_id}'. Attempted logging new value '0.2'."
    )
    assert assert_error_response(batch, 400, "INVALID_PARAMETER_VALUE")["message"] == (
        "Changing param values is not allowed. Params were already logged="
        f"'[{{'key': 'lr', 'old_value': '0.1', 'new_value': '0.3'}}]' for run ID='{run_id}'."
    )


def test_log_batch_duplicate_param_keys(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    body = {"run_id": run_id, "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}

    response = rest("POST", "/api/2.0/mlflow/runs/log-batch", json=body)

    result = assert_error_response(response, 400, "INVALID_PARAMETER_VALUE")
    assert result["message"].startswith("Duplicate parameter keys have been submitted: ['a'].")


def test_get_experiment_by_name_missing_is_404_on_the_wire():
    response = rest("GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": unique_name("none")})

    assert_error_response(response, 404, "RESOURCE_DOES_NOT_EXIST")
