//! Dma-bufs as render targets: a display's scanout buffers, and the buffers capture
//! clients hand to screencopy (`capture.rs`). Each, shared as a dma-buf, is imported into the
//! renderer's device for writing (step 1 of the import ladder, made for writing),
//! and the composed scene is painted straight into it (`paint.rs`): frames reach
//! the display, or a capture client, with no CPU byte touched and no copy. Where
//! that cannot be (the renderer is not on Vulkan, the device cannot write such a
//! dma-buf, `--dmabuf-import cpu`, a build without the ladder), the backend reads
//! frames back instead (`readback.rs`) and says why, and screencopy offers wl_shm
//! buffers alone.

use std::os::fd::BorrowedFd;

use smithay::utils::{Physical, Rectangle};

use super::completion::SubmissionId;
use super::damage::Rect;
use super::Renderer;

/// A scanout buffer the renderer writes composed frames into.
pub struct ScanoutTarget {
    pub(super) texture: wgpu::Texture,
    pub(super) view: wgpu::TextureView,
    /// The frame of the scene (`damage::History`) and the canvas area it holds, if any,
    /// and whether with the cursor.
    holds: Option<(u64, Rectangle<i32, Physical>, bool)>,
}

/// A scanout buffer's memory, shared as a dma-buf: XRGB8888 or ARGB8888 (the output
/// format's bytes; a cursor plane's buffer keeps the alpha written), one plane laid
/// out by `modifier` (LINEAR, or one of `Renderer::scanout_target_modifiers`).
#[derive(Debug, Clone, Copy)]
pub struct SharedScanoutBuffer<'a> {
    pub fd: BorrowedFd<'a>,
    pub width: u32,
    pub height: u32,
    pub offset: u32,
    pub stride: u32,
    pub modifier: u64,
}

impl Renderer {
    /// Whether the renderer can render into LINEAR XRGB8888 dma-bufs: a display's
    /// scanout buffers, a capture client's buffers.
    pub fn renders_into_dmabufs(&self) -> bool {
        #[cfg(feature = "dmabuf-vulkan")]
        {
            use crate::dmabuf::params::MODIFIER_LINEAR;
            self.vulkan.as_ref().is_some_and(|v| v.renders_into_modifier(super::OUTPUT_FORMAT, MODIFIER_LINEAR))
        }
        #[cfg(not(feature = "dmabuf-vulkan"))]
        false
    }

    /// The modifiers of XRGB8888 dma-bufs (one plane each) the renderer renders into:
    /// what a display's scanout buffers may be allocated with.
    pub fn scanout_target_modifiers(&self) -> Vec<u64> {
        #[cfg(feature = "dmabuf-vulkan")]
        if let Some(importer) = &self.vulkan {
            return importer.render_target_modifiers(super::OUTPUT_FORMAT);
        }
        Vec::new()
    }

    /// Whether the GPU can write a capture into a client's LINEAR XRGB8888 dma-buf:
    /// rendering into it, or failing that copying into it imported as a buffer.
    pub fn writes_dmabufs(&self) -> bool {
        #[cfg(feature = "dmabuf-vulkan")]
        {
            self.renders_into_dmabufs() || self.vulkan.as_ref().is_some_and(|v| v.dmabuf_buffers)
        }
        #[cfg(not(feature = "dmabuf-vulkan"))]
        false
    }

    /// Checks that `region` is a `width` x `height` area of the canvas: what a target
    /// of that size can be given.
    pub(super) fn ensure_canvas_area(
        &self,
        region: Rectangle<i32, Physical>,
        width: u32,
        height: u32,
    ) -> anyhow::Result<()> {
        let canvas = self.output_size;
        let fits = region.loc.x >= 0
            && region.loc.y >= 0
            && i32::try_from(width).is_ok_and(|w| w == region.size.w)
            && i32::try_from(height).is_ok_and(|h| h == region.size.h)
            && region.loc.x + region.size.w <= canvas.w
            && region.loc.y + region.size.h <= canvas.h;
        anyhow::ensure!(fits, "{region:?} is not a {width}x{height} area of the {canvas:?} canvas");
        Ok(())
    }

    /// Imports `buffer` as a render target; the error says why it cannot be one.
    pub fn import_scanout_target(&self, buffer: SharedScanoutBuffer<'_>) -> anyhow::Result<ScanoutTarget> {
        #[cfg(feature = "dmabuf-vulkan")]
        {
            use super::vulkan::{ImagePlane, ImageRole};
            let importer = self.vulkan.as_ref().ok_or_else(|| {
                anyhow::anyhow!("the renderer imports no dma-bufs (`--dmabuf-import cpu`, or it is not on Vulkan)")
            })?;
            // `import_dmabuf_image` refuses a modifier the device cannot render into.
            let plane = ImagePlane {
                format: super::OUTPUT_FORMAT,
                width: buffer.width,
                height: buffer.height,
                offset: buffer.offset,
                stride: buffer.stride,
                modifier: buffer.modifier,
            };
            let texture = importer.import_dmabuf_image(&self.device, buffer.fd, plane, ImageRole::RenderTarget)?;
            let view = texture.create_view(&Default::default());
            Ok(ScanoutTarget { texture, view, holds: None })
        }
        #[cfg(not(feature = "dmabuf-vulkan"))]
        {
            let _ = buffer;
            anyhow::bail!("this build has no Vulkan import (built without the dmabuf-vulkan feature)")
        }
    }

    /// Paints `region` of the composed scene (canvas pixels) straight into `target` on
    /// the GPU, with the cursor's quads or without them (`cursor`: a cursor plane shows
    /// it): only what changed since the frame `target` holds. Returns the submission to
    /// wait for before the display shows it; None where nothing changed.
    pub fn paint_scanout(
        &mut self,
        region: Rectangle<i32, Physical>,
        target: &mut ScanoutTarget,
        cursor: bool,
    ) -> anyhow::Result<Option<SubmissionId>> {
        let size = target.texture.size();
        self.ensure_canvas_area(region, size.width, size.height)?;
        let area = Rect::of_area(region);
        // Moved on the canvas since, or painted with the cursor where it now goes without
        // (or the other way round): what it holds is not known.
        let known = |&(_, at, with_cursor): &(u64, _, bool)| at == region && with_cursor == cursor;
        let holds = target.holds.take().filter(known).map(|(frame, ..)| frame);
        let Some((frame, submission)) = self.paint(&target.view, area, holds, cursor) else {
            target.holds = holds.map(|frame| (frame, region, cursor));
            anyhow::bail!(super::capture::STALE);
        };
        target.holds = Some((frame, region, cursor));
        Ok(submission)
    }

    /// Paints `items` alone (the cursor's quads; canvas pixels) into `target` over
    /// transparency, its pixel (0, 0) at the canvas's `origin`: a cursor plane's buffer.
    pub fn paint_cursor_plane(
        &mut self,
        target: &mut ScanoutTarget,
        items: &[super::DrawItem],
        origin: (i32, i32),
    ) -> SubmissionId {
        let size = target.texture.size();
        let (w, h) = (size.width as i32, size.height as i32);
        let area = Rect { x0: origin.0, y0: origin.1, x1: origin.0 + w, y1: origin.1 + h };
        target.holds = None;
        self.cursor_plane_paints += 1;
        self.paint_items(&target.view, items, area)
    }
}
