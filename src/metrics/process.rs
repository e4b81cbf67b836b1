//! The standard `process_*` metrics, read from `/proc/self` at scrape time:
//! CPU time, resident memory, open and maximum file descriptors, and the
//! start time. Where `/proc` cannot be read (not Linux), there are none.

use std::fs;

/// What one scrape read about this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_memory_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft limit on open file descriptors (`None`: unlimited).
    pub max_fds: Option<f64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Reads this process's figures, or `None` if `/proc` is not there.
pub fn read() -> Option<ProcessStats> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| boot_time(&text))?;
    // SAFETY: sysconf only reads a system constant.
    let (ticks, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if ticks <= 0 || page_size <= 0 {
        return None;
    }
    let fields = StatFields::parse(&stat)?;
    let ticks = ticks as f64;
    let open_fds = fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    let max_fds = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| max_open_files(&text))?;
    Some(ProcessStats {
        cpu_seconds: (fields.utime + fields.stime) as f64 / ticks,
        resident_memory_bytes: fields.rss_pages as f64 * page_size as f64,
        open_fds,
        max_fds,
        start_time_seconds: boot_time + fields.start_ticks as f64 / ticks,
    })
}

/// The fields of `/proc/self/stat` these metrics use.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    rss_pages: u64,
}

impl StatFields {
    /// Parses `/proc/<pid>/stat`. The command name (field 2) is in
    /// parentheses and may hold spaces and parentheses itself, so fields
    /// are counted from the last `)`: field 3 is the first after it.
    fn parse(stat: &str) -> Option<StatFields> {
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
        Some(StatFields {
            utime: field(14)?,
            stime: field(15)?,
            start_ticks: field(22)?,
            rss_pages: field(24)?,
        })
    }
}

/// The `btime` line of `/proc/stat`: boot time in seconds since the epoch.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The soft limit of the `Max open files` line of `/proc/self/limits`:
/// `Some(None)` when unlimited.
fn max_open_files(limits: &str) -> Option<Option<f64>> {
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    match line.split_whitespace().next()? {
        "unlimited" => Some(None),
        soft => soft.parse().ok().map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (odd) name)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 8 0 123456 1048576000 2048 18446744073709551615";
        assert_eq!(
            StatFields::parse(stat),
            Some(StatFields {
                utime: 250,
                stime: 50,
                start_ticks: 123456,
                rss_pages: 2048,
            })
        );
        assert_eq!(StatFields::parse("garbage"), None);
    }

    #[test]
    fn limits_and_boot_time_are_read_from_their_lines() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(max_open_files(limits), Some(Some(20000.0)));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), Some(None));
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\n"), Some(1.7e9));
    }

    #[test]
    fn this_process_can_be_read() {
        let stats = read().expect("/proc is there on Linux");
        assert!(stats.resident_memory_bytes > 0.0);
        assert!(stats.open_fds >= 3.0);
        assert!(stats.start_time_seconds > 1.5e9);
    }
}
