//! Resource limits for local jobs: per-job cgroups (v2, or the v1 `memory` and `cpu`
//! hierarchies) when this process may create them, else `ulimit -v` (RLIMIT_AS) for memory and
//! no CPU limit.
//!
//! Cgroups live under `<hierarchy>/<parent>/job-<job id>` (parent `cairn` by default, beside the
//! hierarchy's root the way container runtimes do it). The job enters them through a `sh`
//! trampoline that writes its own PID to `cgroup.procs` before `exec`ing the command, so no
//! code runs between fork and exec in this process (the crate forbids `unsafe`).

use std::path::{Path, PathBuf};

/// The cgroup v2 (unified) mount point checked first.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The CFS period written with a v1 CPU quota or a v2 `cpu.max`, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// How a local executor enforces memory limits, detected once at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryEnforcement {
    /// A cgroup v2 with `memory.max`; the kernel OOM-kills the job and counts it in
    /// `memory.events`.
    CgroupV2,
    /// A cgroup v1 `memory` hierarchy with `memory.limit_in_bytes`; OOM kills are counted in
    /// `memory.oom_control`.
    CgroupV1,
    /// `ulimit -v` (RLIMIT_AS, virtual memory): allocations beyond the limit fail inside the job
    /// (Python raises `MemoryError`). Virtual size overstates use, so limits are approximate.
    RlimitAs,
}

impl MemoryEnforcement {
    /// Returns the stable name shown to operators: `cgroup-v2`, `cgroup-v1` or `rlimit-as`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup-v2",
            Self::CgroupV1 => "cgroup-v1",
            Self::RlimitAs => "rlimit-as",
        }
    }
}

/// The cgroup parents this executor may create job cgroups under.
#[derive(Debug, Clone)]
pub(crate) struct CgroupSupport {
    /// How memory is limited.
    pub memory: MemoryEnforcement,
    /// The parent of job cgroups in the v2 hierarchy, when v2 is used.
    v2_parent: Option<PathBuf>,
    /// The parent in the v1 memory hierarchy, when v1 is used.
    v1_memory_parent: Option<PathBuf>,
    /// The parent in the v1 cpu hierarchy, when it exists and is writable.
    v1_cpu_parent: Option<PathBuf>,
}

impl CgroupSupport {
    /// Detects what this process may use; `enabled = false` forces the rlimit fallback.
    pub fn detect(parent_name: &str, enabled: bool) -> Self {
        let none = Self {
            memory: MemoryEnforcement::RlimitAs,
            v2_parent: None,
            v1_memory_parent: None,
            v1_cpu_parent: None,
        };
        if !enabled {
            return none;
        }
        let root = Path::new(CGROUP_ROOT);
        if let Some(parent) = prepare_v2_parent(root, parent_name) {
            return Self { memory: MemoryEnforcement::CgroupV2, v2_parent: Some(parent), ..none };
        }
        let memory = prepare_v1_parent(&root.join("memory"), "memory.limit_in_bytes", parent_name);
        let cpu = ["cpu", "cpu,cpuacct"]
            .iter()
            .find_map(|name| prepare_v1_parent(&root.join(name), "cpu.cfs_quota_us", parent_name));
        Self {
            memory: if memory.is_some() {
                MemoryEnforcement::CgroupV1
            } else {
                MemoryEnforcement::RlimitAs
            },
            v2_parent: None,
            v1_memory_parent: memory,
            v1_cpu_parent: cpu,
        }
    }

    /// Returns whether CPU quotas are enforced.
    pub fn limits_cpu(&self) -> bool {
        self.v2_parent.is_some() || self.v1_cpu_parent.is_some()
    }

