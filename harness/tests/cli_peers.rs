//! Peers run beside heaplab's own allocators, in one summary, with the
//! figures they cannot report left empty rather than invented.

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

#[test]
fn peers_and_heaplab_allocators_share_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .args(["run", "--alloc", "peer:*", "--alloc", "buddy", "--workload", "small-objects:ops=3000"])
        .args(["--metrics-only", "--quiet", "--name", "peers", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let mut reader = csv::Reader::from_path(dir.path().join("peers/summary.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let row = |allocator: &str| {
        rows.iter().find(|r| &r[0] == allocator).unwrap_or_else(|| panic!("no row for {allocator}")).clone()
    };
    for peer in ["talc", "rlsf", "buddy-system", "linked-list", "dlmalloc", "buddy-slab", "glibc"] {
        let r = row(&format!("peer:{peer}"));
        // Counts are always real: every peer ran the same ops.
        assert_eq!(&r[column("ops")], &row("buddy:min=16,max_order=auto,split=lower")[column("ops")]);
        assert!(r[column("peak_requested_bytes")].parse::<u64>().unwrap() > 0);
    }
    // The same buddy algorithm on a naturally aligned arena: the same figures.
    let ours = row("buddy:min=16,max_order=auto,split=lower");
    let theirs = row("peer:buddy-system");
    for name in ["granted_at_peak_bytes", "internal_frag_at_peak_pct", "peak_footprint_bytes", "utilization_pct"] {
        assert_eq!(ours[column(name)], theirs[column(name)], "{name}");
    }
    // What a peer cannot report stays empty.
    assert_eq!(&row("peer:talc")[column("granted_at_peak_bytes")], "");
    assert_eq!(&row("peer:talc")[column("external_frag_mean_pct")], "");
    assert_ne!(&row("peer:talc")[column("utilization_pct")], "");
    assert_ne!(&row("peer:rlsf")[column("external_frag_mean_pct")], "");
    for name in ["utilization_pct", "peak_footprint_bytes", "granted_at_peak_bytes"] {
        assert_eq!(&row("peer:glibc")[column(name)], "", "{name}");
    }
}

#[test]
fn unknown_peers_are_named_and_refused() {
    heaplab()
        .args(["run", "--alloc", "peer:tcmalloc", "--workload", "small-objects:ops=10", "--metrics-only"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown peer `tcmalloc`; the peers are talc, rlsf"));
}

#[test]
fn heap_maps_need_a_walkable_free_space() {
    let dir = tempfile::tempdir().unwrap();
    heaplab()
        .current_dir(dir.path())
        .args(["heapmap", "--alloc", "peer:glibc", "--workload", "small-objects:ops=100", "--at", "50"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("peer:glibc cannot draw a heap map"));
}
