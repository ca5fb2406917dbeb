//! `heaplab record`: a C program of known behaviour, built here, recorded
//! call for call; output and exit status passed through; children traced.

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use heaplab_workloads::{Align, Op, ThreadOp, formats};
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

/// What both test programs start with: headers, and a stage the threads
/// wait on.
const PRELUDE: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int stage = 0;
static void wait_for_stage(int wanted) {
    pthread_mutex_lock(&m);
    while (stage != wanted) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
}
static void set_stage(int next) {
    pthread_mutex_lock(&m);
    stage = next;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
}
"#;

/// Between two marker allocations (123457 and 123458 bytes): a malloc, a
/// calloc, a realloc, posix_memalign, aligned_alloc, frees, and a malloc and
/// free made by a second thread while the main thread waits for it.
const PROGRAM: &str = r#"
static void *worker(void *arg) {
    wait_for_stage(1);
    char *p = malloc(333);
    memset(p, 1, 333);
    free(p);
    set_stage(2);
    return arg;
}
int main(void) {
    pthread_t thread;
    pthread_create(&thread, 0, worker, 0);
    void *start = malloc(123457);
    char *a = malloc(100);
    char *b = calloc(10, 20);
    a = realloc(a, 1000);
    void *aligned = 0;
    if (posix_memalign(&aligned, 256, 300) != 0) return 1;
    void *q = aligned_alloc(64, 128);
    free(b);
    set_stage(1);
    wait_for_stage(2);
    free(a);
    free(aligned);
    free(q);
    free(start);
    void *end = malloc(123458);
    free(end);
    pthread_join(thread, 0);
    printf("done\n");
    return 7;
}
"#;

fn compile(dir: &Path) -> std::path::PathBuf {
    compile_program(dir, "known", PROGRAM)
}

