//! The charts, each drawable on any plotters backend, so every one comes out
//! as SVG and as PNG. Text uses an embedded font (Ubuntu Light, from the
//! `epaint_default_fonts` crate): a fresh machine needs no font installed.
//! Colours come from the Okabe–Ito palette, distinguishable with the common
//! colour-vision deficiencies.
//!
//! One module per kind of chart: [`Bars`], [`Lines`], the heap maps
//! ([`HeapMapChart`], [`ExactMap`]), [`Stacked`] bars; [`Grid`] puts several
//! side by side.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::ReportError;

mod bars;
mod frames;
mod heapmap;
mod lines;
mod stacked;
mod svg_text;
mod text;

pub use bars::{Bar, Bars};
pub use frames::{ArenaLine, BuddyTree, Leaf, PanelView, StepFrame, StepPanel, write_gif};
pub use heapmap::{ExactMap, HEAPMAP_ENTRIES, HEAPMAP_LEGEND, HeapMapChart, WithLegend};
pub use lines::Lines;
pub use stacked::Stacked;
pub use text::Glyphs;

/// The Okabe–Ito palette, black last.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];

/// Heap-map colours: live payload, free, neither (headers, padding,
/// rounding, metadata), beyond the footprint.
pub const PAYLOAD_COLOR: RGBColor = RGBColor(0, 114, 178);
/// Free space.
pub const FREE_COLOR: RGBColor = RGBColor(240, 228, 66);
/// Overhead.
pub const OTHER_COLOR: RGBColor = RGBColor(150, 150, 150);
/// Untouched.
pub const UNTOUCHED_COLOR: RGBColor = RGBColor(255, 255, 255);
/// Free and used interleaved finer than the picture (holes).
pub const HOLES_COLOR: RGBColor = RGBColor(213, 94, 0);

pub(crate) const FONT: &str = "sans-serif";

/// Register the embedded font once.
pub fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
            .ok()
            .expect("the embedded font is a valid TTF");
        register_font(FONT, FontStyle::Bold, epaint_default_fonts::UBUNTU_LIGHT)
            .ok()
            .expect("the embedded font is a valid TTF");
    });
}

pub(crate) fn error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Chart(e.to_string())
}

/// A chart: something that draws itself on a drawing area.
pub trait Chart {
    /// Size in pixels.
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }
    /// Draw.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError>;
}

/// Render as SVG markup.
pub fn svg<C: Chart>(chart: &C) -> Result<String, ReportError> {
    fonts();
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, chart.size()).into_drawing_area();
        area.fill(&WHITE).map_err(error)?;
        chart.draw(&area)?;
        area.present().map_err(error)?;
    }
    // Drawn in the embedded font, whatever fonts the viewer has.
    Ok(svg_text::outline(&text))
}

/// Render as a PNG file.
pub fn png<C: Chart>(chart: &C, path: &Path) -> Result<(), ReportError> {
    fonts();
    let area = Glyphs::new(BitMapBackend::new(path, chart.size())).into_drawing_area();
    area.fill(&WHITE).map_err(error)?;
    chart.draw(&area)?;
    area.present().map_err(error)
}

