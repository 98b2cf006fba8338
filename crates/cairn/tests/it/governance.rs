//! Registry governance end to end over HTTP, on SQLite and PostgreSQL: policies gate an alias
//! and a stage, promotions open approval requests with evidence, reviewers decide under
//! separation of duties, the alias moves only when satisfied, policy changes leave past
//! approvals as they were, concurrent promotions leave one winner, the deploy gate answers from
//! approvals, and compliance bundles verify (and detect tampering).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{ProjectRole, SiteRole};
use cairn_service::UserSpec;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

struct Caller<'a> {
    app: &'a TestApp,
    token: String,
}

impl Caller<'_> {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.app.request(request.body(body).unwrap()).await
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, bytes) = self.send(method, path, body).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert!(status.is_success(), "{method} {path} -> {status} {value}");
        value
    }
}

const M: &str = "/p/credit/api/2.0/mlflow";
const V1: &str = "/p/credit/api/v1";

fn filled_card() -> Value {
    json!({
        "intended_use": "Scoring consumer credit applications; not for employment decisions.",
        "training_data": [{"name": "applications", "version": "2026-10", "digest": "abc123"}],
        "metrics": {"auc": 0.85},
        "limitations": "Trained on one country's applicants.",
        "owner": "risk-team",
    })
}

async fn user(app: &TestApp, name: &str, role: SiteRole, member: Option<ProjectRole>) -> String {
    let system = RequestContext::system();
    let services = &app.app.services;
    let spec = UserSpec {
        username: name.into(),
        site_role: role,
        service_account: true,
        password: None,
        display_name: None,
        email: None,
    };
    services.identity.create_user(&system, &spec).await.unwrap();
    if let Some(member) = member {
        services.projects.set_member(&system, "credit", name, member).await.unwrap();
    }
    services.identity.create_token(&system, name, "test", None).await.unwrap().1
}

async fn run_with_auc(caller: &Caller<'_>, experiment_id: &str, auc: f64) -> String {
    let body = caller
        .ok("POST", &format!("{M}/runs/create"), Some(json!({"experiment_id": experiment_id})))
        .await;
    let run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    caller
        .ok(
            "POST",
            &format!("{M}/runs/log-metric"),
            Some(json!({"run_id": run_id, "key": "auc", "value": auc, "timestamp": 1, "step": 0})),
        )
        .await;
    run_id
}

async fn register(caller: &Caller<'_>, run_id: &str) -> i64 {
    let body = caller
        .ok(
            "POST",
            &format!("{M}/model-versions/create"),
            Some(json!({"name": "credit-risk", "source": format!("runs:/{run_id}/model"), "run_id": run_id})),
        )
        .await;
    body["model_version"]["version"].as_str().unwrap().parse().unwrap()
}

async fn alias_version(caller: &Caller<'_>, alias: &str) -> Option<String> {
    let (status, body) = caller
        .call("GET", &format!("{M}/registered-models/alias?name=credit-risk&alias={alias}"), None)
        .await;
    (status == StatusCode::OK)
        .then(|| body["model_version"]["version"].as_str().unwrap().to_string())
}

