//! What the run costs the machine, read from /proc (Linux): the service's resident memory,
//! the load average and CPU time per process group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Linux reports CPU times in USER_HZ, which is 100 on every mainstream architecture.
const TICKS_PER_SEC: f64 = 100.0;

/// A `kB` line of /proc/<pid>/status, e.g. `VmRSS`.
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The 1-minute load average.
pub fn load1() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// utime + stime of a process, in ticks.
pub fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it are plain.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) ticks of the whole machine.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// utime + stime of a process and of its children that have exited and been waited for.
fn process_and_children_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17.
    let children: u64 =
        fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    Some(process_ticks(pid)? + children)
}

/// CPU ticks of every process named `postgres` (the server and its backends). A backend that
/// exits between two snapshots (pgbench's, at the end of its run) is counted through the
/// server process, which waits for it: its children's times are included.
fn postgres_ticks() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "postgres"
            && let Some(ticks) = process_and_children_ticks(pid)
        {
            out.insert(pid.to_owned(), ticks);
        }
    }
    out
}

/// CPU counters at one instant.
pub struct CpuSnapshot {
    at: Instant,
    machine: (u64, u64),
    service: u64,
    bench: u64,
    postgres: BTreeMap<String, u64>,
}

impl CpuSnapshot {
    pub fn take(service_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            machine: machine_ticks().unwrap_or_default(),
            service: process_ticks(&service_pid.to_string()).unwrap_or_default(),
            bench: process_ticks("self").unwrap_or_default(),
            postgres: postgres_ticks(),
        }
    }

    /// CPU used between `self` and `later`, in cores (1.0 = one core busy the whole time).
    pub fn until(&self, later: &CpuSnapshot) -> CpuUsage {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SEC / secs;
        // Backends started during the interval count from zero.
        let postgres: u64 = later
            .postgres
            .iter()
            .map(|(pid, t)| t.saturating_sub(self.postgres.get(pid).copied().unwrap_or(0)))
            .sum();
        let busy = later.machine.0.saturating_sub(self.machine.0);
        let total = later.machine.1.saturating_sub(self.machine.1).max(1);
        let machine_cores = total as f64 / TICKS_PER_SEC / secs;
        let machine_busy = busy as f64 / total as f64 * machine_cores;
        let service = cores(later.service.saturating_sub(self.service));
        let bench = cores(later.bench.saturating_sub(self.bench));
        let postgres = cores(postgres);
        CpuUsage {
            machine_busy,
            machine_cores,
            service,
            postgres,
            bench,
            other: (machine_busy - service - postgres - bench).max(0.0),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsage {
    pub machine_busy: f64,
    pub machine_cores: f64,
    pub service: f64,
    pub postgres: f64,
    pub bench: f64,
    pub other: f64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Samples {
    pub peak_rss_kb: u64,
    pub mean_rss_kb: u64,
    pub samples: u64,
    pub max_load1: f64,
}

/// Samples the service's VmRSS and the load average every 100 ms until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Samples>,
}

impl Sampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut total_rss = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                if let Some(rss) = status_kb(pid, "VmRSS") {
                    samples.peak_rss_kb = samples.peak_rss_kb.max(rss);
                    total_rss += rss;
                    samples.samples += 1;
                }
                if let Some(load) = load1() {
                    samples.max_load1 = samples.max_load1.max(load);
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
            }
            samples.mean_rss_kb = total_rss / samples.samples.max(1);
            samples
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> anyhow::Result<Samples> {
        self.stop.store(true, Ordering::Relaxed);
        Ok(self.task.await?)
    }
}

/// CPU seconds used by named groups of processes between two snapshots: each group a set of
/// pids (the service, the emulator, the run's own PostgreSQL backends), so that other work on
/// the machine is not counted in any group.
pub struct GroupTicks {
    at: Instant,
    groups: Vec<(String, BTreeMap<u32, u64>)>,
}

impl GroupTicks {
    pub fn take(groups: &[(&str, Vec<u32>)]) -> Self {
        Self {
            at: Instant::now(),
            groups: groups
                .iter()
                .map(|(name, pids)| {
                    let ticks = pids
                        .iter()
                        .filter_map(|pid| Some((*pid, process_ticks(&pid.to_string())?)))
                        .collect();
                    ((*name).to_owned(), ticks)
                })
                .collect(),
        }
    }

    /// Per group, CPU seconds used since `self` by the pids of `later`'s group (a pid new
    /// in `later` counts from zero), with the wall time between the two.
    pub fn until(&self, later: &GroupTicks) -> (Duration, Vec<(String, f64)>) {
        let used = later
            .groups
            .iter()
            .map(|(name, ticks)| {
                let before = self.groups.iter().find(|(n, _)| n == name).map(|(_, t)| t);
                let sum: u64 = ticks
                    .iter()
                    .map(|(pid, t)| {
                        t.saturating_sub(before.and_then(|b| b.get(pid)).copied().unwrap_or(0))
                    })
                    .sum();
                (name.clone(), sum as f64 / TICKS_PER_SEC)
            })
            .collect();
        (later.at.duration_since(self.at), used)
    }
}
