//! Registry governance over `/api/v1`: model cards, promotions, approval requests, policies,
//! the alias/stage history, the deploy gate and compliance bundles. Everything is scoped to the
//! request's project (`/p/<project>/api/v1/…`, else the caller's default project).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_domain::governance::{
    ApprovalRequest, ApprovalState, Check, DatasetRef, Decision, Evidence, HistoryEntry, ModelCard,
    Policy, PolicyRef, PolicyRules, PromotionTarget,
};
use cairn_service::{CardRevision, GateDecision, PolicyRevision, PolicySpec, Services};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use cairn_domain::identity::Access;

use super::extract::{Path, Query, parse_json};
use crate::context::Caller;

fn version_number(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().ok().filter(|version| *version > 0).ok_or_else(|| {
        ApiError::invalid(format!("version must be a positive integer, not '{raw}'"))
    })
}

// ----- model cards -----

/// A dataset named by a model card.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetRefBody {
    /// The dataset's name.
    name: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    /// Its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    /// Where it lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

/// The structured description of a model version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelCardBody {
    /// What the model is for, and what it is not for.
    #[serde(default)]
    intended_use: String,
    /// The data it was trained on.
    #[serde(default)]
    training_data: Vec<DatasetRefBody>,
    /// Headline metrics.
    #[serde(default)]
    metrics: std::collections::BTreeMap<String, f64>,
    /// Known limitations.
    #[serde(default)]
    limitations: String,
    /// Who is accountable.
    #[serde(default)]
    owner: String,
    /// Anything else.
    #[serde(default)]
    notes: String,
}

impl From<ModelCardBody> for ModelCard {
    fn from(body: ModelCardBody) -> Self {
        ModelCard {
            intended_use: body.intended_use,
            training_data: body
                .training_data
                .into_iter()
                .map(|d| DatasetRef {
                    name: d.name,
                    version: d.version,
                    digest: d.digest,
                    source: d.source,
                })
                .collect(),
            metrics: body.metrics,
            limitations: body.limitations,
            owner: body.owner,
            notes: body.notes,
        }
    }
}

impl From<ModelCard> for ModelCardBody {
    fn from(card: ModelCard) -> Self {
        ModelCardBody {
            intended_use: card.intended_use,
            training_data: card
                .training_data
                .into_iter()
                .map(|d| DatasetRefBody {
                    name: d.name,
                    version: d.version,
                    digest: d.digest,
                    source: d.source,
                })
                .collect(),
            metrics: card.metrics,
            limitations: card.limitations,
            owner: card.owner,
            notes: card.notes,
        }
    }
}

/// One revision of a model card.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardView {
    /// From 1; every save adds one.
    revision: i64,
    /// Who saved it.
    author: String,
    /// When (epoch ms).
    created_at: i64,
    /// Fields a filled card needs that this one lacks.
    missing: Vec<String>,
    /// The card.
    card: ModelCardBody,
}

impl From<CardRevision> for CardView {
    fn from(revision: CardRevision) -> Self {
        CardView {
            revision: revision.revision,
            author: revision.author,
            created_at: revision.created_at,
            missing: revision.card.missing().into_iter().map(String::from).collect(),
            card: revision.card.into(),
        }
    }
}

/// Which card revision to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardParams {
    /// A revision number; the latest when absent.
    revision: Option<i64>,
}

/// Read a version's model card (the latest revision, or `?revision=`).
#[utoipa::path(get, path = "/models/{name}/versions/{version}/card", tag = "governance",
    params(("name" = String, Path), ("version" = String, Path), CardParams),
    responses((status = OK, body = CardView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_card(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, version)): Path<(String, String)>,
    Query(params): Query<CardParams>,
) -> ApiResult<axum::Json<CardView>> {
    let version = version_number(&version)?;
    let revisions = services.governance.card_revisions(&context, &name, version).await?;
    let found = match params.revision {
        Some(wanted) => revisions.into_iter().find(|revision| revision.revision == wanted),
        None => revisions.into_iter().last(),
    };
    found.map(|revision| axum::Json(revision.into())).ok_or_else(|| {
        ApiError::not_found(format!("version {version} of model '{name}' has no such model card"))
    })
}

/// Every revision of a version's model card, oldest first.
#[utoipa::path(get, path = "/models/{name}/versions/{version}/card/revisions", tag = "governance",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = OK, body = Vec<CardView>), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn card_revisions(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<Vec<CardView>>> {
    let version = version_number(&version)?;
    let revisions = services.governance.card_revisions(&context, &name, version).await?;
    Ok(axum::Json(revisions.into_iter().map(CardView::from).collect()))
}

