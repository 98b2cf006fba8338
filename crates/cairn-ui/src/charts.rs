//! Metric charts drawn on the server as SVG: one `<polyline>` per series (step on x, value on y)
//! carrying `data-points="N"`, axes with their minimum and maximum labelled, and a `<title>`
//! and `<desc>` for screen readers. Every piece of text is XML-escaped here, so the SVG can be
//! inlined in a page as is. Non-finite values (NaN, ±∞) are left out of the line.

use std::fmt::Write;

/// Most points drawn per series; longer histories are sampled evenly by the service.
pub const MAX_POINTS: usize = 1000;

/// Line colours, in series order (the legend's swatches use the same, from the stylesheet).
const PALETTE: &[&str] = &[
    "#1f5fbf", "#c0392b", "#1e8449", "#8e44ad", "#b9770e", "#117a8b", "#6e2c00", "#2c3e50",
    "#a93270", "#4d5656",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// What the legend calls it.
    pub label: String,
    /// `(step, value)` points in step order.
    pub points: Vec<(f64, f64)>,
}

/// A chart of one metric.
#[derive(Debug, Clone)]
pub struct Chart {
    /// A unique id within the page (for `aria-labelledby`).
    pub id: String,
    /// The metric's key.
    pub metric: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// Escapes text for XML content and attribute values (the same entities askama writes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&#38;"),
            '<' => out.push_str("&#60;"),
            '>' => out.push_str("&#62;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The colour of series `index`.
fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// A short axis label.
fn label(value: f64) -> String {
    crate::layout::number(value)
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |range, value| match range {
        None => Some((value, value)),
        Some((low, high)) => Some((low.min(value), high.max(value))),
    })
}

/// Widens an empty range so a flat line sits in the middle.
fn widen((low, high): (f64, f64)) -> (f64, f64) {
    if high > low {
        return (low, high);
    }
    let pad = if low == 0.0 { 1.0 } else { low.abs() * 0.1 };
    (low - pad, high + pad)
}

impl Chart {
    /// The finite points of each series.
    fn finite(&self) -> Vec<Vec<(f64, f64)>> {
        self.series
            .iter()
            .map(|series| {
                series
                    .points
                    .iter()
                    .copied()
                    .filter(|(step, value)| step.is_finite() && value.is_finite())
                    .collect()
            })
            .collect()
    }

    /// The chart as an inline SVG element.
    pub fn svg(&self) -> String {
        let lines = self.finite();
        let all = || lines.iter().flatten();
        let id = escape(&self.id);
        let metric = escape(&self.metric);
        let mut svg = String::with_capacity(4096);
        let _ = write!(
            svg,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
             aria-labelledby=\"{id}-title {id}-desc\" data-metric=\"{metric}\" \
             xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{metric} by step</title>"
        );
        let description: Vec<String> = self
            .series
            .iter()
            .zip(&lines)
            .map(|(series, points)| format!("{}: {} points", series.label, points.len()))
            .collect();
        let _ = write!(svg, "<desc id=\"{id}-desc\">{}</desc>", escape(&description.join("; ")));
        let (Some(x_range), Some(y_range)) =
            (bounds(all().map(|point| point.0)), bounds(all().map(|point| point.1)))
        else {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"chart-empty\">no finite values</text></svg>",
                WIDTH / 2.0,
                HEIGHT / 2.0
            );
            return svg;
        };
        let (x_low, x_high) = widen(x_range);
        let (y_low, y_high) = widen(y_range);
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        let x_of = |step: f64| LEFT + (step - x_low) / (x_high - x_low) * plot_width;
        let y_of = |value: f64| TOP + (y_high - value) / (y_high - y_low) * plot_height;
        let (bottom, right) = (TOP + plot_height, LEFT + plot_width);
        let _ = write!(
            svg,
            "<g class=\"axes\" stroke=\"#5f6368\" stroke-width=\"1\">\
             <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>\
             <line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/></g>"
        );
        let _ = write!(
            svg,
            "<g class=\"labels\" font-size=\"15\" fill=\"#202124\">\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <text x=\"{LEFT}\" y=\"{}\" text-anchor=\"start\">{}</text>\
             <text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text></g>",
            LEFT - 6.0,
            TOP + 10.0,
            escape(&label(y_range.1)),
            LEFT - 6.0,
            bottom,
            escape(&label(y_range.0)),
            bottom + 16.0,
            escape(&label(x_range.0)),
            bottom + 16.0,
            escape(&label(x_range.1)),
            LEFT + plot_width / 2.0,
            bottom + 32.0,
        );
        for (index, (series, points)) in self.series.iter().zip(&lines).enumerate() {
            let coordinates: Vec<String> = points
                .iter()
                .map(|(step, value)| format!("{:.2},{:.2}", x_of(*step), y_of(*value)))
                .collect();
            let _ = write!(
                svg,
                "<polyline class=\"series\" data-series=\"{}\" data-points=\"{}\" fill=\"none\" \
                 stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"{}\"/>",
                escape(&series.label),
                points.len(),
                colour(index),
                coordinates.join(" ")
            );
            if let [(step, value)] = points.as_slice() {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.2}\" cy=\"{:.2}\" r=\"3\" fill=\"{}\"/>",
                    x_of(*step),
                    y_of(*value),
                    colour(index)
                );
            }
        }
        svg.push_str("</svg>");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> Chart {
        Chart { id: "c1".into(), metric: "loss".into(), series }
    }

    #[test]
    fn one_polyline_per_series_with_its_point_count() {
        let svg = chart(vec![
            Series { label: "a".into(), points: (0..5).map(|i| (i as f64, i as f64)).collect() },
            Series { label: "b".into(), points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0)] },
        ])
        .svg();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("data-points=\"5\""));
        assert!(svg.contains("data-points=\"2\""), "NaN is left out");
        assert!(svg.contains("<title id=\"c1-title\">loss by step</title>"));
    }

    #[test]
    fn labels_are_escaped_and_flat_lines_drawn() {
        let svg = chart(vec![Series {
            label: "<script>alert(1)</script>".into(),
            points: vec![(1.0, 3.0), (2.0, 3.0)],
        }])
        .svg();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&#60;script&#62;"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn empty_charts_say_so() {
        let svg = chart(vec![Series { label: "a".into(), points: vec![] }]).svg();
        assert!(svg.contains("no finite values"));
    }
}
