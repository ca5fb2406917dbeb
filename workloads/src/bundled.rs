//! Real-program traces recorded with `heaplab record` and carried inside
//! the binary (a few hundred KiB, zstd-compressed), so `trace:NAME` works
//! wherever heaplab runs. workloads/README.md says how each was recorded;
//! workloads/traces/record.sh records them again.

/// `(name, what it exercises, the compressed native trace, the threads it
/// was recorded on)`.
pub const BUNDLED: &[(&str, &str, &[u8], u16)] = &[
    (
        "python",
        "CPython 3.11 (PYTHONMALLOC=malloc) building dicts and lists, JSON round trip, sorting",
        include_bytes!("../traces/python.hlt.zst"),
        1,
    ),
    (
        "sqlite",
        "SQLite 3.40 in memory: inserts, an index, a join, aggregation, deletes, vacuum",
        include_bytes!("../traces/sqlite.hlt.zst"),
        1,
    ),
    ("gcc", "GCC 12's cc1 compiling a 20-function C file at -O1", include_bytes!("../traces/gcc.hlt.zst"), 1),
    ("jq", "jq 1.6 building 10,000 objects, grouping and summarising them", include_bytes!("../traces/jq.hlt.zst"), 1),
    (
        "perl",
        "Perl 5.36 growing 20,000 hash entries by string appends, then sorting",
        include_bytes!("../traces/perl.hlt.zst"),
        1,
    ),
    (
        "python-threads",
        "CPython 3.11 (PYTHONMALLOC=malloc), two threads: a producer builds records, a consumer encodes and drops them",
        include_bytes!("../traces/python-threads.hlt.zst"),
        2,
    ),
];

/// The compressed bytes of a bundled trace.
pub fn bundled(name: &str) -> Option<&'static [u8]> {
    BUNDLED.iter().find(|(n, ..)| *n == name).map(|(_, _, bytes, _)| *bytes)
}
