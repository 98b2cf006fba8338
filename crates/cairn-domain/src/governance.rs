//! Governance of the registry: what a promotion to an alias or stage requires (policies), the
//! structured description of a model version (model cards), and the evidence an approval
//! request carries. Pure data and pure decisions; the store persists them and the service
//! evaluates them.
//!
//! A promotion target is an alias (`alias:champion`) or a stage (`stage:Production`). A policy
//! covers a target within a project (or site-wide) and optionally for one model name; several
//! policies may cover one promotion, and it must satisfy all of them: the largest approval count,
//! every metric condition, a filled model card where any asks for one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::entities::Stage;
use crate::search::{Comparator, FilterValue, RunKey, parse_run_filter};

/// Where a promotion moves a version: an alias or a legacy stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionTarget {
    /// A registered-model alias such as `champion`.
    Alias(String),
    /// A stage (`Staging`, `Production`, `Archived`).
    Stage(Stage),
}

impl PromotionTarget {
    /// `alias` or `stage`.
    pub fn kind(&self) -> &'static str {
        match self {
            PromotionTarget::Alias(_) => "alias",
            PromotionTarget::Stage(_) => "stage",
        }
    }

    /// The alias or the stage's canonical name.
    pub fn name(&self) -> &str {
        match self {
            PromotionTarget::Alias(alias) => alias,
            PromotionTarget::Stage(stage) => stage.as_str(),
        }
    }

    /// Builds a target from its stored kind and name.
    pub fn from_parts(kind: &str, name: &str) -> Result<Self, DomainError> {
        match kind {
            "alias" if !name.is_empty() => Ok(PromotionTarget::Alias(name.to_string())),
            "stage" => match Stage::parse(name)? {
                Stage::None => Err(DomainError::invalid(
                    "a promotion target cannot be the stage 'None'; use Staging, Production or Archived",
                )),
                stage => Ok(PromotionTarget::Stage(stage)),
            },
            _ => Err(DomainError::invalid(format!(
                "unknown promotion target '{kind}:{name}': use alias:<name> or stage:<Staging|Production|Archived>"
            ))),
        }
    }

    /// Parses `alias:<name>` or `stage:<name>`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let (kind, name) = raw.split_once(':').ok_or_else(|| {
            DomainError::invalid(format!(
                "unknown promotion target '{raw}': use alias:<name> or stage:<Staging|Production|Archived>"
            ))
        })?;
        Self::from_parts(kind, name)
    }
}

impl fmt::Display for PromotionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.kind(), self.name())
    }
}

/// What a policy requires of a promotion. Stored as JSON in each policy revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// Approvals needed from governance reviewers who are neither the version's author nor the
    /// requester.
    #[serde(default)]
    pub approvals: u32,
    /// Conditions on the source run in MLflow's filter grammar, each `metrics.<key> <op> <number>`,
    /// `params.<key> = '<text>'` or `tags.<key> = '<text>'` (`!=` too).
    #[serde(default)]
    pub conditions: Vec<String>,
    /// Whether the version's model card must be filled in.
    #[serde(default)]
    pub require_model_card: bool,
    /// Deployment environments (e.g. `production`) that only versions with an approved
    /// promotion under this policy may be deployed to.
    #[serde(default)]
    pub environments: Vec<String>,
}

/// The most approvals a policy may ask for.
pub const MAX_APPROVALS: u32 = 10;

impl PolicyRules {
    /// Checks the rules: the approval count is bounded and every condition parses and is a
    /// supported comparison.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.approvals > MAX_APPROVALS {
            return Err(DomainError::invalid(format!(
                "a policy may require at most {MAX_APPROVALS} approvals, not {}",
                self.approvals
            )));
        }
        for condition in &self.conditions {
            parse_condition(condition)?;
        }
        for environment in &self.environments {
            if environment.trim().is_empty() || environment.len() > 64 {
                return Err(DomainError::invalid(format!(
                    "invalid environment name '{environment}': 1–64 characters"
                )));
            }
        }
        Ok(())
    }

    /// Whether this policy gates deployments to `environment` (case-insensitive).
    pub fn gates(&self, environment: &str) -> bool {
        self.environments.iter().any(|gated| gated.eq_ignore_ascii_case(environment))
    }
}

