//! `heaplab compare`: the regression gate finds what it should, and only that.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

/// A small timed run: three allocators, two workloads, five repetitions.
fn small_run(out: &Path, name: &str) {
    heaplab()
        .args(["run", "--quiet", "--no-latency", "--reps", "5", "--name", name, "--out"])
        .arg(out)
        .args([
            "--alloc",
            "buddy",
            "--alloc",
            "slab",
            "--alloc",
            "segregated:kind=tlsf",
            "--workload",
            "larson:ops=4000",
            "--workload",
            "ramp:ops=4000",
        ])
        .assert()
        .success();
}

/// Copy a results directory, replacing its timed repetitions with a
/// controlled fixture: `reps(allocator)` gives each row's repetitions as
/// (timing process, ops/s).
fn copy_with(from: &Path, to: &Path, reps: impl Fn(&str) -> Vec<(u64, f64)>) {
    std::fs::create_dir_all(to).unwrap();
    for file in ["summary.csv", "meta.json", "latency.csv", "timeseries.csv"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    let mut reader = csv::Reader::from_path(from.join("throughput.csv")).unwrap();
    let mut keys: Vec<Vec<String>> = Vec::new();
    for record in reader.records() {
        let key: Vec<String> = record.unwrap().iter().take(3).map(String::from).collect();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut writer = csv::Writer::from_path(to.join("throughput.csv")).unwrap();
    writer.write_record(["allocator", "workload", "seed", "rep", "process", "seconds", "ops_per_sec"]).unwrap();
    for key in keys {
        for (rep, (process, ops_per_sec)) in reps(&key[0]).into_iter().enumerate() {
            let mut fields = key.clone();
            fields.extend([rep.to_string(), process.to_string(), (4000.0 / ops_per_sec).to_string()]);
            fields.push(ops_per_sec.to_string());
            writer.write_record(&fields).unwrap();
        }
    }
    writer.flush().unwrap();
}

/// Every row at 10 Mops/s with a ±2 % spread over five repetitions, one per
/// timing process, and the allocator named by `allocator_prefix` at
/// `factor` times that in every repetition.
fn copy_scaled(from: &Path, to: &Path, allocator_prefix: &str, factor: f64) {
    copy_with(from, to, |allocator| {
        let scale = if allocator.starts_with(allocator_prefix) { factor } else { 1.0 };
        (0..5).map(|rep| (rep, 1e7 * (1.0 + 0.01 * (rep as f64 - 2.0)) * scale)).collect()
    });
}

#[test]
fn an_injected_regression_fails_the_gate_and_its_absence_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "base");
    let base = dir.path().join("fixture");
    copy_scaled(&dir.path().join("base"), &base, "none", 1.0);
    let slower = dir.path().join("slower");
    copy_scaled(&dir.path().join("base"), &slower, "slab", 0.8);
    heaplab()
        .args(["compare"])
        .arg(&base)
        .arg(&slower)
        .assert()
        .code(1)
        .stdout(
            predicate::str::is_match(
                r"slab +larson:ops=4000 +1 +1 +ops_per_sec +10\.00M +8\.000M +-20\.0% .* REGRESSION",
            )
            .unwrap(),
        )
        .stdout(predicate::str::contains("2 regressions, 0 changed deterministic figures"));
    // The same results against themselves: nothing to report, exit 0.
    heaplab()
        .args(["compare"])
        .arg(&base)
        .arg(&base)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 regressions"));
    // Faster is an improvement, not a failure.
    let faster = dir.path().join("faster");
    copy_scaled(&dir.path().join("base"), &faster, "buddy", 1.3);
    heaplab()
        .args(["compare"])
        .arg(&base)
        .arg(&faster)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("2 improvements"));
    // Markdown for a pull-request comment.
    heaplab()
        .args(["compare", "--format", "markdown"])
        .arg(&base)
        .arg(&slower)
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("**heaplab compare**"))
        .stdout(predicate::str::contains("| allocator | workload |"))
        // The sides named, a blank line after the headline, the rest folded.
        .stdout(predicate::str::contains("regressions, 0 changed").and(predicate::str::contains("\n\nBASE ")))
        .stdout(predicate::str::contains("(run base, ").and(predicate::str::contains("<details><summary>4 more rows")));
    // A threshold above the slowdown lets it through.
    heaplab().args(["compare", "--threshold", "25%"]).arg(&base).arg(&slower).assert().code(0);
}

