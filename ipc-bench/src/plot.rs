//! `ipc bench --plot FILE`: round-trip latency and throughput by message size, one line per
//! transport (with `--async`, one more per readiness path, e.g. `pipe+async`), and its raw
//! baseline dashed in the same colour, as an SVG file. The x axis is labelled at the sizes
//! measured, and the y axis always has labels, however narrow its range.
//!
//! SVG only: plotters writes text as `<text>` elements for the viewer to render, so neither
//! fonts nor any system library is needed.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{Measurement, Row};

/// Width of each of the two charts, side by side, and their height.
const CHART: (u32, u32) = (640, 480);

/// One line of a chart: a row label's figures by message size (a transport's, or one of its
/// readiness paths' with `--async`).
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    /// The same figure for the row's raw baseline, where it has one.
    raw: Vec<(f64, f64)>,
}

/// Draws the two charts of `rows` into `path`.
pub fn draw(path: &Path, rows: &[Row]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (2 * CHART.0, CHART.1)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(CHART.0);
    chart(
        &left,
        "Round trip p50 by message size",
        "µs (log)",
        &series(rows, |m| m.rtt_p50_ns as f64 / 1e3),
    )?;
    chart(
        &right,
        "One-way throughput by message size",
        "MB/s (log)",
        &series(rows, |m| m.bytes_per_s / 1e6),
    )?;
    root.present()?;
    Ok(())
}

/// One series per row label, in the order the rows came, of `value` by size, ours and raw.
fn series(rows: &[Row], value: impl Fn(&Measurement) -> f64) -> Vec<Series> {
    let drawable = |v: f64| v.is_finite() && v > 0.0;
    let mut all: Vec<Series> = Vec::new();
    for row in rows {
        let label = row.label();
        let at = match all.iter().position(|s| s.label == label) {
            Some(at) => at,
            None => {
                all.push(Series {
                    label,
                    points: Vec::new(),
                    raw: Vec::new(),
                });
                all.len() - 1
            }
        };
        let size = row.size as f64;
        let ours = value(&row.ours);
        if drawable(ours) {
            all[at].points.push((size, ours));
        }
        if let Some(raw) = row.raw.as_ref().map(&value).filter(|&v| drawable(v)) {
            all[at].raw.push((size, raw));
        }
    }
    all
}

/// Key points of a log axis over `range`: `measured` where given (the sizes), else about six
/// values spread evenly on the log scale, so that even a range narrower than a decade (where
/// plotters would label nothing) has labels.
fn key_points(range: &std::ops::Range<f64>, measured: Option<Vec<f64>>) -> Vec<f64> {
    if let Some(mut points) = measured.filter(|p| !p.is_empty()) {
        points.sort_by(f64::total_cmp);
        points.dedup();
        return points;
    }
    let (lo, hi) = (range.start.ln(), range.end.ln());
    (1..=6)
        .map(|i| (lo + (hi - lo) * f64::from(i) / 7.0).exp())
        .map(round_2_significant)
        .collect()
}

/// `v` with two significant digits, so that a label reads 3.4, not 3.4172.
fn round_2_significant(v: f64) -> f64 {
    let scale = 10f64.powi(1 - v.log10().floor() as i32);
    (v * scale).round() / scale
}

/// The range of a log axis holding every value of `values`, with some room on each side.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() && hi > 0.0 {
        lo / 2.0..hi * 2.0
    } else {
        1.0..10.0
    }
}

fn chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<(), Box<dyn Error>> {
    let points = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().chain(&s.raw).copied())
    };
    let x = log_range(points().map(|(x, _)| x));
    let y = log_range(points().map(|(_, y)| y));
    let sizes = points().map(|(x, _)| x).collect();
    let x_keys = key_points(&x, Some(sizes));
    let y_keys = key_points(&y, None);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            x.log_scale().with_key_points(x_keys),
            y.log_scale().with_key_points(y_keys),
        )?;
    chart
        .configure_mesh()
        .x_desc("message size (bytes, log)")
        .y_desc(y_desc)
        .x_label_formatter(&|&bytes| size_label(bytes))
        .y_label_formatter(&|&v| number_label(v))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(
            s.points
                .iter()
                .map(|&point| Circle::new(point, 3, color.filled())),
        )?;
        if !s.raw.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(
                    s.raw.iter().copied(),
                    6,
                    4,
                    color.stroke_width(1),
                ))?
                .label(format!("{} (raw)", s.label))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(1))
                });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// `64`, `4K`, `1M`: a size on the x axis, in binary units when round.
fn size_label(bytes: f64) -> String {
    let b = bytes.round() as u64;
    match b {
        0 => "0".to_string(),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

/// A value on the y axis, without more digits than it needs.
fn number_label(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_ranges() {
        assert_eq!(size_label(64.0), "64");
        assert_eq!(size_label(4096.0), "4K");
        assert_eq!(size_label(1048576.0), "1M");
        assert_eq!(size_label(1000.0), "1000");
        assert_eq!(log_range([8.0, 100.0].into_iter()), 4.0..200.0);
        assert_eq!(log_range(std::iter::empty()), 1.0..10.0);
    }

    #[test]
    fn a_narrow_range_still_has_labels_and_sizes_are_the_measured_ones() {
        let narrow = key_points(&(30.0..34.0), None);
        assert_eq!(narrow.len(), 6);
        assert!(
            narrow.iter().all(|v| (30.0..=34.0).contains(v)),
            "{narrow:?}"
        );
        let sizes = key_points(&(32.0..2e6), Some(vec![4096.0, 64.0, 64.0, 1048576.0]));
        assert_eq!(sizes, [64.0, 4096.0, 1048576.0]);
        assert_eq!(round_2_significant(3.4172), 3.4);
        assert_eq!(round_2_significant(1234.0), 1200.0);
    }
}
