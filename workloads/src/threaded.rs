//! Multithreaded workloads: one program of ops per thread, and one seeded
//! interleaving of them.
//!
//! A multithreaded workload is written like a synthetic one,
//! `NAME[:key=value,…]`; its thread count is not part of the spec but comes
//! from `heaplab run --threads` (one spec, one row per thread count). Each
//! thread gets its own program; a block may be freed by another thread than
//! the one that allocated it (a remote free). Ids are unique over the whole
//! workload, so that a free names exactly one allocation.
//!
//! [`interleave`] merges the programs into one order in which every free
//! follows its allocation: what the deterministic pass replays on one
//! thread, so that fragmentation figures stay exact. The timed passes run
//! each program on its own thread, and a remote free waits until its
//! allocation has happened.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use heaplab_core::Spec;

use crate::error::TraceError;
use crate::op::{Align, Op};

/// The multithreaded workloads, with one line each.
pub const THREADED: &[(&str, &str)] = &[
    (
        "larson-mt",
        "Larson & Krishnan's server: each thread replaces random blocks of an array, then hands the array to the next thread",
    ),
    ("threadtest", "Hoard's threadtest: each thread allocates a batch of small objects and frees them all, no sharing"),
    ("xmalloc", "Lever & Boreham's xmalloc-test: batches allocated by one thread are freed by the next"),
    (
        "cache-scratch",
        "Hoard's cache-scratch: passive false sharing, each thread frees an object the first allocated, then allocates and writes",
    ),
    (
        "cache-thrash",
        "Hoard's cache-thrash: active false sharing, each thread allocates, writes repeatedly and frees small objects",
    ),
];

/// xmalloc-test's mixed sizes (`-s -1`).
const XMALLOC_SIZES: [u64; 17] = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048];

/// A parsed multithreaded workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadedSpec {
    canonical: String,
    name: String,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Larson { chunks: u64, rounds: u64, generations: u64, min: u64, max: u64 },
    Threadtest { iterations: u64, objects: u64, size: u64 },
    Xmalloc { batch: u64, batches: u64, size: Option<u64> },
    CacheScratch { iterations: u64, size: u64, writes: u32 },
    CacheThrash { iterations: u64, size: u64, writes: u32 },
}

/// The ops of every thread, one program each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programs {
    /// Thread `t`'s ops, in its order.
    pub threads: Vec<Vec<Op>>,
    /// Times each thread writes every byte of a block it allocates (the
    /// cache benchmarks' work loop); 0: none beyond `--touch`.
    pub writes_per_alloc: u32,
    /// The one order of all threads' ops the deterministic pass replays,
    /// when the workload has one (a recorded trace: its recorded order);
    /// `None`: a seeded [`interleave`].
    pub order: Option<Vec<ThreadOp>>,
}

impl ThreadedSpec {
    /// Is `name` a multithreaded workload?
    pub fn is_known(name: &str) -> bool {
        THREADED.iter().any(|(n, _)| *n == name)
    }

    /// Parse `NAME[:key=value,…]`.
    pub fn parse(text: &str) -> Result<ThreadedSpec, TraceError> {
        let error = |message: String| TraceError::Workload { workload: text.to_string(), message };
        let spec: Spec = text.parse().map_err(|e: heaplab_core::SpecError| error(e.message))?;
        let name = spec.family().to_string();
        let mut r = spec.reader();
        let count = |r: &mut heaplab_core::spec::ParamReader<'_>, key: &'static str, default: u64| {
            r.parse(key, "a whole number", default).map_err(|e| error(e.message))
        };
        let positive = |key: &str, value: u64| {
            if value == 0 { Err(error(format!("`{key}` must be at least 1"))) } else { Ok(value) }
        };
        let (shape, canonical) = match name.as_str() {
            "larson-mt" => {
                let chunks = positive("chunks", count(&mut r, "chunks", 5000)?)?;
                let rounds = positive("rounds", count(&mut r, "rounds", 10)?)?;
                let generations = positive("gens", count(&mut r, "gens", 2)?)?;
                let min = count(&mut r, "min", 8)?;
                let max = count(&mut r, "max", 1000)?;
                if min > max {
                    return Err(error(format!("`min` ({min}) is above `max` ({max})")));
                }
                (
                    Shape::Larson { chunks, rounds, generations, min, max },
                    format!("larson-mt:chunks={chunks},rounds={rounds},gens={generations},min={min},max={max}"),
                )
            }
            "threadtest" => {
                let iterations = positive("iterations", count(&mut r, "iterations", 50)?)?;
                let objects = positive("objects", count(&mut r, "objects", 10_000)?)?;
                let size = count(&mut r, "size", 8)?;
                (
                    Shape::Threadtest { iterations, objects, size },
                    format!("threadtest:iterations={iterations},objects={objects},size={size}"),
                )
            }
            "xmalloc" => {
                let batch = positive("batch", count(&mut r, "batch", 4096)?)?;
                let batches = positive("batches", count(&mut r, "batches", 20)?)?;
                let size = match r.raw("size") {
                    None => Some(64),
                    Some("mixed") => None,
                    Some(text) => Some(text.parse().map_err(|_| {
                        error(format!("`size` must be a whole number of bytes or `mixed`, found `{text}`"))
                    })?),
                };
                let shown = size.map_or("mixed".to_string(), |s| s.to_string());
                (
                    Shape::Xmalloc { batch, batches, size },
                    format!("xmalloc:batch={batch},batches={batches},size={shown}"),
                )
            }
            "cache-scratch" | "cache-thrash" => {
                let iterations = positive("iterations", count(&mut r, "iterations", 1000)?)?;
                let size = positive("size", count(&mut r, "size", 8)?)?;
                let writes = r.parse("writes", "a whole number", 1000u32).map_err(|e| error(e.message))?;
                let canonical = format!("{name}:iterations={iterations},size={size},writes={writes}");
                let shape = if name == "cache-scratch" {
                    Shape::CacheScratch { iterations, size, writes }
                } else {
                    Shape::CacheThrash { iterations, size, writes }
                };
                (shape, canonical)
            }
            _ => {
                let names: Vec<&str> = THREADED.iter().map(|(n, _)| *n).collect();
                return Err(error(format!("unknown multithreaded workload `{name}`; they are {}", names.join(", "))));
            }
        };
        r.finish().map_err(|e| error(e.message))?;
        Ok(ThreadedSpec { canonical, name, shape })
    }

