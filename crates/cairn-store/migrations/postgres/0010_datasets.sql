-- Datasets: named per project, with immutable versions whose files are blobs of the project's
-- content-addressed store (shared with snapshots, so unchanged files are never stored twice).
-- A version's manifest lives in the artifact store; its metadata (rows and schema of CSV and
-- Parquet files) is recorded here. Deleting is a soft delete, audited; retention keeps the
-- newest N versions of a dataset.
CREATE TABLE project_datasets (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL,
    keep_versions BIGINT,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX project_datasets_live_name ON project_datasets (project_id, name) WHERE deleted_at IS NULL;
CREATE TABLE project_dataset_versions (
    dataset BIGINT NOT NULL REFERENCES project_datasets(id),
    version BIGINT NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    message TEXT COLLATE "C" NOT NULL,
    file_count BIGINT NOT NULL,
    total_bytes BIGINT NOT NULL,
    new_bytes BIGINT NOT NULL,
    metadata TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    deleted_by TEXT COLLATE "C",
    PRIMARY KEY (dataset, version)
);
CREATE TABLE job_datasets (
    job_id BIGINT NOT NULL REFERENCES jobs(id),
    dataset BIGINT NOT NULL REFERENCES project_datasets(id),
    version BIGINT NOT NULL,
    PRIMARY KEY (job_id, dataset)
);
CREATE INDEX job_datasets_version ON job_datasets (dataset, version);
