//! `heaplab report` and `heaplab heapmap`: every chart kind, from a small
//! results fixture made by a real run.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

fn assert_svg(path: &Path, names: &[&str]) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.trim_start().starts_with("<svg") && text.trim_end().ends_with("</svg>"),
        "{} is not an SVG document",
        path.display()
    );
    for name in names {
        assert!(text.contains(name), "{} does not name `{name}`", path.display());
    }
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    // Width and height from the IHDR chunk.
    let (width, height) =
        (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    assert!(width >= 400 && height >= 200, "{}: {width}×{height}", path.display());
}

#[test]
fn the_report_draws_every_chart_kind_with_its_series() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["run", "--quiet", "--reps", "2", "--frames", "16", "--points", "40", "--name", "fixture", "--out"])
        .arg(dir.path())
        .args(["--alloc", "freelist", "--alloc", "buddy", "--alloc", "slab", "--workload", "kmalloc-mix:ops=3000"])
        .assert()
        .success();
    let out = dir.path().join("report");
    heaplab()
        .args(["report"])
        .arg(dir.path().join("fixture"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("index.html"));
    let charts = out.join("charts");
    let kinds: [(&str, &[&str]); 7] = [
        ("throughput", &["freelist", "buddy", "slab", "million ops per second"]),
        ("latency", &["alloc latency", "free latency", "p99.9", "buddy"]),
        ("memory", &["requested R", "granted G", "footprint H"]),
        ("fragmentation", &["internal (G−R)/G", "external 1−L/F", "slab"]),
        ("heapmap", &["arena offset (KiB)", "freelist"]),
        ("free-blocks", &["free blocks", "buddy"]),
        ("slab", &["cache efficiency", "%Ef"]),
    ];
    for (kind, names) in kinds {
        let stem = format!("01-kmalloc-mix-ops-3000-seed-1-{kind}");
        assert_svg(&charts.join(format!("{stem}.svg")), names);
        assert_png(&charts.join(format!("{stem}.png")));
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("heaplab run --from") && html.contains("<svg") && html.contains("data:image/png;base64,"));
    assert!(html.contains("(G − R)/G"), "the metric definitions are in the report");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        markdown.contains("| allocator | Mops/s |")
            && markdown.contains("](charts/01-kmalloc-mix-ops-3000-seed-1-throughput.svg)")
    );
}

#[test]
fn heapmap_draws_the_fragmenter_holes_block_by_block() {
    let dir = tempfile::tempdir().unwrap();
    let (map, over_time) = (dir.path().join("map.svg"), dir.path().join("run.png"));
    heaplab()
        .args(["heapmap", "--alloc", "freelist", "--workload", "fragmenter:live=8K", "--at", "192", "-o"])
        .arg(&map)
        .arg("--over-time")
        .arg(&over_time)
        .assert()
        .success()
        // 128 blocks of 80 bytes do not quite fit the 10 KiB arena (16 bytes
        // of it are metadata): 127 are allocated, 64 freed, 63 stay.
        .stdout(predicate::str::contains("after op 192: 63 live blocks, 64 free blocks"));
    // Live 64-byte payloads and the 80-byte holes between them, labelled.
    assert_svg(&map, &["after op 192"]);
    let words = std::fs::read_to_string(&map).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("> 64 </text>") && words.contains("> 80 </text>"), "block sizes are labelled");
    assert_png(&over_time);
    heaplab()
        .args(["heapmap", "--alloc", "buddy", "--workload", "ramp:ops=100", "--at", "101"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--at must be from 1 to 100"));
    heaplab().args(["report", "nowhere"]).assert().code(2).stderr(predicate::str::contains("nowhere/meta.json"));
}

/// A workload run with several seeds gets its figures across seeds: the
/// mean, the sample standard deviation and the t interval of each, and
/// bars with the interval; past 8 seeds, per-seed sections stop.
#[test]
fn figures_across_seeds_are_the_mean_with_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["run", "--metrics-only", "--quiet", "--name", "seeds", "--out"])
        .arg(dir.path())
        .args(["--alloc", "buddy", "--alloc", "freelist", "--workload", "ramp:ops=2000", "--seeds", "1..=10"])
        .assert()
        .success();
    let out = dir.path().join("report");
    heaplab().arg("report").arg(dir.path().join("seeds")).arg("--out").arg(&out).assert().success();
    // The buddy system's utilization over the ten seeds, from summary.csv.
    let mut reader = csv::Reader::from_path(dir.path().join("seeds/summary.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (allocator, utilization) = (column("allocator"), column("utilization_pct"));
    let values: Vec<f64> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r[allocator].starts_with("buddy"))
        .map(|r| r[utilization].parse().unwrap())
        .collect();
    assert_eq!(values.len(), 10);
    let mean = values.iter().sum::<f64>() / 10.0;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 9.0).sqrt();
    let half = 2.262 * sd / 10f64.sqrt();
    let cell = format!("{mean:.2} ± {sd:.2} [{:.2}, {:.2}]", mean - half, mean + half);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("across 10 seeds") && html.contains(&cell), "{cell} not in the report");
    assert!(html.contains("Student&#x27;s t") || html.contains("Student's t"));
    assert_eq!(html.matches("<h2 id=").count(), 1 + 8, "the across-seeds section and 8 per-seed sections");
    assert_svg(&out.join("charts/seeds-01-ramp-ops-2000-utilization.svg"), &["utilization across seeds", "buddy"]);
}