/// One parsed policy condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    key: RunKey,
    comparator: Comparator,
    value: FilterValue,
}

/// Parses one condition; only metric comparisons with a number and `=`/`!=` on params and tags
/// are allowed, one per condition string.
pub fn parse_condition(raw: &str) -> Result<Condition, DomainError> {
    let mut comparisons = parse_run_filter(raw).map_err(|error| {
        DomainError::invalid(format!("invalid policy condition '{raw}': {}", error.message))
    })?;
    if comparisons.len() != 1 {
        return Err(DomainError::invalid(format!(
            "invalid policy condition '{raw}': write one comparison per condition"
        )));
    }
    let comparison = comparisons.remove(0);
    let supported = match (&comparison.key, comparison.comparator, &comparison.value) {
        (RunKey::Metric(_), comparator, FilterValue::Num(_)) => comparator.is_numeric(),
        (
            RunKey::Param(_) | RunKey::Tag(_),
            Comparator::Eq | Comparator::Ne,
            FilterValue::Str(_),
        ) => true,
        _ => false,
    };
    if !supported {
        return Err(DomainError::invalid(format!(
            "unsupported policy condition '{raw}': use metrics.<key> <op> <number>, or params.<key> / tags.<key> with = or != and a quoted value"
        )));
    }
    Ok(Condition {
        key: comparison.key,
        comparator: comparison.comparator,
        value: comparison.value,
    })
}

/// What a source run offers to conditions: latest metrics, params and tags.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// The run id, or `None` when the version has no source run.
    pub run_id: Option<String>,
    /// Latest metric values.
    pub metrics: HashMap<String, f64>,
    /// Params.
    pub params: HashMap<String, String>,
    /// Tags.
    pub tags: HashMap<String, String>,
}

fn compare_numbers(left: f64, comparator: Comparator, right: f64) -> bool {
    match comparator {
        Comparator::Eq => left == right,
        Comparator::Ne => left != right,
        Comparator::Gt => left > right,
        Comparator::Ge => left >= right,
        Comparator::Lt => left < right,
        Comparator::Le => left <= right,
        _ => false,
    }
}

impl Condition {
    /// Evaluates the condition on a run: whether it holds, and what was seen.
    pub fn evaluate(&self, facts: &RunFacts) -> (bool, String) {
        let Some(run_id) = &facts.run_id else {
            return (false, "the version has no source run to check".to_string());
        };
        match (&self.key, &self.value) {
            (RunKey::Metric(key), FilterValue::Num(expected)) => match facts.metrics.get(key) {
                Some(value) => (
                    compare_numbers(*value, self.comparator, *expected),
                    format!("metrics.{key} = {value} on run {run_id}"),
                ),
                None => (false, format!("metric '{key}' is not logged on run {run_id}")),
            },
            (RunKey::Param(key) | RunKey::Tag(key), FilterValue::Str(expected)) => {
                let (kind, map) = match &self.key {
                    RunKey::Param(_) => ("params", &facts.params),
                    _ => ("tags", &facts.tags),
                };
                match map.get(key) {
                    Some(value) => {
                        let equal = value == expected;
                        let holds = if self.comparator == Comparator::Eq { equal } else { !equal };
                        (holds, format!("{kind}.{key} = '{value}' on run {run_id}"))
                    }
                    None => (
                        self.comparator == Comparator::Ne,
                        format!("{kind}.{key} is not set on run {run_id}"),
                    ),
                }
            }
            _ => (false, "unsupported condition".to_string()),
        }
    }
}

/// A dataset a model was trained or evaluated on, as a model card names it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    /// The dataset's name.
    pub name: String,
    /// Its version, when versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its digest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Where it lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The structured description of a model version. Every save is a new revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// What the model is for, and what it is not for.
    #[serde(default)]
    pub intended_use: String,
    /// The data it was trained on.
    #[serde(default)]
    pub training_data: Vec<DatasetRef>,
    /// Headline metrics, as the authors report them.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Known limitations, biases and failure modes.
    #[serde(default)]
    pub limitations: String,
    /// The person or team accountable for the model.
    #[serde(default)]
    pub owner: String,
    /// Anything else.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// Longest text accepted in one card field.