/// Save a version's model card as a new revision.
#[utoipa::path(put, path = "/models/{name}/versions/{version}/card", tag = "governance",
    params(("name" = String, Path), ("version" = String, Path)), request_body = ModelCardBody,
    responses((status = OK, body = CardView), (status = BAD_REQUEST, body = ErrorBody), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn save_card(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, version)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<CardView>> {
    services.governance.authorize(&context, Access::Write).await?;
    let body: ModelCardBody = parse_json(&body)?;
    let version = version_number(&version)?;
    let card: ModelCard = body.into();
    let saved = services.governance.save_card(&context, &name, version, &card).await?;
    Ok(axum::Json(saved.into()))
}

// ----- approvals -----

/// A policy at a revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyRefView {
    id: i64,
    name: String,
    revision: i64,
}

impl From<PolicyRef> for PolicyRefView {
    fn from(policy: PolicyRef) -> Self {
        Self { id: policy.id, name: policy.name, revision: policy.revision }
    }
}

/// One automatically evaluated requirement.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckView {
    policy: PolicyRefView,
    requirement: String,
    passed: bool,
    detail: String,
}

impl From<Check> for CheckView {
    fn from(check: Check) -> Self {
        Self {
            policy: check.policy.into(),
            requirement: check.requirement,
            passed: check.passed,
            detail: check.detail,
        }
    }
}

/// The evidence of a request, as last evaluated.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceView {
    evaluated_at: i64,
    policies: Vec<PolicyRefView>,
    approvals_required: u32,
    checks: Vec<CheckView>,
}

impl From<Evidence> for EvidenceView {
    fn from(evidence: Evidence) -> Self {
        Self {
            evaluated_at: evidence.evaluated_at,
            policies: evidence.policies.into_iter().map(Into::into).collect(),
            approvals_required: evidence.approvals_required,
            checks: evidence.checks.into_iter().map(Into::into).collect(),
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    reviewer: String,
    /// `approve` or `reject`.
    decision: String,
    comment: Option<String>,
    /// The policy revisions in force when the decision was made.
    policies: Vec<PolicyRefView>,
    at: i64,
}

impl From<Decision> for DecisionView {
    fn from(decision: Decision) -> Self {
        Self {
            reviewer: decision.reviewer,
            decision: decision.decision,
            comment: decision.comment,
            policies: decision.policies.into_iter().map(Into::into).collect(),
            at: decision.at,
        }
    }
}

fn target_string(target: &PromotionTarget) -> String {
    format!("{}:{}", target.kind(), target.name())
}

/// An approval request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    id: i64,
    project: String,
    model: String,
    version: i64,
    /// `alias:<name>` or `stage:<name>`.
    target: String,
    archive_existing_versions: bool,
    /// `pending`, `approved`, `rejected` or `withdrawn`.
    state: String,
    requested_by: String,
    comment: Option<String>,
    approvals: u32,
    evidence: EvidenceView,
    decisions: Vec<DecisionView>,
    created_at: i64,
    updated_at: i64,
    decided_by: Option<String>,
    decided_at: Option<i64>,
}

impl From<ApprovalRequest> for ApprovalView {
    fn from(request: ApprovalRequest) -> Self {
        Self {
            approvals: request.approvals(),
            id: request.id,
            project: request.project,
            model: request.model_name,
            version: request.version,
            target: target_string(&request.target),
            archive_existing_versions: request.archive_existing,
            state: request.state.as_str().to_string(),
            requested_by: request.requested_by,
            comment: request.comment,
            evidence: request.evidence.into(),
            decisions: request.decisions.into_iter().map(Into::into).collect(),
            created_at: request.created_at,
            updated_at: request.updated_at,
            decided_by: request.decided_by,
            decided_at: request.decided_at,
        }
    }
}

/// Where to move a version: exactly one of `alias` and `stage`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    alias: Option<String>,
    stage: Option<String>,
    /// For stages: archive the other versions in that stage when the move happens.
    #[serde(default)]
    archive_existing_versions: bool,
    /// Why; shown to reviewers.
    comment: Option<String>,
}

/// What a promotion did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionView {
    /// Whether the alias or stage has moved.
    applied: bool,
    /// The approval request, when a policy governs the target.
    request: Option<ApprovalView>,
}

/// Promote a version to an alias or stage: applied at once when no policy governs the target,
/// otherwise through an approval request (opened, or refreshed if pending for this version).
#[utoipa::path(post, path = "/models/{name}/versions/{version}/promote", tag = "governance",
    params(("name" = String, Path), ("version" = String, Path)), request_body = PromoteBody,
    responses((status = OK, body = PromotionView), (status = BAD_REQUEST, body = ErrorBody), (status = CONFLICT, body = ErrorBody)))]
