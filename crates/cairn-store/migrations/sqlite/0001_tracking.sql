-- Tracking: projects, experiments, runs, params, metrics, tags, datasets, logged models.
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active',
    creation_time INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
    run_uuid TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active',
    artifact_uri TEXT NOT NULL,
    deleted_time INTEGER
);
CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time DESC, run_uuid);
CREATE TABLE params (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE INDEX params_key_value ON params (key, value);
CREATE TABLE tags (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE INDEX tags_key_value ON tags (key, value);
CREATE TABLE metrics (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key TEXT NOT NULL,
    value REAL NOT NULL,
    is_nan INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT,
    PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
) WITHOUT ROWID;
CREATE TABLE latest_metrics (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    experiment_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value REAL NOT NULL,
    is_nan INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL,
    step INTEGER NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE INDEX latest_metrics_experiment_key_value ON latest_metrics (experiment_id, key, value);
CREATE TABLE datasets (
    dataset_uuid TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema TEXT,
    profile TEXT,
    UNIQUE (experiment_id, name, digest)
);
CREATE TABLE run_dataset_inputs (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    dataset_uuid TEXT NOT NULL REFERENCES datasets(dataset_uuid),
    PRIMARY KEY (run_uuid, dataset_uuid)
);
CREATE TABLE run_dataset_input_tags (
    run_uuid TEXT NOT NULL,
    dataset_uuid TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, dataset_uuid, key)
);
CREATE TABLE run_model_links (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    model_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_uuid, model_id, direction)
);
CREATE TABLE logged_models (
    model_id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    creation_timestamp_ms INTEGER NOT NULL,
    last_updated_timestamp_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    creator_id TEXT,
    model_type TEXT,
    source_run_id TEXT,
    status_message TEXT,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX logged_models_experiment ON logged_models (experiment_id, creation_timestamp_ms DESC);
CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models(model_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models(model_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_metrics (
    model_id TEXT NOT NULL,
    run_uuid TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL NOT NULL,
    is_nan INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL,
    step INTEGER NOT NULL,
    dataset_name TEXT NOT NULL DEFAULT '',
    dataset_digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (model_id, key, step, timestamp, run_uuid, dataset_name, dataset_digest)
);
INSERT INTO projects (id, name, description, created_at)
VALUES (1, 'default', 'The project of MLflow calls that name no other', CAST(strftime('%s', 'now') AS INTEGER) * 1000);
INSERT INTO experiments (experiment_id, project_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
VALUES (0, 1, 'Default', 'mlflow-artifacts:/0', 'active',
        CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
