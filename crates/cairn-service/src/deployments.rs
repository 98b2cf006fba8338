//! Deployments: registered model versions served over HTTP by every replica.
//!
//! Writing a revision (create, update, rollback) asks the deploy gate about every routed version,
//! resolves each version to its ONNX file in the artifact store, compiles it (so an unsupported
//! model fails here, not at request time) and pins the file by sha256. Replicas are stateless:
//! each keeps compiled models in memory by digest and the files in a local cache directory
//! (verified against the digest on every load), and rechecks a deployment's revision at most
//! once a second, so a change made through any replica is served everywhere within a second and
//! a swap never drops a request (the old revision answers until the new one is ready).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cairn_domain::ErrorKind;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::Access;
use cairn_domain::serving::{
    Deployment, DeploymentRevision, DeploymentSpec, ResolvedArtifact, validate_deployment_name,
};
use cairn_serving::{
    ElementType, OnnxModel, Output, PythonWorker, ServingError, TensorSpec, Values, check_python,
};
use cairn_store::Store;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::capture::{CaptureRecord, CaptureSink};
use crate::{ArtifactService, Authorizer, GovernanceService, ServiceError, ServiceResult};

/// How often buffered captures are written.
const CAPTURE_INTERVAL: Duration = Duration::from_secs(5);

/// How long a replica trusts its copy of a deployment before rechecking the revision.
const FRESHNESS: Duration = Duration::from_secs(1);

/// A table of input rows as a protocol delivered them.
#[derive(Debug, Clone, Default)]
pub struct InputTable {
    /// Column names, when the request named them.
    pub columns: Option<Vec<String>>,
    /// The rows' cells.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// The answer of one prediction.
#[derive(Debug, Clone)]
pub struct PredictOutcome {
    /// The outputs.
    pub outputs: Vec<Output>,
    /// The registered model that answered.
    pub model: String,
    /// Its version.
    pub version: i64,
    /// The deployment revision in force.
    pub revision: i64,
}

/// A deployment as served, for a caller who was authorised to call it: what `predict` runs on,
/// so a request is authorised and resolved once.
#[derive(Clone)]
pub struct ServedModel {
    live: Arc<Live>,
}

impl ServedModel {
    /// The deployment at the revision served.
    pub fn deployment(&self) -> &Deployment {
        &self.live.deployment
    }

    /// The first route's platform (`onnx_onnxv1` or `mlflow_pyfunc`), inputs and outputs.
    pub fn describe(&self) -> (&'static str, Vec<TensorSpec>, Vec<TensorSpec>) {
        self.live.models[0].describe()
    }
}

/// A loaded model: compiled ONNX in-process, or a supervised Python worker.
#[derive(Clone)]
enum Runtime {
    Onnx(Arc<OnnxModel>),
    Python(Arc<PythonWorker>),
}

impl Runtime {
    fn describe(&self) -> (&'static str, Vec<TensorSpec>, Vec<TensorSpec>) {
        match self {
            Runtime::Onnx(model) => {
                ("onnx_onnxv1", vec![model.input().clone()], model.outputs().to_vec())
            }
            Runtime::Python(worker) => (
                "mlflow_pyfunc",
                worker
                    .columns()
                    .unwrap_or_default()
                    .iter()
                    .map(|name| TensorSpec {
                        name: name.clone(),
                        element: ElementType::Json,
                        shape: vec![None],
                    })
                    .collect(),
                vec![TensorSpec {
                    name: "predictions".into(),
                    element: ElementType::Json,
                    shape: vec![None],
                }],
            ),
        }
    }
}

struct Live {
    deployment: Deployment,
    /// The deployment's name and each route's model name, shared by capture records.
    name: Arc<str>,
    model_names: Vec<Arc<str>>,
    models: Vec<Runtime>,
    shadow: Option<Runtime>,
    checked: Mutex<Instant>,
}

/// Deployment management and inference.
#[derive(Clone)]
pub struct DeploymentService {
    store: Store,
    authz: Authorizer,
    artifacts: ArtifactService,
    governance: GovernanceService,
    cache_dir: Option<PathBuf>,
    live: Arc<RwLock<HashMap<String, Arc<Live>>>>,
    models: Arc<Mutex<HashMap<String, Arc<OnnxModel>>>>,
    workers: Arc<tokio::sync::Mutex<HashMap<String, Arc<PythonWorker>>>>,
    python: PathBuf,
    capture: Arc<std::sync::OnceLock<CaptureSink>>,
}

fn serving_error(error: ServingError) -> ServiceError {
    let kind = match error {
        ServingError::Unsupported(_) | ServingError::Invalid(_) => ErrorKind::FailedPrecondition,
        ServingError::BadInput(_) => ErrorKind::InvalidArgument,
        ServingError::Inference(_) => ErrorKind::Internal,
    };
    ServiceError { kind, message: error.to_string() }
}

fn cache_error(error: std::io::Error) -> ServiceError {
    ServiceError { kind: ErrorKind::Internal, message: format!("writing the model cache: {error}") }
}

fn not_found(name: &str) -> ServiceError {
    ServiceError { kind: ErrorKind::NotFound, message: format!("no deployment named '{name}'") }
}

/// The input column names of an MLflow `MLmodel` file's signature, when it is column-based.
fn signature_columns(mlmodel: &str) -> Option<Vec<String>> {
    let line = mlmodel.lines().find(|line| line.trim_start().starts_with("inputs: '"))?;
    let quoted = line.trim_start().strip_prefix("inputs: '")?.strip_suffix('\'')?;
    let json = quoted.replace("''", "'");
    let inputs: Vec<serde_json::Value> = serde_json::from_str(&json).ok()?;
    let names: Vec<String> = inputs
        .iter()
        .map(|input| input.get("name").and_then(|name| name.as_str()).map(str::to_string))
        .collect::<Option<_>>()?;
    (!names.is_empty()).then_some(names)
}

impl DeploymentService {
    /// Wraps the store and the artifact store; `cache_dir` keeps model files between restarts;
    /// `python` runs the workers of non-ONNX models.
    pub fn new(
        store: Store,
        artifacts: ArtifactService,
        cache_dir: Option<PathBuf>,
        python: PathBuf,
    ) -> Self {
        Self {
            authz: Authorizer::new(store.clone()),
            governance: GovernanceService::new(store.clone()),
            store,
            artifacts,
            cache_dir,
            live: Arc::default(),
            models: Arc::default(),
            workers: Arc::default(),
            python,
            capture: Arc::default(),
        }
    }