const MAX_CARD_TEXT: usize = 65_536;

impl ModelCard {
    /// The fields a filled card must have that this one lacks (empty when filled).
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.intended_use.trim().is_empty() {
            missing.push("intended_use");
        }
        if self.training_data.is_empty() {
            missing.push("training_data");
        }
        if self.limitations.trim().is_empty() {
            missing.push("limitations");
        }
        if self.owner.trim().is_empty() {
            missing.push("owner");
        }
        missing
    }

    /// Checks sizes and values.
    pub fn validate(&self) -> Result<(), DomainError> {
        for (field, text) in [
            ("intended_use", &self.intended_use),
            ("limitations", &self.limitations),
            ("owner", &self.owner),
            ("notes", &self.notes),
        ] {
            if text.len() > MAX_CARD_TEXT {
                return Err(DomainError::invalid(format!(
                    "model card field '{field}' is longer than {MAX_CARD_TEXT} bytes"
                )));
            }
        }
        if self.training_data.iter().any(|dataset| dataset.name.trim().is_empty()) {
            return Err(DomainError::invalid("every training_data entry needs a name"));
        }
        if let Some((key, _)) = self.metrics.iter().find(|(_, value)| !value.is_finite()) {
            return Err(DomainError::invalid(format!("model card metric '{key}' is not finite")));
        }
        Ok(())
    }
}

/// A policy and the revision in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The policy's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The revision.
    pub revision: i64,
}

/// A policy (the current revision's rules).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Id.
    pub id: i64,
    /// The project's id, or `None` for a site-wide policy.
    pub project_id: Option<i64>,
    /// The project's name, or `None` for a site-wide policy.
    pub project: Option<String>,
    /// Unique name within its scope.
    pub name: String,
    /// The governed target.
    pub target: PromotionTarget,
    /// Only this registered model, or every model in scope.
    pub model_name: Option<String>,
    /// The current revision.
    pub revision: i64,
    /// Whether it is in force (deleted policies stay for the record).
    pub active: bool,
    /// The current revision's rules.
    pub rules: PolicyRules,
    /// Who wrote the current revision.
    pub updated_by: String,
    /// When (epoch ms).
    pub updated_at: i64,
    /// When the policy was created (epoch ms).
    pub created_at: i64,
}

impl Policy {
    /// The policy at its current revision.
    pub fn reference(&self) -> PolicyRef {
        PolicyRef { id: self.id, name: self.name.clone(), revision: self.revision }
    }
}

/// One automatically evaluated requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The policy that asks for it.
    pub policy: PolicyRef,
    /// What is required (`metrics.auc >= 0.8`, `model card filled`).
    pub requirement: String,
    /// Whether it holds.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// Everything a promotion is judged on, evaluated when it is requested and again at each
/// decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// When evaluated (epoch ms).
    pub evaluated_at: i64,
    /// The policies (and revisions) applied.
    pub policies: Vec<PolicyRef>,
    /// Approvals required: the largest of the policies'.
    pub approvals_required: u32,
    /// Automatic checks.
    pub checks: Vec<Check>,
}

impl Evidence {
    /// Whether every automatic check passed.
    pub fn checks_pass(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }

    /// Evaluates the policies against the run and the card.
    pub fn evaluate(
        policies: &[Policy],
        facts: &RunFacts,
        card: Option<&ModelCard>,
        now: i64,
    ) -> Self {
        let mut evidence = Evidence {
            evaluated_at: now,
            policies: policies.iter().map(Policy::reference).collect(),
            ..Evidence::default()
        };
        for policy in policies {
            evidence.approvals_required = evidence.approvals_required.max(policy.rules.approvals);
            for raw in &policy.rules.conditions {
                let (passed, detail) = match parse_condition(raw) {
                    Ok(condition) => condition.evaluate(facts),
                    Err(error) => (false, error.message),
                };
                evidence.checks.push(Check {
                    policy: policy.reference(),
                    requirement: raw.clone(),
                    passed,
                    detail,
                });
            }
            if policy.rules.require_model_card {
                let (passed, detail) = match card {
                    None => (false, "the version has no model card".to_string()),
                    Some(card) => match card.missing() {
                        missing if missing.is_empty() => (true, "filled".to_string()),
                        missing => (false, format!("missing {}", missing.join(", "))),
                    },
                };
                evidence.checks.push(Check {
                    policy: policy.reference(),
                    requirement: "model card filled".to_string(),
                    passed,
                    detail,
                });
            }
        }
        evidence
    }

