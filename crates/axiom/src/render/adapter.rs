//! Picks the GPU adapter: Vulkan first (on a machine with no GPU that is
//! Mesa's lavapipe), then OpenGL ES, and otherwise a clear message.

use crate::cli::GraphicsApi;

const NO_ADAPTER: &str = "no Vulkan or OpenGL ES adapter found. On Debian 12 install Mesa 25 from \
     bookworm-backports: `apt-get install -t bookworm-backports mesa-vulkan-drivers` (lavapipe needs no GPU)";

pub fn open(api: GraphicsApi) -> anyhow::Result<(wgpu::Adapter, wgpu::Device, wgpu::Queue)> {
    let candidates: &[wgpu::Backends] = match api {
        GraphicsApi::Auto => &[wgpu::Backends::VULKAN, wgpu::Backends::GL],
        GraphicsApi::Vulkan => &[wgpu::Backends::VULKAN],
        GraphicsApi::Gl => &[wgpu::Backends::GL],
    };
    let mut last_error = None;
    for &backends in candidates {
        match pollster::block_on(open_with(backends)) {
            Ok(opened) => return Ok(opened),
            Err(err) => {
                tracing::info!("no usable {backends:?} adapter: {err:#}");
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no backend tried")).context(NO_ADAPTER))
}

async fn open_with(backends: wgpu::Backends) -> anyhow::Result<(wgpu::Adapter, wgpu::Device, wgpu::Queue)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await?;
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("axiom"),
            required_features: wgpu::Features::empty(),
            required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
            ..Default::default()
        })
        .await?;
    Ok((adapter, device, queue))
}
