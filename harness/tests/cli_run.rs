//! `heaplab run`: determinism, agreement with `trace info`, failures,
//! bad input, repeating a run from its meta.json.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

/// The deterministic columns of a summary.csv: everything but timings.
fn deterministic(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let timed = |name: &str| {
        name.ends_with("_ns")
            || name.starts_with("ops_per_sec")
            || name.ends_with("_seconds")
            || name == "reps"
            || name == "passes_per_rep"
    };
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .zip(record.iter())
                .filter(|(name, _)| !timed(name))
                .map(|(_, value)| value.to_string())
                .collect()
        })
        .collect()
}

fn column(path: &Path, name: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let index = reader.headers().unwrap().iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    reader.records().map(|r| r.unwrap()[index].to_string()).collect()
}

const SMALL: &[&str] = &[
    "run",
    "--metrics-only",
    "--alloc",
    "buddy",
    "--alloc",
    "freelist:fit=first",
    "--alloc",
    "slab",
    "--workload",
    "ramp:ops=3000",
    "--workload",
    "fragmenter:live=64K",
    "--seeds",
    "1,2",
    "--quiet",
];

#[test]
fn two_runs_give_identical_deterministic_results() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        heaplab().args(SMALL).args(["--name", name, "--out"]).arg(dir.path()).assert().success();
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let rows = deterministic(&a.join("summary.csv"));
    assert_eq!(rows.len(), 3 * (2 + 1), "3 allocators × (ramp × 2 seeds + fragmenter)");
    assert_eq!(rows, deterministic(&b.join("summary.csv")));
    assert_eq!(std::fs::read(a.join("timeseries.csv")).unwrap(), std::fs::read(b.join("timeseries.csv")).unwrap());
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(a.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["status"], "complete");
    assert_eq!(meta["cells_finished"], 9);
    assert_eq!(meta["schema_version"], 1);
}

#[test]
fn a_run_repeats_from_its_meta_json() {
    let dir = tempfile::tempdir().unwrap();
    heaplab().args(SMALL).args(["--name", "first", "--out"]).arg(dir.path()).assert().success();
    let meta = dir.path().join("first/meta.json");
    heaplab()
        .args(["run", "--quiet", "--name", "again", "--from"])
        .arg(&meta)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    assert_eq!(
        deterministic(&dir.path().join("first/summary.csv")),
        deterministic(&dir.path().join("again/summary.csv"))
    );
    heaplab()
        .args(["run", "--reps", "3", "--from"])
        .arg(&meta)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

#[test]
fn settings_this_build_does_not_know_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    heaplab().args(SMALL).args(["--name", "first", "--out"]).arg(dir.path()).assert().success();
    let text = std::fs::read_to_string(dir.path().join("first/meta.json")).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    // What a later build with a `threads` setting would write, and one with
    // a newer settings version.
    let later = dir.path().join("later.json");
    for (key, value, error) in
        [("numa_nodes", 4, "setting `numa_nodes`"), ("settings_version", 99, "settings version 99 is newer")]
    {
        meta["settings"][key] = serde_json::json!(value);
        std::fs::write(&later, serde_json::to_string(&meta).unwrap()).unwrap();
        heaplab()
            .args(["run", "--quiet", "--out"])
            .arg(dir.path())
            .arg("--from")
            .arg(&later)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(error));
    }
}

#[test]
fn peak_requested_bytes_agree_with_trace_info() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.hlt");
    heaplab().args(["trace", "gen", "mixed-sizes:ops=4000", "--seed", "3", "-o"]).arg(&trace).assert().success();
    let info = heaplab().args(["trace", "info"]).arg(&trace).output().unwrap();
    let info = String::from_utf8(info.stdout).unwrap();
    let line = info.lines().find(|l| l.starts_with("peak live")).unwrap();
    let bytes: String = line.split('(').nth(1).unwrap().chars().take_while(|c| c.is_ascii_digit()).collect();
    heaplab()
        .args(["run", "--metrics-only", "--quiet", "--alloc", "freelist:*", "--name", "r", "--workload"])
        .arg(&trace)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let summary = dir.path().join("r/summary.csv");
    assert!(column(&summary, "failed_allocs").iter().all(|f| f == "0"));
    for peak in column(&summary, "peak_requested_bytes") {
        assert_eq!(peak, bytes);
    }
    assert!(column(&summary, "seed").iter().all(String::is_empty), "a trace file has no seed");
}

