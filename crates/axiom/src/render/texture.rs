//! Surface textures: the renderer's copy of each surface's current buffer,
//! updated from the damaged rows only.

use std::sync::Mutex;

use smithay::backend::renderer::utils::{CommitCounter, RendererSurfaceState};
use smithay::backend::renderer::{buffer_type, BufferType};
use smithay::wayland::compositor::SurfaceData;
use smithay::wayland::shm::{with_buffer_contents, BufferData};
use smithay::wayland::single_pixel_buffer::get_single_pixel_buffer;

use super::formats::{shm_format, SampleMode};
use super::Renderer;

pub struct SurfaceTexture {
    pub texture: wgpu::Texture,
    pub bind_group: wgpu::BindGroup,
    pub mode: SampleMode,
    pub opaque: bool,
    /// The surface commit whose contents the texture holds.
    commit: CommitCounter,
}

/// Per-surface slot for its texture, kept in the surface's data map so that
/// it is dropped with the surface.
pub type SurfaceTextureSlot = Mutex<Option<SurfaceTexture>>;

pub fn texture_slot(states: &SurfaceData) -> &SurfaceTextureSlot {
    states.data_map.insert_if_missing_threadsafe(|| Mutex::new(None::<SurfaceTexture>));
    states.data_map.get::<SurfaceTextureSlot>().expect("inserted just above")
}

impl Renderer {
    /// Brings the surface's texture up to date with its current buffer.
    /// Returns false when there is nothing to draw.
    pub fn import_surface(&self, surface_state: &RendererSurfaceState, slot: &mut Option<SurfaceTexture>) -> bool {
        let Some(buffer) = surface_state.buffer() else {
            *slot = None;
            return false;
        };
        let commit = surface_state.current_commit();
        if slot.as_ref().is_some_and(|t| t.commit == commit) {
            return true;
        }
        let since = slot.as_ref().map(|t| t.commit);
        let imported = match buffer_type(buffer) {
            Some(BufferType::Shm) => {
                let damage = surface_state.damage_since(since);
                with_buffer_contents(buffer, |ptr, len, info| {
                    // SAFETY: smithay maps the pool for the duration of this closure and turns a
                    // SIGBUS (a client shrinking its pool) into an error instead of a crash.
                    let pool = unsafe { std::slice::from_raw_parts(ptr, len) };
                    self.upload_shm(pool, info, damage.iter().map(|r| (r.loc.y, r.size.h)), slot)
                })
                .unwrap_or_else(|err| {
                    tracing::debug!("shm buffer unreadable: {err:?}");
                    false
                })
            }
            Some(BufferType::SinglePixel) => match get_single_pixel_buffer(buffer) {
                Ok(pixel) => {
                    // The protocol gives premultiplied 32-bit channels; keep the top 8 bits.
                    let rgba = [pixel.r, pixel.g, pixel.b, pixel.a].map(|c| (c >> 24) as u8);
                    self.upload_pixel(rgba, slot);
                    true
                }
                Err(_) => false,
            },
            _ => {
                tracing::debug!("buffer type not supported yet");
                false
            }
        };
        match slot {
            Some(texture) if imported => {
                texture.commit = commit;
                true
            }
            _ => false,
        }
    }