    async fn project(&self, context: &RequestContext, access: Access) -> ServiceResult<i64> {
        let project = self.authz.scoped_project(context).await?;
        self.authz.require(context, project.id, access).await?;
        Ok(project.id)
    }

    /// Loads a live deployment the caller may act on with `access`: within the request's
    /// project when the URL names one (else it is reported missing), otherwise in its own.
    async fn visible(
        &self,
        context: &RequestContext,
        name: &str,
        access: Access,
    ) -> ServiceResult<Deployment> {
        if context.project.is_some() {
            let project = self.project(context, access).await?;
            let deployment = self.store.get_deployment(name).await?;
            if deployment.project_id != project {
                return Err(not_found(name));
            }
            return Ok(deployment);
        }
        let deployment = self.store.get_deployment(name).await?;
        self.authz.require(context, deployment.project_id, access).await?;
        Ok(deployment)
    }

    /// A live deployment the caller may act on with `access` (for the monitoring service).
    pub(crate) async fn visible_deployment(
        &self,
        context: &RequestContext,
        name: &str,
        access: Access,
    ) -> ServiceResult<Deployment> {
        self.visible(context, name, access).await
    }

    /// Checks, before a request body is read, that the caller has `access` to the request's
    /// project (`name: None`) or to the named deployment.
    pub async fn authorize(
        &self,
        context: &RequestContext,
        name: Option<&str>,
        access: Access,
    ) -> ServiceResult<()> {
        match name {
            Some(name) => self.visible(context, name, access).await.map(|_| ()),
            None => self.project(context, access).await.map(|_| ()),
        }
    }

