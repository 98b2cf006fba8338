//! The conformance suite every job executor must pass (feature `testsuite`).
//!
//! Each test is an async function taking an `Arc<dyn JobExecutor>` and panicking on a failed
//! assertion; it makes its own working directories and job ids, and cleans its jobs up.
//! [`job_executor_test_suite!`](crate::job_executor_test_suite) expands to one `#[tokio::test]`
//! per function for a given executor factory, so a backend's test file is a few lines.
//!
//! Jobs run `python -c …` in the environment [`base_environment`] (no requirements) or one with
//! the small `six` package, so a shared env cache makes repeated runs fast.

mod basics;
mod control;
mod environments;
mod outputs;
mod support;

use std::any::Any;
use std::sync::Arc;

pub use basics::{echo_job_succeeds, env_vars_reach_the_job, failing_job_reports_exit_code};
pub use basics::{
    jobs_do_not_share_working_directories, unknown_jobs_and_cleanup, working_dir_files_are_readable,
};
pub use control::{logs_stream_while_running, max_runtime_times_out};
pub use control::{memory_limit_is_enforced, stop_ends_a_long_job};
pub use environments::{bad_requirement_fails_the_build, prepare_builds_once_and_reuses};
pub use outputs::{outputs_are_uploaded, refused_outputs_fail_the_job};
pub use support::{OutputsReceiver, Upload, base_environment, python_job, read_whole_log};
pub use support::{unique_id, wait_for_end, wait_for_running};

use crate::JobExecutor;

/// An executor handed to one conformance test, with whatever must outlive it (a temporary
/// state directory).
pub struct TestExecutor {
    executor: Arc<dyn JobExecutor>,
    _guard: Option<Box<dyn Any + Send>>,
}

impl TestExecutor {
    /// Wraps an executor that needs no guard.
    pub fn new(executor: Arc<dyn JobExecutor>) -> Self {
        Self { executor, _guard: None }
    }

    /// Keeps `guard` (say, a `tempfile::TempDir`) alive as long as the executor.
    pub fn with_guard(mut self, guard: impl Any + Send) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// Returns the executor under test.
    pub fn executor(&self) -> Arc<dyn JobExecutor> {
        self.executor.clone()
    }
}

/// Expands to one `#[tokio::test]` per conformance test. `$make_executor` is an async function
/// `fn(&'static str) -> Option<TestExecutor>` given the test's name; `None` skips the test (the
/// factory prints why).
#[macro_export]
macro_rules! job_executor_test_suite {
    ($make_executor:path) => {
        $crate::job_executor_test_suite!(@tests $make_executor;
            echo_job_succeeds,
            failing_job_reports_exit_code,
            env_vars_reach_the_job,
            working_dir_files_are_readable,
            jobs_do_not_share_working_directories,
            unknown_jobs_and_cleanup,
            outputs_are_uploaded,
            refused_outputs_fail_the_job,
            stop_ends_a_long_job,
            max_runtime_times_out,
            memory_limit_is_enforced,
            logs_stream_while_running,
            prepare_builds_once_and_reuses,
            bad_requirement_fails_the_build,
        );
    };
    (@tests $make_executor:path; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(test_executor) = $make_executor(stringify!($test)).await else {
                    return;
                };
                $crate::testsuite::$test(test_executor.executor()).await;
            }
        )+
    };
}
