//! Comments on projects, runs and model versions, with the users they mention. Writing and
//! deleting a comment are audited in the same transaction; the audit record names the target
//! and the mentioned users, never the text (a deleted comment leaves no copy behind).

use cairn_domain::audit::RequestContext;
use cairn_domain::comments::{Comment, CommentTarget};
use cairn_domain::time::now_millis;
use cairn_domain::{DomainError, identity::Project};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::entry;
use crate::sql::Sql;
use crate::{Store, StoreResult};

const COMMENT_COLUMNS: &str = "c.id, c.project_id, p.name AS project_name, c.target_kind, \
     c.target_key, c.author_id, c.author, c.body, c.created_at";

/// A comment with what authorisation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    /// The project's id.
    pub project_id: i64,
    /// The author's user id (none for the anonymous caller).
    pub author_id: Option<i64>,
    /// The comment.
    pub comment: Comment,
}

fn record_from_row(row: &AnyRow) -> StoreResult<CommentRecord> {
    let kind: String = row.try_get("target_kind")?;
    let key: String = row.try_get("target_key")?;
    let target = CommentTarget::from_parts(&kind, &key)?;
    Ok(CommentRecord {
        project_id: row.try_get("project_id")?,
        author_id: row.try_get("author_id")?,
        comment: Comment {
            id: row.try_get("id")?,
            project: row.try_get("project_name")?,
            target: target.to_string(),
            author: row.try_get("author")?,
            body: row.try_get("body")?,
            mentions: Vec::new(),
            created_at: row.try_get("created_at")?,
        },
    })
}

impl Store {
    /// Writes a comment; `mentions` are user names, of which the existing active users are
    /// recorded (the others are left as text). Returns it with its resolved mentions.
    pub async fn create_comment(
        &self,
        context: &RequestContext,
        project: &Project,
        target: &CommentTarget,
        body: &str,
        mentions: &[String],
    ) -> StoreResult<Comment> {
        let author_id = context.principal.as_ref().map(|principal| principal.user_id);
        let created_at = now_millis();
        let mut transaction = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO comments (project_id, target_kind, target_key, author_id, author, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(project.id)
        .bind(target.kind())
        .bind(target.key())
        .bind(author_id)
        .bind(&context.actor)
        .bind(body)
        .bind(created_at)
        .fetch_one(&mut *transaction)
        .await?;
        let mut resolved: Vec<(i64, String)> = Vec::new();
        if !mentions.is_empty() {
            let mut sql =
                Sql::new("SELECT id, username FROM users WHERE active = 1 AND username IN ");
            sql.bind_list(mentions.iter().map(String::as_str)).push(" ORDER BY username");
            for row in sql.query(self.dialect).fetch_all(&mut *transaction).await? {
                resolved.push((row.try_get("id")?, row.try_get("username")?));
            }
        }
        for (user_id, _) in &resolved {
            sqlx::query("INSERT INTO comment_mentions (comment_id, user_id) VALUES ($1, $2)")
                .bind(id)
                .bind(*user_id)
                .execute(&mut *transaction)
                .await?;
        }
        let names: Vec<String> = resolved.into_iter().map(|(_, name)| name).collect();
        let details = serde_json::json!({
            "project": project.name,
            "target": target.to_string(),
            "mentions": names,
        });
        self.commit_audited(
            transaction,
            context,
            entry("comment.create", format!("comment:{id}"), details),
        )
        .await?;
        Ok(Comment {
            id,
            project: project.name.clone(),
            target: target.to_string(),
            author: context.actor.clone(),
            body: body.to_string(),
            mentions: names,
            created_at,
        })
    }

    /// Comments of a project, oldest first: on one target, or on everything when `target` is
    /// `None`; only those with an id above `after_id`; at most `limit`.
    pub async fn list_comments(
        &self,
        project_id: i64,
        target: Option<&CommentTarget>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Comment>> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COMMENT_COLUMNS)
            .push(" FROM comments c JOIN projects p ON p.id = c.project_id WHERE c.project_id = ")
            .bind(project_id);
        if let Some(target) = target {
            sql.push(" AND c.target_kind = ").bind(target.kind());
            sql.push(" AND c.target_key = ").bind(target.key());
        }
        sql.push(" AND c.id > ").bind(after_id).push(" ORDER BY c.id LIMIT ").bind(limit.max(1));
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut comments = rows
            .iter()
            .map(|row| record_from_row(row).map(|record| record.comment))
            .collect::<StoreResult<Vec<_>>>()?;
        self.attach_mentions(&mut comments).await?;
        Ok(comments)
    }