pub async fn promote(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, version)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<PromotionView>> {
    services.governance.authorize(&context, Access::Write).await?;
    let body: PromoteBody = parse_json(&body)?;
    let version = version_number(&version)?;
    let target = match (body.alias, body.stage) {
        (Some(alias), None) => PromotionTarget::Alias(alias),
        (None, Some(stage)) => PromotionTarget::from_parts("stage", &stage)
            .map_err(|error| ApiError::invalid(error.message))?,
        _ => return Err(ApiError::invalid("give exactly one of 'alias' and 'stage'")),
    };
    let promotion = services
        .governance
        .promote(
            &context,
            &name,
            version,
            &target,
            body.archive_existing_versions,
            body.comment.as_deref(),
        )
        .await?;
    Ok(axum::Json(PromotionView {
        applied: promotion.applied,
        request: promotion.request.map(Into::into),
    }))
}

/// Filters of a request listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalParams {
    /// `pending`, `approved`, `rejected` or `withdrawn`.
    state: Option<String>,
    /// Only this model's requests.
    model: Option<String>,
    /// Every project's requests (governance reviewers and admins).
    #[serde(default)]
    all_projects: bool,
    /// Most requests returned (default 100).
    limit: Option<i64>,
}

/// List approval requests, newest first.
#[utoipa::path(get, path = "/approvals", tag = "governance", params(ApprovalParams),
    responses((status = OK, body = Vec<ApprovalView>), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn list_approvals(
    State(services): State<Services>,
    Caller(context): Caller,
    Query(params): Query<ApprovalParams>,
) -> ApiResult<axum::Json<Vec<ApprovalView>>> {
    let state = params
        .state
        .map(|state| ApprovalState::parse(&state))
        .transpose()
        .map_err(|error| ApiError::invalid(error.message))?;
    let requests = services
        .governance
        .list_requests(
            &context,
            state,
            params.model,
            params.all_projects,
            params.limit.unwrap_or(100),
        )
        .await?;
    Ok(axum::Json(requests.into_iter().map(Into::into).collect()))
}

fn request_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::invalid(format!("approval request ids are integers, not '{raw}'")))
}

/// One approval request with its evidence and decisions.
#[utoipa::path(get, path = "/approvals/{id}", tag = "governance", params(("id" = i64, Path)),
    responses((status = OK, body = ApprovalView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_approval(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ApprovalView>> {
    let request = services.governance.get_request(&context, request_id(&id)?).await?;
    Ok(axum::Json(request.into()))
}

/// A decision's comment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    comment: Option<String>,
}

fn optional_body(bytes: &[u8]) -> ApiResult<DecisionBody> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionBody::default());
    }
    parse_json(bytes)
}

/// Approve a pending request (governance reviewers who neither registered the version nor
/// requested the promotion). The target moves when the request is satisfied.
#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "governance", params(("id" = i64, Path)),
    request_body = DecisionBody,
    responses((status = OK, body = ApprovalView), (status = FORBIDDEN, body = ErrorBody), (status = CONFLICT, body = ErrorBody)))]
pub async fn approve(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<ApprovalView>> {
    decide(&services, &context, &id, &body, true).await
}

/// A reviewer's decision: authorised before the body is read.
async fn decide(
    services: &Services,
    context: &cairn_domain::audit::RequestContext,
    id: &str,
    body: &[u8],
    approve: bool,
) -> ApiResult<axum::Json<ApprovalView>> {
    services.governance.authorize_reviewer(context)?;
    let comment = optional_body(body)?.comment;
    let id = request_id(id)?;
    let request = if approve {
        services.governance.approve(context, id, comment.as_deref()).await?
    } else {
        services.governance.reject(context, id, comment.as_deref()).await?
    };
    Ok(axum::Json(request.into()))
}

/// Reject a pending request, with a comment; final for that request.
#[utoipa::path(post, path = "/approvals/{id}/reject", tag = "governance", params(("id" = i64, Path)),
    request_body = DecisionBody,
    responses((status = OK, body = ApprovalView), (status = FORBIDDEN, body = ErrorBody), (status = CONFLICT, body = ErrorBody)))]
pub async fn reject(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<ApprovalView>> {
    decide(&services, &context, &id, &body, false).await
}

/// Withdraw a pending request (its requester, or a project owner).
#[utoipa::path(post, path = "/approvals/{id}/withdraw", tag = "governance", params(("id" = i64, Path)),
    responses((status = OK, body = ApprovalView), (status = FORBIDDEN, body = ErrorBody), (status = CONFLICT, body = ErrorBody)))]
