//! Bars, with optional min–max error bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, FONT, PALETTE, error, plain_number};
use crate::ReportError;

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
        // Values that are not finite numbers are not drawn (and do not
        // stretch the axis).
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let top = self
            .bars
            .iter()
            .map(|(_, v, e)| e.map_or(finite(*v), |(_, h)| finite(h).max(finite(*v))))
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.12;
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
            if !value.is_finite() {
                continue;
            }
            let range = range.filter(|(low, high)| low.is_finite() && high.is_finite());
            let color = PALETTE[index % PALETTE.len()];
            let x = index as f64;
            let corners = [(x + 0.15, 0.0), (x + 0.85, *value)];
            // The palette's second round is a pale fill in a full-colour
            // frame, so that bar 9 does not look like bar 1.
            if index < PALETTE.len() {
                chart.draw_series([Rectangle::new(corners, color.filled())]).map_err(error)?;
            } else {
                chart.draw_series([Rectangle::new(corners, color.mix(0.35).filled())]).map_err(error)?;
                chart.draw_series([Rectangle::new(corners, color.stroke_width(2))]).map_err(error)?;
            }
            if let Some((low, high)) = range {
                chart
                    .draw_series([ErrorBar::new_vertical(x + 0.5, low, *value, high, BLACK.stroke_width(2), 12)])
                    .map_err(error)?;
            }
        }
        Ok(())
    }
}