    /// One comment with its project and author ids.
    pub async fn get_comment(&self, id: i64) -> StoreResult<CommentRecord> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COMMENT_COLUMNS)
            .push(" FROM comments c JOIN projects p ON p.id = c.project_id WHERE c.id = ")
            .bind(id);
        let row = sql
            .query(self.dialect)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| DomainError::not_found(format!("no comment with id {id}")))?;
        let mut record = record_from_row(&row)?;
        let mut one = vec![record.comment];
        self.attach_mentions(&mut one).await?;
        record.comment = one.remove(0);
        Ok(record)
    }

    /// Deletes a comment and its mentions, audited.
    pub async fn delete_comment(&self, context: &RequestContext, id: i64) -> StoreResult<()> {
        let record = self.get_comment(id).await?;
        let mut transaction = self.begin().await?;
        sqlx::query("DELETE FROM comment_mentions WHERE comment_id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        let deleted = sqlx::query("DELETE FROM comments WHERE id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            transaction.rollback().await?;
            return Err(DomainError::not_found(format!("no comment with id {id}")).into());
        }
        let details = serde_json::json!({
            "project": record.comment.project,
            "target": record.comment.target,
            "author": record.comment.author,
        });
        self.commit_audited(
            transaction,
            context,
            entry("comment.delete", format!("comment:{id}"), details),
        )
        .await
    }

    /// The newest comments mentioning a user, newest first, in the given projects (all when
    /// `project_ids` is `None`).
    pub async fn comments_mentioning(
        &self,
        user_id: i64,
        project_ids: Option<&[i64]>,
        limit: i64,
    ) -> StoreResult<Vec<Comment>> {
        if project_ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT ");
        sql.push(COMMENT_COLUMNS)
            .push(
                " FROM comment_mentions m JOIN comments c ON c.id = m.comment_id \
                 JOIN projects p ON p.id = c.project_id WHERE m.user_id = ",
            )
            .bind(user_id);
        if let Some(ids) = project_ids {
            sql.push(" AND c.project_id IN ").bind_list(ids.iter().copied());
        }
        sql.push(" ORDER BY m.comment_id DESC LIMIT ").bind(limit.max(1));
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut comments = rows
            .iter()
            .map(|row| record_from_row(row).map(|record| record.comment))
            .collect::<StoreResult<Vec<_>>>()?;
        self.attach_mentions(&mut comments).await?;
        Ok(comments)
    }

    /// Fills in the mentioned user names of `comments` with one query.
    async fn attach_mentions(&self, comments: &mut [Comment]) -> StoreResult<()> {
        if comments.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::new(
            "SELECT m.comment_id, u.username FROM comment_mentions m JOIN users u ON u.id = m.user_id \
             WHERE m.comment_id IN ",
        );
        sql.bind_list(comments.iter().map(|comment| comment.id)).push(" ORDER BY u.username");
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        for row in rows {
            let comment_id: i64 = row.try_get("comment_id")?;
            let username: String = row.try_get("username")?;
            if let Some(comment) = comments.iter_mut().find(|comment| comment.id == comment_id) {
                comment.mentions.push(username);
            }
        }
        Ok(())
    }
}
