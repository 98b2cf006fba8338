//! Runs the executor conformance suite against a real Ray head: `CAIRN_TEST_RAY_ADDRESS`
//! (`http://127.0.0.1:PORT`, the dashboard; scripts/lib/services.sh's `cairn_ray_start` starts
//! one and sets it). Without it the tests print `SKIPPED: …` and pass, unless
//! `CAIRN_TEST_REQUIRE_SERVICES=1`, when they fail.

use std::sync::Arc;
use std::time::Duration;

use cairn_exec::testsuite::TestExecutor;
use cairn_exec::{RayConfig, RayExecutor};

async fn ray_executor(test: &'static str) -> Option<TestExecutor> {
    let address = std::env::var("CAIRN_TEST_RAY_ADDRESS").unwrap_or_default();
    if address.is_empty() {
        assert!(
            std::env::var("CAIRN_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "CAIRN_TEST_RAY_ADDRESS is not set and CAIRN_TEST_REQUIRE_SERVICES=1"
        );
        eprintln!(
            "SKIPPED: {test}: CAIRN_TEST_RAY_ADDRESS is not set (start a head with cairn_ray_start)"
        );
        return None;
    }
    let address = url::Url::parse(&address).expect("CAIRN_TEST_RAY_ADDRESS is a URL");
    let config = RayConfig { poll_interval: Duration::from_millis(250), ..RayConfig::new(address) };
    let executor = RayExecutor::new(config).expect("create the ray executor");
    Some(TestExecutor::new(Arc::new(executor)))
}

cairn_exec::job_executor_test_suite!(ray_executor);