fn compile_program(dir: &Path, name: &str, program: &str) -> std::path::PathBuf {
    let source = dir.join(format!("{name}.c"));
    std::fs::write(&source, format!("{PRELUDE}{program}")).unwrap();
    let binary = dir.join(name);
    // -O0 and -fno-builtin: the compiler must not elide a malloc/free pair.
    let status = Process::new("cc")
        .args(["-O0", "-fno-builtin", "-pthread", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("a C compiler (`cc`) is needed to build the recorded test program");
    assert!(status.success(), "compiling the test program failed");
    binary
}

/// Renumber ids in order of first appearance.
fn canonical(ops: &[Op]) -> Vec<Op> {
    let mut ids = std::collections::HashMap::new();
    let mut id = |old: u32| {
        let next = ids.len() as u32;
        *ids.entry(old).or_insert(next)
    };
    ops.iter()
        .map(|op| match *op {
            Op::Alloc { id: i, size, align, .. } => Op::alloc(id(i), size, align),
            Op::Free { id: i } => Op::Free { id: id(i) },
            Op::Realloc { id: i, size } => Op::Realloc { id: id(i), size },
        })
        .collect()
}

#[test]
fn a_known_program_is_recorded_call_for_call() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path());
    let trace = dir.path().join("known.hlt");
    heaplab()
        .args(["record", "-o"])
        .arg(&trace)
        .arg("--")
        .arg(&binary)
        .assert()
        .code(7)
        .stdout("done\n")
        .stderr(predicate::str::contains("-> ").and(predicate::str::contains("known.hlt")));
    let ops = formats::read_all(&trace).unwrap();
    let start = ops.iter().position(|op| matches!(op, Op::Alloc { size: 123457, .. })).expect("the start marker");
    let end = ops.iter().position(|op| matches!(op, Op::Alloc { size: 123458, .. })).expect("the end marker");
    let u = Align::UNSPECIFIED;
    let expected = vec![
        Op::alloc(0, 123457, u),
        Op::alloc(1, 100, u),
        Op::alloc(2, 200, u),
        Op::Realloc { id: 1, size: 1000 },
        Op::alloc(3, 300, Align::new(256).unwrap()),
        Op::alloc(4, 128, Align::new(64).unwrap()),
        Op::Free { id: 2 },
        Op::alloc(5, 333, u),
        Op::Free { id: 5 },
        Op::Free { id: 1 },
        Op::Free { id: 3 },
        Op::Free { id: 4 },
        Op::Free { id: 0 },
        Op::alloc(6, 123458, u),
    ];
    assert_eq!(canonical(&ops[start..=end]), expected);
    heaplab().args(["trace", "validate"]).arg(&trace).assert().success();
    // The worker's malloc and free are its own thread's, everything else the main thread's.
    let steps: Vec<ThreadOp> = formats::open(&trace).unwrap().steps().collect::<Result<_, _>>().unwrap();
    let threads: Vec<u16> = steps[start..=end].iter().map(|s| s.thread).collect();
    assert_eq!(threads, [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
}

/// Thread `first` is created first but allocates last; thread `second`
/// allocates, then forks a child that allocates and exits.
const THREADS_AND_FORK: &str = r#"
static void *first(void *arg) {
    wait_for_stage(1);
    free(malloc(1111));
    return arg;
}
static void *second(void *arg) {
    free(malloc(2222));
    pid_t pid = fork();
    if (pid == 0) {
        free(malloc(3333));
        _exit(0);
    }
    waitpid(pid, 0, 0);
    set_stage(1);
    return arg;
}
int main(void) {
    pthread_t a, b;
    free(malloc(4444));
    pthread_create(&a, 0, first, 0);
    pthread_create(&b, 0, second, 0);
    pthread_join(b, 0);
    pthread_join(a, 0);
    free(malloc(5555));
    return 0;
}
"#;

#[test]
fn threads_are_numbered_in_creation_order_and_a_forked_child_numbers_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile_program(dir.path(), "threads", THREADS_AND_FORK);
    let trace = dir.path().join("threads.hlt");
    heaplab()
        .args(["record", "-o"])
        .arg(&trace)
        .arg("--")
        .arg(&binary)
        .assert()
        .success()
        .stderr(predicate::str::contains("on 3 threads"));
    let thread_of = |path: &Path, size: u64| {
        let reader = formats::open(path).unwrap();
        let steps: Vec<ThreadOp> = reader.steps().collect::<Result<_, _>>().unwrap();
        steps.iter().find(|s| matches!(s.op, Op::Alloc { size: n, .. } if n == size)).map(|s| s.thread)
    };
    assert!(formats::open(&trace).unwrap().has_threads());
    // Created first, so thread 1, although the second allocated before it.
    assert_eq!([4444, 1111, 2222, 5555].map(|size| thread_of(&trace, size)), [Some(0), Some(1), Some(2), Some(0)]);
    let child = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("threads.") && name.ends_with(".hlt") && *p != trace
        })
        .expect("the child's trace");
    // The child is one thread, its 0: the thread that forked.
    assert!(!formats::open(&child).unwrap().has_threads());
    assert_eq!(thread_of(&child, 3333), Some(0));
    assert_eq!(thread_of(&child, 2222), None);
}

#[test]
fn child_processes_get_their_own_traces_and_the_exit_status_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path());
    let trace = dir.path().join("shell.hlt");
    let script = format!("{} > /dev/null; {} > /dev/null; exit 5", binary.display(), binary.display());
    heaplab().args(["record", "-o"]).arg(&trace).args(["--", "sh", "-c", &script]).assert().code(5);
    let children: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("shell.") && name.ends_with(".hlt") && name != "shell.hlt")
        .collect();
    assert_eq!(children.len(), 2, "{children:?}");
    for child in children {
        let ops = formats::read_all(&dir.path().join(child)).unwrap();
        assert!(ops.iter().any(|op| matches!(op, Op::Alloc { size: 123457, .. })));
    }
}

#[test]
fn the_heaplab_binary_never_links_the_preload_library() {
    // The recorder crate is a dependency only so that it gets built; its
    // malloc must never replace heaplab's own.
    let binary = assert_cmd::cargo::cargo_bin("heaplab");
    let output = Process::new("nm").arg(&binary).output();
    if let Ok(output) = output
        && output.status.success()
    {
        assert!(!String::from_utf8_lossy(&output.stdout).contains("heaplab_recorder_version"));
    } else {
        let bytes = std::fs::read(&binary).unwrap();
        assert!(!bytes.windows(24).any(|w| w == b"heaplab_recorder_version"));
    }
}

#[test]
fn a_missing_command_is_a_clear_error() {
    heaplab()
        .args(["record", "--", "/no/such/program"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot run `/no/such/program`"));
    heaplab()
        .args(["record", "--library", "/no/lib.so", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such preload library"));
}
