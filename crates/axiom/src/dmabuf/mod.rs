//! linux-dmabuf: formats and modifiers, params validation, feedback, and the
//! import ladder's CPU step. The renderer side of imports lives in
//! `render/texture.rs`.

pub mod cpu;
pub mod feedback;
pub mod formats;
pub mod params;
pub mod protocol;
pub mod sync;

use std::os::fd::BorrowedFd;
use std::sync::Arc;

use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1;
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{DisplayHandle, Resource};

use feedback::{send_feedback, Feedback, FeedbackData, FormatTable};
use params::{ValidBuffer, MODIFIER_LINEAR};

use crate::Axiom;

pub const GLOBAL_VERSION: u32 = 5;

/// main_device of the feedback on a machine without DRM devices (CI, lavapipe):
/// dev_t 0:1. Major 0 is never a DRM device, so a client that looks it up finds
/// none, yet it is not 0, which clients such as wayland-info read as "no feedback".
pub const PLACEHOLDER_DEVICE: u64 = 1;

/// Import counters, per step of the ladder. Printed on SIGUSR1.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportStats {
    pub created: u64,
    pub failed: u64,
    pub cpu_imports: u64,
    pub cpu_bytes: u64,
    pub cpu_skipped: u64,
    /// Step 1: dma-bufs imported as Vulkan images by modifier and sampled in place.
    pub vulkan_image: u64,
    /// Step 2: dma-bufs imported as Vulkan buffers and read in place.
    pub vulkan_buffer: u64,
    /// Step 3: wl_shm buffers imported as host pointers and read in place.
    pub host_pointer: u64,
    /// wl_shm commits whose damaged rows the CPU uploaded (step 4 for shm).
    pub shm_cpu_uploads: u64,
    /// Vulkan imports that failed and fell back to the CPU.
    pub vulkan_failed: u64,
    /// Commits held until the writers of the dma-buf they attach had finished.
    pub held_commits: u64,
    /// Commits held until their explicit-sync acquire point was signalled.
    pub held_acquires: u64,
    /// Frames that read a dma-buf whose writers had not finished within the limit.
    pub sync_timeouts: u64,
    /// Sync files of a dma-buf's pending writes that a frame's GPU work waited on.
    pub gpu_fence_waits: u64,
    /// Surfaces left out of a frame because their buffer is larger than the renderer can draw.
    pub too_large: u64,
}

/// What the renderer holds for clients' buffers now, for the counters: wl_buffers
/// with a Vulkan import, wl_shm host-pointer imports (also those only a surface
/// still holds), plane mappings of the CPU path, and surface textures.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveImports {
    pub imports: usize,
    pub host_imports: usize,
    pub mappings: usize,
    pub textures: usize,
    /// DRM files holding imported timelines, and the syncobj handles in them.
    pub timeline_files: usize,
    pub timeline_handles: usize,
    /// ext-image-copy-capture sessions the compositor tracks (each freed with its object).
    pub capture_sessions: usize,
}

/// What became of composed frames, for the counters: bytes of them read back from
/// the GPU (screencopy, the KMS fallback copy), waits for the GPU, and frames each
/// output showed.
#[derive(Debug, Default, Clone)]
pub struct OutputCounters {
    pub readback_bytes: u64,
    /// Paints of the canvas (`render/paint.rs`): on KMS only for captures and the CPU copy.
    pub canvas_paints: u64,
    /// Captures painted straight into a client's dma-buf, with no readback.
    pub dmabuf_captures: u64,
    /// Paints of a display's scanout buffer that drew something, and of its cursor
    /// plane's buffers (a new cursor image).
    pub scanout_paints: u64,
    pub cursor_plane_paints: u64,
    /// Quads painted as a copy of their texels rather than drawn (`render/paint.rs`).
    pub texel_copies: u64,
    /// Commits whose 4:2:0 planes were copied on the GPU into textures (`render/plane_copy.rs`).
    pub plane_copies: u64,
    /// Times the event loop waited for the GPU to finish (captures, pool resizes).
    pub loop_gpu_waits: u64,
    pub frames: Vec<(String, u64)>,
    /// Bytes malloc has in use and holds free (`malloc_stats::malloc_bytes`).
    pub malloc: (u64, u64),
}

pub struct DmabufState {
    pub default_feedback: Feedback,
    /// Feedback objects made with get_surface_feedback, alive.
    pub surface_feedback_objects: Vec<ZwpLinuxDmabufFeedbackV1>,
    /// Surfaces whose feedback differs from the default (e.g. a scanout tranche).
    surface_overrides: Vec<(ObjectId, Feedback)>,
    pub stats: ImportStats,
}

