//! The charts, each drawable on any plotters backend, so every one comes out
//! as SVG and as PNG. Text uses an embedded font (Ubuntu Light, from the
//! `epaint_default_fonts` crate): a fresh machine needs no font installed.
//! Colours come from the Okabe–Ito palette, distinguishable with the common
//! colour-vision deficiencies.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::ReportError;

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

const FONT: &str = "sans-serif";

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

fn error(e: impl std::fmt::Display) -> ReportError {
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
    Ok(text)
}

/// Render as a PNG file.
pub fn png<C: Chart>(chart: &C, path: &Path) -> Result<(), ReportError> {
    fonts();
    let area = BitMapBackend::new(path, chart.size()).into_drawing_area();
    area.fill(&WHITE).map_err(error)?;
    chart.draw(&area)?;
    area.present().map_err(error)
}

/// One bar: its label, its value, and an optional `(low, high)` range.
pub type Bar = (String, f64, Option<(f64, f64)>);

/// Bars with optional error bars (min–max): one per label.
#[derive(Debug, Clone)]
pub struct Bars {
    /// Caption.
    pub title: String,
    /// Y axis label with its unit.
    pub y_label: String,
    /// `(label, value, Some((low, high)))`.
    pub bars: Vec<Bar>,
}

impl Chart for Bars {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let n = self.bars.len().max(1);
        let top =
            self.bars.iter().map(|(_, v, e)| e.map_or(*v, |(_, h)| h.max(*v))).fold(0.0f64, f64::max).max(1e-9) * 1.12;
        let labels: Vec<String> = self.bars.iter().map(|(l, _, _)| l.clone()).collect();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)
            .map_err(error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                // Every label while they fit, else every k-th.
                let index = x.floor() as usize;
                let every = n.div_ceil(10);
                let centred = (x - x.floor() - 0.5).abs() < 0.01;
                if centred && index < labels.len() && index.is_multiple_of(every) {
                    labels[index].clone()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| plain_number(*y))
            .y_desc(&self.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(error)?;
        for (index, (_, value, range)) in self.bars.iter().enumerate() {
            let color = PALETTE[index % PALETTE.len()];
            let x = index as f64;
            chart
                .draw_series([Rectangle::new([(x + 0.15, 0.0), (x + 0.85, *value)], color.filled())])
                .map_err(error)?;
            if let Some((low, high)) = range {
                chart
                    .draw_series([ErrorBar::new_vertical(x + 0.5, *low, *value, *high, BLACK.stroke_width(2), 12)])
                    .map_err(error)?;
            }
        }
        Ok(())
    }
}

/// Lines, one per series, on linear or logarithmic axes.
#[derive(Debug, Clone)]
pub struct Lines {
    /// Caption.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// `(name, points)`.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Dashed series (by index) drawn thinner: a second family of curves.
    pub thin: Vec<bool>,
    /// Tick labels for x, if the x values are transformed (e.g. percentiles).
    pub x_ticks: Option<fn(f64) -> String>,
    /// Size in pixels.
    pub pixels: (u32, u32),
}