pub async fn withdraw(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ApprovalView>> {
    let request = services.governance.withdraw(&context, request_id(&id)?).await?;
    Ok(axum::Json(request.into()))
}

// ----- policies -----

/// What a promotion to the target requires.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    /// Approvals from governance reviewers (0–10).
    #[serde(default)]
    approvals: u32,
    /// Conditions on the source run, one comparison each: `metrics.auc >= 0.8`,
    /// `params.solver = 'lbfgs'`.
    #[serde(default)]
    conditions: Vec<String>,
    /// Whether a filled model card is required.
    #[serde(default)]
    require_model_card: bool,
    /// Deployment environments only versions approved under this policy may reach.
    #[serde(default)]
    environments: Vec<String>,
}

impl From<RulesBody> for PolicyRules {
    fn from(body: RulesBody) -> Self {
        PolicyRules {
            approvals: body.approvals,
            conditions: body.conditions,
            require_model_card: body.require_model_card,
            environments: body.environments,
        }
    }
}

impl From<PolicyRules> for RulesBody {
    fn from(rules: PolicyRules) -> Self {
        RulesBody {
            approvals: rules.approvals,
            conditions: rules.conditions,
            require_model_card: rules.require_model_card,
            environments: rules.environments,
        }
    }
}

/// A policy at its current revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    id: i64,
    /// The project, or null for a site-wide policy.
    project: Option<String>,
    name: String,
    /// `alias:<name>` or `stage:<name>`.
    target: String,
    /// Only this model, or every model in scope when null.
    model_name: Option<String>,
    revision: i64,
    active: bool,
    rules: RulesBody,
    updated_by: String,
    updated_at: i64,
    created_at: i64,
}

impl From<Policy> for PolicyView {
    fn from(policy: Policy) -> Self {
        Self {
            id: policy.id,
            project: policy.project,
            name: policy.name,
            target: target_string(&policy.target),
            model_name: policy.model_name,
            revision: policy.revision,
            active: policy.active,
            rules: policy.rules.into(),
            updated_by: policy.updated_by,
            updated_at: policy.updated_at,
            created_at: policy.created_at,
        }
    }
}

/// A policy to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicyBody {
    name: String,
    /// `alias:<name>` or `stage:<Staging|Production|Archived>`.
    target: String,
    /// Only this model; every model in scope when absent.
    model_name: Option<String>,
    /// Site-wide (site admins) rather than the request's project (its owners).
    #[serde(default)]
    site_wide: bool,
    #[serde(default)]
    rules: RulesBody,
}

/// The policies in force for the request's project: its own and the site-wide ones.
#[utoipa::path(get, path = "/policies", tag = "governance", responses((status = OK, body = Vec<PolicyView>)))]
pub async fn list_policies(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<PolicyView>>> {
    let policies = services.governance.list_policies(&context).await?;
    Ok(axum::Json(policies.into_iter().map(Into::into).collect()))
}

/// Create a policy (project owners; site-wide ones need a site admin).
#[utoipa::path(post, path = "/policies", tag = "governance", request_body = NewPolicyBody,
    responses((status = CREATED, body = PolicyView), (status = BAD_REQUEST, body = ErrorBody), (status = CONFLICT, body = ErrorBody)))]
pub async fn create_policy(
    State(services): State<Services>,
    Caller(context): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<PolicyView>)> {
    services.governance.authorize(&context, Access::Manage).await?;
    let body: NewPolicyBody = parse_json(&body)?;
    let spec = PolicySpec {
        site_wide: body.site_wide,
        name: body.name,
        target: body.target,
        model_name: body.model_name,
        rules: body.rules.into(),
    };
    let policy = services.governance.create_policy(&context, spec).await?;
    Ok((StatusCode::CREATED, axum::Json(policy.into())))
}

/// A policy revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyRevisionView {
    revision: i64,
    rules: RulesBody,
    created_by: String,
    created_at: i64,
}

impl From<PolicyRevision> for PolicyRevisionView {
    fn from(revision: PolicyRevision) -> Self {
        Self {
            revision: revision.revision,
            rules: revision.rules.into(),
            created_by: revision.created_by,
            created_at: revision.created_at,
        }
    }
}

/// A policy with every revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDetail {
    policy: PolicyView,
    revisions: Vec<PolicyRevisionView>,
}

fn policy_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::invalid(format!("policy ids are integers, not '{raw}'")))
}

