//! Lines, on linear or logarithmic axes.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, FONT, PALETTE, error, plain_number};
use crate::ReportError;

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
    /// Companion series (by index): drawn thin and dashed in the colour of
    /// the nearest full series before it (an ideal line, a second measure
    /// of the same allocator).
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
            // A value that is not a number (or infinite) cannot be placed;
            // it is left out, not allowed to stretch the axes forever.
            if !x.is_finite() || !y.is_finite() || (self.log_y && y <= 0.0) {
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
                    let is_thin = |i: usize| self.thin.get(i).copied().unwrap_or(false);
                    let thin = is_thin(index);
                    // Colours go to full series; a companion takes its own's.
                    let colour = (0..=index).filter(|&i| !is_thin(i)).count().saturating_sub(1);
                    let style = colors(colour).stroke_width(if thin { 1 } else { 2 });
                    let points: Vec<(f64, f64)> = points
                        .iter()
                        .copied()
                        .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0))
                        .collect();
                    // The palette's second round is dashed, so that no two
                    // series look alike.
                    if thin {
                        $chart
                            .draw_series(DashedLineSeries::new(points, 4, 4, style))
                            .map_err(error)?
                            .label(name.clone())
                            .legend(move |(x, y)| {
                                EmptyElement::at((x, y))
                                    + PathElement::new(vec![(0, 0), (4, 0)], style)
                                    + PathElement::new(vec![(8, 0), (12, 0)], style)
                                    + PathElement::new(vec![(16, 0), (18, 0)], style)
                            });
                    } else if colour < PALETTE.len() {
                        $chart
                            .draw_series(LineSeries::new(points, style))
                            .map_err(error)?
                            .label(name.clone())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                    } else {
                        // Each later round of the palette has its own dash:
                        // long dashes, then dots, then long dash and gap.
                        let (dash, gap) = match colour / PALETTE.len() {
                            1 => (6, 4),
                            2 => (2, 3),
                            _ => (12, 6),
                        };
                        $chart
                            .draw_series(DashedLineSeries::new(points, dash, gap, style))
                            .map_err(error)?
                            .label(name.clone())
                            .legend(move |(x, y)| {
                                // The first three dashes of the pattern.
                                let (d, g) = (dash as i32, gap as i32);
                                EmptyElement::at((x, y))
                                    + PathElement::new(vec![(0, 0), (d, 0)], style)
                                    + PathElement::new(vec![(d + g, 0), (2 * d + g, 0)], style)
                                    + PathElement::new(vec![(2 * (d + g), 0), (3 * d + 2 * g, 0)], style)
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
