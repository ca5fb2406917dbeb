//! Shards and `heaplab merge`: a run split N ways and joined again has the
//! deterministic files of the unsharded run; merge refuses every mismatch
//! before it writes anything.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

const SWEEP: &[&str] = &[
    "run",
    "--metrics-only",
    "--quiet",
    "--alloc",
    "buddy",
    "--alloc",
    "segregated:kind=tlsf,sl=3..=4",
    "--workload",
    "ramp:ops=2000",
    "--workload",
    "larson:ops=2000",
    "--workload",
    "trace:python",
    "--seeds",
    "1..=3",
];

/// The deterministic columns of a summary.csv, by the schema's own list.
fn deterministic(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let keep: Vec<usize> = (0..headers.len())
        .filter(|&i| {
            heaplab_results::KEY.contains(&&headers[i]) || heaplab_results::DETERMINISTIC.contains(&&headers[i])
        })
        .collect();
    reader.records().map(|r| r.unwrap()).map(|r| keep.iter().map(|&i| r[i].to_string()).collect()).collect()
}

fn same_deterministic_results(a: &Path, b: &Path) {
    assert_eq!(deterministic(&a.join("summary.csv")), deterministic(&b.join("summary.csv")));
    for file in ["timeseries.csv", "details.csv", "heapmap.csv"] {
        assert_eq!(std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap(), "{file}");
    }
}

fn run(out: &Path, args: &[&str], name: &str) {
    heaplab().args(args).args(["--name", name, "--out"]).arg(out).assert().success();
}

fn merge(out: &Path, shards: &[&str], name: &str) -> assert_cmd::assert::Assert {
    heaplab().arg("merge").args(shards.iter().map(|s| out.join(s))).args(["--name", name, "--out"]).arg(out).assert()
}

#[test]
fn shards_merged_in_any_order_are_the_unsharded_run() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    run(out, SWEEP, "whole");
    let mut sizes = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let args: Vec<&str> = SWEEP.iter().copied().chain(["--shard", &shard]).collect();
        run(out, &args, &format!("s{k}"));
        sizes.push(deterministic(&out.join(format!("s{k}/summary.csv"))).len());
    }
    // 7 groups (ramp and larson × 3 seeds, python) of 3 cells: 3, 2, 2.
    assert_eq!(sizes, [9, 6, 6]);
    merge(out, &["s3", "s1", "s2"], "merged").success().stderr(predicate::str::contains("merged 3 shards (21 cells"));
    same_deterministic_results(&out.join("whole"), &out.join("merged"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("merged/meta.json")).unwrap()).unwrap();
    assert!(meta["settings"].get("shard").is_none(), "the merged run is the whole run");
    assert_eq!(meta["merged"].as_array().unwrap().len(), 3);
    assert_eq!(meta["cells_total"], 21);
    // A merged run repeats as the unsharded run.
    heaplab()
        .args(["run", "--quiet", "--name", "again", "--out"])
        .arg(out)
        .arg("--from")
        .arg(out.join("merged/meta.json"))
        .assert()
        .success();
    same_deterministic_results(&out.join("whole"), &out.join("again"));
    // A shard past the groups is empty, and says so.
    let args: Vec<&str> = SWEEP.iter().copied().chain(["--shard", "9/9"]).collect();
    heaplab().args(&args).args(["--name", "empty", "--out"]).arg(out).assert().success().stderr(
        predicate::str::contains("shard 9/9 holds no cells (the run has 7 (workload, seed) groups for 9 shards)"),
    );
}

#[test]
fn the_default_suite_sharded_and_a_killed_shard_resumed_merge_to_the_unsharded_run() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let default = ["run", "--metrics-only", "--quiet"];
    run(out, &default, "whole");
    run(out, &[&default[..], &["--shard", "1/2"]].concat(), "s1");
    let output = heaplab()
        .args(default)
        .args(["--shard", "2/2", "--name", "s2", "--out"])
        .arg(out)
        .env("HEAPLAB_TEST_KILL_AFTER_RECORDS", "10")
        .output()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&output.status), Some(9));
    merge(out, &["s1", "s2"], "early").code(2).stderr(predicate::str::contains("shard 2/2 is running, not complete"));
    assert!(!out.join("early").exists(), "nothing is written before every check passed");
    heaplab().args(["run", "--quiet", "--resume", "s2", "--out"]).arg(out).assert().success();
    merge(out, &["s1", "s2"], "merged").success();
    same_deterministic_results(&out.join("whole"), &out.join("merged"));
}

