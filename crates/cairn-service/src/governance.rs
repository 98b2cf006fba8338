//! Governance of the registry: model cards, policies, promotions through approval requests, the
//! deploy gate, the alias/stage history and compliance bundles.
//!
//! A promotion (moving a version to an alias or stage) that no policy covers happens at once.
//! One that a policy covers opens an approval request whose evidence (metric conditions on the
//! source run, a filled model card) is evaluated automatically when it is opened and again at
//! each decision; when the approvals of governance reviewers reach the policies' count and
//! every check passes, the target moves in the same transaction as the deciding approval.
//! Reviewers are users with the `governance-reviewer` site role who neither registered the
//! version nor asked for its promotion (separation of duties).

use std::collections::HashMap;

use cairn_domain::ErrorKind;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::ModelVersion;
use cairn_domain::governance::{
    ApprovalRequest, ApprovalState, Evidence, HistoryEntry, ModelCard, Policy, PolicyRef,
    PolicyRules, PromotionTarget, RunFacts,
};
use cairn_domain::identity::{Access, SiteRole};
use cairn_domain::time::now_millis;
use cairn_store::{CardRevision, DecisionKind, NewPolicy, PolicyRevision, RequestFilter, Store};

use crate::{Authorizer, ServiceError, ServiceResult};

/// What a promotion did.
#[derive(Debug, Clone)]
pub struct Promotion {
    /// Whether the alias or stage has moved.
    pub applied: bool,
    /// The approval request, when a policy covers the target.
    pub request: Option<ApprovalRequest>,
}

/// The deploy gate's answer for one version and environment.
#[derive(Debug, Clone, PartialEq)]
pub struct GateDecision {
    /// Whether the version may be deployed there.
    pub allowed: bool,
    /// One line per gating policy: what satisfied it or what is missing.
    pub reasons: Vec<GateReason>,
}

/// How one policy judges a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReason {
    /// The gating policy.
    pub policy: PolicyRef,
    /// Whether it is satisfied.
    pub satisfied: bool,
    /// The approved request that satisfies it.
    pub request_id: Option<i64>,
    /// For people.
    pub message: String,
}

/// A policy to create through the service.
#[derive(Debug, Clone)]
pub struct PolicySpec {
    /// Site-wide (site admins only) instead of the request's project.
    pub site_wide: bool,
    /// Unique within its scope.
    pub name: String,
    /// `alias:<name>` or `stage:<name>`.
    pub target: String,
    /// Only this model.
    pub model_name: Option<String>,
    /// The rules.
    pub rules: PolicyRules,
}

/// Governance operations.
#[derive(Clone)]
pub struct GovernanceService {
    pub(crate) store: Store,
    authz: Authorizer,
}

fn precondition(message: String) -> ServiceError {
    ServiceError { kind: ErrorKind::FailedPrecondition, message }
}

fn denied(message: String) -> ServiceError {
    ServiceError { kind: ErrorKind::PermissionDenied, message }
}

fn validate_policy_name(name: &str) -> ServiceResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "invalid policy name '{name}': 1–64 letters, digits, '-', '_' or '.'"
        )))
    }
}

