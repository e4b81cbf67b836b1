//! Process measurements from /proc: a process's CPU time (utime + stime of
//! `/proc/PID/stat`, fields 14 and 15, in clock ticks) and resident memory
//! (`VmRSS` of `/proc/PID/status`), read for each server node, for Redis
//! and for the bench itself, plus raising this process's open-file limit so
//! thousands of streams and channels fit.

use std::fs;

/// CPU seconds (user + system) used so far by process `pid`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_of(&format!("/proc/{pid}/stat"))
}

/// CPU seconds (user + system) used so far by this process.
pub fn self_cpu_seconds() -> Option<f64> {
    cpu_seconds_of("/proc/self/stat")
}

fn cpu_seconds_of(path: &str) -> Option<f64> {
    let stat = fs::read_to_string(path).ok()?;
    let (utime, stime) = parse_stat_times(&stat)?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    Some((utime + stime) as f64 / ticks as f64)
}

/// Fields 14 (utime) and 15 (stime) of a `/proc/PID/stat` line. The command
/// name (field 2) is in parentheses and may hold spaces, so fields are
/// counted from the last `)`.
fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // `after` starts at field 3 (state): utime is field 14, 11 further on.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// Resident set size of process `pid`, in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit and returns
/// the new soft limit.
pub fn raise_fd_limit() -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return None;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// The processes a bench measures besides itself: the server's nodes (one
/// for a single server) and, for a cluster, its Redis.
#[derive(Debug, Clone, Default)]
pub struct Pids {
    /// Each node's pid, in `--server` order; empty when not given.
    pub nodes: Vec<u32>,
    /// Redis's pid, if given.
    pub redis: Option<u32>,
}

/// A snapshot of the server's processes (those whose pids are known) and
/// of this process, to take deltas over a measured phase.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Server CPU seconds, every node together, if every pid was readable.
    pub server_cpu: Option<f64>,
    /// Server RSS in KiB, every node together.
    pub server_rss_kb: Option<u64>,
    /// Each node's RSS in KiB, in `--server` order.
    pub node_rss_kb: Vec<Option<u64>>,
    /// Each node's CPU seconds, in `--server` order.
    pub node_cpu: Vec<Option<f64>>,
    /// Redis's CPU seconds, if its pid was given and readable.
    pub redis_cpu: Option<f64>,
    /// This process's CPU seconds.
    pub bench_cpu: Option<f64>,
}

impl Sample {
    /// Reads the processes of `pids` and this process now.
    pub fn take(pids: &Pids) -> Sample {
        let node_cpu: Vec<Option<f64>> = pids.nodes.iter().map(|&pid| cpu_seconds(pid)).collect();
        let sum_all = |values: &[Option<f64>]| values.iter().copied().sum::<Option<f64>>();
        let node_rss_kb: Vec<Option<u64>> = pids.nodes.iter().map(|&pid| rss_kb(pid)).collect();
        let rss: Option<u64> = node_rss_kb.iter().copied().sum();
        let present = !pids.nodes.is_empty();
        Sample {
            server_cpu: sum_all(&node_cpu).filter(|_| present),
            server_rss_kb: rss.filter(|_| present),
            node_rss_kb,
            node_cpu,
            redis_cpu: pids.redis.and_then(cpu_seconds),
            bench_cpu: self_cpu_seconds(),
        }
    }

    /// Server CPU seconds (every node) between `self` and the later sample
    /// `end`.
    pub fn server_cpu_delta(&self, end: &Sample) -> Option<f64> {
        Some(end.server_cpu? - self.server_cpu?)
    }

    /// Each node's CPU seconds between `self` and `end`.
    pub fn node_cpu_deltas(&self, end: &Sample) -> Option<Vec<f64>> {
        self.node_cpu
            .iter()
            .zip(&end.node_cpu)
            .map(|(start, stop)| Some((*stop)? - (*start)?))
            .collect()
    }

    /// Redis's CPU seconds between `self` and `end`.
    pub fn redis_cpu_delta(&self, end: &Sample) -> Option<f64> {
        Some(end.redis_cpu? - self.redis_cpu?)
    }

    /// This process's CPU seconds between `self` and `end`.
    pub fn bench_cpu_delta(&self, end: &Sample) -> Option<f64> {
        Some(end.bench_cpu? - self.bench_cpu?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_fields_14_and_15_even_with_spaces_in_the_name() {
        let stat = "1234 (chat server) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 37 0 0 20 0 5 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_times(stat), Some((250, 37)));
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tchat-server\nVmPeak:\t  9000 kB\nVmRSS:\t   4321 kB\n";
        assert_eq!(parse_vm_rss(status), Some(4321));
    }

    #[test]
    fn this_process_is_measurable() {
        assert!(self_cpu_seconds().is_some());
        assert!(rss_kb(std::process::id()).is_some());
    }
}
