//! The results as Markdown tables, with the machine they were measured on.

use std::collections::HashMap;

use crate::workload::{Measurement, Workload};

pub struct Report {
    /// How the report was made: `axiom-bench` and its arguments.
    command: String,
    memcpy_bytes_per_s: f64,
    results: HashMap<(String, String), Option<Measurement>>,
    /// Why each failed cell failed: "column, workload: error".
    failures: Vec<String>,
    adapters: Vec<(String, String)>,
}

impl Report {
    pub fn new(command: String, memcpy_bytes_per_s: f64) -> Self {
        Self { command, memcpy_bytes_per_s, results: HashMap::new(), failures: Vec::new(), adapters: Vec::new() }
    }

    pub fn note_adapter(&mut self, column: &str, adapter: String) {
        if !self.adapters.iter().any(|(c, _)| c == column) {
            self.adapters.push((column.to_string(), adapter));
        }
    }

    pub fn add(&mut self, column: &str, workload: &Workload, result: anyhow::Result<Measurement>) {
        if let Err(err) = &result {
            self.failures.push(format!("{column}, {}: {err:#}", workload.name));
        }
        self.results.insert((column.to_string(), workload.name.clone()), result.ok());
    }

    fn get(&self, column: &str, workload: &Workload) -> Option<&Measurement> {
        self.results.get(&(column.to_string(), workload.name.clone())).and_then(Option::as_ref)
    }

    pub fn markdown(&self, workloads: &[Workload], columns: &[String]) -> String {
        let mut out = String::new();
        let ms = |v: f64| if v.is_finite() { format!("{v:.2}") } else { "-".to_string() };
        let cell =
            |m: Option<&Measurement>, f: &dyn Fn(&Measurement) -> String| m.map(f).unwrap_or_else(|| "failed".into());

        out.push_str("# Performance: cost per frame of each buffer path\n\n");
        out.push_str(&format!("Produced by `{}` (`scripts/bench` runs `axiom-bench --all`).\n", self.command));
        out.push_str("Every row starts a fresh compositor\n");
        out.push_str("with a 1920x1080 headless output at 60 Hz; the client commits with the given damage\n");
        out.push_str("each frame, paced by frame callbacks, after 10 warm-up frames. CPU time is the\n");
        out.push_str("compositor's, all threads (the software renderer's included), from\n");
        out.push_str("/proc/PID/task/*/schedstat. The memcpy floor is the time to copy the damaged bytes\n");
        out.push_str("once at this machine's memcpy bandwidth, measured in the same run. The FIFO row is\n");
        out.push_str("paced by wp_fifo_v1 instead: the client commits as fast as FIFO barriers let it,\n");
        out.push_str("with two frames queued ahead of the screen; its frame rate is presented frames over\n");
        out.push_str("the time from the first presentation to the last. In the capture rows a capture\n");
        out.push_str("client (zwlr_screencopy) copies the whole output after each frame, into wl_shm or\n");
        out.push_str("into a dma-buf; their floor adds the output's bytes to the window's.\n\n");
        out.push_str(&format!("Machine: {}\n\n", machine()));
        out.push_str(&format!("memcpy bandwidth: {:.2} GB/s\n\n", self.memcpy_bytes_per_s / 1e9));
        for (column, adapter) in &self.adapters {
            out.push_str(&format!("- {column}: {adapter}\n"));
        }
        if columns.iter().any(|c| c == "weston") {
            out.push_str("- weston: weston 14, `--backend=headless --renderer=gl` (Mesa llvmpipe through EGL)\n");
        }
        out.push('\n');

        let named = |fixed: &[&str], trailing: &[&str]| -> Vec<String> {
            fixed
                .iter()
                .map(|h| h.to_string())
                .chain(columns.iter().cloned())
                .chain(trailing.iter().map(|h| h.to_string()))
                .collect()
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };

        // With an earlier build to compare against, the newest axiom column over it.
        let newest = columns
            .iter()
            .any(|c| c == "before")
            .then(|| columns.iter().rfind(|c| c.starts_with("axiom")).map(String::as_str))
            .flatten();
        // The default build (the import ladder), where it has a column of its own.
        let default_build = columns.iter().any(|c| c == DEFAULT_BUILD);
        let latency_ratios: Vec<&str> = ["axiom", DEFAULT_BUILD]
            .into_iter()
            .filter(|c| columns.iter().any(|col| col == c) && columns.iter().any(|col| col == "weston"))
            .collect();
        let rows = workloads.iter().map(|w| {
            let bytes = w.damaged_bytes() as f64;
            let floor = bytes / self.memcpy_bytes_per_s * 1000.0;
            let mut row = vec![w.name.clone(), format!("{:.1}", bytes / (1 << 20) as f64), ms(floor)];
            row.extend(columns.iter().map(|c| cell(self.get(c, w), &|m| ms(m.cpu_ms_per_frame))));
            let axiom = self.get("axiom", w).map(|m| m.cpu_ms_per_frame);
            let weston = self.get("weston", w).map(|m| m.cpu_ms_per_frame);
            row.push(ratio(axiom, Some(floor)));
            row.push(ratio(axiom, weston));
            if default_build {
                row.push(ratio(self.get(DEFAULT_BUILD, w).map(|m| m.cpu_ms_per_frame), weston));
            }
            if let Some(newest) = newest {
                let now = self.get(newest, w).map(|m| m.cpu_ms_per_frame);
                row.push(ratio(now, self.get("before", w).map(|m| m.cpu_ms_per_frame)));
            }
            row
        });
        out.push_str("## Compositor CPU time per frame (ms)\n\n");
        let now_over_before = newest.map(|c| format!("{c} / before"));
        let default_over_weston = format!("{DEFAULT_BUILD} / weston");
        let mut trailing = vec!["axiom / floor", "axiom / weston"];
        trailing.extend(default_build.then_some(default_over_weston.as_str()));
        trailing.extend(now_over_before.as_deref());
        out.push_str(&table(named(&["workload", "damaged MiB/frame", "memcpy floor"], &trailing), rows));

        let rows = workloads.iter().filter(|w| w.damage_percent > 0).map(|w| {
            let latency = |m: &Measurement| {
                format!("{} / {} ms, {:.1} fps", ms(m.latency_median_ms), ms(m.latency_p99_ms), m.fps)
            };
            let median = |c: &str| self.get(c, w).map(|m| m.latency_median_ms);
            let mut row: Vec<String> =
                std::iter::once(w.name.clone()).chain(columns.iter().map(|c| cell(self.get(c, w), &latency))).collect();
            row.extend(latency_ratios.iter().map(|c| ratio(median(c), median("weston"))));
            row
        });
        out.push_str("\n## Commit to presentation (median / p99 ms) and frames per second\n\n");
        out.push_str(LATENCY_METHOD);
        let latency_headers: Vec<String> = latency_ratios.iter().map(|c| format!("{c} / weston (median)")).collect();
        let latency_headers: Vec<&str> = latency_headers.iter().map(String::as_str).collect();
        out.push_str(&table(named(&["workload"], &latency_headers), rows));

        let rows = workloads.iter().map(|w| {
            let rss = |m: &Measurement| format!("{:.0}", m.peak_rss_mib);
            std::iter::once(w.name.clone()).chain(columns.iter().map(|c| cell(self.get(c, w), &rss))).collect()
        });
        out.push_str("\n## Peak RSS of the compositor (MiB)\n\n");
        out.push_str(&table(named(&["workload"], &[]), rows));
        if !self.failures.is_empty() {
            out.push_str("\n## Failed\n\n");
            for failure in &self.failures {
                out.push_str(&format!("- {failure}\n"));
            }
        }
        out
    }
}

