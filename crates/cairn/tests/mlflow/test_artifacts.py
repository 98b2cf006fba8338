"""Artifacts through the server's mlflow-artifacts proxy: upload, list, download."""

import hashlib
import json
import os
from pathlib import Path

import mlflow
import pytest
import yaml
from helpers import assert_error_response, rest


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def listing(client, run_id, path=None):
    """{path: (is_dir, file_size)} of one directory level."""
    return {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path)}


def tree(root: Path) -> dict:
    """{relative path: bytes} of every file below root."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_log_artifact_list_and_download(experiment_id, client, tmp_path):
    source = tmp_path / "hello.txt"
    source.write_text("hello cairn\n")

    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source))
        mlflow.log_artifact(str(source), artifact_path="nested/deeper")

    run_id = run.info.run_id
    assert listing(client, run_id) == {"hello.txt": (False, 12), "nested": (True, None)}
    assert listing(client, run_id, "nested") == {"nested/deeper": (True, None)}
    assert listing(client, run_id, "nested/deeper") == {"nested/deeper/hello.txt": (False, 12)}
    downloaded = client.download_artifacts(run_id, "hello.txt", str(tmp_path / "out"))
    assert Path(downloaded).read_text() == "hello cairn\n"
    nested = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="nested/deeper/hello.txt", dst_path=str(tmp_path / "out2")
    )
    assert Path(nested).read_text() == "hello cairn\n"


def test_log_artifacts_of_a_nested_directory_and_download_it(experiment_id, client, tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.json").write_text('{"b": 1}')
    (src / "sub" / "deep" / "c.bin").write_bytes(bytes(range(256)) * 4)
    (src / "empty.txt").write_bytes(b"")

    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src), artifact_path="data")

    run_id = run.info.run_id
    assert listing(client, run_id) == {"data": (True, None)}
    # MLflow omits file_size for an empty file (proto default), so the client sees None.
    assert listing(client, run_id, "data") == {
        "data/a.txt": (False, 1),
        "data/empty.txt": (False, None),
        "data/sub": (True, None),
    }
    assert listing(client, run_id, "data/sub") == {"data/sub/b.json": (False, 8), "data/sub/deep": (True, None)}
    out = Path(client.download_artifacts(run_id, "data", str(tmp_path / "dl")))
    assert out.name == "data"
    assert tree(out) == tree(src)
    # The whole run root, through a runs:/ URI.
    root = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/", dst_path=str(tmp_path / "root")))
    assert tree(root / "data") == tree(src)


def test_log_artifacts_at_the_root(experiment_id, client, tmp_path):
    src = tmp_path / "flat"
    src.mkdir()
    (src / "x.txt").write_text("x")
    (src / "y.txt").write_text("yy")

    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src))

    assert listing(client, run.info.run_id) == {"x.txt": (False, 1), "y.txt": (False, 2)}


def test_log_text_and_dict(experiment_id, tmp_path):
    with mlflow.start_run() as run:
        mlflow.log_text("line one\nünïcödé ✓\n", "notes/readme.md")
        mlflow.log_dict({"lr": 0.1, "layers": [1, 2]}, "config/params.json")
        mlflow.log_dict({"name": "cairn", "n": 3}, "config/params.yaml")

    base = f"runs:/{run.info.run_id}"
    assert mlflow.artifacts.load_text(f"{base}/notes/readme.md") == "line one\nünïcödé ✓\n"
    assert mlflow.artifacts.load_dict(f"{base}/config/params.json") == {"lr": 0.1, "layers": [1, 2]}
    yaml_path = mlflow.artifacts.download_artifacts(f"{base}/config/params.yaml", dst_path=str(tmp_path))
    assert yaml.safe_load(Path(yaml_path).read_text()) == {"name": "cairn", "n": 3}


def test_file_names_with_spaces_and_unicode(experiment_id, client, tmp_path):
    # No '#': the client does not percent-encode it, so MLflow itself drops the rest of the name.
    source = tmp_path / "my report é (final) 1%.txt"
    source.write_text("content")

    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source), artifact_path="dir with space")

    run_id = run.info.run_id
    assert listing(client, run_id, "dir with space") == {"dir with space/my report é (final) 1%.txt": (False, 7)}
    path = client.download_artifacts(run_id, "dir with space/my report é (final) 1%.txt", str(tmp_path / "o"))
    assert Path(path).read_text() == "content"


def test_overwriting_an_artifact_replaces_it(experiment_id, client, tmp_path):
    source = tmp_path / "v.txt"
    with mlflow.start_run() as run:
        source.write_text("first version")
        mlflow.log_artifact(str(source))
        source.write_text("v2")
        mlflow.log_artifact(str(source))

    assert listing(client, run.info.run_id) == {"v.txt": (False, 2)}
    assert Path(client.download_artifacts(run.info.run_id, "v.txt", str(tmp_path / "o"))).read_text() == "v2"


def test_large_binary_artifact_round_trips(experiment_id, client, tmp_path):
    size = 50 * 1024 * 1024
    source = tmp_path / "blob.bin"
    with open(source, "wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(os.urandom(1 << 20))
    expected = sha256_of(source)

    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source), artifact_path="big")

    run_id = run.info.run_id
    assert listing(client, run_id, "big") == {"big/blob.bin": (False, size)}
    downloaded = client.download_artifacts(run_id, "big/blob.bin", str(tmp_path / "dl"))
    assert os.path.getsize(downloaded) == size
    assert sha256_of(downloaded) == expected


def test_list_artifacts_of_empty_run_and_missing_dir(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id

    assert client.list_artifacts(run_id) == []
    assert client.list_artifacts(run_id, "no/such/dir") == []
    assert mlflow.artifacts.list_artifacts(run_id=run_id) == []


def test_artifact_uri_and_get_artifact_uri(experiment_id):
    with mlflow.start_run() as run:
        uri = mlflow.get_artifact_uri()
        file_uri = mlflow.get_artifact_uri("x/y.txt")

    assert uri == run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run.info.run_id}/artifacts"
    assert file_uri == f"{uri}/x/y.txt"


def test_artifact_proxy_on_the_wire(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    base = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts"

    put = rest("PUT", f"{base}/wire/data.json", data=json.dumps({"k": 1}).encode())
    assert put.status_code == 200, put.text

    listed = rest("GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{experiment_id}/{run_id}/artifacts/wire"})
    assert listed.status_code == 200, listed.text
    # The proxy lists base names only (the client joins them with the requested path).
    assert listed.json() == {"files": [{"path": "data.json", "is_dir": False, "file_size": 8}]}

    got = rest("GET", f"{base}/wire/data.json")
    assert got.status_code == 200
    assert got.content == b'{"k": 1}'

    missing_dir = rest("GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{experiment_id}/{run_id}/artifacts/nope"})
    assert missing_dir.status_code == 200 and missing_dir.json() == {}

    missing_file = rest("GET", f"{base}/wire/nope.json")
    assert_error_response(missing_file, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("bad_path", ["../../etc/passwd", "%2E%2E/%2E%2E/etc/passwd"])
def test_artifact_proxy_rejects_path_traversal(bad_path):
    response = rest("GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": bad_path})

    assert_error_response(response, 400, "INVALID_PARAMETER_VALUE")
