//! `heaplab exec`: a real program on an allocator, measured as
//! mimalloc-bench and hyperfine measure it.
//!
//! Each run of the program is one child process: heaplab's families through
//! the `heaplab-preload` library, `peer:glibc` as the system allocator,
//! `peer:mimalloc` and `peer:jemalloc` as Debian's shared libraries
//! preloaded. [`run_once`] waits for it with `wait4` and returns its wall,
//! user and system time, peak resident set and page faults; the preload
//! library's per-process reports ([`read_reports`]) give the allocator's own
//! figures.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::registry::AllocatorSpec;

/// How one allocator serves a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// A heaplab allocator, through the preload library; its canonical spec.
    Heaplab(String),
    /// The system allocator: nothing preloaded.
    System,
    /// A shared library preloaded: `peer:mimalloc`, `peer:jemalloc`.
    Library {
        /// Where it is.
        path: PathBuf,
        /// The Debian package it comes from.
        package: &'static str,
    },
}

use heaplab_interpose::exec_env;
/// The families the preload library can build.
pub use heaplab_interpose::exec_env::FAMILIES;

/// Shared libraries of the unbounded peers, as Debian installs them.
const PEER_LIBRARIES: [(&str, &str, &str); 2] =
    [("peer:mimalloc", "libmimalloc.so.2", "libmimalloc2.0"), ("peer:jemalloc", "libjemalloc.so.2", "libjemalloc2")];

const LIBRARY_DIRS: [&str; 4] = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"];

/// How `spec` serves a program, or why it cannot.
pub fn provider(spec: &AllocatorSpec) -> anyhow::Result<Provider> {
    let canonical = spec.spec();
    if FAMILIES.contains(&spec.family()) {
        return Ok(Provider::Heaplab(canonical));
    }
    if canonical == "peer:glibc" {
        return Ok(Provider::System);
    }
    if let Some(&(_, file, package)) = PEER_LIBRARIES.iter().find(|(name, ..)| *name == canonical) {
        for dir in LIBRARY_DIRS {
            let path = Path::new(dir).join(file);
            if path.is_file() {
                return Ok(Provider::Library { path, package });
            }
        }
        bail!(
            "{canonical} runs a program through Debian's {package} ({file}), which is not installed: apt-get install {package}"
        );
    }
    bail!(
        "{canonical} cannot serve a program: heaplab exec runs the {} families, peer:glibc, peer:mimalloc and peer:jemalloc \
         (bump never reuses memory; the bounded peers have no C interface here)",
        FAMILIES.join(", ")
    )
}

/// The version of a provider's code, for the results.
pub fn provider_version(provider: &Provider) -> Option<String> {
    match provider {
        Provider::Heaplab(_) => None,
        Provider::System => {
            let output = Command::new("ldd").arg("--version").output().ok()?;
            String::from_utf8_lossy(&output.stdout).lines().next().map(|line| line.trim().to_string())
        }
        Provider::Library { package, .. } => {
            let output = Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]).output().ok()?;
            let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
            (!version.is_empty()).then(|| format!("{package} {version}"))
        }
    }
}

/// One bundled program: the command that recorded `trace:NAME`.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// `python`, `sqlite`, `gcc`, `jq` or `perl`, as the trace is named.
    pub name: &'static str,
    /// The executable, which must be on this machine.
    pub executable: &'static str,
    /// The version the bundled trace was recorded with (Debian 12).
    pub recorded_version: &'static str,
    /// A command printing the version; its first line is taken.
    pub version_command: &'static [&'static str],
}

/// The five bundled programs, in the order of `trace:NAME`.
pub const PROGRAMS: [Program; 5] = [
    Program {
        name: "python",
        executable: "/usr/bin/python3",
        recorded_version: "Python 3.11.2",
        version_command: &["/usr/bin/python3", "--version"],
    },
    Program {
        name: "sqlite",
        executable: "sqlite3",
        recorded_version: "3.40.1",
        version_command: &["sqlite3", "--version"],
    },
    Program {
        name: "gcc",
        executable: "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
        recorded_version: "12.2.0",
        version_command: &["gcc", "-dumpfullversion"],
    },
    Program { name: "jq", executable: "jq", recorded_version: "jq-1.6", version_command: &["jq", "--version"] },
    Program {
        name: "perl",
        executable: "perl",
        recorded_version: "v5.36.0",
        version_command: &["perl", "-e", "print $^V, qq(\\n)"],
    },
];

/// The inputs the bundled programs read, carried in the binary.
const PYTHON_WORKLOAD: &str = include_str!("../../workloads/traces/inputs/python_workload.py");
const SQLITE_WORKLOAD: &str = include_str!("../../workloads/traces/inputs/sqlite_workload.sql");
const COMPILE_ME: &str = include_str!("../../workloads/traces/inputs/compile_me.c");
/// The perl one-liner of `workloads/traces/record.sh`.
const PERL_SCRIPT: &str = "my %h; for my $i (1..150000) { my $w = \"w\" . ($i * 7919 % 20000); $h{$w} .= \"x\" } \
                           my @k = sort { length($h{$b}) <=> length($h{$a}) or $a cmp $b } keys %h; print scalar(@k), \"\\n\"";
