//! A workload as the command line names it: a synthetic spec or a trace file.

use std::path::{Path, PathBuf};

use crate::error::TraceError;
use crate::formats::{self, Format, ReadOptions};
use crate::op::{Op, ThreadOp};
use crate::synth::SyntheticSpec;
use crate::threaded::{Programs, ThreadedSpec, interleave};

/// Something to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// Generated from a spec and a seed.
    Synthetic(SyntheticSpec),
    /// Read from a trace file, with these options; seeds do not apply.
    File(PathBuf, ReadOptions),
    /// A bundled real-program trace, `trace:NAME`.
    Bundled(&'static str),
    /// A multithreaded workload; its thread count comes from the run.
    Threaded(ThreadedSpec),
}

impl Workload {
    /// A trace file if `text` has a trace extension or a `/`, a synthetic
    /// spec if it is one (a preset wins over a file of the same name in the
    /// working directory: `./ramp` names the file), else an existing file.
    pub fn parse(text: &str) -> Result<Workload, TraceError> {
        if let Some(name) = text.strip_prefix("trace:") {
            return match crate::bundled::BUNDLED.iter().find(|(n, ..)| *n == name) {
                Some((name, ..)) => Ok(Workload::Bundled(name)),
                None => {
                    let names: Vec<String> =
                        crate::bundled::BUNDLED.iter().map(|(n, ..)| format!("trace:{n}")).collect();
                    Err(TraceError::Workload {
                        workload: text.to_string(),
                        message: format!("no bundled trace `{name}`; the bundled traces are {}", names.join(", ")),
                    })
                }
            };
        }
        let path = Path::new(text);
        if path.is_dir() {
            return Err(TraceError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "is a directory; expected a trace file (.rep, mtrace, .hlt, each optionally .zst) or a synthetic spec",
                ),
            ));
        }
        // A spec's parameters may hold a path (`empirical:file=dir/sizes.csv`):
        // a slash makes a file only when no known family leads the text.
        let family = text.split(':').next().unwrap_or_default();
        let spec_family = text.contains(':') && (SyntheticSpec::is_known(family) || ThreadedSpec::is_known(family));
        if (Format::from_path(path).is_some() || text.contains('/')) && !spec_family {
            if !path.is_file() {
                return Err(TraceError::io(
                    path,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such trace file"),
                ));
            }
            return Ok(Workload::File(path.to_path_buf(), ReadOptions::default()));
        }
        if ThreadedSpec::is_known(family) {
            return ThreadedSpec::parse(text).map(Workload::Threaded);
        }
        match SyntheticSpec::parse(text) {
            Ok(spec) => Ok(Workload::Synthetic(spec)),
            Err(_) if path.is_file() => Ok(Workload::File(path.to_path_buf(), ReadOptions::default())),
            Err(error) => Err(error),
        }
    }

    /// The same workload, a trace file read with `options`.
    pub fn with_options(self, options: ReadOptions) -> Workload {
        match self {
            Workload::File(path, _) => Workload::File(path, options),
            other => other,
        }
    }

    /// The name results carry: the canonical spec, or the file's path.
    pub fn name(&self) -> String {
        match self {
            Workload::Synthetic(spec) => spec.spec().to_string(),
            Workload::File(path, _) => path.display().to_string(),
            Workload::Bundled(name) => format!("trace:{name}"),
            Workload::Threaded(spec) => spec.spec().to_string(),
        }
    }

    /// Is this a multithreaded workload?
    pub fn is_threaded(&self) -> bool {
        matches!(self, Workload::Threaded(_))
    }

    /// The threads' programs of a multithreaded workload. A trace recorded
    /// on T threads runs on one (its recorded order) or on a multiple of T
    /// (copies of its threads, each copy replaying the recorded order of its
    /// own). Any other workload becomes `threads` copies of itself, one per
    /// thread (the way mimalloc-bench runs a single-threaded benchmark N
    /// times at once). Copies have ids of their own.
    pub fn programs(&self, seed: u64, threads: usize) -> Result<Programs, TraceError> {
        if let Workload::Threaded(spec) = self {
            return spec.programs(seed, threads);
        }
        let threads = threads.max(1);
        let (one, per_copy, recorded) = self.dense_steps(seed)?;
        let (copies, recorded) = match recorded {
            1 => (threads, 1),
            _ if threads == 1 => (1, 1),
            t if threads.is_multiple_of(t) => (threads / t, t),
            t => {
                return Err(TraceError::Workload {
                    workload: self.name(),
                    message: format!(
                        "it was recorded on {t} threads: --threads runs it on 1 (its recorded order on one thread) or on a multiple of {t} (copies of its threads), not on {threads}"
                    ),
                });
            }
        };
        let mut programs: Vec<Vec<Op>> = vec![Vec::new(); copies * recorded];
        for copy in 0..copies {
            let offset = (copy as u32).checked_mul(per_copy).ok_or_else(|| TraceError::TooManyAllocations {
                path: self.name(),
                index: 0,
                limit: u32::MAX.into(),
            })?;
            for step in &one {
                let thread = if recorded == 1 { copy } else { copy * recorded + step.thread as usize };
                programs[thread].push(step.op.with_id(step.op.id() + offset));
            }
        }
        let order = (recorded > 1).then(|| {
            if copies == 1 {
                return one;
            }
            // Each copy's recorded order, the copies merged in seeded bursts.
            let streams: Vec<Vec<Op>> = (0..copies as u32)
                .map(|copy| one.iter().map(|s| s.op.with_id(s.op.id() + copy * per_copy)).collect())
                .collect();
            let merged = interleave(&streams, seed).expect("copies share no block, so they always interleave");
            let mut next = vec![0usize; copies];
            merged
                .into_iter()
                .map(|step| {
                    let copy = step.thread as usize;
                    let thread = copy * recorded + one[next[copy]].thread as usize;
                    next[copy] += 1;
                    ThreadOp { thread: thread as u16, op: step.op }
                })
                .collect()
        });
        Ok(Programs { threads: programs, writes_per_alloc: 0, order })
    }

    /// The ops with their threads, validated, on dense ids (one per
    /// allocation) and dense threads (in the order of their ids); with the
    /// number of ids and of threads.
    fn dense_steps(&self, seed: u64) -> Result<(Vec<ThreadOp>, u32, usize), TraceError> {
        let mut steps = Vec::new();
        let mut validator = crate::Validator::new();
        let mut ids = crate::IdMap::<u32>::new();
        let mut next_id = 0u32;
        let mut threads_seen = std::collections::BTreeSet::new();
        for (index, step) in self.steps(seed)?.enumerate() {
            let ThreadOp { thread, op } = step?;
            validator.check(&op).map_err(|what| TraceError::Invalid {
                path: self.name(),
                index: index as u64,
                what,
            })?;
            threads_seen.insert(thread);
            let op = match op {
                Op::Alloc { id, size, align, level, space } => {
                    ids.set(id, next_id);
                    next_id += 1;
                    Op::Alloc { id: next_id - 1, size, align, level, space }
                }
                Op::Free { id } => Op::Free { id: ids.get(id) },
                Op::Realloc { id, size } => Op::Realloc { id: ids.get(id), size },
            };
            steps.push(ThreadOp { thread, op });
        }
        let dense: Vec<u16> = threads_seen.into_iter().collect();
        if dense.last().is_some_and(|&last| usize::from(last) + 1 != dense.len()) {
            for step in &mut steps {
                step.thread = dense.binary_search(&step.thread).expect("seen") as u16;
            }
        }
        Ok((steps, next_id, dense.len().max(1)))
    }

    /// The ops with the thread that makes each: a trace's recorded threads,
    /// thread 0 for everything else (a multithreaded workload outside `run
    /// --threads` is its one-thread form, as with [`Workload::ops`]).
    pub fn steps(
        &self,
        seed: u64,
    ) -> Result<Box<dyn Iterator<Item = Result<ThreadOp, TraceError>> + Send>, TraceError> {
        Ok(match self.trace()? {
            Some(reader) => Box::new(reader.steps()),
            None => Box::new(self.ops(seed)?.map(|op| op.map(ThreadOp::single))),
        })
    }

    /// A trace's reader; `None` for a generated workload.
    pub fn trace(&self) -> Result<Option<formats::TraceReader>, TraceError> {
        Ok(match self {
            Workload::File(path, options) => Some(formats::open_with(path, *options)?),
            Workload::Bundled(name) => {
                let bytes = crate::bundled::bundled(name).expect("parsed names are bundled");
                Some(formats::TraceReader::from_reader(bytes, &format!("trace:{name}"), None)?)
            }
            Workload::Synthetic(_) | Workload::Threaded(_) => None,
        })
    }

    /// Does the seed change the ops?
    pub fn is_seeded(&self) -> bool {
        match self {
            Workload::Synthetic(spec) => spec.is_seeded(),
            Workload::Threaded(spec) => spec.is_seeded(),
            Workload::File(..) | Workload::Bundled(_) => false,
        }
    }

    /// The arena this workload is designed for, if any.
    pub fn suggested_arena(&self) -> Option<u64> {
        match self {
            Workload::Synthetic(spec) => spec.suggested_arena(),
            Workload::File(..) | Workload::Bundled(_) | Workload::Threaded(_) => None,
        }
    }

    /// Stream the ops.
    pub fn ops(&self, seed: u64) -> Result<Box<dyn Iterator<Item = Result<Op, TraceError>> + Send>, TraceError> {
        Ok(match self {
            Workload::Synthetic(spec) => Box::new(spec.generate(seed)?.map(Ok)),
            Workload::File(..) | Workload::Bundled(_) => {
                Box::new(self.trace()?.expect("files and bundled traces are traces"))
            }
            // Outside `run --threads`, a multithreaded workload is its
            // one-thread form.
            Workload::Threaded(spec) => {
                let mut programs = spec.programs(seed, 1)?;
                Box::new(std::mem::take(&mut programs.threads[0]).into_iter().map(Ok))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Align;

    /// A recorded trace on two threads: thread 1 frees what thread 0
    /// allocated, and reallocates one of its blocks.
    fn two_threads(dir: &Path) -> Workload {
        let a = |id, size| Op::alloc(id, size, Align::UNSPECIFIED);
        let steps = [
            (0, a(0, 10)),
            (0, a(1, 20)),
            (1, a(2, 30)),
            (1, Op::Free { id: 0 }),
            (1, Op::Realloc { id: 1, size: 40 }),
            (0, Op::Free { id: 2 }),
            (0, Op::Free { id: 1 }),
        ];
        let path = dir.join("mt.hlt");
        let steps = steps.map(|(thread, op)| Ok(ThreadOp { thread, op }));
        formats::write_steps(&path, None, steps, "two threads", formats::Fields { threads: true, levels: false })
            .unwrap();
        Workload::parse(path.to_str().unwrap()).unwrap()
    }

    #[test]
    fn a_recorded_trace_runs_on_its_threads_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let workload = two_threads(dir.path());
        let programs = workload.programs(1, 2).unwrap();
        assert_eq!(programs.threads.iter().map(Vec::len).collect::<Vec<_>>(), [4, 3]);
        let order = programs.order.expect("the recorded order");
        assert_eq!(order.iter().map(|s| s.thread).collect::<Vec<_>>(), [0, 0, 1, 1, 1, 0, 0]);
        // On one thread: the recorded order, nothing else.
        let one = workload.programs(1, 1).unwrap();
        assert_eq!((one.threads.len(), one.threads[0].len(), one.order), (1, 7, None));
    }

    #[test]
    fn a_multiple_of_its_threads_runs_copies_and_other_counts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let workload = two_threads(dir.path());
        let programs = workload.programs(5, 4).unwrap();
        assert_eq!(programs.threads.iter().map(Vec::len).collect::<Vec<_>>(), [4, 3, 4, 3]);
        // The second copy's ids are its own; its thread 1 frees its thread 0's block.
        assert_eq!(programs.threads[3][1], Op::Free { id: 3 });
        let order = programs.order.unwrap();
        let mut validator = crate::Validator::new();
        for step in &order {
            validator.check(&step.op).unwrap();
        }
        for (thread, program) in programs.threads.iter().enumerate() {
            let mine: Vec<Op> = order.iter().filter(|s| usize::from(s.thread) == thread).map(|s| s.op).collect();
            assert_eq!(&mine, program, "thread {thread} keeps its order");
        }
        let error = workload.programs(5, 3).unwrap_err().to_string();
        assert!(error.contains("recorded on 2 threads") && error.contains("not on 3"), "{error}");
    }
}
