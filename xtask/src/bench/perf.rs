//! A `perf` process attached to a server for one round: started on the
//! server's pid with an output file, stopped with SIGINT (as perf expects,
//! so that it writes its output whole). What perf counts or samples and
//! how its output is read is the caller's ([`super::syscalls`],
//! [`super::profile`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `perf` subcommand attached to one process.
pub(super) struct Attached {
    child: Child,
    out: PathBuf,
}

impl Attached {
    /// Runs `perf ARGS -p PID -o OUT`; the reason when it cannot start.
    pub(super) fn start(args: &[&str], pid: u32, out: &Path) -> Result<Attached, String> {
        let _ = std::fs::remove_file(out);
        let child = Command::new("perf")
            .args(args)
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start perf {} ({e})", args.first().unwrap_or(&"")))?;
        Ok(Attached {
            child,
            out: out.to_path_buf(),
        })
    }

    /// Stops perf, waits for it, and answers its output file (the caller
    /// reads and removes it).
    pub(super) fn stop(mut self) -> PathBuf {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.out
    }
}
