//! A workload as the command line names it: a synthetic spec or a trace file.

use std::path::{Path, PathBuf};

use crate::error::TraceError;
use crate::formats::{self, Format};
use crate::op::Op;
use crate::synth::SyntheticSpec;

/// Something to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// Generated from a spec and a seed.
    Synthetic(SyntheticSpec),
    /// Read from a trace file; seeds do not apply.
    File(PathBuf),
    /// A bundled real-program trace, `trace:NAME`.
    Bundled(&'static str),
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
        }
    }

    /// Does the seed change the ops?
    pub fn is_seeded(&self) -> bool {
        matches!(self, Workload::Synthetic(spec) if spec.is_seeded())
    }

    /// The arena this workload is designed for, if any.
    pub fn suggested_arena(&self) -> Option<u64> {
        match self {
            Workload::Synthetic(spec) => spec.suggested_arena(),
            Workload::File(_) | Workload::Bundled(_) => None,
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
        })
    }
}
