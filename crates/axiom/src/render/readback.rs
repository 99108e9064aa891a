//! Reads what a capture shows back to the CPU (`capture.rs`): for captures into
//! wl_shm, and on the DRM backend for each output's dumb buffer where the renderer
//! cannot write its scanout buffers.

use smithay::utils::{Physical, Rectangle};

use super::capture::CaptureOf;
use super::{Renderer, OUTPUT_FORMAT};

const BYTES_PER_PIXEL: u32 = 4;

pub(crate) struct ReadbackBuffer {
    buffer: wgpu::Buffer,
}

impl Renderer {
    /// Copies `region` of the last composed frame into `dst`, rows `stride` bytes
    /// apart, as XRGB8888 (the output texture's own byte order).
    pub fn read_output(
        &mut self,
        region: Rectangle<i32, Physical>,
        dst: &mut [u8],
        stride: usize,
    ) -> anyhow::Result<()> {
        self.read_capture(CaptureOf::Canvas(region), dst, stride)
    }

    /// Copies what `of` shows of the last composed frame into `dst`, rows `stride`
    /// bytes apart, as XRGB8888 or ARGB8888 (the output texture's own byte order).
    pub fn read_capture(&mut self, of: CaptureOf<'_>, dst: &mut [u8], stride: usize) -> anyhow::Result<()> {
        debug_assert_eq!(OUTPUT_FORMAT, wgpu::TextureFormat::Bgra8Unorm);
        let width = u32::try_from(of.size().w)?;
        let height = u32::try_from(of.size().h)?;
        let row_bytes = (width * BYTES_PER_PIXEL) as usize;
        anyhow::ensure!(width > 0 && height > 0, "empty region");
        anyhow::ensure!(stride >= row_bytes, "stride too small");
        anyhow::ensure!(dst.len() >= stride * (height as usize - 1) + row_bytes, "buffer too small");
        let padded = (width * BYTES_PER_PIXEL).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let size = u64::from(padded) * u64::from(height);

        if self.readback.as_ref().is_none_or(|r| r.buffer.size() < size) {
            self.readback = Some(ReadbackBuffer {
                buffer: self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("screencopy readback"),
                    size,
                    usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
                    mapped_at_creation: false,
                }),
            });
        }
        // Where the canvas is not what is shown (KMS), or a window is painted alone, it
        // is painted for this. That paint would not wait on the client fences an
        // output's paint took: wait here.
        let paints = matches!(of, CaptureOf::Window { .. }) || self.canvas_holds != Some(self.history.frame());
        if paints && self.completions.waits_on_client() {
            self.wait_for_gpu()?;
        }
        let (texture, (x, y)) = self.capture_source(of)?;
        let Some(readback) = self.readback.as_ref() else { unreachable!() };
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x, y, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &readback.buffer,
                layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(padded), rows_per_image: None },
            },
            wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        );
        let readback_buffer = readback.buffer.clone();
        self.submit(encoder, Vec::new());
        let slice = readback_buffer.slice(..size);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        // A capture waits for its bytes (and for the frames before them).
        self.wait_for_gpu()?;
        receiver.recv()??;
        {
            let mapped = slice.get_mapped_range()?;
            for (y, row) in mapped.chunks_exact(padded as usize).take(height as usize).enumerate() {
                dst[y * stride..y * stride + row_bytes].copy_from_slice(&row[..row_bytes]);
            }
        }
        readback_buffer.unmap();
        self.readback_bytes += row_bytes as u64 * u64::from(height);
        Ok(())
    }
}
