//! What a run read, pinned: the SHA-256 of every trace it replayed (a file,
//! or a bundled trace's bytes), and the machine's settings that move its
//! figures. `run --from` checks the digests, so that a trace swapped since
//! cannot pass for the one measured.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use heaplab_results::{InputDigest, SystemFacts};
use heaplab_workloads::formats::TraceReader;
use heaplab_workloads::{Format, Workload};
use sha2::{Digest as _, Sha256};

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of one workload's input, if it is read from bytes.
pub fn digest(workload: &Workload) -> std::io::Result<Option<String>> {
    match workload {
        Workload::File(path, _) => Ok(Some(hex(&std::fs::read(path)?))),
        Workload::Bundled(name) => {
            Ok(heaplab_workloads::bundled::BUNDLED.iter().find(|(n, ..)| n == name).map(|(_, _, bytes, _)| hex(bytes)))
        }
        Workload::Synthetic(spec) => match spec.input_file() {
            Some(file) => Ok(Some(hex(&std::fs::read(file)?))),
            None => Ok(None),
        },
        Workload::Threaded(_) => Ok(None),
    }
}

/// The digests of every input of `workloads`, named as `names` (the
/// settings' spelling) names them, with what reading a trace file changed
/// or left out (lines past a `.rep` header's count, sizes a lenient read
/// reused) and the notes that say so.
pub fn digests(workloads: &[Workload], names: &[String]) -> anyhow::Result<(Vec<InputDigest>, Vec<String>)> {
    let (mut inputs, mut notes) = (Vec::new(), Vec::new());
    for (workload, name) in workloads.iter().zip(names) {
        let (sha256, sizes_reused, lines_past_count) = match workload {
            // A trace file is read once: hashed, and, for `.rep` (the one
            // format whose reading can leave lines out or reuse sizes),
            // read through from the same bytes for what reading did.
            Workload::File(path, options) => {
                let bytes = std::fs::read(path).with_context(|| format!("reading {name}"))?;
                let sha256 = hex(&bytes);
                let reader = TraceReader::from_reader(std::io::Cursor::new(bytes), &path.display().to_string(), None)?;
                let mut reader = reader.with_options(*options);
                if reader.format() == Format::Rep {
                    for op in reader.by_ref() {
                        op?;
                    }
                    notes.extend(reader.notes());
                }
                (sha256, reader.sizes_reused(), reader.lines_past_count())
            }
            _ => match digest(workload).with_context(|| format!("reading {name}"))? {
                Some(sha256) => (sha256, 0, 0),
                None => continue,
            },
        };
        inputs.push(InputDigest { workload: name.clone(), sha256, sizes_reused, lines_past_count });
    }
    Ok((inputs, notes))
}

/// A trace path of a meta.json's settings, found as given or, failing that,
/// relative to the meta.json's directory; the same for the file of an
/// `empirical:file=PATH` spec.
pub fn resolve(workload: &str, meta_dir: &Path) -> String {
    if let Some(rest) = workload.strip_prefix("empirical:")
        && let Some(start) = rest.find("file=").filter(|&i| i == 0 || rest[..i].ends_with(','))
    {
        let value = &rest[start + "file=".len()..];
        let file = value.split(',').next().unwrap_or(value);
        let given = Path::new(file);
        let beside = meta_dir.join(given);
        if !given.exists() && !given.is_absolute() && beside.is_file() {
            return format!("empirical:{}file={}{}", &rest[..start], beside.display(), &value[file.len()..]);
        }
        return workload.to_string();
    }
    let given = Path::new(workload);
    if given.exists() || workload.starts_with("trace:") || given.is_absolute() {
        return workload.to_string();
    }
    let beside: PathBuf = meta_dir.join(given);
    if beside.is_file() { beside.display().to_string() } else { workload.to_string() }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|text| text.trim().to_string()).unwrap_or_default()
}

/// This machine's settings that move figures.
pub fn system_facts() -> SystemFacts {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    SystemFacts {
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        transparent_hugepages: read_trimmed("/sys/kernel/mm/transparent_hugepage/enabled"),
        cpu_governor: read_trimmed("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        cpu_flags: cpuinfo
            .lines()
            .find(|line| line.starts_with("flags"))
            .and_then(|line| line.split_once(':'))
            .map_or(String::new(), |(_, flags)| flags.trim().to_string()),
    }
}