/// A tick label: whole numbers with thousands as `k`, `M`.
pub(crate) fn plain_number(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 10.0 || x == x.round() {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// A tick label of an axis of counts: none between whole numbers (a count
/// of 2.5 blocks means nothing); else [`plain_number`].
pub(crate) fn count_tick(y: f64, counts: bool) -> String {
    if counts && (y - y.round()).abs() > 1e-9 { String::new() } else { plain_number(y) }
}

/// Several charts side by side in a grid.
#[derive(Debug, Clone)]
pub struct Grid<C> {
    /// The charts, row by row.
    pub charts: Vec<C>,
    /// Columns.
    pub columns: usize,
    /// Size of one cell.
    pub cell: (u32, u32),
}

impl<C: Chart> Chart for Grid<C> {
    fn size(&self) -> (u32, u32) {
        let rows = self.charts.len().div_ceil(self.columns.max(1)).max(1);
        (self.cell.0 * self.columns as u32, self.cell.1 * rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let rows = self.charts.len().div_ceil(self.columns.max(1)).max(1);
        for (chart, cell) in self.charts.iter().zip(area.split_evenly((rows, self.columns.max(1)))) {
            chart.draw(&cell)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_write_every_label_turning_horizontal_when_they_would_not_fit() {
        let labels: Vec<String> = (0..19).map(|i| format!("segregated:kind=tlsf,sl={i}")).collect();
        let many = Bars {
            title: "t".into(),
            y_label: "Mops/s".into(),
            bars: labels.iter().enumerate().map(|(i, l)| (l.clone(), i as f64, None)).collect(),
            ..Bars::default()
        };
        let (width, height) = many.size();
        assert_eq!(width, 900);
        assert!(height >= 19 * 26, "a row per label: {height} px");
        let text = svg(&many).unwrap();
        for label in &labels {
            assert!(
                text.contains(&format!(">{label}<")) || text.contains(&format!(">\n{label}\n<")),
                "{label} dropped"
            );
        }
        let few = Bars { bars: many.bars[..3].to_vec(), ..many.clone() };
        assert_eq!(few.size(), (900, 480), "three labels fit under their bars");
        // A shared top keeps small multiples on one scale.
        let shared = Bars { y_max: Some(1000.0), ..few.clone() };
        assert!(shared.top() > 1000.0 && few.top() < 10.0);
    }

    #[test]
    fn bars_of_counts_label_whole_numbers_only() {
        let ticks = |bars: &Bars| -> Vec<String> {
            let text = svg(bars).unwrap();
            // Tick labels are the `<text>`s holding a number alone.
            text.split("<text")
                .skip(1)
                .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim().to_string())
                .filter(|t| t.parse::<f64>().is_ok())
                .collect()
        };
        let counts = Bars {
            title: "nr_free".into(),
            bars: vec![("0".into(), 1.0, None), ("1".into(), 3.0, None), ("2".into(), 0.0, None)],
            ..Bars::default()
        };
        let labels = ticks(&counts);
        assert!(labels.iter().any(|t| t == "3"), "{labels:?}");
        assert!(labels.iter().all(|t| !t.contains('.')), "a count axis labels {labels:?}");
        let ratios = Bars { bars: vec![("a".into(), 1.5, None), ("b".into(), 3.0, None)], ..counts };
        assert!(ticks(&ratios).iter().any(|t| t.contains('.')), "fractions keep their ticks");
    }

    #[test]
    fn an_identical_line_is_marked_and_named_in_a_legend_beside_the_plot() {
        let same = vec![(0.0, 1.0), (10.0, 5.0)];
        let lines = Lines {
            title: "l".into(),
            x_label: "op".into(),
            y_label: "%".into(),
            series: vec![("buddy".into(), same.clone()), ("slab".into(), same), ("other".into(), vec![(0.0, 2.0)])],
            log_y: false,
            thin: Vec::new(),
            x_ticks: None,
            y_max: Some(50.0),
            pixels: (600, 400),
        };
        let names: Vec<String> = lines.legend_entries().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["buddy", "slab (= buddy)", "other"]);
        assert!(lines.style_of(1).marked && !lines.style_of(0).marked);
        let text = svg(&lines).unwrap();
        assert!(text.contains("slab (= buddy)") && text.contains("<circle"), "the hidden line is named and marked");
        // The shared top reaches the axis: a tick at 50 exists though no point does.
        assert!(text.contains(">50<") || text.contains(">\n50\n<"), "the y axis reaches the shared top");
    }

    #[test]
    fn every_chart_kind_renders_as_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let bars = Bars {
            title: "t".into(),
            y_label: "Mops/s".into(),
            bars: vec![("a".into(), 3.0, Some((2.5, 3.5))), ("b".into(), 1.0, None)],
            ..Bars::default()
        };
        let lines = Lines {
            title: "l".into(),
            x_label: "op".into(),
            y_label: "bytes".into(),
            series: vec![
                ("requested".into(), vec![(0.0, 1.0), (10.0, 5.0)]),
                ("granted".into(), vec![(0.0, 2.0), (10.0, 7.0)]),
            ],
            log_y: true,
            thin: vec![false, true],
            x_ticks: None,
            y_max: None,
            pixels: (600, 400),
        };
        let map = HeapMapChart {
            title: "m".into(),
            span_bytes: 4096,
            frames: vec![(10, "AAFF..".into()), (20, "AFOF A".into())],
            pixels: (500, 300),
        };
        let exact = ExactMap {
            title: "e".into(),
            span_bytes: 1024,
            footprint_bytes: 900,
            note: Some("op 3: alloc 64 B → refused".into()),
            extents: vec![(0, 100, 'A'), (128, 64, 'F'), (500, 400, 'A')],
            rows: 4,
        };
        for (name, text) in [
            ("bars", svg(&bars)),
            ("lines", svg(&lines)),
            ("map", svg(&map)),
            ("exact", svg(&exact)),
            (
                "grid",
                svg(&Grid { charts: vec![bars.clone(), bars.clone(), bars.clone()], columns: 2, cell: (300, 200) }),
            ),
        ] {
            let text = text.unwrap();
            assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{name}");
        }
        assert!(svg(&lines).unwrap().contains("requested"), "series names are in the legend");
        let png_path = dir.path().join("bars.png");
        png(&bars, &png_path).unwrap();
        assert_eq!(&std::fs::read(&png_path).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    }
}
