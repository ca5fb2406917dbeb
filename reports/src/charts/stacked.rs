//! Horizontal stacked bars: one row a label, each row the sum of named parts.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::bars::{category_label, label_pixels};
use super::{Chart, FONT, error, plain_number};
use crate::ReportError;

/// Rows of stacked parts: every row's parts laid end to end from zero, each
/// part in the colour of its series, with a legend naming the series.
#[derive(Debug, Clone, Default)]
pub struct Stacked {
    /// Caption.
    pub title: String,
    /// Value axis label with its unit.
    pub x_label: String,
    /// The series: name and colour.
    pub series: Vec<(String, RGBColor)>,
    /// `(label, parts)`, a part being `(series index, value)`, first row on top.
    pub rows: Vec<(String, Vec<(usize, f64)>)>,
    /// The value axis's top, shared by small multiples (default: the
    /// longest row).
    pub x_max: Option<f64>,
}

impl Chart for Stacked {
    fn size(&self) -> (u32, u32) {
        (900, 150 + 44 * self.rows.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let n = self.rows.len().max(1);
        let longest =
            self.rows.iter().map(|(_, parts)| parts.iter().map(|p| p.1.max(0.0)).sum::<f64>()).fold(0.0, f64::max);
        let top = self.x_max.unwrap_or(longest).max(longest).max(1e-9) * 1.05;
        let labels: Vec<String> = self.rows.iter().map(|(l, _)| l.clone()).collect();
        let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let (legend, plot) = area.split_vertically(34);
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(label_pixels(widest).min(area.dim_in_pixel().0 / 2) + 10)
            .build_cartesian_2d(0f64..top, n as f64..0f64)
            .map_err(error)?;
        let category = |y: &f64| category_label(&labels, *y);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&category)
            .x_label_formatter(&|x: &f64| plain_number(*x))
            .x_desc(&self.x_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(error)?;
        for (index, (_, parts)) in self.rows.iter().enumerate() {
            let y = index as f64;
            let mut at = 0.0;
            for &(series, value) in parts {
                if !(value.is_finite() && value > 0.0) {
                    continue;
                }
                let color = self.series.get(series).map_or(BLACK, |s| s.1);
                chart
                    .draw_series([Rectangle::new([(at, y + 0.18), (at + value, y + 0.82)], color.filled())])
                    .map_err(error)?;
                at += value;
            }
        }
        // The legend: a swatch and a name per series, in one line.
        let mut x = 20;
        for (name, color) in &self.series {
            legend.draw(&Rectangle::new([(x, 12), (x + 14, 26)], color.filled())).map_err(error)?;
            legend.draw(&Text::new(name.clone(), (x + 20, 12), (FONT, 13))).map_err(error)?;
            x += 20 + label_pixels(name.chars().count()) as i32 + 10;
        }
        Ok(())
    }
}
