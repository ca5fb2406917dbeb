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
    /// The y axis's top, shared by small multiples (default: this chart's
    /// largest value).
    pub y_max: Option<f64>,
    /// Size in pixels.
    pub pixels: (u32, u32),
}

/// How one series is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesStyle {
    color: RGBColor,
    width: u32,
    /// Dash and gap, in pixels; `None`: solid.
    dash: Option<(u32, u32)>,
    /// Circles on the line (it lies under an identical one).
    pub(crate) marked: bool,
}

impl SeriesStyle {
    /// A sample of the line, 22 pixels from `at`, for the legend.
    fn sample<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, (x, y): (i32, i32)) -> Result<(), ReportError> {
        let stroke = self.color.stroke_width(self.width);
        match self.dash {
            None => area.draw(&PathElement::new(vec![(x, y), (x + 22, y)], stroke)).map_err(error)?,
            Some((dash, gap)) => {
                let mut at = x;
                while at < x + 22 {
                    area.draw(&PathElement::new(vec![(at, y), ((at + dash as i32).min(x + 22), y)], stroke))
                        .map_err(error)?;
                    at += (dash + gap) as i32;
                }
            }
        }
        if self.marked {
            area.draw(&Circle::new((x + 11, y), 4, self.color.stroke_width(2))).map_err(error)?;
        }
        Ok(())
    }
}

impl Lines {
    fn is_thin(&self, index: usize) -> bool {
        self.thin.get(index).copied().unwrap_or(false)
    }

    /// The earlier series this one is identical to, if any (its line would
    /// be hidden under that one's).
    fn same_as(&self, index: usize) -> Option<usize> {
        let points = &self.series[index].1;
        (0..index).find(|&j| !points.is_empty() && self.series[j].1 == *points)
    }

    /// Colours go to full series; a companion takes its own's, thin and
    /// dashed. The palette's later rounds are dashed, each its own dash, so
    /// that no two series look alike.
    pub(crate) fn style_of(&self, index: usize) -> SeriesStyle {
        let colour = (0..=index).filter(|&i| !self.is_thin(i)).count().saturating_sub(1);
        let color = PALETTE[colour % PALETTE.len()];
        let marked = self.same_as(index).is_some();
        if self.is_thin(index) {
            return SeriesStyle { color, width: 1, dash: Some((4, 4)), marked };
        }
        let dash = match colour / PALETTE.len() {
            0 => None,
            1 => Some((6, 4)),
            2 => Some((2, 3)),
            _ => Some((12, 6)),
        };
        SeriesStyle { color, width: 2, dash, marked }
    }

    /// The legend: each series drawn, with "= X" for one identical to an
    /// earlier X.
    pub(crate) fn legend_entries(&self) -> Vec<(String, SeriesStyle)> {
        (0..self.series.len())
            .filter(|&i| !self.series[i].1.is_empty())
            .map(|i| {
                let name = match self.same_as(i) {
                    Some(j) => format!("{} (= {})", self.series[i].0, self.series[j].0),
                    None => self.series[i].0.clone(),
                };
                (name, self.style_of(i))
            })
            .collect()
    }
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
        if let Some(top) = self.y_max.filter(|top| top.is_finite()) {
            y1 = y1.max(top);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let ticks = |x: &f64| match self.x_ticks {
            Some(ticks) => ticks(*x),
            None => plain_number(*x),
        };
        // The legend goes to the right of the plot, never over the data.
        let legend = self.legend_entries();
        let legend_width = legend
            .iter()
            .map(|(name, _)| 7 * name.chars().count() as u32 + 44)
            .max()
            .unwrap_or(0)
            .min(area.dim_in_pixel().0 * 2 / 5);
        let (area, legend_area) = area.split_horizontally(area.dim_in_pixel().0 - legend_width);
        let mut y = 40;
        for (name, style) in &legend {
            style.sample(&legend_area, (4, y))?;
            legend_area.draw(&Text::new(name.clone(), (30, y - 7), (FONT, 12).into_font())).map_err(error)?;
            y += 18;
        }
        let area = &area;
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
                for (index, (_, points)) in self.series.iter().enumerate() {
                    // A series the allocator could not report gets no line
                    // and no legend entry; the others keep their colours.
                    if points.is_empty() {
                        continue;
                    }
                    let style = self.style_of(index);
                    let points: Vec<(f64, f64)> = points
                        .iter()
                        .copied()
                        .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0))
                        .collect();
                    let stroke = style.color.stroke_width(style.width);
                    match style.dash {
                        None => {
                            $chart.draw_series(LineSeries::new(points.clone(), stroke)).map_err(error)?;
                        }
                        Some((dash, gap)) => {
                            $chart
                                .draw_series(DashedLineSeries::new(points.clone(), dash, gap, stroke))
                                .map_err(error)?;
                        }
                    }
                    // A line under an identical one gets markers, so both
                    // show; so does one of one or two points, too short to see.
                    if self.same_as(index).is_some() || points.len() < 3 {
                        let every = (points.len() / 12).max(1);
                        $chart
                            .draw_series(
                                points.iter().step_by(every).map(|&p| Circle::new(p, 4, style.color.stroke_width(2))),
                            )
                            .map_err(error)?;
                    }
                }
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