#[test]
fn an_exhausted_arena_records_failures_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args([
            "run",
            "--metrics-only",
            "--quiet",
            "--arena",
            "16K",
            "--alloc",
            "buddy",
            "--workload",
            "ramp:ops=4000",
            "--name",
            "x",
            "--out",
        ])
        .arg(dir.path())
        .assert()
        .success();
    let summary = dir.path().join("x/summary.csv");
    let failed: u64 = column(&summary, "failed_allocs")[0].parse().unwrap();
    let skipped: u64 = column(&summary, "skipped_ops")[0].parse().unwrap();
    assert!(failed > 0 && skipped > 0, "failed {failed}, skipped {skipped}");
    let oom: u64 = column(&summary, "out_of_memory_failures")[0].parse().unwrap();
    let fragmentation: u64 = column(&summary, "fragmentation_failures")[0].parse().unwrap();
    assert_eq!(oom + fragmentation, failed);
}

#[test]
fn a_malformed_trace_stops_the_run_before_any_result_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rep");
    std::fs::write(&bad, "1000\n1\n2\n1\na 0 10\nf 0 0\n").unwrap();
    let out = dir.path().join("results");
    heaplab()
        .args(["run", "--metrics-only", "--alloc", "buddy", "--workload"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.rep:6: expected an op line"))
        .stderr(predicate::str::contains("panicked").not());
    assert!(!out.exists());
    heaplab()
        .args(["run", "--alloc", "nosuch"])
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the families are freelist, segregated, buddy"));
    heaplab().args(["run", "--workload", "ramp:sigma=x"]).arg("--out").arg(&out).assert().code(2);
    heaplab()
        .args(["run", "--arena", "12"])
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("too small"));
    assert!(!out.exists());
}

#[test]
fn a_timed_run_writes_throughput_and_latency_quietly_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args([
            "run",
            "--alloc",
            "bump",
            "--alloc",
            "buddy",
            "--workload",
            "larson:ops=2000",
            "--reps",
            "2",
            "--name",
            "t",
            "--out",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("larson:ops=2000 (seed 1)"))
        .stdout(predicate::str::contains("Mops/s"))
        .stderr(predicate::str::contains("ETA").not());
    let run = dir.path().join("t");
    assert_eq!(column(&run.join("throughput.csv"), "rep").len(), 4, "2 allocators × 2 reps");
    let kinds = column(&run.join("latency.csv"), "kind");
    assert!(kinds.iter().any(|k| k == "alloc") && kinds.iter().any(|k| k == "free"));
    for value in column(&run.join("summary.csv"), "ops_per_sec") {
        assert!(value.parse::<f64>().unwrap() > 0.0);
    }
    assert!(column(&run.join("summary.csv"), "alloc_p99_ns").iter().all(|v| !v.is_empty()));
    // The same name again is refused rather than overwritten.
    heaplab()
        .args(["run", "--metrics-only", "--alloc", "bump", "--name", "t", "--out"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already holds results"));
}

/// Repetitions spread over timing processes: each repetition says which
/// process ran it, the processes share out the repetitions evenly, and the
/// setting is kept in meta.json.
#[test]
fn repetitions_are_spread_over_timing_processes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, processes: &str| {
        heaplab()
            .args(["run", "--quiet", "--no-latency", "--alloc", "buddy", "--alloc", "bump"])
            .args(["--workload", "larson:ops=2000", "--reps", "5", "--processes", processes, "--name", name, "--out"])
            .arg(dir.path())
            .assert()
            .success();
        let path = dir.path().join(name);
        let processes = column(&path.join("throughput.csv"), "process");
        let reps = column(&path.join("throughput.csv"), "rep");
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path.join("meta.json")).unwrap()).unwrap();
        (processes, reps, meta["settings"]["processes"].clone())
    };
    let (processes, reps, setting) = run("spread", "2");
    assert_eq!(processes, ["0", "0", "0", "1", "1"].repeat(2), "5 repetitions over 2 processes, 2 allocators");
    assert_eq!(reps, ["0", "1", "2", "3", "4"].repeat(2));
    assert_eq!(setting, 2);
    // More processes than repetitions: one repetition each.
    let (processes, _, _) = run("one-each", "9");
    assert_eq!(processes, ["0", "1", "2", "3", "4"].repeat(2));
    let (processes, _, _) = run("here", "1");
    assert_eq!(processes, ["0"; 10]);
    // The deterministic columns do not depend on where the timing ran.
    assert_eq!(
        deterministic(&dir.path().join("spread/summary.csv")),
        deterministic(&dir.path().join("here/summary.csv"))
    );
}

