-- Datasets: named per project, with immutable versions whose files are blobs of the project's
-- content-addressed store (shared with snapshots, so unchanged files are never stored twice).
-- A version's manifest lives in the artifact store; its metadata (rows and schema of CSV and
-- Parquet files) is recorded here. Deleting is a soft delete, audited; retention keeps the
-- newest N versions of a dataset.
CREATE TABLE project_datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    keep_versions INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX project_datasets_live_name ON project_datasets (project_id, name) WHERE deleted_at IS NULL;
CREATE TABLE project_dataset_versions (
    dataset INTEGER NOT NULL REFERENCES project_datasets(id),
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    message TEXT NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    new_bytes INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    deleted_by TEXT,
    PRIMARY KEY (dataset, version)
);
CREATE TABLE job_datasets (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    dataset INTEGER NOT NULL REFERENCES project_datasets(id),
    version INTEGER NOT NULL,
    PRIMARY KEY (job_id, dataset)
);
CREATE INDEX job_datasets_version ON job_datasets (dataset, version);
