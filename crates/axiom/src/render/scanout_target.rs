//! A display's scanout buffers as render targets: each buffer, shared as a
//! dma-buf, is imported into the renderer's device for writing (step 1 of the
//! import ladder, made for writing), so that composed frames reach the display
//! with no CPU byte touched. Where that cannot be (the renderer is not on
//! Vulkan, the device cannot write such a dma-buf, `--dmabuf-import cpu`, a
//! build without the ladder), the backend reads frames back instead
//! (`readback.rs`) and says why.

use std::os::fd::BorrowedFd;

use smithay::utils::{Physical, Rectangle};

use super::completion::SubmissionId;
use super::damage::Rect;
use super::Renderer;

/// A scanout buffer the renderer writes composed frames into.
pub struct ScanoutTarget {
    texture: wgpu::Texture,
    /// The canvas frame (`damage::History`) and area it holds now, if any.
    holds: Option<(u64, Rectangle<i32, Physical>)>,
}

/// A scanout buffer's memory, shared as a dma-buf: XRGB8888 (the output format's
/// bytes), LINEAR, one plane.
#[derive(Debug, Clone, Copy)]
pub struct SharedScanoutBuffer<'a> {
    pub fd: BorrowedFd<'a>,
    pub width: u32,
    pub height: u32,
    pub offset: u32,
    pub stride: u32,
}

impl Renderer {
    /// Imports `buffer` as a render target; the error says why it cannot be one.
    pub fn import_scanout_target(&self, buffer: SharedScanoutBuffer<'_>) -> anyhow::Result<ScanoutTarget> {
        #[cfg(feature = "dmabuf-vulkan")]
        {
            use super::vulkan::{ImagePlane, ImageRole};
            use crate::dmabuf::params::MODIFIER_LINEAR;
            let importer = self.vulkan.as_ref().ok_or_else(|| {
                anyhow::anyhow!("the renderer imports no dma-bufs (`--dmabuf-import cpu`, or it is not on Vulkan)")
            })?;
            anyhow::ensure!(
                importer.renders_into_modifier(super::OUTPUT_FORMAT, MODIFIER_LINEAR),
                "the GPU cannot render into LINEAR XRGB8888 dma-bufs"
            );
            let plane = ImagePlane {
                format: super::OUTPUT_FORMAT,
                width: buffer.width,
                height: buffer.height,
                offset: buffer.offset,
                stride: buffer.stride,
                modifier: MODIFIER_LINEAR,
            };
            let texture = importer.import_dmabuf_image(&self.device, buffer.fd, plane, ImageRole::RenderTarget)?;
            Ok(ScanoutTarget { texture, holds: None })
        }
        #[cfg(not(feature = "dmabuf-vulkan"))]
        {
            let _ = buffer;
            anyhow::bail!("this build has no Vulkan import (built without the dmabuf-vulkan feature)")
        }
    }

    /// Writes `region` of the composed canvas into `target` on the GPU: only what
    /// changed since the frame `target` holds. Returns the submission to wait for
    /// before the display shows it; None where nothing needed copying.
    pub fn copy_output_into(
        &mut self,
        region: Rectangle<i32, Physical>,
        target: &mut ScanoutTarget,
    ) -> anyhow::Result<Option<SubmissionId>> {
        let size = target.texture.size();
        let canvas = self.output_size;
        let fits = region.loc.x >= 0
            && region.loc.y >= 0
            && region.size.w == size.width as i32
            && region.size.h == size.height as i32
            && region.loc.x + region.size.w <= canvas.w
            && region.loc.y + region.size.h <= canvas.h;
        anyhow::ensure!(fits, "{region:?} is not a {}x{} area of the {canvas:?} canvas", size.width, size.height);
        let frame = self.history.frame();
        let whole = Rect {
            x0: region.loc.x,
            y0: region.loc.y,
            x1: region.loc.x + region.size.w,
            y1: region.loc.y + region.size.h,
        };
        let changed = match target.holds {
            Some((held, area)) if area == region => self.history.since(held),
            _ => None,
        };
        target.holds = None;
        let copy = match changed {
            // Unknown (never written, resized, too old): all of it.
            None => Some(whole),
            Some(damage) => damage.and_then(|d| d.intersect(whole)),
        };
        let Some(copy) = copy else {
            target.holds = Some((frame, region));
            return Ok(None);
        };
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("scanout") });
        encoder.copy_texture_to_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.output_texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: copy.x0 as u32, y: copy.y0 as u32, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyTextureInfo {
                texture: &target.texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: (copy.x0 - whole.x0) as u32, y: (copy.y0 - whole.y0) as u32, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d {
                width: (copy.x1 - copy.x0) as u32,
                height: (copy.y1 - copy.y0) as u32,
                depth_or_array_layers: 1,
            },
        );
        target.holds = Some((frame, region));
        Ok(Some(self.submit(encoder, Vec::new())))
    }
}