    /// Where a version's files live in the artifact store.
    async fn model_directory(
        &self,
        project_id: i64,
        model: &str,
        version: i64,
    ) -> ServiceResult<String> {
        let model_version = self.store.get_model_version(project_id, model, version).await?;
        let uri = if let Some(model_id) =
            model_version.source.strip_prefix("models:/").filter(|id| id.starts_with("m-"))
        {
            self.store.get_logged_model(model_id).await?.artifact_uri
        } else if let Some(rest) = model_version.source.strip_prefix("runs:/") {
            let (run_id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.store.get_run(run_id).await?;
            format!("{}/{}", run.info.artifact_uri.trim_end_matches('/'), sub)
        } else {
            model_version.source.clone()
        };
        self.artifacts.relative_path(&uri).ok_or_else(|| ServiceError {
            kind: ErrorKind::FailedPrecondition,
            message: format!(
                "version {version} of '{model}' keeps its files at '{uri}', outside Cairn's artifact store; register a model logged to Cairn"
            ),
        })
    }

    /// Finds, checks and pins a version's model: its `.onnx` file for the in-process runtime,
    /// else its whole MLflow model directory for a Python worker.
    async fn resolve(
        &self,
        project_id: i64,
        model: &str,
        version: i64,
    ) -> ServiceResult<ResolvedArtifact> {
        let directory = self.model_directory(project_id, model, version).await?;
        let entries = self.artifacts.list_internal(&directory).await?;
        let onnx: Vec<&str> = entries
            .iter()
            .filter(|entry| !entry.is_dir && entry.path.ends_with(".onnx"))
            .map(|entry| entry.path.as_str())
            .collect();
        let has_mlmodel =
            entries.iter().any(|entry| !entry.is_dir && entry.path.ends_with("/MLmodel"));
        let cannot = |message: String| ServiceError {
            kind: ErrorKind::FailedPrecondition,
            message: format!("version {version} of '{model}' cannot be served: {message}"),
        };
        let path = match onnx.as_slice() {
            [one] => one.to_string(),
            [] if has_mlmodel => {
                let artifact = self.pin_directory(&directory).await?;
                self.worker(&artifact).await.map_err(|error| cannot(error.message))?;
                return Ok(artifact);
            }
            [] => {
                return Err(cannot(format!(
                    "'{directory}' holds neither an .onnx file nor an MLflow model (MLmodel)"
                )));
            }
            many => {
                return Err(ServiceError::invalid(format!(
                    "version {version} of '{model}' has {} .onnx files in '{directory}'; expected one",
                    many.len()
                )));
            }
        };
        let bytes = self.artifacts.read_internal(&path).await?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let columns = match self.artifacts.read_internal(&format!("{directory}/MLmodel")).await {
            Ok(mlmodel) => signature_columns(&String::from_utf8_lossy(&mlmodel)),
            Err(_) => None,
        };
        self.compile(sha256.clone(), bytes).await.map_err(|error| cannot(error.message))?;
        Ok(ResolvedArtifact { runtime: "onnx".into(), path, sha256, columns })
    }

    /// Every file under `directory`, recursively, with paths relative to the store root.
    async fn files_under(&self, directory: &str) -> ServiceResult<Vec<String>> {
        let mut files = Vec::new();
        let mut pending = vec![directory.to_string()];
        while let Some(dir) = pending.pop() {
            for entry in self.artifacts.list_internal(&dir).await? {
                if entry.is_dir {
                    pending.push(entry.path);
                } else {
                    files.push(entry.path);
                }
            }
            if files.len() > 10_000 {
                return Err(ServiceError::invalid(format!(
                    "'{directory}' holds more than 10,000 files"
                )));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Pins a model directory by the digest of its manifest (each file's path and sha256); the
    /// files read to compute it become the local copy, so they are fetched once.
    async fn pin_directory(&self, directory: &str) -> ServiceResult<ResolvedArtifact> {
        let (staging, sha256) = self.fetch_directory(directory).await?;
        let artifact = ResolvedArtifact {
            runtime: "pyfunc".into(),
            path: directory.to_string(),
            sha256,
            columns: None,
        };
        self.install(staging, &artifact).await?;
        Ok(artifact)
    }

    fn pyfunc_cache(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("cairn-model-cache"))
            .join("pyfunc")
    }

    /// Copies a model directory from the artifact store into a fresh staging directory; returns
    /// it with the digest of the manifest.
    async fn fetch_directory(&self, directory: &str) -> ServiceResult<(PathBuf, String)> {
        let staging = self.pyfunc_cache().join(format!("tmp-{}", uuid::Uuid::new_v4()));
        let mut manifest = String::new();
        for file in self.files_under(directory).await? {
            let bytes = self.artifacts.read_internal(&file).await?;
            let relative = file.strip_prefix(directory).unwrap_or(&file).trim_start_matches('/');
            manifest.push_str(&format!("{relative}\t{}\n", hex::encode(Sha256::digest(&bytes))));
            let local = staging.join(relative);
            if let Some(parent) = local.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(cache_error)?;
            }
            tokio::fs::write(&local, &bytes).await.map_err(cache_error)?;
        }
        Ok((staging, hex::encode(Sha256::digest(manifest.as_bytes()))))
    }

    /// Moves a fetched directory to its digest's place (or drops it if another request won).
    async fn install(
        &self,
        staging: PathBuf,
        artifact: &ResolvedArtifact,
    ) -> ServiceResult<PathBuf> {
        let target = self.pyfunc_cache().join(&artifact.sha256);
        if tokio::fs::metadata(target.join("MLmodel")).await.is_ok() {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Ok(target);
        }
        match tokio::fs::rename(&staging, &target).await {
            Ok(()) => Ok(target),
            Err(_) if tokio::fs::metadata(target.join("MLmodel")).await.is_ok() => {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                Ok(target)
            }
            Err(error) => Err(cache_error(error)),
        }
    }

    /// The local copy of a pinned model directory, fetched (and verified) when missing.
    async fn local_directory(&self, artifact: &ResolvedArtifact) -> ServiceResult<PathBuf> {
        let target = self.pyfunc_cache().join(&artifact.sha256);
        if tokio::fs::metadata(target.join("MLmodel")).await.is_ok() {
            return Ok(target);
        }
        let (staging, sha256) = self.fetch_directory(&artifact.path).await?;
        if sha256 != artifact.sha256 {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(ServiceError {
                kind: ErrorKind::FailedPrecondition,
                message: format!(
                    "the model files under '{}' changed since they were deployed; redeploy the version",
                    artifact.path
                ),
            });
        }
        self.install(staging, artifact).await
    }

    /// The Python worker of a pinned model directory, started once per digest.
    async fn worker(&self, artifact: &ResolvedArtifact) -> ServiceResult<Arc<PythonWorker>> {
        let mut workers = self.workers.lock().await;
        if let Some(worker) = workers.get(&artifact.sha256) {
            return Ok(worker.clone());
        }
        check_python(&self.python).await.map_err(serving_error)?;
        let directory = self.local_directory(artifact).await?;
        let worker =
            Arc::new(PythonWorker::start(&self.python, &directory).await.map_err(serving_error)?);
        workers.insert(artifact.sha256.clone(), worker.clone());
        Ok(worker)
    }

    async fn runtime(&self, artifact: &ResolvedArtifact) -> ServiceResult<Runtime> {
        match artifact.runtime.as_str() {
            "pyfunc" => Ok(Runtime::Python(self.worker(artifact).await?)),
            _ => Ok(Runtime::Onnx(self.model(artifact).await?)),
        }
    }

    /// Compiles model bytes (off the async threads), once per digest.
    async fn compile(&self, sha256: String, bytes: Vec<u8>) -> ServiceResult<Arc<OnnxModel>> {
        if let Some(model) = self.models.lock().ok().and_then(|models| models.get(&sha256).cloned())
        {
            return Ok(model);
        }
        let model = tokio::task::spawn_blocking(move || OnnxModel::load(&bytes))
            .await
            .map_err(|error| ServiceError {
                kind: ErrorKind::Internal,
                message: format!("model compilation stopped: {error}"),
            })?
            .map_err(serving_error)?;
        let model = Arc::new(model);
        if let Ok(mut models) = self.models.lock() {
            models.insert(sha256, model.clone());
        }
        Ok(model)
    }

    /// Checks a spec and pins every route's file: the gate must allow each version in the
    /// environment, and each must compile.
    async fn prepare(
        &self,
        context: &RequestContext,
        project_id: i64,
        environment: &str,
        mut spec: DeploymentSpec,
    ) -> ServiceResult<DeploymentSpec> {
        spec.validate()?;
        for caller in &spec.callers {
            self.store.get_user(caller).await.map_err(|_| {
                ServiceError::invalid(format!(
                    "callers: no user or service account named '{caller}'"
                ))
            })?;
        }
        for route in &mut spec.routes {
            let gate = self
                .governance
                .deploy_gate(context, &route.model, route.version, environment)
                .await?;
            if !gate.allowed {
                let reasons: Vec<String> = gate
                    .reasons
                    .iter()
                    .filter(|r| !r.satisfied)
                    .map(|r| r.message.clone())
                    .collect();
                return Err(ServiceError {
                    kind: ErrorKind::FailedPrecondition,
                    message: format!(
                        "the deploy gate refuses {} version {} in '{environment}': {}",
                        route.model,
                        route.version,
                        reasons.join("; ")
                    ),
                });
            }
            route.artifact = Some(self.resolve(project_id, &route.model, route.version).await?);
        }
        // A shadow's answers never reach callers, so the gate is not asked; it must compile.
        if let Some(shadow) = &mut spec.shadow {
            shadow.artifact = Some(self.resolve(project_id, &shadow.model, shadow.version).await?);
        }
        if let Some(monitor) = spec.monitor.take() {
            let monitor = crate::monitoring::resolve_monitor(
                &self.store,
                &self.artifacts,
                project_id,
                &spec,
                monitor,
            )
            .await?;
            spec.monitor = Some(monitor);
        }
        Ok(spec)
    }

    /// Creates a deployment in the request's project.
    pub async fn create(
        &self,
        context: &RequestContext,
        name: &str,
        environment: &str,
        spec: DeploymentSpec,
    ) -> ServiceResult<Deployment> {
        validate_deployment_name(name)?;
        if environment.trim().is_empty() || environment.len() > 64 {
            return Err(ServiceError::invalid(
                "environment must be 1–64 characters (e.g. production)",
            ));
        }
        let project_id = self.project(context, Access::Write).await?;
        if self.store.deployment_revision(name).await?.is_some() {
            return Err(ServiceError {
                kind: ErrorKind::AlreadyExists,
                message: format!("a deployment named '{name}' exists already"),
            });
        }
        let spec = self.prepare(context, project_id, environment, spec).await?;
        let created =
            self.store.create_deployment(context, project_id, name, environment, &spec).await?;
        crate::monitoring::schedule(&self.store, context, &created).await?;
        Ok(created)
    }

    /// Replaces what a deployment serves (a new revision).
    pub async fn update(
        &self,
        context: &RequestContext,
        name: &str,
        spec: DeploymentSpec,
        comment: Option<&str>,
        expected_revision: Option<i64>,
    ) -> ServiceResult<Deployment> {
        let deployment = self.visible(context, name, Access::Write).await?;
        let spec =
            self.prepare(context, deployment.project_id, &deployment.environment, spec).await?;
        let revised =
            self.store.revise_deployment(context, name, &spec, comment, expected_revision).await?;
        self.forget(name);
        crate::monitoring::schedule(&self.store, context, &revised).await?;
        Ok(revised)
    }

    /// Serves an earlier revision's spec again, as a new revision (the previous one by default).
    pub async fn rollback(
        &self,
        context: &RequestContext,
        name: &str,
        to_revision: Option<i64>,
    ) -> ServiceResult<Deployment> {
        let deployment = self.visible(context, name, Access::Write).await?;
        let target = to_revision.unwrap_or(deployment.revision - 1);
        if target < 1 || target >= deployment.revision {
            return Err(ServiceError {
                kind: ErrorKind::FailedPrecondition,
                message: format!(
                    "deployment '{name}' is at revision {}; roll back to one of revisions 1–{}",
                    deployment.revision,
                    deployment.revision - 1
                ),
            });
        }
        let revisions = self.store.deployment_revisions(name).await?;
        let earlier = revisions
            .into_iter()
            .find(|revision| revision.revision == target)
            .ok_or_else(|| ServiceError::invalid(format!("no revision {target}")))?;
        let spec = self
            .prepare(context, deployment.project_id, &deployment.environment, earlier.spec)
            .await?;
        let comment = format!("rollback to revision {target}");
        let revised = self
            .store
            .revise_deployment(context, name, &spec, Some(&comment), Some(deployment.revision))
            .await?;
        self.forget(name);
        crate::monitoring::schedule(&self.store, context, &revised).await?;
        Ok(revised)
    }

    /// Deletes a deployment (its history stays).
    pub async fn delete(&self, context: &RequestContext, name: &str) -> ServiceResult<()> {
        let deployment = self.visible(context, name, Access::Write).await?;
        self.store.delete_deployment(context, name).await?;
        self.forget(name);
        crate::monitoring::unschedule(
            &self.store,
            context,
            &deployment,
            "the deployment was deleted",
        )
        .await?;
        Ok(())
    }

    /// One deployment.
    pub async fn get(&self, context: &RequestContext, name: &str) -> ServiceResult<Deployment> {
        self.visible(context, name, Access::Read).await
    }

    /// Its revisions: which versions served which shares when.
    pub async fn history(
        &self,
        context: &RequestContext,
        name: &str,
    ) -> ServiceResult<Vec<DeploymentRevision>> {
        self.visible(context, name, Access::Read).await?;
        Ok(self.store.deployment_revisions(name).await?)
    }

    /// The request's project, which the caller may read (for project-wide monitoring views).
    pub(crate) async fn readable_project(&self, context: &RequestContext) -> ServiceResult<i64> {
        self.project(context, Access::Read).await
    }

    /// The request's project's deployments.
    pub async fn list(&self, context: &RequestContext) -> ServiceResult<Vec<Deployment>> {
        let project_id = self.project(context, Access::Read).await?;
        Ok(self.store.list_deployments(project_id).await?)
    }

    fn forget(&self, name: &str) {
        if let Ok(mut live) = self.live.write() {
            live.remove(name);
        }
    }

    /// The compiled form of a pinned model file: memory, else the local cache (verified), else
    /// the artifact store (verified, then cached).
    async fn model(&self, artifact: &ResolvedArtifact) -> ServiceResult<Arc<OnnxModel>> {
        if let Some(model) =
            self.models.lock().ok().and_then(|models| models.get(&artifact.sha256).cloned())
        {
            return Ok(model);
        }
        let cached =
            self.cache_dir.as_ref().map(|dir| dir.join(format!("{}.onnx", artifact.sha256)));
        if let Some(path) = &cached
            && let Ok(bytes) = tokio::fs::read(path).await
        {
            if hex::encode(Sha256::digest(&bytes)) == artifact.sha256 {
                return self.compile(artifact.sha256.clone(), bytes).await;
            }
            tracing::warn!(path = %path.display(), "cached model file does not match its digest; fetching it again");
            let _ = tokio::fs::remove_file(path).await;
        }
        let bytes = self.artifacts.read_internal(&artifact.path).await?;
        if hex::encode(Sha256::digest(&bytes)) != artifact.sha256 {
            return Err(ServiceError {
                kind: ErrorKind::FailedPrecondition,
                message: format!(
                    "the model file '{}' changed since it was deployed (sha256 differs); redeploy the version",
                    artifact.path
                ),
            });
        }
        if let Some(path) = &cached {
            let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
            let written = async {
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                tokio::fs::write(&temporary, &bytes).await?;
                tokio::fs::rename(&temporary, path).await
            }
            .await;
            if let Err(error) = written {
                tracing::warn!(%error, "could not cache a model file locally");
                let _ = tokio::fs::remove_file(&temporary).await;
            }
        }
        self.compile(artifact.sha256.clone(), bytes).await
    }

    /// The deployment as served now, loading or refreshing it as needed.
    async fn live(&self, name: &str) -> ServiceResult<Arc<Live>> {
        let current = self.live.read().ok().and_then(|live| live.get(name).cloned());
        if let Some(live) = &current {
            let fresh =
                live.checked.lock().map(|checked| checked.elapsed() < FRESHNESS).unwrap_or(false);
            if fresh {
                return Ok(live.clone());
            }
        }
        let Some(revision) = self.store.deployment_revision(name).await? else {
            self.forget(name);
            return Err(not_found(name));
        };
        if let Some(live) = current
            && live.deployment.revision == revision
        {
            if let Ok(mut checked) = live.checked.lock() {
                *checked = Instant::now();
            }
            return Ok(live);
        }
        let deployment = self.store.get_deployment(name).await?;
        let mut models = Vec::with_capacity(deployment.spec.routes.len());
        for route in &deployment.spec.routes {
            let artifact = route.artifact.as_ref().ok_or_else(|| ServiceError {
                kind: ErrorKind::Internal,
                message: format!("deployment '{name}' has a route without a pinned file"),
            })?;
            models.push(self.runtime(artifact).await?);
        }
        let shadow =
            match deployment.spec.shadow.as_ref().and_then(|shadow| shadow.artifact.as_ref()) {
                Some(artifact) => Some(self.runtime(artifact).await?),
                None => None,
            };
        let live = Arc::new(Live {
            name: deployment.name.as_str().into(),
            model_names: deployment.spec.routes.iter().map(|r| r.model.as_str().into()).collect(),
            deployment,
            models,
            shadow,
            checked: Mutex::new(Instant::now()),
        });
        if let Ok(mut cache) = self.live.write() {
            cache.insert(name.to_string(), live.clone());
        }
        Ok(live)
    }

    async fn callable(&self, context: &RequestContext, name: &str) -> ServiceResult<Arc<Live>> {
        let live = if context.project.is_some() {
            let project = self.project(context, Access::Read).await?;
            let live = self.live(name).await?;
            if live.deployment.project_id != project {
                return Err(not_found(name));
            }
            live
        } else {
            let live = self.live(name).await?;
            self.authz.require(context, live.deployment.project_id, Access::Read).await?;
            live
        };
        let callers = &live.deployment.spec.callers;
        if !callers.is_empty() && !callers.contains(&context.actor) {
            return Err(ServiceError {
                kind: ErrorKind::PermissionDenied,
                message: format!(
                    "deployment '{name}' may be called only by {}; '{}' may not",
                    callers.join(", "),
                    context.actor
                ),
            });
        }
        Ok(live)
    }

    /// Authorises a call of a deployment and resolves what it serves (loading it if needed).
    pub async fn served(&self, context: &RequestContext, name: &str) -> ServiceResult<ServedModel> {
        Ok(ServedModel { live: self.callable(context, name).await? })
    }

    /// Predicts with one of the deployment's routes, chosen by weight; captures the rows when
    /// the deployment captures (and this request is sampled), and sends a copy to the shadow.
    pub async fn predict(
        &self,
        served: &ServedModel,
        input: InputTable,
        prediction_id: &str,
    ) -> ServiceResult<PredictOutcome> {
        let started = cairn_domain::time::now_millis();
        let live = &served.live;
        let spec = &live.deployment.spec;
        let index = spec.pick(rand::random_range(0..spec.total_weight()));
        let route = &spec.routes[index];
        let runtime = live.models[index].clone();
        let columns = route.artifact.as_ref().and_then(|artifact| artifact.columns.clone());
        let captured = spec.capture.enabled
            && (spec.capture.sample_rate >= 1.0
                || rand::random::<f64>() < spec.capture.sample_rate);
        let input = Arc::new(input);
        let clock = Instant::now();
        let (rows, data, outputs) = run(runtime, input.clone(), columns, captured).await?;
        let latency_us = clock.elapsed().as_micros() as i64;
        if captured {
            let sink = self.capture_sink();
            let template = CaptureRecord {
                prediction_id: prediction_id.into(),
                row: 0,
                timestamp_ms: started,
                deployment: Arc::clone(&live.name),
                revision: live.deployment.revision,
                model: Arc::clone(&live.model_names[index]),
                version: route.version,
                variant: "primary",
                features: Vec::new(),
                outputs: String::new(),
                latency_us,
            };
            sink.submit(records(&template, &data, rows, &outputs));
            if let (Some(shadow_runtime), Some(shadow)) = (live.shadow.clone(), spec.shadow.clone())
            {
                let template = CaptureRecord {
                    variant: "shadow",
                    model: shadow.model.as_str().into(),
                    version: shadow.version,
                    ..template
                };
                let columns =
                    shadow.artifact.as_ref().and_then(|artifact| artifact.columns.clone());
                tokio::spawn(async move {
                    let clock = Instant::now();
                    match run(shadow_runtime, input, columns, true).await {
                        Ok((rows, data, outputs)) => {
                            let template = CaptureRecord {
                                latency_us: clock.elapsed().as_micros() as i64,
                                ..template
                            };
                            sink.submit(records(&template, &data, rows, &outputs));
                        }
                        Err(error) => {
                            tracing::warn!(error = %error.message, "the shadow model failed")
                        }
                    }
                });
            }
        }
        Ok(PredictOutcome {
            outputs,
            model: route.model.clone(),
            version: route.version,
            revision: live.deployment.revision,
        })
    }

    fn capture_sink(&self) -> CaptureSink {
        self.capture
            .get_or_init(|| CaptureSink::start(self.artifacts.store(), CAPTURE_INTERVAL))
            .clone()
    }

    /// Capture records dropped because the pipeline was full, since start.
    pub fn captures_dropped(&self) -> u64 {
        self.capture.get().map_or(0, CaptureSink::dropped)
    }

    /// Writes every buffered capture record (called on graceful shutdown).
    pub async fn flush_captures(&self) {
        if let Some(sink) = self.capture.get() {
            sink.flush().await;
        }
    }
}

/// Requests of at most this many rows are predicted on the async worker itself.
const INLINE_ROWS: usize = 16;

/// Runs one runtime on a request: the row count, the features as floats when `keep` (for
/// capture; NaN for cells that are not numbers; else empty) and the outputs.
async fn run(
    runtime: Runtime,
    input: Arc<InputTable>,
    columns: Option<Vec<String>>,
    keep: bool,
) -> ServiceResult<(usize, Vec<f32>, Vec<Output>)> {
    match runtime {
        Runtime::Onnx(model) => {
            let (rows, data) = to_matrix(&input, model.features(), columns.as_deref())?;
            let kept = if keep { data.clone() } else { Vec::new() };
            // A few rows take microseconds: run them here rather than pay a thread hand-off;
            // larger batches go to the blocking pool so they never stall other requests.
            let outputs = if rows <= INLINE_ROWS {
                model.predict(rows, data)
            } else {
                tokio::task::spawn_blocking(move || model.predict(rows, data)).await.map_err(
                    |error| ServiceError { kind: ErrorKind::Internal, message: error.to_string() },
                )?
            }
            .map_err(serving_error)?;
            Ok((rows, kept, outputs))
        }
        Runtime::Python(worker) => {
            if input.rows.is_empty() {
                return Err(ServiceError::invalid("the request has no rows to predict"));
            }
            let rows = input.rows.len();
            let width = if keep { input.rows.iter().map(Vec::len).max().unwrap_or(0) } else { 0 };
            let data: Vec<f32> = input
                .rows
                .iter()
                .flat_map(|row| {
                    (0..width).map(move |i| {
                        row.get(i).and_then(|v| v.as_f64()).map_or(f32::NAN, |v| v as f32)
                    })
                })
                .collect();
            let predictions = worker
                .predict(input.columns.as_deref(), &input.rows)
                .await
                .map_err(serving_error)?;
            let count = predictions.len();
            let output = Output {
                name: "predictions".into(),
                shape: vec![count],
                element: ElementType::Json,
                values: Values::Json(predictions),
            };
            Ok((rows.min(count), data, vec![output]))
        }
    }
}

/// One row's outputs as a JSON object.
pub fn row_outputs(outputs: &[Output], row: usize) -> serde_json::Map<String, serde_json::Value> {
    outputs
        .iter()
        .map(|output| {
            let width = if output.shape.len() == 2 { output.shape[1] } else { 1 };
            let cell = |index: usize| -> serde_json::Value {
                match &output.values {
                    Values::F64(values) => serde_json::json!(values[index]),
                    Values::I64(values) => serde_json::json!(values[index]),
                    Values::Bool(values) => serde_json::json!(values[index]),
                    Values::Str(values) => serde_json::json!(values[index]),
                    Values::Json(values) => values[index].clone(),
                }
            };
            let value = if output.shape.len() == 2 {
                serde_json::Value::Array(
                    (0..width).map(|column| cell(row * width + column)).collect(),
                )
            } else {
                cell(row)
            };
            (output.name.clone(), value)
        })
        .collect()
}

/// One row's outputs as JSON text, the same object as [`row_outputs`] without building it
/// (capture writes one per served row).
fn row_outputs_json(outputs: &[Output], row: usize) -> String {
    fn push<T: Serialize + ?Sized>(text: &mut Vec<u8>, value: &T) {
        // Serialising numbers, strings and JSON values into a Vec cannot fail.
        let _infallible = serde_json::to_writer(&mut *text, value);
    }
    let mut text = Vec::with_capacity(64);
    text.push(b'{');
    for (index, output) in outputs.iter().enumerate() {
        if index > 0 {
            text.push(b',');
        }
        push(&mut text, output.name.as_str());
        text.push(b':');
        let (width, nested) =
            if output.shape.len() == 2 { (output.shape[1], true) } else { (1, false) };
        if nested {
            text.push(b'[');
        }
        for column in 0..width {
            if column > 0 {
                text.push(b',');
            }
            let at = if nested { row * width + column } else { row };
            match &output.values {
                Values::F64(values) => push(&mut text, &values[at]),
                Values::I64(values) => push(&mut text, &values[at]),
                Values::Bool(values) => push(&mut text, &values[at]),
                Values::Str(values) => push(&mut text, values[at].as_str()),
                Values::Json(values) => push(&mut text, &values[at]),
            }
        }
        if nested {
            text.push(b']');
        }
    }
    text.push(b'}');
    // serde_json writes UTF-8.
    String::from_utf8(text).unwrap_or_default()
}

fn records(
    template: &CaptureRecord,
    data: &[f32],
    rows: usize,
    outputs: &[Output],
) -> Vec<CaptureRecord> {
    let width = data.len() / rows.max(1);
    (0..rows)
        .map(|row| CaptureRecord {
            row: row as u32,
            features: data[row * width..(row + 1) * width].to_vec(),
            outputs: row_outputs_json(outputs, row),
            ..template.clone()
        })
        .collect()
}

/// Turns rows of JSON cells into a row-major float matrix, ordering named columns by the
/// model's signature when it has one; every refusal names the column and the expected type.
fn to_matrix(
    input: &InputTable,
    features: usize,
    signature: Option<&[String]>,
) -> ServiceResult<(usize, Vec<f32>)> {
    if input.rows.is_empty() {
        return Err(ServiceError::invalid("the request has no rows to predict"));
    }
    let order: Vec<usize> = match (&input.columns, signature) {
        (Some(given), Some(expected)) => expected
            .iter()
            .map(|name| {
                given.iter().position(|column| column == name).ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "missing column '{name}': the model's signature expects {}",
                        expected.join(", ")
                    ))
                })
            })
            .collect::<ServiceResult<_>>()?,
        (Some(given), None) => (0..given.len()).collect(),
        (None, _) => (0..input.rows[0].len()).collect(),
    };
    if order.len() != features {
        return Err(ServiceError::invalid(format!(
            "the model takes {features} features per row; the request has {}",
            order.len()
        )));
    }
    let name_of = |position: usize| -> String {
        match (&input.columns, signature) {
            (Some(given), _) => {
                given.get(position).cloned().unwrap_or_else(|| position.to_string())
            }
            (None, Some(expected)) => {
                expected.get(position).cloned().unwrap_or_else(|| position.to_string())
            }
            (None, None) => position.to_string(),
        }
    };
    let mut data = Vec::with_capacity(input.rows.len() * features);
    for (row_index, row) in input.rows.iter().enumerate() {
        for &position in &order {
            let cell = row.get(position).ok_or_else(|| {
                ServiceError::invalid(format!(
                    "row {row_index} has {} values; the model takes {features}",
                    row.len()
                ))
            })?;
            let value = cell.as_f64().ok_or_else(|| {
                ServiceError::invalid(format!(
                    "column '{}', row {row_index}: expected a number (float), got {cell}",
                    name_of(position)
                ))
            })?;
            data.push(value as f32);
        }
    }
    Ok((input.rows.len(), data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn captured_outputs_are_the_json_the_api_answers() {
        let outputs = vec![
            Output {
                name: "label".into(),
                shape: vec![2],
                element: cairn_serving::ElementType::I64,
                values: Values::I64(vec![1, 0]),
            },
            Output {
                name: "probabilities \"p\"".into(),
                shape: vec![2, 2],
                element: cairn_serving::ElementType::F64,
                values: Values::F64(vec![0.25, 0.75, 0.9, 0.1]),
            },
            Output {
                name: "name".into(),
                shape: vec![2],
                element: cairn_serving::ElementType::Str,
                values: Values::Str(vec!["a\nb".into(), "ü".into()]),
            },
        ];
        for row in 0..2 {
            let text = row_outputs_json(&outputs, row);
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, serde_json::Value::Object(row_outputs(&outputs, row)), "{text}");
        }
    }

    #[test]
    fn signature_columns_come_from_mlmodel() {
        let mlmodel = "signature:\n  inputs: '[{\"type\": \"double\", \"name\": \"a\", \"required\": true}, {\"type\": \"double\", \"name\": \"b''c\"}]'\n  outputs: null\n";
        assert_eq!(signature_columns(mlmodel), Some(vec!["a".to_string(), "b'c".to_string()]));
        let tensor = "signature:\n  inputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1, 8]}}]'\n";
        assert_eq!(signature_columns(tensor), None);
    }

    #[test]
    fn named_columns_follow_the_signature_and_bad_cells_are_named() {
        let input = InputTable {
            columns: Some(vec!["b".into(), "a".into()]),
            rows: vec![vec![json!(2.0), json!(1.0)]],
        };
        let signature = vec!["a".to_string(), "b".to_string()];
        assert_eq!(to_matrix(&input, 2, Some(&signature)).unwrap(), (1, vec![1.0, 2.0]));
        let bad = InputTable {
            columns: Some(vec!["a".into(), "b".into()]),
            rows: vec![vec![json!(1), json!("x")]],
        };
        let error = to_matrix(&bad, 2, Some(&signature)).unwrap_err();
        assert_eq!(error.message, "column 'b', row 0: expected a number (float), got \"x\"");
        let missing = InputTable {
            columns: Some(vec!["a".into(), "c".into()]),
            rows: vec![vec![json!(1), json!(2)]],
        };
        assert!(
            to_matrix(&missing, 2, Some(&signature))
                .unwrap_err()
                .message
                .starts_with("missing column 'b'")
        );
        let short = InputTable { columns: None, rows: vec![vec![json!(1)]] };
        assert!(to_matrix(&short, 2, None).is_err());
    }
}
