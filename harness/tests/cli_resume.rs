//! Durable results: a run killed with SIGKILL at any point between two
//! journal records, resumed, has the deterministic files of a run that
//! was never stopped; a torn last record is dropped, not read; `report`
//! repairs a killed run's files and status.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

/// 2 allocators × 1 workload × 2 seeds: 4 cells, so 4 metrics records,
/// then one timing record per process (2), then 4 latency records.
const RUN: &[&str] = &[
    "run",
    "--alloc",
    "buddy",
    "--alloc",
    "segregated:kind=tlsf,sl=4",
    "--workload",
    "larson:ops=1500",
    "--seeds",
    "1,2",
    "--reps",
    "2",
    "--processes",
    "2",
    "--frames",
    "8",
    "--quiet",
];

const DETERMINISTIC_FILES: [&str; 3] = ["timeseries.csv", "details.csv", "heapmap.csv"];

/// The deterministic columns of a summary.csv, by the schema's own list.
fn deterministic(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let keep: Vec<usize> =
        (0..headers.len()).filter(|&i| heaplab_results::DETERMINISTIC.contains(&&headers[i])).collect();
    assert_eq!(keep.len(), heaplab_results::DETERMINISTIC.len());
    reader.records().map(|r| r.unwrap()).map(|r| keep.iter().map(|&i| r[i].to_string()).collect()).collect()
}

fn meta(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
}

fn same_deterministic_results(a: &Path, b: &Path) {
    assert_eq!(deterministic(&a.join("summary.csv")), deterministic(&b.join("summary.csv")), "{}", b.display());
    for file in DETERMINISTIC_FILES {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{}/{file}",
            b.display()
        );
    }
}

/// Run `RUN` as `name`, killed (SIGKILL, sent by the run to itself) after
/// its `records`-th journal record.
fn killed(out: &Path, name: &str, records: usize) {
    let output = heaplab()
        .args(RUN)
        .args(["--name", name, "--out"])
        .arg(out)
        .env("HEAPLAB_TEST_KILL_AFTER_RECORDS", records.to_string())
        .output()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&output.status), Some(9), "killed by SIGKILL");
    assert_eq!(meta(&out.join(name))["status"], "running", "a killed run cannot say so itself");
}

#[test]
fn a_run_killed_anywhere_resumes_to_the_files_of_an_unbroken_run() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    heaplab().args(RUN).args(["--name", "whole", "--out"]).arg(out).assert().success();
    let whole = out.join("whole");
    // During the metrics passes; between the two timing processes; inside
    // the latency pass.
    for (name, records) in [("metrics", 2), ("between-processes", 5), ("latency", 7)] {
        killed(out, name, records);
        let dir = out.join(name);
        heaplab()
            .args(["run", "--quiet", "--resume", name, "--out"])
            .arg(out)
            .assert()
            .success()
            .stderr(predicate::str::contains("cells in"));
        same_deterministic_results(&whole, &dir);
        let meta = meta(&dir);
        assert_eq!(meta["status"], "complete", "{name}");
        assert_eq!((meta["reps_finished"].as_u64(), meta["latency_finished"].as_u64()), (Some(8), Some(4)), "{name}");
        assert_eq!(meta["resumed"].as_array().unwrap().len(), 1);
        assert!(!dir.join("journal.hlj").exists(), "a complete run's files hold all its journal held");
    }
    assert!(!whole.join("journal.hlj").exists());
    // The repetitions of the process that finished before the kill are
    // kept, under its number; the resumed run's process is the second.
    let processes: Vec<String> = {
        let mut reader = csv::Reader::from_path(out.join("between-processes/throughput.csv")).unwrap();
        let index = reader.headers().unwrap().iter().position(|h| h == "process").unwrap();
        reader.records().map(|r| r.unwrap()[index].to_string()).collect()
    };
    assert_eq!(processes.len(), 8);
    assert!(processes.chunks(2).all(|p| p == ["0", "1"]), "{processes:?}");
    // A complete run has nothing to resume.
    heaplab()
        .args(["run", "--resume", "whole", "--out"])
        .arg(out)
        .assert()
        .success()
        .stderr(predicate::str::contains("nothing to resume"));
}

