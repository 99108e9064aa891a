//! What captures write (`handlers/capture.rs` answers them): an area of the canvas
//! (an output), or one window alone, painted from the scene over transparency with
//! the parts other windows cover. Into a client's dma-buf the GPU writes it: painted
//! straight into it where the renderer renders into dma-bufs, else copied into it
//! imported as a buffer; into wl_shm it is read back (`readback.rs`).

use anyhow::Context;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::utils::{Physical, Rectangle, Size};

use super::completion::SubmissionId;
use super::damage::{frame_damage, DrawKey, Rect};
use super::paint::{Quads, Under};
use super::scanout_target::{ScanoutTarget, SharedScanoutBuffer};
use super::Renderer;

/// What a capture shows.
#[derive(Clone, Copy, Debug)]
pub enum CaptureOf<'a> {
    /// This area of the canvas (canvas pixels): an output's, as composed.
    Canvas(Rectangle<i32, Physical>),
    /// This area of the canvas without the cursor, painted from the scene.
    CanvasWithoutCursor(Rectangle<i32, Physical>),
    /// The window whose toplevel surface is `window`, alone: `area` is where it lies
    /// on the canvas (canvas pixels), the capture's size.
    Window { window: &'a ObjectId, area: Rectangle<i32, Physical> },
    /// The cursor alone, over transparency: `area` is where it lies on the canvas.
    Cursor(Rectangle<i32, Physical>),
}

impl<'a> CaptureOf<'a> {
    pub fn size(&self) -> Size<i32, Physical> {
        match self {
            Self::Canvas(area) | Self::CanvasWithoutCursor(area) | Self::Window { area, .. } | Self::Cursor(area) => {
                area.size
            }
        }
    }

    /// How it is made: the canvas as composed, or painted from the scene.
    fn made(&self) -> Made<'a> {
        match *self {
            Self::Canvas(region) => Made::Composed(region),
            Self::CanvasWithoutCursor(area) => Made::Painted(Quads::AllButCursor, area, Under::Background),
            Self::Window { window, area } => Made::Painted(Quads::Window(window), area, Under::Transparent),
            Self::Cursor(area) => Made::Painted(Quads::Cursor, area, Under::Transparent),
        }
    }
}

/// How a capture is made: this area of the canvas as composed, or these quads of the
/// scene painted over this, where they lie (canvas pixels).
enum Made<'a> {
    Composed(Rectangle<i32, Physical>),
    Painted(Quads<'a>, Rectangle<i32, Physical>, Under),
}

/// A capture client's dma-buf as the GPU writes it, kept until the GPU is done.
pub enum CaptureTarget {
    /// Imported as a render target, the scene painted into it.
    Painted(ScanoutTarget),
    /// Imported as a buffer, the capture copied into it.
    Copied(wgpu::Buffer),
}

impl Renderer {
    /// Gathers, from each frame on, what changes of these windows alone (by their
    /// toplevel surfaces): for their captures' damage (`take_window_damage`).
    pub fn watch_windows(&mut self, windows: Vec<ObjectId>) {
        self.window_damage.retain(|(w, _)| windows.contains(w));
        self.watched_windows = windows;
    }

    /// Lets the texture captures are painted into go (no capture waits, no session
    /// will ask for more).
    pub fn drop_capture_texture(&mut self) {
        self.painted_capture_texture = None;
    }

    /// Checks that a window of `size` can be painted alone: no side past the
    /// device's largest texture (a client can make its window that large).
    fn ensure_window_fits(&self, size: Size<i32, Physical>) -> anyhow::Result<()> {
        let limit = i64::from(self.max_texture_dimension());
        let fits = (1..=limit).contains(&i64::from(size.w)) && (1..=limit).contains(&i64::from(size.h));
        anyhow::ensure!(fits, "a {}x{} window: past the device's {limit}-pixel textures", size.w, size.h);
        Ok(())
    }

    /// What changed of each watched window since the last call (canvas pixels): its
    /// own quads only, not what other windows did over it.
    pub fn take_window_damage(&mut self) -> Vec<(ObjectId, Rect)> {
        std::mem::take(&mut self.window_damage)
    }

    /// Adds what changed of each watched window between the last frame and `next`
    /// (all of it where the frame counts as changed everywhere).
    pub(super) fn note_window_damage(&mut self, next: &[(DrawKey, Option<Rect>)], everywhere: bool) {
        for window in &self.watched_windows {
            let before: Vec<DrawKey> = self.previous.iter().filter(|k| &k.window == window).cloned().collect();
            let now: Vec<(DrawKey, Option<Rect>)> = next.iter().filter(|(k, _)| &k.window == window).cloned().collect();
            let all = || now.iter().map(|(k, _)| Rect::from_xywh(k.uniform.dst)).reduce(Rect::union);
            let changed = if everywhere { all() } else { frame_damage(&before, &now) };
            let Some(changed) = changed else { continue };
            match self.window_damage.iter_mut().find(|(w, _)| w == window) {
                Some((_, damage)) => *damage = damage.union(changed),
                None => self.window_damage.push((window.clone(), changed)),
            }
        }
    }