impl DmabufState {
    /// Creates the global with a format table of what `adapter` can sample: every
    /// format LINEAR, plus the `tiled` (fourcc, modifier) pairs the renderer samples.
    pub fn new(dh: &DisplayHandle, adapter: &wgpu::Adapter, tiled: &[(u32, u64)]) -> anyhow::Result<Self> {
        let supported = formats::supported_formats(adapter);
        let mut entries: Vec<(u32, u64)> = supported.iter().map(|f| (f.fourcc as u32, MODIFIER_LINEAR)).collect();
        entries.extend(tiled.iter().filter(|(fourcc, _)| supported.iter().any(|f| f.fourcc as u32 == *fourcc)));
        let table = Arc::new(FormatTable::new(entries)?);
        let info = adapter.get_info();
        let device = match feedback::render_node(&info.device_pci_bus_id) {
            Some((dev, path)) => {
                tracing::info!("linux-dmabuf: main device {path}");
                dev
            }
            None => {
                // Clients that speak v4+ learn formats only from feedback, so it is
                // offered anyway, with a placeholder device.
                tracing::info!(
                    "linux-dmabuf: no DRM render node on this machine; feedback uses placeholder main device 0:1"
                );
                PLACEHOLDER_DEVICE
            }
        };
        tracing::info!(
            formats = supported.len(),
            tiled = tiled.len(),
            "linux-dmabuf v{GLOBAL_VERSION}: {}",
            supported.iter().map(|f| axiom_formats::fourcc::name(f.fourcc as u32)).collect::<Vec<_>>().join(" ")
        );
        for (fourcc, modifier) in tiled {
            tracing::debug!("linux-dmabuf: {} with modifier 0x{modifier:016x}", axiom_formats::fourcc::name(*fourcc));
        }
        #[cfg(not(feature = "dmabuf-vulkan"))]
        tracing::info!("DMA-BUF: dmabuf-vulkan feature not enabled, using CPU copy");
        dh.create_global::<Axiom, ZwpLinuxDmabufV1, ()>(GLOBAL_VERSION, ());
        Ok(Self {
            default_feedback: Feedback::single_tranche(device, table),
            surface_feedback_objects: Vec::new(),
            surface_overrides: Vec::new(),
            stats: ImportStats::default(),
        })
    }

    /// The device clients should allocate for: the KMS device's render node (or its KMS
    /// node). Feedback objects already sent keep the device they were sent.
    pub fn set_main_device(&mut self, device: u64, name: &str) {
        tracing::info!("linux-dmabuf: main device {name} (the display's device)");
        self.default_feedback = Feedback::single_tranche(device, self.default_feedback.table.clone());
    }

    /// The feedback a surface currently gets.
    pub fn surface_feedback(&self, surface: &WlSurface) -> &Feedback {
        let id = surface.id();
        self.surface_overrides.iter().find(|(s, _)| *s == id).map(|(_, f)| f).unwrap_or(&self.default_feedback)
    }

    /// Changes a surface's feedback (None: back to the default) and tells its
    /// feedback objects, each only if what it has differs.
    pub fn set_surface_feedback(&mut self, surface: &WlSurface, feedback: Option<Feedback>) {
        let id = surface.id();
        self.surface_overrides.retain(|(s, _)| *s != id);
        if let Some(feedback) = feedback {
            self.surface_overrides.push((id, feedback));
        }
        let current = self.surface_feedback(surface).clone();
        for object in &self.surface_feedback_objects {
            if let Some(data) = object.data::<FeedbackData>() {
                if data.surface.as_ref() == Some(surface) {
                    send_feedback(object, data, &current);
                }
            }
        }
    }

    /// Forgets per-surface state of dead surfaces and objects.
    pub fn cleanup(&mut self) {
        self.surface_feedback_objects.retain(|f| f.is_alive());
        let alive: Vec<ObjectId> = self
            .surface_feedback_objects
            .iter()
            .filter_map(|f| f.data::<FeedbackData>()?.surface.as_ref().map(|s| s.id()))
            .collect();
        self.surface_overrides.retain(|(id, _)| alive.contains(id));
    }

    /// A buffer the protocol allows but we cannot import: answered with `failed`.
    fn refused(&mut self, reason: &str) {
        tracing::info!("DMA-BUF: import refused: {reason}");
        self.stats.failed += 1;
    }