    /// A one-line account of what is still missing, for error messages.
    pub fn shortfall(&self, approvals: u32) -> String {
        let mut parts = Vec::new();
        if approvals < self.approvals_required {
            parts.push(format!("{approvals} of {} approvals", self.approvals_required));
        }
        for check in self.checks.iter().filter(|check| !check.passed) {
            parts.push(format!(
                "{} fails ({}; policy '{}' revision {})",
                check.requirement, check.detail, check.policy.name, check.policy.revision
            ));
        }
        if parts.is_empty() { "nothing".to_string() } else { parts.join("; ") }
    }
}

/// The life of an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    /// Waiting for approvals or for its checks to pass.
    Pending,
    /// Satisfied; the target moved.
    Approved,
    /// Rejected by a reviewer; final.
    Rejected,
    /// Withdrawn by the requester or a project owner; final.
    Withdrawn,
}

impl ApprovalState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "pending" => Ok(ApprovalState::Pending),
            "approved" => Ok(ApprovalState::Approved),
            "rejected" => Ok(ApprovalState::Rejected),
            "withdrawn" => Ok(ApprovalState::Withdrawn),
            other => Err(DomainError::invalid(format!(
                "unknown approval state '{other}': use pending, approved, rejected or withdrawn"
            ))),
        }
    }
}

/// A reviewer's decision on a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Who decided.
    pub reviewer: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Their comment.
    pub comment: Option<String>,
    /// The policy revisions in force when they decided.
    pub policies: Vec<PolicyRef>,
    /// When (epoch ms).
    pub at: i64,
}

/// A request to promote a version to a governed target.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequest {
    /// Id.
    pub id: i64,
    /// The project's id.
    pub project_id: i64,
    /// The project.
    pub project: String,
    /// The registered model's name when requested.
    pub model_name: String,
    /// The version.
    pub version: i64,
    /// Where it is to move.
    pub target: PromotionTarget,
    /// For stage targets: archive the other versions in that stage when applied.
    pub archive_existing: bool,
    /// The state.
    pub state: ApprovalState,
    /// Who asked.
    pub requested_by: String,
    /// Why.
    pub comment: Option<String>,
    /// The latest evaluation.
    pub evidence: Evidence,
    /// Decisions so far, in order.
    pub decisions: Vec<Decision>,
    /// Created (epoch ms).
    pub created_at: i64,
    /// Last changed (epoch ms).
    pub updated_at: i64,
    /// Who closed it (approving reviewer, rejecting reviewer, withdrawing user).
    pub decided_by: Option<String>,
    /// When it was closed.
    pub decided_at: Option<i64>,
}

impl ApprovalRequest {
    /// Approvals recorded so far.
    pub fn approvals(&self) -> u32 {
        self.decisions.iter().filter(|decision| decision.decision == "approve").count() as u32
    }
}