/// The internal timing process refuses a plan it cannot read, like any
/// other bad input.
#[test]
fn a_timing_process_refuses_a_bad_plan() {
    heaplab()
        .arg("timing-process")
        .write_stdin("{\"settings\": 3}")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stdin:1: expected a timing plan"));
}

/// `--against`: the other build (here the same one) runs the same settings
/// in turns with this one and writes its own complete results beside.
#[test]
fn a_run_against_another_build_writes_both_result_sets() {
    let dir = tempfile::tempdir().unwrap();
    let exe = assert_cmd::cargo::cargo_bin("heaplab");
    heaplab()
        .args(["run", "--quiet", "--alloc", "buddy", "--alloc", "bump", "--workload", "larson:ops=2000"])
        .args(["--reps", "4", "--processes", "2", "--name", "mine", "--against"])
        .arg(&exe)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("compare them: heaplab compare"));
    for name in ["mine", "mine-base"] {
        let path = dir.path().join(name);
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["status"], "complete", "{name}");
        assert_eq!(column(&path.join("throughput.csv"), "process"), ["0", "0", "1", "1"].repeat(2), "{name}");
        assert!(!column(&path.join("latency.csv"), "kind").is_empty(), "{name}");
    }
    let base_meta = std::fs::read_to_string(dir.path().join("mine-base/meta.json")).unwrap();
    assert!(base_meta.contains("--take-turns") && base_meta.contains("mine/meta.json"), "{base_meta}");
    assert_eq!(
        deterministic(&dir.path().join("mine/summary.csv")),
        deterministic(&dir.path().join("mine-base/summary.csv"))
    );
    heaplab()
        .arg("compare")
        .arg(dir.path().join("mine-base"))
        .arg(dir.path().join("mine"))
        .assert()
        .stdout(predicate::str::contains("0 changed deterministic figures, 0 missing rows"));
}

