//! `--monitor FILE` for long jobs (generate, load-dataset, the migration worker): one JSON line
//! per checkpoint (each stage the job reports) and per periodic sample, with elapsed time,
//! resident memory, CPU time, bytes read from and written to storage (all from `/proc/self`)
//! and the free space of the data directory's file system; then a closing report with peaks,
//! CPU utilization and recommendations.
//!
//! The sampler is a thread of its own, so a job busy in one long step is still sampled.
//! [`recommend`] is pure: it reads only the samples.

use crate::{DbError, Progress};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One reading of the process.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sample {
    /// `sample`, `checkpoint` or `report`.
    pub kind: &'static str,
    /// The stage the job was in.
    pub stage: String,
    /// Seconds since the monitor started.
    pub elapsed_s: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time, seconds.
    pub cpu_s: f64,
    /// Bytes the process read from storage.
    pub read_bytes: u64,
    /// Bytes the process wrote to storage.
    pub write_bytes: u64,
    /// Free bytes on the data directory's file system.
    pub disk_free_bytes: u64,
}

/// The closing report.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    /// `report`.
    pub kind: &'static str,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Highest resident memory seen, bytes.
    pub peak_rss_bytes: u64,
    /// CPU time over wall time and cores (1.0 = every core busy throughout).
    pub cpu_utilization: f64,
    /// Bytes read from storage.
    pub read_bytes: u64,
    /// Bytes written to storage.
    pub write_bytes: u64,
    /// Lowest free space seen on the data directory's file system, bytes.
    pub min_disk_free_bytes: u64,
    /// What the figures suggest.
    pub recommendations: Vec<String>,
}

struct State {
    file: std::fs::File,
    stage: String,
    samples: Vec<Sample>,
}

/// A running monitor; `finish` writes the closing report.
pub struct Monitor {
    state: Arc<Mutex<State>>,
    started: Instant,
    data_dir: PathBuf,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    /// Starts writing to `path` (created or truncated), sampling every `interval`.
    pub fn start(path: &Path, data_dir: &Path, interval: Duration) -> Result<Monitor, DbError> {
        let file = std::fs::File::create(path).map_err(|e| {
            DbError::BadFile(format!(
                "--monitor {}: {e}: give a writable file path",
                path.display()
            ))
        })?;
        let state = Arc::new(Mutex::new(State {
            file,
            stage: "start".into(),
            samples: Vec::new(),
        }));
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (state, stop, dir) = (state.clone(), stop.clone(), data_dir.to_path_buf());
            std::thread::Builder::new()
                .name("dbopt-monitor".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let mut waited = Duration::ZERO;
                        while waited < interval && !stop.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(50));
                            waited += Duration::from_millis(50);
                        }
                        record(&state, "sample", None, started, &dir);
                    }
                })
                .map_err(|e| DbError::io("starting the monitor thread", e))?
        };
        let monitor = Monitor {
            state,
            started,
            data_dir: data_dir.to_path_buf(),
            stop,
            sampler: Some(sampler),
        };
        monitor.checkpoint("start");
        Ok(monitor)
    }

    /// Records that the job entered `stage`.
    pub fn checkpoint(&self, stage: &str) {
        record(
            &self.state,
            "checkpoint",
            Some(stage),
            self.started,
            &self.data_dir,
        );
    }

    /// Stops sampling and writes the closing report (also returned).
    pub fn finish(mut self, memory_limit: u64) -> MonitorReport {
        self.checkpoint("done");
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let report = summarize(&state.samples, cores, memory_limit);
        let line = serde_json::to_string(&report).unwrap_or_default();
        if let Err(e) = writeln!(state.file, "{line}") {
            tracing::warn!("cannot write the monitor's report: {e}");
        }
        report
    }
}

fn record(
    state: &Mutex<State>,
    kind: &'static str,
    stage: Option<&str>,
    started: Instant,
    data_dir: &Path,
) {
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = stage {
        state.stage = s.to_string();
    }
    let sample = read_process(kind, &state.stage, started.elapsed(), data_dir);
    let line = serde_json::to_string(&sample).unwrap_or_default();
    if let Err(e) = writeln!(state.file, "{line}") {
        tracing::warn!("cannot write to the monitor file: {e}");
    }
    state.samples.push(sample);
}

/// Reads `/proc/self` and the data directory's file system now.
fn read_process(kind: &'static str, stage: &str, elapsed: Duration, data_dir: &Path) -> Sample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    Sample {
        kind,
        stage: stage.to_string(),
        elapsed_s: elapsed.as_secs_f64(),
        rss_bytes: field(&status, "VmRSS:") * 1024,
        cpu_s: cpu_seconds(&stat),
        read_bytes: field(&io, "read_bytes:"),
        write_bytes: field(&io, "write_bytes:"),
        disk_free_bytes: rustix::fs::statvfs(data_dir)
            .map(|s| s.f_bavail * s.f_frsize)
            .unwrap_or(0),
    }
}

/// The first number after `name` in a `/proc` key-value text.
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of `/proc/self/stat`, in seconds.
fn cpu_seconds(stat: &str) -> f64 {
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime is field 14 and stime 15 (1-based), i.e. 11 and 12 after the ')'.
    let total = ticks(11) + ticks(12);
    total as f64 / USER_HZ
}

