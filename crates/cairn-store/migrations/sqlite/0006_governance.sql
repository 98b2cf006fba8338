-- Registry governance: model cards (revisioned), policies (revisioned), approval requests with
-- their decisions, and the history of every alias and stage movement. Requests, decisions and
-- history name the model and keep no foreign key to it, so the record outlives a deleted model.
CREATE TABLE model_cards (
    model INTEGER NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    content TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (model, version, revision),
    FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
);
CREATE TABLE policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER REFERENCES projects(id),
    name TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    model_name TEXT,
    revision INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX policies_scope_name ON policies (COALESCE(project_id, 0), name);
CREATE INDEX policies_target ON policies (target_kind, target);
CREATE TABLE policy_revisions (
    policy INTEGER NOT NULL REFERENCES policies(id),
    revision INTEGER NOT NULL,
    rules TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (policy, revision)
);
CREATE TABLE approval_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    model INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    archive_existing INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    comment TEXT,
    evidence TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER
);
CREATE UNIQUE INDEX approval_requests_one_pending ON approval_requests (model, target_kind, target) WHERE state = 'pending';
CREATE INDEX approval_requests_version ON approval_requests (model, version);
CREATE INDEX approval_requests_project_state ON approval_requests (project_id, state);
CREATE TABLE approval_decisions (
    request INTEGER NOT NULL REFERENCES approval_requests(id),
    reviewer TEXT NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT,
    policies TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (request, reviewer)
);
CREATE TABLE registry_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version INTEGER,
    previous_version INTEGER,
    previous_stage TEXT,
    actor TEXT NOT NULL,
    request_id INTEGER,
    at INTEGER NOT NULL
);
CREATE INDEX registry_history_model ON registry_history (model, id);
-- Registry search: latest version per stage, and version tag filters.
CREATE INDEX model_versions_stage ON model_versions (model, current_stage, version);
CREATE INDEX model_version_tags_key_value ON model_version_tags (key, value);
