//! One workload: N surfaces of one size, format and buffer path, committing
//! with full or partial damage, paced by frame callbacks or by wp_fifo_v1.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axiom_formats::encode::{block_pattern, encode, Options};
use axiom_formats::fourcc;
use axiom_formats::image::Format32;
use axiom_testclient::client::Presented;
use axiom_testclient::dmabuf::{seal_shrink, Plane};
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{ShmLayout, TestClient};
use wayland_client::protocol::wl_buffer::WlBuffer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferPath {
    /// wl_shm over a plain memfd.
    Shm,
    /// wl_shm over a memfd sealed against shrinking (as weston's clients and foot
    /// make them): what the dmabuf-vulkan build reads in place (ladder step 3).
    SealedShm,
    /// A memfd sent through linux-dmabuf, sealed against shrinking like a udmabuf.
    Dmabuf,
}

/// Where a capture client copies the whole output each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureInto {
    /// A wl_shm buffer: the compositor reads the frame back from the GPU.
    Shm,
    /// A memfd sent through linux-dmabuf: written by the GPU where the compositor can.
    Dmabuf,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub surfaces: usize,
    pub width: u32,
    pub height: u32,
    pub fourcc: u32,
    pub path: BufferPath,
    /// Percent of rows damaged each frame (100: full damage; 0: the client stays idle).
    pub damage_percent: u32,
    pub frames: usize,
    /// Paced by wp_fifo_v1 instead of frame callbacks: each commit sets a FIFO barrier
    /// and waits on the last one's, and the client queues frames as fast as that lets
    /// it, at most `FIFO_QUEUE` ahead of the screen, as a Vulkan FIFO swapchain does.
    pub fifo: bool,
    /// After each frame, the whole output is captured (zwlr_screencopy) into this.
    pub capture: Option<CaptureInto>,
}

/// Bytes of the output every row runs on (`servers.rs`): what a capture copies.
const OUTPUT_BYTES: u64 = crate::servers::OUTPUT.0 as u64 * crate::servers::OUTPUT.1 as u64 * 4;

/// Frames a FIFO client keeps committed but not yet presented.
const FIFO_QUEUE: usize = 2;

impl Workload {
    /// Bytes the compositor must move per frame: the damaged rows of every plane of all
    /// surfaces, and the captured output where a capture client copies it.
    pub fn damaged_bytes(&self) -> u64 {
        let layout = axiom_formats::layout::layout(self.fourcc).expect("known format");
        let rows = self.damaged_rows();
        let per_surface: u64 =
            layout.planes.iter().map(|p| p.row_bytes(self.width) * u64::from(rows.div_ceil(p.block_h))).sum();
        let captured = if self.capture.is_some() { OUTPUT_BYTES } else { 0 };
        per_surface * self.surfaces as u64 + captured
    }

