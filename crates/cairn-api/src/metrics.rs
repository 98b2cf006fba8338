//! `/metrics` in Prometheus text format: per-deployment inference request counts by protocol,
//! status and answering version, request latency histograms, and dropped capture records.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use cairn_service::Services;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    deployment: String,
    protocol: String,
    status: String,
    model_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    deployment: String,
    protocol: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The process's inference metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// A fresh registry.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "cairn_inference_requests",
            "Inference requests by deployment, protocol, HTTP status and answering model version",
            requests.clone(),
        );
        registry.register(
            "cairn_inference_request_duration_seconds",
            "Inference request latency in the server, by deployment and protocol",
            latency.clone(),
        );
        Arc::new(Self { registry, requests, latency })
    }

    /// Counts one inference request.
    pub fn observe(
        &self,
        deployment: &str,
        protocol: &str,
        status: u16,
        model_version: Option<&str>,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                deployment: deployment.to_string(),
                protocol: protocol.to_string(),
                status: status.to_string(),
                model_version: model_version.unwrap_or("").to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                deployment: deployment.to_string(),
                protocol: protocol.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// `GET /metrics`.
pub async fn scrape(
    State(services): State<Services>,
    axum::Extension(metrics): axum::Extension<Arc<Metrics>>,
) -> impl IntoResponse {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut text, &metrics.registry).is_err() {
        text.clear();
    }
    text.push_str("# HELP cairn_capture_dropped_records Prediction capture records dropped because the capture queue was full.\n");
    text.push_str("# TYPE cairn_capture_dropped_records counter\n");
    text.push_str(&format!(
        "cairn_capture_dropped_records_total {}\n",
        services.deployments.captures_dropped()
    ));
    text.push_str("# EOF\n");
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}
