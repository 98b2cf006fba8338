//! Tracking operations: experiments, runs, their data, and logged models, with MLflow's
//! validation rules applied before anything reaches the store.

use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{
    DatasetInput, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput, Param, Run,
    RunInfo, Tag, ViewType,
};
use cairn_domain::identity::Access;
use cairn_domain::ids::ExperimentId;
use cairn_domain::page_token::{decode_offset, decode_position, encode_offset, encode_position};
use cairn_domain::search::{
    parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by,
};
use cairn_domain::validation::{
    MAX_ENTITY_KEY_LENGTH, MAX_EXPERIMENT_TAG_KEY_LENGTH, MAX_EXPERIMENT_TAG_VAL_LENGTH,
    MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH, json_path, truncate_chars, validate_batch_limits,
    validate_experiment_name, validate_key, validate_length,
};
use cairn_store::{
    DatasetSummary, ExperimentSearch, LogBatch, LoggedModelSearch, NewLoggedModel, NewRun,
    RecentRun, RunSearch, RunUpdate, Store,
};

use crate::authz::Authorizer;
use crate::{ServiceError, ServiceResult};

/// A page of results and the token of the next page, if any.
pub type Page<T> = (Vec<T>, Option<String>);

/// Experiments, runs, metrics and logged models.
#[derive(Clone)]
pub struct TrackingService {
    store: Store,
    authz: Authorizer,
}

fn next_token(offset: u64, count: usize, has_more: bool) -> Option<String> {
    has_more.then(|| encode_offset(offset + count as u64))
}

fn search_error(error: cairn_domain::search::SearchError) -> ServiceError {
    ServiceError::invalid(error.message)
}

/// Validates and truncates a run tag as MLflow does.
fn clean_run_tag(tag: &Tag, path: &str) -> ServiceResult<Tag> {
    let key_path = json_path(path, "key");
    validate_key(&tag.key, &key_path)?;
    validate_length(&key_path, MAX_ENTITY_KEY_LENGTH, &tag.key)?;
    Ok(Tag { key: tag.key.clone(), value: truncate_chars(&tag.value, MAX_TAG_VAL_LENGTH) })
}

/// Validates and truncates a param as MLflow does.
fn clean_param(param: &Param, path: &str) -> ServiceResult<Param> {
    validate_key(&param.key, &json_path(path, "key"))?;
    validate_length("Param key", MAX_ENTITY_KEY_LENGTH, &param.key)?;
    Ok(Param { key: param.key.clone(), value: truncate_chars(&param.value, MAX_PARAM_VAL_LENGTH) })
}

/// Validates a metric point as MLflow does.
fn check_metric(metric: &Metric, path: &str) -> ServiceResult<()> {
    validate_key(&metric.key, &json_path(path, "name"))?;
    if metric.timestamp < 0 {
        return Err(ServiceError::invalid(cairn_domain::validation::invalid_value(
            &json_path(path, "timestamp"),
            &serde_json::json!(metric.timestamp),
            Some(&format!(
                "metric '{}' (value={}). Timestamp must be a nonnegative long (64-bit integer) ",
                metric.key, metric.value
            )),
        )));
    }
    validate_length("Metric name", MAX_ENTITY_KEY_LENGTH, &metric.key)?;
    Ok(())
}

