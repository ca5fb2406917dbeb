//! `heaplab exec`: real programs served by heaplab's allocators through
//! the preload library. C programs of known behaviour are built here with
//! the system's C compiler; the others are the machine's own (sh, sort,
//! perl), which `.ci/run` installs.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use heaplab_results::{ExecRow, SummaryRow, read_rows};
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

/// Build `source` into `dir/name` with the system's C compiler.
fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let binary = dir.join(name);
    let status = Process::new("cc")
        .args(["-O1", "-fno-builtin", "-pthread", "-o"])
        .arg(&binary)
        .arg(&c)
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "compiling {name}");
    binary
}

/// Threads, every function of the family, integrity of what they wrote.
const WORKOUT: &str = r#"
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void *work(void *arg) {
    long seed = (long)arg;
    char *blocks[64] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (int)((seed * 1103515245 + i * 12345) & 63);
        if (blocks[k]) {
            for (int j = 0; j < 8; j++) if (blocks[k][j] != (char)k) { fprintf(stderr, "corrupt\n"); exit(9); }
            if (i % 3 == 0) blocks[k] = realloc(blocks[k], 8 + (i % 500));
            else { free(blocks[k]); blocks[k] = 0; continue; }
        } else {
            blocks[k] = (i % 2) ? malloc(8 + (i % 700)) : calloc(1, 8 + (i % 300));
        }
        if (!blocks[k]) { fprintf(stderr, "NULL\n"); exit(8); }
        memset(blocks[k], k, 8);
    }
    for (int k = 0; k < 64; k++) free(blocks[k]);
    return 0;
}
int main(void) {
    pthread_t threads[4];
    for (long t = 0; t < 4; t++) pthread_create(&threads[t], 0, work, (void *)t);
    for (int t = 0; t < 4; t++) pthread_join(threads[t], 0);
    void *p = 0;
    if (posix_memalign(&p, 4096, 100) || ((unsigned long)p & 4095)) return 7;
    void *q = aligned_alloc(256, 512);
    void *v = valloc(10);
    void *m = memalign(64, 1);
    if (((unsigned long)q & 255) || ((unsigned long)v & 4095) || ((unsigned long)m & 63)) return 6;
    if (malloc_usable_size(q) < 512) return 5;
    free(p); free(q); free(v); free(m);
    printf("workout done\n");
    return 0;
}
"#;

/// Allocate megabytes until the arena refuses one: NULL with ENOMEM.
const EXHAUST: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    int n = 0;
    for (;;) {
        errno = 0;
        void *p = malloc(1 << 20);
        if (!p) break;
        n++;
    }
    printf("refused after %d MiB, errno %s\n", n, errno == ENOMEM ? "ENOMEM" : "other");
    return errno == ENOMEM ? 0 : 1;
}
"#;

/// Free a pointer no allocator handed out; then, in a second mode, free twice.
const BAD_FREE: &str = r#"
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "twice") == 0) {
        /* volatile: the compiler may not drop the pair as unused. */
        void *volatile p = malloc(32);
        free(p);
        free(p);
        return 0;
    }
    free((void *)0x12340);
    return 0;
}
"#;

fn summary(dir: &Path) -> Vec<SummaryRow> {
    read_rows(&dir.join("summary.csv"), true).unwrap()
}

#[test]
fn output_and_exit_status_pass_through() {
    let out = tempfile::tempdir().unwrap();
    heaplab()
        .args(["exec", "--alloc", "segregated:kind=tlsf", "--reps", "1", "--no-metrics", "--quiet", "--out"])
        .arg(out.path())
        .args(["--name", "status", "--", "sh", "-c", "echo from the program; echo to stderr >&2; exit 3"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("from the program"))
        .stderr(predicate::str::contains("to stderr").and(predicate::str::contains("exit status 3")));
    // The failed run is in the results, and the run says it failed.
    let rows: Vec<ExecRow> = read_rows(&out.path().join("status/exec.csv"), true).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, 3);
    let meta = std::fs::read_to_string(out.path().join("status/meta.json")).unwrap();
    assert!(meta.contains("\"status\": \"failed\""), "{meta}");
}

