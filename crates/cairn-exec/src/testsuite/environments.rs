//! Conformance tests of environments: a local venv is built once per digest and reused, even
//! by concurrent callers, and a bad requirement fails with pip's error; on Ray, `prepare`
//! builds nothing and a bad requirement fails the job (or its submission).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::support::{END_TIMEOUT, python_job, read_whole_log, unique_id, wait_for_end};
use crate::{EnvironmentSpec, ExecError, ExecutorKind, JobExecutor, JobState};

/// A requirement pip refuses without looking anything up.
const BAD_REQUIREMENT: &str = "not a valid requirement!!";

fn fresh_environment(requirements: Vec<String>) -> EnvironmentSpec {
    EnvironmentSpec { digest: unique_id("env"), python: None, requirements, image: None }
}

/// Removes a test venv (`<cache>/<digest>`, from its `bin/python`) and its lock file.
fn remove_venv(python: &Path, digest: &str) {
    let Some(venv) = python.parent().and_then(Path::parent) else {
        return;
    };
    if let Some(cache) = venv.parent() {
        let _ = std::fs::remove_file(cache.join(format!(".{digest}.lock")));
    }
    let _ = std::fs::remove_dir_all(venv);
}

/// Locally, three concurrent `prepare` calls of a new digest build one venv (one call reports
/// `reused == false`), a later call reuses it, and its python runs; on Ray, `prepare` is a
/// cheap no-op naming the cluster's `python`.
pub async fn prepare_builds_once_and_reuses(executor: Arc<dyn JobExecutor>) {
    let scratch = tempfile::tempdir().expect("create a scratch directory");
    let build_log = scratch.path().join("logs").join("build.log");
    let env = fresh_environment(vec![]);
    if executor.kind() == ExecutorKind::Ray {
        let prepared = executor.prepare(&env, &build_log).await.expect("prepare on ray");
        assert_eq!(prepared.python, PathBuf::from("python"));
        assert!(std::fs::read_to_string(&build_log).expect("build log").contains(&env.digest));
        return;
    }
    let (first, second, third) = tokio::join!(
        executor.prepare(&env, &build_log),
        executor.prepare(&env, &build_log),
        executor.prepare(&env, &build_log),
    );
    let results =
        [first.expect("prepare 1"), second.expect("prepare 2"), third.expect("prepare 3")];
    let built = results.iter().filter(|prepared| !prepared.reused).count();
    assert_eq!(built, 1, "exactly one concurrent caller builds: {results:?}");
    assert!(results.iter().all(|prepared| prepared.python == results[0].python));
    let again = executor.prepare(&env, &build_log).await.expect("prepare again");
    assert!(again.reused && again.python == results[0].python);
    let log = std::fs::read_to_string(&build_log).expect("read the build log");
    assert_eq!(log.matches("creating environment").count(), 1, "build log:\n{log}");
    let output = tokio::process::Command::new(&again.python)
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .await
        .expect("run the venv's python");
    let prefix = String::from_utf8_lossy(&output.stdout);
    assert!(prefix.trim().ends_with(&env.digest), "the venv's python runs in the venv: {prefix}");
    remove_venv(&again.python, &env.digest);
}

/// A requirement pip cannot parse: locally `prepare` fails with `EnvironmentBuild` carrying
/// pip's error, and again on retry (no half-built venv is reused); on Ray the submission or
/// the job fails with a reason.
pub async fn bad_requirement_fails_the_build(executor: Arc<dyn JobExecutor>) {
    let scratch = tempfile::tempdir().expect("create a scratch directory");
    let build_log = scratch.path().join("build.log");
    // A fixed digest: a failed build leaves no ready marker and is wiped by the next attempt,
    // so repeated runs keep one failed venv in the shared cache, not one per run.
    let env = EnvironmentSpec {
        digest: "cairn-testsuite-bad-requirement-v1".into(),
        python: None,
        requirements: vec![BAD_REQUIREMENT.into()],
        image: None,
    };
    if executor.kind() == ExecutorKind::Ray {
        let mut spec = python_job("bad-requirement", "print('nev' + 'er')", scratch.path());
        spec.environment = env;
        match executor.submit(&spec).await {
            Err(ExecError::InvalidSpec(message)) => {
                assert!(message.contains("requirement"), "{message}");
            }
            Err(other) => panic!("expected InvalidSpec or a failed job, got {other:?}"),
            Ok(()) => {
                let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
                let log = read_whole_log(&executor, &spec.job_id).await;
                assert!(matches!(state, JobState::Failed { .. }), "{state:?}; log:\n{log}");
                eprintln!("ray: a bad requirement fails the job: {}", state.reason());
                assert!(state.reason().contains("Invalid requirement"), "{state:?}");
                assert!(!log.contains("never"), "log:\n{log}");
                executor.cleanup(&spec.job_id).await.expect("clean up");
            }
        }
        return;
    }
    for attempt in 0..2 {
        let error = executor.prepare(&env, &build_log).await.expect_err("the build fails");
        let ExecError::EnvironmentBuild { message, log_tail } = &error else {
            panic!("expected EnvironmentBuild, got {error:?}");
        };
        assert!(message.contains("pip install failed"), "attempt {attempt}: {message}");
        assert!(log_tail.contains("Invalid requirement"), "attempt {attempt}: {log_tail}");
        assert!(log_tail.lines().count() <= 40);
    }
    let log = std::fs::read_to_string(&build_log).expect("read the build log");
    assert!(log.contains("Invalid requirement"), "build log:\n{log}");
    // A job in that environment fails with the build's error.
    let mut spec = python_job("bad-requirement", "print('nev' + 'er')", scratch.path());
    spec.environment = env.clone();
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    match &state {
        JobState::Failed { exit_code: None, reason } => {
            assert!(reason.starts_with("environment build failed"), "{reason}");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    let job_log = read_whole_log(&executor, &spec.job_id).await;
    assert!(job_log.contains("Invalid requirement"), "the job's log shows the build:\n{job_log}");
    executor.cleanup(&spec.job_id).await.expect("clean up");
}