/// `--against` something that is not heaplab stops before anything is written.
#[test]
fn a_run_against_a_stranger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (exe, message) in [("/bin/true", "expected a heaplab executable"), ("/no/such/heaplab", "cannot run it")] {
        heaplab()
            .args(["run", "--alloc", "bump", "--workload", "larson:ops=2000", "--name", "x", "--against", exe])
            .arg("--out")
            .arg(dir.path())
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
        assert!(!dir.path().join("x").exists());
    }
    // The other build's directory is taken: refused before anything runs.
    std::fs::create_dir_all(dir.path().join("y-base")).unwrap();
    std::fs::write(dir.path().join("y-base/meta.json"), "{}").unwrap();
    let exe = assert_cmd::cargo::cargo_bin("heaplab");
    heaplab()
        .args(["run", "--alloc", "bump", "--workload", "larson:ops=2000", "--name", "y", "--against"])
        .arg(&exe)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("y-base already holds results"));
    assert!(!dir.path().join("y").exists());
    heaplab()
        .args(["run", "--metrics-only", "--against", "/bin/true", "--out"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

#[test]
fn a_run_pins_its_traces_and_from_refuses_one_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |seed: &str| {
        heaplab()
            .current_dir(dir.path())
            .args(["trace", "gen", "ramp:ops=500", "--seed", seed, "-o", "t.rep"])
            .assert()
            .success();
    };
    generate("1");
    std::fs::write(dir.path().join("sizes.csv"), "size,weight\n16,3\n64,1\n").unwrap();
    heaplab()
        .current_dir(dir.path())
        .args(["run", "--metrics-only", "--quiet", "--alloc", "buddy", "--workload", "t.rep", "--workload", "trace:jq"])
        .args(["--workload", "empirical:file=sizes.csv,ops=300", "--name", "a", "--out", "results"])
        .assert()
        .success();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/a/meta.json")).unwrap()).unwrap();
    let inputs = meta["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 3, "the trace file, the bundled trace, the size table: {inputs:?}");
    assert!(inputs[2]["workload"].as_str().unwrap().starts_with("empirical:"), "{inputs:?}");
    assert_eq!(inputs[0]["workload"], "t.rep");
    assert_eq!(inputs[0]["sha256"].as_str().unwrap().len(), 64);
    assert!(!meta["system"]["kernel"].as_str().unwrap().is_empty());
    assert_eq!(meta["build"]["cargo_lock_sha256"].as_str().unwrap().len(), 64);
    // Moved beside its meta.json and repeated from elsewhere: found there.
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    std::fs::copy(dir.path().join("results/a/meta.json"), archive.join("meta.json")).unwrap();
    std::fs::copy(dir.path().join("t.rep"), archive.join("t.rep")).unwrap();
    std::fs::copy(dir.path().join("sizes.csv"), archive.join("sizes.csv")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    heaplab()
        .current_dir(elsewhere.path())
        .args(["run", "--quiet", "--name", "again", "--out"])
        .arg(elsewhere.path())
        .arg("--from")
        .arg(archive.join("meta.json"))
        .assert()
        .success();
    // The size table changed since: refused, naming it.
    std::fs::write(dir.path().join("sizes.csv"), "size,weight\n16,3\n128,1\n").unwrap();
    heaplab()
        .current_dir(dir.path())
        .args(["run", "--quiet", "--name", "c", "--out", "results", "--from", "results/a/meta.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the workload `empirical:file=sizes.csv"));
    std::fs::write(dir.path().join("sizes.csv"), "size,weight\n16,3\n64,1\n").unwrap();
    // The trace changed since: refused, naming it.
    generate("2");
    heaplab()
        .current_dir(dir.path())
        .args(["run", "--quiet", "--name", "b", "--out", "results", "--from", "results/a/meta.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the workload `t.rep` (t.rep) is not the one the run read"));
}

#[test]
fn the_summary_fits_80_columns_and_colour_follows_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)], name: &str| {
        let mut command = heaplab();
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command
            .args(["run", "--reps", "2", "--processes", "1", "--name", name, "--out"])
            .arg(dir.path())
            .args(["--alloc", "segregated:kind=tlsf,sl=5", "--alloc", "freelist:fit=best", "--alloc", "slab"])
            .args(["--workload", "ramp:ops=2000"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    let (table, stderr) = run(&[("COLUMNS", "80"), ("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")], "narrow");
    for line in table.lines().chain(stderr.lines()) {
        assert!(line.chars().count() <= 80, "{} columns: {line}\n{table}{stderr}", line.chars().count());
    }
    assert!(table.contains("alloc p99 ns") && table.contains("footprint"), "{table}");
    assert!(!table.contains('\u{1b}'), "NO_COLOR wins: {table}");
    assert!(stderr.contains("it moves in steps of") && stderr.contains("ticks"), "the clock's step: {stderr}");
    let (coloured, _) = run(&[("CLICOLOR_FORCE", "1")], "coloured");
    assert!(coloured.contains("\u{1b}["), "forced colour: {coloured}");
    let (piped, _) = run(&[], "piped");
    assert!(!piped.contains('\u{1b}'), "no colour into a pipe: {piped}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("piped/meta.json")).unwrap()).unwrap();
    assert!(meta["timer"]["granularity_ticks"].as_u64().unwrap() >= 1, "{}", meta["timer"]);
    assert!(meta["timer"]["granularity_ns"].as_f64().unwrap() > 0.0, "{}", meta["timer"]);
}

/// The last value of `metric` for `allocator` on `workload` in a
/// timeseries.csv (each named by its start).
fn last_sample(path: &Path, allocator: &str, workload: &str, metric: &str) -> Option<f64> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (a, w, m, v) = (at("allocator"), at("workload"), at("metric"), at("value"));
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r[a].starts_with(allocator) && r[w].starts_with(workload) && &r[m] == metric)
        .last()
        .map(|r| r[v].parse().unwrap())
}

#[test]
fn the_kernel_model_refuses_contiguous_pages_that_vmalloc_serves_and_runs_kernel_events() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["run", "--metrics-only", "--quiet", "--name", "levels", "--alloc", "kernel", "--alloc", "slab"])
        .args(["--workload", "vmalloc-vs-contiguous:pool=256K,order=2"])
        .args(["--workload", "kernel-events:events=300,procs=8,pool=2M,mix=fork-heavy"])
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let run = dir.path().join("levels");
    let summary = run.join("summary.csv");
    let (allocators, workloads, failed) =
        (column(&summary, "allocator"), column(&summary, "workload"), column(&summary, "failed_allocs"));
    let failed_on = |allocator: &str, workload: &str| -> u64 {
        let row = (0..allocators.len())
            .find(|&i| allocators[i].starts_with(allocator) && workloads[i].starts_with(workload))
            .unwrap_or_else(|| panic!("no row {allocator} {workload}"));
        failed[row].parse().unwrap()
    };
    // 64 pages, every other one freed: rounds = 32 * 3/4 >> 2 = 6. The
    // kernel refuses each order-2 request and serves each vmalloc; the
    // slab, one level on one arena, refuses both.
    assert_eq!(failed_on("kernel", "vmalloc-vs-contiguous"), 6);
    assert_eq!(failed_on("slab", "vmalloc-vs-contiguous"), 12);
    let series = run.join("timeseries.csv");
    assert_eq!(last_sample(&series, "kernel", "vmalloc", "level_vmalloc_served"), Some(6.0));
    assert_eq!(last_sample(&series, "kernel", "vmalloc", "level_alloc_pages_refused"), Some(6.0));
    assert_eq!(
        last_sample(&series, "slab", "vmalloc", "level_vmalloc_served"),
        None,
        "a single-level allocator has no levels"
    );
    // kernel-events: both allocators replay the same ops; the kernel model
    // serves objects from kmalloc and pages from alloc_pages.
    let ops = column(&summary, "ops");
    let rows: Vec<usize> = (0..workloads.len()).filter(|&i| workloads[i].starts_with("kernel-events")).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(ops[rows[0]], ops[rows[1]]);
    assert_eq!(failed_on("kernel", "kernel-events"), 0);
    for metric in ["level_kmalloc_served", "level_alloc_pages_served"] {
        assert!(last_sample(&series, "kernel", "kernel-events", metric).unwrap() > 100.0, "{metric}");
    }
}