async fn governance(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let system = RequestContext::system();
    let services = &app.app.services;
    let (_, admin_token) = services.identity.bootstrap(&system, "admin").await.unwrap().unwrap();
    services.projects.create(&system, "credit", None, None).await.unwrap();
    let admin = Caller { app: &app, token: admin_token };
    let alice = Caller {
        app: &app,
        token: user(&app, "alice", SiteRole::Member, Some(ProjectRole::Contributor)).await,
    };
    let olivia = Caller {
        app: &app,
        token: user(&app, "olivia", SiteRole::Member, Some(ProjectRole::Owner)).await,
    };
    let viewer = Caller {
        app: &app,
        token: user(&app, "victor", SiteRole::Member, Some(ProjectRole::Viewer)).await,
    };
    // Reviewers: ravi is no member (reviewers read every project); rita also contributes.
    let ravi =
        Caller { app: &app, token: user(&app, "ravi", SiteRole::GovernanceReviewer, None).await };
    let rita = Caller {
        app: &app,
        token: user(&app, "rita", SiteRole::GovernanceReviewer, Some(ProjectRole::Contributor))
            .await,
    };

    let body =
        alice.ok("POST", &format!("{M}/experiments/create"), Some(json!({"name": "credit"}))).await;
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    let good_run = run_with_auc(&alice, &experiment_id, 0.85).await;
    let weak_run = run_with_auc(&alice, &experiment_id, 0.7).await;
    alice
        .ok("POST", &format!("{M}/registered-models/create"), Some(json!({"name": "credit-risk"})))
        .await;
    let v1 = register(&alice, &good_run).await;
    let v2 = register(&alice, &weak_run).await;
    let v3 = register(&rita, &good_run).await;
    assert_eq!((v1, v2, v3), (1, 2, 3));

    // Before any policy the alias moves directly (and the move is in the history).
    alice
        .ok(
            "POST",
            &format!("{M}/registered-models/alias"),
            Some(json!({"name": "credit-risk", "alias": "champion", "version": "3"})),
        )
        .await;

    // Policies: only project owners (or site admins for site-wide ones) write them.
    let policy_body = json!({
        "name": "champion-gate", "target": "alias:champion",
        "rules": {"approvals": 2, "conditions": ["metrics.auc >= 0.8"], "require_model_card": true, "environments": ["production"]},
    });
    let (status, _) =
        alice.call("POST", &format!("{V1}/policies"), Some(policy_body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = olivia
        .call(
            "POST",
            &format!("{V1}/policies"),
            Some(json!({"name": "x", "target": "alias:champion", "site_wide": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = olivia
        .call("POST", &format!("{V1}/policies"), Some(json!({"name": "bad", "target": "alias:a", "rules": {"conditions": ["metrics.auc LIKE 'x'"]}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, policy) = olivia.call("POST", &format!("{V1}/policies"), Some(policy_body)).await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    let policy_id = policy["id"].as_i64().unwrap();
    assert_eq!(policy["revision"], 1);

    // Through the MLflow wire a governed alias is refused with a message naming the request.
    let (status, body) = alice
        .call(
            "POST",
            &format!("{M}/registered-models/alias"),
            Some(json!({"name": "credit-risk", "alias": "champion", "version": "1"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("policy 'champion-gate' (revision 1)"), "{message}");
    assert!(message.contains("0 of 2 approvals"), "{message}");
    assert!(message.contains("model card filled fails"), "{message}");
    let pending = alice.ok("GET", &format!("{V1}/approvals?state=pending"), None).await;
    let r1 = pending[0]["id"].as_i64().unwrap();
    assert!(message.contains(&format!("approval request {r1}")), "{message}");
    assert_eq!(pending[0]["requested_by"], "alice");
    assert_eq!(alias_version(&alice, "champion").await.as_deref(), Some("3"));

    // Promoting the same version again refreshes the same request; a card makes its check pass.
    alice
        .ok(
            "PUT",
            &format!("{V1}/models/credit-risk/versions/1/card"),
            Some(json!({"intended_use": "draft"})),
        )
        .await;
    let card = alice
        .ok("PUT", &format!("{V1}/models/credit-risk/versions/1/card"), Some(filled_card()))
        .await;
    assert_eq!(card["revision"], 2);
    assert_eq!(card["missing"], json!([]));
    let promoted = alice
        .ok(
            "POST",
            &format!("{V1}/models/credit-risk/versions/1/promote"),
            Some(json!({"alias": "champion", "comment": "beats v3"})),
        )
        .await;
    assert_eq!(promoted["applied"], false);
    assert_eq!(promoted["request"]["id"], r1);
    assert!(
        promoted["request"]["evidence"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true)
    );

    // Another version cannot be proposed for the alias while one is pending.
    let (status, body) = alice
        .call(
            "POST",
            &format!("{V1}/models/credit-risk/versions/2/promote"),
            Some(json!({"alias": "champion"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&format!("approval request {r1}")));

    // Deploy gate: not yet.
    let gate = alice
        .ok(
            "GET",
            &format!("{V1}/models/credit-risk/versions/1/deploy-gate?environment=production"),
            None,
        )
        .await;
    assert_eq!(gate["allowed"], false, "{gate}");
    assert!(gate["reasons"][0]["message"].as_str().unwrap().contains("0 of 2 approvals"), "{gate}");
    let gate = alice
        .ok(
            "GET",
            &format!("{V1}/models/credit-risk/versions/1/deploy-gate?environment=staging"),
            None,
        )
        .await;
    assert_eq!(gate["allowed"], true, "ungated environment: {gate}");

    // Only reviewers decide; not the requester, not an admin, not a viewer.
    for (who, caller) in [("alice", &alice), ("admin", &admin), ("viewer", &viewer)] {
        let (status, body) =
            caller.call("POST", &format!("{V1}/approvals/{r1}/approve"), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
    }
    // One approval short keeps the alias where it was.
    let after_one = ravi
        .ok(
            "POST",
            &format!("/api/v1/approvals/{r1}/approve"),
            Some(json!({"comment": "metrics fine"})),
        )
        .await;
    assert_eq!(after_one["state"], "pending");
    assert_eq!(after_one["approvals"], 1);
    assert_eq!(alias_version(&alice, "champion").await.as_deref(), Some("3"));
    let (status, _) = ravi.call("POST", &format!("{V1}/approvals/{r1}/approve"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a reviewer approves once");
    // The second approval moves the alias atomically with the decision.
    let approved = rita.ok("POST", &format!("{V1}/approvals/{r1}/approve"), None).await;
    assert_eq!(approved["state"], "approved", "{approved}");
    assert_eq!(approved["decided_by"], "rita");
    assert_eq!(alias_version(&alice, "champion").await.as_deref(), Some("1"));
    let decisions = approved["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions.iter().all(
        |d| d["policies"] == json!([{"id": policy_id, "name": "champion-gate", "revision": 1}])
    ));
    let (status, _) = ravi
        .call("POST", &format!("{V1}/approvals/{r1}/reject"), Some(json!({"comment": "late"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a decided request stays decided");

    // History: who moved which alias when, under which request.
    let history = viewer.ok("GET", &format!("{V1}/models/credit-risk/history"), None).await;
    let moves: Vec<(Value, Value, Value, Value)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "alias")
        .map(|h| {
            (
                h["version"].clone(),
                h["previous_version"].clone(),
                h["actor"].clone(),
                h["request_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            (json!(3), Value::Null, json!("alice"), Value::Null),
            (json!(1), json!(3), json!("rita"), json!(r1))
        ]
    );

    // Separation of duties: rita registered version 3 and may not approve its promotion.
    let promoted = alice
        .ok(
            "POST",
            &format!("{V1}/models/credit-risk/versions/3/promote"),
            Some(json!({"alias": "champion"})),
        )
        .await;
    let r2 = promoted["request"]["id"].as_i64().unwrap();
    let (status, body) = rita.call("POST", &format!("{V1}/approvals/{r2}/approve"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("separation of duties"), "{body}");
    // Only the requester or an owner withdraws.
    let (status, _) = viewer.call("POST", &format!("{V1}/approvals/{r2}/withdraw"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let withdrawn = alice.ok("POST", &format!("{V1}/approvals/{r2}/withdraw"), None).await;
    assert_eq!(withdrawn["state"], "withdrawn");

    // A policy change is a new revision and leaves past approvals as recorded.
    let updated = olivia
        .ok(
            "PUT",
            &format!("{V1}/policies/{policy_id}"),
            Some(json!({"approvals": 1, "conditions": ["metrics.auc >= 0.8"], "require_model_card": true, "environments": ["production"]})),
        )
        .await;
    assert_eq!(updated["revision"], 2);
    let detail = viewer.ok("GET", &format!("{V1}/policies/{policy_id}"), None).await;
    assert_eq!(detail["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(detail["revisions"][0]["rules"]["approvals"], 2);
    let past = viewer.ok("GET", &format!("{V1}/approvals/{r1}"), None).await;
    assert_eq!(past["state"], "approved");
    assert_eq!(past["evidence"]["approvals_required"], 2);
    assert!(
        past["decisions"].as_array().unwrap().iter().all(|d| d["policies"][0]["revision"] == 1)
    );

    // A failing metric condition blocks even with enough approvals.
    alice.ok("PUT", &format!("{V1}/models/credit-risk/versions/2/card"), Some(filled_card())).await;
    let promoted = alice
        .ok(
            "POST",
            &format!("{V1}/models/credit-risk/versions/2/promote"),
            Some(json!({"alias": "champion"})),
        )
        .await;
    let r3 = promoted["request"]["id"].as_i64().unwrap();
    let failing: Vec<&Value> = promoted["request"]["evidence"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failing.len(), 1, "{promoted}");
    assert!(failing[0]["detail"].as_str().unwrap().contains("metrics.auc = 0.7"), "{promoted}");
    let blocked = ravi.ok("POST", &format!("{V1}/approvals/{r3}/approve"), None).await;
    assert_eq!(blocked["state"], "pending", "{blocked}");
    assert_eq!(blocked["approvals"], 1);
    assert_eq!(blocked["decisions"][0]["policies"][0]["revision"], 2);
    assert_eq!(alias_version(&alice, "champion").await.as_deref(), Some("1"));
    // Rejection needs a reason and is final.
    let (status, _) = rita.call("POST", &format!("{V1}/approvals/{r3}/reject"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let rejected = rita
        .ok(
            "POST",
            &format!("{V1}/approvals/{r3}/reject"),
            Some(json!({"comment": "auc below bar"})),
        )
        .await;
    assert_eq!(rejected["state"], "rejected");
    let (status, body) = rita.call("POST", &format!("{V1}/approvals/{r3}/approve"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(alias_version(&alice, "champion").await.as_deref(), Some("1"));

    // The deploy gate answers from approvals on record.
    let gate = viewer
        .ok(
            "GET",
            &format!("{V1}/models/credit-risk/versions/1/deploy-gate?environment=Production"),
            None,
        )
        .await;
    assert_eq!(gate["allowed"], true, "{gate}");
    assert_eq!(gate["reasons"][0]["request_id"], r1);
    let gate = viewer
        .ok(
            "GET",
            &format!("{V1}/models/credit-risk/versions/2/deploy-gate?environment=production"),
            None,
        )
        .await;
    assert_eq!(gate["allowed"], false, "{gate}");
    assert!(
        gate["reasons"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cairn model promote credit-risk 2 --alias champion"),
        "{gate}"
    );

    // A policy needing no approvals lets the MLflow wire through when its checks pass, and
    // refuses (naming the request) when they fail.
    olivia
        .ok(
            "POST",
            &format!("{V1}/policies"),
            Some(json!({"name": "staging-bar", "target": "stage:Staging", "model_name": "credit-risk", "rules": {"conditions": ["metrics.auc >= 0.8"]}})),
        )
        .await;
    let body = alice
        .ok(
            "POST",
            &format!("{M}/model-versions/transition-stage"),
            Some(json!({"name": "credit-risk", "version": "1", "stage": "staging", "archive_existing_versions": false})),
        )
        .await;
    assert_eq!(body["model_version"]["current_stage"], "Staging");
    let (status, body) = alice
        .call(
            "POST",
            &format!("{M}/model-versions/transition-stage"),
            Some(json!({"name": "credit-risk", "version": "2", "stage": "Staging", "archive_existing_versions": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("metrics.auc >= 0.8 fails"), "{body}");

    // Concurrent promotions of two versions to one governed alias: exactly one request wins.
    olivia
        .ok(
            "POST",
            &format!("{V1}/policies"),
            Some(json!({"name": "gold-gate", "target": "alias:gold", "rules": {"approvals": 1}})),
        )
        .await;
    let promote = |version: i64| {
        let alice = &alice;
        async move {
            alice
                .call(
                    "POST",
                    &format!("{V1}/models/credit-risk/versions/{version}/promote"),
                    Some(json!({"alias": "gold"})),
                )
                .await
        }
    };
    let ((status_a, body_a), (status_b, body_b)) = tokio::join!(promote(1), promote(3));
    let outcomes = [status_a, status_b];
    assert_eq!(
        outcomes.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "one winner: {status_a} {body_a} / {status_b} {body_b}"
    );
    assert!(outcomes.contains(&StatusCode::CONFLICT));
    let winner = if status_a == StatusCode::OK { body_a } else { body_b };
    let winning_version = winner["request"]["version"].as_i64().unwrap();
    let r4 = winner["request"]["id"].as_i64().unwrap();
    let approver = if winning_version == 3 { &ravi } else { &rita };
    let approved = approver.ok("POST", &format!("{V1}/approvals/{r4}/approve"), None).await;
    assert_eq!(approved["state"], "approved");
    assert_eq!(alias_version(&alice, "gold").await, Some(winning_version.to_string()));

    // Reviewers may list every project's requests; members only their project's.
    let all = ravi.ok("GET", "/api/v1/approvals?all_projects=true", None).await;
    // r1, r2, r3, the two staging requests (one satisfied at once) and the gold winner.
    assert_eq!(all.as_array().unwrap().len(), 6);
    let (status, _) = alice.call("GET", "/api/v1/approvals?all_projects=true", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The compliance bundle of version 1 round-trips; any tampering is detected.
    let (status, archive) =
        viewer.send("GET", &format!("{V1}/models/credit-risk/versions/1/bundle"), None).await;
    assert_eq!(status, StatusCode::OK);
    let report = cairn_service::verify_bundle(&archive);
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.verified_files, 7);
    assert!(report.verified_audit_records >= 4, "{report:?}");
    let files = unpack(&archive);
    let approvals: Value = serde_json::from_slice(&files["approvals.json"]).unwrap();
    let bundled_r1 = approvals.as_array().unwrap().iter().find(|a| a["id"] == r1).unwrap();
    assert_eq!(bundled_r1["state"], "approved");
    assert_eq!(bundled_r1["decisions"].as_array().unwrap().len(), 2);
    let card: Value = serde_json::from_slice(&files["model-card.json"]).unwrap();
    assert_eq!(card.as_array().unwrap().len(), 2);
    let lineage: Value = serde_json::from_slice(&files["lineage.json"]).unwrap();
    assert_eq!(lineage["run_id"], good_run.as_str());
    assert_eq!(lineage["metrics"][0]["value"], 0.85);
    let audit: Value = serde_json::from_slice(&files["audit.json"]).unwrap();
    let actions: Vec<&str> =
        audit.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains(&"approval.approve") && actions.contains(&"model_card.save"),
        "{actions:?}"
    );
    let history: Value = serde_json::from_slice(&files["history.json"]).unwrap();
    assert!(history.as_array().unwrap().iter().any(|h| h["request_id"] == r1));
    // A changed byte inside a file, repacked with valid framing, fails its digest.
    let mut tampered = files.clone();
    let text =
        String::from_utf8(tampered["approvals.json"].clone()).unwrap().replacen("rita", "rite", 1);
    tampered.insert("approvals.json".into(), text.into_bytes());
    let report = cairn_service::verify_bundle(&repack(&tampered));
    assert!(!report.intact());
    assert_eq!(report.problems, vec!["approvals.json does not match its digest".to_string()]);
    // An audit record changed together with a recomputed manifest still fails its chain hash.
    let mut forged = files.clone();
    let audit_text = String::from_utf8(forged["audit.json"].clone())
        .unwrap()
        .replacen("\"rita\"", "\"ravi\"", 1);
    forged.insert("audit.json".into(), audit_text.into_bytes());
    let report = cairn_service::verify_bundle(&repack_with_manifest(&forged));
    assert!(
        report.problems.iter().any(|p| p.contains("does not hash to its recorded hash")),
        "{:?}",
        report.problems
    );

    // Everything above is in the audit chain, and it verifies.
    assert!(matches!(
        app.app.store.verify_audit_chain().await.unwrap(),
        cairn_store::ChainStatus::Intact(_)
    ));
}

fn unpack(archive: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut files = std::collections::BTreeMap::new();
    let mut reader = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in reader.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path, bytes);
    }
    files
}

fn repack(files: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Repacks with a manifest recomputed over the (tampered) files, as a forger would.
fn repack_with_manifest(files: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let documents: Vec<(String, Value)> = files
        .iter()
        .filter(|(path, _)| !path.starts_with("manifest"))
        .map(|(path, bytes)| (path.clone(), serde_json::from_slice(bytes).unwrap()))
        .collect();
    cairn_service::pack_bundle(
        manifest["project"].as_str().unwrap(),
        manifest["model"].as_str().unwrap(),
        manifest["version"].as_i64().unwrap(),
        "forger",
        &documents,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_on_sqlite() {
    governance(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_on_postgres() {
    governance(Backend::Postgres).await;
}
