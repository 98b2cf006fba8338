//! A managed Python worker for MLflow flavours that are not ONNX (scikit-learn pickles, pyfunc):
//! one child process per served model directory, running `mlflow.pyfunc.load_model` and then
//! answering JSON-lines requests on its stdin/stdout. Cairn supervises it: a worker that died
//! is started again on the next request, and it is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::ServingError;

const WORKER_SCRIPT: &str = include_str!("worker.py");

/// How long a model may take to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one prediction may take.
const PREDICT_TIMEOUT: Duration = Duration::from_secs(60);

struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

/// A supervised Python worker serving one model directory.
pub struct PythonWorker {
    python: PathBuf,
    model_dir: PathBuf,
    process: Mutex<Option<Process>>,
    flavors: Vec<String>,
    columns: Option<Vec<String>>,
    restarts: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PythonWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonWorker")
            .field("python", &self.python)
            .field("model_dir", &self.model_dir)
            .field("flavors", &self.flavors)
            .finish()
    }
}

/// Checks that `python` runs and has `mlflow`; the error says what to fix.
pub async fn check_python(python: &Path) -> Result<String, ServingError> {
    let output = Command::new(python)
        .args(["-c", "import mlflow, sys; print(mlflow.__version__, sys.version.split()[0])"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| {
            ServingError::Unsupported(format!(
                "the Python worker cannot start '{}': {error}; point `cairn serve --python` (CAIRN_PYTHON) at a Python with mlflow installed",
                python.display()
            ))
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").to_string();
        return Err(ServingError::Unsupported(format!(
            "'{}' cannot import mlflow ({last}); point `cairn serve --python` (CAIRN_PYTHON) at a Python with mlflow installed",
            python.display()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

async fn read_line(
    stdout: &mut BufReader<ChildStdout>,
    timeout: Duration,
) -> Result<Value, ServingError> {
    let mut line = String::new();
    let read = tokio::time::timeout(timeout, stdout.read_line(&mut line))
        .await
        .map_err(|_| {
            ServingError::Inference(format!("the Python worker did not answer within {timeout:?}"))
        })?
        .map_err(|error| {
            ServingError::Inference(format!("reading from the Python worker: {error}"))
        })?;
    if read == 0 {
        return Err(ServingError::Inference("the Python worker exited".into()));
    }
    serde_json::from_str(&line).map_err(|error| {
        ServingError::Inference(format!("the Python worker answered garbage: {error}"))
    })
}

async fn spawn(python: &Path, model_dir: &Path) -> Result<(Process, Value), ServingError> {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(WORKER_SCRIPT)
        .arg(model_dir)
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            ServingError::Unsupported(format!(
                "the Python worker cannot start '{}': {error}",
                python.display()
            ))
        })?;
    let stdin =
        child.stdin.take().ok_or_else(|| ServingError::Inference("no worker stdin".into()))?;
    let stdout =
        child.stdout.take().ok_or_else(|| ServingError::Inference("no worker stdout".into()))?;
    let mut stdout = BufReader::new(stdout);
    let hello = read_line(&mut stdout, LOAD_TIMEOUT).await?;
    if hello["ready"] != true {
        return Err(ServingError::Unsupported(format!(
            "the model cannot be loaded by mlflow.pyfunc: {}",
            hello["error"].as_str().unwrap_or("unknown error")
        )));
    }
    Ok((Process { child, stdin, stdout, next_id: 1 }, hello))
}

impl PythonWorker {
    /// Starts a worker and loads the model (deploy time: a model that does not load is refused).
    pub async fn start(python: &Path, model_dir: &Path) -> Result<Self, ServingError> {
        let (process, hello) = spawn(python, model_dir).await?;
        let flavors = hello["flavors"]
            .as_array()
            .map(|items| items.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let columns = hello["columns"]
            .as_array()
            .map(|items| items.iter().filter_map(|c| c.as_str().map(str::to_string)).collect());
        Ok(Self {
            python: python.to_path_buf(),
            model_dir: model_dir.to_path_buf(),
            process: Mutex::new(Some(process)),
            flavors,
            columns,
            restarts: Default::default(),
        })
    }

    /// The model's MLflow flavours.
    pub fn flavors(&self) -> &[String] {
        &self.flavors
    }

    /// Input column names from the model's signature, when it has them.
    pub fn columns(&self) -> Option<&[String]> {
        self.columns.as_deref()
    }

    /// How often the worker had to be started again.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Predicts rows; one request at a time per worker. A worker that died is restarted.
    pub async fn predict(
        &self,
        columns: Option<&[String]>,
        rows: &[Vec<Value>],
    ) -> Result<Vec<Value>, ServingError> {
        let mut guard = self.process.lock().await;
        let alive = match guard.as_mut() {
            Some(process) => matches!(process.child.try_wait(), Ok(None)),
            None => false,
        };
        if !alive {
            tracing::warn!(model = %self.model_dir.display(), "restarting the Python worker");
            self.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *guard = None;
            let (process, _) = spawn(&self.python, &self.model_dir).await?;
            *guard = Some(process);
        }
        let process = guard.as_mut().ok_or_else(|| ServingError::Inference("no worker".into()))?;
        let id = process.next_id;
        process.next_id += 1;
        let mut line = json!({"id": id, "columns": columns, "rows": rows}).to_string();
        line.push('\n');
        let exchange = async {
            process.stdin.write_all(line.as_bytes()).await.map_err(|error| {
                ServingError::Inference(format!("writing to the Python worker: {error}"))
            })?;
            process
                .stdin
                .flush()
                .await
                .map_err(|error| ServingError::Inference(error.to_string()))?;
            read_line(&mut process.stdout, PREDICT_TIMEOUT).await
        };
        let answer = match exchange.await {
            Ok(answer) => answer,
            Err(error) => {
                // A worker that broke mid-request is replaced on the next one.
                *guard = None;
                return Err(error);
            }
        };
        if answer["id"] != json!(id) {
            *guard = None;
            return Err(ServingError::Inference("the Python worker answered out of order".into()));
        }
        if let Some(error) = answer["error"].as_str() {
            return Err(ServingError::BadInput(format!("the model refused the input: {error}")));
        }
        match &answer["predictions"] {
            Value::Array(items) => Ok(items.clone()),
            other => Ok(vec![other.clone()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_python_is_a_clear_error() {
        let error = check_python(Path::new("/nonexistent/python3")).await.unwrap_err();
        assert!(matches!(error, ServingError::Unsupported(_)));
        assert!(error.to_string().contains("--python"), "{error}");
    }
}
