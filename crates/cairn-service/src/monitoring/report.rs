//! A check's report: one self-contained HTML page (per-feature histograms of reference and
//! current drawn as inline SVG, the statistics and verdicts) and the same content as JSON.

use std::fmt::Write as _;

use cairn_domain::drift::{ColumnDrift, Histogram};
use cairn_domain::monitoring::{CheckResult, CheckStatus, FeatureResult, MonitorSpec};
use serde_json::{Value, json};

/// What a report shows.
pub(crate) struct Report<'a> {
    pub deployment: &'a str,
    pub project: &'a str,
    pub revision: i64,
    pub trigger: &'a str,
    pub window_start: i64,
    pub window_end: i64,
    pub status: CheckStatus,
    pub message: &'a str,
    pub monitor: &'a MonitorSpec,
    pub result: &'a CheckResult,
}

/// The report as JSON.
pub(crate) fn json(report: &Report<'_>) -> Value {
    json!({
        "deployment": report.deployment,
        "project": report.project,
        "revision": report.revision,
        "trigger": report.trigger,
        "window": {
            "start": cairn_domain::time::format_utc(report.window_start),
            "end": cairn_domain::time::format_utc(report.window_end),
        },
        "status": report.status.as_str(),
        "message": report.message,
        "reference": report.monitor.reference.resolved,
        "drift_share": report.monitor.drift_share,
        "result": report.result,
    })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn short(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value.abs() >= 1e4 || value.abs() < 1e-3 {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 120.0;

/// Reference (grey) and current (blue) shares per bin or category, side by side.
fn svg(histogram: &Histogram) -> String {
    let (labels, reference, current): (Vec<String>, &[f64], &[f64]) = match histogram {
        Histogram::Bins { edges, reference, current } => (
            edges
                .windows(2)
                .map(|pair| format!("[{}, {})", short(pair[0]), short(pair[1])))
                .collect(),
            reference,
            current,
        ),
        Histogram::Categories { labels, reference, current } => {
            (labels.clone(), reference, current)
        }
    };
    let bins = reference.len().max(current.len()).max(1);
    let top = reference.iter().chain(current).copied().fold(0.0_f64, f64::max).max(1e-12);
    let slot = WIDTH / bins as f64;
    let bar = (slot / 2.0 - 1.0).max(0.5);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\">",
        HEIGHT + 16.0,
        HEIGHT + 16.0
    );
    for index in 0..bins {
        let label = labels.get(index).map_or(String::new(), |l| escape(l));
        for (offset, values, class) in [(0.0, reference, "ref"), (bar, current, "cur")] {
            let share = values.get(index).copied().unwrap_or(0.0);
            let height = (share / top * HEIGHT).max(0.0);
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{:.2}\" y=\"{:.2}\" width=\"{bar:.2}\" height=\"{height:.2}\"><title>{label}: {} {:.2} %</title></rect>",
                index as f64 * slot + offset,
                HEIGHT - height,
                if class == "ref" { "reference" } else { "current" },
                share * 100.0
            );
        }
    }
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" class=\"axis\"/>\
         <text x=\"0\" y=\"{}\" class=\"tick\">{}</text><text x=\"{WIDTH}\" y=\"{}\" class=\"tick end\">{}</text></svg>",
        HEIGHT + 13.0,
        escape(labels.first().map_or("", String::as_str)),
        HEIGHT + 13.0,
        escape(labels.last().map_or("", String::as_str)),
    );
    out
}

