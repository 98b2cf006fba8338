//! Global search: one bounded, indexed query per kind, confined to the projects a caller may
//! read. Names match by prefix as an index range (`name >= term AND name < term||U+10FFFF`, a
//! binary collation on both engines), runs also by id and by `key=value` tag (the tags'
//! `(key, value)` index); comments match a case-insensitive substring among the newest
//! [`COMMENT_WINDOW`] comments of the readable projects, so no query scans a large table.

use cairn_domain::global_search::{HitKind, SearchHit, SearchTerm, prefix_bound};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::Sql;
use crate::{Store, StoreResult};

/// How many of the newest comments a search reads at most.
pub const COMMENT_WINDOW: i64 = 5_000;

/// Appends ` AND <column> IN (…)` when the search is confined to some projects.
fn confine(sql: &mut Sql, column: &str, project_ids: Option<&[i64]>) {
    if let Some(ids) = project_ids {
        sql.push(" AND ").push(column).push(" IN ").bind_list(ids.iter().copied());
    }
}

/// Appends ` AND <column> >= $a AND <column> < $b` for names starting with `prefix`.
fn prefix(sql: &mut Sql, column: &str, prefix: &str) {
    sql.push(" AND ").push(column).push(" >= ").bind(prefix);
    sql.push(" AND ").push(column).push(" < ").bind(prefix_bound(prefix));
}

