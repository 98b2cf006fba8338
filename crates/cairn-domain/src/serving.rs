//! Deployments: a named endpoint in a project serving registered model versions with traffic
//! weights. Each change of what is served is a new revision of the deployment's spec, so the
//! revisions are the history of which version served which share when, and a rollback is a new
//! revision repeating an earlier one.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// One model version receiving a share of the traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The registered model.
    pub model: String,
    /// The version.
    pub version: i64,
    /// Its weight; its share is weight / sum of weights.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Where the model's files are, resolved when the revision is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ResolvedArtifact>,
}

fn default_weight() -> u32 {
    100
}

/// The model file a route serves, pinned by digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedArtifact {
    /// The runtime: `onnx`.
    pub runtime: String,
    /// The file's path in the artifact store.
    pub path: String,
    /// Its sha256; replicas verify their cached copy against it.
    pub sha256: String,
    /// Input column names from the model's MLflow signature, in order, when it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

/// What a deployment serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// The versions that answer, with weights.
    pub routes: Vec<Route>,
    /// A version that receives a copy of the traffic; its answers are captured, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Route>,
    /// What is captured.
    #[serde(default)]
    pub capture: CaptureSpec,
    /// When not empty, only these accounts (typically service accounts) may call the
    /// deployment; otherwise any reader of its project may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<String>,
    /// Drift and quality monitoring, versioned with the rest of the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<crate::monitoring::MonitorSpec>,
}

/// Prediction capture settings of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// Whether requests and responses are captured.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The share of requests captured (0–1).
    #[serde(default = "one")]
    pub sample_rate: f64,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

impl Default for CaptureSpec {
    fn default() -> Self {
        Self { enabled: true, sample_rate: 1.0 }
    }
}

/// The most routes a deployment may split traffic over.
pub const MAX_ROUTES: usize = 10;

impl DeploymentSpec {
    /// Checks the routes: 1–10, distinct versions, positive weights.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.routes.is_empty() || self.routes.len() > MAX_ROUTES {
            return Err(DomainError::invalid(format!(
                "a deployment serves 1 to {MAX_ROUTES} model versions, not {}",
                self.routes.len()
            )));
        }
        if !(0.0..=1.0).contains(&self.capture.sample_rate) {
            return Err(DomainError::invalid(format!(
                "capture sample_rate must be between 0 and 1, not {}",
                self.capture.sample_rate
            )));
        }
        if let Some(shadow) = &self.shadow
            && self
                .routes
                .iter()
                .any(|route| route.model == shadow.model && route.version == shadow.version)
        {
            return Err(DomainError::invalid(format!(
                "{} version {} cannot be both served and its own shadow",
                shadow.model, shadow.version
            )));
        }
        for (index, route) in self.routes.iter().enumerate() {
            if route.weight == 0 || route.weight > 10_000 {
                return Err(DomainError::invalid(format!(
                    "route {} ({} version {}): weight must be 1–10000",
                    index + 1,
                    route.model,
                    route.version
                )));
            }
            if self.routes[..index]
                .iter()
                .any(|other| other.model == route.model && other.version == route.version)
            {
                return Err(DomainError::invalid(format!(
                    "{} version {} is listed twice",
                    route.model, route.version
                )));
            }
        }
        Ok(())
    }

    /// Picks the route for a draw in `[0, total weight)`.
    pub fn pick(&self, draw: u64) -> usize {
        let mut remaining = draw;
        for (index, route) in self.routes.iter().enumerate() {
            if remaining < u64::from(route.weight) {
                return index;
            }
            remaining -= u64::from(route.weight);
        }
        self.routes.len() - 1
    }

    /// The sum of the weights.
    pub fn total_weight(&self) -> u64 {
        self.routes.iter().map(|route| u64::from(route.weight)).sum()
    }
}

/// Checks a deployment name: it is part of URLs (`/serve/<name>/invocations`).
pub fn validate_deployment_name(name: &str) -> Result<(), DomainError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "invalid deployment name '{name}': 1–63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        )))
    }
}

/// A deployment at its current revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Id.
    pub id: i64,
    /// The project's id.
    pub project_id: i64,
    /// The project's name.
    pub project: String,
    /// Unique among live deployments.
    pub name: String,
    /// The environment the deploy gate is asked about (e.g. `production`).
    pub environment: String,
    /// The current revision.
    pub revision: i64,
    /// What it serves.
    pub spec: DeploymentSpec,
    /// Who created it.
    pub created_by: String,
    /// When (epoch ms).
    pub created_at: i64,
    /// When the current revision was written (epoch ms).
    pub updated_at: i64,
}

/// One revision of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRevision {
    /// From 1.
    pub revision: i64,
    /// What it served.
    pub spec: DeploymentSpec,
    /// Who wrote it.
    pub created_by: String,
    /// When (epoch ms).
    pub created_at: i64,
    /// Why (`rollback to revision 2`, …).
    pub comment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(model: &str, version: i64, weight: u32) -> Route {
        Route { model: model.into(), version, weight, artifact: None }
    }

    fn spec(routes: Vec<Route>) -> DeploymentSpec {
        DeploymentSpec {
            routes,
            shadow: None,
            capture: CaptureSpec::default(),
            callers: vec![],
            monitor: None,
        }
    }

    #[test]
    fn weights_split_the_draws() {
        let spec = spec(vec![route("m", 1, 90), route("m", 2, 10)]);
        assert_eq!(spec.total_weight(), 100);
        assert_eq!((0..100).filter(|draw| spec.pick(*draw) == 1).count(), 10);
        assert_eq!(spec.pick(89), 0);
        assert_eq!(spec.pick(90), 1);
    }

    #[test]
    fn specs_and_names_validate() {
        assert!(spec(vec![]).validate().is_err());
        assert!(spec(vec![route("m", 1, 0)]).validate().is_err());
        assert!(spec(vec![route("m", 1, 5), route("m", 1, 5)]).validate().is_err());
        assert!(spec(vec![route("m", 1, 5), route("m", 2, 5)]).validate().is_ok());
        assert!(validate_deployment_name("churn-prod").is_ok());
        for bad in ["", "Churn", "a/b", "-a", "a-", &"x".repeat(64)] {
            assert!(validate_deployment_name(bad).is_err(), "{bad}");
        }
    }
}
