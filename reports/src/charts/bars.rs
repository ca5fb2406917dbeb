//! Bars, with optional min–max error bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, FONT, PALETTE, count_tick, error};
use crate::ReportError;

/// One bar: its label, its value, and an optional `(low, high)` range.
pub type Bar = (String, f64, Option<(f64, f64)>);

/// Bars with optional error bars (min–max): one per label.
///
/// Vertical while every label fits under its bar; else horizontal, one row
/// a label, so that no label overlaps another or is dropped, however many
/// allocators a run has.
#[derive(Debug, Clone, Default)]
pub struct Bars {
    /// Caption.
    pub title: String,
    /// Value axis label with its unit.
    pub y_label: String,
    /// `(label, value, Some((low, high)))`.
    pub bars: Vec<Bar>,
    /// The category axis's title (`kmalloc cache`), if any.
    pub x_label: Option<String>,
    /// The value axis's top, shared by small multiples (default: this
    /// chart's largest value).
    pub y_max: Option<f64>,
    /// One colour for every bar, where bars are classes of one thing
    /// rather than allocators (default: the palette, bar by bar).
    pub color: Option<RGBColor>,
}

/// Pixels a label of `chars` characters takes at the tick font (13 px).
pub(super) fn label_pixels(chars: usize) -> u32 {
    7 * chars as u32 + 8
}

/// The label of the category whose middle is at `at` on an axis with one
/// category per unit, and nothing at the other ticks (two ticks a unit
/// put every label in the middle of its bar).
pub(super) fn category_label(labels: &[String], at: f64) -> String {
    let index = at.floor() as usize;
    let centred = (at - at.floor() - 0.5).abs() < 0.01;
    if centred && index < labels.len() { labels[index].clone() } else { String::new() }
}

impl Bars {
    /// The longest label, in characters.
    fn widest_label(&self) -> usize {
        self.bars.iter().map(|(l, _, _)| l.chars().count()).max().unwrap_or(0)
    }

    /// Do the labels fit side by side under bars `width` pixels wide in all?
    fn fits_vertically(&self, width: u32) -> bool {
        let n = self.bars.len().max(1) as u32;
        let plot = width.saturating_sub(100);
        label_pixels(self.widest_label()) * n <= plot
    }

    /// The value axis's top.
    pub(crate) fn top(&self) -> f64 {
        // Values that are not finite numbers are not drawn (and do not
        // stretch the axis).
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let largest = self
            .bars
            .iter()
            .map(|(_, v, e)| e.map_or(finite(*v), |(_, h)| finite(h).max(finite(*v))))
            .fold(0.0f64, f64::max);
        self.y_max.unwrap_or(largest).max(largest).max(1e-9) * 1.12
    }

    fn draw_bar<DB: DrawingBackend, C>(
        &self,
        chart: &mut ChartContext<'_, DB, C>,
        index: usize,
        corners: [(f64, f64); 2],
    ) -> Result<(), ReportError>
    where
        C: plotters::coord::CoordTranslate<From = (f64, f64)>,
    {
        // An empty class draws nothing, not a line in its colour.
        if corners[0].0 == corners[1].0 || corners[0].1 == corners[1].1 {
            return Ok(());
        }
        let color = self.color.unwrap_or(PALETTE[index % PALETTE.len()]);
        // The palette's second round is a pale fill in a full-colour
        // frame, so that bar 9 does not look like bar 1.
        if index < PALETTE.len() || self.color.is_some() {
            chart.draw_series([Rectangle::new(corners, color.filled())]).map_err(error)?;
        } else {
            chart.draw_series([Rectangle::new(corners, color.mix(0.35).filled())]).map_err(error)?;
            chart.draw_series([Rectangle::new(corners, color.stroke_width(2))]).map_err(error)?;
        }
        Ok(())
    }
}

impl Chart for Bars {
    fn size(&self) -> (u32, u32) {
        if self.fits_vertically(900) { (900, 480) } else { (900, 110 + 26 * self.bars.len().max(1) as u32) }
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        if self.fits_vertically(area.dim_in_pixel().0) { self.draw_vertical(area) } else { self.draw_horizontal(area) }
    }
}

impl Bars {
    /// Are the bars counts (every value a whole number)? Their axis then
    /// labels whole numbers only.
    fn counts(&self) -> bool {
        self.bars.iter().all(|(_, v, range)| range.is_none() && (!v.is_finite() || v.fract() == 0.0))
    }

    fn draw_vertical<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let n = self.bars.len().max(1);
        let top = self.top();
        let labels: Vec<String> = self.bars.iter().map(|(l, _, _)| l.clone()).collect();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(if self.x_label.is_some() { 60 } else { 40 })
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)
            .map_err(error)?;
        // Every label, centred under its bar (they fit: checked).
        let category = |x: &f64| category_label(&labels, *x);
        let counts = self.counts();
        let value = |y: &f64| count_tick(*y, counts);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&category)
            .y_label_formatter(&value)
            .y_desc(&self.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15));
        if let Some(x_label) = &self.x_label {
            mesh.x_desc(x_label);
        }
        mesh.draw().map_err(error)?;
        for (index, (_, value, range)) in self.bars.iter().enumerate() {
            if !value.is_finite() {
                continue;
            }
            let x = index as f64;
            self.draw_bar(&mut chart, index, [(x + 0.15, 0.0), (x + 0.85, *value)])?;
            if let Some((low, high)) = range.filter(|(low, high)| low.is_finite() && high.is_finite()) {
                chart
                    .draw_series([ErrorBar::new_vertical(x + 0.5, low, *value, high, BLACK.stroke_width(2), 12)])
                    .map_err(error)?;
            }
        }
        Ok(())
    }

    /// One row a label, the first at the top.
    fn draw_horizontal<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let n = self.bars.len().max(1);
        let top = self.top();
        let labels: Vec<String> = self.bars.iter().map(|(l, _, _)| l.clone()).collect();
        let label_area = label_pixels(self.widest_label()).min(area.dim_in_pixel().0 / 2) + 10;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(label_area + if self.x_label.is_some() { 24 } else { 0 })
            .build_cartesian_2d(0f64..top, n as f64..0f64)
            .map_err(error)?;
        let category = |y: &f64| category_label(&labels, *y);
        let counts = self.counts();
        let value = |x: &f64| count_tick(*x, counts);
        let mut mesh = chart.configure_mesh();
        mesh.disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&category)
            .x_label_formatter(&value)
            .x_desc(&self.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15));
        if let Some(x_label) = &self.x_label {
            mesh.y_desc(x_label);
        }
        mesh.draw().map_err(error)?;
        for (index, (_, value, range)) in self.bars.iter().enumerate() {
            if !value.is_finite() {
                continue;
            }
            let y = index as f64;
            self.draw_bar(&mut chart, index, [(0.0, y + 0.15), (*value, y + 0.85)])?;
            if let Some((low, high)) = range.filter(|(low, high)| low.is_finite() && high.is_finite()) {
                chart
                    .draw_series([ErrorBar::new_horizontal(y + 0.5, low, *value, high, BLACK.stroke_width(2), 10)])
                    .map_err(error)?;
            }
        }
        Ok(())
    }
}