fn feature_row(out: &mut String, feature: &FeatureResult) {
    match &feature.drift {
        Some(drift) => {
            let ColumnDrift {
                kind,
                method,
                statistic,
                threshold,
                drifted,
                reference_rows,
                current_rows,
                histogram,
            } = drift;
            let _ = write!(
                out,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
                if *drifted { "drift" } else { "ok" },
                escape(&feature.name),
                kind.name(),
                method.name(),
                short(*statistic),
                short(*threshold),
                if *drifted { "<strong>drift</strong>" } else { "no drift" },
                reference_rows,
                current_rows,
                svg(histogram)
            );
        }
        None => {
            let _ = write!(
                out,
                "<tr class=\"na\"><td>{}</td><td colspan=\"7\">{}</td></tr>",
                escape(&feature.name),
                escape(feature.error.as_deref().unwrap_or("not computed"))
            );
        }
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;margin:1em 0}\
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}\
tr.drift td:first-child{border-left:4px solid #c62828}tr.ok td:first-child{border-left:4px solid #2e7d32}\
tr.na{color:#777}.status{display:inline-block;padding:2px 8px;border-radius:4px;color:#fff}\
.passed{background:#2e7d32}.failed{background:#c62828}.insufficient_data,.error{background:#757575}\
rect.ref{fill:#9e9e9e}rect.cur{fill:#1e88e5}.axis{stroke:#999}.tick{font-size:10px;fill:#555}.end{text-anchor:end}\
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}";

/// The report as a self-contained HTML page.
pub(crate) fn html(report: &Report<'_>) -> String {
    let result = report.result;
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Check of {} — Cairn</title><style>{STYLE}</style></head><body>\
         <h1>Monitoring check of <code>{}</code></h1>\
         <p><span class=\"status {}\">{}</span> {}</p>\
         <p>Project <code>{}</code>, deployment revision {}, {} check. Window {} — {} (UTC): {} captured rows; reference <code>{}</code> ({} rows, sha256 {}).</p>",
        escape(report.deployment),
        escape(report.deployment),
        report.status.as_str(),
        report.status.as_str().replace('_', " "),
        escape(report.message),
        escape(report.project),
        report.revision,
        escape(report.trigger),
        cairn_domain::time::format_utc(report.window_start),
        cairn_domain::time::format_utc(report.window_end),
        result.current_rows,
        escape(report.monitor.reference.resolved.as_ref().map_or("", |r| r.path.as_str())),
        result.reference_rows,
        report
            .monitor
            .reference
            .resolved
            .as_ref()
            .map_or("", |r| &r.sha256[..12.min(r.sha256.len())]),
    );
    if let Some(dataset) = &result.dataset {
        let _ = write!(
            out,
            "<h2>Dataset drift: {}</h2><p>{} of {} features drifted ({:.1} %); dataset drift when at least {:.0} % drift.</p>",
            if dataset.dataset_drift { "yes" } else { "no" },
            dataset.drifted,
            dataset.tested,
            dataset.share * 100.0,
            report.monitor.drift_share * 100.0
        );
    }
    out.push_str(
        "<h2>Features</h2><p class=\"legend\"><span style=\"background:#9e9e9e\"></span>reference<span style=\"background:#1e88e5\"></span>current</p>\
         <table><thead><tr><th>feature</th><th>type</th><th>method</th><th>statistic</th><th>threshold</th><th>verdict</th><th>rows (ref / cur)</th><th>distribution</th></tr></thead><tbody>",
    );
    for feature in &result.features {
        feature_row(&mut out, feature);
    }
    out.push_str("</tbody></table>");
    if let Some(prediction) = &result.prediction {
        out.push_str("<h2>Prediction drift</h2><table><tbody>");
        feature_row(&mut out, prediction);
        out.push_str("</tbody></table>");
    }
    if let Some(quality) = &result.quality {
        let _ = write!(
            out,
            "<h2>Quality</h2><p>{} captured rows with ground truth.</p><table><tbody>",
            quality.rows
        );
        for (name, value) in &quality.metrics {
            let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", escape(name), short(*value));
        }
        for (name, error) in &quality.errors {
            let _ = write!(
                out,
                "<tr class=\"na\"><td>{}</td><td>{}</td></tr>",
                escape(name),
                escape(error)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h2>Thresholds</h2><table><tbody>");
    for outcome in &result.thresholds {
        let _ = write!(
            out,
            "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            if outcome.failed { "drift" } else { "ok" },
            escape(&outcome.key),
            if outcome.failed { "<strong>failed</strong>" } else { "held" },
            escape(&outcome.message)
        );
    }
    out.push_str("</tbody></table></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_histograms_are_svg() {
        assert_eq!(escape("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        let histogram = Histogram::Categories {
            labels: vec!["<a>".into(), "b".into()],
            reference: vec![0.5, 0.5],
            current: vec![0.9, 0.1],
        };
        let drawn = svg(&histogram);
        assert!(drawn.starts_with("<svg") && drawn.ends_with("</svg>"));
        assert_eq!(drawn.matches("<rect").count(), 4);
        assert!(drawn.contains("&lt;a&gt;") && !drawn.contains("<a>"));
    }
}
