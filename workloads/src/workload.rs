//! A workload as the command line names it: a synthetic spec or a trace file.

use std::path::{Path, PathBuf};

use crate::error::TraceError;
use crate::formats::{self, Format};
use crate::op::Op;
use crate::synth::SyntheticSpec;
use crate::threaded::{Programs, ThreadedSpec};

/// Something to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// Generated from a spec and a seed.
    Synthetic(SyntheticSpec),
    /// Read from a trace file; seeds do not apply.
    File(PathBuf),
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
            return match crate::bundled::BUNDLED.iter().find(|(n, _, _)| *n == name) {
                Some((name, _, _)) => Ok(Workload::Bundled(name)),
                None => {
                    let names: Vec<String> =
                        crate::bundled::BUNDLED.iter().map(|(n, _, _)| format!("trace:{n}")).collect();
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
        if Format::from_path(path).is_some() || text.contains('/') {
            if !path.is_file() {
                return Err(TraceError::io(
                    path,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such trace file"),
                ));
            }
            return Ok(Workload::File(path.to_path_buf()));
        }
        let family = text.split(':').next().unwrap_or_default();
        if ThreadedSpec::is_known(family) {
            return ThreadedSpec::parse(text).map(Workload::Threaded);
        }
        match SyntheticSpec::parse(text) {
            Ok(spec) => Ok(Workload::Synthetic(spec)),
            Err(_) if path.is_file() => Ok(Workload::File(path.to_path_buf())),
            Err(error) => Err(error),
        }
    }

    /// The name results carry: the canonical spec, or the file's path.
    pub fn name(&self) -> String {
        match self {
            Workload::Synthetic(spec) => spec.spec().to_string(),
            Workload::File(path) => path.display().to_string(),
            Workload::Bundled(name) => format!("trace:{name}"),
            Workload::Threaded(spec) => spec.spec().to_string(),
        }
    }

    /// Is this a multithreaded workload?
    pub fn is_threaded(&self) -> bool {
        matches!(self, Workload::Threaded(_))
    }

    /// The threads' programs of a multithreaded workload; any other
    /// workload becomes `threads` copies of itself, one per thread, each
    /// with ids of its own (the way mimalloc-bench runs a single-threaded
    /// benchmark N times at once).
    pub fn programs(&self, seed: u64, threads: usize) -> Result<Programs, TraceError> {
        if let Workload::Threaded(spec) = self {
            return spec.programs(seed, threads);
        }
        let mut one = Vec::new();
        let mut validator = crate::Validator::new();
        let mut ids = crate::IdMap::<u32>::new();
        let mut next_id = 0u32;
        for (index, op) in self.ops(seed)?.enumerate() {
            let op = op?;
            validator.check(&op).map_err(|what| TraceError::Invalid {
                path: self.name(),
                index: index as u64,
                what,
            })?;
            // Dense ids, one per allocation, so that copies can be offset.
            let op = match op {
                Op::Alloc { id, size, align } => {
                    ids.set(id, next_id);
                    next_id += 1;
                    Op::Alloc { id: next_id - 1, size, align }
                }
                Op::Free { id } => Op::Free { id: ids.get(id) },
                Op::Realloc { id, size } => Op::Realloc { id: ids.get(id), size },
            };
            one.push(op);
        }
        let per_copy = next_id;
        let copies = (0..threads.max(1) as u32)
            .map(|copy| {
                let offset = copy.checked_mul(per_copy).ok_or_else(|| TraceError::TooManyAllocations {
                    path: self.name(),
                    index: 0,
                    limit: u32::MAX.into(),
                })?;
                Ok(one.iter().map(|&op| op.with_id(op.id() + offset)).collect())
            })
            .collect::<Result<Vec<Vec<Op>>, TraceError>>()?;
        Ok(Programs { threads: copies, writes_per_alloc: 0 })
    }

    /// Does the seed change the ops?
    pub fn is_seeded(&self) -> bool {
        match self {
            Workload::Synthetic(spec) => spec.is_seeded(),
            Workload::Threaded(spec) => spec.is_seeded(),
            Workload::File(_) | Workload::Bundled(_) => false,
        }
    }

    /// The arena this workload is designed for, if any.
    pub fn suggested_arena(&self) -> Option<u64> {
        match self {
            Workload::Synthetic(spec) => spec.suggested_arena(),
            Workload::File(_) | Workload::Bundled(_) | Workload::Threaded(_) => None,
        }
    }

    /// Stream the ops.
    pub fn ops(&self, seed: u64) -> Result<Box<dyn Iterator<Item = Result<Op, TraceError>> + Send>, TraceError> {
        Ok(match self {
            Workload::Synthetic(spec) => Box::new(spec.generate(seed)?.map(Ok)),
            Workload::File(path) => Box::new(formats::open(path)?),
            Workload::Bundled(name) => {
                let bytes = crate::bundled::bundled(name).expect("parsed names are bundled");
                Box::new(formats::TraceReader::from_reader(bytes, &format!("trace:{name}"), None)?)
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
