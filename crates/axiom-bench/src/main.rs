//! axiom-bench: the cost per frame of every buffer path, for axiom (a build
//! with the CPU step alone, and one with the Vulkan import ladder) and weston,
//! beside the memcpy floor, measured in one run. `scripts/bench` builds everything and runs `--all`.

mod floor;
mod procstat;
mod report;
mod servers;
mod workload;

use std::path::PathBuf;

use axiom_formats::fourcc;
use clap::Parser;

use servers::Server;
use workload::{BufferPath, CaptureInto, Workload};

#[derive(Parser)]
#[command(about = "Measures what each frame costs a Wayland compositor")]
struct Args {
    /// Run the whole matrix.
    #[arg(long)]
    all: bool,
    /// The axiom binary of the `axiom` column (`scripts/bench`: the CPU-only build,
    /// `--no-default-features`).
    #[arg(long, default_value = "target/release/axiom")]
    axiom: PathBuf,
    /// An axiom binary with the import ladder (`dmabuf-vulkan`, the default build).
    #[arg(long)]
    axiom_vulkan: Option<PathBuf>,
    /// An earlier axiom build, as a first column named `before`, with the ratio of
    /// the newest axiom column to it (a change's effect, measured in one run).
    #[arg(long)]
    before: Option<PathBuf>,
    /// Leave weston out.
    #[arg(long)]
    no_weston: bool,
    /// Fewer frames per workload (a quick look, not figures to publish).
    #[arg(long)]
    quick: bool,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/PERFORMANCE.md")]
    output: PathBuf,
    /// Instead of the matrix, one workload (a 640x480 XRGB8888 wl_shm window, full
    /// damage) against the compositor already listening on this socket, whose
    /// process is `--pid`; prints one line: frames, fps, compositor CPU ms per
    /// frame, commit-to-presentation median and p99 ms (`scripts/bench-kms`).
    #[arg(long, requires = "pid")]
    against: Option<PathBuf>,
    #[arg(long)]
    pid: Option<u32>,
    /// Frames of the `--against` workload.
    #[arg(long, default_value_t = 300)]
    frames: usize,
    /// The `--against` workload paced by wp_fifo_v1 instead of frame callbacks.
    #[arg(long, requires = "against")]
    fifo: bool,
    /// Only the matrix's workloads whose names contain this.
    #[arg(long)]
    only: Option<String>,
}

