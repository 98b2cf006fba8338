-- The model registry: registered models (per project), versions, tags and aliases.
CREATE TABLE registered_models (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    user_id TEXT COLLATE "C",
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL,
    last_version BIGINT NOT NULL DEFAULT 0,
    UNIQUE (project_id, name)
);
CREATE TABLE registered_model_tags (
    model BIGINT NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model, key)
);
CREATE TABLE model_versions (
    model BIGINT NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL,
    user_id TEXT COLLATE "C",
    current_stage TEXT COLLATE "C" NOT NULL DEFAULT 'None',
    description TEXT COLLATE "C",
    source TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C",
    run_link TEXT COLLATE "C",
    logged_model_id TEXT COLLATE "C",
    PRIMARY KEY (model, version)
);
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
    model BIGINT NOT NULL,
    version BIGINT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model, version, key),
    FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
);
CREATE TABLE registered_model_aliases (
    model BIGINT NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    alias TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (model, alias)
);