    /// Uploads the damaged rows of an SHM buffer. `pool` is the whole pool mapping.
    fn upload_shm(
        &self,
        pool: &[u8],
        info: BufferData,
        damaged_rows: impl Iterator<Item = (i32, i32)>,
        slot: &mut Option<SurfaceTexture>,
    ) -> bool {
        let Some(format) = shm_format(info.format) else {
            tracing::debug!(format = ?info.format, "unsupported shm format");
            return false;
        };
        let (Ok(width), Ok(height), Ok(stride), Ok(offset)) = (
            u32::try_from(info.width),
            u32::try_from(info.height),
            usize::try_from(info.stride),
            usize::try_from(info.offset),
        ) else {
            return false;
        };
        let row_bytes = width as usize * format.bytes_per_pixel as usize;
        let fits = stride
            .checked_mul(height as usize - 1)
            .and_then(|n| n.checked_add(row_bytes))
            .and_then(|n| n.checked_add(offset))
            .is_some_and(|end| stride >= row_bytes && end <= pool.len());
        if !fits {
            tracing::debug!("shm buffer does not fit its pool");
            return false;
        }

        let recreate = slot.as_ref().is_none_or(|t| {
            let size = t.texture.size();
            size.width != width || size.height != height || t.texture.format() != format.texture
        });
        let rows: Vec<(u32, u32)> = if recreate {
            *slot = Some(self.create_surface_texture(width, height, format.texture, format.mode, format.opaque));
            vec![(0, height)]
        } else {
            merge_rows(damaged_rows, height)
        };
        let Some(texture) = slot.as_mut() else { return false };
        texture.mode = format.mode;
        texture.opaque = format.opaque;

        // wgpu wants bytes_per_row to be a whole number of texels; otherwise upload row by row.
        let per_row = stride % format.bytes_per_pixel as usize != 0;
        for (y0, count) in rows {
            let chunks: Vec<(u32, u32)> = if per_row { (y0..y0 + count).map(|y| (y, 1)).collect() } else { vec![(y0, count)] };
            for (y, n) in chunks {
                let start = offset + y as usize * stride;
                let end = start + (n as usize - 1) * stride + row_bytes;
                self.queue.write_texture(
                    wgpu::TexelCopyTextureInfo {
                        texture: &texture.texture,
                        mip_level: 0,
                        origin: wgpu::Origin3d { x: 0, y, z: 0 },
                        aspect: wgpu::TextureAspect::All,
                    },
                    &pool[start..end],
                    wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(stride as u32), rows_per_image: None },
                    wgpu::Extent3d { width, height: n, depth_or_array_layers: 1 },
                );
            }
        }
        true
    }

    fn upload_pixel(&self, rgba: [u8; 4], slot: &mut Option<SurfaceTexture>) {
        let texture = self.create_surface_texture(1, 1, wgpu::TextureFormat::Rgba8Unorm, SampleMode::Direct, false);
        self.queue.write_texture(
            texture.texture.as_image_copy(),
            &rgba,
            wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(4), rows_per_image: None },
            wgpu::Extent3d { width: 1, height: 1, depth_or_array_layers: 1 },
        );
        *slot = Some(texture);
    }

    fn create_surface_texture(
        &self,
        width: u32,
        height: u32,
        format: wgpu::TextureFormat,
        mode: SampleMode,
        opaque: bool,
    ) -> SurfaceTexture {
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("surface"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&Default::default());
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("surface"),
            layout: &self.texture_layout,
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&view) }],
        });
        SurfaceTexture { texture, bind_group, mode, opaque, commit: CommitCounter::default() }
    }
}

/// Turns damage rectangles (y, height) into sorted, merged row ranges (start, count)
/// clamped to the buffer.
pub fn merge_rows(damage: impl Iterator<Item = (i32, i32)>, height: u32) -> Vec<(u32, u32)> {
    let mut spans: Vec<(u32, u32)> = damage
        .filter_map(|(y, h)| {
            let start = y.max(0) as i64;
            let end = (y as i64 + h.max(0) as i64).min(height as i64);
            (end > start).then_some((start as u32, end as u32))
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged.into_iter().map(|(s, e)| (s, e - s)).collect()
}

#[cfg(test)]
mod tests {
    use super::merge_rows;

    #[test]
    fn damage_rows_merge_and_clamp() {
        let rows = merge_rows([(10, 5), (0, 2), (12, 10), (-5, 3), (90, 100)].into_iter(), 100);
        assert_eq!(rows, vec![(0, 2), (10, 12), (90, 10)]);
        assert!(merge_rows([(200, 5), (3, 0), (i32::MAX, i32::MAX)].into_iter(), 100).is_empty());
    }
}
