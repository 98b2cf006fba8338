-- The model registry: registered models (per project), versions, tags and aliases.
CREATE TABLE registered_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    description TEXT,
    user_id TEXT,
    creation_timestamp INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project_id, name)
);
CREATE TABLE registered_model_tags (
    model INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model, key)
);
CREATE TABLE model_versions (
    model INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    creation_timestamp INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    user_id TEXT,
    current_stage TEXT NOT NULL DEFAULT 'None',
    description TEXT,
    source TEXT NOT NULL,
    run_id TEXT,
    run_link TEXT,
    logged_model_id TEXT,
    PRIMARY KEY (model, version)
);
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
    model INTEGER NOT NULL,
    version INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model, version, key),
    FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
);
CREATE TABLE registered_model_aliases (
    model INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias)
);