    /// The canonical spec.
    pub fn spec(&self) -> &str {
        &self.canonical
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Does the seed change the ops?
    pub fn is_seeded(&self) -> bool {
        matches!(self.shape, Shape::Larson { .. } | Shape::Xmalloc { size: None, .. })
    }

    /// Each thread's program for `threads` threads and `seed`.
    pub fn programs(&self, seed: u64, threads: usize) -> Result<Programs, TraceError> {
        let too_many = |ops: u64| TraceError::Workload {
            workload: self.canonical.clone(),
            message: format!(
                "{ops} ops on {threads} threads is more than the {LIMIT} a workload may have; lower its parameters"
            ),
        };
        const LIMIT: u64 = 1 << 30;
        let threads = threads.max(1);
        let t = threads as u64;
        let planned = match self.shape {
            Shape::Larson { chunks, rounds, generations, .. } => {
                t * chunks * (1 + 2 * rounds * generations) + t * chunks
            }
            Shape::Threadtest { iterations, objects, .. } => 2 * iterations * objects,
            Shape::Xmalloc { batch, batches, .. } => 2 * t * batch * batches,
            Shape::CacheScratch { iterations, .. } => 2 * t + 2 * t * iterations,
            Shape::CacheThrash { iterations, .. } => 2 * t * iterations,
        };
        if planned > LIMIT {
            return Err(too_many(planned));
        }
        let mut ids = Ids::default();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let align = Align::UNSPECIFIED;
        let mut programs: Vec<Vec<Op>> = vec![Vec::new(); threads];
        let mut writes_per_alloc = 0;
        match self.shape {
            Shape::Larson { chunks, rounds, generations, min, max } => {
                // Thread 0 fills every thread's array first, as larson's main
                // thread does; then in each generation thread t works on the
                // array thread t-1 worked on (larson hands an array to a new
                // thread when the old one ends), so its first frees are remote.
                let mut arrays: Vec<Vec<u32>> = Vec::new();
                for _ in 0..threads {
                    let mut array = Vec::new();
                    for _ in 0..chunks {
                        let id = ids.next();
                        programs[0].push(Op::alloc(id, rng.random_range(min..=max), align));
                        array.push(id);
                    }
                    arrays.push(array);
                }
                for generation in 0..generations as usize {
                    for (thread, program) in programs.iter_mut().enumerate() {
                        let array = &mut arrays[(thread + generation) % threads];
                        for _ in 0..rounds * chunks {
                            let victim = rng.random_range(0..array.len());
                            program.push(Op::Free { id: array[victim] });
                            let id = ids.next();
                            program.push(Op::alloc(id, rng.random_range(min..=max), align));
                            array[victim] = id;
                        }
                    }
                }
                // Each thread frees the array it last worked on.
                for (thread, program) in programs.iter_mut().enumerate() {
                    let last = (thread + generations as usize - 1) % threads;
                    program.extend(arrays[last].iter().map(|&id| Op::Free { id }));
                }
            }
            Shape::Threadtest { iterations, objects, size } => {
                // Hoard's threadtest divides the objects among the threads.
                let per_thread = (objects / t).max(1);
                for program in &mut programs {
                    for _ in 0..iterations {
                        let first = ids.peek();
                        for _ in 0..per_thread {
                            program.push(Op::alloc(ids.next(), size, align));
                        }
                        program.extend((first..first + per_thread as u32).map(|id| Op::Free { id }));
                    }
                }
            }
            Shape::Xmalloc { batch, batches, size } => {
                // Thread t allocates a batch; thread t+1 frees it.
                let mut pending: Vec<Vec<u32>> = vec![Vec::new(); threads];
                for _ in 0..batches {
                    for thread in 0..threads {
                        let mut made = Vec::new();
                        for _ in 0..batch {
                            let size = size.unwrap_or_else(|| XMALLOC_SIZES[rng.random_range(0..XMALLOC_SIZES.len())]);
                            let id = ids.next();
                            programs[thread].push(Op::alloc(id, size, align));
                            made.push(id);
                        }
                        let consumer = (thread + 1) % threads;
                        let previous = std::mem::replace(&mut pending[thread], made);
                        programs[consumer].extend(previous.into_iter().map(|id| Op::Free { id }));
                    }
                }
                for (thread, left) in pending.into_iter().enumerate() {
                    let consumer = (thread + 1) % threads;
                    programs[consumer].extend(left.into_iter().map(|id| Op::Free { id }));
                }
            }
            Shape::CacheScratch { iterations, size, writes } => {
                // Thread 0 allocates one object per thread, in a row (they
                // share cache lines); each thread frees its own, then
                // allocates, writes and frees.
                let handed: Vec<u32> = (0..threads).map(|_| ids.next()).collect();
                programs[0].extend(handed.iter().map(|&id| Op::alloc(id, size, align)));
                for (thread, program) in programs.iter_mut().enumerate() {
                    program.push(Op::Free { id: handed[thread] });
                    for _ in 0..iterations {
                        let id = ids.next();
                        program.push(Op::alloc(id, size, align));
                        program.push(Op::Free { id });
                    }
                }
                writes_per_alloc = writes;
            }
            Shape::CacheThrash { iterations, size, writes } => {
                for program in &mut programs {
                    for _ in 0..iterations {
                        let id = ids.next();
                        program.push(Op::alloc(id, size, align));
                        program.push(Op::Free { id });
                    }
                }
                writes_per_alloc = writes;
            }
        }
        Ok(Programs { threads: programs, writes_per_alloc, order: None })
    }
}

#[derive(Default)]
struct Ids(u32);

impl Ids {
    fn next(&mut self) -> u32 {
        self.0 += 1;
        self.0 - 1
    }

