//! The kernel model's levels over one pool of frames: what each level asked
//! for, was granted and holds of the pool when requested bytes peaked, and
//! who holds the pool's frames (the `levels` and `pool` tables); and the
//! requests each level served and refused over the run (their series).

use std::collections::BTreeMap;

use super::Group;
use super::free_blocks::short_size;
use crate::charts::{Grid, Lines, PALETTE, Stacked};
use crate::{Figure, ReportError, Writer};

/// The levels, as the tables name them and as the figure does (malloc only
/// for a model with user heaps).
const LEVELS: [(&str, &str); 4] = [
    ("kmalloc", "kmalloc (slab caches)"),
    ("vmalloc", "vmalloc"),
    ("alloc_pages", "alloc_pages"),
    ("malloc", "malloc (heaps on pages)"),
];

/// The pool's holders, as the `pool` table names them, with their colours.
const HOLDERS: [(&str, usize); 8] = [
    ("slab caches", 0),
    ("kmalloc large", 4),
    ("alloc_pages", 1),
    ("vmalloc", 2),
    ("page tables", 7),
    ("malloc heaps", 3),
    ("malloc mmap", 5),
    ("free", 6),
];

/// A level's table row and label; a holder's row and colour.
type Levels = Vec<(&'static str, &'static str)>;
type Holders = Vec<(&'static str, usize)>;

/// The levels and holders a model's tables have.
fn present(levels: &Table, pool: &Table) -> (Levels, Holders) {
    (
        LEVELS.iter().copied().filter(|(row, _)| levels.contains_key(*row)).collect(),
        HOLDERS.iter().copied().filter(|(holder, _)| pool.contains_key(*holder)).collect(),
    )
}

type Table = BTreeMap<String, BTreeMap<String, f64>>;

fn get(table: &Table, row: &str, column: &str) -> f64 {
    table.get(row).and_then(|c| c.get(column)).copied().unwrap_or(0.0)
}

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let models: Vec<(&str, &String, Table, Table)> = group
        .allocators()
        .map(|(a, l)| (a, l, group.details(a, "levels"), group.details(a, "pool")))
        .filter(|(_, _, levels, _)| !levels.is_empty())
        .collect();
    if models.is_empty() {
        return Ok(None);
    }
    let mut charts = Vec::new();
    for (_, label, levels, pool) in &models {
        let (level_rows, holders) = present(levels, pool);
        let pool_bytes: f64 = holders.iter().map(|(h, _)| get(pool, h, "bytes")).sum();
        let rows = level_rows
            .iter()
            .map(|&(row, name)| {
                let (r, g, h) = (
                    get(levels, row, "requested_bytes"),
                    get(levels, row, "granted_bytes"),
                    get(levels, row, "held_bytes"),
                );
                (name.to_string(), vec![(0, r), (1, g - r), (2, h - g)])
            })
            .collect();
        charts.push(Stacked {
            title: format!("{label}: each level's requested, granted and held bytes"),
            x_label: "bytes".into(),
            series: vec![
                ("requested".into(), PALETTE[0]),
                ("rounding (granted − requested)".into(), PALETTE[5]),
                (
                    "held beyond granted (free objects, slab tails, page tables, malloc's free chunks)".into(),
                    PALETTE[7],
                ),
            ],
            rows,
            // Its own scale: a level's bytes are often a sliver of the pool.
            x_max: None,
        });
        charts.push(Stacked {
            title: format!("{label}: the buddy pool's {} of frames, by holder", short_size(pool_bytes as u64)),
            x_label: "bytes".into(),
            series: holders.iter().map(|&(h, c)| (h.to_string(), PALETTE[c])).collect(),
            rows: vec![(
                "frames".into(),
                holders.iter().enumerate().map(|(i, (h, _))| (i, get(pool, h, "bytes"))).collect(),
            )],
            x_max: Some(pool_bytes),
        });
    }
    let height = charts.iter().map(|c| crate::charts::Chart::size(c).1).max().unwrap_or(300);
    let mut figure = writer.figure(
        &group.file("levels"),
        "The levels over one pool of frames when requested bytes peaked",
        "The kernel model's levels share one buddy pool of 4 KiB frames. Per level: the bytes requested, the rounding up to what was granted (a kmalloc class, whole pages for vmalloc, 2^order pages for alloc_pages), and what the level holds of the pool beyond that (a slab cache's free objects and slab tails; vmalloc's page-table pages; with user heaps, the frames under malloc's free chunks). Beneath, who holds the pool's frames: the slab caches, kmalloc's large requests (straight to pages), alloc_pages, vmalloc's scattered single frames, the page tables, the processes' malloc heaps and their large mappings, and what is free.",
        &Grid { columns: 1, cell: (900, height), charts },
        false,
    )?;
    figure.table = Some(levels_table(&models));
    Ok(Some(figure))
}

