//! Starting a job's process: its environment, the `sh` trampoline that applies limits before
//! `exec`, its own process group, and signals to that group.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

/// Server environment variables that jobs and build steps inherit; everything else (database
/// URLs, cloud credentials) stays in the server.
const INHERITED: [&str; 18] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Returns the inherited part of a job's environment: the variables in [`INHERITED`] and pip's
/// own `PIP_*` settings (an operator's package mirror), when set and UTF-8.
pub(crate) fn base_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| INHERITED.contains(&name.as_str()) || name.starts_with("PIP_"))
        .collect()
}

/// The shell trampoline: applies `cgroup=FILE` (write own PID) and `ulimit-v=KIB` arguments up
/// to `--`, then `exec`s the rest, so the job's process itself carries the limits.
const TRAMPOLINE: &str = r#"while [ "$1" != -- ]; do
  case "$1" in
    cgroup=*) echo $$ > "${1#cgroup=}" || { echo "cairn: could not enter cgroup ${1#cgroup=}" >&2; exit 125; } ;;
    ulimit-v=*) ulimit -v "${1#ulimit-v=}" || { echo "cairn: could not set the memory limit" >&2; exit 125; } ;;
  esac
  shift
done
shift
exec "$@""#;

/// How to launch a job's command.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    /// The command; `python` as `argv[0]` becomes `python`.
    pub argv: &'a [String],
    /// The environment's interpreter.
    pub python: &'a Path,
    /// `cgroup.procs` files to enter before `exec`.
    pub cgroup_procs: Vec<PathBuf>,
    /// A virtual memory limit (`ulimit -v`) in bytes, when cgroups do not limit memory.
    pub rlimit_bytes: Option<u64>,
}

impl Launch<'_> {
    /// Returns the program and arguments to spawn: the command itself, or the trampoline
    /// followed by its limit arguments and the command.
    pub fn program_and_args(&self) -> (String, Vec<String>) {
        let mut command = self.argv.to_vec();
        if command[0] == "python" {
            command[0] = self.python.display().to_string();
        }
        if self.cgroup_procs.is_empty() && self.rlimit_bytes.is_none() {
            let program = command.remove(0);
            return (program, command);
        }
        let mut args = vec!["-c".to_string(), TRAMPOLINE.to_string(), "cairn-job".to_string()];
        for procs in &self.cgroup_procs {
            args.push(format!("cgroup={}", procs.display()));
        }
        if let Some(bytes) = self.rlimit_bytes {
            args.push(format!("ulimit-v={}", bytes.div_ceil(1024)));
        }
        args.push("--".to_string());
        args.extend(command);
        ("/bin/sh".to_string(), args)
    }
}

/// Sends `signal` to the process group `pgid`; `false` when no process is left in it.
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> bool {
    match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(error) => {
            tracing::warn!(pgid, %error, ?signal, "could not signal a job's process group");
            false
        }
    }
}

/// Describes how a process ended by a signal: `killed by signal 9 (SIGKILL)`.
pub(crate) fn describe_signal(number: i32) -> String {
    match Signal::try_from(number) {
        Ok(signal) => format!("killed by signal {number} ({})", signal.as_str()),
        Err(_) => format!("killed by signal {number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_skip_the_trampoline() {
        let argv = vec!["python".to_string(), "-c".to_string(), "print(1)".to_string()];
        let launch = Launch {
            argv: &argv,
            python: Path::new("/env/bin/python"),
            cgroup_procs: vec![],
            rlimit_bytes: None,
        };
        let (program, args) = launch.program_and_args();
        assert_eq!(program, "/env/bin/python");
        assert_eq!(args, vec!["-c", "print(1)"]);
    }

    #[test]
    fn limits_go_through_the_trampoline() {
        let argv = vec!["sleep".to_string(), "1".to_string()];
        let launch = Launch {
            argv: &argv,
            python: Path::new("/env/bin/python"),
            cgroup_procs: vec![PathBuf::from("/cg/job/cgroup.procs")],
            rlimit_bytes: Some(1 << 20),
        };
        let (program, args) = launch.program_and_args();
        assert_eq!(program, "/bin/sh");
        assert_eq!(
            &args[2..],
            ["cairn-job", "cgroup=/cg/job/cgroup.procs", "ulimit-v=1024", "--", "sleep", "1"]
        );
        assert_eq!(describe_signal(9), "killed by signal 9 (SIGKILL)");
    }
}
