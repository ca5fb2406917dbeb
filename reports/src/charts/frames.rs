//! `heaplab step` as pictures: one op of each allocator shown, as its arena
//! line or its buddy tree, for a slide (SVG, PNG) or, op after op, a GIF.
//!
//! The pictures are the page's views drawn in plotters: the same colours,
//! the same rows, the same outlines around what the op changed.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, error, fonts};
use crate::ReportError;

/// Payload: the requested bytes of a live block.
const PAYLOAD: RGBColor = RGBColor(0, 114, 178);
/// A block taken whole by a caller, in the tree.
const TAKEN: RGBColor = RGBColor(86, 180, 233);
/// Free.
const FREE: RGBColor = RGBColor(143, 211, 182);
/// The left edge of a free block, so that neighbours stay apart.
const FREE_EDGE: RGBColor = RGBColor(0, 158, 115);
/// Neither payload nor free: headers, padding, rounding, metadata.
const OTHER: RGBColor = RGBColor(217, 217, 217);
/// A split block of the tree, whose halves are drawn below it.
const SPLIT: RGBColor = RGBColor(242, 242, 242);
/// Held by a slab cache.
const HELD: RGBColor = RGBColor(204, 121, 167);
/// What the op changed.
const TOUCHED: RGBColor = RGBColor(213, 94, 0);

/// Width of every picture.
const WIDTH: u32 = 1000;
/// Left margin (row offsets, order names) and right margin (free counts).
const LEFT: i32 = 110;
const RIGHT: i32 = 90;
/// Title, words and gauges above a panel's view.
const HEADER: u32 = 64;
/// The legend under it.
const LEGEND: u32 = 26;
/// One row of the arena line: the slab band, the line, the gap.
const BAND: i32 = 7;
const LINE: i32 = 30;
const GAP: i32 = 16;
/// One order of the tree.
const ORDER_ROW: i32 = 22;

/// One allocator at one op.
#[derive(Debug, Clone)]
pub struct StepPanel {
    /// The allocator (and the workload).
    pub title: String,
    /// What the op did: `op 12: alloc 64 B → …`.
    pub words: String,
    /// The gauges, in one line.
    pub gauges: String,
    /// What is drawn.
    pub view: PanelView,
}

/// The view a panel draws.
#[derive(Debug, Clone)]
pub enum PanelView {
    /// The arena as an address line.
    Arena(ArenaLine),
    /// The buddy tree.
    Tree(BuddyTree),
}

/// The arena line at one op (offsets from the arena's start).
#[derive(Debug, Clone, Default)]
pub struct ArenaLine {
    /// Bytes drawn: the whole arena, at one scale for every op.
    pub arena_bytes: u64,
    /// H at the op, marked by a dashed line.
    pub footprint: Option<u64>,
    /// Free extents, `(offset, len)`.
    pub free: Vec<(u64, u64)>,
    /// Live payloads, `(offset, requested)`.
    pub live: Vec<(u64, u64)>,
    /// Slab pages, `(offset, len)`, drawn as a band above the line.
    pub slabs: Vec<(u64, u64)>,
    /// Extents the op made, `(offset, len)`: outlined.
    pub changed: Vec<(u64, u64)>,
}

/// What holds a leaf of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    /// On a free list.
    Free,
    /// Handed to a caller whole.
    Taken,
    /// A slab of the named cache.
    Held(usize),
}

/// The buddy tree at one op.
#[derive(Debug, Clone, Default)]
pub struct BuddyTree {
    /// Bytes of an order-0 block.
    pub min_block: u64,
    /// The top order.
    pub max_order: u32,
    /// The lowest order drawn (the same for every op of a GIF).
    pub lowest_order: u32,
    /// Bytes tiled with blocks.
    pub managed_bytes: u64,
    /// Leaves `(offset, order, state)`; blocks of the managed bytes no leaf
    /// covers are split.
    pub leaves: Vec<(u64, u32, Leaf)>,
    /// Holders' names, for `Leaf::Held`.
    pub holders: Vec<String>,
    /// Leaves the op made: outlined.
    pub changed: Vec<(u64, u32)>,
}

/// One op: the panels, stacked.
#[derive(Debug, Clone)]
pub struct StepFrame {
    /// One per allocator.
    pub panels: Vec<StepPanel>,
}

impl ArenaLine {
    /// Bytes per row: a power of two, so that buddy blocks up to a row
    /// never wrap, and at most 8 rows (the page's rule).
    fn per_row(&self) -> u64 {
        let span = self.arena_bytes.max(1);
        let mut per_row = 1u64;
        while per_row * 8 < span {
            per_row *= 2;
        }
        while per_row < span && per_row < 4096 && per_row * 2 <= span {
            per_row *= 2;
        }
        per_row
    }

