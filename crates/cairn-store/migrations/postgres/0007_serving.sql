-- Deployments: a named endpoint per project; every change of what it serves is a revision.
CREATE TABLE deployments (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT COLLATE "C" NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX deployments_live_name ON deployments (name) WHERE state = 'active';
CREATE INDEX deployments_project ON deployments (project_id);
CREATE TABLE deployment_revisions (
    deployment BIGINT NOT NULL REFERENCES deployments(id),
    revision BIGINT NOT NULL,
    spec TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    comment TEXT COLLATE "C",
    PRIMARY KEY (deployment, revision)
);
