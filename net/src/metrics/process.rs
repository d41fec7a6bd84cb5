//! The standard `process_*` metrics of Prometheus client libraries
//! (<https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics>): CPU time,
//! memory, file descriptors and start time of the whole broker process, read from `/proc` at
//! scrape time by the metrics HTTP task (never the node task). Linux only: elsewhere nothing
//! is rendered, as the Go and Java clients do.
//!
//! The reads are of procfs, which the kernel answers from memory, so they are done inline in
//! the async task rather than on a blocking thread. A field that cannot be read is left out
//! of the output, not rendered as 0.

use std::fmt::Write as _;

/// The fields of `/proc/self/stat` the metrics use, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Clock ticks after boot when the process started.
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

/// Parses `/proc/self/stat` (proc(5)): the command name, field 2, is in parentheses and may
/// itself hold spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after_comm = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name: field n is at index n - 3.
    let fields: Vec<&str> = after_comm.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// The `btime` line of `/proc/stat`: boot time in seconds since the Unix epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Ticks as microseconds (exact when the tick rate divides a million; it is 100 on Linux).
fn ticks_us(ticks: u64, per_second: u64) -> u128 {
    u128::from(ticks) * 1_000_000 / u128::from(per_second.max(1))
}

/// Microseconds as decimal seconds ([`super::seconds`]), saturating.
fn us_seconds(us: u128) -> String {
    super::seconds(u64::try_from(us).unwrap_or(u64::MAX))
}

/// Appends the `process_*` families to `out` (Linux; nothing elsewhere).
pub(super) fn render(out: &mut String) {
    #[cfg(target_os = "linux")]
    render_linux(out);
    #[cfg(not(target_os = "linux"))]
    let _ = out;
}

#[cfg(target_os = "linux")]
fn render_linux(out: &mut String) {
    use super::header;
    use rustix::process::{getrlimit, Resource};

    let ticks_per_second = rustix::param::clock_ticks_per_second();
    let stat = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(parse_stat);
    if let Some(stat) = stat {
        header(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        let _ = writeln!(
            out,
            "process_cpu_seconds_total {}",
            us_seconds(ticks_us(stat.cpu_ticks, ticks_per_second))
        );
        header(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
        );
        let _ = writeln!(out, "process_virtual_memory_bytes {}", stat.virtual_bytes);
        header(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let page_bytes = rustix::param::page_size() as u64;
        let _ = writeln!(
            out,
            "process_resident_memory_bytes {}",
            stat.resident_pages.saturating_mul(page_bytes)
        );
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .as_deref()
            .and_then(parse_boot_time);
        if let Some(boot) = boot {
            let since_boot_us = ticks_us(stat.start_ticks, ticks_per_second);
            let start = us_seconds(u128::from(boot) * 1_000_000 + since_boot_us);
            header(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
            );
            let _ = writeln!(out, "process_start_time_seconds {start}");
        }
    }
    // Each entry of /proc/self/fd is one open descriptor (the one reading it included, as
    // the other client libraries count).
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        header(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        let _ = writeln!(out, "process_open_fds {}", dir.count());
    }
    if let Some(max) = getrlimit(Resource::Nofile).current {
        header(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
        );
        let _ = writeln!(out, "process_max_fds {max}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        // proc(5): pid (comm) state ppid ... utime(14) stime(15) ... starttime(22)
        // vsize(23) rss(24) ...; a command name may hold spaces and ')'.
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[0] = "S".into();
        let line = format!("4242 (keel (x) y) {}\n", fields.join(" "));
        assert_eq!(
            parse_stat(&line),
            Some(Stat {
                cpu_ticks: 14 + 15,
                start_ticks: 22,
                virtual_bytes: 23,
                resident_pages: 24,
            })
        );
        assert_eq!(parse_stat("4242 (keel) S 1 2"), None, "truncated");
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn boot_time_and_ticks() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        assert_eq!(us_seconds(ticks_us(12_345, 100)), "123.45");
        assert_eq!(us_seconds(ticks_us(0, 100)), "0");
        assert_eq!(us_seconds(ticks_us(1, 300)), "0.003333");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_rendered() {
        let mut out = String::new();
        render(&mut out);
        for family in [
            "process_cpu_seconds_total",
            "process_virtual_memory_bytes",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ] {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{family} ")))
                .unwrap_or_else(|| panic!("{family} missing: {out}"));
            let value: f64 = line[family.len() + 1..].parse().expect(line);
            assert!(value >= 0.0, "{line}");
            if family != "process_cpu_seconds_total" {
                assert!(value > 0.0, "{line}");
            }
        }
    }
}
