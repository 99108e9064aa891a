//! Picks the GPU adapter: Vulkan first (on a machine with no GPU that is
//! Mesa's lavapipe), then OpenGL ES, and otherwise a clear message. On a
//! display (drm backend) the GPU that drives it comes first.

use crate::cli::GraphicsApi;

const NO_ADAPTER: &str = "no Vulkan or OpenGL ES adapter found. On Debian 12 install Mesa 25 from \
     bookworm-backports: `apt-get install -t bookworm-backports mesa-vulkan-drivers` (lavapipe needs no GPU)";

/// A window to present into (the nested backend): the adapter must be able to.
pub struct WindowTarget {
    pub display: std::sync::Arc<dyn wgpu::wgt::WgpuHasDisplayHandle>,
    pub window: std::sync::Arc<dyn wgpu::WindowHandle>,
}

/// An adapter with its device, and the Vulkan device extensions the import ladder enabled.
pub struct Opened {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub vulkan_extensions: Vec<&'static std::ffi::CStr>,
    /// The window's surface, when opened for one.
    pub surface: Option<wgpu::Surface<'static>>,
}

/// `display_gpu`: the PCI bus id ("0000:03:00.0") of the GPU whose display the frames go to;
/// an adapter on it is preferred, so that frames need not cross devices.
pub fn open(api: GraphicsApi, window: Option<&WindowTarget>, display_gpu: Option<&str>) -> anyhow::Result<Opened> {
    let candidates: &[wgpu::Backends] = match api {
        GraphicsApi::Auto => &[wgpu::Backends::VULKAN, wgpu::Backends::GL],
        GraphicsApi::Vulkan => &[wgpu::Backends::VULKAN],
        GraphicsApi::Gl => &[wgpu::Backends::GL],
    };
    let mut last_error = None;
    for &backends in candidates {
        match pollster::block_on(open_with(backends, window, display_gpu)) {
            Ok(opened) => return Ok(opened),
            Err(err) => {
                tracing::info!("no usable {backends:?} adapter: {err:#}");
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no backend tried")).context(NO_ADAPTER))
}

async fn open_with(
    backends: wgpu::Backends,
    window: Option<&WindowTarget>,
    display_gpu: Option<&str>,
) -> anyhow::Result<Opened> {
    let mut descriptor =
        wgpu::InstanceDescriptor { backends, ..wgpu::InstanceDescriptor::new_without_display_handle() };
    let Some(target) = window else {
        return finish_open(wgpu::Instance::new(descriptor), backends, None, display_gpu).await;
    };
    // GL needs the window system's display at instance creation; Vulkan ignores it.
    descriptor.display = Some(Box::new(target.display.clone()));
    let instance = wgpu::Instance::new(descriptor);
    let surface = instance
        .create_surface(wgpu::SurfaceTarget::Window(Box::new(target.window.clone())))
        .map_err(|err| anyhow::anyhow!("cannot create a {backends:?} surface for the window: {err}"))?;
    finish_open(instance, backends, Some(surface), None).await
}

async fn finish_open(
    instance: wgpu::Instance,
    backends: wgpu::Backends,
    surface: Option<wgpu::Surface<'static>>,
    display_gpu: Option<&str>,
) -> anyhow::Result<Opened> {
    let on_display = match display_gpu {
        Some(bus) => {
            let adapters = instance.enumerate_adapters(backends).await;
            let found = adapter_on(&adapters, bus);
            match found {
                Some(_) => tracing::info!("renderer: on the display's GPU ({bus})"),
                None => tracing::info!(
                    "renderer: no {backends:?} adapter on the display's GPU ({bus}); frames are rendered elsewhere and copied to it"
                ),
            }
            found.map(|index| adapters[index].clone())
        }
        None => None,
    };
    let adapter = match on_display {
        Some(adapter) => adapter,
        None => {
            instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    compatible_surface: surface.as_ref(),
                    ..Default::default()
                })
                .await?
        }
    };
    let desc = wgpu::DeviceDescriptor {
        label: Some("axiom"),
        required_features: wgpu::Features::empty(),
        required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
        ..Default::default()
    };
    // With the Vulkan ladder, open wgpu's device ourselves so that the import extensions
    // are enabled on the very device the renderer uses.
    #[cfg(feature = "dmabuf-vulkan")]
    if adapter.get_info().backend == wgpu::Backend::Vulkan {
        let (device, queue, vulkan_extensions) = super::vulkan::open_device(&adapter, &desc)?;
        return Ok(Opened { adapter, device, queue, vulkan_extensions, surface });
    }
    let (device, queue) = adapter.request_device(&desc).await?;
    Ok(Opened { adapter, device, queue, vulkan_extensions: Vec::new(), surface })
}

/// The adapter on the PCI device `bus`, if any.
fn adapter_on(adapters: &[wgpu::Adapter], bus: &str) -> Option<usize> {
    let ids: Vec<String> = adapters.iter().map(|a| a.get_info().device_pci_bus_id).collect();
    same_bus(&ids, bus)
}

/// The index of `bus` among adapters' PCI bus ids (as wgpu spells them: lowercase hex,
/// "dddd:bb:dd.f"; empty where the driver does not say).
fn same_bus(ids: &[String], bus: &str) -> Option<usize> {
    ids.iter().position(|id| !id.is_empty() && id.eq_ignore_ascii_case(bus))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_adapter_on_the_display_bus_is_found() {
        let ids = ["".to_string(), "0000:01:00.0".to_string(), "0000:03:00.0".to_string()];
        assert_eq!(super::same_bus(&ids, "0000:03:00.0"), Some(2));
        assert_eq!(super::same_bus(&ids, "0000:0A:00.0"), None);
        assert_eq!(super::same_bus(&ids, ""), None, "an adapter that names no bus is not a match");
    }
}
