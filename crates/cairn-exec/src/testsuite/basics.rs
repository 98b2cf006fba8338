//! Conformance tests of a job's basic life: success with its log, failure with its exit code,
//! injected variables (and secrets kept out of errors), working directory files, idempotent
//! submission, unknown jobs and cleanup.

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::support::{
    END_TIMEOUT, assert_not_found, python_job, read_whole_log, unique_id, wait_for_end,
};
use crate::{EnvironmentSpec, ExecError, JobExecutor, JobState};

/// An echo job succeeds, its output is in its log, and a second submit of the same id is a
/// no-op (the job runs once).
pub async fn echo_job_succeeds(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    // Messages are assembled at run time, so Ray's echo of the entrypoint does not match them.
    let code =
        "import sys; print('hello from ' + 'cairn'); print('to ' + 'stderr', file=sys.stderr)";
    let spec = python_job("echo", code, dir.path());
    let submitted = Instant::now();
    executor.submit(&spec).await.expect("submit the job");
    executor.submit(&spec).await.expect("submit the same job again");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    eprintln!("{}: echo job ended after {:?}", executor.kind().as_str(), submitted.elapsed());
    let log = read_whole_log(&executor, &spec.job_id).await;
    assert_eq!(state, JobState::Succeeded, "log:\n{log}");
    assert_eq!(state.reason(), "exit code 0");
    assert_eq!(log.matches("hello from cairn").count(), 1, "ran once; log:\n{log}");
    assert!(log.contains("to stderr"), "stderr goes to the same log:\n{log}");
    let chunk = executor.logs(&spec.job_id, 0).await.expect("read the log");
    assert!(chunk.complete || chunk.next_offset > 0);
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// A job exiting with 3 is `Failed` with exit code 3 and the reason "exit code 3".
pub async fn failing_job_reports_exit_code(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    let spec =
        python_job("fail", "import sys; print('about to ' + 'fail'); sys.exit(3)", dir.path());
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    match &state {
        JobState::Failed { exit_code: Some(3), reason } => assert_eq!(reason, "exit code 3"),
        other => panic!("expected Failed with exit code 3, got {other:?}; log:\n{log}"),
    }
    assert!(log.contains("about to fail"), "log:\n{log}");
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// Injected variables, `CAIRN_JOB_ID` and `CAIRN_OUTPUTS_DIR` reach the job; a secret value
/// reaches it too but appears in no `Debug` output, error or log line the executor writes.
pub async fn env_vars_reach_the_job(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    let secret = format!("s3cr3t-{}", unique_id("value"));
    let secret_hash = hex::encode(Sha256::digest(secret.as_bytes()));
    let code = "import hashlib, os, sys\n\
        print('greeting=' + os.environ['CAIRN_TEST_GREETING'])\n\
        print('job=' + os.environ['CAIRN_JOB_ID'])\n\
        print('outputs dir exists=' + str(os.path.isdir(os.environ['CAIRN_OUTPUTS_DIR'])))\n\
        digest = hashlib.sha256(os.environ['CAIRN_TEST_SECRET'].encode()).hexdigest()\n\
        print('secret ok' if digest == sys.argv[1] else 'secret wrong')\n";
    let mut spec = python_job("env", code, dir.path());
    spec.argv.push(secret_hash);
    spec.env.insert("CAIRN_TEST_GREETING".into(), "hello world".into());
    spec.env.insert("CAIRN_TEST_SECRET".into(), secret.clone());
    assert!(!format!("{spec:?}").contains(&secret), "Debug must redact env values");
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    assert_eq!(state, JobState::Succeeded, "log:\n{log}");
    assert!(log.contains("greeting=hello world"), "log:\n{log}");
    assert!(log.contains(&format!("job={}", spec.job_id)), "log:\n{log}");
    assert!(log.contains("outputs dir exists=True"), "log:\n{log}");
    assert!(log.contains("secret ok"), "log:\n{log}");
    assert!(!log.contains(&secret), "the executor must not write the secret to the log");

    // Errors about a spec carrying the secret do not show it.
    let mut broken = spec.clone();
    broken.job_id = unique_id("env-broken");
    broken.working_dir = dir.path().join("missing");
    let error = executor.submit(&broken).await.expect_err("a missing working dir is refused");
    assert!(matches!(error, ExecError::InvalidSpec(_)), "{error:?}");
    assert!(!format!("{error:?} {error}").contains(&secret));
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// Files of the working directory are readable from the job's current directory, in an
/// environment with a requirement installed.
pub async fn working_dir_files_are_readable(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    std::fs::create_dir_all(dir.path().join("data")).expect("create data/");
    std::fs::write(dir.path().join("data/input.txt"), "contents of input\n").expect("write input");
    std::fs::write(
        dir.path().join("train.py"),
        "import six\nprint('six', six.__version__)\nprint(open('data/input.txt').read().strip())\n",
    )
    .expect("write train.py");
    let mut spec = python_job("workdir", "", dir.path());
    spec.argv = vec!["python".into(), "train.py".into()];
    spec.environment = EnvironmentSpec {
        digest: "cairn-testsuite-six-v1".into(),
        python: None,
        requirements: vec!["six".into()],
        image: None,
    };
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    assert_eq!(state, JobState::Succeeded, "log:\n{log}");
    assert!(log.contains("contents of input"), "log:\n{log}");
    assert!(log.contains("six 1."), "log:\n{log}");
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// Jobs whose working directories hold the same files do not share a directory: what one
/// writes in its current directory is not there for the next (Ray unpacks one package per node
/// for every job submitted with it, so each job's package must be its own).
pub async fn jobs_do_not_share_working_directories(executor: Arc<dyn JobExecutor>) {
    let code = "import os\n\
                print('found' if os.path.exists('left_behind.txt') else 'clean')\n\
                open('left_behind.txt', 'w').write('x')\n";
    for round in 0..2 {
        let dir = tempfile::tempdir().expect("create a working directory");
        std::fs::write(dir.path().join("same.txt"), "same contents\n").expect("write a file");
        let spec = python_job("isolated", code, dir.path());
        executor.submit(&spec).await.expect("submit the job");
        let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
        let log = read_whole_log(&executor, &spec.job_id).await;
        assert_eq!(state, JobState::Succeeded, "log:\n{log}");
        let printed: Vec<&str> = log.lines().map(str::trim).collect();
        assert!(printed.contains(&"clean") && !printed.contains(&"found"), "round {round}: {log}");
        executor.cleanup(&spec.job_id).await.expect("clean up");
    }
}

/// Unknown jobs are `NotFound`; stopping a finished job is `Ok`; after `cleanup` the job is
/// unknown, and a second `cleanup` is `Ok`.
pub async fn unknown_jobs_and_cleanup(executor: Arc<dyn JobExecutor>) {
    let missing = unique_id("missing");
    assert_not_found(executor.status(&missing).await);
    assert_not_found(executor.logs(&missing, 0).await);
    assert_not_found(executor.stop(&missing, "nobody").await);
    executor.cleanup(&missing).await.expect("cleaning up an unknown job is Ok");

    let dir = tempfile::tempdir().expect("create a working directory");
    let spec = python_job("cleanup", "print('done')", dir.path());
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    assert_eq!(state, JobState::Succeeded);
    executor.stop(&spec.job_id, "too late").await.expect("stopping a finished job is Ok");
    assert_eq!(executor.status(&spec.job_id).await.expect("status"), JobState::Succeeded);
    executor.cleanup(&spec.job_id).await.expect("clean up");
    assert_not_found(executor.status(&spec.job_id).await);
    executor.cleanup(&spec.job_id).await.expect("a second cleanup is Ok");
    executor.ready().await.expect("the executor is ready");
}
