//! Fuzzing the native API's request decoders on a budget (issue 10's hostile input): arbitrary
//! bytes and arbitrary JSON values are decoded into every request body and query type. Nothing
//! may panic, and a refusal is always `invalid_argument` (400) in the native error format.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::extract::parse_json;

/// Field names of the native bodies, so that generated objects often reach nested decoders.
const FIELDS: &[&str] = &[
    "name",
    "username",
    "site_role",
    "role",
    "password",
    "description",
    "owner",
    "definition",
    "revision",
    "state",
    "spec",
    "active",
    "scope",
    "max_jobs",
    "max_gpus",
    "digests",
    "files",
    "path",
    "sha256",
    "size",
    "executable",
    "message",
    "model",
    "version",
    "weight",
    "routes",
    "shadow",
    "capture",
    "callers",
    "monitor",
    "environment",
    "enabled",
    "sample_rate",
    "rules",
    "requirements",
    "python",
    "image",
    "cpus",
    "memory_mb",
    "gpus",
    "executor",
    "command",
    "cron",
    "tier",
    "value",
    "comment",
    "body",
    "target",
    "transfer_to",
    "expires_in_days",
    "limit",
    "before",
    "offset",
    "format",
    "dataset",
    "content",
    "stage",
    "to",
    "url",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(
            &[
                "",
                "admin",
                "member",
                "governance-reviewer",
                "owner",
                "viewer",
                "contributor",
                "approved",
                "deprecated",
                "draft",
                "local",
                "ray",
                "production",
                "* * * * *",
                "1",
                "-1",
                "NaN",
                "webhook",
                "email",
                "drift",
                "quality",
                "0000",
            ][..],
        )
        .prop_map(|text| Value::String(text.to_string())),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(FIELDS).prop_map(str::to_string), inner),
                0..7
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Decodes `bytes` as `T`; a refusal must be the native 400.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Err(error) = parse_json::<T>(bytes) {
        let response = error.into_response();
        prop_assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    Ok(())
}

/// Decodes `bytes` into every body type of the native API.
fn decode_every_body(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode::<super::compute::CreateEnvironmentBody>(bytes)?;
    decode::<super::compute::RevisionStateBody>(bytes)?;
    decode::<super::compute::PutTierBody>(bytes)?;
    decode::<super::compute::SetQuotaBody>(bytes)?;
    decode::<super::compute::MissingBody>(bytes)?;
    decode::<super::compute::CreateSnapshotBody>(bytes)?;
    decode::<super::datasets::DatasetSettings>(bytes)?;
    decode::<super::datasets::PushBody>(bytes)?;
    decode::<super::deployments::NewDeploymentBody>(bytes)?;
    decode::<super::deployments::UpdateBody>(bytes)?;
    decode::<super::deployments::RollbackBody>(bytes)?;
    decode::<super::governance::ModelCardBody>(bytes)?;
    decode::<super::governance::PromoteBody>(bytes)?;
    decode::<super::governance::DecisionBody>(bytes)?;
    decode::<super::governance::NewPolicyBody>(bytes)?;
    decode::<super::governance::RulesBody>(bytes)?;
    decode::<super::identity::NewUserBody>(bytes)?;
    decode::<super::identity::DeactivateBody>(bytes)?;
    decode::<super::identity::SiteRoleBody>(bytes)?;
    decode::<super::identity::NewTokenBody>(bytes)?;
    decode::<super::identity::NewProjectBody>(bytes)?;
    decode::<super::identity::RoleBody>(bytes)?;
    decode::<super::identity::NewTeamBody>(bytes)?;
    decode::<super::jobs::ScheduleBody>(bytes)?;
    decode::<super::jobs::SecretBody>(bytes)?;
    decode::<super::monitoring::SetMonitorBody>(bytes)?;
    decode::<super::workspaces::SaveBody>(bytes)?;
    decode::<super::workspaces::RestartBody>(bytes)?;
    decode::<super::comments::NewComment>(bytes)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_decoded_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        decode_every_body(&bytes)?;
    }

    #[test]
    fn arbitrary_json_is_decoded_or_refused(value in json_value()) {
        decode_every_body(value.to_string().as_bytes())?;
    }
}
