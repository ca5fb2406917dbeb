//! `heaplab trace`: gen, info, convert, validate from the command line.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

/// The malloc-lab example worked on paper: peak live is 100 + 50 → 150, then
/// the realloc to 300 makes it 350 after op 2 (0-based).
const HAND_MADE: &str = "20000\n2\n5\n1\na 0 100\na 1 50\nr 0 300\nf 1\nf 0\n";

#[test]
fn info_reports_counts_and_the_peak_worked_on_paper() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hand.rep");
    std::fs::write(&path, HAND_MADE).unwrap();
    heaplab()
        .args(["trace", "info"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("ops          5: 2 alloc, 2 free, 1 realloc"))
        .stdout(predicate::str::contains("peak live    350 B requested (350 bytes), after op 2"))
        .stdout(predicate::str::contains("blocks       2 allocated, 2 live at most, 0 never freed"));
}

#[test]
fn gen_then_convert_then_validate() {
    let dir = tempfile::tempdir().unwrap();
    let native = dir.path().join("w.hlt.zst");
    let rep = dir.path().join("w.rep");
    heaplab()
        .args(["trace", "gen", "kmalloc-mix", "--ops", "3000", "--seed", "9", "-o"])
        .arg(&native)
        .assert()
        .success()
        .stderr(predicate::str::contains("wrote 3,000 ops of kmalloc-mix:ops=3000"));
    heaplab().args(["trace", "convert"]).arg(&native).arg(&rep).assert().success();
    heaplab()
        .args(["trace", "validate"])
        .arg(&native)
        .arg(&rep)
        .assert()
        .success()
        .stdout(predicate::str::contains("w.hlt.zst: ok (native), 3,000 ops"))
        .stdout(predicate::str::contains("w.rep: ok (rep), 3,000 ops"));
}

#[test]
fn gen_is_reproducible_to_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |name: &str| {
        let path = dir.path().join(name);
        heaplab().args(["trace", "gen", "peak:ops=5000", "--seed", "4", "-o"]).arg(&path).assert().success();
        std::fs::read(path).unwrap()
    };
    assert_eq!(generate("a.hlt"), generate("b.hlt"));
}

#[test]
fn gen_writes_to_a_pipe() {
    let output = heaplab().args(["trace", "gen", "ramp:ops=100", "--format", "rep"]).output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8(output.stdout).unwrap().starts_with(|c: char| c.is_ascii_digit()));
}

fn assert_no_file(path: &Path) {
    assert!(!path.exists(), "{} was written", path.display());
}

#[test]
fn bad_input_exits_2_with_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rep");
    std::fs::write(&bad, "20000\n2\n3\n1\na 0 100\nq 1\nf 0\n").unwrap();
    let out = dir.path().join("out.hlt");
    heaplab()
        .args(["trace", "convert"])
        .arg(&bad)
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.rep:6: expected an op line"))
        .stderr(predicate::str::contains("panicked").not());
    assert_no_file(&out);

    let double = dir.path().join("double.rep");
    std::fs::write(&double, "20000\n1\n3\n1\na 0 8\nf 0\nf 0\n").unwrap();
    heaplab()
        .args(["trace", "validate"])
        .arg(&double)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("op 2: double free of id 0"));

    heaplab()
        .args(["trace", "gen", "ramp:sigma=-2", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sigma"));
    assert_no_file(&out);
    heaplab()
        .args(["trace", "info", "no/such/file.rep"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/file.rep"));
    heaplab()
        .args(["trace", "info", "nosuchpreset"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown workload `nosuchpreset`"));
}

#[test]
fn a_truncated_native_trace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.hlt");
    heaplab().args(["trace", "gen", "larson:ops=4000", "-o"]).arg(&path).assert().success();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    heaplab().args(["trace", "validate"]).arg(&path).assert().code(2).stderr(predicate::str::contains("truncated"));
}

#[test]
fn trace_info_reads_standard_input_as_gen_writes_standard_output() {
    let generated = heaplab().args(["trace", "gen", "ramp:ops=100", "--format", "rep", "-o", "-"]).output().unwrap();
    assert!(generated.status.success());
    heaplab()
        .args(["trace", "info", "-"])
        .write_stdin(generated.stdout)
        .assert()
        .success()
        .stdout(predicate::str::contains("100: 50 alloc, 50 free"));
}
