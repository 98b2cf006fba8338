//! Runs the executor conformance suite against the local executor, with cgroups when this
//! machine lets us create them, and its memory tests again with the `ulimit -v` fallback.
//!
//! The base interpreter is `CAIRN_TEST_PYTHON` (scripts/test.sh points it at the test venv's
//! python) or `python3`. Venvs are cached under `$CARGO_TARGET_DIR/cairn-test-envs/<hash of the
//! interpreter path>`, so repeated runs build them once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_exec::testsuite::{TestExecutor, python_job, read_whole_log, wait_for_end};
use cairn_exec::{JobExecutor, JobState, LocalConfig, LocalExecutor};
use sha2::{Digest, Sha256};

fn test_python() -> PathBuf {
    std::env::var_os("CAIRN_TEST_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

/// `$CARGO_TARGET_DIR/cairn-test-envs/<hash>`, shared by every run with the same interpreter.
fn env_cache(python: &std::path::Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(".."), PathBuf::from);
    let key = hex::encode(Sha256::digest(python.as_os_str().as_encoded_bytes()));
    target.join("cairn-test-envs").join(&key[..12])
}

fn config(root: PathBuf, use_cgroups: bool) -> LocalConfig {
    let python = test_python();
    LocalConfig {
        env_cache: env_cache(&python),
        kill_grace: Duration::from_secs(3),
        cgroup_parent: "cairn-test".into(),
        use_cgroups,
        ..LocalConfig::new(root, python)
    }
}

async fn local_executor(_test: &'static str) -> Option<TestExecutor> {
    let temp = tempfile::tempdir().expect("create a temporary directory");
    let executor = LocalExecutor::new(config(temp.path().join("state"), true))
        .expect("create the local executor");
    eprintln!("local executor: memory enforcement {}", executor.memory_enforcement());
    Some(TestExecutor::new(Arc::new(executor)).with_guard(temp))
}

cairn_exec::job_executor_test_suite!(local_executor);

mod rlimit {
    use super::*;

    async fn rlimit_executor(_test: &'static str) -> Option<TestExecutor> {
        let temp = tempfile::tempdir().expect("create a temporary directory");
        let executor = LocalExecutor::new(config(temp.path().join("state"), false))
            .expect("create the local executor");
        assert_eq!(executor.memory_enforcement(), "rlimit-as");
        Some(TestExecutor::new(Arc::new(executor)).with_guard(temp))
    }

    cairn_exec::job_executor_test_suite!(@tests rlimit_executor;
        memory_limit_is_enforced,
        stop_ends_a_long_job,
        echo_job_succeeds,
    );
}

/// A finished job's state and log survive a restart (a new executor on the same root); a job
/// the new executor never ran is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_survive_a_restart() {
    let temp = tempfile::tempdir().expect("create a temporary directory");
    let root = temp.path().join("state");
    let first: Arc<dyn JobExecutor> =
        Arc::new(LocalExecutor::new(config(root.clone(), true)).expect("create the executor"));
    let spec = python_job("restart", "print('before the restart')", temp.path());
    first.submit(&spec).await.expect("submit");
    let state = wait_for_end(&first, &spec.job_id, Duration::from_secs(120)).await;
    assert_eq!(state, JobState::Succeeded);
    drop(first);
    let second: Arc<dyn JobExecutor> =
        Arc::new(LocalExecutor::new(config(root, true)).expect("create the executor again"));
    assert_eq!(second.status(&spec.job_id).await.expect("status"), JobState::Succeeded);
    assert!(read_whole_log(&second, &spec.job_id).await.contains("before the restart"));
    second.submit(&spec).await.expect("a finished job's id is already submitted");
    second.cleanup(&spec.job_id).await.expect("clean up");
}

/// With cgroups, a job limited to 0.2 cores gets about that much CPU time while spinning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_quota_limits_a_busy_job() {
    let temp = tempfile::tempdir().expect("create a temporary directory");
    let local = LocalExecutor::new(config(temp.path().join("state"), true)).expect("executor");
    if !local.limits_cpu() {
        eprintln!("SKIPPED: cpu_quota_limits_a_busy_job: no writable cpu cgroup here");
        return;
    }
    let executor: Arc<dyn JobExecutor> = Arc::new(local);
    let code = "import time\nend = time.monotonic() + 2\nwhile time.monotonic() < end:\n    pass\n\
        print(f'cpu={time.process_time():.2f}')\n";
    let mut spec = python_job("cpu", code, temp.path());
    spec.limits.cpu = 0.2;
    executor.submit(&spec).await.expect("submit");
    let state = wait_for_end(&executor, &spec.job_id, Duration::from_secs(120)).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    assert_eq!(state, JobState::Succeeded, "log:\n{log}");
    let cpu: f64 = log
        .lines()
        .find_map(|line| line.strip_prefix("cpu="))
        .and_then(|value| value.parse().ok())
        .expect("the job printed its cpu time");
    assert!(cpu < 1.0, "2 s of spinning at 0.2 cores used {cpu} s of cpu");
    executor.cleanup(&spec.job_id).await.expect("clean up");
}