    fn rows(&self) -> u64 {
        self.arena_bytes.max(1).div_ceil(self.per_row())
    }

    fn height(&self) -> u32 {
        (self.rows() as i32 * (BAND + LINE + GAP)) as u32 + 4
    }
}

impl BuddyTree {
    fn orders(&self) -> u32 {
        self.max_order.saturating_sub(self.lowest_order) + 1
    }

    fn height(&self) -> u32 {
        self.orders() * ORDER_ROW as u32 + 4
    }
}

impl StepPanel {
    fn height(&self) -> u32 {
        HEADER
            + LEGEND
            + match &self.view {
                PanelView::Arena(line) => line.height(),
                PanelView::Tree(tree) => tree.height(),
            }
    }
}

impl super::Chart for StepFrame {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.panels.iter().map(|p| p.height() + 10).sum::<u32>().max(1))
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let mut rest = area.clone();
        for panel in &self.panels {
            let (top, below) = rest.split_vertically(panel.height() + 10);
            draw_panel(&top, panel)?;
            rest = below;
        }
        Ok(())
    }
}

/// The embedded font has no arrows and no minus sign.
fn plain(text: &str) -> String {
    text.replace('→', "->").replace('−', "-").replace('×', "x").replace('÷', "/")
}

fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &StepPanel) -> Result<(), ReportError> {
    area.draw(&Text::new(plain(&panel.title), (10, 6), font(16))).map_err(error)?;
    area.draw(&Text::new(plain(&panel.words), (10, 27), font(13).color(&RGBColor(120, 30, 0)))).map_err(error)?;
    area.draw(&Text::new(plain(&panel.gauges), (10, 45), font(12).color(&RGBColor(60, 60, 60)))).map_err(error)?;
    let view = area.clone().shrink((0, HEADER), (WIDTH, area.dim_in_pixel().1 - HEADER));
    let legend = match &panel.view {
        PanelView::Arena(line) => draw_arena(&view, line)?,
        PanelView::Tree(tree) => draw_tree(&view, tree)?,
    };
    let height = match &panel.view {
        PanelView::Arena(line) => line.height(),
        PanelView::Tree(tree) => tree.height(),
    };
    let mut x = LEFT;
    let y = (HEADER + height + 6) as i32;
    for (color, text) in legend {
        area.draw(&Rectangle::new([(x, y), (x + 12, y + 12)], color.filled())).map_err(error)?;
        area.draw(&Rectangle::new([(x, y), (x + 12, y + 12)], BLACK.mix(0.4).stroke_width(1))).map_err(error)?;
        area.draw(&Text::new(text.clone(), (x + 17, y), font(12))).map_err(error)?;
        let (w, _) = area.estimate_text_size(&text, &font(12)).map_err(error)?;
        x += 17 + w as i32 + 18;
    }
    Ok(())
}

/// A size in short words: `64`, `4K`, `1.5M`.
fn short(bytes: u64) -> String {
    const K: u64 = 1024;
    if bytes >= K * K && bytes.is_multiple_of(K * K) {
        format!("{}M", bytes / (K * K))
    } else if bytes >= K * K {
        format!("{:.1}M", bytes as f64 / (K * K) as f64)
    } else if bytes >= K && bytes.is_multiple_of(K) {
        format!("{}K", bytes / K)
    } else if bytes >= 10 * K {
        format!("{:.1}K", bytes as f64 / K as f64)
    } else {
        format!("{bytes}")
    }
}

/// A label centred in a box when it fits.
fn label<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (x0, y0, x1, y1): (i32, i32, i32, i32),
    color: &RGBColor,
) -> Result<(), ReportError> {
    let style = font(11).color(color).pos(Pos::new(HPos::Center, VPos::Center));
    let (w, _) = area.estimate_text_size(text, &style).map_err(error)?;
    if (w as i32) + 4 < x1 - x0 {
        area.draw(&Text::new(text.to_string(), ((x0 + x1) / 2, (y0 + y1) / 2), style)).map_err(error)?;
    }
    Ok(())
}

type Legend = Vec<(RGBColor, String)>;

