-- Comments on projects, runs and model versions, with the users they mention; and the index
-- that lets global search find runs by a prefix of their name without scanning the table.
-- A comment belongs to one project (its readers read it); its target is a kind (`project`,
-- `run`, `model_version`) and a key (empty, the run id, `<model name>/<version>`). Deleting a
-- comment deletes its row and mentions; the audit log keeps the record of both actions.
CREATE TABLE comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    target_kind TEXT NOT NULL,
    target_key TEXT NOT NULL,
    author_id INTEGER REFERENCES users(id),
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX comments_target ON comments (project_id, target_kind, target_key, id);
CREATE INDEX comments_project ON comments (project_id, id);
CREATE TABLE comment_mentions (
    comment_id INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX comment_mentions_user ON comment_mentions (user_id, comment_id);
CREATE INDEX runs_name ON runs (name);