impl Chart for Lines {
    fn size(&self) -> (u32, u32) {
        self.pixels
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let points = self.series.iter().flat_map(|(_, p)| p.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in points {
            if self.log_y && y <= 0.0 {
                continue;
            }
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 1.0, 10.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let ticks = |x: &f64| match self.x_ticks {
            Some(ticks) => ticks(*x),
            None => plain_number(*x),
        };
        let colors = |index: usize| PALETTE[index % PALETTE.len()];
        macro_rules! finish {
            ($chart:ident) => {{
                $chart
                    .configure_mesh()
                    .x_desc(&self.x_label)
                    .y_desc(&self.y_label)
                    .x_label_formatter(&ticks)
                    .y_label_formatter(&|y| plain_number(*y))
                    .label_style((FONT, 12))
                    .axis_desc_style((FONT, 14))
                    .draw()
                    .map_err(error)?;
                for (index, (name, points)) in self.series.iter().enumerate() {
                    // A series the allocator could not report gets no line
                    // and no legend entry; the others keep their colours.
                    if points.is_empty() {
                        continue;
                    }
                    let thin = self.thin.get(index).copied().unwrap_or(false);
                    let style = colors(index).stroke_width(if thin { 1 } else { 2 });
                    let points: Vec<(f64, f64)> =
                        points.iter().copied().filter(|&(_, y)| !self.log_y || y > 0.0).collect();
                    // The palette's second round is dashed, so that no two
                    // series look alike.
                    if index < PALETTE.len() {
                        $chart
                            .draw_series(LineSeries::new(points, style))
                            .map_err(error)?
                            .label(name.clone())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                    } else {
                        $chart
                            .draw_series(DashedLineSeries::new(points, 6, 4, style))
                            .map_err(error)?
                            .label(name.clone())
                            .legend(move |(x, y)| {
                                EmptyElement::at((x, y))
                                    + PathElement::new(vec![(0, 0), (6, 0)], style)
                                    + PathElement::new(vec![(10, 0), (16, 0)], style)
                            });
                    }
                }
                $chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .label_font((FONT, 12))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(error)?;
            }};
        }
        if self.log_y {
            let (y0, y1) = (y0.max(1e-9) / 1.5, y1 * 1.5);
            let mut chart = ChartBuilder::on(area)
                .caption(&self.title, (FONT, 18))
                .margin(10)
                .x_label_area_size(45)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(error)?;
            finish!(chart);
        } else {
            let (y0, y1) = (y0.min(0.0), if y1 > 0.0 { y1 * 1.08 } else { 1.0 });
            let mut chart = ChartBuilder::on(area)
                .caption(&self.title, (FONT, 18))
                .margin(10)
                .x_label_area_size(45)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(error)?;
            finish!(chart);
        }
        Ok(())
    }
}

/// A tick label: whole numbers with thousands as `k`, `M`.
fn plain_number(x: f64) -> String {
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

/// A heap map over time: address across, time down, one row per frame.
#[derive(Debug, Clone)]
pub struct HeapMapChart {
    /// Caption.
    pub title: String,
    /// Bytes the columns span.
    pub span_bytes: u64,
    /// `(op, states)` per frame, in time order.
    pub frames: Vec<(u64, String)>,
    /// Size in pixels.
    pub pixels: (u32, u32),
}

fn state_color(state: u8) -> RGBColor {
    match state {
        b'A' => PAYLOAD_COLOR,
        b'F' => FREE_COLOR,
        b'O' => OTHER_COLOR,
        b'H' => HOLES_COLOR,
        _ => UNTOUCHED_COLOR,
    }
}

impl Chart for HeapMapChart {
    fn size(&self) -> (u32, u32) {
        self.pixels
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let last_op = self.frames.last().map_or(1, |(op, _)| *op).max(1) as f64;
        let span = self.span_bytes.max(1) as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(62)
            .build_cartesian_2d(0f64..span / 1024.0, last_op..0f64)
            .map_err(error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("arena offset (KiB)")
            .y_desc("op")
            .x_label_formatter(&|x| plain_number(*x))
            .y_label_formatter(&|y| plain_number(*y))
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .draw()
            .map_err(error)?;
        let mut previous = 0.0;
        for (op, states) in &self.frames {
            let (top, bottom) = (previous, *op as f64);
            previous = bottom;
            let columns = states.len().max(1) as f64;
            let bytes = states.as_bytes();
            let mut start = 0;
            // One rectangle per run of equal states keeps the SVG small.
            while start < bytes.len() {
                let mut end = start + 1;
                while end < bytes.len() && bytes[end] == bytes[start] {
                    end += 1;
                }
                if bytes[start] != b'.' {
                    let (x0, x1) = (span * start as f64 / columns / 1024.0, span * end as f64 / columns / 1024.0);
                    chart
                        .draw_series([Rectangle::new([(x0, top), (x1, bottom)], state_color(bytes[start]).filled())])
                        .map_err(error)?;
                }
                start = end;
            }
        }
        Ok(())
    }
}

/// The arena at one op, block by block, wrapped into rows like a memory
/// dump, each block labelled with its size where it fits.
#[derive(Debug, Clone)]
pub struct ExactMap {
    /// Caption.
    pub title: String,
    /// Bytes shown (from offset 0).
    pub span_bytes: u64,
    /// `(offset, len, state)` of payloads ('A') and free blocks ('F'),
    /// address order; gaps are overhead.
    pub extents: Vec<(u64, u64, char)>,
    /// Rows.
    pub rows: u64,
}

impl Chart for ExactMap {
    fn size(&self) -> (u32, u32) {
        (1200, 60 + 34 * self.rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let rows = self.rows.max(1);
        let per_row = self.span_bytes.div_ceil(rows).max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..per_row as f64, rows as f64..0f64)
            .map_err(error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("offset within the row (bytes)")
            .x_label_formatter(&|x| plain_number(*x))
            .y_labels(rows as usize + 1)
            .y_label_formatter(&|y| format!("+{}", (y.round() as u64) * per_row))
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .draw()
            .map_err(error)?;
        // Overhead everywhere first, then the extents over it.
        chart
            .draw_series(
                (0..rows)
                    .map(|r| Rectangle::new([(0.0, r as f64), (per_row as f64, r as f64 + 0.8)], OTHER_COLOR.filled())),
            )
            .map_err(error)?;
        let pixels_per_byte = 1100.0 / per_row as f64;
        for &(offset, len, state) in &self.extents {
            let color = if state == 'A' { PAYLOAD_COLOR } else { FREE_COLOR };
            let (mut at, end) = (offset, (offset + len).min(self.span_bytes));
            while at < end {
                let row = at / per_row;
                let row_end = ((row + 1) * per_row).min(end);
                let (x0, x1, y) = ((at - row * per_row) as f64, (row_end - row * per_row) as f64, row as f64);
                chart.draw_series([Rectangle::new([(x0, y), (x1, y + 0.8)], color.filled())]).map_err(error)?;
                // Outline blocks wide enough to show one, so neighbours stay apart.
                if (x1 - x0) * pixels_per_byte > 4.0 {
                    chart
                        .draw_series([Rectangle::new([(x0, y), (x1, y + 0.8)], WHITE.stroke_width(1))])
                        .map_err(error)?;
                }
                let label = format!("{len}");
                if (x1 - x0) * pixels_per_byte > 8.0 * label.len() as f64 + 6.0 {
                    let text_color = if state == 'A' { WHITE } else { BLACK };
                    chart
                        .draw_series([Text::new(
                            label,
                            ((x0 + x1) / 2.0, y + 0.55),
                            (FONT, 12).into_font().color(&text_color).pos(plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            )),
                        )])
                        .map_err(error)?;
                }
                at = row_end;
            }
        }
        Ok(())
    }
}

/// The legend text for heap maps.
pub const HEAPMAP_LEGEND: &str = "blue: live payload · yellow: free · vermillion: holes, free and used space interleaved finer than the picture · grey: headers, padding, rounding and metadata · white: beyond the footprint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_kind_renders_as_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let bars = Bars {
            title: "t".into(),
            y_label: "Mops/s".into(),
            bars: vec![("a".into(), 3.0, Some((2.5, 3.5))), ("b".into(), 1.0, None)],
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
