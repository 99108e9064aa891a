//! Ladder step 2 for 4:2:0 formats with 8-bit planes (NV12, YUV420): each new commit's
//! planes are copied on the GPU from the imported buffer into textures, which the
//! shader samples and gathers (`fs_yuv_sampled`), instead of decoding the buffer's
//! bytes for every pixel, which costs a software rasteriser about twice the frame.
//! The copies go first in the next submission (`Renderer::submit`), which waits on
//! the client's fences and keeps its buffer until done.

use super::formats::SampleMode;
use super::texture::BufferPlanes;
use super::Renderer;

#[derive(Default)]
pub(super) struct PlaneCopies {
    /// The copies recorded since the last submission.
    encoder: Option<wgpu::CommandEncoder>,
    /// Commits whose planes were copied, for the counters.
    pub count: u64,
}

impl PlaneCopies {
    /// The copies recorded since the last call, to submit before anything else.
    pub(super) fn take(&mut self) -> Option<wgpu::CommandBuffer> {
        self.encoder.take().map(wgpu::CommandEncoder::finish)
    }
}

impl Renderer {
    /// `source`'s planes, read from `buffer`, copied into textures (`reuse`'s where they
    /// are ours and fit); None where it is no 4:2:0 format with 8-bit planes, or a plane
    /// does not lie in the buffer or its rows do not start at whole texels.
    pub(super) fn copy_planes(
        &self,
        buffer: &wgpu::Buffer,
        source: &BufferPlanes,
        reuse: &[wgpu::Texture],
    ) -> Option<Vec<wgpu::Texture>> {
        use wgpu::TextureFormat::{R8Unorm, Rg8Unorm};
        let (w, h) = source.size;
        let half = (w.div_ceil(2), h.div_ceil(2));
        let planes: &[(wgpu::TextureFormat, (u32, u32), u32)] = match source.mode {
            SampleMode::Nv12 => &[(R8Unorm, (w, h), 1), (Rg8Unorm, half, 2)],
            SampleMode::Yuv420 => &[(R8Unorm, (w, h), 1), (R8Unorm, half, 1), (R8Unorm, half, 1)],
            _ => return None,
        };
        let [offsets, strides, _] = source.planes;
        // A copy starts each row at a whole texel: offset and stride whole texels too.
        let inside = planes.iter().enumerate().all(|(i, &(_, (pw, ph), bytes))| {
            let last_row = u64::from(strides[i]) * u64::from(ph.saturating_sub(1));
            let end = u64::from(offsets[i]) + last_row + u64::from(pw) * u64::from(bytes);
            offsets[i] % bytes == 0 && strides[i] % bytes == 0 && end <= buffer.size()
        });
        if !inside {
            return None;
        }
        let fits = reuse.len() == planes.len()
            && reuse.iter().zip(planes).all(|(t, &(format, (pw, ph), _))| {
                let ours = t.usage().contains(wgpu::TextureUsages::COPY_DST);
                ours && t.format() == format && (t.width(), t.height()) == (pw, ph)
            });
        let textures: Vec<wgpu::Texture> = match fits {
            true => reuse.to_vec(),
            false => planes.iter().map(|&(format, (pw, ph), _)| self.plane_texture(format, pw, ph)).collect(),
        };
        let mut copies = self.plane_copies.lock().unwrap_or_else(|e| e.into_inner());
        copies.count += 1;
        let encoder = copies.encoder.get_or_insert_with(|| {
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("plane copies") })
        });
        for (i, texture) in textures.iter().enumerate() {
            copy_plane(encoder, buffer, (offsets[i], strides[i]), texture);
        }
        Some(textures)
    }

    fn plane_texture(&self, format: wgpu::TextureFormat, width: u32, height: u32) -> wgpu::Texture {
        self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("copied plane"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        })
    }
}

/// Copies the plane at `offset` with rows `stride` bytes apart into `texture`: in one
/// copy where the stride is a multiple of 256 bytes (what a buffer-to-texture copy
/// takes), else a copy per row.
fn copy_plane(
    encoder: &mut wgpu::CommandEncoder,
    buffer: &wgpu::Buffer,
    (offset, stride): (u32, u32),
    texture: &wgpu::Texture,
) {
    let whole = stride % wgpu::COPY_BYTES_PER_ROW_ALIGNMENT == 0;
    let rows: Vec<(u32, u32)> =
        if whole { vec![(0, texture.height())] } else { (0..texture.height()).map(|r| (r, 1)).collect() };
    for (first, count) in rows {
        encoder.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: u64::from(offset) + u64::from(first) * u64::from(stride),
                    bytes_per_row: Some(stride).filter(|_| whole),
                    rows_per_image: None,
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: 0, y: first, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d { width: texture.width(), height: count, depth_or_array_layers: 1 },
        );
    }
}