fn check_experiment_tag(tag: &Tag) -> ServiceResult<()> {
    validate_key(&tag.key, "key")?;
    validate_length("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, &tag.key)?;
    validate_length("value", MAX_EXPERIMENT_TAG_VAL_LENGTH, &tag.value)?;
    Ok(())
}

impl TrackingService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { authz: Authorizer::new(store.clone()), store }
    }

    /// The experiments of `experiment_ids` the caller may read within the request's scope.
    async fn readable(
        &self,
        context: &RequestContext,
        experiment_ids: &[ExperimentId],
    ) -> ServiceResult<Vec<ExperimentId>> {
        let ids = experiment_ids.iter().map(|id| id.0).collect();
        Ok(self
            .authz
            .readable_experiments(context, ids)
            .await?
            .into_iter()
            .map(ExperimentId)
            .collect())
    }

    /// Creates an experiment.
    pub async fn create_experiment(
        &self,
        context: &RequestContext,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> ServiceResult<ExperimentId> {
        let project = self.authz.scoped_project(context).await?;
        self.authz.require(context, project.id, Access::Write).await?;
        validate_experiment_name(name)?;
        for tag in tags {
            check_experiment_tag(tag)?;
        }
        Ok(self.store.create_experiment(context, project.id, name, artifact_location, tags).await?)
    }

    /// Loads an experiment.
    pub async fn get_experiment(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
    ) -> ServiceResult<Experiment> {
        self.authz.require_experiment(context, experiment_id.0, Access::Read).await?;
        Ok(self.store.get_experiment(experiment_id).await?)
    }

    /// Loads an experiment by name.
    pub async fn get_experiment_by_name(
        &self,
        context: &RequestContext,
        name: &str,
    ) -> ServiceResult<Experiment> {
        let project = self.authz.scoped_project(context).await?;
        self.authz.require(context, project.id, Access::Read).await?;
        Ok(self.store.get_experiment_by_name(project.id, name).await?)
    }

    /// Soft-deletes an experiment and its runs.
    pub async fn delete_experiment(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
    ) -> ServiceResult<()> {
        self.authz.require_experiment(context, experiment_id.0, Access::Write).await?;
        Ok(self.store.delete_experiment(context, experiment_id).await?)
    }

    /// Restores a deleted experiment.
    pub async fn restore_experiment(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
    ) -> ServiceResult<()> {
        self.authz.require_experiment(context, experiment_id.0, Access::Write).await?;
        Ok(self.store.restore_experiment(context, experiment_id).await?)
    }

    /// Renames an experiment.
    pub async fn rename_experiment(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
        new_name: &str,
    ) -> ServiceResult<()> {
        self.authz.require_experiment(context, experiment_id.0, Access::Write).await?;
        validate_experiment_name(new_name)?;
        Ok(self.store.rename_experiment(context, experiment_id, new_name).await?)
    }

    /// Sets an experiment tag.
    pub async fn set_experiment_tag(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
        tag: &Tag,
    ) -> ServiceResult<()> {
        self.authz.require_experiment(context, experiment_id.0, Access::Write).await?;
        check_experiment_tag(tag)?;
        Ok(self.store.set_experiment_tag(context, experiment_id, tag).await?)
    }

    /// Deletes an experiment tag.
    pub async fn delete_experiment_tag(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
        key: &str,
    ) -> ServiceResult<()> {
        self.authz.require_experiment(context, experiment_id.0, Access::Write).await?;
        Ok(self.store.delete_experiment_tag(context, experiment_id, key).await?)
    }

    /// Searches experiments with MLflow's grammar.
    pub async fn search_experiments(
        &self,
        context: &RequestContext,
        filter: &str,
        order_by: &[String],
        view_type: ViewType,
        max_results: i64,
        page_token: &str,
    ) -> ServiceResult<Page<Experiment>> {
        let project = self.authz.scoped_project(context).await?;
        self.authz.require(context, project.id, Access::Read).await?;
        let offset = decode_offset(page_token)?;
        let search = ExperimentSearch {
            project_id: Some(project.id),
            filter: parse_experiment_filter(filter).map_err(search_error)?,
            order_by: parse_experiment_order_by(order_by).map_err(search_error)?,
            view_type,
            max_results,
            offset,
        };
        let (experiments, has_more) = self.store.search_experiments(&search).await?;
        let token = next_token(offset, experiments.len(), has_more);
        Ok((experiments, token))
    }

    /// Creates a run.
    pub async fn create_run(
        &self,
        context: &RequestContext,
        mut new_run: NewRun,
    ) -> ServiceResult<Run> {
        self.authz.require_experiment(context, new_run.experiment_id.0, Access::Write).await?;
        new_run.tags =
            new_run.tags.iter().map(|tag| clean_run_tag(tag, "")).collect::<ServiceResult<_>>()?;
        Ok(self.store.create_run(context, &new_run).await?)
    }

    /// Loads a run with its data.
    pub async fn get_run(&self, context: &RequestContext, run_id: &str) -> ServiceResult<Run> {
        self.authz.require_run(context, run_id, Access::Read).await?;
        Ok(self.store.get_run(run_id).await?)
    }

    /// Updates a run's status, end time or name.
    pub async fn update_run(
        &self,
        context: &RequestContext,
        run_id: &str,
        update: &RunUpdate,
    ) -> ServiceResult<RunInfo> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        Ok(self.store.update_run(context, run_id, update).await?)
    }

    /// Soft-deletes a run.
    pub async fn delete_run(&self, context: &RequestContext, run_id: &str) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        Ok(self.store.delete_run(context, run_id).await?)
    }

    /// Restores a run.
    pub async fn restore_run(&self, context: &RequestContext, run_id: &str) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        Ok(self.store.restore_run(context, run_id).await?)
    }

    /// Logs metrics, params and tags in one transaction.
    pub async fn log_batch(
        &self,
        context: &RequestContext,
        run_id: &str,
        metrics: Vec<Metric>,
        params: Vec<Param>,
        tags: Vec<Tag>,
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        // Each distinct key is checked once; timestamps are checked on every point.
        let mut checked_keys = std::collections::HashSet::new();
        for (index, metric) in metrics.iter().enumerate() {
            if metric.timestamp < 0 || checked_keys.insert(metric.key.as_str()) {
                check_metric(metric, &format!("metrics[{index}]"))?;
            }
        }
        let params = params
            .iter()
            .enumerate()
            .map(|(index, param)| clean_param(param, &format!("params[{index}]")))
            .collect::<ServiceResult<Vec<_>>>()?;
        let tags = tags
            .iter()
            .enumerate()
            .map(|(index, tag)| clean_run_tag(tag, &format!("tags[{index}]")))
            .collect::<ServiceResult<Vec<_>>>()?;
        validate_batch_limits(metrics.len(), params.len(), tags.len())?;
        Ok(self.store.log_batch(context, run_id, &LogBatch { metrics, params, tags }).await?)
    }

    /// Logs one metric point.
    pub async fn log_metric(
        &self,
        context: &RequestContext,
        run_id: &str,
        metric: Metric,
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        check_metric(&metric, "")?;
        let batch = LogBatch { metrics: vec![metric], ..LogBatch::default() };
        Ok(self.store.log_batch(context, run_id, &batch).await?)
    }

    /// Logs one param.
    pub async fn log_param(
        &self,
        context: &RequestContext,
        run_id: &str,
        param: &Param,
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        let param = clean_param(param, "")?;
        Ok(self.store.log_param(context, run_id, &param).await?)
    }

    /// Sets one run tag.
    pub async fn set_tag(
        &self,
        context: &RequestContext,
        run_id: &str,
        tag: &Tag,
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        let batch = LogBatch { tags: vec![clean_run_tag(tag, "")?], ..LogBatch::default() };
        Ok(self.store.log_batch(context, run_id, &batch).await?)
    }

    /// Deletes one run tag.
    pub async fn delete_tag(
        &self,
        context: &RequestContext,
        run_id: &str,
        key: &str,
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        Ok(self.store.delete_run_tag(context, run_id, key).await?)
    }

    /// Reads a page of a metric's history.
    pub async fn get_metric_history(
        &self,
        context: &RequestContext,
        run_id: &str,
        key: &str,
        page_token: &str,
        max_results: i64,
    ) -> ServiceResult<Page<Metric>> {
        // MLflow answers an empty history for an unknown run.
        if self.store.run_project(run_id).await?.is_none() {
            return Ok((Vec::new(), None));
        }
        self.authz.require_run(context, run_id, Access::Read).await?;
        let offset = decode_offset(page_token)?;
        let page = self.store.get_metric_history(run_id, key, offset, max_results).await?;
        let token = next_token(offset, page.metrics.len(), page.has_more);
        Ok((page.metrics, token))
    }

    /// Searches runs with MLflow's grammar.
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the runs/search request fields one to one"
    )]
    pub async fn search_runs(
        &self,
        context: &RequestContext,
        experiment_ids: Vec<ExperimentId>,
        filter: &str,
        order_by: &[String],
        view_type: ViewType,
        max_results: i64,
        page_token: &str,
    ) -> ServiceResult<Page<Run>> {
        let experiment_ids = self.readable(context, &experiment_ids).await?;
        let position = decode_position(page_token)?;
        let search = RunSearch {
            experiment_ids,
            filter: parse_run_filter(filter).map_err(search_error)?,
            order_by: parse_run_order_by(order_by).map_err(search_error)?,
            view_type,
            max_results,
            offset: position.offset,
            after: position.after,
        };
        // Keyset paging: the next token carries the last row's ordering values, so the next
        // page is found by an index seek after it instead of skipping `offset` rows.
        let page = self.store.search_runs_page(&search).await?;
        let next_offset = position.offset + page.runs.len() as u64;
        let token = match (page.has_more, &page.last) {
            (true, Some(last)) => Some(encode_position(next_offset, last)),
            (true, None) => next_token(position.offset, page.runs.len(), true),
            (false, _) => None,
        };
        Ok((page.runs, token))
    }

    /// The most recent active runs across the projects the caller belongs to (every project
    /// for site admins and while authentication is off), newest first.
    pub async fn recent_runs(
        &self,
        context: &RequestContext,
        limit: i64,
    ) -> ServiceResult<Vec<RecentRun>> {
        let projects = match &context.principal {
            Some(principal) if !Authorizer::is_unrestricted(context) => {
                let mut projects = self.store.member_projects(principal.user_id).await?;
                if let Some(scope) = principal.scope_project {
                    projects.retain(|project| project.id == scope);
                }
                projects
            }
            _ => self.store.list_projects().await?,
        };
        let ids: Vec<i64> = projects.iter().map(|project| project.id).collect();
        Ok(self.store.recent_runs(&ids, limit.clamp(1, 100)).await?)
    }

    /// Records dataset and model inputs of a run.
    pub async fn log_inputs(
        &self,
        context: &RequestContext,
        run_id: &str,
        datasets: &[DatasetInput],
        model_ids: &[String],
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        Ok(self.store.log_inputs(context, run_id, datasets, model_ids).await?)
    }

    /// Records model outputs of a run.
    pub async fn log_outputs(
        &self,
        context: &RequestContext,
        run_id: &str,
        outputs: &[ModelOutput],
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        Ok(self.store.log_outputs(context, run_id, outputs).await?)
    }

    /// Creates a logged model.
    pub async fn create_logged_model(
        &self,
        context: &RequestContext,
        new_model: &NewLoggedModel,
    ) -> ServiceResult<LoggedModel> {
        self.authz.require_experiment(context, new_model.experiment_id.0, Access::Write).await?;
        Ok(self.store.create_logged_model(context, new_model).await?)
    }

    /// Loads a logged model.
    pub async fn get_logged_model(
        &self,
        context: &RequestContext,
        model_id: &str,
    ) -> ServiceResult<LoggedModel> {
        self.authz.require_logged_model(context, model_id, Access::Read).await?;
        Ok(self.store.get_logged_model(model_id).await?)
    }

    /// Sets a logged model's status.
    pub async fn finalize_logged_model(
        &self,
        context: &RequestContext,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> ServiceResult<LoggedModel> {
        self.authz.require_logged_model(context, model_id, Access::Write).await?;
        Ok(self.store.finalize_logged_model(context, model_id, status).await?)
    }

    /// Sets logged-model tags.
    pub async fn set_logged_model_tags(
        &self,
        context: &RequestContext,
        model_id: &str,
        tags: &[Tag],
    ) -> ServiceResult<LoggedModel> {
        self.authz.require_logged_model(context, model_id, Access::Write).await?;
        self.store.set_logged_model_tags(context, model_id, tags).await?;
        Ok(self.store.get_logged_model(model_id).await?)
    }

    /// Deletes a logged-model tag.
    pub async fn delete_logged_model_tag(
        &self,
        context: &RequestContext,
        model_id: &str,
        key: &str,
    ) -> ServiceResult<()> {
        self.authz.require_logged_model(context, model_id, Access::Write).await?;
        Ok(self.store.delete_logged_model_tag(context, model_id, key).await?)
    }

    /// Logs logged-model params.
    pub async fn log_logged_model_params(
        &self,
        context: &RequestContext,
        model_id: &str,
        params: &[Param],
    ) -> ServiceResult<()> {
        self.authz.require_logged_model(context, model_id, Access::Write).await?;
        Ok(self.store.log_logged_model_params(context, model_id, params).await?)
    }

    /// Deletes a logged model.
    pub async fn delete_logged_model(
        &self,
        context: &RequestContext,
        model_id: &str,
    ) -> ServiceResult<()> {
        self.authz.require_logged_model(context, model_id, Access::Write).await?;
        Ok(self.store.delete_logged_model(context, model_id).await?)
    }

    /// Searches logged models.
    pub async fn search_logged_models(
        &self,
        context: &RequestContext,
        mut search: LoggedModelSearch,
        page_token: &str,
    ) -> ServiceResult<Page<LoggedModel>> {
        search.experiment_ids = self.readable(context, &search.experiment_ids).await?;
        search.offset = decode_offset(page_token)?;
        let offset = search.offset;
        let (models, has_more) = self.store.search_logged_models(&search).await?;
        let token = next_token(offset, models.len(), has_more);
        Ok((models, token))
    }

    /// Samples each run's history of `key` for charts; every run must exist.
    pub async fn sample_metric_histories(
        &self,
        context: &RequestContext,
        run_ids: &[String],
        key: &str,
        max_results: i64,
        steps: Option<(i64, i64)>,
    ) -> ServiceResult<Vec<Metric>> {
        for run_id in run_ids {
            self.authz.require_run(context, run_id, Access::Read).await?;
        }
        let mut points = Vec::new();
        for run_id in run_ids {
            points.extend(self.store.sample_metric_history(run_id, key, max_results, steps).await?);
        }
        Ok(points)
    }

    /// Raw history of `key` across several runs.
    pub async fn metric_history_bulk(
        &self,
        context: &RequestContext,
        run_ids: &[String],
        key: &str,
        max_results: i64,
    ) -> ServiceResult<Vec<Metric>> {
        for run_id in run_ids {
            if self.store.run_project(run_id).await?.is_some() {
                self.authz.require_run(context, run_id, Access::Read).await?;
            }
        }
        Ok(self.store.metric_history_bulk(run_ids, key, max_results).await?)
    }

    /// Dataset summaries of experiments.
    pub async fn search_datasets(
        &self,
        context: &RequestContext,
        experiment_ids: &[ExperimentId],
    ) -> ServiceResult<Vec<DatasetSummary>> {
        let experiment_ids = self.readable(context, experiment_ids).await?;
        let ids: Vec<i64> = experiment_ids.iter().map(|id| id.0).collect();
        Ok(self.store.search_datasets(&ids).await?)
    }

    /// Records legacy `log-model` metadata on a run.
    pub async fn record_logged_model(
        &self,
        context: &RequestContext,
        run_id: &str,
        model: serde_json::Value,
    ) -> ServiceResult<()> {
        self.authz.require_run(context, run_id, Access::Write).await?;
        Ok(self.store.record_logged_model(context, run_id, model).await?)
    }
}
