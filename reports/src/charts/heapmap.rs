//! Heap maps: the arena over time, and the arena at one op block by block.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, FONT, FREE_COLOR, HOLES_COLOR, OTHER_COLOR, PAYLOAD_COLOR, UNTOUCHED_COLOR, error, plain_number};
use crate::ReportError;

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
    /// Bytes shown (from offset 0): the arena, or the footprint.
    pub span_bytes: u64,
    /// H at that op: bytes above it were never used (drawn apart).
    pub footprint_bytes: u64,
    /// A line under the caption: what the op did (a refused request).
    pub note: Option<String>,
    /// `(offset, len, state)` of payloads ('A') and free blocks ('F'),
    /// address order; gaps are overhead.
    pub extents: Vec<(u64, u64, char)>,
    /// Rows.
    pub rows: u64,
}

/// The exact map's legend: colour and meaning, in drawing order.
const EXACT_LEGEND: [(RGBColor, &str); 4] = [
    (PAYLOAD_COLOR, "live payload (requested bytes)"),
    (FREE_COLOR, "free"),
    (OTHER_COLOR, "headers, padding, rounding, metadata"),
    (NEVER_USED_COLOR, "above the footprint: never used"),
];

/// A heap map over time's legend: colour and meaning.
pub const HEAPMAP_ENTRIES: [(RGBColor, &str); 5] = [
    (PAYLOAD_COLOR, "live payload"),
    (FREE_COLOR, "free"),
    (HOLES_COLOR, "holes: free and used finer than a pixel"),
    (OTHER_COLOR, "headers, padding, rounding, metadata"),
    (UNTOUCHED_COLOR, "beyond the footprint"),
];

/// Draw `entries` as a row of outlined colour swatches with their words,
/// from `x` along the top of `area`; returns the width used.
pub(crate) fn swatches<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(RGBColor, &str)],
    mut x: i32,
) -> Result<i32, ReportError> {
    let start = x;
    for &(color, text) in entries {
        area.draw(&Rectangle::new([(x, 8), (x + 14, 20)], color.filled())).map_err(error)?;
        area.draw(&Rectangle::new([(x, 8), (x + 14, 20)], BLACK.mix(0.4).stroke_width(1))).map_err(error)?;
        area.draw(&Text::new(text, (x + 20, 9), (FONT, 12).into_font())).map_err(error)?;
        x += 40 + 6 * text.chars().count() as i32;
    }
    Ok(x - start)
}

/// A chart with a colour legend along its bottom, inside the picture, so
/// that a PNG on a slide explains itself.
#[derive(Debug, Clone)]
pub struct WithLegend<C> {
    /// The chart.
    pub chart: C,
    /// Colour and meaning.
    pub entries: Vec<(RGBColor, &'static str)>,
}

impl<C: Chart> Chart for WithLegend<C> {
    fn size(&self) -> (u32, u32) {
        let (width, height) = self.chart.size();
        (width, height + 30)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let height = area.dim_in_pixel().1;
        let (chart, legend) = area.split_vertically(height - 30);
        self.chart.draw(&chart)?;
        swatches(&legend, &self.entries, 20)?;
        Ok(())
    }
}

/// Arena bytes above the footprint.
const NEVER_USED_COLOR: RGBColor = RGBColor(232, 232, 232);

impl Chart for ExactMap {
    fn size(&self) -> (u32, u32) {
        (1200, 90 + 34 * self.rows as u32 + if self.note.is_some() { 20 } else { 0 })
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let rows = self.rows.max(1);
        let per_row = self.span_bytes.div_ceil(rows).max(1);
        // The legend along the bottom, the note under the caption: inside
        // the picture, so that a PNG on a slide explains itself.
        let height = area.dim_in_pixel().1 as i32;
        let (area, legend) = area.split_vertically(height - 28);
        swatches(&legend, &EXACT_LEGEND, 90)?;
        let area = match &self.note {
            Some(note) => {
                let (top, rest) = area.split_vertically(50);
                // The embedded font has no arrows.
                let note = note.replace('→', "->");
                top.draw(&Text::new(note, (90, 30), (FONT, 13).into_font().color(&RGBColor(160, 40, 0))))
                    .map_err(error)?;
                rest
            }
            None => area,
        };
        let mut chart = ChartBuilder::on(&area)
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
        // Above the footprint: never used, apart from overhead.
        let never_used = (
            self.footprint_bytes.min(self.span_bytes),
            self.span_bytes - self.footprint_bytes.min(self.span_bytes),
            'N',
        );
        let pixels_per_byte = 1100.0 / per_row as f64;
        for &(offset, len, state) in std::iter::once(&never_used).chain(&self.extents) {
            let color = match state {
                'A' => PAYLOAD_COLOR,
                'N' => NEVER_USED_COLOR,
                _ => FREE_COLOR,
            };
            let (start, end) = (offset, (offset + len).min(self.span_bytes));
            // The pieces of a block that wraps, and the widest, which
            // carries its size (a 128-byte block split 120 + 8 across two
            // rows says "128" once, where it is readable).
            let mut pieces = Vec::new();
            let mut at = start;
            while at < end {
                let row = at / per_row;
                let row_end = ((row + 1) * per_row).min(end);
                pieces.push(((at - row * per_row) as f64, (row_end - row * per_row) as f64, row as f64));
                at = row_end;
            }
            let widest =
                pieces.iter().enumerate().max_by(|a, b| (a.1.1 - a.1.0).total_cmp(&(b.1.1 - b.1.0))).map(|(i, _)| i);
            for (index, &(x0, x1, y)) in pieces.iter().enumerate() {
                chart.draw_series([Rectangle::new([(x0, y), (x1, y + 0.8)], color.filled())]).map_err(error)?;
                // Outline blocks wide enough to show one, so neighbours stay apart.
                if state != 'N' && (x1 - x0) * pixels_per_byte > 4.0 {
                    chart
                        .draw_series([Rectangle::new([(x0, y), (x1, y + 0.8)], WHITE.stroke_width(1))])
                        .map_err(error)?;
                }
                let label = format!("{len}");
                if state != 'N' && Some(index) == widest && (x1 - x0) * pixels_per_byte > 8.0 * label.len() as f64 + 6.0
                {
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
            }
        }
        Ok(())
    }
}

/// The legend text for heap maps.
pub const HEAPMAP_LEGEND: &str = "blue: live payload · yellow: free · vermillion: holes, free and used space interleaved finer than the picture · grey: headers, padding, rounding and metadata · white: beyond the footprint";