#[test]
fn threads_every_function_and_the_figures_of_each_family() {
    let dir = tempfile::tempdir().unwrap();
    let workout = compile(dir.path(), "workout", WORKOUT);
    let out = dir.path().join("results");
    let mut command = heaplab();
    command.arg("exec");
    for spec in
        ["segregated:kind=tlsf", "segregated:kind=fits,classes=dl", "buddy", "slab", "freelist:fit=best", "peer:glibc"]
    {
        command.args(["--alloc", spec]);
    }
    command
        .args(["--reps", "2", "--quiet", "--out"])
        .arg(&out)
        .args(["--name", "workout", "--"])
        .arg(&workout)
        .assert()
        .success()
        .stdout(predicate::str::contains("workout done"));
    let rows = summary(&out.join("workout"));
    assert_eq!(rows.len(), 6);
    for row in &rows {
        assert_eq!(row.workload, "exec:workout");
        assert_eq!(row.reps, Some(2));
        assert!(row.wall_seconds.unwrap() > 0.0 && row.peak_rss_bytes.unwrap() > 0);
        if row.allocator == "peer:glibc" {
            assert_eq!(row.allocs, 0, "the system allocator reports nothing of its own");
            assert!(row.internal_frag_at_peak_pct.is_none());
        } else {
            // 4 threads × 20000 steps, of which about two in three allocate
            // or reallocate; the figures come from the metrics run.
            assert!(row.allocs > 20_000, "{}: {} allocs", row.allocator, row.allocs);
            assert!(row.frees > 10_000 && row.reallocs > 1_000, "{row:?}");
            assert!(row.peak_requested_bytes > 0);
            assert!(row.granted_at_peak_bytes.unwrap() >= row.peak_requested_bytes);
            assert!(row.utilization_pct.unwrap() > 0.0 && row.utilization_pct.unwrap() <= 100.0);
            assert_eq!(row.failed_allocs, 0);
        }
    }
    // compare pairs the wall times of two allocators of the run.
    heaplab()
        .arg("compare")
        .arg(out.join("workout"))
        .args(["--ours", "segregated:kind=tlsf", "--peer", "peer:glibc"])
        .assert()
        .success()
        .stdout(predicate::str::contains("exec:workout"));
}

#[test]
fn a_forked_child_keeps_its_heap_and_is_counted_apart() {
    let out = tempfile::tempdir().unwrap();
    let script = r#"my @keep = map { "x" x $_ } 1..2000; my $pid = fork(); if ($pid == 0) { my @mine = map { "y" x $_ } 1..3000; exit(length(join("", @keep)) > 0 ? 0 : 1) } waitpid($pid, 0); print "child status ", $? >> 8, "\n";"#;
    heaplab()
        .args(["exec", "--alloc", "buddy", "--reps", "1", "--quiet", "--out"])
        .arg(out.path())
        .args(["--name", "fork", "--", "perl", "-e", script])
        .assert()
        .success()
        .stdout(predicate::str::contains("child status 0"));
    let rows = summary(&out.path().join("fork"));
    assert_eq!(rows[0].child_processes, Some(1), "{:?}", rows[0]);
    assert!(rows[0].children_peak_requested_bytes.unwrap() > 0);
}

#[test]
fn an_exhausted_arena_gives_null_with_enomem() {
    let dir = tempfile::tempdir().unwrap();
    let exhaust = compile(dir.path(), "exhaust", EXHAUST);
    heaplab()
        .args(["exec", "--alloc", "segregated:kind=tlsf", "--arena", "16MiB", "--reps", "1", "--quiet", "--out"])
        .arg(dir.path().join("results"))
        .args(["--name", "exhaust", "--"])
        .arg(&exhaust)
        .assert()
        .success()
        .stdout(predicate::str::contains("errno ENOMEM").and(predicate::str::contains("refused after 1")));
    let rows = summary(&dir.path().join("results/exhaust"));
    assert!(rows[0].failed_allocs >= 1);
}

#[test]
fn a_foreign_or_double_free_aborts_naming_the_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let bad = compile(dir.path(), "bad_free", BAD_FREE);
    heaplab()
        .args(["exec", "--alloc", "slab", "--reps", "1", "--no-metrics", "--quiet", "--out"])
        .arg(dir.path())
        .args(["--name", "foreign", "--"])
        .arg(&bad)
        .assert()
        .code(128 + 6)
        .stderr(predicate::str::contains("free(0x12340): not a block heaplab's allocator handed out"));
    heaplab()
        .args(["exec", "--alloc", "freelist", "--reps", "1", "--no-metrics", "--quiet", "--out"])
        .arg(dir.path())
        .args(["--name", "twice", "--"])
        .arg(&bad)
        .arg("twice")
        .assert()
        .code(128 + 6)
        .stderr(predicate::str::contains("not a live block"));
}

