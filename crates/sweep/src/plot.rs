//! PNG plots (plotters, bitmap backend): validation curves with a min–max band over seeds, and
//! a horizontal bar chart of gaps to the reference arm. The font is embedded (DejaVu Sans), so
//! plots render identically on machines without system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::error::SweepError;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FAMILY, style, FONT).is_err() {
                panic!("the embedded DejaVu Sans font does not parse");
            }
        }
    });
}

/// Tableau-10, then the lighter Tableau-20 shades: distinguishable, print-friendly.
const COLORS: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// One line of a curve plot: (step, mean, min, max) points.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

fn plot_err(path: &Path) -> impl Fn(String) -> SweepError + '_ {
    move |message| SweepError::Plot {
        path: path.to_owned(),
        message,
    }
}

/// The y range: from the lowest minimum to the highest mean after the first 10% of steps (the
/// first evaluations sit far above everything else and would flatten the interesting part).
pub fn y_range(lines: &[Line]) -> (f64, f64) {
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let lo = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.2))
        .fold(f64::INFINITY, f64::min);
    let mut hi = lines
        .iter()
        .flat_map(|l| l.points.iter().filter(|p| p.0 >= 0.1 * x_max).map(|p| p.1))
        .fold(f64::NEG_INFINITY, f64::max);
    if !hi.is_finite() || hi <= lo {
        hi = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.3))
            .fold(lo, f64::max);
    }
    if !lo.is_finite() || hi <= lo {
        return (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Metric vs step, one line per arm (seed mean) with a shaded min–max band.
pub fn curves_png(
    path: &Path,
    title: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<(), SweepError> {
    register_fonts();
    let err = plot_err(path);
    let root = BitMapBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let (lo, hi) = y_range(lines);
    let clamp = |v: f64| v.clamp(lo, hi);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max * 1.02, lo..hi)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("optimizer step")
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    // Many arms: fainter bands so the lines stay readable.
    let band_alpha = if lines.len() > 5 { 0.06 } else { 0.15 };
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        if line.points.len() > 1 {
            let mut band: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0, clamp(p.3))).collect();
            band.extend(line.points.iter().rev().map(|p| (p.0, clamp(p.2))));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(band_alpha).filled(),
                )))
                .map_err(|e| err(e.to_string()))?;
        }
        chart
            .draw_series(LineSeries::new(
                line.points.iter().map(|p| (p.0, clamp(p.1))),
                color.stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// One bar: label, mean gap, error half-width (std over seeds).
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub mean: f64,
    pub err: f64,
}

/// Horizontal bars of gaps to the reference (0 = reference), with ±std whiskers.
pub fn gaps_png(path: &Path, title: &str, x_label: &str, bars: &[Bar]) -> Result<(), SweepError> {
    register_fonts();
    let err = plot_err(path);
    let n = bars.len().max(1) as i32;
    let height = (160 + 44 * n).max(320) as u32;
    let root = BitMapBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let lo = bars.iter().map(|b| b.mean - b.err).fold(0.0f64, f64::min);
    let hi = bars.iter().map(|b| b.mean + b.err).fold(0.0f64, f64::max);
    let pad = 0.08 * (hi - lo).max(1e-3);
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(4);
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    // Row i (first arm on top) sits at y = n − 1 − i; labels are printed at integer y only.
    let row_y = |i: usize| (n - 1 - i as i32) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size((longest as u32 * 9 + 20).min(420))
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..(n as f64 - 0.5))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .disable_y_mesh()
        .light_line_style(WHITE.mix(0.0))
        .y_labels(n as usize)
        .y_label_formatter(&|y| {
            let k = y.round();
            if (y - k).abs() > 1e-6 || k < 0.0 || k >= n as f64 {
                return String::new();
            }
            labels
                .get((n - 1 - k as i32) as usize)
                .cloned()
                .unwrap_or_default()
        })
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, b) in bars.iter().enumerate() {
        let y = row_y(i);
        let color = if b.mean > 0.0 { COLORS[3] } else { COLORS[2] };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.32), (b.mean, y + 0.32)],
                color.mix(0.7).filled(),
            )))
            .map_err(|e| err(e.to_string()))?;
        if b.err > 0.0 {
            for seg in [
                vec![(b.mean - b.err, y), (b.mean + b.err, y)],
                vec![(b.mean - b.err, y - 0.12), (b.mean - b.err, y + 0.12)],
                vec![(b.mean + b.err, y - 0.12), (b.mean + b.err, y + 0.12)],
            ] {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        seg,
                        BLACK.stroke_width(2),
                    )))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
            BLACK.stroke_width(1),
        )))
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}
