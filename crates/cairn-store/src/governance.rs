//! Registry governance: revisioned model cards and policies, approval requests with their
//! decisions, and the history of alias and stage movements. A governed movement happens in the
//! same transaction as the decision that allows it, together with its history row and audit
//! record, so the alias never moves without its approval on record and vice versa.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::Stage;
use cairn_domain::governance::{
    ApprovalRequest, ApprovalState, Decision, Evidence, HistoryEntry, ModelCard, Policy, PolicyRef,
    PolicyRules, PromotionTarget,
};
use cairn_domain::time::now_millis;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::entry;
use crate::registry::{model_id, require_version, touch};
use crate::sql::Sql;
use crate::{Store, StoreError, StoreResult};

/// A policy to create.
#[derive(Debug, Clone)]
pub struct NewPolicy {
    /// The project, or `None` for a site-wide policy.
    pub project_id: Option<i64>,
    /// Unique within its scope.
    pub name: String,
    /// The governed alias or stage.
    pub target: PromotionTarget,
    /// Only this model, or every model in scope.
    pub model_name: Option<String>,
    /// The first revision's rules.
    pub rules: PolicyRules,
}

/// One saved revision of a model card.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRevision {
    /// From 1.
    pub revision: i64,
    /// The card.
    pub card: ModelCard,
    /// Who saved it.
    pub author: String,
    /// When (epoch ms).
    pub created_at: i64,
}

/// One revision of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRevision {
    /// From 1.
    pub revision: i64,
    /// Its rules.
    pub rules: PolicyRules,
    /// Who wrote it.
    pub created_by: String,
    /// When (epoch ms).
    pub created_at: i64,
}

/// What a decision on a pending request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// A reviewer approves; the target moves when enough approvals and the checks pass.
    Approve,
    /// A reviewer rejects; final.
    Reject,
    /// The requester or a project owner withdraws; final.
    Withdraw,
    /// Nobody decides; the evidence is refreshed and the target moves if now satisfied.
    Reevaluate,
}

/// Filters of a request listing.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Only this project's requests.
    pub project_id: Option<i64>,
    /// Only requests in this state.
    pub state: Option<ApprovalState>,
    /// Only requests for this model (by name at request time).
    pub model_name: Option<String>,
    /// Only requests for this version.
    pub version: Option<i64>,
    /// Most rows returned.
    pub limit: i64,
}

/// How a promotion request ended up when opened.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The request.
    pub request: ApprovalRequest,
    /// Whether an already pending request for the same version and target was returned.
    pub existing: bool,
}

fn json_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn parse_json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(raw).map_err(|error| {
        DomainError {
            kind: cairn_domain::ErrorKind::Internal,
            message: format!("stored {what} is unreadable: {error}"),
        }
        .into()
    })
}

const POLICY_SELECT: &str = "SELECT p.id, p.project_id, pr.name AS project_name, p.name, p.target_kind, \
     p.target, p.model_name, p.revision, p.active, p.created_at, r.rules, r.created_by AS updated_by, \
     r.created_at AS updated_at FROM policies p \
     JOIN policy_revisions r ON r.policy = p.id AND r.revision = p.revision \
     LEFT JOIN projects pr ON pr.id = p.project_id";

fn policy_from_row(row: &AnyRow) -> StoreResult<Policy> {
    let kind: String = row.try_get("target_kind")?;
    let target: String = row.try_get("target")?;
    Ok(Policy {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        project: row.try_get("project_name")?,
        name: row.try_get("name")?,
        target: PromotionTarget::from_parts(&kind, &target)?,
        model_name: row.try_get("model_name")?,
        revision: row.try_get("revision")?,
        active: row.try_get::<i64, _>("active")? != 0,
        rules: parse_json(&row.try_get::<String, _>("rules")?, "policy rules")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
        created_at: row.try_get("created_at")?,
    })
}

const REQUEST_SELECT: &str = "SELECT a.id, a.project_id, p.name AS project_name, a.model_name, a.version, \
     a.target_kind, a.target, a.archive_existing, a.state, a.requested_by, a.comment, a.evidence, \
     a.created_at, a.updated_at, a.decided_by, a.decided_at \
     FROM approval_requests a JOIN projects p ON p.id = a.project_id";