#[test]
fn sort_with_threads_runs_on_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines");
    let text: String = (0..200_000u64).map(|i| format!("{}\n", i.wrapping_mul(2_654_435_761) % 1_000_003)).collect();
    std::fs::write(&input, text).unwrap();
    let assert = heaplab()
        .args(["exec", "--alloc", "segregated:kind=tlsf", "--reps", "1", "--no-metrics", "--quiet", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(dir.path())
        .args(["--name", "sort", "--", "sort", "-n", "--parallel=2", "-S", "8M"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let numbers: Vec<u64> = stdout.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(numbers.len(), 200_000);
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn families_that_cannot_serve_a_program_are_refused() {
    for (spec, expected) in [("bump", "cannot serve a program"), ("peer:rlsf", "cannot serve a program")] {
        heaplab()
            .args(["exec", "--alloc", spec, "--", "true"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected));
    }
    heaplab()
        .args(["exec", "--alloc", "buddy", "--program", "pyhton"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `python`"));
    heaplab().args(["exec", "--alloc", "buddy"]).assert().code(2).stderr(predicate::str::contains("give a command"));
}

#[test]
fn the_unbounded_peers_run_from_debians_libraries() {
    // `.ci/run` installs libmimalloc2.0 and libjemalloc2.
    let out = tempfile::tempdir().unwrap();
    heaplab()
        .args(["exec", "--alloc", "peer:mimalloc", "--alloc", "peer:jemalloc", "--reps", "1", "--quiet", "--out"])
        .arg(out.path())
        .args(["--name", "peers", "--", "sh", "-c", "echo ok"])
        .assert()
        .success();
    let meta = std::fs::read_to_string(out.path().join("peers/meta.json")).unwrap();
    assert!(meta.contains("libmimalloc2.0 ") && meta.contains("libjemalloc2 "), "{meta}");
}

#[test]
fn the_preload_library_is_never_linked_into_heaplab() {
    let binary = assert_cmd::cargo::cargo_bin("heaplab");
    let bytes = std::fs::read(&binary).unwrap();
    assert!(!bytes.windows(23).any(|w| w == b"heaplab_preload_version"));
}

#[test]
fn the_bundled_programs_run_as_they_were_recorded() {
    // python3, sqlite3, jq, perl and GCC 12's cc1 from Debian's packages
    // (`.ci/run` installs them).
    let out = tempfile::tempdir().unwrap();
    heaplab()
        .args(["exec", "--alloc", "segregated:kind=tlsf", "--alloc", "peer:glibc", "--program", "all", "--reps", "1"])
        .args(["--quiet", "--out"])
        .arg(out.path())
        .args(["--name", "bundled"])
        .assert()
        .success()
        .stdout(predicate::str::contains("5334|508").and(predicate::str::contains("20000")));
    let rows = summary(&out.path().join("bundled"));
    let workloads: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
    assert_eq!(
        workloads,
        [
            "exec:python",
            "exec:python",
            "exec:sqlite",
            "exec:sqlite",
            "exec:gcc",
            "exec:gcc",
            "exec:jq",
            "exec:jq",
            "exec:perl",
            "exec:perl"
        ]
    );
    // The programs make about as many calls as their traces hold ops.
    let tlsf =
        |workload: &str| rows.iter().find(|r| r.workload == workload && r.allocator.starts_with("segregated")).unwrap();
    assert!(tlsf("exec:python").allocs > 50_000, "{:?}", tlsf("exec:python"));
    assert!(tlsf("exec:gcc").allocs > 50_000);
    let meta = std::fs::read_to_string(out.path().join("bundled/meta.json")).unwrap();
    assert!(meta.contains("\"recorded\": \"3.40.1\""), "{meta}");
}

#[test]
fn replay_is_set_beside_reality_in_the_results_and_the_report() {
    let out = tempfile::tempdir().unwrap();
    heaplab()
        .args(["exec", "--alloc", "segregated:kind=tlsf", "--alloc", "buddy", "--alloc", "peer:glibc"])
        .args(["--program", "jq", "--reps", "1", "--replay", "--quiet", "--out"])
        .arg(out.path())
        .args(["--name", "rr"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("jq: τ time (replay ns/op vs wall) ").and(predicate::str::contains(" over 3;")),
        );
    let rows: Vec<heaplab_results::ReplayRow> = read_rows(&out.path().join("rr/replay.csv"), true).unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row.program, "jq");
        assert!(row.exec_wall_seconds.is_some() && row.replay_ns_per_op.is_some(), "{row:?}");
        // The system allocator has no footprint of its own in a replay.
        assert_eq!(row.replay_peak_footprint_bytes.is_some(), row.allocator != "peer:glibc", "{row:?}");
    }
    assert!(out.path().join("rr-replay/summary.csv").is_file());
    heaplab().arg("report").arg(out.path().join("rr")).arg("--out").arg(out.path().join("report")).assert().success();
    let markdown = std::fs::read_to_string(out.path().join("report/report.md")).unwrap();
    assert!(markdown.contains("## Replay versus reality"), "{markdown}");
    assert!(markdown.contains("| allocator | wall s | user s | sys s | peak RSS MiB |"), "{markdown}");
    assert!(!markdown.contains("heaplab run --from"), "an exec run is repeated by its command line");
}

#[test]
fn python_threads_run_on_a_lock() {
    // Debian's python3 (`.ci/run` installs it), with its allocations sent
    // to malloc rather than to CPython's own pools.
    let out = tempfile::tempdir().unwrap();
    let script = "import threading\n\
                  def work(n):\n    return [str(i) * (i % 7) for i in range(n)]\n\
                  threads = [threading.Thread(target=work, args=(20000,)) for _ in range(4)]\n\
                  [t.start() for t in threads]\n[t.join() for t in threads]\nprint('threads', len(threads))\n";
    heaplab()
        .args(["exec", "--alloc", "segregated:kind=tlsf", "--reps", "1", "--quiet", "--out"])
        .arg(out.path())
        .args(["--name", "py", "--", "env", "PYTHONMALLOC=malloc", "/usr/bin/python3", "-S", "-c", script])
        .assert()
        .success()
        .stdout(predicate::str::contains("threads 4"));
    let rows = summary(&out.path().join("py"));
    assert!(rows[0].allocs > 50_000, "{:?}", rows[0]);
}