/// Clock ticks per second of `/proc/<pid>/stat` times: Linux reports them in USER_HZ, which is
/// 100 on every architecture it runs on (sysconf(_SC_CLK_TCK)).
const USER_HZ: f64 = 100.0;

/// The closing report of `samples` on a machine with `cores`.
pub fn summarize(samples: &[Sample], cores: usize, memory_limit: u64) -> MonitorReport {
    let last = samples.last().cloned().unwrap_or_default();
    let first = samples.first().cloned().unwrap_or_default();
    let elapsed = last.elapsed_s;
    let cpu = (last.cpu_s - first.cpu_s).max(0.0);
    let report = MonitorReport {
        kind: "report",
        elapsed_s: elapsed,
        peak_rss_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
        cpu_utilization: if elapsed > 0.0 {
            cpu / (elapsed * cores.max(1) as f64)
        } else {
            0.0
        },
        read_bytes: last.read_bytes.saturating_sub(first.read_bytes),
        write_bytes: last.write_bytes.saturating_sub(first.write_bytes),
        min_disk_free_bytes: samples.iter().map(|s| s.disk_free_bytes).min().unwrap_or(0),
        recommendations: Vec::new(),
    };
    MonitorReport {
        recommendations: recommend(&report, memory_limit),
        ..report
    }
}

/// What the figures of `report` suggest.
pub fn recommend(report: &MonitorReport, memory_limit: u64) -> Vec<String> {
    let mut out = Vec::new();
    if report.elapsed_s >= 1.0 && report.cpu_utilization < 0.5 {
        out.push(format!(
            "cores were busy {:.0}% of the time: the job waited on storage; faster disks, or more writer threads if the disk has headroom",
            report.cpu_utilization * 100.0
        ));
    } else if report.cpu_utilization >= 0.85 {
        out.push(format!(
            "CPU-bound ({:.0}% of every core): more cores, or a lighter compression level, would speed it up",
            report.cpu_utilization * 100.0
        ));
    }
    if memory_limit > 0 && report.peak_rss_bytes as f64 > 1.5 * memory_limit as f64 {
        out.push(format!(
            "peak memory {} MiB is well above memory_limit {} MiB: lower memory_limit leaves less for the process, raise it only if the machine has room",
            report.peak_rss_bytes >> 20,
            memory_limit >> 20
        ));
    }
    let written = report.write_bytes.max(1);
    if report.min_disk_free_bytes > 0 && report.min_disk_free_bytes < written {
        out.push(format!(
            "free disk space fell to {} MiB, less than the job wrote ({} MiB): free space before the next run",
            report.min_disk_free_bytes >> 20,
            written >> 20
        ));
    }
    out
}

/// Progress that also records a monitor checkpoint at each status message and at the end.
pub struct Monitored<'a> {
    /// The progress shown to the user.
    pub inner: &'a dyn Progress,
    /// The monitor (None: no `--monitor`).
    pub monitor: Option<&'a Monitor>,
}

impl Progress for Monitored<'_> {
    fn set_total(&self, total: u64) {
        self.inner.set_total(total);
    }
    fn advance(&self, delta: u64) {
        self.inner.advance(delta);
    }
    fn message(&self, text: &str) {
        if let Some(m) = self.monitor {
            m.checkpoint(text);
        }
        self.inner.message(text);
    }
    fn finish(&self) {
        self.inner.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(elapsed: f64, cpu: f64, rss: u64, written: u64, free: u64) -> Sample {
        Sample {
            kind: "sample",
            stage: "x".into(),
            elapsed_s: elapsed,
            rss_bytes: rss,
            cpu_s: cpu,
            read_bytes: 0,
            write_bytes: written,
            disk_free_bytes: free,
        }
    }

    #[test]
    fn an_idle_cpu_points_at_storage_and_a_busy_one_at_cores() {
        let idle = summarize(
            &[
                sample(0.0, 0.0, 1, 0, 1 << 40),
                sample(10.0, 2.0, 1, 0, 1 << 40),
            ],
            2,
            0,
        );
        assert!((idle.cpu_utilization - 0.1).abs() < 1e-9);
        assert!(idle.recommendations[0].contains("waited on storage"));
        let busy = summarize(
            &[
                sample(0.0, 0.0, 1, 0, 1 << 40),
                sample(10.0, 19.0, 1, 0, 1 << 40),
            ],
            2,
            0,
        );
        assert!(busy.recommendations[0].contains("CPU-bound"));
    }

    #[test]
    fn memory_and_disk_warnings() {
        let r = summarize(
            &[
                sample(0.0, 0.0, 100 << 20, 0, 1 << 30),
                sample(2.0, 2.0, 400 << 20, 2 << 30, 100 << 20),
            ],
            2,
            200 << 20,
        );
        assert_eq!(r.peak_rss_bytes, 400 << 20);
        assert!(r.recommendations.iter().any(|t| t.contains("memory_limit")));
        assert!(
            r.recommendations
                .iter()
                .any(|t| t.contains("free disk space"))
        );
    }

    #[test]
    fn proc_fields_parse() {
        assert_eq!(field("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS:"), 1234);
        let stat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0";
        assert!((cpu_seconds(stat) - 4.0).abs() < 1e-9);
        let now = read_process("sample", "t", Duration::ZERO, Path::new("/"));
        assert!(now.rss_bytes > 0 && now.disk_free_bytes > 0);
    }
}
