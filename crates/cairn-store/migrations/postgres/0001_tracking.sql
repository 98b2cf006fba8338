-- Tracking: projects, experiments, runs, params, metrics, tags, datasets, logged models.
CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    description TEXT COLLATE "C",
    created_at BIGINT NOT NULL
);
CREATE TABLE experiments (
    experiment_id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT COLLATE "C" NOT NULL,
    artifact_location TEXT COLLATE "C" NOT NULL,
    lifecycle_stage TEXT COLLATE "C" NOT NULL DEFAULT 'active',
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
    run_uuid TEXT COLLATE "C" PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
    name TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    lifecycle_stage TEXT COLLATE "C" NOT NULL DEFAULT 'active',
    artifact_uri TEXT COLLATE "C" NOT NULL,
    deleted_time BIGINT
);
CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time DESC, run_uuid);
CREATE TABLE params (
    run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE INDEX params_key_value ON params (key, value);
CREATE TABLE tags (
    run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE INDEX tags_key_value ON tags (key, value);
CREATE TABLE metrics (
    run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid),
    key TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL DEFAULT 0,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL DEFAULT 0,
    model_id TEXT COLLATE "C",
    dataset_name TEXT COLLATE "C",
    dataset_digest TEXT COLLATE "C",
    PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
);
CREATE TABLE latest_metrics (
    run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid),
    experiment_id BIGINT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL DEFAULT 0,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE INDEX latest_metrics_experiment_key_value ON latest_metrics (experiment_id, key, value);
CREATE TABLE datasets (
    dataset_uuid TEXT COLLATE "C" PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
    name TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    source_type TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    schema TEXT COLLATE "C",
    profile TEXT COLLATE "C",
    UNIQUE (experiment_id, name, digest)
);
CREATE TABLE run_dataset_inputs (
    run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid),
    dataset_uuid TEXT COLLATE "C" NOT NULL REFERENCES datasets(dataset_uuid),
    PRIMARY KEY (run_uuid, dataset_uuid)
);
CREATE TABLE run_dataset_input_tags (
    run_uuid TEXT COLLATE "C" NOT NULL,
    dataset_uuid TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_uuid, dataset_uuid, key)
);
CREATE TABLE run_model_links (
    run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid),
    model_id TEXT COLLATE "C" NOT NULL,
    direction TEXT COLLATE "C" NOT NULL,
    step BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_uuid, model_id, direction)
);
CREATE TABLE logged_models (
    model_id TEXT COLLATE "C" PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
    name TEXT COLLATE "C" NOT NULL,
    artifact_uri TEXT COLLATE "C" NOT NULL,
    creation_timestamp_ms BIGINT NOT NULL,
    last_updated_timestamp_ms BIGINT NOT NULL,
    status BIGINT NOT NULL,
    creator_id TEXT COLLATE "C",
    model_type TEXT COLLATE "C",
    source_run_id TEXT COLLATE "C",
    status_message TEXT COLLATE "C",
    lifecycle_stage TEXT COLLATE "C" NOT NULL DEFAULT 'active'
);
CREATE INDEX logged_models_experiment ON logged_models (experiment_id, creation_timestamp_ms DESC);
CREATE TABLE logged_model_tags (
    model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_params (
    model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_metrics (
    model_id TEXT COLLATE "C" NOT NULL,
    run_uuid TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL DEFAULT 0,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    dataset_name TEXT COLLATE "C" NOT NULL DEFAULT '',
    dataset_digest TEXT COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (model_id, key, step, timestamp, run_uuid, dataset_name, dataset_digest)
);
INSERT INTO projects (id, name, description, created_at)
VALUES (1, 'default', 'The project of MLflow calls that name no other', (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);
INSERT INTO experiments (experiment_id, project_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
VALUES (0, 1, 'Default', 'mlflow-artifacts:/0', 'active',
        (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);
SELECT setval(pg_get_serial_sequence('projects', 'id'), 1);
