//! Conformance: every mutation leaves exactly one chained audit record, and the chain verifies.

use cairn_domain::audit::GENESIS_HASH;

use super::ctx;
use crate::{ChainStatus, Store};

pub(super) async fn run(store: &Store) {
    let before = store.audit_records(0, i64::MIN, i64::MAX).await.expect("records");
    assert!(!before.is_empty(), "the earlier checks' mutations were audited");
    assert_eq!(before[0].prev_hash, GENESIS_HASH);
    assert!(before.iter().all(|record| record.actor == "conformance"));
    assert!(before.iter().all(|record| record.request_id.as_deref() == Some("test-request")));

    let last_seq = before.last().map(|record| record.seq).unwrap_or(0);
    let experiment =
        store.create_experiment(&ctx(), 1, "conf-audit", None, &[]).await.expect("create");
    let failed = store.create_experiment(&ctx(), 1, "conf-audit", None, &[]).await;
    assert!(failed.is_err());
    let after = store.audit_records(last_seq, i64::MIN, 100).await.expect("records");
    assert_eq!(after.len(), 1, "a failed mutation leaves no record");
    assert_eq!(after[0].action, "experiment.create");
    assert_eq!(after[0].target, format!("experiment:{experiment}"));
    assert!(after[0].details.contains("\"name\":\"conf-audit\""));

    let since = after[0].time;
    let recent = store.audit_records(0, since, 100).await.expect("since");
    assert!(recent.iter().all(|record| record.time >= since));

    match store.verify_audit_chain().await.expect("verify") {
        ChainStatus::Intact(count) => assert_eq!(count, last_seq + 1),
        ChainStatus::Broken(failure) => panic!("chain broken: {failure:?}"),
    }
}