fn workloads(quick: bool) -> Vec<Workload> {
    let frames = |n: usize| if quick { n / 4 } else { n };
    let w = |name: &str, surfaces, (width, height), fourcc, path, damage_percent, n| Workload {
        name: name.to_string(),
        surfaces,
        width,
        height,
        fourcc,
        path,
        damage_percent,
        frames: frames(n),
        fifo: false,
        capture: None,
    };
    use BufferPath::*;
    const P1080: (u32, u32) = (1920, 1080);
    const P720: (u32, u32) = (1280, 720);
    vec![
        w("1080p XRGB8888 shm, full damage", 1, P1080, fourcc::XRGB8888, Shm, 100, 120),
        w("1080p XRGB8888 shm, 10% rows", 1, P1080, fourcc::XRGB8888, Shm, 10, 120),
        w("1080p XRGB8888 shm (sealed memfd), full damage", 1, P1080, fourcc::XRGB8888, SealedShm, 100, 120),
        w("4K XRGB8888 shm (sealed memfd), full damage", 1, (3840, 2160), fourcc::XRGB8888, SealedShm, 100, 40),
        w("1080p XRGB8888 dmabuf (memfd), full damage", 1, P1080, fourcc::XRGB8888, Dmabuf, 100, 120),
        w("1080p NV12 dmabuf (memfd), full damage", 1, P1080, fourcc::NV12, Dmabuf, 100, 120),
        w("1080p P010 dmabuf (memfd), full damage", 1, P1080, fourcc::P010, Dmabuf, 100, 120),
        w("4K XRGB8888 dmabuf (memfd), full damage", 1, (3840, 2160), fourcc::XRGB8888, Dmabuf, 100, 40),
        w("720p XRGB8888 shm, 10% rows, 1 surface", 1, P720, fourcc::XRGB8888, Shm, 10, 120),
        w("720p XRGB8888 shm, 10% rows, 10 surfaces", 10, P720, fourcc::XRGB8888, Shm, 10, 60),
        w("720p XRGB8888 shm, 10% rows, 100 surfaces", 100, P720, fourcc::XRGB8888, Shm, 10, 20),
        w("idle: 10 mapped 720p surfaces, no commits", 10, P720, fourcc::XRGB8888, Shm, 0, 0),
        // The same window paced by frame callbacks, then by FIFO barriers.
        w("720p XRGB8888 shm, full damage", 1, P720, fourcc::XRGB8888, Shm, 100, 240),
        Workload {
            fifo: true,
            ..w("720p XRGB8888 shm, full damage, FIFO (wp_fifo_v1, 2 queued)", 1, P720, fourcc::XRGB8888, Shm, 100, 240)
        },
        // The 1080p window above, with the output captured after each frame.
        Workload {
            capture: Some(CaptureInto::Shm),
            ..w(
                "1080p XRGB8888 shm, full damage, output captured into wl_shm",
                1,
                P1080,
                fourcc::XRGB8888,
                Shm,
                100,
                120,
            )
        },
        Workload {
            capture: Some(CaptureInto::Dmabuf),
            ..w(
                "1080p XRGB8888 shm, full damage, output captured into a dma-buf (memfd)",
                1,
                P1080,
                fourcc::XRGB8888,
                Shm,
                100,
                120,
            )
        },
    ]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let (Some(socket), Some(pid)) = (&args.against, args.pid) {
        return against(socket, pid, args.frames, args.fifo);
    }
    anyhow::ensure!(args.all, "pass --all to run the matrix (see --help)");
    let mut workloads = workloads(args.quick);
    if let Some(only) = &args.only {
        workloads.retain(|w| w.name.contains(only.as_str()));
        anyhow::ensure!(!workloads.is_empty(), "no workload's name contains {only:?}");
    }

    // Each compared compositor: its column's name, and how to start a fresh one.
    type Column = (String, Box<dyn Fn() -> anyhow::Result<Server>>);
    let mut columns: Vec<Column> = Vec::new();
    if let Some(before) = args.before.clone() {
        columns.push(("before".into(), Box::new(move || Server::axiom(&before))));
    }
    let axiom = args.axiom.clone();
    columns.push(("axiom".into(), Box::new(move || Server::axiom(&axiom))));
    if let Some(vulkan) = args.axiom_vulkan.clone() {
        columns.push(("axiom dmabuf-vulkan".into(), Box::new(move || Server::axiom(&vulkan))));
    }
    if !args.no_weston {
        columns.push(("weston".into(), Box::new(Server::weston)));
    }

    let bandwidth = floor::memcpy_bandwidth(3840 * 2160 * 4);
    let quoted = |arg: String| if arg.contains(' ') { format!("\"{arg}\"") } else { arg };
    let command = std::env::args().skip(1).map(quoted).fold("axiom-bench".to_string(), |line, arg| line + " " + &arg);
    let mut report = report::Report::new(command, bandwidth);
    for (name, start) in &columns {
        for workload in &workloads {
            // A fresh compositor per workload: no state carries over between rows.
            let server = start()?;
            if let Some(adapter) = server.adapter() {
                report.note_adapter(name, adapter);
            }
            eprintln!("{name}: {} ...", workload.name);
            let result = workload::run(&server.socket(), server.pid(), workload);
            if let Err(err) = &result {
                eprintln!("  failed: {err:#}");
            }
            report.add(name, workload, result);
        }
    }
    let text = report.markdown(&workloads, &columns.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
    println!("{text}");
    if let Some(dir) = args.output.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.output, text)?;
    eprintln!("written to {}", args.output.display());
    Ok(())
}

/// One windowed workload against a running compositor, as one line of figures.
fn against(socket: &std::path::Path, pid: u32, frames: usize, fifo: bool) -> anyhow::Result<()> {
    let workload = Workload {
        name: "640x480 XRGB8888 shm, full damage".into(),
        surfaces: 1,
        width: 640,
        height: 480,
        fourcc: fourcc::XRGB8888,
        path: BufferPath::Shm,
        damage_percent: 100,
        frames,
        fifo,
        capture: None,
    };
    let m = workload::run(socket, pid, &workload)?;
    println!(
        "frames={frames} fps={:.1} cpu_ms_per_frame={:.2} latency_median_ms={:.2} latency_p99_ms={:.2}",
        m.fps, m.cpu_ms_per_frame, m.latency_median_ms, m.latency_p99_ms
    );
    Ok(())
}
