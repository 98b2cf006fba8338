//! The model registry over the store, with MLflow's validation and the request's project as
//! the scope: registered models belong to projects and their roles apply.

use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{ModelVersion, RegisteredModel, Stage, Tag};
use cairn_domain::governance::PromotionTarget;
use cairn_domain::identity::Access;
use cairn_domain::page_token::{decode_offset, encode_offset};
use cairn_domain::search::parse_generic_filter;
use cairn_domain::validation::{path_not_unique, validate_key, validate_length};
use cairn_store::{NewModelVersion, RegistrySearch, Store};

use crate::{Authorizer, ServiceError, ServiceResult};

/// The tag through which logged models list their registered versions.
const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

/// Registered models and versions.
#[derive(Clone)]
pub struct RegistryService {
    store: Store,
    authz: Authorizer,
    governance: crate::GovernanceService,
}

/// Checks a registered model name as MLflow does.
fn validate_model_name(name: &str) -> ServiceResult<()> {
    if name.trim().is_empty() {
        return Err(ServiceError::invalid(
            "Missing value for required parameter 'name'. See the API docs for more information about request parameters.",
        ));
    }
    if name.contains('/') || name.contains(':') {
        return Err(ServiceError::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    if path_not_unique(name) {
        return Err(ServiceError::invalid(format!(
            "Invalid value \"{name}\" for parameter 'name' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '{}'",
            cairn_domain::validation::posix_normpath(name)
        )));
    }
    Ok(())
}

/// Checks an alias as MLflow does: `[\w-]` only, not `latest`, not `v<digits>`.
pub(crate) fn validate_alias(alias: &str) -> ServiceResult<()> {
    if alias.eq_ignore_ascii_case("latest") {
        return Err(ServiceError::invalid("'latest' alias name (case insensitive) is reserved."));
    }
    let lower = alias.to_ascii_lowercase();
    if lower.len() > 1 && lower.starts_with('v') && lower[1..].chars().all(|c| c.is_ascii_digit()) {
        return Err(ServiceError::invalid(format!("Version alias name '{alias}' is reserved.")));
    }
    if alias.is_empty() || !alias.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(ServiceError::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    validate_length("alias", 255, alias)?;
    Ok(())
}

fn check_tag(tag: &Tag) -> ServiceResult<()> {
    validate_key(&tag.key, "key")?;
    validate_length("key", 250, &tag.key)?;
    validate_length("value", 100_000, &tag.value)?;
    Ok(())
}

/// Parses `name ASC`-style order clauses.
fn parse_order(order_by: &[String]) -> ServiceResult<Vec<(String, bool)>> {
    order_by
        .iter()
        .map(|clause| {
            let mut parts = clause.split_whitespace();
            let key = parts.next().ok_or_else(|| {
                ServiceError::invalid(format!("Invalid order_by clause '{clause}'."))
            })?;
            let ascending = match parts.next().map(str::to_ascii_uppercase).as_deref() {
                None | Some("ASC") => true,
                Some("DESC") => false,
                Some(_) => {
                    return Err(ServiceError::invalid(format!(
                        "Invalid order_by clause '{clause}'."
                    )));
                }
            };
            Ok((key.to_string(), ascending))
        })
        .collect()
}

fn parse_filter(
    filter: &str,
) -> ServiceResult<Vec<(String, cairn_domain::search::Comparator, cairn_domain::search::FilterValue)>>
{
    parse_generic_filter(filter).map_err(|error| ServiceError::invalid(error.message))
}

impl RegistryService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self {
            authz: Authorizer::new(store.clone()),
            governance: crate::GovernanceService::new(store.clone()),
            store,
        }
    }

    async fn project(&self, context: &RequestContext, access: Access) -> ServiceResult<i64> {
        let project = self.authz.scoped_project(context).await?;
        self.authz.require(context, project.id, access).await?;
        Ok(project.id)
    }

    /// Creates a registered model.
    pub async fn create_model(
        &self,
        context: &RequestContext,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> ServiceResult<RegisteredModel> {
        validate_model_name(name)?;
        tags.iter().try_for_each(check_tag)?;
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.create_registered_model(context, project, name, description, tags).await?)
    }

    /// Loads a registered model.
    pub async fn get_model(
        &self,
        context: &RequestContext,
        name: &str,
    ) -> ServiceResult<RegisteredModel> {
        let project = self.project(context, Access::Read).await?;
        Ok(self.store.get_registered_model(project, name).await?)
    }

    /// Renames a registered model.
    pub async fn rename_model(
        &self,
        context: &RequestContext,
        name: &str,
        new_name: &str,
    ) -> ServiceResult<RegisteredModel> {
        validate_model_name(new_name)?;
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.rename_registered_model(context, project, name, new_name).await?)
    }

    /// Updates a registered model's description.
    pub async fn update_model(
        &self,
        context: &RequestContext,
        name: &str,
        description: &str,
    ) -> ServiceResult<RegisteredModel> {
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.update_registered_model(context, project, name, description).await?)
    }

    /// Deletes a registered model and its versions.
    pub async fn delete_model(&self, context: &RequestContext, name: &str) -> ServiceResult<()> {
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.delete_registered_model(context, project, name).await?)
    }

    /// Sets (`Some`) or deletes (`None`) a registered-model tag.
    pub async fn set_model_tag(
        &self,
        context: &RequestContext,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> ServiceResult<()> {
        if let Some(value) = value {
            check_tag(&Tag { key: key.into(), value: value.into() })?;
        }
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.set_registered_model_tag(context, project, name, key, value).await?)
    }

    /// Registers a version; a logged model behind it lists the new version in its
    /// `mlflow.modelVersions` tag, as MLflow's server does.
    pub async fn create_version(
        &self,
        context: &RequestContext,
        mut new_version: NewModelVersion,
    ) -> ServiceResult<ModelVersion> {
        if new_version.source.is_empty() {
            return Err(ServiceError::invalid(
                "Missing value for required parameter 'source'. See the API docs for more information about request parameters.",
            ));
        }
        new_version.tags.iter().try_for_each(check_tag)?;
        let project = self.project(context, Access::Write).await?;
        new_version.user_id = context.principal.as_ref().map(|p| p.username.clone());
        // The client sends no run id for `models:/m-…`; MLflow's server takes the logged
        // model's source run.
        if new_version.run_id.is_none()
            && let Some(model_id) = &new_version.model_id
            && let Ok(logged) = self.store.get_logged_model(model_id).await
        {
            new_version.run_id = logged.source_run_id;
        }
        let version = self.store.create_model_version(context, project, &new_version).await?;
        if let Some(model_id) = &version.model_id
            && let Ok(logged) = self.store.get_logged_model(model_id).await
        {
            let mut listed: Vec<serde_json::Value> = logged
                .tags
                .iter()
                .find(|tag| tag.key == MODEL_VERSIONS_TAG)
                .and_then(|tag| serde_json::from_str(&tag.value).ok())
                .unwrap_or_default();
            listed.push(serde_json::json!({"name": version.name, "version": version.version}));
            let tag = Tag {
                key: MODEL_VERSIONS_TAG.into(),
                value: serde_json::Value::Array(listed).to_string(),
            };
            self.store.set_logged_model_tags(context, model_id, &[tag]).await?;
        }
        Ok(version)
    }

    /// Loads a version.
    pub async fn get_version(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
    ) -> ServiceResult<ModelVersion> {
        let project = self.project(context, Access::Read).await?;
        Ok(self.store.get_model_version(project, name, version).await?)
    }

    /// Updates a version's description.
    pub async fn update_version(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> ServiceResult<ModelVersion> {
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.update_model_version(context, project, name, version, description).await?)
    }

    /// Deletes a version.
    pub async fn delete_version(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
    ) -> ServiceResult<()> {
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.delete_model_version(context, project, name, version).await?)
    }

    /// Moves a version to a stage.
    pub async fn transition_stage(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
    ) -> ServiceResult<ModelVersion> {
        let stage = Stage::parse(stage)?;
        if archive_existing && matches!(stage, Stage::None | Stage::Archived) {
            return Err(ServiceError::invalid(format!(
                "Model version transition cannot archive existing model versions because '{}' is not an Active stage. Valid stages are Staging, Production",
                stage.as_str()
            )));
        }
        let project = self.project(context, Access::Write).await?;
        if !matches!(stage, Stage::None) {
            let target = PromotionTarget::Stage(stage);
            if self.governance.guard(context, name, version, &target, archive_existing).await? {
                return Ok(self.store.get_model_version(project, name, version).await?);
            }
        }
        Ok(self
            .store
            .transition_stage(context, project, name, version, stage, archive_existing)
            .await?)
    }

    /// Sets (`Some`) or deletes (`None`) a version tag.
    pub async fn set_version_tag(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        key: &str,
        value: Option<&str>,
    ) -> ServiceResult<()> {
        if let Some(value) = value {
            check_tag(&Tag { key: key.into(), value: value.into() })?;
        }
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.set_model_version_tag(context, project, name, version, key, value).await?)
    }

    /// Points an alias at a version.
    pub async fn set_alias(
        &self,
        context: &RequestContext,
        name: &str,
        alias: &str,
        version: i64,
    ) -> ServiceResult<()> {
        validate_alias(alias)?;
        let project = self.project(context, Access::Write).await?;
        let target = PromotionTarget::Alias(alias.to_string());
        if self.governance.guard(context, name, version, &target, false).await? {
            return Ok(());
        }
        Ok(self.store.set_alias(context, project, name, alias, Some(version)).await?)
    }

    /// Removes an alias.
    pub async fn delete_alias(
        &self,
        context: &RequestContext,
        name: &str,
        alias: &str,
    ) -> ServiceResult<()> {
        let project = self.project(context, Access::Write).await?;
        Ok(self.store.set_alias(context, project, name, alias, None).await?)
    }

    /// The version an alias points at.
    pub async fn version_by_alias(
        &self,
        context: &RequestContext,
        name: &str,
        alias: &str,
    ) -> ServiceResult<ModelVersion> {
        let project = self.project(context, Access::Read).await?;
        Ok(self.store.version_by_alias(project, name, alias).await?)
    }

    /// The latest version of each stage asked for (all stages when none).
    pub async fn latest_versions(
        &self,
        context: &RequestContext,
        name: &str,
        stages: &[String],
    ) -> ServiceResult<Vec<ModelVersion>> {
        let stages =
            stages.iter().map(|stage| Stage::parse(stage)).collect::<Result<Vec<_>, _>>()?;
        let project = self.project(context, Access::Read).await?;
        Ok(self.store.latest_versions(project, name, &stages).await?)
    }

    /// Where a version's files are: a logged model's artifact location for `models:/m-…`.
    pub async fn download_uri(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
    ) -> ServiceResult<String> {
        let model_version = self.get_version(context, name, version).await?;
        if let Some(model_id) =
            model_version.source.strip_prefix("models:/").filter(|id| id.starts_with("m-"))
        {
            return Ok(self.store.get_logged_model(model_id).await?.artifact_uri);
        }
        Ok(model_version.source)
    }

    /// Builds a search over the request's project from MLflow's wire fields.
    async fn search_request(
        &self,
        context: &RequestContext,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: &str,
    ) -> ServiceResult<RegistrySearch> {
        Ok(RegistrySearch {
            project_id: self.project(context, Access::Read).await?,
            filter: parse_filter(filter)?,
            order_by: parse_order(order_by)?,
            max_results,
            offset: decode_offset(page_token)?,
        })
    }

    /// Searches registered models.
    pub async fn search_models(
        &self,
        context: &RequestContext,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: &str,
    ) -> ServiceResult<(Vec<RegisteredModel>, Option<String>)> {
        let search =
            self.search_request(context, filter, order_by, max_results, page_token).await?;
        let (models, has_more) = self.store.search_registered_models(&search).await?;
        let token = has_more.then(|| encode_offset(search.offset + models.len() as u64));
        Ok((models, token))
    }

    /// Searches model versions.
    pub async fn search_versions(
        &self,
        context: &RequestContext,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: &str,
    ) -> ServiceResult<(Vec<ModelVersion>, Option<String>)> {
        let search =
            self.search_request(context, filter, order_by, max_results, page_token).await?;
        let (versions, has_more) = self.store.search_model_versions(&search).await?;
        let token = has_more.then(|| encode_offset(search.offset + versions.len() as u64));
        Ok((versions, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_follow_mlflow_rules() {
        assert!(validate_alias("champion").is_ok());
        assert!(validate_alias("prod_2-a").is_ok());
        assert_eq!(
            validate_alias("Latest").unwrap_err().message,
            "'latest' alias name (case insensitive) is reserved."
        );
        assert_eq!(
            validate_alias("v1").unwrap_err().message,
            "Version alias name 'v1' is reserved."
        );
        assert!(
            validate_alias("a.b").unwrap_err().message.starts_with("Invalid alias name: 'a.b'.")
        );
    }

    #[test]
    fn model_names_follow_mlflow_rules() {
        assert!(validate_model_name("churn model").is_ok());
        assert_eq!(
            validate_model_name("a/b").unwrap_err().message,
            "Invalid model name 'a/b'. Names cannot contain '/' or ':'."
        );
        assert!(validate_model_name("").is_err());
    }
}
