//! What `/proc` says about the server under test (Linux): resident memory from
//! `/proc/PID/status` and CPU time from `/proc/PID/stat`, plus the loader's own open-file
//! limit. The parsers are pure functions, tested on sample text.

use std::fs;
use std::io;

use serde::Serialize;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// The `VmRSS` of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| invalid("no VmRSS line in /proc/PID/status"))
}

/// User plus system CPU time of process `pid` (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| invalid("unexpected /proc/PID/stat"))?;
    Ok(ticks as f64 / TICKS_PER_SEC)
}

/// This process's soft limit on open files, if `/proc/self/limits` says.
pub fn open_files_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files(&limits)
}

/// `VmRSS:     1234 kB` → 1234.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Fields 14 and 15 (`utime`, `stime`) of `/proc/PID/stat`, counted after the `)` that ends
/// the command name (which may itself contain spaces and parentheses).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: utime is field 14, so index 11 here.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `Max open files            20000                20000                files` → 20000.
pub fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Busy CPU seconds of the whole machine, all cores (`/proc/stat`: user, nice, system, irq,
/// softirq, steal).
pub fn machine_busy_seconds() -> io::Result<f64> {
    let stat = fs::read_to_string("/proc/stat")?;
    let ticks = parse_machine_busy(&stat).ok_or_else(|| invalid("unexpected /proc/stat"))?;
    Ok(ticks as f64 / TICKS_PER_SEC)
}

/// The busy ticks of the `cpu` line of `/proc/stat`.
pub fn parse_machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Some(busy)
}

/// The server's CPU time and RSS over a measured interval.
#[derive(Debug, Clone, Serialize)]
pub struct ServerUsage {
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
pub struct MachineUsage {
    /// The load generator itself.
    pub loader_cpu_utilization: f64,
    /// Everything but the loader and the server (needs `--pid`; includes softirq time the
    /// kernel did not charge to either).
    pub other_cpu_utilization: Option<f64>,
}

/// A measurement in progress: CPU and RSS at its start.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pid: Option<u32>,
    server_cpu: f64,
    server_rss: u64,
    loader_cpu: f64,
    machine: f64,
    started: std::time::Instant,
}

impl Watch {
    /// Reads the counters now (the server's only when `pid` is given).
    pub fn start(pid: Option<u32>) -> io::Result<Self> {
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
    pub fn finish(&self) -> io::Result<(Option<ServerUsage>, MachineUsage)> {
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
    fn parses_samples() {
        let status = "Name:\twsloop\nVmPeak:\t  99 kB\nVmRSS:\t    5432 kB\nThreads:\t2\n";
        assert_eq!(parse_vm_rss(status), Some(5432));
        let stat = "4242 (ws loop (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 125 0 0 20 0 2 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(375));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                1048576              files\n";
        assert_eq!(parse_open_files(limits), Some(20000));
        let proc_stat = "cpu  100 5 20 9999 7 1 2 3 0 0\ncpu0 50 0 10 5000 3 0 1 1 0 0\n";
        assert_eq!(parse_machine_busy(proc_stat), Some(131));
        assert_eq!(parse_vm_rss("nothing"), None);
        assert_eq!(parse_cpu_ticks("1 (x) S"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(open_files_limit().unwrap_or(1) > 0);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }
}