fn request_from_row(row: &AnyRow) -> StoreResult<ApprovalRequest> {
    let kind: String = row.try_get("target_kind")?;
    let target: String = row.try_get("target")?;
    Ok(ApprovalRequest {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        project: row.try_get("project_name")?,
        model_name: row.try_get("model_name")?,
        version: row.try_get("version")?,
        target: PromotionTarget::from_parts(&kind, &target)?,
        archive_existing: row.try_get::<i64, _>("archive_existing")? != 0,
        state: ApprovalState::parse(&row.try_get::<String, _>("state")?)?,
        requested_by: row.try_get("requested_by")?,
        comment: row.try_get("comment")?,
        evidence: parse_json(&row.try_get::<String, _>("evidence")?, "evidence")?,
        decisions: Vec::new(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
    })
}

fn history_from_row(row: &AnyRow) -> StoreResult<HistoryEntry> {
    Ok(HistoryEntry {
        id: row.try_get("id")?,
        model_name: row.try_get("model_name")?,
        kind: row.try_get("kind")?,
        target: row.try_get("target")?,
        version: row.try_get("version")?,
        previous_version: row.try_get("previous_version")?,
        previous_stage: row.try_get("previous_stage")?,
        actor: row.try_get("actor")?,
        request_id: row.try_get("request_id")?,
        at: row.try_get("at")?,
    })
}

/// One movement to record.
pub(crate) struct Movement<'a> {
    pub model: i64,
    pub model_name: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
    pub version: Option<i64>,
    pub previous_version: Option<i64>,
    pub previous_stage: Option<&'a str>,
    pub actor: &'a str,
    pub request_id: Option<i64>,
}

pub(crate) async fn record_movement(
    transaction: &mut Transaction<'static, Any>,
    movement: Movement<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO registry_history (model, model_name, kind, target, version, previous_version, \
         previous_stage, actor, request_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(movement.model)
    .bind(movement.model_name)
    .bind(movement.kind)
    .bind(movement.target)
    .bind(movement.version)
    .bind(movement.previous_version)
    .bind(movement.previous_stage)
    .bind(movement.actor)
    .bind(movement.request_id)
    .bind(now_millis())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Points an alias at a version (or removes it), recording the movement.
pub(crate) async fn move_alias(
    transaction: &mut Transaction<'static, Any>,
    model: i64,
    name: &str,
    alias: &str,
    version: Option<i64>,
    actor: &str,
    request_id: Option<i64>,
) -> StoreResult<()> {
    let previous: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM registered_model_aliases WHERE model = $1 AND alias = $2",
    )
    .bind(model)
    .bind(alias)
    .fetch_optional(&mut **transaction)
    .await?;
    match version {
        Some(version) => {
            require_version(transaction, model, name, version).await?;
            sqlx::query(
                "INSERT INTO registered_model_aliases (model, alias, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
            )
            .bind(model)
            .bind(alias)
            .bind(version)
            .execute(&mut **transaction)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM registered_model_aliases WHERE model = $1 AND alias = $2")
                .bind(model)
                .bind(alias)
                .execute(&mut **transaction)
                .await?;
        }
    }
    if previous != version {
        record_movement(
            transaction,
            Movement {
                model,
                model_name: name,
                kind: "alias",
                target: alias,
                version,
                previous_version: previous,
                previous_stage: None,
                actor,
                request_id,
            },
        )
        .await?;
    }
    touch(transaction, model).await
}

/// Moves a version to a stage, optionally archiving the others in it, recording each movement.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn move_stage(
    transaction: &mut Transaction<'static, Any>,
    model: i64,
    name: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
    actor: &str,
    request_id: Option<i64>,
) -> StoreResult<()> {
    require_version(transaction, model, name, version).await?;
    let now = now_millis();
    let mut moved: Vec<(i64, String, Stage)> = Vec::new();
    if archive_existing && matches!(stage, Stage::Staging | Stage::Production) {
        let others: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM model_versions WHERE model = $1 AND current_stage = $2 AND version != $3 ORDER BY version",
        )
        .bind(model)
        .bind(stage.as_str())
        .bind(version)
        .fetch_all(&mut **transaction)
        .await?;
        moved.extend(
            others.into_iter().map(|other| (other, stage.as_str().into(), Stage::Archived)),
        );
    }
    let current: String = sqlx::query_scalar(
        "SELECT current_stage FROM model_versions WHERE model = $1 AND version = $2",
    )
    .bind(model)
    .bind(version)
    .fetch_one(&mut **transaction)
    .await?;
    moved.push((version, current, stage));
    for (moved_version, previous, new_stage) in moved {
        sqlx::query(
            "UPDATE model_versions SET current_stage = $1, last_updated_timestamp = $2 WHERE model = $3 AND version = $4",
        )
        .bind(new_stage.as_str())
        .bind(now)
        .bind(model)
        .bind(moved_version)
        .execute(&mut **transaction)
        .await?;
        if previous != new_stage.as_str() {
            record_movement(
                transaction,
                Movement {
                    model,
                    model_name: name,
                    kind: "stage",
                    target: new_stage.as_str(),
                    version: Some(moved_version),
                    previous_version: None,
                    previous_stage: Some(&previous),
                    actor,
                    request_id,
                },
            )
            .await?;
        }
    }
    touch(transaction, model).await
}

