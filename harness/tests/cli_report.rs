//! `heaplab report` and `heaplab heapmap`: every chart kind, from a small
//! results fixture made by a real run.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

mod browser;

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
    let kinds: [(&str, &[&str]); 10] = [
        ("throughput", &["freelist", "buddy", "slab", "million ops per second"]),
        ("latency", &["alloc latency", "free latency", "p99.9", "buddy"]),
        ("memory", &["requested R", "granted G", "footprint H"]),
        (
            "fragmentation",
            &[
                "internal (G−R)/G",
                "external 1−L/F",
                "below the footprint H",
                "unusable free share at the p99 request",
                "slab",
            ],
        ),
        ("heapmap", &["arena offset (KiB)", "freelist"]),
        ("free-blocks", &["free blocks", "buddy"]),
        ("slab", &["cache efficiency", "%Ef", "kmalloc-64: "]),
        ("buddyinfo", &["buddy: /proc/buddyinfo", "slab: /proc/buddyinfo", "nr_free"]),
        ("extfrag", &["unusable free index", "fragmentation index"]),
        (
            "extfrag-over-time",
            &["buddy: unusable free index over time", "slab: fragmentation index over time", "order 0"],
        ),
    ];
    for (kind, names) in kinds {
        let stem = format!("01-kmalloc-mix-ops-3000-seed-1-{kind}");
        assert_svg(&charts.join(format!("{stem}.svg")), names);
        assert_png(&charts.join(format!("{stem}.png")));
    }
    // Every order of the buddy system has its bar, empty ones included:
    // as many labels as details.csv has orders for it.
    let details = std::fs::read_to_string(dir.path().join("fixture/details.csv")).unwrap();
    let orders = details
        .lines()
        .filter(|l| l.starts_with("\"buddy:") && l.contains(",buddyinfo,") && l.ends_with(",nr_free,0.0"))
        .count();
    assert!(orders > 0, "the fixture's buddy has empty orders at the peak");
    let svg = std::fs::read_to_string(charts.join("01-kmalloc-mix-ops-3000-seed-1-buddyinfo.svg")).unwrap();
    let texts: Vec<&str> =
        svg.split("<text").skip(1).map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim()).collect();
    let top: usize = details
        .lines()
        .filter(|l| l.starts_with("\"buddy:") && l.contains(",buddyinfo,order "))
        .map(|l| l.split(",order ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap())
        .max()
        .unwrap();
    for order in 0..=top {
        assert!(texts.contains(&order.to_string().as_str()), "order {order} has no bar label in {texts:?}");
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    // The page links its charts: the SVG, or the PNG of a dense picture.
    assert!(
        html.contains("heaplab run --from")
            && html.contains("src=\"charts/01-kmalloc-mix-ops-3000-seed-1-memory.svg\"")
    );
    assert!(html.contains("src=\"charts/01-kmalloc-mix-ops-3000-seed-1-heapmap.png\""));
    assert!(html.contains("(G − R)/G"), "the metric definitions are in the report");
    // /proc/slabinfo as a table under the slab chart.
    assert!(html.contains("<th>objs/slab</th>") && html.contains("<td>kmalloc-64</td>"), "no slabinfo table");
    for fact in ["kernel", "transparent huge pages", "CPU flags", "Cargo.lock SHA-256", "working tree", "ticks"] {
        assert!(html.contains(fact), "the report shows the machine's `{fact}`");
    }
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        markdown.contains("| allocator | Mops/s ± CI |")
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
    assert!(words.contains("live payload (requested bytes)"), "the legend is inside the picture");
    assert!(words.contains("above the footprint: never used"), "the whole arena, the footprint apart");
    assert_png(&over_time);
    // A refused request is annotated, on the picture and in what is printed.
    let refused = dir.path().join("refused.png");
    heaplab()
        .args(["heapmap", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "--at", "193", "-o"])
        .arg(&refused)
        .assert()
        .success()
        .stdout(predicate::str::contains("op 193: alloc 4.00 KiB → refused: 6.00 KiB free in 65 holes"));
    assert_png(&refused);
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

#[test]
fn export_writes_json_csv_markdown_and_latex_and_the_aggregate_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("seeds");
    heaplab()
        .args(["run", "--metrics-only", "--quiet", "--seeds", "1..=3", "--name", "seeds", "--out"])
        .arg(dir.path())
        .args(["--alloc", "buddy:min=4K,max_order=10", "--alloc", "freelist:fit=best", "--workload", "ramp:ops=2000"])
        .arg("--export")
        .arg(dir.path().join("from-run.json"))
        .assert()
        .success()
        .stderr(predicate::str::contains("exported the summary to"));
    let export = |args: &[&str]| {
        let output = heaplab().arg("export").arg(&run).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    // Markdown (the default): short specs, units in the header, numbers right.
    let markdown = export(&[]);
    assert!(markdown.starts_with("| allocator | workload | seed | int. frag. (%) |"), "{markdown}");
    assert!(markdown.contains("\n|:---|:---|---:|"), "{markdown}");
    assert!(markdown.contains("| buddy:min=4K,max_order=10 | ramp:ops=2000 | 2 |"), "{markdown}");
    let aggregate = export(&["--aggregate"]);
    assert!(aggregate.contains("| allocator | workload | seeds |") && aggregate.contains(" ± "), "{aggregate}");
    assert_eq!(aggregate.lines().filter(|l| l.starts_with("| freelist")).count(), 1, "{aggregate}");
    // LaTeX: booktabs, the special characters escaped.
    let latex = export(&["--format", "latex", "--aggregate"]);
    assert!(latex.contains("\\begin{tabular}{llrrrrrr}") && latex.contains("\\toprule"), "{latex}");
    assert!(latex.contains("buddy:min=4K,max\\_order=10") && latex.contains("util. (\\%)"), "{latex}");
    assert!(latex.contains("$\\pm$") && latex.trim_end().ends_with("\\end{tabular}"), "{latex}");
    // JSON: versioned, raw values, both the rows and the aggregate.
    let json: serde_json::Value = serde_json::from_str(&export(&["--format", "json"])).unwrap();
    assert_eq!((json["schema"].as_str(), json["schema_version"].as_u64()), (Some("heaplab-export"), Some(1)));
    assert_eq!(json["rows"].as_array().unwrap().len(), 6);
    let first = &json["aggregate"]["rows"][0];
    assert_eq!(
        (first["seeds"].as_u64(), first["allocator"].as_str()),
        (Some(3), Some("buddy:min=4K,max_order=10,split=lower"))
    );
    assert!(first["figures"]["utilization_pct"]["sd"].is_number(), "{first}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("from-run.json")).unwrap()).unwrap();
    assert_eq!(written["rows"], json["rows"], "run --export writes what export writes");
    // CSV with named columns, raw.
    let csv = export(&["--format", "csv", "--columns", "allocator,seed,utilization_pct"]);
    assert_eq!(csv.lines().next(), Some("allocator,seed,utilization_pct"));
    assert_eq!(csv.lines().count(), 7, "{csv}");
    // To a file by its extension; an unknown extension or column is refused.
    export(&["-o", dir.path().join("t.tex").to_str().unwrap()]);
    assert!(std::fs::read_to_string(dir.path().join("t.tex")).unwrap().contains("\\bottomrule"));
    heaplab()
        .arg("export")
        .arg(&run)
        .arg("-o")
        .arg(dir.path().join("t.txt"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot tell the format"));
    assert!(!dir.path().join("t.txt").exists());
    heaplab()
        .arg("export")
        .arg(&run)
        .args(["--columns", "utilizaton_pct"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `utilization_pct`"));
    heaplab()
        .args(["run", "--export", "x.pdf", "--metrics-only"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("end it in .json, .csv, .md or .tex"));
}

/// The report of a run with a wide table, opened in a real headless
/// Chromium: at 1024 pixels nothing reaches past the page and every chart
/// loads (the page measures itself into `#layout-check`); printed to PDF,
/// every table keeps its last column (poppler's `pdftotext`); and the page
/// stays small, its charts linked, not inlined.
#[test]
fn the_report_fits_1024_pixels_loads_every_chart_and_prints_whole_tables() {
    let dir = tempfile::tempdir().unwrap();
    let allocators = ["buddy", "slab", "freelist", "segregated", "peer:buddy-slab", "peer:glibc"];
    let mut run = heaplab();
    run.args(["run", "--quiet", "--reps", "2", "--no-latency", "--arena", "16M", "--name", "wide", "--out"])
        .arg(dir.path());
    for allocator in allocators {
        run.args(["--alloc", allocator]);
    }
    run.args(["--workload", "kmalloc-mix:ops=2000", "--workload", "fragmenter:live=8K", "--workload", "trace:jq"])
        .assert()
        .success();
    let out = dir.path().join("report");
    heaplab().arg("report").arg(dir.path().join("wide")).arg("--out").arg(&out).assert().success();
    let page = out.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let cells = allocators.len() * 3;
    // At most 2 MiB for 100 cells.
    assert!(html.len() <= cells * 20 * 1024, "index.html is {} bytes for {cells} cells", html.len());
    for caveat in ["peer:buddy-slab: its buddy hands out pages from the top", "buddy, slab: a buddy level starts"] {
        assert!(html.contains(caveat), "no caveat `{caveat}`");
    }
    assert!(html.contains("<h2>Workloads</h2>") && html.contains("<h2 id=\"w0\">Across workloads</h2>"));
    // A synthetic spec in full under its short heading; a bundled trace's name once.
    assert!(html.contains("<p><small>kmalloc-mix:ops=2000,live="), "the full spec under the heading");
    assert!(
        html.contains(">trace:jq</h2>") && !html.contains("<p><small>trace:jq</small></p>"),
        "trace:jq named twice"
    );
    // Across workloads: slab's utilization over buddy's, from summary.csv.
    let mut reader = csv::Reader::from_path(dir.path().join("wide/summary.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (allocator, workload, utilization) = (column("allocator"), column("workload"), column("utilization_pct"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let of = |family: &str, w: &str| -> f64 {
        let row = records.iter().find(|r| r[allocator].split(':').next() == Some(family) && r[workload].starts_with(w));
        row.unwrap()[utilization].parse().unwrap()
    };
    let ratios = ["kmalloc-mix", "fragmenter", "trace:jq"].map(|w| of("slab", w) / of("buddy", w));
    let geomean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / 3.0).exp();
    let (low, high) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
    let cell = format!("{geomean:.2} [{low:.2}, {high:.2}] over 3");
    assert!(html.contains(&cell), "slab's utilization ÷ buddy's {cell}");
    // Another baseline by its label; an unknown one is refused and writes nothing.
    let other = dir.path().join("by-freelist");
    heaplab()
        .arg("report")
        .arg(dir.path().join("wide"))
        .args(["--baseline-alloc", "freelist", "--out"])
        .arg(&other)
        .assert()
        .success();
    assert!(std::fs::read_to_string(other.join("index.html")).unwrap().contains("divided by freelist's"));
    let refused = dir.path().join("refused");
    heaplab()
        .arg("report")
        .arg(dir.path().join("wide"))
        .args(["--baseline-alloc", "nosuch", "--out"])
        .arg(&refused)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--baseline-alloc nosuch: the run has no such allocator; it has buddy"));
    assert!(!refused.exists());

    let dom = browser::dump_dom(&page, "", &["--window-size=1024,800"]);
    let start = dom.find("<div id=\"layout-check\"").expect("the page measured itself");
    let tag = &dom[start..start + dom[start..].find('>').unwrap()];
    let attribute = |name: &str| -> String {
        let from =
            tag.find(&format!("data-{name}=\"")).unwrap_or_else(|| panic!("no data-{name} in {tag}")) + name.len() + 7;
        tag[from..from + tag[from..].find('"').unwrap()].to_string()
    };
    let width: u32 = attribute("width").parse().unwrap();
    assert!((990..=1024).contains(&width), "the page was laid out {width} pixels wide");
    assert_eq!(attribute("overflowing"), "0", "elements past 1024 pixels: {}", attribute("first"));
    let images: usize = attribute("images").parse().unwrap();
    assert_eq!(images, html.matches("<img ").count());
    assert!(images >= 3 * 9, "{images} charts");
    assert_eq!(attribute("broken"), "0", "charts that did not load");

    let pdf = dir.path().join("report.pdf");
    browser::headless(&page, "", &["--no-pdf-header-footer", &format!("--print-to-pdf={}", pdf.display())]);
    let text = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (Debian's poppler-utils, which .ci/run installs)");
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    // Every allocator's row in each workload's table ends with its last
    // column, the failed allocations: `N (M)`.
    for label in ["buddy", "slab", "freelist", "segregated", "peer:buddy-slab", "peer:glibc"] {
        let whole_rows = text
            .lines()
            .filter(|line| line.split_whitespace().next() == Some(label))
            .filter(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                words.len() >= 3
                    && words[words.len() - 2].parse::<u64>().is_ok()
                    && words[words.len() - 1].starts_with('(')
                    && words[words.len() - 1].ends_with(')')
            })
            .count();
        assert!(whole_rows >= 3, "{label}: {whole_rows} whole rows in the printed tables\n{text}");
    }
    // The last column's heading is printed as often as there are workload tables.
    assert!(text.matches("(frag)").count() >= 3);
}