    /// The texture that holds what `of` shows, and where in it: the canvas brought up
    /// to the scene, or the window painted alone into a texture of its own.
    pub(super) fn capture_source(&mut self, of: CaptureOf<'_>) -> anyhow::Result<(wgpu::Texture, (u32, u32))> {
        let size = of.size();
        anyhow::ensure!(size.w > 0 && size.h > 0, "an empty capture");
        match of.made() {
            Made::Composed(region) => {
                self.ensure_canvas_area(region, size.w as u32, size.h as u32)?;
                self.paint_canvas();
                Ok((self.output_texture.clone(), (region.loc.x as u32, region.loc.y as u32)))
            }
            Made::Painted(quads, area, under) => {
                self.ensure_window_fits(size)?;
                let fits = |t: &wgpu::Texture| (t.width(), t.height()) == (size.w as u32, size.h as u32);
                let (texture, view) = match self.painted_capture_texture.take().filter(|(t, _)| fits(t)) {
                    Some(kept) => kept,
                    None => super::create_output(&self.device, size),
                };
                self.painted_capture_texture = Some((texture.clone(), view.clone()));
                self.paint_alone(&view, quads, Rect::of_area(area), under).context(STALE)?;
                Ok((texture, (0, 0)))
            }
        }
    }

    /// Writes what `of` shows into a capture client's dma-buf (XRGB8888 or ARGB8888,
    /// LINEAR, one plane, the capture's size), whole, on the GPU: painted straight into
    /// it where the renderer renders into dma-bufs, else copied into it imported as a
    /// buffer. Returns what the GPU writes, which must live until the submission
    /// (returned too, None where nothing was written) is done.
    pub fn paint_into_dmabuf(
        &mut self,
        dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
        of: CaptureOf<'_>,
    ) -> anyhow::Result<(CaptureTarget, Option<SubmissionId>)> {
        use smithay::backend::allocator::Buffer;
        let (Some(fd), Some(offset), Some(stride)) =
            (dmabuf.handles().next(), dmabuf.offsets().next(), dmabuf.strides().next())
        else {
            anyhow::bail!("the dma-buf has no plane");
        };
        let size = dmabuf.size();
        anyhow::ensure!((size.w, size.h) == (of.size().w, of.size().h), "the dma-buf is {size:?}, the capture {of:?}");
        let shared = SharedScanoutBuffer {
            fd,
            width: u32::try_from(size.w)?,
            height: u32::try_from(size.h)?,
            offset,
            stride,
            modifier: crate::dmabuf::params::MODIFIER_LINEAR,
        };
        let written = if self.renders_into_dmabufs() {
            let mut target = self.import_scanout_target(shared)?;
            let submission = match of.made() {
                Made::Composed(region) => self.paint_scanout(region, &mut target, true)?,
                Made::Painted(quads, area, under) => {
                    self.ensure_window_fits(area.size)?;
                    let view = target.view.clone();
                    Some(self.paint_alone(&view, quads, Rect::of_area(area), under).context(STALE)?)
                }
            };
            // A capture is no frame of an output's: it holds back no repaint.
            if let Some(id) = submission {
                self.completions.not_a_frame(id);
            }
            (CaptureTarget::Painted(target), submission)
        } else {
            let (buffer, submission) = self.copy_into_dmabuf(shared, of)?;
            (CaptureTarget::Copied(buffer), Some(submission))
        };
        self.dmabuf_captures += 1;
        Ok(written)
    }

    /// Copies what `of` shows into the dma-buf `target` imported as a buffer: in one
    /// copy where its stride is a multiple of 256 bytes (what a buffer copy's rows
    /// need), else one copy per row.
    #[cfg(feature = "dmabuf-vulkan")]
    fn copy_into_dmabuf(
        &mut self,
        target: SharedScanoutBuffer<'_>,
        of: CaptureOf<'_>,
    ) -> anyhow::Result<(wgpu::Buffer, SubmissionId)> {
        let importer = self.vulkan.as_ref().ok_or_else(|| anyhow::anyhow!("the renderer imports no dma-bufs"))?;
        let (width, height) = (target.width, target.height);
        anyhow::ensure!(height > 0, "an empty capture");
        anyhow::ensure!(
            target.offset.is_multiple_of(4) && target.stride.is_multiple_of(4) && target.stride >= width * 4,
            "offset {} and stride {} must be whole pixels, the stride at least a row",
            target.offset,
            target.stride
        );
        let end = u64::from(target.offset) + u64::from(target.stride) * u64::from(height - 1) + u64::from(width) * 4;
        let buffer = importer.import_dmabuf_for_writing(&self.device, target.fd, end)?;
        let (texture, (x, y)) = self.capture_source(of)?;
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("capture") });
        let source = |row: u32| wgpu::TexelCopyTextureInfo {
            texture: &texture,
            mip_level: 0,
            origin: wgpu::Origin3d { x, y: y + row, z: 0 },
            aspect: wgpu::TextureAspect::All,
        };
        let aligned = target.stride.is_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let copies = if aligned { [(0, height)].to_vec() } else { (0..height).map(|row| (row, 1)).collect() };
        for (row, rows) in copies {
            let layout = wgpu::TexelCopyBufferLayout {
                offset: u64::from(target.offset) + u64::from(row) * u64::from(target.stride),
                bytes_per_row: (rows > 1).then_some(target.stride),
                rows_per_image: None,
            };
            encoder.copy_texture_to_buffer(
                source(row),
                wgpu::TexelCopyBufferInfo { buffer: &buffer, layout },
                wgpu::Extent3d { width, height: rows, depth_or_array_layers: 1 },
            );
        }
        let submission = self.submit(encoder, Vec::new());
        Ok((buffer, submission))
    }

    #[cfg(not(feature = "dmabuf-vulkan"))]
    fn copy_into_dmabuf(
        &mut self,
        _target: SharedScanoutBuffer<'_>,
        _of: CaptureOf<'_>,
    ) -> anyhow::Result<(wgpu::Buffer, SubmissionId)> {
        anyhow::bail!("this build has no Vulkan import (built without the dmabuf-vulkan feature)")
    }
}

/// Why nothing is painted while the scene is stale.
pub(super) const STALE: &str = "the scene draws a retired import; the next frame replaces it";
