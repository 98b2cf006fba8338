//! Secrets: ciphertexts only (the service encrypts and decrypts); every write and every read of a
//! value is an audit record.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{SecretInfo, SecretScope};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{append, entry};
use crate::{Store, StoreError, StoreResult};

/// An encrypted secret as stored.
#[derive(Debug, Clone)]
pub struct SealedSecret {
    /// Row id.
    pub id: i64,
    /// Whom it belongs to.
    pub scope: SecretScope,
    /// Its name.
    pub name: String,
    /// Which key sealed it.
    pub key_id: String,
    /// The nonce, base64.
    pub nonce: String,
    /// The ciphertext with its tag, base64.
    pub ciphertext: String,
}

const SECRET_SELECT: &str = "SELECT s.id, s.scope_kind, s.name, s.key_id, s.nonce, s.ciphertext, \
     s.created_by, s.created_at, s.updated_at, COALESCE(p.name, u.username) AS scope_name \
     FROM secrets s LEFT JOIN projects p ON s.scope_kind = 'project' AND p.id = s.scope_id \
     LEFT JOIN users u ON s.scope_kind = 'user' AND u.id = s.scope_id";

fn scope_from_row(row: &AnyRow) -> StoreResult<SecretScope> {
    let kind: String = row.try_get("scope_kind")?;
    let name: String = row.try_get("scope_name")?;
    Ok(match kind.as_str() {
        "project" => SecretScope::Project(name),
        _ => SecretScope::User(name),
    })
}

fn info_from_row(row: &AnyRow) -> StoreResult<SecretInfo> {
    Ok(SecretInfo {
        scope: scope_from_row(row)?,
        name: row.try_get("name")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn sealed_from_row(row: &AnyRow) -> StoreResult<SealedSecret> {
    Ok(SealedSecret {
        id: row.try_get("id")?,
        scope: scope_from_row(row)?,
        name: row.try_get("name")?,
        key_id: row.try_get("key_id")?,
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}

impl Store {
    /// Creates or replaces a secret's value.
    #[expect(clippy::too_many_arguments, reason = "one argument per stored column")]
    pub async fn put_secret(
        &self,
        context: &RequestContext,
        scope_kind: &str,
        scope_id: i64,
        name: &str,
        key_id: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> StoreResult<SecretInfo> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3, updated_at = $4 \
             WHERE scope_kind = $5 AND scope_id = $6 AND name = $7",
        )
        .bind(key_id)
        .bind(nonce)
        .bind(ciphertext)
        .bind(now)
        .bind(scope_kind)
        .bind(scope_id)
        .bind(name)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated == 0 {
            sqlx::query(
                "INSERT INTO secrets (scope_kind, scope_id, name, key_id, nonce, ciphertext, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(scope_kind)
            .bind(scope_id)
            .bind(name)
            .bind(key_id)
            .bind(nonce)
            .bind(ciphertext)
            .bind(&context.actor)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "secret.put",
                format!("secret:{scope_kind}:{scope_id}/{name}"),
                serde_json::json!({"created": updated == 0, "key_id": key_id}),
            ),
        )
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SECRET_SELECT} WHERE s.scope_kind = $1 AND s.scope_id = $2 AND s.name = $3"
        )))
        .bind(scope_kind)
        .bind(scope_id)
        .bind(name)
        .fetch_one(self.reader())
        .await?;
        info_from_row(&row)
    }

    /// Deletes a secret.
    pub async fn delete_secret(
        &self,
        context: &RequestContext,
        scope_kind: &str,
        scope_id: i64,
        name: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM secrets WHERE scope_kind = $1 AND scope_id = $2 AND name = $3",
        )
        .bind(scope_kind)
        .bind(scope_id)
        .bind(name)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(DomainError::not_found(format!("no secret named '{name}'")).into());
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "secret.delete",
                format!("secret:{scope_kind}:{scope_id}/{name}"),
                serde_json::json!({}),
            ),
        )
        .await
    }

    /// The secrets of one scope, names only.
    pub async fn list_secrets(
        &self,
        scope_kind: &str,
        scope_id: i64,
    ) -> StoreResult<Vec<SecretInfo>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SECRET_SELECT} WHERE s.scope_kind = $1 AND s.scope_id = $2 ORDER BY s.name"
        )))
        .bind(scope_kind)
        .bind(scope_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(info_from_row).collect()
    }

    /// Reads the sealed secrets a job or workspace receives (its project's and its user's) and
    /// records one audit entry per secret read, naming the reader (`("job_id", 7)`).
    pub async fn read_secrets_for(
        &self,
        context: &RequestContext,
        reader: (&str, i64),
        project_id: i64,
        user_id: Option<i64>,
    ) -> StoreResult<Vec<SealedSecret>> {
        let mut transaction = self.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SECRET_SELECT} WHERE (s.scope_kind = 'project' AND s.scope_id = $1) \
             OR (s.scope_kind = 'user' AND s.scope_id = $2) ORDER BY s.scope_kind, s.name"
        )))
        .bind(project_id)
        .bind(user_id.unwrap_or(-1))
        .fetch_all(&mut *transaction)
        .await?;
        let sealed: Vec<SealedSecret> =
            rows.iter().map(sealed_from_row).collect::<StoreResult<_>>()?;
        for secret in &sealed {
            append(
                &mut transaction,
                self.dialect,
                context,
                entry(
                    "secret.read",
                    format!(
                        "secret:{}:{}/{}",
                        secret.scope.kind(),
                        secret.scope.name(),
                        secret.name
                    ),
                    serde_json::json!({ reader.0: reader.1 }),
                ),
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(sealed)
    }

    /// Every sealed secret (for key rotation).
    pub async fn all_sealed_secrets(&self) -> StoreResult<Vec<SealedSecret>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SECRET_SELECT} ORDER BY s.id")))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(sealed_from_row).collect()
    }

    /// Replaces every listed secret's sealing in one transaction (a key rotation).
    pub async fn reseal_secrets(
        &self,
        context: &RequestContext,
        resealed: &[SealedSecret],
        new_key_id: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        for secret in resealed {
            let changed = sqlx::query(
                "UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3 WHERE id = $4",
            )
            .bind(&secret.key_id)
            .bind(&secret.nonce)
            .bind(&secret.ciphertext)
            .bind(secret.id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if changed != 1 {
                return Err(StoreError::from(DomainError::precondition(
                    "a secret changed during the rotation: run it again",
                )));
            }
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "secret.rotate",
                "secrets".into(),
                serde_json::json!({"count": resealed.len(), "key_id": new_key_id}),
            ),
        )
        .await
    }
}
