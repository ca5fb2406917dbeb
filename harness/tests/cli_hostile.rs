//! Hostile input: values that used to hang, blow up, pass silently or be
//! misread, each now a clear answer.

use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

fn small_run(dir: &std::path::Path, name: &str, timed: bool) {
    let mut command = heaplab();
    command
        .args(["run", "--quiet", "--alloc", "buddy", "--workload", "ramp:ops=1000", "--name", name, "--out"])
        .arg(dir);
    if timed {
        command.args(["--reps", "2", "--processes", "1", "--no-latency"]);
    } else {
        command.arg("--metrics-only");
    }
    command.assert().success();
}

#[test]
fn an_infinite_value_in_the_time_series_does_not_hang_the_report() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "r", false);
    let path = dir.path().join("r/timeseries.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let at = lines.iter().position(|l| l.contains(",requested_bytes,")).unwrap();
    let (head, _) = lines[at].rsplit_once(',').unwrap();
    lines[at] = format!("{head},inf");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    heaplab()
        .arg("report")
        .arg(dir.path().join("r"))
        .arg("--out")
        .arg(dir.path().join("report"))
        .timeout(Duration::from_secs(120))
        .assert()
        .success();
}

#[test]
fn counts_that_grow_memory_have_caps_that_say_so() {
    for (option, value, cap) in [
        ("--frames", "1000000000000", "from 0 to 10000"),
        ("--points", "0", "from 1 to 100000"),
        ("--seeds", "0..=20000", "at most 10001"),
    ] {
        heaplab().args(["run", "--metrics-only", option, value]).assert().code(2).stderr(predicate::str::contains(cap));
    }
}

#[test]
fn compare_refuses_an_empty_base_and_a_lost_timing() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "base", true);
    small_run(dir.path(), "new", true);
    // A header-only and a 0-byte BASE summary: nothing to compare is not a pass.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let header = std::fs::read_to_string(dir.path().join("base/summary.csv")).unwrap();
    for content in [header.lines().next().unwrap().to_string() + "\n", String::new()] {
        std::fs::write(empty.join("summary.csv"), content).unwrap();
        heaplab()
            .arg("compare")
            .arg(&empty)
            .arg(dir.path().join("new"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("no rows"));
    }
    // BASE has timed rows, NEW's throughput.csv is gone: it fails, and says why.
    std::fs::remove_file(dir.path().join("new/throughput.csv")).unwrap();
    heaplab()
        .arg("compare")
        .arg(dir.path().join("base"))
        .arg(dir.path().join("new"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("no repetitions"));
}

#[test]
fn a_directory_is_not_a_workload_and_a_preset_wins_over_a_file_of_its_name() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["run", "--metrics-only", "--workload"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"));
    std::fs::write(dir.path().join("ramp"), "not a trace\n").unwrap();
    heaplab()
        .current_dir(dir.path())
        .args(["run", "--metrics-only", "--alloc", "buddy", "--workload", "ramp", "--plan"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ramp:ops=100000"));
    heaplab()
        .current_dir(dir.path())
        .args(["run", "--metrics-only", "--alloc", "buddy", "--workload", "./ramp", "--plan"])
        .assert()
        .success()
        .stdout(predicate::str::contains("./ramp"));
}

#[test]
fn writing_a_trace_goes_through_links_and_never_replaces_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.rep");
    std::fs::write(&target, "old\n").unwrap();
    let link = dir.path().join("link.rep");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    heaplab().args(["trace", "gen", "ramp:ops=100", "-o"]).arg(&link).assert().success();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    assert_ne!(std::fs::read(&target).unwrap(), b"old\n", "the link's target is written");
    heaplab().args(["trace", "info"]).arg(&target).assert().success().stdout(predicate::str::contains("100"));
    // A device is written to, not replaced, and its error is said.
    heaplab()
        .args(["trace", "gen", "ramp:ops=100000", "-o", "/dev/full", "--format", "rep"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/dev/full"));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/full").unwrap().file_type().is_char_device(), "/dev/full is still a device");
}

#[test]
fn an_allocator_that_cannot_be_built_stops_the_run_before_its_directory_exists() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["run", "--metrics-only", "--alloc", "segregated:kind=simple,page=1G", "--workload", "ramp:ops=100"])
        .args(["--name", "failed", "--out"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot hold one 1073741824-byte block"));
    assert!(!dir.path().join("failed").exists(), "the name stays free");
}

#[test]
fn live_bytes_past_64_bits_are_an_error_not_a_wrapped_figure() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("huge.rep");
    std::fs::write(&trace, "0\n2\n2\n1\na 0 9223372036854775808\na 1 9223372036854775808\n").unwrap();
    heaplab()
        .args(["trace", "info"])
        .arg(&trace)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("op 2: the live blocks' sizes add up past 2^64 bytes"));
    heaplab()
        .args(["run", "--metrics-only", "--alloc", "buddy", "--workload"])
        .arg(&trace)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("add up past 2^64 bytes"));
}

#[test]
fn an_alignment_larger_than_the_arena_is_not_fragmentation() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["run", "--metrics-only", "--quiet", "--alloc", "buddy", "--arena", "1M"])
        .args(["--workload", "ramp:ops=200,align=1099511627776", "--name", "a", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let mut reader = csv::Reader::from_path(dir.path().join("a/summary.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let value = |name: &str| row[headers.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(value("failed_allocs"), "100");
    assert_eq!((value("fragmentation_failures").as_str(), value("out_of_memory_failures").as_str()), ("0", "100"));
}