/// Two `--quick` runs (three repetitions of one process a side): no row can
/// be judged, and a gate built on them must not pass silently.
#[test]
fn a_comparison_that_can_judge_nothing_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["q1", "q2"] {
        heaplab()
            .args(["run", "--quick", "--quiet", "--no-latency", "--alloc", "buddy", "--alloc", "slab"])
            .args(["--workload", "ramp:ops=3000", "--name", name, "--out"])
            .arg(dir.path())
            .assert()
            .success();
    }
    let (a, b) = (dir.path().join("q1"), dir.path().join("q2"));
    heaplab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("2 with too few samples").and(predicate::str::contains("UNDECIDED")));
    heaplab().args(["compare", "--allow-inconclusive"]).arg(&a).arg(&b).assert().code(0);
    // Metrics-only results (the CI baseline) have no timed rows: not affected.
    for name in ["m1", "m2"] {
        heaplab()
            .args(["run", "--metrics-only", "--quiet", "--alloc", "buddy", "--workload", "ramp:ops=3000"])
            .args(["--name", name, "--out"])
            .arg(dir.path())
            .assert()
            .success();
    }
    heaplab().arg("compare").arg(dir.path().join("m1")).arg(dir.path().join("m2")).assert().code(0);
}

/// An interval that crosses a bound of the threshold is inconclusive, not
/// unchanged; one inside it is unchanged.
#[test]
fn an_interval_across_the_threshold_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "template");
    let template = dir.path().join("template");
    let base = dir.path().join("base");
    copy_scaled(&template, &base, "none", 1.0);
    // slab's new repetitions spread from 0.85 to 1.15 of the base: the
    // interval crosses both 0.95 and 1.05.
    let wide = dir.path().join("wide");
    copy_with(&template, &wide, |allocator| {
        (0..5)
            .map(|rep| {
                let spread = if allocator.starts_with("slab") { 0.075 } else { 0.01 };
                (rep, 1e7 * (1.0 + spread * (rep as f64 - 2.0)))
            })
            .collect()
    });
    heaplab()
        .args(["compare", "--all"])
        .arg(&base)
        .arg(&wide)
        .assert()
        .code(0)
        .stdout(predicate::str::is_match(r"slab +larson:ops=4000 .* inconclusive").unwrap())
        .stdout(predicate::str::is_match(r"buddy +larson:ops=4000 .* unchanged").unwrap())
        .stdout(predicate::str::contains("4 unchanged, 2 inconclusive"))
        .stdout(predicate::str::contains("change (HL"));
}

/// Two runs whose settings differ say so.
#[test]
fn differing_settings_are_named_in_the_headline() {
    let dir = tempfile::tempdir().unwrap();
    for (name, arena) in [("small", "32M"), ("large", "64M")] {
        heaplab()
            .args(["run", "--metrics-only", "--quiet", "--alloc", "buddy", "--workload", "ramp:ops=3000"])
            .args(["--arena", arena, "--name", name, "--out"])
            .arg(dir.path())
            .assert()
            .success();
    }
    heaplab()
        .arg("compare")
        .arg(dir.path().join("small"))
        .arg(dir.path().join("large"))
        .assert()
        .stdout(predicate::str::contains("settings differ (arena_bytes: 33554432 → 67108864)"));
    // A results directory without meta.json says what is unknown.
    std::fs::remove_file(dir.path().join("large/meta.json")).unwrap();
    heaplab()
        .arg("compare")
        .arg(dir.path().join("small"))
        .arg(dir.path().join("large"))
        .assert()
        .stdout(predicate::str::contains("(no meta.json: run, revision and date unknown)"));
}