/// A policy with its revisions.
#[utoipa::path(get, path = "/policies/{id}", tag = "governance", params(("id" = i64, Path)),
    responses((status = OK, body = PolicyDetail), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_policy(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PolicyDetail>> {
    let (policy, revisions) = services.governance.get_policy(&context, policy_id(&id)?).await?;
    Ok(axum::Json(PolicyDetail {
        policy: policy.into(),
        revisions: revisions.into_iter().map(Into::into).collect(),
    }))
}

/// Replace a policy's rules: a new revision; past approvals keep citing theirs.
#[utoipa::path(put, path = "/policies/{id}", tag = "governance", params(("id" = i64, Path)),
    request_body = RulesBody,
    responses((status = OK, body = PolicyView), (status = BAD_REQUEST, body = ErrorBody), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn update_policy(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<PolicyView>> {
    services.governance.authorize(&context, Access::Manage).await?;
    let body: RulesBody = parse_json(&body)?;
    let policy = services.governance.update_policy(&context, policy_id(&id)?, body.into()).await?;
    Ok(axum::Json(policy.into()))
}

/// Take a policy out of force (it stays on record).
#[utoipa::path(delete, path = "/policies/{id}", tag = "governance", params(("id" = i64, Path)),
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete_policy(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    services.governance.delete_policy(&context, policy_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- history, gate, bundle -----

/// One movement of an alias or stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    id: i64,
    model: String,
    /// `alias` or `stage`.
    kind: String,
    /// The alias or stage.
    target: String,
    /// The version that holds it now (null: the alias was removed).
    version: Option<i64>,
    previous_version: Option<i64>,
    previous_stage: Option<String>,
    actor: String,
    /// The approval request it moved under.
    request_id: Option<i64>,
    at: i64,
}

impl From<HistoryEntry> for HistoryView {
    fn from(entry: HistoryEntry) -> Self {
        Self {
            id: entry.id,
            model: entry.model_name,
            kind: entry.kind,
            target: entry.target,
            version: entry.version,
            previous_version: entry.previous_version,
            previous_stage: entry.previous_stage,
            actor: entry.actor,
            request_id: entry.request_id,
            at: entry.at,
        }
    }
}

/// Which version held which alias or stage when, who moved it and under which approval.
#[utoipa::path(get, path = "/models/{name}/history", tag = "governance", params(("name" = String, Path)),
    responses((status = OK, body = Vec<HistoryView>), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn history(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<HistoryView>>> {
    let entries = services.governance.history(&context, &name).await?;
    Ok(axum::Json(entries.into_iter().map(Into::into).collect()))
}

/// The environment asked about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GateParams {
    /// A deployment environment such as `production` (required).
    environment: Option<String>,
}

/// How one gating policy judged the deployment.
#[derive(Debug, Serialize, ToSchema)]
pub struct GateReasonView {
    policy: PolicyRefView,
    satisfied: bool,
    request_id: Option<i64>,
    message: String,
}

/// The deploy gate's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GateView {
    allowed: bool,
    reasons: Vec<GateReasonView>,
}

impl From<GateDecision> for GateView {
    fn from(decision: GateDecision) -> Self {
        Self {
            allowed: decision.allowed,
            reasons: decision
                .reasons
                .into_iter()
                .map(|reason| GateReasonView {
                    policy: reason.policy.into(),
                    satisfied: reason.satisfied,
                    request_id: reason.request_id,
                    message: reason.message,
                })
                .collect(),
        }
    }
}

/// May this version be deployed to the environment? Answered from the policies that gate it
/// and the approvals on record.
#[utoipa::path(get, path = "/models/{name}/versions/{version}/deploy-gate", tag = "governance",
    params(("name" = String, Path), ("version" = String, Path), GateParams),
    responses((status = OK, body = GateView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn deploy_gate(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, version)): Path<(String, String)>,
    Query(params): Query<GateParams>,
) -> ApiResult<axum::Json<GateView>> {
    services.governance.authorize(&context, Access::Read).await?;
    let version = version_number(&version)?;
    let environment = params
        .environment
        .filter(|environment| !environment.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("missing query parameter 'environment'"))?;
    let decision = services.governance.deploy_gate(&context, &name, version, &environment).await?;
    Ok(axum::Json(decision.into()))
}

/// Download the version's compliance bundle (`.tar.gz`: model card, lineage, approvals with
/// evidence, policies, history, audit records and a sha256 manifest). The export is audited.
#[utoipa::path(get, path = "/models/{name}/versions/{version}/bundle", tag = "governance",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = OK, content_type = "application/gzip", body = Vec<u8>), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn bundle(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let version = version_number(&version)?;
    let archive = services.governance.bundle(&context, &name, version).await?;
    let file = format!(
        "{}-v{version}-bundle.tar.gz",
        name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        archive,
    )
        .into_response())
}