#[test]
fn merge_refuses_every_mismatch_and_names_it() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let with = |extra: &[&str]| -> Vec<String> { SWEEP.iter().chain(extra).map(|s| s.to_string()).collect() };
    for (name, args) in [
        ("a1", with(&["--shard", "1/2"])),
        ("a2", with(&["--shard", "2/2"])),
        ("b2", with(&["--shard", "2/2", "--points", "50"])),
        ("c2", with(&["--shard", "2/3"])),
    ] {
        heaplab().args(&args).args(["--name", name, "--out"]).arg(out).assert().success();
    }
    run(out, SWEEP, "whole");
    merge(out, &["a1", "b2"], "m").code(2).stderr(predicate::str::contains("their settings differ in points"));
    merge(out, &["a1", "c2"], "m")
        .code(2)
        .stderr(predicate::str::contains("shard 2/3 of 3 shards, and shard 1/2 of 2"));
    merge(out, &["a1"], "m").code(2).stderr(predicate::str::contains("shard 2/2 is missing"));
    merge(out, &["a1", "a1", "a2"], "m").code(2).stderr(predicate::str::contains("are both shard 1/2"));
    merge(out, &["a1", "whole"], "m").code(2).stderr(predicate::str::contains("not a shard"));
    // Another build's shard.
    let meta_path = out.join("a2/meta.json");
    let text = std::fs::read_to_string(&meta_path).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    meta["git_revision"] = serde_json::json!("0123456789ab");
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    merge(out, &["a1", "a2"], "m").code(2).stderr(predicate::str::contains("(0123456789ab)"));
    // A shard that also holds cells of another: the cells overlap.
    std::fs::write(&meta_path, &text).unwrap();
    let mine = std::fs::read_to_string(out.join("a2/summary.csv")).unwrap();
    let theirs = std::fs::read_to_string(out.join("a1/summary.csv")).unwrap();
    let extra: String = theirs.lines().skip(1).map(|line| format!("{line}\n")).collect();
    std::fs::write(out.join("a2/summary.csv"), mine + &extra).unwrap();
    merge(out, &["a1", "a2"], "m").code(2).stderr(predicate::str::contains("which is not this shard's"));
    assert!(!out.join("m").exists(), "a refused merge writes nothing");
}

#[test]
fn auto_takes_the_shard_from_a_slurm_array_or_refuses() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let args: Vec<&str> = SWEEP.iter().copied().chain(["--shard", "auto/3"]).collect();
    heaplab()
        .args(&args)
        .args(["--name", "t2", "--out"])
        .arg(out)
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .env_remove("JOB_COMPLETION_INDEX")
        .assert()
        .success();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("t2/meta.json")).unwrap()).unwrap();
    assert_eq!(meta["settings"]["shard"], serde_json::json!({"index": 2, "count": 3}));
    heaplab()
        .args(&args)
        .args(["--name", "t4", "--out"])
        .arg(out)
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "4")
        .env_remove("JOB_COMPLETION_INDEX")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the Slurm array has 4 tasks"));
    assert!(!out.join("t4").exists());
}

#[test]
fn timed_rows_of_another_machine_are_marked_and_not_judged_unless_asked() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let timed =
        ["run", "--quiet", "--no-latency", "--reps", "2", "--processes", "1", "--alloc", "bump", "--alloc", "buddy"];
    let timed: Vec<&str> = timed.iter().copied().chain(["--workload", "ramp:ops=2000", "--seeds", "1..=2"]).collect();
    run(out, &timed, "whole");
    for k in 1..=2 {
        let shard = format!("{k}/2");
        run(out, &[&timed[..], &["--shard", &shard]].concat(), &format!("s{k}"));
    }
    // Shard 2 ran on another machine.
    let meta_path = out.join("s2/meta.json");
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["hostname"] = serde_json::json!("node-b");
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    merge(out, &["s1", "s2"], "merged").success().stderr(predicate::str::contains("from 2 hosts"));
    let hosts: Vec<String> = {
        let mut reader = csv::Reader::from_path(out.join("merged/throughput.csv")).unwrap();
        let index = reader.headers().unwrap().iter().position(|h| h == "host").unwrap();
        reader.records().map(|r| r.unwrap()[index].to_string()).collect()
    };
    assert_eq!(hosts.iter().filter(|h| *h == "node-b").count(), 4, "shard 2's 2 cells × 2 repetitions: {hosts:?}");
    let compare = |extra: &[&str]| {
        heaplab().arg("compare").arg(out.join("whole")).arg(out.join("merged")).args(extra).output().unwrap()
    };
    let output = compare(&[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.matches("other host").count(), 2, "{text}");
    assert!(text.contains("2 throughput rows were timed on different machines"), "{text}");
    let output = compare(&["--across-hosts"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("other host"), "{text}");
}
