//! `heaplab run --threads`: real threads on the layers and the thread-safe
//! peers, a threads column in every file, exact deterministic figures,
//! compare pairing by thread count, the scaling section of the report.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

fn column(path: &Path, name: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let index = reader.headers().unwrap().iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    reader.records().map(|r| r.unwrap()[index].to_string()).collect()
}

const CACHED: &str = "cached:mag=64,depot=4,max=1K/segregated:kind=tlsf,sl=5";
const LOCKED: &str = "locked/segregated:kind=tlsf,sl=5";

fn run_threads(out: &Path, name: &str, extra: &[&str]) {
    heaplab()
        .args(["run", "--alloc", CACHED, "--alloc", LOCKED, "--alloc", "peer:glibc"])
        .args(["--workload", "larson-mt:chunks=200,rounds=2", "--workload", "xmalloc:batch=64,batches=4"])
        .args(["--threads", "1,2", "--reps", "2", "--processes", "1", "--warmup", "1", "--quiet"])
        .args(extra)
        .args(["--out", out.to_str().unwrap(), "--name", name])
        .assert()
        .success();
}

#[test]
fn a_run_on_threads_measures_every_thread_count_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    run_threads(dir.path(), "t", &[]);
    let results = dir.path().join("t");
    let summary = results.join("summary.csv");
    let threads = column(&summary, "threads");
    assert_eq!(threads.len(), 2 * 2 * 3, "2 workloads × 2 thread counts × 3 allocators");
    assert_eq!(threads.iter().filter(|t| *t == "2").count(), 6);
    // Every file has the column.
    for file in ["timeseries.csv", "throughput.csv", "latency.csv", "details.csv"] {
        let values = column(&results.join(file), "threads");
        assert!(values.iter().any(|t| t == "2"), "{file} has no row of 2 threads");
    }
    // Every cell was timed on its threads.
    assert!(column(&summary, "ops_per_sec").iter().all(|v| v.parse::<f64>().unwrap() > 0.0));
    // xmalloc at 2 threads frees only the other thread's blocks; at 1, none.
    let workloads = column(&summary, "workload");
    let remote = column(&summary, "remote_free_pct");
    for ((workload, threads), remote) in workloads.iter().zip(&threads).zip(&remote) {
        if workload.starts_with("xmalloc") {
            assert_eq!(remote, if threads == "2" { "100.0" } else { "0.0" }, "{workload} on {threads}");
        }
    }
    // The caching layer's cached bytes stay within its bound, and only it has them.
    let allocators = column(&summary, "allocator");
    let (cached, bound) = (column(&summary, "peak_cached_bytes"), column(&summary, "cache_bound_bytes"));
    for ((allocator, cached), bound) in allocators.iter().zip(&cached).zip(&bound) {
        if allocator == CACHED {
            let (cached, bound): (u64, u64) = (cached.parse().unwrap(), bound.parse().unwrap());
            assert!(cached > 0 && cached <= bound, "{cached} cached of a bound of {bound}");
        } else {
            assert!(cached.is_empty() && bound.is_empty(), "{allocator} has cached bytes");
        }
    }
    let meta = std::fs::read_to_string(results.join("meta.json")).unwrap();
    assert!(meta.contains("\"threads\": [\n      1,\n      2\n    ]") || meta.contains("\"threads\":[1,2]"), "{meta}");
}

#[test]
fn the_deterministic_pass_on_threads_is_the_same_on_every_run() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        heaplab()
            .args(["run", "--metrics-only", "--alloc", CACHED, "--alloc", LOCKED])
            .args(["--workload", "larson-mt:chunks=300,rounds=2", "--threads", "1,2,3", "--quiet"])
            .args(["--out", dir.path().to_str().unwrap(), "--name", name])
            .assert()
            .success();
    }
    heaplab()
        .args(["compare"])
        .arg(dir.path().join("a"))
        .arg(dir.path().join("b"))
        .assert()
        .success()
        .stdout(predicate::str::contains("0 changed"));
    let summary = dir.path().join("a/summary.csv");
    assert_eq!(column(&summary, "threads"), ["1", "1", "2", "2", "3", "3"]);
}

#[test]
fn compare_pairs_rows_by_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    run_threads(dir.path(), "p", &["--no-latency"]);
    heaplab()
        .args(["compare"])
        .arg(dir.path().join("p"))
        .args(["--ours", CACHED, "--peer", LOCKED])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 threads").and(predicate::str::contains("(seed 1)")));
}