    /// Creates the job's cgroups with its limits. `cpu` is in cores (`0` = none).
    pub fn create(
        &self,
        job_id: &str,
        memory_bytes: Option<u64>,
        cpu: f64,
    ) -> std::io::Result<JobCgroups> {
        let name = format!("job-{job_id}");
        let mut groups = JobCgroups { dirs: Vec::new(), oom_counter: None };
        let quota = cpu_quota_us(cpu);
        if let Some(parent) = &self.v2_parent {
            let dir = groups.make(parent.join(&name))?;
            if let Some(bytes) = memory_bytes {
                std::fs::write(dir.join("memory.max"), bytes.to_string())?;
                // No swap, so the limit is the job's whole footprint; absent without swap support.
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(quota) = quota {
                std::fs::write(dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_US}"))?;
            }
            groups.oom_counter = Some((dir.join("memory.events"), "oom_kill"));
            return Ok(groups);
        }
        if let Some(parent) = &self.v1_memory_parent {
            let dir = groups.make(parent.join(&name))?;
            if let Some(bytes) = memory_bytes {
                std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                // Without swap accounting the file is absent; the RAM limit still holds.
                let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
            }
            groups.oom_counter = Some((dir.join("memory.oom_control"), "oom_kill"));
        }
        if let (Some(parent), Some(quota)) = (&self.v1_cpu_parent, quota) {
            let dir = groups.make(parent.join(&name))?;
            std::fs::write(dir.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
        }
        Ok(groups)
    }
}

/// The cgroups made for one job; [`JobCgroups::remove`] deletes them.
#[derive(Debug)]
pub(crate) struct JobCgroups {
    dirs: Vec<PathBuf>,
    /// The file and key whose count says the kernel OOM-killed a process of the job.
    oom_counter: Option<(PathBuf, &'static str)>,
}

impl JobCgroups {
    fn make(&mut self, dir: PathBuf) -> std::io::Result<PathBuf> {
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // Left over from a job of the same id whose server died: reuse it.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    /// Returns the `cgroup.procs` files the job's first process must write its PID to.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    /// Returns whether the kernel OOM-killed a process in the job's memory cgroup.
    pub fn oom_killed(&self) -> bool {
        let Some((file, key)) = &self.oom_counter else {
            return false;
        };
        let Ok(text) = std::fs::read_to_string(file) else {
            return false;
        };
        text.lines()
            .filter_map(|line| line.split_once(' '))
            .any(|(name, count)| name == *key && count.trim().parse::<u64>().unwrap_or(0) > 0)
    }

    /// SIGKILLs every process still in the job's cgroups (those that left its process group).
    pub fn kill_all(&self) {
        for dir in &self.dirs {
            let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
                continue;
            };
            for pid in text.lines().filter_map(|line| line.trim().parse::<i32>().ok()) {
                let target = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    /// Removes the cgroups, waiting up to two seconds for killed processes to leave them.
    pub async fn remove(self) {
        for dir in &self.dirs {
            for attempt in 0..20 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                    Err(error) if attempt == 19 => {
                        let cgroup = dir.display();
                        tracing::warn!(%cgroup, %error, "could not remove a job cgroup");
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
        }
    }
}

/// Converts cores to a CFS quota per [`CPU_PERIOD_US`]; `None` for no limit.
fn cpu_quota_us(cpu: f64) -> Option<u64> {
    if cpu <= 0.0 {
        return None;
    }
    // Bounded by validation (finite, non-negative), so the cast cannot wrap; the kernel's
    // minimum quota is 1 ms.
    let quota = (cpu * CPU_PERIOD_US as f64).round() as u64;
    Some(quota.max(1_000))
}

/// Makes `<root>/<name>` a v2 parent with the memory (and cpu, if offered) controllers enabled
/// for its children; `None` when v2 or its memory controller is not usable here.
fn prepare_v2_parent(root: &Path, name: &str) -> Option<PathBuf> {
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
    let offered: Vec<&str> = controllers.split_whitespace().collect();
    if !offered.contains(&"memory") {
        return None;
    }
    let wanted = if offered.contains(&"cpu") { "+memory +cpu" } else { "+memory" };
    std::fs::write(root.join("cgroup.subtree_control"), wanted).ok()?;
    let parent = root.join(name);
    create_dir_if_missing(&parent).ok()?;
    std::fs::write(parent.join("cgroup.subtree_control"), wanted).ok()?;
    probe_writable(&parent).then_some(parent)
}

/// Makes `<hierarchy>/<name>` a v1 parent; `None` when the hierarchy is absent (no `marker`
/// file) or not writable.
fn prepare_v1_parent(hierarchy: &Path, marker: &str, name: &str) -> Option<PathBuf> {
    if !hierarchy.join(marker).is_file() {
        return None;
    }
    let parent = hierarchy.join(name);
    create_dir_if_missing(&parent).ok()?;
    probe_writable(&parent).then_some(parent)
}

fn create_dir_if_missing(dir: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => Err(error),
        _ => Ok(()),
    }
}

/// Checks that a child cgroup can be created (and removed) under `parent`.
fn probe_writable(parent: &Path) -> bool {
    let probe = parent.join(format!("probe-{}", std::process::id()));
    let created = std::fs::create_dir(&probe).is_ok();
    created && std::fs::remove_dir(&probe).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quotas_scale_with_cores() {
        assert_eq!(cpu_quota_us(0.0), None);
        assert_eq!(cpu_quota_us(0.5), Some(50_000));
        assert_eq!(cpu_quota_us(2.0), Some(200_000));
        assert_eq!(cpu_quota_us(0.001), Some(1_000));
    }

    #[test]
    fn disabled_detection_falls_back_to_rlimit() {
        let support = CgroupSupport::detect("cairn-test", false);
        assert_eq!(support.memory, MemoryEnforcement::RlimitAs);
        assert!(!support.limits_cpu());
    }
}
