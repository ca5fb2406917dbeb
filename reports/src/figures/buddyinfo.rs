//! A buddy level's own figures when requested bytes peaked: `/proc/buddyinfo`
//! (free blocks per order, every order, empty ones included) and the two
//! indices the kernel derives from it per order (`unusable_free_index` and
//! `fragmentation_index`, mm/vmstat.c, shown in
//! /sys/kernel/debug/extfrag/), for `buddy`, `slab`'s page level and any
//! allocator that reports a `buddyinfo` table.

use super::Group;
use super::free_blocks::short_size;
use crate::charts::{Bars, Grid, Lines};
use crate::{Figure, ReportError, Writer};

/// One order of a buddy level: (order, block bytes, nr_free, unusable
/// free index, fragmentation index).
type Order = (u32, f64, f64, f64, f64);

/// The `buddyinfo` rows of one allocator, by order.
fn orders(group: &Group<'_>, allocator: &str) -> Vec<Order> {
    let mut orders: Vec<Order> = group
        .details(allocator, "buddyinfo")
        .iter()
        .filter_map(|(row, c)| {
            let order = row.strip_prefix("order ")?.parse().ok()?;
            let get = |key: &str| c.get(key).copied().unwrap_or(f64::NAN);
            Some((order, get("block_bytes"), get("nr_free"), get("unusable_free_index"), get("fragmentation_index")))
        })
        .collect();
    // Rows sort as text ("order 10" before "order 2"): by number.
    orders.sort_by_key(|o| o.0);
    orders
}

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let levels: Vec<(String, Vec<Order>)> = group
        .allocators()
        .map(|(a, l)| (l.clone(), orders(group, a)))
        .filter(|(_, orders)| !orders.is_empty())
        .collect();
    if levels.is_empty() {
        return Ok(None);
    }
    let top = levels.iter().flat_map(|(_, o)| o.iter().map(|o| o.2)).fold(0.0, f64::max);
    let charts: Vec<Bars> = levels
        .iter()
        .map(|(label, orders)| Bars {
            title: format!("{label}: /proc/buddyinfo"),
            y_label: "nr_free (free blocks)".into(),
            x_label: Some(format!(
                "order (order 0: {} blocks, order {}: {})",
                short_size(orders[0].1 as u64),
                orders[orders.len() - 1].0,
                short_size(orders[orders.len() - 1].1 as u64)
            )),
            y_max: Some(top),
            color: Some(crate::charts::PALETTE[2]),
            bars: orders.iter().map(|o| (o.0.to_string(), o.2, None)).collect(),
        })
        .collect();
    let figure = writer.figure(
        &group.file("buddyinfo"),
        "Free blocks per order when requested bytes peaked (/proc/buddyinfo)",
        "nr_free per order, every order from 0 to the top one, empty ones included, at the sample where R was largest: the free_area counts /proc/buddyinfo prints. The indices per order are in the next figure.",
        &Grid { columns: charts.len().min(2), charts, cell: (900, 420) },
        false,
    )?;
    Ok(Some(figure))
}

pub(crate) fn indices(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let charts: Vec<Lines> = group
        .allocators()
        .map(|(a, l)| (l.clone(), orders(group, a)))
        .filter(|(_, orders)| !orders.is_empty())
        .map(|(label, orders)| Lines {
            title: format!("{label}: extfrag indices"),
            x_label: "order".into(),
            y_label: "index (0 to 1)".into(),
            series: vec![
                ("unusable free index".into(), orders.iter().map(|o| (f64::from(o.0), o.3)).collect()),
                // -1: a free block of that order exists, the index does not apply.
                (
                    "fragmentation index".into(),
                    orders.iter().filter(|o| o.4 >= 0.0).map(|o| (f64::from(o.0), o.4)).collect(),
                ),
            ],
            log_y: false,
            thin: Vec::new(),
            x_ticks: None,
            y_max: Some(1.0),
            pixels: (600, 340),
        })
        .collect();
    if charts.is_empty() {
        return Ok(None);
    }
    writer
        .figure(
            &group.file("extfrag"),
            "Unusable free space and fragmentation index per order when requested bytes peaked",
            "As mm/vmstat.c computes them from the free_area counts (/sys/kernel/debug/extfrag/): the unusable free index of order k is the share of free bytes in blocks smaller than 2^k pages, which a request of order k cannot use (0: all usable, 1: none); the fragmentation index of order k, for an order with no free block, says whether a failed request of that order lacks memory (towards 0) or contiguity (towards 1). Orders that have a free block have no fragmentation index (the kernel's −1) and are left out of its line.",
            &Grid { columns: charts.len().min(2), charts, cell: (600, 340) },
            false,
        )
        .map(Some)
}

pub(crate) fn indices_over_time(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let mut charts: Vec<Lines> = Vec::new();
    let mut most_orders = 0;
    for (allocator, label) in group.allocators() {
        let orders = orders(group, allocator);
        most_orders = most_orders.max(orders.len() as u32);
        let over_time = |index: &str, title: &str| Lines {
            title: format!("{label}: {title} over time"),
            x_label: "op".into(),
            y_label: "index (0 to 1)".into(),
            series: orders
                .iter()
                .map(|o| {
                    let name = format!("order {} ({})", o.0, short_size(o.1 as u64));
                    (name, group.series(allocator, &format!("{index}_order_{}", o.0)))
                })
                .collect(),
            log_y: false,
            thin: Vec::new(),
            x_ticks: None,
            y_max: Some(1.0),
            pixels: (600, 380),
        };
        let pair = [
            over_time("unusable_free_index", "unusable free index"),
            over_time("fragmentation_index", "fragmentation index"),
        ];
        // Results from before the indices were sampled have no series.
        if pair[0].series.iter().any(|(_, s)| !s.is_empty()) {
            charts.extend(pair);
        }
    }
    if charts.is_empty() {
        return Ok(None);
    }
    writer
        .figure(
            &group.file("extfrag-over-time"),
            "Unusable free space and fragmentation index per order over time",
            "The same two indices at every sample of the metrics pass, one line an order. The fragmentation index of an order has no point at a sample where a block of that order is free (the kernel's −1: no index).",
            // Tall enough for a legend entry per order (18 pixels each, from 40).
            &Grid { columns: 2, charts, cell: (600, 380.max(60 + 18 * most_orders)) },
            false,
        )
        .map(Some)
}