impl GovernanceService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { authz: Authorizer::new(store.clone()), store }
    }

    async fn project(&self, context: &RequestContext, access: Access) -> ServiceResult<i64> {
        let project = self.authz.scoped_project(context).await?;
        self.authz.require(context, project.id, access).await?;
        Ok(project.id)
    }

    /// Checks, before a request body is even read, that the caller has `access` to the
    /// request's project.
    pub async fn authorize(&self, context: &RequestContext, access: Access) -> ServiceResult<()> {
        self.project(context, access).await.map(|_| ())
    }

    /// Checks, before a request body is even read, that the caller is a governance reviewer.
    pub fn authorize_reviewer(&self, context: &RequestContext) -> ServiceResult<()> {
        Self::require_reviewer(context)
    }

    async fn run_facts(&self, version: &ModelVersion) -> ServiceResult<RunFacts> {
        let Some(run_id) = &version.run_id else { return Ok(RunFacts::default()) };
        let run = match self.store.get_run(run_id).await {
            Ok(run) => run,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(RunFacts::default()),
            Err(error) => return Err(error.into()),
        };
        Ok(RunFacts {
            run_id: Some(run_id.clone()),
            metrics: run.metrics.into_iter().map(|metric| (metric.key, metric.value)).collect(),
            params: run.params.into_iter().map(|param| (param.key, param.value)).collect(),
            tags: run.tags.into_iter().map(|tag| (tag.key, tag.value)).collect(),
        })
    }

    async fn latest_card(
        &self,
        project_id: i64,
        name: &str,
        version: i64,
    ) -> ServiceResult<Option<ModelCard>> {
        let revisions = self.store.model_card_revisions(project_id, name, version).await?;
        Ok(revisions.into_iter().last().map(|revision| revision.card))
    }

    /// Evaluates the policies covering a promotion now.
    async fn evaluate(
        &self,
        project_id: i64,
        version: &ModelVersion,
        target: &PromotionTarget,
    ) -> ServiceResult<(Vec<Policy>, Evidence)> {
        let policies = self.store.covering_policies(project_id, &version.name, target).await?;
        if policies.is_empty() {
            return Ok((policies, Evidence { evaluated_at: now_millis(), ..Evidence::default() }));
        }
        let facts = self.run_facts(version).await?;
        let card = self.latest_card(project_id, &version.name, version.version).await?;
        let evidence = Evidence::evaluate(&policies, &facts, card.as_ref(), now_millis());
        Ok((policies, evidence))
    }

    // ----- model cards -----

    /// Saves a new revision of a version's model card.
    pub async fn save_card(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        card: &ModelCard,
    ) -> ServiceResult<CardRevision> {
        card.validate()?;
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.save_model_card(context, project, name, version, card).await?)
    }

    /// Every revision of a version's model card, oldest first.
    pub async fn card_revisions(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
    ) -> ServiceResult<Vec<CardRevision>> {
        let project = self.project(context, Access::Read).await?;
        Ok(self.store.model_card_revisions(project, name, version).await?)
    }

    // ----- policies -----

    /// Creates a policy in the request's project (project owners) or site-wide (site admins).
    pub async fn create_policy(
        &self,
        context: &RequestContext,
        spec: PolicySpec,
    ) -> ServiceResult<Policy> {
        let project_id = if spec.site_wide {
            self.authz.require_admin(context)?;
            None
        } else {
            Some(self.project(context, Access::Manage).await?)
        };
        validate_policy_name(&spec.name)?;
        let target = PromotionTarget::parse(&spec.target)?;
        spec.rules.validate()?;
        let new = NewPolicy {
            project_id,
            name: spec.name,
            target,
            model_name: spec.model_name.filter(|name| !name.is_empty()),
            rules: spec.rules,
        };
        Ok(self.store.create_policy(context, &new).await?)
    }

    /// Loads a visible policy: a site-wide one or one of the request's project.
    async fn visible_policy(
        &self,
        context: &RequestContext,
        id: i64,
        access: Access,
    ) -> ServiceResult<Policy> {
        let project = self.project(context, access).await?;
        let policy = self.store.get_policy(id).await?;
        match policy.project_id {
            Some(owner) if owner != project => Err(ServiceError {
                kind: ErrorKind::NotFound,
                message: format!("no policy with id {id}"),
            }),
            Some(owner) => {
                self.authz.require(context, owner, access).await?;
                Ok(policy)
            }
            None if access == Access::Read => Ok(policy),
            None => {
                self.authz.require_admin(context)?;
                Ok(policy)
            }
        }
    }

    /// A policy with all its revisions.
    pub async fn get_policy(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> ServiceResult<(Policy, Vec<PolicyRevision>)> {
        let policy = self.visible_policy(context, id, Access::Read).await?;
        let revisions = self.store.policy_revisions(id).await?;
        Ok((policy, revisions))
    }

    /// Writes a new revision of a policy's rules.
    pub async fn update_policy(
        &self,
        context: &RequestContext,
        id: i64,
        rules: PolicyRules,
    ) -> ServiceResult<Policy> {
        rules.validate()?;
        self.visible_policy(context, id, Access::Manage).await?;
        Ok(self.store.update_policy(context, id, &rules).await?)
    }

    /// Takes a policy out of force.
    pub async fn delete_policy(&self, context: &RequestContext, id: i64) -> ServiceResult<()> {
        self.visible_policy(context, id, Access::Manage).await?;
        Ok(self.store.deactivate_policy(context, id).await?)
    }

    /// The policies in force for the request's project (its own and the site-wide ones).
    pub async fn list_policies(&self, context: &RequestContext) -> ServiceResult<Vec<Policy>> {
        let project = self.project(context, Access::Read).await?;
        Ok(self.store.list_policies(project).await?)
    }

    // ----- promotions and approvals -----

    /// Moves a version to an alias or stage: at once when no policy covers the target,
    /// otherwise through an approval request (opened, or refreshed when one is pending for the
    /// same version), which may be satisfied at once when it needs no approvals.
    pub async fn promote(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        target: &PromotionTarget,
        archive_existing: bool,
        comment: Option<&str>,
    ) -> ServiceResult<Promotion> {
        let project = self.project(context, Access::Write).await?;
        if let PromotionTarget::Alias(alias) = target {
            crate::registry::validate_alias(alias)?;
        }
        if archive_existing && !matches!(target, PromotionTarget::Stage(_)) {
            return Err(ServiceError::invalid(
                "archive_existing_versions applies to stage targets only",
            ));
        }
        let model_version = self.store.get_model_version(project, name, version).await?;
        let (policies, evidence) = self.evaluate(project, &model_version, target).await?;
        if policies.is_empty() {
            match target {
                PromotionTarget::Alias(alias) => {
                    self.store.set_alias(context, project, name, alias, Some(version)).await?
                }
                PromotionTarget::Stage(stage) => {
                    self.store
                        .transition_stage(context, project, name, version, *stage, archive_existing)
                        .await?;
                }
            }
            return Ok(Promotion { applied: true, request: None });
        }
        let opened = self
            .store
            .open_request(
                context,
                project,
                name,
                version,
                target,
                archive_existing,
                comment,
                &evidence,
            )
            .await?;
        Ok(Promotion {
            applied: opened.request.state == ApprovalState::Approved,
            request: Some(opened.request),
        })
    }

    /// The MLflow path's guard before an alias or stage moves: `Ok(false)` when no policy covers
    /// the target (the caller moves it), `Ok(true)` when the promotion was governed and is now
    /// applied, otherwise an error naming the open request and what it still lacks.
    pub(crate) async fn guard(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        target: &PromotionTarget,
        archive_existing: bool,
    ) -> ServiceResult<bool> {
        let project = self.project(context, Access::Write).await?;
        if self.store.covering_policies(project, name, target).await?.is_empty() {
            return Ok(false);
        }
        let promotion =
            self.promote(context, name, version, target, archive_existing, None).await?;
        match promotion.request {
            Some(request) if !promotion.applied => Err(precondition(format!(
                "{target} of registered model '{name}' is governed by {}: moving it to version {version} needs approval request {} \
                 (pending; still missing: {}). Reviewers approve it with `cairn approvals approve {}`.",
                policy_names(&request.evidence.policies),
                request.id,
                request.evidence.shortfall(request.approvals()),
                request.id
            ))),
            _ => Ok(true),
        }
    }

    /// Loads a request the caller may see: within the request's project when it names one,
    /// else within the request's own project.
    async fn visible_request(
        &self,
        context: &RequestContext,
        id: i64,
        access: Access,
    ) -> ServiceResult<ApprovalRequest> {
        if context.project.is_some() {
            let project = self.project(context, access).await?;
            let request = self.store.get_request(id).await?;
            if request.project_id != project {
                return Err(ServiceError {
                    kind: ErrorKind::NotFound,
                    message: format!("no approval request with id {id}"),
                });
            }
            return Ok(request);
        }
        let request = self.store.get_request(id).await?;
        self.authz.require(context, request.project_id, access).await?;
        Ok(request)
    }

    /// One request with its evidence and decisions.
    pub async fn get_request(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> ServiceResult<ApprovalRequest> {
        self.visible_request(context, id, Access::Read).await
    }

    /// Requests of the request's project, newest first; reviewers and admins may ask for every
    /// project's with `all_projects`.
    pub async fn list_requests(
        &self,
        context: &RequestContext,
        state: Option<ApprovalState>,
        model_name: Option<String>,
        all_projects: bool,
        limit: i64,
    ) -> ServiceResult<Vec<ApprovalRequest>> {
        let project_id = if all_projects {
            let may = match &context.principal {
                None => true,
                Some(principal) => {
                    matches!(principal.site_role, SiteRole::Admin | SiteRole::GovernanceReviewer)
                        && principal.scope_project.is_none()
                }
            };
            if !may {
                return Err(denied(format!(
                    "'{}' may list only a project's requests; all projects need the governance-reviewer or admin site role",
                    context.actor
                )));
            }
            None
        } else {
            Some(self.project(context, Access::Read).await?)
        };
        let filter = RequestFilter { project_id, state, model_name, version: None, limit };
        Ok(self.store.list_requests(&filter).await?)
    }

    /// Requires the caller to be a governance reviewer.
    fn require_reviewer(context: &RequestContext) -> ServiceResult<()> {
        match &context.principal {
            Some(principal) if principal.site_role == SiteRole::GovernanceReviewer => Ok(()),
            Some(principal) => Err(denied(format!(
                "'{}' is a site {} and may not decide approval requests: that needs the governance-reviewer site role",
                principal.username,
                principal.site_role.as_str()
            ))),
            None => Err(precondition(
                "approval decisions need an authenticated governance reviewer; start the server with `--auth enabled`"
                    .to_string(),
            )),
        }
    }

    async fn decide(
        &self,
        context: &RequestContext,
        id: i64,
        kind: DecisionKind,
        comment: Option<&str>,
    ) -> ServiceResult<ApprovalRequest> {
        Self::require_reviewer(context)?;
        let request = self.visible_request(context, id, Access::Read).await?;
        if request.state != ApprovalState::Pending {
            return Err(precondition(format!(
                "approval request {id} is {} and cannot be decided any more",
                request.state.as_str()
            )));
        }
        let version = self
            .store
            .get_model_version(request.project_id, &request.model_name, request.version)
            .await
            .map_err(|error| match error.kind() {
                ErrorKind::NotFound => precondition(format!(
                    "version {} of model '{}' named by approval request {id} no longer exists under that name; withdraw the request",
                    request.version, request.model_name
                )),
                _ => error.into(),
            })?;
        let reviewer = context.actor.as_str();
        if version.user_id.as_deref() == Some(reviewer) {
            return Err(denied(format!(
                "separation of duties: '{reviewer}' registered version {} of '{}' and may not decide its promotion",
                request.version, request.model_name
            )));
        }
        if request.requested_by == reviewer {
            return Err(denied(format!(
                "separation of duties: '{reviewer}' requested this promotion and may not decide it"
            )));
        }
        let (_, evidence) = self.evaluate(request.project_id, &version, &request.target).await?;
        Ok(self.store.decide_request(context, id, kind, comment, &evidence).await?)
    }

    /// Approves a pending request; the target moves when the request is satisfied.
    pub async fn approve(
        &self,
        context: &RequestContext,
        id: i64,
        comment: Option<&str>,
    ) -> ServiceResult<ApprovalRequest> {
        self.decide(context, id, DecisionKind::Approve, comment).await
    }

    /// Rejects a pending request; final for that request. A comment is required.
    pub async fn reject(
        &self,
        context: &RequestContext,
        id: i64,
        comment: Option<&str>,
    ) -> ServiceResult<ApprovalRequest> {
        if comment.is_none_or(|comment| comment.trim().is_empty()) {
            return Err(ServiceError::invalid("a rejection needs a comment saying why"));
        }
        self.decide(context, id, DecisionKind::Reject, comment).await
    }

    /// Withdraws a pending request: its requester, or a project owner.
    pub async fn withdraw(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> ServiceResult<ApprovalRequest> {
        let request = self.visible_request(context, id, Access::Write).await?;
        if request.requested_by != context.actor {
            self.authz.require(context, request.project_id, Access::Manage).await?;
        }
        let evidence = request.evidence.clone();
        Ok(self.store.decide_request(context, id, DecisionKind::Withdraw, None, &evidence).await?)
    }

    /// Which version held which alias or stage when, who moved it, under which request.
    pub async fn history(
        &self,
        context: &RequestContext,
        name: &str,
    ) -> ServiceResult<Vec<HistoryEntry>> {
        let project = self.project(context, Access::Read).await?;
        Ok(self.store.model_history(project, name).await?)
    }

    /// May `version` of `name` be deployed to `environment`? Every policy in force that gates
    /// the environment must have an approved promotion of this version to its target.
    pub async fn deploy_gate(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        environment: &str,
    ) -> ServiceResult<GateDecision> {
        let project = self.project(context, Access::Read).await?;
        self.store.get_model_version(project, name, version).await?;
        let gating: Vec<Policy> = self
            .store
            .list_policies(project)
            .await?
            .into_iter()
            .filter(|policy| policy.rules.gates(environment))
            .filter(|policy| policy.model_name.as_deref().is_none_or(|model| model == name))
            .collect();
        let filter = RequestFilter {
            project_id: Some(project),
            state: None,
            model_name: Some(name.to_string()),
            version: Some(version),
            limit: 1000,
        };
        let requests = self.store.list_requests(&filter).await?;
        let mut reasons = Vec::new();
        for policy in gating {
            let for_target: Vec<&ApprovalRequest> =
                requests.iter().filter(|request| request.target == policy.target).collect();
            let approved =
                for_target.iter().find(|request| request.state == ApprovalState::Approved);
            let reason = match approved {
                Some(request) => GateReason {
                    policy: policy.reference(),
                    satisfied: true,
                    request_id: Some(request.id),
                    message: format!(
                        "policy '{}' (revision {}) gates '{environment}': version {version} was approved for {} by request {}",
                        policy.name, policy.revision, policy.target, request.id
                    ),
                },
                None => {
                    let pending =
                        for_target.iter().find(|request| request.state == ApprovalState::Pending);
                    let missing = match pending {
                        Some(request) => format!(
                            "request {} is pending ({})",
                            request.id,
                            request.evidence.shortfall(request.approvals())
                        ),
                        None => format!(
                            "no approval exists; request one with `cairn model promote {name} {version} --{} {}`",
                            policy.target.kind(),
                            policy.target.name()
                        ),
                    };
                    GateReason {
                        policy: policy.reference(),
                        satisfied: false,
                        request_id: pending.map(|request| request.id),
                        message: format!(
                            "policy '{}' (revision {}) gates '{environment}': version {version} needs an approved promotion to {}; {missing}",
                            policy.name, policy.revision, policy.target
                        ),
                    }
                }
            };
            reasons.push(reason);
        }
        Ok(GateDecision { allowed: reasons.iter().all(|reason| reason.satisfied), reasons })
    }

    /// Everything a compliance bundle holds for one version, as named JSON documents.
    pub(crate) async fn bundle_documents(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
    ) -> ServiceResult<(String, Vec<(String, serde_json::Value)>)> {
        let project_id = self.project(context, Access::Read).await?;
        let project = self.authz.scoped_project(context).await?.name;
        let model_version = self.store.get_model_version(project_id, name, version).await?;
        let cards = self.store.model_card_revisions(project_id, name, version).await?;
        let requests = self
            .store
            .list_requests(&RequestFilter {
                project_id: Some(project_id),
                state: None,
                model_name: Some(name.to_string()),
                version: Some(version),
                limit: 1000,
            })
            .await?;
        let history: Vec<HistoryEntry> = self
            .store
            .model_history(project_id, name)
            .await?
            .into_iter()
            .filter(|entry| {
                entry.version == Some(version) || entry.previous_version == Some(version)
            })
            .collect();
        let mut policy_ids: Vec<i64> = requests
            .iter()
            .flat_map(|request| {
                let decided = request.decisions.iter().flat_map(|d| d.policies.iter());
                request.evidence.policies.iter().chain(decided).map(|policy| policy.id)
            })
            .collect();
        policy_ids.sort_unstable();
        policy_ids.dedup();
        let mut policies = Vec::new();
        for id in policy_ids {
            let policy = self.store.get_policy(id).await?;
            let revisions = self.store.policy_revisions(id).await?;
            policies.push(crate::bundle::policy_json(&policy, &revisions));
        }
        let lineage = match &model_version.run_id {
            Some(run_id) => match self.store.get_run(run_id).await {
                Ok(run) => crate::bundle::run_json(&run),
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    serde_json::json!({"run_id": run_id, "missing": true})
                }
                Err(error) => return Err(error.into()),
            },
            None => serde_json::Value::Null,
        };
        let request_ids: Vec<i64> = requests.iter().map(|request| request.id).collect();
        let audit = self.audit_records(name, version, &request_ids).await?;
        let documents = vec![
            ("version.json".to_string(), crate::bundle::version_json(&project, &model_version)),
            ("model-card.json".to_string(), crate::bundle::cards_json(&cards)),
            ("lineage.json".to_string(), lineage),
            (
                "approvals.json".to_string(),
                serde_json::Value::Array(
                    requests.iter().map(crate::bundle::request_json).collect(),
                ),
            ),
            ("policies.json".to_string(), serde_json::Value::Array(policies)),
            (
                "history.json".to_string(),
                serde_json::Value::Array(history.iter().map(crate::bundle::history_json).collect()),
            ),
            ("audit.json".to_string(), serde_json::to_value(&audit).unwrap_or_default()),
        ];
        Ok((project, documents))
    }

    /// The audit records about one version: the model's records that name the version (or the
    /// model as a whole, like its creation), and those of its approval requests.
    async fn audit_records(
        &self,
        name: &str,
        version: i64,
        request_ids: &[i64],
    ) -> ServiceResult<Vec<cairn_domain::audit::AuditRecord>> {
        let mut targets: Vec<String> = vec![format!("registered_model:{name}")];
        targets.extend(request_ids.iter().map(|id| format!("approval_request:{id}")));
        let mut records = Vec::new();
        for target in targets {
            let mut after_seq = 0;
            loop {
                let query = cairn_store::AuditQuery {
                    target: Some(target.clone()),
                    after_seq,
                    limit: 1000,
                    ..cairn_store::AuditQuery::default()
                };
                let (page, more) = self.store.search_audit(&query).await?;
                let Some(last) = page.last() else { break };
                after_seq = last.seq;
                records.extend(page.into_iter().filter(|record| {
                    let details: HashMap<String, serde_json::Value> =
                        serde_json::from_str(&record.details).unwrap_or_default();
                    match details.get("version") {
                        Some(value) => {
                            value.as_i64() == Some(version)
                                || value.as_str() == Some(&version.to_string())
                        }
                        None => true,
                    }
                }));
                if !more {
                    break;
                }
            }
        }
        records.sort_by_key(|record| record.seq);
        Ok(records)
    }
}

fn policy_names(policies: &[PolicyRef]) -> String {
    let names: Vec<String> = policies
        .iter()
        .map(|policy| format!("policy '{}' (revision {})", policy.name, policy.revision))
        .collect();
    names.join(" and ")
}