    fn log_created(&mut self, valid: &ValidBuffer, buffer: &WlBuffer) {
        self.stats.created += 1;
        tracing::debug!(
            "DMA-BUF: created buffer {}x{} (fourcc: {}, id: {})",
            valid.width,
            valid.height,
            protocol::fourcc_hex(valid.format.fourcc),
            buffer.id().protocol_id()
        );
    }

    /// Logs the counters, with what the renderer holds now.
    pub fn log_stats(&self, live: LiveImports, output: &OutputCounters) {
        let s = self.stats;
        let frames: String = output.frames.iter().map(|(name, n)| format!(" frames_{name}={n}")).collect();
        tracing::info!(
            "DMA-BUF stats: created={} failed={} cpu_imports={} cpu_bytes={} cpu_skipped={} vulkan_image={} vulkan_buffer={} vulkan_failed={} host_pointer={} shm_cpu_uploads={} held_commits={} held_acquires={} sync_timeouts={} gpu_fence_waits={} too_large={} live_imports={} live_host_imports={} live_mappings={} live_textures={} timeline_files={} timeline_handles={} capture_sessions={} readback_bytes={} canvas_paints={} dmabuf_captures={} scanout_paints={} cursor_plane_paints={} texel_copies={} plane_copies={} loop_gpu_waits={} malloc_in_use={} malloc_free={}{}",
            s.created,
            s.failed,
            s.cpu_imports,
            s.cpu_bytes,
            s.cpu_skipped,
            s.vulkan_image,
            s.vulkan_buffer,
            s.vulkan_failed,
            s.host_pointer,
            s.shm_cpu_uploads,
            s.held_commits,
            s.held_acquires,
            s.sync_timeouts,
            s.gpu_fence_waits,
            s.too_large,
            live.imports,
            live.host_imports,
            live.mappings,
            live.textures,
            live.timeline_files,
            live.timeline_handles,
            live.capture_sessions,
            output.readback_bytes,
            output.canvas_paints,
            output.dmabuf_captures,
            output.scanout_paints,
            output.cursor_plane_paints,
            output.texel_copies,
            output.plane_copies,
            output.loop_gpu_waits,
            output.malloc.0,
            output.malloc.1,
            frames
        );
    }
}

/// The file behind `fd` (device and inode): two fds name the same file when equal.
pub fn file_identity(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    rustix::fs::fstat(fd).map(|s| (s.st_dev, s.st_ino)).ok()
}

/// Size of the buffer behind `fd`, without moving a shared file offset where
/// that can be avoided. None for fds that are no buffer (pipes, sockets, devices).
pub fn fd_size(fd: BorrowedFd<'_>) -> Option<u64> {
    use rustix::fs::FileType;
    let stat = rustix::fs::fstat(fd).ok()?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => u64::try_from(stat.st_size).ok(),
        FileType::Fifo
        | FileType::Socket
        | FileType::CharacterDevice
        | FileType::BlockDevice
        | FileType::Directory
        | FileType::Symlink => None,
        // dma-bufs are anonymous inodes: their size is found by seeking to the end.
        FileType::Unknown => {
            let size = rustix::fs::seek(fd, rustix::fs::SeekFrom::End(0)).ok()?;
            let _ = rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(0));
            Some(size)
        }
    }
}

impl Axiom {
    pub fn log_import_stats(&self) {
        let timelines = self.timeline_files.as_ref().map_or((0, 0), |files| files.counts());
        let live = LiveImports {
            imports: self.renderer.imports.len(),
            host_imports: self.renderer.host_imports.live(),
            mappings: self.renderer.mappings.len(),
            textures: crate::render::texture::live_textures(),
            timeline_files: timelines.0,
            timeline_handles: timelines.1,
            capture_sessions: self.image_copy_capture.live_sessions(),
        };
        let output = OutputCounters {
            readback_bytes: self.renderer.readback_bytes,
            canvas_paints: self.renderer.canvas_paints,
            dmabuf_captures: self.renderer.dmabuf_captures,
            scanout_paints: self.renderer.scanout_paints,
            cursor_plane_paints: self.renderer.cursor_plane_paints,
            texel_copies: self.renderer.texel_copies,
            plane_copies: self.renderer.plane_copies(),
            loop_gpu_waits: self.renderer.loop_gpu_waits,
            frames: self.space.outputs().map(|o| (o.name(), crate::outputs::frames_shown(o))).collect(),
            malloc: crate::malloc_stats::malloc_bytes(),
        };
        self.dmabuf_state.log_stats(live, &output);
    }
}