#[test]
fn each_process_mallocs_from_its_own_heap_on_pool_pages_and_a_native_trace_keeps_its_space() {
    let dir = tempfile::tempdir().unwrap();
    let workload = "kernel-events:events=300,procs=8,pool=2M,mix=fork-heavy,malloc=small-objects/live:8K,malloc_ops=16";
    // A native trace of the workload keeps each request's address space;
    // a .rep file, one process's heap, refuses it and is not written.
    let trace = dir.path().join("events.hlt");
    heaplab().args(["trace", "gen", workload, "-o"]).arg(&trace).assert().success();
    let rep = dir.path().join("events.rep");
    heaplab()
        .args(["trace", "gen", workload, "-o"])
        .arg(&rep)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("of address space"));
    assert!(!rep.exists(), "no half-written .rep");
    heaplab()
        .args(["run", "--metrics-only", "--quiet", "--name", "heaps", "--alloc", "kernel:user=malloc"])
        .args(["--alloc", "kernel:user=malloc,malloc=buddy/min:16,heap=1M", "--alloc", "slab"])
        .args(["--workload", workload, "--workload"])
        .arg(&trace)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let run = dir.path().join("heaps");
    let summary = run.join("summary.csv");
    let (allocators, ops, failed) =
        (column(&summary, "allocator"), column(&summary, "ops"), column(&summary, "failed_allocs"));
    assert_eq!(allocators.len(), 6);
    assert!(ops.iter().all(|n| n == &ops[0]), "the trace and the workload are the same ops: {ops:?}");
    assert!(failed.iter().all(|n| n == "0"), "{failed:?}");
    let workloads = column(&summary, "workload");
    let recorded = workloads.iter().find(|w| !w.starts_with("kernel-events")).expect("the trace's rows").clone();
    let series = run.join("timeseries.csv");
    for allocator in ["kernel:user=malloc,malloc=segregated", "kernel:user=malloc,malloc=buddy"] {
        for workload in ["kernel-events", recorded.as_str()] {
            let served = last_sample(&series, allocator, workload, "level_malloc_served");
            assert!(served.unwrap_or(0.0) > 100.0, "{allocator} on {workload}: {served:?}");
            // At the end every process has exited: its heap's frames are back.
            assert_eq!(last_sample(&series, allocator, workload, "pool_malloc_heaps_bytes"), Some(0.0));
        }
    }
    assert_eq!(last_sample(&series, "slab", "kernel-events", "level_malloc_served"), None);
}