async fn apply_request(
    transaction: &mut Transaction<'static, Any>,
    request: &ApprovalRequest,
    model: i64,
    actor: &str,
) -> StoreResult<()> {
    match &request.target {
        PromotionTarget::Alias(alias) => {
            move_alias(
                transaction,
                model,
                &request.model_name,
                alias,
                Some(request.version),
                actor,
                Some(request.id),
            )
            .await
        }
        PromotionTarget::Stage(stage) => {
            move_stage(
                transaction,
                model,
                &request.model_name,
                request.version,
                *stage,
                request.archive_existing,
                actor,
                Some(request.id),
            )
            .await
        }
    }
}

async fn close_request(
    transaction: &mut Transaction<'static, Any>,
    id: i64,
    state: ApprovalState,
    actor: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE approval_requests SET state = $1, decided_by = $2, decided_at = $3 WHERE id = $4",
    )
    .bind(state.as_str())
    .bind(actor)
    .bind(now_millis())
    .bind(id)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

impl Store {
    /// Saves a new revision of a version's model card; returns the revision.
    pub async fn save_model_card(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        version: i64,
        card: &ModelCard,
    ) -> StoreResult<CardRevision> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        require_version(&mut transaction, model, name, version).await?;
        let revision: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(revision), 0) + 1 FROM model_cards WHERE model = $1 AND version = $2",
        )
        .bind(model)
        .bind(version)
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO model_cards (model, version, revision, content, author, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(model)
        .bind(version)
        .bind(revision)
        .bind(json_of(card))
        .bind(&context.actor)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "model_card.save",
                format!("registered_model:{name}"),
                serde_json::json!({"version": version, "revision": revision}),
            ),
        )
        .await?;
        Ok(CardRevision {
            revision,
            card: card.clone(),
            author: context.actor.clone(),
            created_at: now,
        })
    }

    /// Every revision of a version's model card, oldest first.
    pub async fn model_card_revisions(
        &self,
        project_id: i64,
        name: &str,
        version: i64,
    ) -> StoreResult<Vec<CardRevision>> {
        self.get_model_version(project_id, name, version).await?;
        let rows = sqlx::query(
            "SELECT c.revision, c.content, c.author, c.created_at FROM model_cards c \
             JOIN registered_models m ON m.id = c.model \
             WHERE m.project_id = $1 AND m.name = $2 AND c.version = $3 ORDER BY c.revision",
        )
        .bind(project_id)
        .bind(name)
        .bind(version)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CardRevision {
                    revision: row.try_get("revision")?,
                    card: parse_json(&row.try_get::<String, _>("content")?, "model card")?,
                    author: row.try_get("author")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Creates a policy at revision 1.
    pub async fn create_policy(
        &self,
        context: &RequestContext,
        policy: &NewPolicy,
    ) -> StoreResult<Policy> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO policies (project_id, name, target_kind, target, model_name, revision, active, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, 1, $6, $7) RETURNING id",
        )
        .bind(policy.project_id)
        .bind(&policy.name)
        .bind(policy.target.kind())
        .bind(policy.target.name())
        .bind(&policy.model_name)
        .bind(&context.actor)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let id: i64 = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "a policy named '{}' exists already in this scope",
                    policy.name
                ))
                .into());
            }
            other => other?,
        };
        insert_revision(&mut transaction, id, 1, &policy.rules, &context.actor, now).await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "policy.create",
                format!("policy:{id}"),
                serde_json::json!({
                    "name": policy.name, "project_id": policy.project_id,
                    "target": format!("{}:{}", policy.target.kind(), policy.target.name()),
                    "model_name": policy.model_name, "rules": policy.rules,
                }),
            ),
        )
        .await?;
        self.get_policy(id).await
    }

    /// Writes a new revision of a policy's rules; past revisions (and the approvals that cite
    /// them) are kept as they were.
    pub async fn update_policy(
        &self,
        context: &RequestContext,
        id: i64,
        rules: &PolicyRules,
    ) -> StoreResult<Policy> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let revision: Option<i64> = sqlx::query_scalar(
            "UPDATE policies SET revision = revision + 1 WHERE id = $1 AND active = 1 RETURNING revision",
        )
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?;
        let revision = revision.ok_or_else(|| policy_not_found(id))?;
        insert_revision(&mut transaction, id, revision, rules, &context.actor, now).await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "policy.update",
                format!("policy:{id}"),
                serde_json::json!({"revision": revision, "rules": rules}),
            ),
        )
        .await?;
        self.get_policy(id).await
    }

    /// Takes a policy out of force; it stays on record with its revisions.
    pub async fn deactivate_policy(&self, context: &RequestContext, id: i64) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let changed = sqlx::query("UPDATE policies SET active = 0 WHERE id = $1 AND active = 1")
            .bind(id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(policy_not_found(id));
        }
        self.commit_audited(
            transaction,
            context,
            entry("policy.delete", format!("policy:{id}"), serde_json::json!({})),
        )
        .await
    }

    /// Loads a policy (active or not) at its current revision.
    pub async fn get_policy(&self, id: i64) -> StoreResult<Policy> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{POLICY_SELECT} WHERE p.id = $1")))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| policy_not_found(id))?;
        policy_from_row(&row)
    }

    /// Every revision of a policy, oldest first.
    pub async fn policy_revisions(&self, id: i64) -> StoreResult<Vec<PolicyRevision>> {
        let rows = sqlx::query(
            "SELECT revision, rules, created_by, created_at FROM policy_revisions WHERE policy = $1 ORDER BY revision",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PolicyRevision {
                    revision: row.try_get("revision")?,
                    rules: parse_json(&row.try_get::<String, _>("rules")?, "policy rules")?,
                    created_by: row.try_get("created_by")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The active policies of a project and the site-wide ones, by id.
    pub async fn list_policies(&self, project_id: i64) -> StoreResult<Vec<Policy>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{POLICY_SELECT} WHERE p.active = 1 AND (p.project_id = $1 OR p.project_id IS NULL) ORDER BY p.id"
        )))
        .bind(project_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// The active policies that govern moving `model_name` to `target` in a project.
    pub async fn covering_policies(
        &self,
        project_id: i64,
        model_name: &str,
        target: &PromotionTarget,
    ) -> StoreResult<Vec<Policy>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{POLICY_SELECT} WHERE p.active = 1 AND (p.project_id = $1 OR p.project_id IS NULL) \
             AND p.target_kind = $2 AND p.target = $3 AND (p.model_name IS NULL OR p.model_name = $4) ORDER BY p.id"
        )))
        .bind(project_id)
        .bind(target.kind())
        .bind(target.name())
        .bind(model_name)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Opens a request to move a version to a governed target, or refreshes and returns the
    /// pending one for the same version and target. When nothing more is needed (no approvals
    /// required and every check passes) the target moves at once and the request is approved.
    /// A pending request for another version of the same target is a conflict naming it.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_request(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        version: i64,
        target: &PromotionTarget,
        archive_existing: bool,
        comment: Option<&str>,
        evidence: &Evidence,
    ) -> StoreResult<Opened> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        require_version(&mut transaction, model, name, version).await?;
        let pending: Option<(i64, i64)> = sqlx::query_as(
            "SELECT id, version FROM approval_requests WHERE model = $1 AND target_kind = $2 AND target = $3 AND state = 'pending'",
        )
        .bind(model)
        .bind(target.kind())
        .bind(target.name())
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some((id, pending_version)) = pending {
            drop(transaction);
            if pending_version != version {
                return Err(DomainError::already_exists(format!(
                    "approval request {id} to move {target} of model '{name}' to version {pending_version} is pending; \
                     it must be decided or withdrawn (`cairn approvals withdraw {id}`) before version {version} can be proposed"
                ))
                .into());
            }
            let request =
                self.decide_request(context, id, DecisionKind::Reevaluate, None, evidence).await?;
            return Ok(Opened { request, existing: true });
        }
        let inserted = sqlx::query_scalar(
            "INSERT INTO approval_requests (project_id, model, model_name, version, target_kind, target, \
             archive_existing, state, requested_by, comment, evidence, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11, $11) RETURNING id",
        )
        .bind(project_id)
        .bind(model)
        .bind(name)
        .bind(version)
        .bind(target.kind())
        .bind(target.name())
        .bind(i64::from(archive_existing))
        .bind(&context.actor)
        .bind(comment)
        .bind(json_of(evidence))
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let id: i64 = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "another promotion of {target} of model '{name}' was requested at the same moment; list it with `cairn approvals list`"
                ))
                .into());
            }
            other => other?,
        };
        let satisfied = evidence.approvals_required == 0 && evidence.checks_pass();
        let mut details = serde_json::json!({
            "model": name, "version": version,
            "target": format!("{}:{}", target.kind(), target.name()),
            "policies": evidence.policies, "applied": satisfied,
        });
        if satisfied {
            let request = load_request(&mut transaction, id).await?;
            apply_request(&mut transaction, &request, model, &context.actor).await?;
            close_request(&mut transaction, id, ApprovalState::Approved, &context.actor).await?;
            details["state"] = serde_json::json!("approved");
        }
        self.commit_audited(
            transaction,
            context,
            entry("approval.open", format!("approval_request:{id}"), details),
        )
        .await?;
        Ok(Opened { request: self.get_request(id).await?, existing: false })
    }

    /// Records a decision on a pending request with freshly evaluated evidence, and moves the
    /// target when the request is satisfied: the approvals (counted inside the transaction,
    /// after locking the request) reach what the evidence requires and every check passes.
    pub async fn decide_request(
        &self,
        context: &RequestContext,
        id: i64,
        kind: DecisionKind,
        comment: Option<&str>,
        evidence: &Evidence,
    ) -> StoreResult<ApprovalRequest> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        // Locks the row (PostgreSQL) or the database (SQLite) before anything is counted.
        let locked = sqlx::query(
            "UPDATE approval_requests SET updated_at = $1, evidence = $2 WHERE id = $3 AND state = 'pending'",
        )
        .bind(now)
        .bind(json_of(evidence))
        .bind(id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if locked == 0 {
            drop(transaction);
            let request = self.get_request(id).await?;
            return Err(DomainError::precondition(format!(
                "approval request {id} is {} (by {} ); it cannot change any more",
                request.state.as_str(),
                request.decided_by.as_deref().unwrap_or("nobody")
            ))
            .into());
        }
        let request = load_request(&mut transaction, id).await?;
        let action = match kind {
            DecisionKind::Approve | DecisionKind::Reject => {
                let decision = if kind == DecisionKind::Approve { "approve" } else { "reject" };
                let inserted = sqlx::query(
                    "INSERT INTO approval_decisions (request, reviewer, decision, comment, policies, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(&context.actor)
                .bind(decision)
                .bind(comment)
                .bind(json_of(&evidence.policies))
                .bind(now)
                .execute(&mut *transaction)
                .await
                .map_err(StoreError::from);
                match inserted {
                    Err(error) if error.is_unique_violation() => {
                        return Err(DomainError::already_exists(format!(
                            "'{}' has already decided on approval request {id}",
                            context.actor
                        ))
                        .into());
                    }
                    other => other?,
                };
                if kind == DecisionKind::Reject {
                    close_request(&mut transaction, id, ApprovalState::Rejected, &context.actor)
                        .await?;
                    "approval.reject"
                } else {
                    "approval.approve"
                }
            }
            DecisionKind::Withdraw => {
                close_request(&mut transaction, id, ApprovalState::Withdrawn, &context.actor)
                    .await?;
                "approval.withdraw"
            }
            DecisionKind::Reevaluate => "approval.evaluate",
        };
        let mut applied = false;
        if matches!(kind, DecisionKind::Approve | DecisionKind::Reevaluate) {
            let approvals: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM approval_decisions WHERE request = $1 AND decision = 'approve'",
            )
            .bind(id)
            .fetch_one(&mut *transaction)
            .await?;
            if approvals >= i64::from(evidence.approvals_required) && evidence.checks_pass() {
                let model: i64 =
                    sqlx::query_scalar("SELECT model FROM approval_requests WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *transaction)
                        .await?;
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM registered_models WHERE id = $1")
                        .bind(model)
                        .fetch_optional(&mut *transaction)
                        .await?;
                if exists.is_none() {
                    return Err(DomainError::precondition(format!(
                        "model '{}' of approval request {id} no longer exists; withdraw the request",
                        request.model_name
                    ))
                    .into());
                }
                apply_request(&mut transaction, &request, model, &context.actor).await?;
                close_request(&mut transaction, id, ApprovalState::Approved, &context.actor)
                    .await?;
                applied = true;
            }
        }
        let details = serde_json::json!({
            "model": request.model_name, "version": request.version,
            "target": format!("{}:{}", request.target.kind(), request.target.name()),
            "policies": evidence.policies, "comment": comment, "applied": applied,
        });
        self.commit_audited(
            transaction,
            context,
            entry(action, format!("approval_request:{id}"), details),
        )
        .await?;
        self.get_request(id).await
    }

    /// Loads a request with its decisions.
    pub async fn get_request(&self, id: i64) -> StoreResult<ApprovalRequest> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{REQUEST_SELECT} WHERE a.id = $1")))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| request_not_found(id))?;
        let mut request = request_from_row(&row)?;
        request.decisions = self.decisions(id).await?;
        Ok(request)
    }

    async fn decisions(&self, id: i64) -> StoreResult<Vec<Decision>> {
        let rows = sqlx::query(
            "SELECT reviewer, decision, comment, policies, created_at FROM approval_decisions \
             WHERE request = $1 ORDER BY created_at, reviewer",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Decision {
                    reviewer: row.try_get("reviewer")?,
                    decision: row.try_get("decision")?,
                    comment: row.try_get("comment")?,
                    policies: parse_json::<Vec<PolicyRef>>(
                        &row.try_get::<String, _>("policies")?,
                        "decision policies",
                    )?,
                    at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Requests matching a filter, newest first, with their decisions.
    pub async fn list_requests(&self, filter: &RequestFilter) -> StoreResult<Vec<ApprovalRequest>> {
        let mut sql = Sql::new(REQUEST_SELECT);
        sql.push(" WHERE 1 = 1");
        if let Some(project_id) = filter.project_id {
            sql.push(" AND a.project_id = ").bind(project_id);
        }
        if let Some(state) = filter.state {
            sql.push(" AND a.state = ").bind(state.as_str());
        }
        if let Some(model_name) = &filter.model_name {
            sql.push(" AND a.model_name = ").bind(model_name.clone());
        }
        if let Some(version) = filter.version {
            sql.push(" AND a.version = ").bind(version);
        }
        sql.push(" ORDER BY a.id DESC LIMIT ").bind(filter.limit.clamp(1, 1000));
        let rows = sql.query(self.dialect()).fetch_all(self.reader()).await?;
        let mut requests = rows.iter().map(request_from_row).collect::<StoreResult<Vec<_>>>()?;
        for request in &mut requests {
            request.decisions = self.decisions(request.id).await?;
        }
        Ok(requests)
    }

    /// The history of a registered model's aliases and stages, oldest first.
    pub async fn model_history(
        &self,
        project_id: i64,
        name: &str,
    ) -> StoreResult<Vec<HistoryEntry>> {
        let model = self.get_registered_model_id(project_id, name).await?;
        let rows = sqlx::query(
            "SELECT id, model_name, kind, target, version, previous_version, previous_stage, actor, request_id, at \
             FROM registry_history WHERE model = $1 ORDER BY id",
        )
        .bind(model)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(history_from_row).collect()
    }

    async fn get_registered_model_id(&self, project_id: i64, name: &str) -> StoreResult<i64> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM registered_models WHERE project_id = $1 AND name = $2",
        )
        .bind(project_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await?;
        id.ok_or_else(|| {
            DomainError::not_found(format!("Registered Model with name={name} not found")).into()
        })
    }
}

async fn load_request(
    transaction: &mut Transaction<'static, Any>,
    id: i64,
) -> StoreResult<ApprovalRequest> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{REQUEST_SELECT} WHERE a.id = $1")))
        .bind(id)
        .fetch_optional(&mut **transaction)
        .await?
        .ok_or_else(|| request_not_found(id))?;
    request_from_row(&row)
}

async fn insert_revision(
    transaction: &mut Transaction<'static, Any>,
    policy: i64,
    revision: i64,
    rules: &PolicyRules,
    actor: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO policy_revisions (policy, revision, rules, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(policy)
    .bind(revision)
    .bind(json_of(rules))
    .bind(actor)
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

fn policy_not_found(id: i64) -> StoreError {
    DomainError::not_found(format!("no policy with id {id}")).into()
}

fn request_not_found(id: i64) -> StoreError {
    DomainError::not_found(format!("no approval request with id {id}")).into()
}
