//! Linux `/proc` helpers: process trees, process groups, memory fields and signals.
//!
//! Signals go through the `kill` command rather than libc, because the workspace forbids
//! `unsafe` code. Every reader tolerates processes that vanish mid-scan.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};

/// The fields of `/proc/<pid>/stat` the harness needs.
#[derive(Debug, Clone, Copy)]
struct Stat {
    state: char,
    parent: u32,
    group: u32,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some(Stat { state, parent, group })
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Returns `root` and all its live descendants (zombies excluded).
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in all_pids() {
        if let Some(stat) = read_stat(pid).filter(|stat| stat.state != 'Z') {
            children.entry(stat.parent).or_default().push(pid);
        }
    }
    let mut tree = Vec::new();
    if is_alive(root) {
        tree.push(root);
    }
    let mut index = 0;
    while index < tree.len() {
        if let Some(kids) = children.get(&tree[index]) {
            tree.extend(kids);
        }
        index += 1;
    }
    tree
}

/// Returns the live (non-zombie) members of process group `group`.
pub fn group_members(group: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| read_stat(*pid).is_some_and(|stat| stat.group == group && stat.state != 'Z'))
        .collect()
}

/// Tells whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    read_stat(pid).is_some_and(|stat| stat.state != 'Z')
}

/// Reads a `kB` field such as `VmRSS:` or `VmHWM:` from `/proc/<pid>/status`.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Sends `signal` (a name such as `TERM`) to every process in group `group`.
pub fn signal_group(group: u32, signal: &str) -> Result<()> {
    run_kill(signal, &format!("-{group}"))
}

/// Sends `signal` to a single process.
pub fn signal_pid(pid: u32, signal: &str) -> Result<()> {
    run_kill(signal, &pid.to_string())
}

fn run_kill(signal: &str, target: &str) -> Result<()> {
    let output = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .output()
        .context("running kill")?;
    if !output.status.success() {
        bail!(
            "kill -{signal} -- {target} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Returns the 1, 5 and 15-minute load averages, or `None` when `/proc/loadavg` is unreadable.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Reads user + system CPU time, in clock ticks, from a `stat` file (`/proc/<pid>/stat` or
/// `/proc/thread-self/stat`).
fn cpu_ticks_at(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    // Fields after the name start at `state` (field 3); utime and stime are fields 14 and 15.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// CPU time (user + system, clock ticks) used so far by `root` and its live descendants.
pub fn tree_cpu_ticks(root: u32) -> u64 {
    process_tree(root).iter().filter_map(|pid| cpu_ticks_at(&format!("/proc/{pid}/stat"))).sum()
}

/// CPU time (user + system, clock ticks) used so far by the calling thread.
pub fn thread_cpu_ticks() -> Option<u64> {
    cpu_ticks_at("/proc/thread-self/stat")
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when it cannot be asked).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// Open file descriptors of one process, by what they point at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFds {
    /// All of them.
    pub total: u64,
    /// Sockets (listening, accepted connections, outbound connections).
    pub sockets: u64,
    /// SQLite's files (the database, its WAL and shared memory): one set per pooled connection.
    pub database: u64,
    /// Everything else: artifact files, pipes, epoll and event descriptors, logs.
    pub other: u64,
}

/// Counts the open file descriptors of `pid` (`/proc/<pid>/fd`), or `None` when it is gone.
pub fn open_fds(pid: u32) -> Option<OpenFds> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut fds = OpenFds::default();
    for entry in entries.flatten() {
        fds.total += 1;
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        if target.starts_with("socket:") {
            fds.sockets += 1;
        } else if target.contains("cairn.db") {
            fds.database += 1;
        } else {
            fds.other += 1;
        }
    }
    Some(fds)
}
