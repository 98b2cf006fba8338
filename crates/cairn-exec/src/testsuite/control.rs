//! Conformance tests of control over a running job: stop, the time limit, the memory limit and
//! logs read while the job runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::support::{
    END_TIMEOUT, python_job, read_whole_log, wait_for_end, wait_for_log, wait_for_running,
};
use crate::{JobExecutor, JobState};

/// How long a stopped or timed-out job may take to end (SIGTERM, a grace period, polling).
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// Stopping a long job ends it as `Stopped` with the given reason within seconds; stopping it
/// again is `Ok`.
pub async fn stop_ends_a_long_job(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    let spec = python_job(
        "stop",
        "import time; print('start' + 'ed', flush=True); time.sleep(300)",
        dir.path(),
    );
    let submitted = Instant::now();
    executor.submit(&spec).await.expect("submit the job");
    wait_for_running(&executor, &spec.job_id, END_TIMEOUT).await;
    eprintln!("{}: submit to running took {:?}", executor.kind().as_str(), submitted.elapsed());
    wait_for_log(&executor, &spec.job_id, "started", Duration::from_secs(60)).await;
    let stopping = Instant::now();
    executor.stop(&spec.job_id, "cancelled by alice").await.expect("stop the job");
    let state = wait_for_end(&executor, &spec.job_id, STOP_WITHIN).await;
    eprintln!("{}: stop took {:?}", executor.kind().as_str(), stopping.elapsed());
    assert_eq!(state, JobState::Stopped { reason: "cancelled by alice".into() });
    assert_eq!(state.reason(), "cancelled by alice");
    assert!(stopping.elapsed() < STOP_WITHIN, "stopping took {:?}", stopping.elapsed());
    executor.stop(&spec.job_id, "again").await.expect("stopping twice is Ok");
    let again = executor.status(&spec.job_id).await.expect("status");
    assert_eq!(again, JobState::Stopped { reason: "cancelled by alice".into() });
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// A `sleep 60` job with a 2 s limit ends as `TimedOut` within seconds of the limit.
pub async fn max_runtime_times_out(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    let mut spec = python_job(
        "timeout",
        "import time; print('sleep' + 'ing', flush=True); time.sleep(60)",
        dir.path(),
    );
    let limit = Duration::from_secs(2);
    spec.limits.max_runtime = Some(limit);
    executor.submit(&spec).await.expect("submit the job");
    wait_for_running(&executor, &spec.job_id, END_TIMEOUT).await;
    let running = Instant::now();
    let state = wait_for_end(&executor, &spec.job_id, limit + STOP_WITHIN).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    assert_eq!(state, JobState::TimedOut { limit }, "log:\n{log}");
    assert_eq!(state.reason(), "exceeded the tier's maximum run time of 2s");
    let took = running.elapsed();
    assert!(took >= Duration::from_millis(1500) && took < limit + STOP_WITHIN, "took {took:?}");
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// A job allocating 1 GiB under a 200 MiB limit ends as `MemoryExceeded`.
pub async fn memory_limit_is_enforced(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    let code = "import time\n\
        chunks = []\n\
        for i in range(16):\n    chunks.append(b'x' * (64 << 20))\n\
        print('allocated ' + '1 GiB', flush=True)\n\
        time.sleep(20)\n";
    let mut spec = python_job("memory", code, dir.path());
    let limit_bytes = 200 << 20;
    spec.limits.memory_bytes = Some(limit_bytes);
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    assert_eq!(state, JobState::MemoryExceeded { limit_bytes }, "log:\n{log}");
    assert_eq!(state.reason(), "exceeded the tier's memory limit of 200 MiB");
    assert!(!log.contains("allocated 1 GiB"), "log:\n{log}");
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// A job printing a line every 100 ms can be followed by offset: several reads return data
/// while it runs, and the lines come in order, none twice or missing.
pub async fn logs_stream_while_running(executor: Arc<dyn JobExecutor>) {
    let dir = tempfile::tempdir().expect("create a working directory");
    let code = "import time\n\
        for i in range(40):\n    print(f'line {i:03}', flush=True)\n    time.sleep(0.1)\n";
    let spec = python_job("logs", code, dir.path());
    executor.submit(&spec).await.expect("submit the job");
    let started = Instant::now();
    let mut collected = Vec::new();
    let mut offset = 0;
    let mut reads_with_data_while_running = 0;
    loop {
        let state = executor.status(&spec.job_id).await.expect("status");
        let chunk = executor.logs(&spec.job_id, offset).await.expect("read the log");
        assert!(chunk.next_offset >= offset, "offsets never go back");
        assert_eq!(chunk.next_offset - offset, chunk.bytes.len() as u64);
        if state == JobState::Running && !chunk.bytes.is_empty() {
            reads_with_data_while_running += 1;
        }
        collected.extend_from_slice(&chunk.bytes);
        offset = chunk.next_offset;
        if chunk.complete {
            break;
        }
        assert!(started.elapsed() < END_TIMEOUT, "the log never completed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = String::from_utf8_lossy(&collected);
    let lines: Vec<&str> = text.lines().filter(|line| line.starts_with("line ")).collect();
    let expected: Vec<String> = (0..40).map(|i| format!("line {i:03}")).collect();
    assert_eq!(lines, expected, "log:\n{text}");
    assert!(
        reads_with_data_while_running >= 3,
        "only {reads_with_data_while_running} reads had data while running"
    );
    let state = executor.status(&spec.job_id).await.expect("status");
    assert_eq!(state, JobState::Succeeded);
    let tail = executor.logs(&spec.job_id, offset).await.expect("read past the end");
    assert!(tail.bytes.is_empty() && tail.complete && tail.next_offset == offset);
    executor.cleanup(&spec.job_id).await.expect("clean up");
}
