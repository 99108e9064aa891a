//! Presents the output texture into a window (the nested backend): a GPU copy
//! of the composed frame into the window's swapchain image.

use smithay::utils::{Physical, Size};

use super::{Renderer, OUTPUT_FORMAT};

pub struct WindowSurface {
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
}

impl WindowSurface {
    pub fn new(
        surface: wgpu::Surface<'static>,
        adapter: &wgpu::Adapter,
        device: &wgpu::Device,
        size: Size<i32, Physical>,
    ) -> anyhow::Result<Self> {
        let caps = surface.get_capabilities(adapter);
        // A copy needs the same bytes per pixel and order; sRGB-ness may differ.
        let format = [OUTPUT_FORMAT, OUTPUT_FORMAT.add_srgb_suffix()]
            .into_iter()
            .find(|f| caps.formats.contains(f))
            .ok_or_else(|| anyhow::anyhow!("the window takes none of B8G8R8A8 (it offers {:?})", caps.formats))?;
        anyhow::ensure!(
            caps.usages.contains(wgpu::TextureUsages::COPY_DST),
            "the window's images cannot be copied into (usages {:?})",
            caps.usages
        );
        // The compositor paces itself; presenting must never block its event loop.
        let present_mode = [wgpu::PresentMode::Mailbox, wgpu::PresentMode::Immediate]
            .into_iter()
            .find(|m| caps.present_modes.contains(m))
            .unwrap_or(wgpu::PresentMode::Fifo);
        let alpha_mode = if caps.alpha_modes.contains(&wgpu::CompositeAlphaMode::Opaque) {
            wgpu::CompositeAlphaMode::Opaque
        } else {
            wgpu::CompositeAlphaMode::Auto
        };
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::COPY_DST,
            format,
            color_space: wgpu::SurfaceColorSpace::Auto,
            width: size.w as u32,
            height: size.h as u32,
            desired_maximum_frame_latency: 2,
            present_mode,
            alpha_mode,
            view_formats: vec![],
        };
        surface.configure(device, &config);
        tracing::info!(?format, ?present_mode, "window surface ready");
        Ok(Self { surface, config })
    }

    fn resize(&mut self, device: &wgpu::Device, size: Size<i32, Physical>) {
        self.config.width = size.w as u32;
        self.config.height = size.h as u32;
        self.surface.configure(device, &self.config);
    }
}

impl Renderer {
    /// The canvas changed size (the nested window was resized, or KMS outputs came or
    /// went): a new output texture, repainted in full, and a swapchain of the new size
    /// where there is a window.
    pub fn resize_output(&mut self, size: Size<i32, Physical>) {
        if size == self.output_size || size.w <= 0 || size.h <= 0 {
            return;
        }
        (self.output_texture, self.output_view) = super::create_output(&self.device, size);
        self.output_size = size;
        self.full_damage = true;
        self.history.forget();
        if let Some(window) = self.window.as_mut() {
            window.resize(&self.device, size);
        }
    }

    /// The output texture no longer matches the screen (a frame was shown without
    /// composition): the next composition repaints all of it.
    pub fn forget_frame(&mut self) {
        self.full_damage = true;
    }

    /// Whether the output texture lacks the frame on screen (see `forget_frame`).
    pub fn frame_forgotten(&self) -> bool {
        self.full_damage
    }

    /// Copies the last composed frame into the window and presents it. Without a
    /// window (headless) there is nothing to do.
    pub fn present(&mut self) {
        let Some(window) = self.window.as_mut() else { return };
        let frame = match window.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(frame) | wgpu::CurrentSurfaceTexture::Suboptimal(frame) => frame,
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                // The window changed under us; the next frame gets a fresh swapchain.
                window.surface.configure(&self.device, &window.config);
                return;
            }
            other => {
                tracing::debug!("window image not available this frame: {other:?}");
                return;
            }
        };
        let size = frame.texture.size();
        let copy = wgpu::Extent3d {
            width: size.width.min(self.output_size.w as u32),
            height: size.height.min(self.output_size.h as u32),
            depth_or_array_layers: 1,
        };
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("present") });
        encoder.copy_texture_to_texture(self.output_texture.as_image_copy(), frame.texture.as_image_copy(), copy);
        self.submit(encoder, Vec::new());
        self.queue.present(frame);
    }
}