fn draw_arena<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, line: &ArenaLine) -> Result<Legend, ReportError> {
    let per_row = line.per_row();
    let width = (WIDTH as i32 - LEFT - RIGHT) as f64;
    let scale = width / per_row as f64;
    let top = |row: u64| 2 + row as i32 * (BAND + LINE + GAP) + BAND;
    // The pieces of `offset..offset + len` in each row: (row, x0, x1) in pixels.
    let pieces = |offset: u64, len: u64| {
        let mut pieces = Vec::new();
        let (mut at, end) = (offset, (offset + len).min(line.arena_bytes));
        while at < end {
            let row = at / per_row;
            let row_end = ((row + 1) * per_row).min(end);
            let x0 = LEFT + ((at - row * per_row) as f64 * scale) as i32;
            let x1 = LEFT + ((row_end - row * per_row) as f64 * scale).ceil() as i32;
            pieces.push((row, x0, x1.max(x0 + 1)));
            at = row_end;
        }
        pieces
    };
    let widest = |pieces: &[(u64, i32, i32)]| pieces.iter().copied().max_by_key(|&(_, x0, x1)| x1 - x0);
    for row in 0..line.rows() {
        let len = per_row.min(line.arena_bytes - row * per_row);
        let x1 = LEFT + (len as f64 * scale).ceil() as i32;
        area.draw(&Rectangle::new([(LEFT, top(row)), (x1, top(row) + LINE)], OTHER.filled())).map_err(error)?;
        let offset = Text::new(
            format!("{:#x}", row * per_row),
            (LEFT - 8, top(row) + LINE / 2),
            font(11).pos(Pos::new(HPos::Right, VPos::Center)),
        );
        area.draw(&offset).map_err(error)?;
    }
    for &(offset, len) in &line.slabs {
        for (row, x0, x1) in pieces(offset, len) {
            area.draw(&Rectangle::new([(x0, top(row) - BAND), ((x1 - 1).max(x0 + 1), top(row) - 1)], HELD.filled()))
                .map_err(error)?;
        }
    }
    for &(offset, len) in &line.free {
        let pieces = pieces(offset, len);
        for &(row, x0, x1) in &pieces {
            area.draw(&Rectangle::new([(x0, top(row)), (x1, top(row) + LINE)], FREE.filled())).map_err(error)?;
            area.draw(&Rectangle::new([(x0, top(row)), (x0 + 1, top(row) + LINE)], FREE_EDGE.filled()))
                .map_err(error)?;
        }
        if let Some((row, x0, x1)) = widest(&pieces) {
            label(area, &short(len), (x0, top(row), x1, top(row) + LINE), &RGBColor(11, 61, 44))?;
        }
    }
    for &(offset, requested) in &line.live {
        let pieces = pieces(offset, requested.max(1));
        for &(row, x0, x1) in &pieces {
            area.draw(&Rectangle::new([(x0, top(row)), (x1, top(row) + LINE)], PAYLOAD.filled())).map_err(error)?;
            area.draw(&Rectangle::new([(x0, top(row)), (x0 + 1, top(row) + LINE)], WHITE.filled())).map_err(error)?;
        }
        if let Some((row, x0, x1)) = widest(&pieces) {
            label(area, &short(requested), (x0, top(row), x1, top(row) + LINE), &WHITE)?;
        }
    }
    for &(offset, len) in &line.changed {
        for (row, x0, x1) in pieces(offset, len.max(1)) {
            area.draw(&Rectangle::new([(x0, top(row)), (x1, top(row) + LINE)], TOUCHED.stroke_width(2)))
                .map_err(error)?;
        }
    }
    if let Some(h) = line.footprint.filter(|&h| h < line.arena_bytes) {
        let row = h / per_row;
        let x = LEFT + ((h - row * per_row) as f64 * scale) as i32;
        let style = BLACK.stroke_width(2);
        let mut y = top(row) - BAND;
        while y < top(row) + LINE + 2 {
            area.draw(&PathElement::new(vec![(x, y), (x, (y + 3).min(top(row) + LINE + 2))], style)).map_err(error)?;
            y += 5;
        }
    }
    let note = format!("{} in {} rows of {}", short(line.arena_bytes), line.rows(), short(per_row));
    // Under the last row, at its right end.
    let under = top(line.rows() - 1) + LINE + 3;
    area.draw(&Text::new(note, (WIDTH as i32 - RIGHT, under), font(11).pos(Pos::new(HPos::Right, VPos::Top))))
        .map_err(error)?;
    let mut legend: Legend = vec![
        (PAYLOAD, "live payload (requested bytes)".into()),
        (FREE, "free".into()),
        (OTHER, "headers, padding, rounding, metadata".into()),
    ];
    if !line.slabs.is_empty() {
        legend.push((HELD, "slab pages".into()));
    }
    legend.push((TOUCHED, "changed by this op".into()));
    Ok(legend)
}