#[test]
fn the_report_shows_scaling_and_blowup() {
    let dir = tempfile::tempdir().unwrap();
    run_threads(dir.path(), "r", &["--no-latency"]);
    let out = dir.path().join("report");
    heaplab().arg("report").arg(dir.path().join("r")).arg("-o").arg(&out).assert().success();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("Throughput against threads"), "no scaling chart");
    assert!(html.contains("Blowup"), "no blowup chart");
    assert!(html.contains("(2 threads)"), "no section per thread count");
    assert!(
        out.join("charts").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("scaling"))
    );
}

#[test]
fn a_single_threaded_allocator_on_threads_is_refused_with_the_way_out() {
    heaplab()
        .args(["run", "--metrics-only", "--alloc", "segregated:kind=tlsf,sl=5", "--workload", "threadtest"])
        .args(["--threads", "2", "--quiet", "--out", "/nonexistent/never"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not thread-safe").and(predicate::str::contains("locked/SPEC")));
    // One thread is fine: a multithreaded workload on one thread.
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args([
            "run",
            "--metrics-only",
            "--alloc",
            "segregated:kind=tlsf,sl=5",
            "--workload",
            "threadtest:iterations=2",
        ])
        .args(["--quiet", "--out", dir.path().to_str().unwrap(), "--name", "one"])
        .assert()
        .success();
}

#[test]
fn bad_thread_counts_and_layers_say_what_was_expected() {
    for (args, expected) in [
        (vec!["--threads", "0"], "expected thread counts such as 1,2,4"),
        (vec!["--threads", "two"], "expected thread counts such as 1,2,4"),
        (vec!["--threads", "1..=5000"], "each from 1 to 4096"),
        (vec!["--alloc", "locked"], "a layer goes over an allocator"),
        (vec!["--alloc", "cached:mag=0/buddy"], "`mag` must be between 1 and 4096"),
        (vec!["--alloc", "locked/peer:glibc"], "cannot go under a layer"),
        (vec!["--alloc", "locked/cached/buddy"], "one layer at a time"),
    ] {
        heaplab()
            .args(["run", "--metrics-only", "--workload", "threadtest", "--quiet"])
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected));
    }
}

/// The bundled recording of a two-threaded program.
const RECORDED: &str = "trace:python-threads";

/// `trace info`'s count of cross-thread frees: `(remote, frees)`.
fn remote_frees_per_trace_info(workload: &str) -> (u64, u64) {
    let out = heaplab().args(["trace", "info", workload]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("threads      2 "), "two threads:\n{text}");
    let line = text.lines().find(|l| l.starts_with("remote")).unwrap_or_else(|| panic!("no remote line:\n{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |word: &str| word.replace(',', "").parse::<u64>().unwrap();
    (number(words[1]), number(words[3]))
}

#[test]
fn a_recorded_multithreaded_trace_replays_on_its_threads_on_every_thread_safe_allocator() {
    let (remote, frees) = remote_frees_per_trace_info(RECORDED);
    assert!(remote > frees / 20, "the recording has cross-thread frees: {remote} of {frees}");
    let dir = tempfile::tempdir().unwrap();
    let allocators = [CACHED, LOCKED, "cached/buddy", "locked/slab", "peer:glibc", "peer:mimalloc", "peer:jemalloc"];
    let mut run = heaplab();
    run.args(["run", "--workload", RECORDED, "--threads", "1,2", "--reps", "1", "--processes", "1"]);
    for allocator in allocators {
        run.args(["--alloc", allocator]);
    }
    run.args(["--warmup", "0", "--quiet", "--out", dir.path().to_str().unwrap(), "--name", "r"]).assert().success();
    let summary = dir.path().join("r/summary.csv");
    let threads = column(&summary, "threads");
    let pct = column(&summary, "remote_free_pct");
    assert_eq!(threads.len(), 2 * allocators.len());
    // The replay on the recorded threads counts the cross-thread frees as
    // trace info does; on one thread (the recorded order) there are none.
    let expected = 100.0 * remote as f64 / frees as f64;
    for (threads, pct) in threads.iter().zip(&pct) {
        let pct: f64 = pct.parse().unwrap();
        assert_eq!(pct, if threads == "2" { expected } else { 0.0 }, "on {threads} threads");
    }
    assert!(column(&summary, "ops_per_sec").iter().all(|v| v.parse::<f64>().unwrap() > 0.0));
}

#[test]
fn a_recorded_trace_takes_its_thread_count_or_a_multiple() {
    heaplab()
        .args(["run", "--workload", RECORDED, "--alloc", LOCKED, "--threads", "3", "--metrics-only", "--quiet"])
        .args(["--out", tempfile::tempdir().unwrap().path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("recorded on 2 threads").and(predicate::str::contains("not on 3")));
}
