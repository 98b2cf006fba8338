//! Conformance tests of output uploads: every file under `$CAIRN_OUTPUTS_DIR` is PUT with the
//! bearer token before the job ends, and a refused upload fails the job.

use std::sync::Arc;

use super::support::{END_TIMEOUT, OutputsReceiver, python_job, read_whole_log, wait_for_end};
use crate::{JobExecutor, JobState, OutputsUpload};

const WRITE_OUTPUTS: &str = "import os\n\
    out = os.environ['CAIRN_OUTPUTS_DIR']\n\
    assert 'CAIRN_OUTPUTS_TOKEN' not in os.environ, 'the upload token leaked into the job'\n\
    os.makedirs(os.path.join(out, 'model'), exist_ok=True)\n\
    open(os.path.join(out, 'model', 'weights.bin'), 'wb').write(bytes(range(256)) * 4096)\n\
    open(os.path.join(out, 'metrics.json'), 'w').write('{\"accuracy\": 0.93}')\n\
    print('outputs written')\n";

/// Files written to `$CAIRN_OUTPUTS_DIR` arrive at the receiver, each with the bearer token,
/// by the time the job reports `Succeeded`.
pub async fn outputs_are_uploaded(executor: Arc<dyn JobExecutor>) {
    let token = "outputs-token-1234";
    let receiver = OutputsReceiver::start(token).await;
    let dir = tempfile::tempdir().expect("create a working directory");
    let mut spec = python_job("outputs", WRITE_OUTPUTS, dir.path());
    spec.outputs = Some(OutputsUpload {
        url: format!("{}/{}", receiver.url, spec.job_id),
        token: token.into(),
    });
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    assert_eq!(state, JobState::Succeeded, "log:\n{log}");
    let uploads = receiver.uploads();
    let paths: Vec<String> = uploads.iter().map(|upload| upload.path.clone()).collect();
    let prefix = &spec.job_id;
    assert_eq!(paths, [format!("{prefix}/metrics.json"), format!("{prefix}/model/weights.bin")]);
    assert!(uploads.iter().all(|upload| upload.authorization == format!("Bearer {token}")));
    assert_eq!(uploads[0].body, br#"{"accuracy": 0.93}"#);
    let weights: Vec<u8> = (0..=255u8).cycle().take(256 * 4096).collect();
    assert_eq!(uploads[1].body, weights);
    assert!(!log.contains(token), "the token must not reach the log");
    executor.cleanup(&spec.job_id).await.expect("clean up");
}

/// A job whose outputs the server refuses (wrong token) ends `Failed` with a reason saying so.
pub async fn refused_outputs_fail_the_job(executor: Arc<dyn JobExecutor>) {
    let receiver = OutputsReceiver::start("the-right-token").await;
    let dir = tempfile::tempdir().expect("create a working directory");
    let mut spec = python_job("outputs-refused", WRITE_OUTPUTS, dir.path());
    spec.outputs = Some(OutputsUpload { url: receiver.url.clone(), token: "a-wrong-token".into() });
    executor.submit(&spec).await.expect("submit the job");
    let state = wait_for_end(&executor, &spec.job_id, END_TIMEOUT).await;
    let log = read_whole_log(&executor, &spec.job_id).await;
    match &state {
        JobState::Failed { reason, .. } => {
            assert!(reason.starts_with("uploading outputs failed: "), "{reason}");
            assert!(reason.contains("403"), "{reason}");
            assert!(!reason.contains("a-wrong-token"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}; log:\n{log}"),
    }
    assert!(receiver.uploads().is_empty());
    executor.cleanup(&spec.job_id).await.expect("clean up");
}
