//! `heaplab-spawn REPORT -- COMMAND…`: run one command and write what
//! `wait4` says of it to the file REPORT, for `heaplab exec`.
//!
//! Why a second, small process: Linux keeps a process's peak resident set
//! across `execve`, and a child started from a large process begins with
//! that process's peak. A command started by heaplab itself would report at
//! least heaplab's own resident set (10 MiB and more) as its peak, so a
//! small program's figure would be heaplab's. This helper is small, so the
//! floor it leaves is its own (about a megabyte), and it times the command
//! from spawn to reaping without heaplab's own start-up in the interval.
//!
//! The command gets `LD_PRELOAD` from `HEAPLAB_SPAWN_PRELOAD`, so that the
//! helper itself runs on glibc's allocator and its own pages stay few.
//!
//! REPORT gets one line: `pid status signal wall_seconds user_seconds
//! sys_seconds max_rss_bytes minor_faults major_faults`. The helper exits
//! 0 when it could run the command (whatever the command's status), 127
//! when it could not.

use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (Some(report), Some("--")) = (args.first(), args.get(1).and_then(|a| a.to_str())) else {
        eprintln!("usage: heaplab-spawn REPORT -- COMMAND [ARGS…] (heaplab exec runs it)");
        return ExitCode::from(127);
    };
    let Some(program) = args.get(2) else {
        eprintln!("heaplab-spawn: no command");
        return ExitCode::from(127);
    };
    let start = Instant::now();
    let mut command = Command::new(program);
    command.args(&args[3..]);
    if let Some(preload) = std::env::var_os("HEAPLAB_SPAWN_PRELOAD") {
        command.env_remove("HEAPLAB_SPAWN_PRELOAD").env("LD_PRELOAD", preload);
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!("heaplab exec: cannot run `{}`: {error}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `usage` is written by wait4; `pid` is this process's child, not yet reaped.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        while libc::wait4(pid, &mut status, 0, &mut usage) != pid {
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                eprintln!("heaplab-spawn: waiting for the command: {}", std::io::Error::last_os_error());
                return ExitCode::from(127);
            }
        }
        usage
    };
    let wall = start.elapsed().as_secs_f64();
    // The child is reaped: dropping its handle does nothing more.
    drop(child);
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let (code, signal) = if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status), libc::WTERMSIG(status))
    } else {
        (libc::WEXITSTATUS(status), 0)
    };
    let line = format!(
        "{pid} {code} {signal} {wall:.9} {:.6} {:.6} {} {} {}\n",
        seconds(usage.ru_utime),
        seconds(usage.ru_stime),
        usage.ru_maxrss as u64 * 1024,
        usage.ru_minflt,
        usage.ru_majflt
    );
    if let Err(error) = std::fs::write(report, line) {
        eprintln!("heaplab-spawn: writing {}: {error}", std::path::Path::new(report).display());
        return ExitCode::from(127);
    }
    ExitCode::SUCCESS
}
