-- Comments on projects, runs and model versions, with the users they mention; and the index
-- that lets global search find runs by a prefix of their name without scanning the table.
-- A comment belongs to one project (its readers read it); its target is a kind (`project`,
-- `run`, `model_version`) and a key (empty, the run id, `<model name>/<version>`). Deleting a
-- comment deletes its row and mentions; the audit log keeps the record of both actions.
CREATE TABLE comments (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    target_kind TEXT COLLATE "C" NOT NULL,
    target_key TEXT COLLATE "C" NOT NULL,
    author_id BIGINT REFERENCES users(id),
    author TEXT COLLATE "C" NOT NULL,
    body TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX comments_target ON comments (project_id, target_kind, target_key, id);
CREATE INDEX comments_project ON comments (project_id, id);
CREATE TABLE comment_mentions (
    comment_id BIGINT NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX comment_mentions_user ON comment_mentions (user_id, comment_id);
CREATE INDEX runs_name ON runs (name);