fn draw_tree<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, tree: &BuddyTree) -> Result<Legend, ReportError> {
    let width = (WIDTH as i32 - LEFT - RIGHT) as f64;
    let scale = width / tree.managed_bytes.max(1) as f64;
    let y_of = |order: u32| 2 + (tree.max_order - order) as i32 * ORDER_ROW;
    let block = |offset: u64, order: u32| {
        let len = tree.min_block << order;
        let x0 = LEFT + (offset as f64 * scale) as i32;
        let x1 = LEFT + ((offset + len) as f64 * scale).ceil() as i32;
        (x0, y_of(order), x1.max(x0 + 1), y_of(order) + ORDER_ROW - 4)
    };
    // Every block above a leaf is split: draw each once.
    let mut split = std::collections::BTreeSet::new();
    for &(offset, order, _) in &tree.leaves {
        for above in order + 1..=tree.max_order {
            let (start, len) = (offset & !((tree.min_block << above) - 1), tree.min_block << above);
            // The managed bytes may end inside a block of this order: the
            // tree's tops are the largest blocks that fit.
            if start + len > tree.managed_bytes {
                break;
            }
            split.insert((above, start));
        }
    }
    for &(order, offset) in &split {
        let (x0, y0, x1, y1) = block(offset, order);
        area.draw(&Rectangle::new([(x0, y0), (x1, y1)], SPLIT.filled())).map_err(error)?;
        area.draw(&Rectangle::new([(x0, y0), (x1, y1)], RGBColor(160, 160, 160).stroke_width(1))).map_err(error)?;
    }
    let mut nr_free = vec![0u64; tree.max_order as usize + 1];
    for (offset, order, state) in &tree.leaves {
        let (x0, y0, x1, y1) = block(*offset, *order);
        let color = match state {
            Leaf::Free => FREE,
            Leaf::Taken => TAKEN,
            Leaf::Held(_) => HELD,
        };
        if *state == Leaf::Free {
            nr_free[*order as usize] += 1;
        }
        area.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled())).map_err(error)?;
        if x1 - x0 > 3 {
            area.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.stroke_width(1))).map_err(error)?;
        }
        let text = match state {
            Leaf::Held(h) => tree.holders.get(*h).cloned().unwrap_or_else(|| "slab".into()),
            _ => short(tree.min_block << order),
        };
        label(area, &text, (x0, y0, x1, y1), &BLACK)?;
    }
    for &(offset, order) in &tree.changed {
        let (x0, y0, x1, y1) = block(offset, order);
        area.draw(&Rectangle::new([(x0, y0), (x1, y1)], TOUCHED.stroke_width(2))).map_err(error)?;
    }
    for order in tree.lowest_order..=tree.max_order {
        let y = y_of(order) + (ORDER_ROW - 4) / 2;
        let name = format!("order {order}: {}", short(tree.min_block << order));
        area.draw(&Text::new(name, (LEFT - 8, y), font(11).pos(Pos::new(HPos::Right, VPos::Center)))).map_err(error)?;
        let count = format!("{} free", nr_free[order as usize]);
        area.draw(&Text::new(count, (WIDTH as i32 - RIGHT + 8, y), font(11).pos(Pos::new(HPos::Left, VPos::Center))))
            .map_err(error)?;
    }
    let mut legend: Legend =
        vec![(FREE, "free".into()), (TAKEN, "allocated".into()), (SPLIT, "split into two buddies below".into())];
    if tree.leaves.iter().any(|(_, _, state)| matches!(state, Leaf::Held(_))) {
        legend.push((HELD, "a slab of the named cache".into()));
    }
    legend.push((TOUCHED, "made by this op".into()));
    Ok(legend)
}

/// Write `frames` as an animated GIF at `path`, one frame every
/// `delay_ms`, looping. Every frame must have the size of the first.
/// Returns the number of frames.
pub fn write_gif(
    path: &Path,
    delay_ms: u32,
    frames: impl IntoIterator<Item = StepFrame>,
) -> Result<usize, ReportError> {
    use super::Chart;
    fonts();
    let mut frames = frames.into_iter().peekable();
    let Some(first) = frames.peek() else { return Err(ReportError::Chart("a GIF needs at least one frame".into())) };
    let size = first.size();
    let area = super::Glyphs::new(BitMapBackend::gif(path, size, delay_ms).map_err(error)?).into_drawing_area();
    let mut count = 0;
    for frame in frames {
        if frame.size() != size {
            return Err(ReportError::Chart(format!("frame {count} is {:?}, the first {size:?}", frame.size())));
        }
        area.fill(&WHITE).map_err(error)?;
        frame.draw(&area)?;
        area.present().map_err(error)?;
        count += 1;
    }
    Ok(count)
}