/// Per model and level: requested, granted, held, wasted, blocks, served, refused.
fn levels_table(models: &[(&str, &String, Table, Table)]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "allocator",
        "level",
        "requested B",
        "granted B",
        "held B",
        "wasted B",
        "wasted %",
        "live blocks",
        "served",
        "refused",
    ];
    let mut rows = Vec::new();
    for (_, label, levels, pool) in models {
        let (level_rows, holders) = present(levels, pool);
        for (row, name) in level_rows {
            let value = |column| get(levels, row, column);
            let (r, h) = (value("requested_bytes"), value("held_bytes"));
            let whole = |v: f64| format!("{}", v as u64);
            rows.push(vec![
                label.to_string(),
                name.to_string(),
                whole(r),
                whole(value("granted_bytes")),
                whole(h),
                whole(h - r),
                if h > 0.0 { format!("{:.1}", 100.0 * (h - r) / h) } else { "–".into() },
                whole(value("live_blocks")),
                whole(value("served")),
                whole(value("refused")),
            ]);
        }
        let free = get(pool, "free", "bytes");
        let total: f64 = holders.iter().map(|(h, _)| get(pool, h, "bytes")).sum();
        rows.push(vec![
            label.to_string(),
            "buddy pool".into(),
            "–".into(),
            format!("{}", (total - free) as u64),
            format!("{}", total as u64),
            "–".into(),
            "–".into(),
            "–".into(),
            "–".into(),
            "–".into(),
        ]);
    }
    (header, rows)
}

/// One panel of the over-time figure: `series` against the op, linear.
fn panel(title: String, y_label: &str, series: Vec<(String, Vec<(f64, f64)>)>) -> Lines {
    Lines {
        title,
        x_label: "op".into(),
        y_label: y_label.into(),
        series,
        log_y: false,
        thin: Vec::new(),
        x_ticks: None,
        y_max: None,
        pixels: (900, 320),
    }
}

/// Requests served and refused per level over the run: where contiguity
/// fails and virtual contiguity does not.
pub(crate) fn over_time(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let mut charts = Vec::new();
    for (allocator, label) in group.allocators() {
        // A panel a level, each on its own scale: a level's few refusals
        // would be a flat line beside another level's thousands served.
        let mut panels = Vec::new();
        for (row, name) in LEVELS {
            let series: Vec<(String, Vec<(f64, f64)>)> = ["served", "refused"]
                .into_iter()
                .map(|column| (column.to_string(), group.series(allocator, &format!("level_{row}_{column}"))))
                .collect();
            if series.iter().any(|(_, points)| points.iter().any(|p| p.1 > 0.0)) {
                panels.push(panel(format!("{label}: {name} requests"), "requests so far", series));
            }
        }
        if panels.is_empty() {
            continue;
        }
        charts.extend(panels);
        let holders: Vec<(String, Vec<(f64, f64)>)> = HOLDERS
            .iter()
            .map(|(h, _)| (h.to_string(), group.series(allocator, &format!("pool_{}_bytes", h.replace(' ', "_")))))
            .filter(|(_, points)| points.iter().any(|p| p.1 > 0.0))
            .collect();
        charts.push(panel(format!("{label}: the pool's frames by holder"), "bytes", holders));
    }
    if charts.is_empty() {
        return Ok(None);
    }
    writer
        .figure(
            &group.file("levels-over-time"),
            "Requests served and refused per level over the run",
            "Per level, on its own scale, the requests served and refused so far at each sample; beneath, the pool's frames by holder (in vmalloc-vs-contiguous, vmalloc serves exactly as many requests as alloc_pages refused). Where the pool's free frames are scattered, a request for 2^k physically contiguous pages (alloc_pages, or kmalloc above its largest class) is refused although enough frames are free, while vmalloc serves the same bytes from single frames mapped contiguously in its own address space.",
            &Grid { columns: 1, cell: (900, 320), charts },
            false,
        )
        .map(Some)
}
