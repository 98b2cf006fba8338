-- Deployments: a named endpoint per project; every change of what it serves is a revision.
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    revision INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX deployments_live_name ON deployments (name) WHERE state = 'active';
CREATE INDEX deployments_project ON deployments (project_id);
CREATE TABLE deployment_revisions (
    deployment INTEGER NOT NULL REFERENCES deployments(id),
    revision INTEGER NOT NULL,
    spec TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    comment TEXT,
    PRIMARY KEY (deployment, revision)
);