#[test]
fn a_torn_last_record_is_dropped_not_read() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    heaplab().args(RUN).args(["--name", "whole", "--out"]).arg(out).assert().success();
    killed(out, "torn", 5);
    let journal = out.join("torn/journal.hlj");
    let mut bytes = std::fs::read(&journal).unwrap();
    let kept = bytes.len();
    // Half of a copy of the first record, as a kill mid-write leaves it.
    let first = bytes.iter().position(|&b| b == b'\n').unwrap();
    let half = bytes[..first / 2].to_vec();
    bytes.extend_from_slice(&half);
    std::fs::write(&journal, &bytes).unwrap();
    // The resume is killed again after its first record: the journal then
    // holds the whole records, not the torn one, and the resumed run's
    // first record (the second timing process) after them.
    let output = heaplab()
        .args(["run", "--quiet", "--resume", "torn", "--out"])
        .arg(out)
        .env("HEAPLAB_TEST_KILL_AFTER_RECORDS", "1")
        .output()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&output.status), Some(9));
    let after = std::fs::read(&journal).unwrap();
    assert_eq!(after[..kept], bytes[..kept]);
    let next = std::str::from_utf8(&after[kept..]).unwrap();
    assert!(next[8..].starts_with(r#" {"record":"timing","process":1,"complete":true"#), "{next}");
    assert_eq!(next.matches('\n').count(), 1, "{next}");
    heaplab().args(["run", "--quiet", "--resume", "torn", "--out"]).arg(out).assert().success();
    same_deterministic_results(&out.join("whole"), &out.join("torn"));
    assert_eq!(meta(&out.join("torn"))["resumed"].as_array().unwrap().len(), 2);
}

#[test]
fn a_damaged_journal_and_another_build_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    killed(out, "damaged", 3);
    let journal = out.join("damaged/journal.hlj");
    let text = std::fs::read_to_string(&journal).unwrap();
    // A flipped byte in the first of three records: not a torn write.
    let flipped = text.replacen("\"metrics\"", "\"metricz\"", 1);
    std::fs::write(&journal, flipped).unwrap();
    heaplab()
        .args(["run", "--resume", "damaged", "--out"])
        .arg(out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("journal.hlj:1: the record does not match its checksum"));
    std::fs::write(&journal, text).unwrap();
    let meta_path = out.join("damaged/meta.json");
    let mut meta = meta(&out.join("damaged"));
    meta["git_revision"] = serde_json::json!("0123456789ab");
    std::fs::write(&meta_path, serde_json::to_string(&meta).unwrap()).unwrap();
    heaplab()
        .args(["run", "--resume", "damaged", "--out"])
        .arg(out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("(0123456789ab)").and(predicate::str::contains("the build that started it")));
}

#[test]
fn report_repairs_a_killed_run_and_says_it_is_incomplete() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    killed(out, "killed", 5);
    let dir = out.join("killed");
    assert!(!dir.join("summary.csv").exists(), "a killed run has only its journal");
    heaplab()
        .args(["report"])
        .arg(&dir)
        .arg("-o")
        .arg(out.join("report"))
        .assert()
        .success()
        .stderr(predicate::str::contains("marked interrupted (4 of 4 metrics passes, 4 of 8 timed repetitions"));
    let meta = meta(&dir);
    assert_eq!((meta["status"].as_str(), meta["reps_finished"].as_u64()), (Some("interrupted"), Some(4)));
    assert_eq!(deterministic(&dir.join("summary.csv")).len(), 4);
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains("This run is incomplete (interrupted: 4 of 4 metrics passes"), "the report says so");
    // Repaired, it still resumes.
    heaplab().args(["run", "--quiet", "--resume", "killed", "--out"]).arg(out).assert().success();
    assert_eq!(self::meta(&dir)["status"], "complete");
}
