-- Workspaces: JupyterLab servers on a project snapshot, served through Cairn's proxy. A row is
-- owned (leased) by the replica running it; the request is kept as JSON so a stopped workspace
-- can be started again. The JupyterLab token is never stored; the workspace's API token (for
-- MLflow logging from notebooks) is an api_tokens row, revoked when the workspace stops.
CREATE TABLE workspaces (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    owner TEXT COLLATE "C" NOT NULL,
    owner_id BIGINT REFERENCES users(id),
    state TEXT COLLATE "C" NOT NULL,
    spec TEXT COLLATE "C" NOT NULL,
    environment_revision BIGINT NOT NULL,
    executor TEXT COLLATE "C" NOT NULL,
    snapshot TEXT COLLATE "C",
    exec_id TEXT COLLATE "C",
    port BIGINT,
    token_id BIGINT,
    claimed_by TEXT COLLATE "C",
    claimed_until BIGINT,
    stop_requested_by TEXT COLLATE "C",
    reason TEXT COLLATE "C",
    synced_snapshot TEXT COLLATE "C",
    synced_at BIGINT,
    last_activity_at BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    running_at BIGINT,
    stopped_at BIGINT
);
CREATE INDEX workspaces_project ON workspaces (project_id, id);
CREATE INDEX workspaces_claimed ON workspaces (claimed_by);
CREATE INDEX workspaces_state ON workspaces (state, claimed_until);