const JQ_PROGRAM: &str =
    "[range(10000) | {k: ., v: (. * 7 | tostring)}] | group_by(.k % 100) | map({k: .[0].k, n: length}) | length";

/// What a bundled program runs: its command line and the file it reads
/// on standard input, with its inputs written into `dir`.
pub fn program_command(program: &Program, dir: &Path) -> anyhow::Result<(Vec<OsString>, Option<PathBuf>)> {
    let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let words = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
    Ok(match program.name {
        "python" => {
            let script = write("python_workload.py", PYTHON_WORKLOAD)?;
            let mut command = words(&["env", "PYTHONMALLOC=malloc", program.executable, "-S"]);
            command.push(script.into_os_string());
            (command, None)
        }
        "sqlite" => (words(&[program.executable, ":memory:"]), Some(write("sqlite_workload.sql", SQLITE_WORKLOAD)?)),
        "gcc" => {
            let source = write("compile_me.c", COMPILE_ME)?;
            let mut command = words(&[program.executable, "-quiet", "-O1"]);
            command.push(source.into_os_string());
            command.extend(words(&["-o", "/dev/null"]));
            (command, None)
        }
        "jq" => (words(&[program.executable, "-n", JQ_PROGRAM]), None),
        "perl" => (words(&[program.executable, "-e", PERL_SCRIPT]), None),
        other => bail!("no bundled program `{other}`"),
    })
}

/// The version a program reports, first line (None if it cannot say).
pub fn program_version(program: &Program) -> Option<String> {
    let output = Command::new(program.version_command[0]).args(&program.version_command[1..]).output().ok()?;
    let text = if output.stdout.is_empty() { output.stderr } else { output.stdout };
    String::from_utf8_lossy(&text).lines().next().map(|line| line.trim().to_string()).filter(|v| !v.is_empty())
}

/// Does the reported `version` match the recorded one? sqlite prints
/// `3.40.1 2022-12-28 …`, python `Python 3.11.2`.
pub fn same_version(version: &str, recorded: &str) -> bool {
    version == recorded || version.split_whitespace().next() == Some(recorded)
}

/// What one run of the program used, as `wait4` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Wall time from spawn to reaping, seconds.
    pub wall_seconds: f64,
    /// User CPU time.
    pub user_seconds: f64,
    /// System CPU time.
    pub sys_seconds: f64,
    /// Peak resident set, bytes.
    pub max_rss_bytes: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Major page faults.
    pub major_faults: u64,
    /// The exit code, or 128 + the signal.
    pub status: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The command's own pid.
    pub pid: u32,
}

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The command and its arguments.
    pub command: &'a [OsString],
    /// The provider.
    pub provider: &'a Provider,
    /// The preload library (for heaplab's families).
    pub library: &'a Path,
    /// Arena bytes.
    pub arena_bytes: u64,
    /// The allocator with its ledger (the metrics run).
    pub metrics: bool,
    /// Where the preload library's reports go (`PREFIX.PID.stats`).
    pub report_prefix: &'a Path,
    /// Standard input: a file, or inherit (`None` and `inherit`), or null.
    pub input: Option<&'a Path>,
    /// Inherit heaplab's standard input when there is no file.
    pub inherit_stdin: bool,
}

/// Run the command once, through the `heaplab-spawn` helper (`helper`),
/// which waits for it and says what it used (see that program for why).
pub fn run_once(launch: &Launch, helper: &Path) -> anyhow::Result<Usage> {
    let program = &launch.command[0];
    let measured = tempfile::NamedTempFile::new().context("creating a file for the helper's report")?;
    let mut command = Command::new(helper);
    command.arg(measured.path()).arg("--").args(launch.command);
    let preload = match launch.provider {
        Provider::Heaplab(spec) => {
            command
                .env(exec_env::SPEC, spec)
                .env(exec_env::ARENA, launch.arena_bytes.to_string())
                .env(exec_env::REPORT, launch.report_prefix)
                .env(exec_env::METRICS, if launch.metrics { "1" } else { "0" });
            Some(launch.library.as_os_str().to_os_string())
        }
        Provider::System => None,
        Provider::Library { path, .. } => Some(path.as_os_str().to_os_string()),
    };
    if let Some(mut preload) = preload {
        if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
            preload.push(":");
            preload.push(existing);
        }
        // The helper hands it to the command; it runs on glibc itself.
        command.env("HEAPLAB_SPAWN_PRELOAD", preload);
    }
    match launch.input {
        Some(path) => {
            command.stdin(File::open(path).with_context(|| format!("opening the input {}", path.display()))?);
        }
        None if launch.inherit_stdin => {}
        None => {
            command.stdin(Stdio::null());
        }
    }
    let status = command.status().with_context(|| format!("cannot run the helper {}", helper.display()))?;
    if !status.success() {
        bail!("could not run `{}` (the helper said why above)", program.to_string_lossy());
    }
    let text = std::fs::read_to_string(measured.path()).context("reading the helper's report")?;
    parse_usage(&text).with_context(|| format!("the helper's report `{}` is not one heaplab reads", text.trim()))
}