    fn damaged_rows(&self) -> u32 {
        (self.height * self.damage_percent).div_ceil(100)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Measurement {
    pub fps: f64,
    pub cpu_ms_per_frame: f64,
    pub latency_median_ms: f64,
    pub latency_p99_ms: f64,
    pub peak_rss_mib: f64,
}

struct Surface {
    window: axiom_testclient::Window,
    buffers: [WlBuffer; 2],
    _memory: Vec<SharedMemory>,
}

/// Runs `workload` against the compositor at `socket` whose process is `pid`.
pub fn run(socket: &Path, pid: u32, workload: &Workload) -> anyhow::Result<Measurement> {
    let mut client = TestClient::connect(socket)?;
    let clock = client.presentation_clock().unwrap_or(1);
    let dmabuf = match workload.path {
        BufferPath::Dmabuf => {
            let version = client
                .globals
                .contents()
                .with_list(|list| list.iter().find(|g| g.interface == "zwp_linux_dmabuf_v1").map(|g| g.version.min(5)));
            Some(client.bind_dmabuf(version.context("no linux-dmabuf")?)?)
        }
        BufferPath::Shm | BufferPath::SealedShm => None,
    };
    let image = block_pattern(workload.width, workload.height);
    let mut surfaces = Vec::new();
    for index in 0..workload.surfaces {
        let window = client.create_window(&format!("bench-{index}"))?;
        let mut memory = Vec::new();
        let mut make = |client: &mut TestClient| -> anyhow::Result<WlBuffer> {
            match &dmabuf {
                None => {
                    let format = match workload.fourcc {
                        fourcc::XRGB8888 => Format32::Xrgb8888,
                        fourcc::ARGB8888 => Format32::Argb8888,
                        _ => bail!("wl_shm workloads are XRGB8888 or ARGB8888"),
                    };
                    let stride = workload.width as usize * 4;
                    let bytes = format.encode_image(&image, stride, 0xff);
                    let layout = ShmLayout { width: workload.width, height: workload.height, stride, offset: 0 };
                    let seal = workload.path == BufferPath::SealedShm;
                    let buffer = client.create_shm_buffer(&bytes, layout, format.shm_code(), seal)?;
                    memory.push(buffer.memory);
                    Ok(buffer.buffer)
                }
                Some(dmabuf) => {
                    let encoded = encode(workload.fourcc, &image, Options::default()).context("format")?;
                    let mut shared = SharedMemory::new(encoded.bytes.len())?;
                    shared.bytes_mut().copy_from_slice(&encoded.bytes);
                    seal_shrink(shared.fd())?;
                    let planes: Vec<Plane<'_>> = encoded
                        .planes
                        .iter()
                        .map(|&(offset, stride)| Plane { fd: shared.fd(), offset, stride, modifier: 0 })
                        .collect();
                    let params = client.dmabuf_params(dmabuf, &planes);
                    let buffer = client.dmabuf_create_immed(
                        &params,
                        workload.width as i32,
                        workload.height as i32,
                        workload.fourcc,
                    );
                    params.destroy();
                    memory.push(shared);
                    Ok(buffer)
                }
            }
        };
        let buffers = [make(&mut client)?, make(&mut client)?];
        window.surface.attach(Some(&buffers[0]), 0, 0);
        window.surface.damage_buffer(0, 0, workload.width as i32, workload.height as i32);
        client.commit_and_wait_frame(&window.surface)?;
        surfaces.push(Surface { window, buffers, _memory: memory });
    }

    if workload.damage_percent == 0 {
        return measure_idle(pid);
    }
    let capture = match workload.capture {
        Some(into) => Some(CaptureTarget::new(&mut client, into)?),
        None => None,
    };

    let rows = workload.damaged_rows() as i32;
    // The newest (topmost) surface paces the loop: compositors may send no frame
    // callbacks to surfaces that others cover completely (weston does not).
    let pacer = surfaces.len() - 1;
    let fifo = match workload.fifo {
        true => Some(client.fifo(&surfaces[pacer].window.surface).context("wp_fifo_v1")?),
        false => None,
    };
    let mut queued = VecDeque::new();
    let warmup = 10;
    let mut feedbacks = Vec::new();
    let mut commits = Vec::new();
    let mut cpu_start = 0;
    let mut wall_start = Instant::now();
    for frame in 0..warmup + workload.frames {
        if frame == warmup {
            // The clock starts with no warm-up frame still queued.
            let warm: Vec<_> = queued.drain(..).collect();
            client.wait_for_feedback(&warm)?;
            cpu_start = crate::procstat::cpu_ns(pid)?;
            wall_start = Instant::now();
        }
        let measured = frame >= warmup;
        // Damage moves down the buffer so that every row gets its turn.
        let top = ((frame as i32) * rows) % (workload.height as i32 - rows + 1).max(1);
        for (index, surface) in surfaces.iter().enumerate() {
            if index == pacer && measured {
                feedbacks.push(client.request_feedback(&surface.window.surface));
            }
            surface.window.surface.attach(Some(&surface.buffers[frame % 2]), 0, 0);
            surface.window.surface.damage_buffer(0, top, workload.width as i32, rows);
            if index != pacer {
                surface.window.surface.commit();
            }
        }
        // The pacing surface commits last, with the frame callback that paces the loop.
        if measured {
            commits.push(now(clock));
        }
        let surface = &surfaces[pacer].window.surface;
        match &fifo {
            None => {
                client.commit_and_wait_frame(surface)?;
                if let Some(capture) = &capture {
                    capture.take(&mut client)?;
                }
            }
            Some(fifo) => {
                queued.push_back(client.request_feedback(surface));
                fifo.set_barrier();
                fifo.wait_barrier();
                surface.commit();
                client.flush()?;
                if queued.len() > FIFO_QUEUE {
                    let oldest = queued.pop_front().context("queued frames")?;
                    client.wait_for_feedback(&[oldest])?;
                }
            }
        }
    }
    // Frames paced by frame callbacks are counted as they are committed; the CPU of
    // FIFO frames, queued ahead, once the last is presented.
    if fifo.is_some() {
        client.wait_for_feedback(&feedbacks)?;
    }
    let wall = wall_start.elapsed();
    let cpu = crate::procstat::cpu_ns(pid)? - cpu_start;
    let results = client.wait_for_feedback(&feedbacks)?;
    let mut latencies: Vec<f64> = results
        .iter()
        .zip(&commits)
        .filter_map(|(result, commit)| match result {
            // Signed: a presentation time stamped before the commit shows as negative.
            Presented::Presented { time, .. } => Some((time.as_secs_f64() - commit.as_secs_f64()) * 1000.0),
            Presented::Discarded => None,
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    // FIFO frames per second: presented ones, between the first and the last presentation.
    let presented: Vec<Duration> = results
        .iter()
        .filter_map(|r| match r {
            Presented::Presented { time, .. } => Some(*time),
            Presented::Discarded => None,
        })
        .collect();
    let fps = match (fifo.is_some(), presented.first(), presented.last()) {
        (true, Some(first), Some(last)) if last > first => {
            (presented.len() - 1) as f64 / (*last - *first).as_secs_f64()
        }
        _ => workload.frames as f64 / wall.as_secs_f64(),
    };
    let pick =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    Ok(Measurement {
        fps,
        cpu_ms_per_frame: cpu as f64 / 1e6 / workload.frames as f64,
        latency_median_ms: pick(0.5),
        latency_p99_ms: pick(0.99),
        peak_rss_mib: crate::procstat::peak_rss_kib(pid)? as f64 / 1024.0,
    })
}

/// A buffer the size of the output that a capture client copies it into.
struct CaptureTarget {
    buffer: WlBuffer,
    _memory: SharedMemory,
}

impl CaptureTarget {
    /// A buffer of what a first capture offers: wl_shm, or a sealed memfd through
    /// linux-dmabuf where the compositor offers a dma-buf.
    fn new(client: &mut TestClient, into: CaptureInto) -> anyhow::Result<Self> {
        let (frame, offer) = client.start_capture()?;
        frame.destroy();
        let (format, width, height, stride) = offer.shm.context("no wl_shm buffer offered")?;
        if into == CaptureInto::Shm {
            let bytes = vec![0; stride as usize * height as usize];
            let layout = ShmLayout { width, height, stride: stride as usize, offset: 0 };
            let shm = client.create_shm_buffer(&bytes, layout, u32::from(format), true)?;
            return Ok(Self { buffer: shm.buffer, _memory: shm.memory });
        }
        let (code, width, height) = offer.dmabuf.context("no dma-buf offered for captures")?;
        let memory = SharedMemory::new(width as usize * 4 * height as usize)?;
        seal_shrink(memory.fd())?;
        let dmabuf = client.bind_dmabuf(4)?;
        let plane = Plane { fd: memory.fd(), offset: 0, stride: width * 4, modifier: 0 };
        let params = client.dmabuf_params(&dmabuf, &[plane]);
        let buffer = client.dmabuf_create_immed(&params, width as i32, height as i32, code);
        params.destroy();
        Ok(Self { buffer, _memory: memory })
    }

    /// Captures the whole output into the buffer and waits until it is there.
    fn take(&self, client: &mut TestClient) -> anyhow::Result<()> {
        let (frame, _) = client.start_capture()?;
        client.finish_capture(frame, &self.buffer, false)?;
        Ok(())
    }
}

/// The compositor's CPU time while every client sits still, per refresh interval (60 Hz).
fn measure_idle(pid: u32) -> anyhow::Result<Measurement> {
    let period = Duration::from_secs(2);
    let cpu_start = crate::procstat::cpu_ns(pid)?;
    std::thread::sleep(period);
    let cpu = crate::procstat::cpu_ns(pid)? - cpu_start;
    let intervals = period.as_secs_f64() * 60.0;
    Ok(Measurement {
        fps: 0.0,
        cpu_ms_per_frame: cpu as f64 / 1e6 / intervals,
        latency_median_ms: f64::NAN,
        latency_p99_ms: f64::NAN,
        peak_rss_mib: crate::procstat::peak_rss_kib(pid)? as f64 / 1024.0,
    })
}

/// Now on the compositor's presentation clock (CLOCK_MONOTONIC, or weston's MONOTONIC_RAW).
fn now(clock: u32) -> Duration {
    let id = if clock == 4 { rustix::time::ClockId::MonotonicRaw } else { rustix::time::ClockId::Monotonic };
    let ts = rustix::time::clock_gettime(id);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