/// One timing process of five running slow is what a process can do to a
/// cell on a shared machine, and not a regression; every process slow is.
/// Timings from one process per side get a warning in the headline.
#[test]
fn one_slow_timing_process_is_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "template");
    let template = dir.path().join("template");
    // Five processes of three repetitions; within a process they agree to 1 %.
    let processes = |slow: &'static [u64]| {
        move |allocator: &str| -> Vec<(u64, f64)> {
            (0..15u64)
                .map(|rep| {
                    let process = rep / 3;
                    let level = if allocator.starts_with("slab") && slow.contains(&process) { 0.8 } else { 1.0 };
                    (process, 1e7 * level * (1.0 + 0.005 * (rep % 3) as f64))
                })
                .collect()
        }
    };
    let base = dir.path().join("base");
    copy_with(&template, &base, processes(&[]));
    let one_slow = dir.path().join("one-slow");
    copy_with(&template, &one_slow, processes(&[1]));
    heaplab()
        .arg("compare")
        .arg(&base)
        .arg(&one_slow)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 regressions").and(predicate::str::contains("timing process").not()));
    let all_slow = dir.path().join("all-slow");
    copy_with(&template, &all_slow, processes(&[0, 1, 2, 3, 4]));
    heaplab()
        .arg("compare")
        .arg(&base)
        .arg(&all_slow)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("2 regressions"));
    // The same fifteen repetitions, as if one process had run them all.
    let single = |from: &Path, name: &str| {
        let to = dir.path().join(name);
        let mut reader = csv::Reader::from_path(from.join("throughput.csv")).unwrap();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(reader.headers().unwrap()).unwrap();
        for record in reader.records() {
            let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
            fields[4] = "0".into();
            writer.write_record(&fields).unwrap();
        }
        copy_with(from, &to, |_| Vec::new());
        std::fs::write(to.join("throughput.csv"), writer.into_inner().unwrap()).unwrap();
        to
    };
    heaplab()
        .arg("compare")
        .arg(single(&base, "base-single"))
        .arg(single(&one_slow, "one-slow-single"))
        .assert()
        .stdout(predicate::str::contains("come from 1 timing process (BASE) and 1 (NEW)"));
}

#[test]
fn a_changed_deterministic_figure_or_a_missing_row_fails() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        heaplab()
            .args([
                "run",
                "--quiet",
                "--metrics-only",
                "--alloc",
                "buddy",
                "--alloc",
                "slab",
                "--workload",
                "ramp:ops=3000",
                "--name",
                name,
                "--out",
            ])
            .arg(dir.path())
            .assert()
            .success();
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    heaplab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 changed deterministic figures"));
    let summary = std::fs::read_to_string(b.join("summary.csv")).unwrap();
    let mut lines: Vec<String> = summary.lines().map(String::from).collect();
    // Bump one row's peak footprint by one byte.
    let mut fields: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(lines[1].as_bytes())
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    let column = lines[0].split(',').position(|name| name == "peak_footprint_bytes").expect("a footprint column");
    fields[column] = (fields[column].parse::<u64>().unwrap() + 1).to_string();
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    writer.write_record(&fields).unwrap();
    lines[1] = String::from_utf8(writer.into_inner().unwrap()).unwrap().trim_end().to_string();
    std::fs::write(b.join("summary.csv"), lines.join("\n") + "\n").unwrap();
    heaplab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("peak_footprint_bytes"))
        .stdout(predicate::str::contains("CHANGED"));
    std::fs::write(b.join("summary.csv"), format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    heaplab().arg("compare").arg(&a).arg(&b).assert().code(1).stdout(predicate::str::contains("MISSING"));
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["compare", "nowhere", "nowhere"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no summary.csv here"));
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("summary.csv"), "allocator,workload\nbuddy\n").unwrap();
    heaplab()
        .arg("compare")
        .arg(&broken)
        .arg(&broken)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("summary.csv:2"));
    heaplab()
        .args(["compare", "--threshold", "150%", "a", "b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected a threshold"));
}

/// Two timed runs of the default suite, same build, same machine, taken in
/// turns (`run --against`): no false alarm in ten comparisons. Slow (about
/// fifteen minutes): `cargo test --release -p heaplab --test cli_compare --
/// --ignored`.
#[test]
#[ignore = "runs the default suite twenty times"]
fn same_build_runs_raise_no_false_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let exe = assert_cmd::cargo::cargo_bin("heaplab");
    let mut alarms = Vec::new();
    for run in 0..10 {
        let name = format!("r{run}");
        heaplab()
            .args(["run", "--quiet", "--name", &name, "--against"])
            .arg(&exe)
            .arg("--out")
            .arg(dir.path())
            .assert()
            .success();
        let output = heaplab()
            .arg("compare")
            .arg(dir.path().join(format!("{name}-base")))
            .arg(dir.path().join(&name))
            .output()
            .unwrap();
        if output.status.code() != Some(0) {
            alarms.push(String::from_utf8_lossy(&output.stdout).to_string());
        }
    }
    assert!(alarms.is_empty(), "{} false alarms in 10:\n{}", alarms.len(), alarms.join("\n"));
}