fn text(row: &AnyRow, column: &str) -> sqlx::Result<String> {
    row.try_get::<Option<String>, _>(column).map(Option::unwrap_or_default)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(term: &str) -> String {
    let mut escaped = String::with_capacity(term.len());
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The start of a comment, for a hit's title.
fn excerpt(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default();
    let mut short: String = line.chars().take(120).collect();
    if short.len() < body.len() {
        short.push('…');
    }
    short
}

impl Store {
    /// Searches every kind for `term` in the given projects (all when `None`), at most
    /// `per_kind` hits of each kind, in kind order (projects, experiments, runs, models,
    /// datasets, comments) and by name within a kind.
    pub async fn global_search(
        &self,
        term: &SearchTerm,
        project_ids: Option<&[i64]>,
        per_kind: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        if project_ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        let limit = per_kind.max(1);
        let mut hits = self.find_projects(term, project_ids, limit).await?;
        hits.extend(self.find_experiments(term, project_ids, limit).await?);
        hits.extend(self.find_runs(term, project_ids, limit).await?);
        hits.extend(self.find_models(term, project_ids, limit).await?);
        hits.extend(self.find_datasets(term, project_ids, limit).await?);
        hits.extend(self.find_comments(term, project_ids, limit).await?);
        Ok(hits)
    }

    async fn find_projects(
        &self,
        term: &SearchTerm,
        project_ids: Option<&[i64]>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let mut sql = Sql::new("SELECT name, description FROM projects WHERE 1 = 1");
        prefix(&mut sql, "name", &term.text);
        confine(&mut sql, "id", project_ids);
        sql.push(" ORDER BY name LIMIT ").bind(limit);
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut hits = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            hits.push(SearchHit {
                kind: HitKind::Project,
                project: name.clone(),
                id: name.clone(),
                title: name,
                detail: text(&row, "description")?,
                target: None,
            });
        }
        Ok(hits)
    }

    async fn find_experiments(
        &self,
        term: &SearchTerm,
        project_ids: Option<&[i64]>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let mut sql = Sql::new(
            "SELECT e.experiment_id, e.name, p.name AS project_name FROM experiments e \
             JOIN projects p ON p.id = e.project_id WHERE e.lifecycle_stage = 'active'",
        );
        prefix(&mut sql, "e.name", &term.text);
        confine(&mut sql, "e.project_id", project_ids);
        sql.push(" ORDER BY e.name, e.experiment_id LIMIT ").bind(limit);
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut hits = Vec::new();
        for row in rows {
            hits.push(SearchHit {
                kind: HitKind::Experiment,
                project: row.try_get("project_name")?,
                id: row.try_get::<i64, _>("experiment_id")?.to_string(),
                title: row.try_get("name")?,
                detail: String::new(),
                target: None,
            });
        }
        Ok(hits)
    }

    /// Runs by id (exact), by `key=value` tag (value prefix) or by name (prefix).
    async fn find_runs(
        &self,
        term: &SearchTerm,
        project_ids: Option<&[i64]>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        const SELECT: &str = "SELECT r.run_uuid, r.name, e.name AS experiment_name, \
             p.name AS project_name";
        const JOINS: &str = " JOIN experiments e ON e.experiment_id = r.experiment_id \
             JOIN projects p ON p.id = e.project_id";
        let mut hits = Vec::new();
        let mut push_rows = |rows: Vec<AnyRow>,
                             detail: &dyn Fn(&AnyRow) -> sqlx::Result<String>|
         -> sqlx::Result<()> {
            for row in rows {
                let run_id: String = row.try_get("run_uuid")?;
                if hits.iter().any(|hit: &SearchHit| hit.id == run_id) {
                    continue;
                }
                hits.push(SearchHit {
                    kind: HitKind::Run,
                    project: row.try_get("project_name")?,
                    id: run_id,
                    title: row.try_get("name")?,
                    detail: detail(&row)?,
                    target: None,
                });
            }
            Ok(())
        };
        let experiment = |row: &AnyRow| row.try_get::<String, _>("experiment_name");
        if term.run_id {
            let mut sql = Sql::new(SELECT);
            sql.push(" FROM runs r").push(JOINS).push(" WHERE r.run_uuid = ");
            sql.bind(term.text.to_ascii_lowercase()).push(" AND r.lifecycle_stage = 'active'");
            confine(&mut sql, "e.project_id", project_ids);
            push_rows(sql.query(self.dialect).fetch_all(self.reader()).await?, &experiment)?;
        }
        if let Some((key, value)) = &term.tag {
            let mut sql = Sql::new(SELECT);
            sql.push(", t.key AS tag_key, t.value AS tag_value FROM tags t")
                .push(" JOIN runs r ON r.run_uuid = t.run_uuid")
                .push(JOINS)
                .push(" WHERE t.key = ")
                .bind(key.as_str())
                .push(" AND r.lifecycle_stage = 'active'");
            prefix(&mut sql, "t.value", value);
            confine(&mut sql, "e.project_id", project_ids);
            sql.push(" ORDER BY t.value, r.run_uuid LIMIT ").bind(limit);
            let tag = |row: &AnyRow| -> sqlx::Result<String> {
                let experiment: String = row.try_get("experiment_name")?;
                let key: String = row.try_get("tag_key")?;
                let value: String = row.try_get("tag_value")?;
                Ok(format!("{experiment} · {key}={value}"))
            };
            push_rows(sql.query(self.dialect).fetch_all(self.reader()).await?, &tag)?;
        }
        let mut sql = Sql::new(SELECT);
        sql.push(" FROM runs r").push(JOINS).push(" WHERE r.lifecycle_stage = 'active'");
        prefix(&mut sql, "r.name", &term.text);
        confine(&mut sql, "e.project_id", project_ids);
        sql.push(" ORDER BY r.name, r.run_uuid LIMIT ").bind(limit);
        push_rows(sql.query(self.dialect).fetch_all(self.reader()).await?, &experiment)?;
        hits.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(hits)
    }

    async fn find_models(
        &self,
        term: &SearchTerm,
        project_ids: Option<&[i64]>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let mut sql = Sql::new(
            "SELECT m.name, m.description, m.last_version, p.name AS project_name \
             FROM registered_models m JOIN projects p ON p.id = m.project_id WHERE 1 = 1",
        );
        prefix(&mut sql, "m.name", &term.text);
        confine(&mut sql, "m.project_id", project_ids);
        sql.push(" ORDER BY m.name, p.name LIMIT ").bind(limit);
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut hits = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            let versions: i64 = row.try_get("last_version")?;
            let description = text(&row, "description")?;
            let detail = if description.is_empty() {
                format!("{versions} version(s)")
            } else {
                format!("{versions} version(s) · {description}")
            };
            hits.push(SearchHit {
                kind: HitKind::Model,
                project: row.try_get("project_name")?,
                id: name.clone(),
                title: name,
                detail,
                target: None,
            });
        }
        Ok(hits)
    }

    async fn find_datasets(
        &self,
        term: &SearchTerm,
        project_ids: Option<&[i64]>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let mut sql = Sql::new(
            "SELECT d.name, d.description, p.name AS project_name FROM project_datasets d \
             JOIN projects p ON p.id = d.project_id WHERE d.deleted_at IS NULL",
        );
        prefix(&mut sql, "d.name", &term.text);
        confine(&mut sql, "d.project_id", project_ids);
        sql.push(" ORDER BY d.name, p.name LIMIT ").bind(limit);
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut hits = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            hits.push(SearchHit {
                kind: HitKind::Dataset,
                project: row.try_get("project_name")?,
                id: name.clone(),
                title: name,
                detail: text(&row, "description")?,
                target: None,
            });
        }
        Ok(hits)
    }

    /// Comments containing the term (ASCII case folded) among the newest [`COMMENT_WINDOW`].
    async fn find_comments(
        &self,
        term: &SearchTerm,
        project_ids: Option<&[i64]>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let mut window = Sql::new("SELECT id FROM comments WHERE 1 = 1");
        confine(&mut window, "project_id", project_ids);
        window.push(" ORDER BY id DESC LIMIT ").bind(COMMENT_WINDOW);
        let ids: Vec<i64> = window
            .query(self.dialect)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>("id"))
            .collect::<sqlx::Result<_>>()?;
        let Some(&oldest) = ids.last() else { return Ok(Vec::new()) };
        let pattern = format!("%{}%", like_escape(&term.text.to_ascii_lowercase()));
        let mut sql = Sql::new(
            "SELECT c.id, c.target_kind, c.target_key, c.author, c.body, p.name AS project_name \
             FROM comments c JOIN projects p ON p.id = c.project_id WHERE c.id >= ",
        );
        sql.bind(oldest);
        confine(&mut sql, "c.project_id", project_ids);
        sql.push(" AND LOWER(c.body) LIKE ").bind(pattern).push(" ESCAPE '\\'");
        sql.push(" ORDER BY c.id DESC LIMIT ").bind(limit);
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut hits = Vec::new();
        for row in rows {
            let kind: String = row.try_get("target_kind")?;
            let key: String = row.try_get("target_key")?;
            let target = cairn_domain::comments::CommentTarget::from_parts(&kind, &key)?;
            let body: String = row.try_get("body")?;
            let author: String = row.try_get("author")?;
            hits.push(SearchHit {
                kind: HitKind::Comment,
                project: row.try_get("project_name")?,
                id: row.try_get::<i64, _>("id")?.to_string(),
                title: excerpt(&body),
                detail: format!("by {author} on {target}"),
                target: Some(target.to_string()),
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("short"), "short");
        assert_eq!(excerpt("first\nsecond"), "first…");
        assert_eq!(excerpt(&"x".repeat(200)).chars().count(), 121);
    }
}