    fn peek(&self) -> u32 {
        self.0
    }
}

pub use crate::op::ThreadOp;

/// Merge per-thread programs into one seeded order in which every free and
/// realloc follows its block's allocation: threads take turns in bursts of
/// one to eight ops, a thread whose next op waits for another thread's
/// allocation sitting its turn out. Ids must be unique over all programs.
///
/// Fails if the programs cannot be ordered (a free of a block nobody
/// allocates, or threads waiting on each other).
pub fn interleave(programs: &[Vec<Op>], seed: u64) -> Result<Vec<ThreadOp>, String> {
    let total: usize = programs.iter().map(Vec::len).sum();
    let mut order = Vec::with_capacity(total);
    let mut next = vec![0usize; programs.len()];
    let mut allocated = Vec::<bool>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1e7e_a5ed);
    let mut waiting: Vec<usize> = Vec::new();
    let ready = |op: &Op, allocated: &[bool]| match *op {
        Op::Alloc { .. } => true,
        Op::Free { id } | Op::Realloc { id, .. } => allocated.get(id as usize).copied().unwrap_or(false),
    };
    let mut running: Vec<usize> = (0..programs.len()).filter(|&t| !programs[t].is_empty()).collect();
    while !running.is_empty() {
        let pick = rng.random_range(0..running.len());
        let thread = running[pick];
        let burst = rng.random_range(1..=8);
        let mut ran = 0;
        while ran < burst && next[thread] < programs[thread].len() {
            let op = programs[thread][next[thread]];
            if !ready(&op, &allocated) {
                break;
            }
            if let Op::Alloc { id, .. } = op {
                let id = id as usize;
                if allocated.len() <= id {
                    allocated.resize(id + 1, false);
                }
                allocated[id] = true;
            }
            order.push(ThreadOp { thread: thread as u16, op });
            next[thread] += 1;
            ran += 1;
        }
        if next[thread] == programs[thread].len() {
            running.swap_remove(pick);
            waiting.clear();
        } else if ran == 0 {
            // Blocked: if every running thread is, nothing can go on.
            if !waiting.contains(&thread) {
                waiting.push(thread);
            }
            if waiting.len() == running.len() {
                return Err(format!(
                    "the threads' programs cannot be ordered: {} threads wait for allocations no thread makes",
                    waiting.len()
                ));
            }
        } else {
            waiting.clear();
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validator;

    fn ordered(spec: &str, threads: usize) -> (Programs, Vec<ThreadOp>) {
        let programs = ThreadedSpec::parse(spec).unwrap().programs(7, threads).unwrap();
        let order = interleave(&programs.threads, 7).unwrap();
        (programs, order)
    }

    #[test]
    fn every_workload_interleaves_into_a_valid_trace_on_one_to_four_threads() {
        for (name, _) in THREADED {
            let spec = match *name {
                "larson-mt" => "larson-mt:chunks=50,rounds=2",
                "threadtest" => "threadtest:iterations=3,objects=100",
                "xmalloc" => "xmalloc:batch=20,batches=3,size=mixed",
                other => &format!("{other}:iterations=20"),
            };
            for threads in 1..=4 {
                let (programs, order) = ordered(spec, threads);
                assert_eq!(order.len(), programs.threads.iter().map(Vec::len).sum::<usize>(), "{spec}");
                let mut validator = Validator::new();
                for step in &order {
                    validator.check(&step.op).unwrap_or_else(|e| panic!("{spec} on {threads}: {e}"));
                }
                // Each thread's ops keep their order.
                for (thread, program) in programs.threads.iter().enumerate() {
                    let mine: Vec<Op> = order.iter().filter(|s| s.thread as usize == thread).map(|s| s.op).collect();
                    assert_eq!(&mine, program, "{spec}: thread {thread}'s order");
                }
            }
        }
    }

    /// Frees of a block allocated by another thread, out of all frees.
    fn remote_share(order: &[ThreadOp]) -> f64 {
        let mut owner = std::collections::HashMap::new();
        let (mut frees, mut remote) = (0, 0);
        for step in order {
            match step.op {
                Op::Alloc { id, .. } => {
                    owner.insert(id, step.thread);
                }
                Op::Free { id } => {
                    frees += 1;
                    remote += usize::from(owner[&id] != step.thread);
                }
                Op::Realloc { .. } => {}
            }
        }
        remote as f64 / frees as f64
    }

    #[test]
    fn remote_frees_are_where_the_originals_have_them() {
        assert_eq!(remote_share(&ordered("threadtest:iterations=2,objects=100", 2).1), 0.0);
        assert_eq!(remote_share(&ordered("cache-thrash:iterations=10", 2).1), 0.0);
        assert_eq!(remote_share(&ordered("xmalloc:batch=10,batches=4", 2).1), 1.0);
        assert_eq!(remote_share(&ordered("xmalloc:batch=10,batches=4", 1).1), 0.0);
        // cache-scratch: one object per thread but the first is handed over.
        assert_eq!(remote_share(&ordered("cache-scratch:iterations=9", 2).1), 1.0 / 20.0);
        let larson = remote_share(&ordered("larson-mt:chunks=100,rounds=1,gens=2", 2).1);
        assert!(larson > 0.2 && larson < 0.8, "{larson}");
    }

    #[test]
    fn seeds_change_larson_and_nothing_else_changes_with_them() {
        let spec = ThreadedSpec::parse("larson-mt:chunks=20,rounds=1").unwrap();
        assert_ne!(spec.programs(1, 2).unwrap(), spec.programs(2, 2).unwrap());
        assert_eq!(spec.programs(1, 2).unwrap(), spec.programs(1, 2).unwrap());
        let spec = ThreadedSpec::parse("threadtest").unwrap();
        assert!(!spec.is_seeded());
    }

    #[test]
    fn bad_parameters_say_which() {
        for (text, expected) in [
            ("larson-mt:min=10,max=5", "`min` (10) is above `max` (5)"),
            ("threadtest:objects=0", "`objects` must be at least 1"),
            ("xmalloc:size=big", "`size` must be a whole number of bytes or `mixed`"),
            ("cache-thrash:colour=red", "colour"),
        ] {
            let message = ThreadedSpec::parse(text).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
        }
        let huge = ThreadedSpec::parse("threadtest:iterations=100000000").unwrap().programs(1, 2).unwrap_err();
        assert!(huge.to_string().contains("lower its parameters"), "{huge}");
    }

    #[test]
    fn unorderable_programs_are_refused() {
        let programs = vec![vec![Op::Free { id: 1 }], vec![Op::Free { id: 0 }]];
        assert!(interleave(&programs, 1).unwrap_err().contains("cannot be ordered"));
    }
}