/// The column of the default build, with the import ladder (`--axiom-vulkan`).
const DEFAULT_BUILD: &str = "axiom dmabuf-vulkan";

/// A Markdown table.
fn table(headers: Vec<String>, rows: impl Iterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut out = line(&headers);
    out.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
    for row in rows {
        out.push_str(&line(&row));
    }
    out
}

/// CPU model, cores and memory of this machine.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / (1 << 20) as f64)
        .unwrap_or(0.0);
    format!("{}, {cores} cores, {mem_gib:.0} GiB", model.unwrap_or_else(|| "unknown CPU".into()))
}

/// How the latency table is measured, and what each compositor's timestamp means.
const LATENCY_METHOD: &str = "\
Measured the same way for every compositor: the client reads CLOCK_MONOTONIC as it
commits and subtracts it from the wp_presentation feedback's timestamp for that
commit (both compositors present in CLOCK_MONOTONIC); a feedback stamped before its
commit would show as a negative number. What the timestamp stands for differs, and
headless there is no display to say when a frame is seen:

- axiom (headless): the frame is stamped when the GPU finished composing it (or at
  the output refresh tick it was composed for, if that is later), flags
  vsync|hw_completion; `seq` counts refresh ticks.
- weston 14 (headless): the frame is rendered at a repaint (weston starts repaints
  a few milliseconds before the next refresh), and a timer 16 ms after that repaint
  stamps it with the time the timer fires, flags 0: one refresh after it was drawn,
  as a display would show it at the next vblank.

So weston's figure includes one refresh more than axiom's for the same work, and
neither is a display's scanout time; on KMS both use the page flip's vblank time
(scripts/bench-kms, docs/PERFORMANCE-KMS.md).

";