/// The helper's line: `pid status signal wall user sys max_rss minflt majflt`.
pub fn parse_usage(text: &str) -> anyhow::Result<Usage> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 9 {
        bail!("expected 9 fields, found {}", fields.len());
    }
    let int = |i: usize| fields[i].parse::<u64>().with_context(|| format!("field {} `{}`", i + 1, fields[i]));
    let float = |i: usize| fields[i].parse::<f64>().with_context(|| format!("field {} `{}`", i + 1, fields[i]));
    let signal = int(2)? as i32;
    Ok(Usage {
        pid: int(0)? as u32,
        status: int(1)? as i32,
        signal: (signal != 0).then_some(signal),
        wall_seconds: float(3)?,
        user_seconds: float(4)?,
        sys_seconds: float(5)?,
        max_rss_bytes: int(6)?,
        minor_faults: int(7)?,
        major_faults: int(8)?,
    })
}

/// One process's report from the preload library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessReport {
    /// Its pid.
    pub pid: u32,
    /// `key=value` figures, in the line's order.
    pub figures: Vec<(String, u64)>,
}

impl ProcessReport {
    /// A figure by name.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.figures.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
    }
}

/// Parse one report line (`pid=… allocs=… …`).
pub fn parse_report(line: &str) -> Option<ProcessReport> {
    let mut report = ProcessReport::default();
    for pair in line.split_whitespace() {
        let (key, value) = pair.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        if key == "pid" {
            report.pid = u32::try_from(value).ok()?;
        }
        report.figures.push((key.to_string(), value));
    }
    (report.pid != 0).then_some(report)
}

/// The reports in `dir` whose names start with `prefix`: the command's own
/// process (`root`) and the others. A process that wrote more than one line
/// (a program image after an `exec` in the same pid) counts by its last.
pub fn read_reports(
    dir: &Path,
    prefix: &str,
    root: u32,
) -> anyhow::Result<(Option<ProcessReport>, Vec<ProcessReport>)> {
    let mut own = None;
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if !name.starts_with(prefix) || !name.ends_with(".stats") {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let Some(report) = text.lines().rev().find_map(parse_report) else {
            bail!("{}: not a report of heaplab's preload library", path.display());
        };
        if report.pid == root {
            own = Some(report)
        } else {
            others.push(report)
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    others.sort_by_key(|r| r.pid);
    Ok((own, others))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse_and_refuse_junk() {
        let report = parse_report("pid=12 metrics=1 allocs=3 peak_requested_bytes=100\n").unwrap();
        assert_eq!(report.pid, 12);
        assert_eq!(report.get("allocs"), Some(3));
        assert_eq!(report.get("peak_requested_bytes"), Some(100));
        assert_eq!(report.get("missing"), None);
        assert!(parse_report("pid=12 allocs=x").is_none());
        assert!(parse_report("allocs=3").is_none());
        assert!(parse_report("garbage").is_none());
    }

    #[test]
    fn the_helpers_line_parses() {
        let usage = parse_usage("41 137 9 0.5 0.25 0.125 1048576 10 2\n").unwrap();
        assert_eq!((usage.pid, usage.status, usage.signal), (41, 137, Some(9)));
        assert_eq!((usage.wall_seconds, usage.max_rss_bytes, usage.major_faults), (0.5, 1 << 20, 2));
        assert_eq!(parse_usage("41 0 0 0.5 0.25 0.125 1 1 1").unwrap().signal, None);
        assert!(parse_usage("41 0 0").is_err());
        assert!(parse_usage("x 0 0 0.5 0.25 0.125 1 1 1").is_err());
    }

    #[test]
    fn versions_compare_on_their_first_word() {
        assert!(same_version(
            "3.40.1 2022-12-28 14:03:47 df5c253c0b3dd24916e4ec7cf77d3db5294cc9fd45ae7b9c5e82ad8197f3alt1",
            "3.40.1"
        ));
        assert!(same_version("Python 3.11.2", "Python 3.11.2"));
        assert!(!same_version("Python 3.11.7", "Python 3.11.2"));
    }

    #[test]
    fn only_programs_servers_are_providers() {
        let spec = |text: &str| AllocatorSpec::parse(text).unwrap();
        assert_eq!(provider(&spec("buddy")).unwrap(), Provider::Heaplab(spec("buddy").spec()));
        assert_eq!(provider(&spec("peer:glibc")).unwrap(), Provider::System);
        let error = provider(&spec("bump")).unwrap_err().to_string();
        assert!(error.contains("cannot serve a program"), "{error}");
        assert!(provider(&spec("peer:rlsf")).is_err());
    }
}
