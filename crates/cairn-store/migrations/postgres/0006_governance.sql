-- Registry governance: model cards (revisioned), policies (revisioned), approval requests with
-- their decisions, and the history of every alias and stage movement. Requests, decisions and
-- history name the model and keep no foreign key to it, so the record outlives a deleted model.
CREATE TABLE model_cards (
    model BIGINT NOT NULL,
    version BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    content TEXT COLLATE "C" NOT NULL,
    author TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (model, version, revision),
    FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
);
CREATE TABLE policies (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT REFERENCES projects(id),
    name TEXT COLLATE "C" NOT NULL,
    target_kind TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL,
    model_name TEXT COLLATE "C",
    revision BIGINT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX policies_scope_name ON policies (COALESCE(project_id, 0), name);
CREATE INDEX policies_target ON policies (target_kind, target);
CREATE TABLE policy_revisions (
    policy BIGINT NOT NULL REFERENCES policies(id),
    revision BIGINT NOT NULL,
    rules TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (policy, revision)
);
CREATE TABLE approval_requests (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    model BIGINT NOT NULL,
    model_name TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    target_kind TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL,
    archive_existing BIGINT NOT NULL DEFAULT 0,
    state TEXT COLLATE "C" NOT NULL,
    requested_by TEXT COLLATE "C" NOT NULL,
    comment TEXT COLLATE "C",
    evidence TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    decided_by TEXT COLLATE "C",
    decided_at BIGINT
);
CREATE UNIQUE INDEX approval_requests_one_pending ON approval_requests (model, target_kind, target) WHERE state = 'pending';
CREATE INDEX approval_requests_version ON approval_requests (model, version);
CREATE INDEX approval_requests_project_state ON approval_requests (project_id, state);
CREATE TABLE approval_decisions (
    request BIGINT NOT NULL REFERENCES approval_requests(id),
    reviewer TEXT COLLATE "C" NOT NULL,
    decision TEXT COLLATE "C" NOT NULL,
    comment TEXT COLLATE "C",
    policies TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (request, reviewer)
);
CREATE TABLE registry_history (
    id BIGSERIAL PRIMARY KEY,
    model BIGINT NOT NULL,
    model_name TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL,
    version BIGINT,
    previous_version BIGINT,
    previous_stage TEXT COLLATE "C",
    actor TEXT COLLATE "C" NOT NULL,
    request_id BIGINT,
    at BIGINT NOT NULL
);
CREATE INDEX registry_history_model ON registry_history (model, id);
-- Registry search: latest version per stage, and version tag filters.
CREATE INDEX model_versions_stage ON model_versions (model, current_stage, version);
CREATE INDEX model_version_tags_key_value ON model_version_tags (key, value);