/// One movement of an alias or stage.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// Sequence within the site (ascending in time).
    pub id: i64,
    /// The model's name at the time.
    pub model_name: String,
    /// `alias` or `stage`.
    pub kind: String,
    /// The alias or the stage.
    pub target: String,
    /// The version that now holds the alias / entered the stage; `None` when an alias was removed.
    pub version: Option<i64>,
    /// For aliases, the version that held it before.
    pub previous_version: Option<i64>,
    /// For stages, the stage the version left.
    pub previous_stage: Option<String>,
    /// Who moved it.
    pub actor: String,
    /// The approval request it moved under, if governed.
    pub request_id: Option<i64>,
    /// When (epoch ms).
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: PolicyRules) -> Policy {
        Policy {
            id: 1,
            project_id: Some(1),
            project: Some("churn".into()),
            name: "prod".into(),
            target: PromotionTarget::Alias("champion".into()),
            model_name: None,
            revision: 2,
            active: true,
            rules,
            updated_by: "owner".into(),
            updated_at: 0,
            created_at: 0,
        }
    }

    #[test]
    fn targets_parse_and_reject_none() {
        assert_eq!(
            PromotionTarget::parse("alias:champion").unwrap(),
            PromotionTarget::Alias("champion".into())
        );
        assert_eq!(
            PromotionTarget::parse("stage:production").unwrap(),
            PromotionTarget::Stage(Stage::Production)
        );
        assert!(PromotionTarget::parse("stage:None").is_err());
        assert!(PromotionTarget::parse("champion").is_err());
        assert!(PromotionTarget::parse("alias:").is_err());
    }

    #[test]
    fn conditions_accept_metric_and_param_comparisons_only() {
        assert!(parse_condition("metrics.auc >= 0.8").is_ok());
        assert!(parse_condition("params.solver = 'lbfgs'").is_ok());
        assert!(parse_condition("metrics.auc >= 0.8 and metrics.f1 > 0.5").is_err());
        assert!(parse_condition("attributes.status = 'FINISHED'").is_err());
        assert!(parse_condition("metrics.auc LIKE '%'").is_err());
        assert!(parse_condition("metrics.auc >=").is_err());
    }

    #[test]
    fn conditions_evaluate_against_the_run() {
        let mut facts = RunFacts { run_id: Some("r1".into()), ..RunFacts::default() };
        facts.metrics.insert("auc".into(), 0.79);
        facts.params.insert("solver".into(), "lbfgs".into());
        let auc = parse_condition("metrics.auc >= 0.8").unwrap();
        assert_eq!(auc.evaluate(&facts), (false, "metrics.auc = 0.79 on run r1".to_string()));
        facts.metrics.insert("auc".into(), 0.8);
        assert!(auc.evaluate(&facts).0);
        assert!(!parse_condition("metrics.f1 > 0").unwrap().evaluate(&facts).0);
        assert!(parse_condition("params.solver = 'lbfgs'").unwrap().evaluate(&facts).0);
        assert!(parse_condition("params.other != 'x'").unwrap().evaluate(&facts).0);
        let no_run = RunFacts::default();
        assert!(!auc.evaluate(&no_run).0);
    }

    #[test]
    fn evidence_takes_the_strictest_policy_and_reports_shortfall() {
        let strict = PolicyRules {
            approvals: 2,
            conditions: vec!["metrics.auc >= 0.8".into()],
            require_model_card: true,
            environments: vec![],
        };
        let loose = PolicyRules { approvals: 1, ..PolicyRules::default() };
        let facts = RunFacts { run_id: Some("r".into()), ..RunFacts::default() };
        let card = ModelCard { intended_use: "churn".into(), ..ModelCard::default() };
        let evidence = Evidence::evaluate(&[policy(strict), policy(loose)], &facts, Some(&card), 5);
        assert_eq!(evidence.approvals_required, 2);
        assert!(!evidence.checks_pass());
        let shortfall = evidence.shortfall(1);
        assert!(shortfall.starts_with("1 of 2 approvals"), "{shortfall}");
        assert!(shortfall.contains("metric 'auc' is not logged"), "{shortfall}");
        assert!(shortfall.contains("missing training_data, limitations, owner"), "{shortfall}");
    }

    #[test]
    fn rules_validate() {
        assert!(PolicyRules { approvals: 11, ..PolicyRules::default() }.validate().is_err());
        let bad = PolicyRules { conditions: vec!["nonsense".into()], ..PolicyRules::default() };
        assert!(bad.validate().is_err());
        let rules =
            PolicyRules { environments: vec!["Production".into()], ..PolicyRules::default() };
        assert!(rules.gates("production"));
        assert!(!rules.gates("staging"));
        assert!(serde_json::from_str::<PolicyRules>(r#"{"approval": 1}"#).is_err());
    }
}
