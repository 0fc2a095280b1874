//! What `/proc` says about the server under test (Linux): resident memory from
//! `/proc/PID/status` and CPU time from `/proc/PID/stat`, the machine's busy time from
//! `/proc/stat`, plus the loader's own open-file limit.
//!
//! The reading and parsing are the [`procfs`] crate's (without its default `chrono` and
//! `flate2` features it brings `procfs-core`, `rustix`, `linux-raw-sys` and `hex`); this
//! module only picks the figures the bench reports and turns ticks into seconds with the
//! kernel's real `USER_HZ` instead of an assumed 100.

use std::io;

use procfs::process::{LimitValue, Process};
use procfs::{CurrentSI, KernelStats, ProcError};
use serde::Serialize;

/// The `VmRSS` of process `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = process(pid)?.status().map_err(to_io)?;
    status
        .vmrss
        .ok_or_else(|| invalid("no VmRSS line in /proc/PID/status"))
}

/// User plus system CPU time of process `pid` (all its threads), in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = process(pid)?.stat().map_err(to_io)?;
    Ok((stat.utime + stat.stime) as f64 / ticks_per_second())
}

/// This process's soft limit on open files, if `/proc/self/limits` says.
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = Process::myself().ok()?.limits().ok()?;
    match limits.max_open_files.soft_limit {
        LimitValue::Value(n) => Some(n),
        LimitValue::Unlimited => None,
    }
}

/// Busy CPU seconds of the whole machine, all cores (`/proc/stat`: user, nice, system, irq,
/// softirq, steal; not idle or iowait).
pub(crate) fn machine_busy_seconds() -> io::Result<f64> {
    let cpu = KernelStats::current().map_err(to_io)?.total;
    let optional = [cpu.irq, cpu.softirq, cpu.steal];
    let busy = cpu.user + cpu.nice + cpu.system + optional.iter().flatten().sum::<u64>();
    Ok(busy as f64 / ticks_per_second())
}

/// `USER_HZ`, the unit of the CPU times in `/proc` (100 on every mainstream Linux).
fn ticks_per_second() -> f64 {
    procfs::ticks_per_second() as f64
}

fn process(pid: u32) -> io::Result<Process> {
    let pid = i32::try_from(pid).map_err(|_| invalid("pid out of range"))?;
    Process::new(pid).map_err(to_io)
}

fn to_io(e: ProcError) -> io::Error {
    match e {
        ProcError::Io(e, _) => e,
        ProcError::NotFound(path) => io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", path.unwrap_or_default().display()),
        ),
        other => io::Error::other(other.to_string()),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The server's CPU time and RSS over a measured interval.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerUsage {
    /// The process.
    pub pid: u32,
    /// CPU seconds (user + system) it used during the interval.
    pub cpu_s: f64,
    /// CPU seconds per second of the interval (1.0: one core saturated).
    pub cpu_utilization: f64,
    /// RSS at the start, KiB.
    pub rss_start_kib: u64,
    /// RSS at the end, KiB.
    pub rss_end_kib: u64,
}

/// Who else used the CPU during the interval, in cores (1.0: one core's worth).
///
/// On a shared machine a run is only meaningful when `other_cpu_utilization` is small and
/// either the server or the loader is near 1.0 (the one near 1.0 is the bottleneck).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MachineUsage {
    /// The load generator itself.
    pub loader_cpu_utilization: f64,
    /// Everything but the loader and the server (needs `--pid`; includes softirq time the
    /// kernel did not charge to either).
    pub other_cpu_utilization: Option<f64>,
}

/// A measurement in progress: CPU and RSS at its start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch {
    pid: Option<u32>,
    server_cpu: f64,
    server_rss: u64,
    loader_cpu: f64,
    machine: f64,
    started: std::time::Instant,
}

impl Watch {
    /// Reads the counters now (the server's only when `pid` is given).
    pub(crate) fn start(pid: Option<u32>) -> io::Result<Self> {
        let (server_cpu, server_rss) = match pid {
            Some(pid) => (cpu_seconds(pid)?, rss_kib(pid)?),
            None => (0.0, 0),
        };
        Ok(Self {
            pid,
            server_cpu,
            server_rss,
            loader_cpu: cpu_seconds(std::process::id())?,
            machine: machine_busy_seconds()?,
            started: std::time::Instant::now(),
        })
    }

    /// Reads them again and reports the differences.
    pub(crate) fn finish(&self) -> io::Result<(Option<ServerUsage>, MachineUsage)> {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let loader = (cpu_seconds(std::process::id())? - self.loader_cpu).max(0.0);
        let machine = (machine_busy_seconds()? - self.machine).max(0.0);
        let server = match self.pid {
            Some(pid) => {
                let cpu_s = (cpu_seconds(pid)? - self.server_cpu).max(0.0);
                Some(ServerUsage {
                    pid,
                    cpu_s,
                    cpu_utilization: cpu_s / wall,
                    rss_start_kib: self.server_rss,
                    rss_end_kib: rss_kib(pid)?,
                })
            }
            None => None,
        };
        let other = server
            .as_ref()
            .map(|s| ((machine - loader - s.cpu_s) / wall).max(0.0));
        let usage = MachineUsage {
            loader_cpu_utilization: loader / wall,
            other_cpu_utilization: other,
        };
        Ok((server, usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(open_files_limit().unwrap_or(1) > 0);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn a_missing_process_is_an_error_not_a_panic() {
        // Above the kernel's pid_max ceiling (2^22), so never a live process.
        assert!(rss_kib(5_000_000).is_err());
        assert!(cpu_seconds(u32::MAX).is_err());
    }
}
