//! Step 1 of the import ladder: each plane of a dma-buf becomes a VkImage
//! with the client's modifier and its explicit layout (offset, row pitch),
//! bound to the imported memory and sampled by the shader like any texture.
//! Unlike step 2 the texture unit does the addressing, so the tiled layouts
//! the driver knows are read in place too. The same import, made for writing,
//! turns a display's scanout buffer into a render target (`ImageRole`).

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};

use anyhow::{anyhow, bail, Context};
use ash::vk;
use wgpu::hal::api::Vulkan;

use super::VulkanImporter;

/// The texel formats planes are sampled as (`dmabuf::formats`), as Vulkan names them.
/// Each Vulkan format has the same bytes in memory as the wgpu one.
pub fn vk_format(format: wgpu::TextureFormat) -> Option<vk::Format> {
    Some(match format {
        wgpu::TextureFormat::R8Unorm => vk::Format::R8_UNORM,
        wgpu::TextureFormat::Rg8Unorm => vk::Format::R8G8_UNORM,
        wgpu::TextureFormat::Rgba8Unorm => vk::Format::R8G8B8A8_UNORM,
        wgpu::TextureFormat::Bgra8Unorm => vk::Format::B8G8R8A8_UNORM,
        wgpu::TextureFormat::Rgb10a2Unorm => vk::Format::A2B10G10R10_UNORM_PACK32,
        wgpu::TextureFormat::Rgba16Float => vk::Format::R16G16B16A16_SFLOAT,
        _ => return None,
    })
}

/// What an imported dma-buf image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRole {
    /// A plane of a client's buffer, sampled by the shader.
    Sampled,
    /// A buffer the display scans out, which composed frames are written into.
    RenderTarget,
}

impl ImageRole {
    fn vk_usage(self) -> vk::ImageUsageFlags {
        match self {
            Self::Sampled => vk::ImageUsageFlags::SAMPLED,
            Self::RenderTarget => {
                vk::ImageUsageFlags::COLOR_ATTACHMENT
                    | vk::ImageUsageFlags::TRANSFER_DST
                    | vk::ImageUsageFlags::TRANSFER_SRC
            }
        }
    }

    fn features(self) -> vk::FormatFeatureFlags {
        match self {
            Self::Sampled => vk::FormatFeatureFlags::SAMPLED_IMAGE,
            Self::RenderTarget => {
                vk::FormatFeatureFlags::COLOR_ATTACHMENT
                    | vk::FormatFeatureFlags::TRANSFER_DST
                    | vk::FormatFeatureFlags::TRANSFER_SRC
            }
        }
    }

    fn wgpu_usage(self) -> (wgpu::TextureUses, wgpu::TextureUsages) {
        match self {
            Self::Sampled => (wgpu::TextureUses::RESOURCE, wgpu::TextureUsages::TEXTURE_BINDING),
            Self::RenderTarget => (
                wgpu::TextureUses::COLOR_TARGET | wgpu::TextureUses::COPY_DST | wgpu::TextureUses::COPY_SRC,
                wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC,
            ),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Sampled => "imported dma-buf plane",
            Self::RenderTarget => "scanout buffer",
        }
    }
}

/// The modifiers the device can import a dma-buf with for `role`, per texel format of
/// `formats`. Only single-memory-plane modifiers: one image per plane, one fd range each.
pub fn importable_modifiers(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    role: ImageRole,
    formats: &[wgpu::TextureFormat],
) -> HashMap<wgpu::TextureFormat, Vec<u64>> {
    formats
        .iter()
        .filter_map(|&format| {
            let vk = vk_format(format)?;
            let modifiers: Vec<u64> = format_modifiers(instance, physical, vk)
                .into_iter()
                .filter(|m| {
                    m.drm_format_modifier_plane_count == 1
                        && m.drm_format_modifier_tiling_features.contains(role.features())
                        && importable(instance, physical, vk, m.drm_format_modifier, role)
                })
                .map(|m| m.drm_format_modifier)
                .collect();
            (!modifiers.is_empty()).then_some((format, modifiers))
        })
        .collect()
}

/// Every modifier the driver lists for `format`.
fn format_modifiers(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    format: vk::Format,
) -> Vec<vk::DrmFormatModifierPropertiesEXT> {
    // Two calls: the count, then the list.
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default();
    let mut properties = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: a query on the physical device of a live instance; the extension is enabled.
    unsafe { instance.get_physical_device_format_properties2(physical, format, &mut properties) };
    let mut modifiers = vec![vk::DrmFormatModifierPropertiesEXT::default(); list.drm_format_modifier_count as usize];
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default().drm_format_modifier_properties(&mut modifiers);
    let mut properties = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: as above, with room for every entry.
    unsafe { instance.get_physical_device_format_properties2(physical, format, &mut properties) };
    let count = list.drm_format_modifier_count as usize;
    modifiers.truncate(count);
    modifiers
}

/// Whether a 2D image of `format` and `modifier`, used for `role`, can be bound to imported
/// dma-buf memory.
fn importable(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    format: vk::Format,
    modifier: u64,
    role: ImageRole,
) -> bool {
    let mut modifier_info = vk::PhysicalDeviceImageDrmFormatModifierInfoEXT::default()
        .drm_format_modifier(modifier)
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let mut external_info = vk::PhysicalDeviceExternalImageFormatInfo::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
        .usage(role.vk_usage())
        .push_next(&mut modifier_info)
        .push_next(&mut external_info);
    let mut external = vk::ExternalImageFormatProperties::default();
    let mut properties = vk::ImageFormatProperties2::default().push_next(&mut external);
    // SAFETY: a query on the physical device of a live instance; the extensions are enabled.
    let supported =
        unsafe { instance.get_physical_device_image_format_properties2(physical, &info, &mut properties) }.is_ok();
    supported
        && external
            .external_memory_properties
            .external_memory_features
            .contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE)
}

/// One plane of a dma-buf, as an image: its texel format and size, where it starts in
/// the fd and how far apart its rows are, and the buffer's modifier.
#[derive(Debug, Clone, Copy)]
pub struct ImagePlane {
    pub format: wgpu::TextureFormat,
    pub width: u32,
    pub height: u32,
    pub offset: u32,
    pub stride: u32,
    pub modifier: u64,
}

impl VulkanImporter {
    /// Whether step 1 can take a plane of `format` laid out by `modifier`.
    pub fn samples_modifier(&self, format: wgpu::TextureFormat, modifier: u64) -> bool {
        self.modifiers.get(&format).is_some_and(|m| m.contains(&modifier))
    }

    /// Whether a buffer of `format` laid out by `modifier` can be imported as a render target.
    pub fn renders_into_modifier(&self, format: wgpu::TextureFormat, modifier: u64) -> bool {
        self.render_target_modifiers.get(&format).is_some_and(|m| m.contains(&modifier))
    }

    /// The modifiers a buffer of `format` may be laid out by to be imported as a render target.
    pub fn render_target_modifiers(&self, format: wgpu::TextureFormat) -> Vec<u64> {
        self.render_target_modifiers.get(&format).cloned().unwrap_or_default()
    }

    /// Imports one plane of the dma-buf `fd` as a texture that aliases its memory: sampled,
    /// or written as a render target (`role`).
    pub fn import_dmabuf_image(
        &self,
        wgpu_device: &wgpu::Device,
        fd: BorrowedFd<'_>,
        plane: ImagePlane,
        role: ImageRole,
    ) -> anyhow::Result<wgpu::Texture> {
        let supported = match role {
            ImageRole::Sampled => self.samples_modifier(plane.format, plane.modifier),
            ImageRole::RenderTarget => self.renders_into_modifier(plane.format, plane.modifier),
        };
        if !self.dmabuf_buffers || !supported {
            bail!("the device cannot import {:?} with modifier 0x{:016x} for {role:?}", plane.format, plane.modifier);
        }
        let format = vk_format(plane.format).context("no Vulkan format")?;
        let (fd, fd_types) = self.dup_dmabuf(fd)?;

        let layouts = [vk::SubresourceLayout {
            offset: plane.offset.into(),
            // Must be 0 for explicit modifier layouts: the driver works it out.
            size: 0,
            row_pitch: plane.stride.into(),
            array_pitch: 0,
            depth_pitch: 0,
        }];
        let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default()
            .drm_format_modifier(plane.modifier)
            .plane_layouts(&layouts);
        let mut external =
            vk::ExternalMemoryImageCreateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
        let info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(format)
            .extent(vk::Extent3D { width: plane.width, height: plane.height, depth: 1 })
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .tiling(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
            .usage(role.vk_usage())
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED)
            .push_next(&mut explicit)
            .push_next(&mut external);
        // SAFETY: valid create info; the image is destroyed below on failure or handed to wgpu.
        let image = unsafe { self.device.create_image(&info, None) }.map_err(|e| anyhow!("vkCreateImage: {e}"))?;
        match self.bind_image_to_dmabuf(image, fd, fd_types) {
            Ok(memory) => self.image_to_wgpu(wgpu_device, image, memory, plane, role),
            Err(err) => {
                // SAFETY: the image is unused and bound to nothing we keep.
                unsafe { self.device.destroy_image(image, None) };
                Err(err)
            }
        }
    }

    /// Imports `fd` as dedicated memory of `image` and binds it; on failure frees what it made.
    fn bind_image_to_dmabuf(&self, image: vk::Image, fd: OwnedFd, fd_types: u32) -> anyhow::Result<vk::DeviceMemory> {
        // SAFETY: a query on an image we just created.
        let requirements = unsafe { self.device.get_image_memory_requirements(image) };
        let index = self.memory_type(&requirements, fd_types, "the image", "the dma-buf")?;
        let dedicated = vk::MemoryDedicatedAllocateInfo::default().image(image);
        let memory = self.import_dmabuf_memory(fd, requirements.size, index, dedicated)?;
        // SAFETY: the memory was allocated for this image's requirements.
        if let Err(e) = unsafe { self.device.bind_image_memory(image, memory, 0) } {
            // SAFETY: the memory is bound to nothing.
            unsafe { self.device.free_memory(memory, None) };
            bail!("vkBindImageMemory: {e}");
        }
        Ok(memory)
    }

    /// Wraps `image`, bound to `memory`, as a wgpu texture, which then owns (and frees)
    /// both; on an error, frees them.
    fn image_to_wgpu(
        &self,
        wgpu_device: &wgpu::Device,
        image: vk::Image,
        memory: vk::DeviceMemory,
        plane: ImagePlane,
        role: ImageRole,
    ) -> anyhow::Result<wgpu::Texture> {
        let size = wgpu::Extent3d { width: plane.width, height: plane.height, depth_or_array_layers: 1 };
        let (hal_usage, usage) = role.wgpu_usage();
        let hal_desc = wgpu::hal::TextureDescriptor {
            label: Some(role.label()),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: plane.format,
            usage: hal_usage,
            memory_flags: wgpu::hal::MemoryFlags::empty(),
            view_formats: Vec::new(),
        };
        let desc = wgpu::TextureDescriptor {
            label: Some(role.label()),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: plane.format,
            usage,
            view_formats: &[],
        };
        // SAFETY: the hal device is only used within this block, while `wgpu_device` lives.
        let Some(hal_device) = (unsafe { wgpu_device.as_hal::<Vulkan>() }) else {
            // SAFETY: neither is in use or handed to anyone.
            unsafe {
                self.device.destroy_image(image, None);
                self.device.free_memory(memory, None);
            }
            bail!("not a Vulkan device");
        };
        // SAFETY: the image and its bound memory are ours; wgpu owns both from here (Dedicated
        // memory is freed with the texture). The image was created as `desc` says.
        let texture = unsafe {
            hal_device.texture_from_raw(image, &hal_desc, None, wgpu::hal::vulkan::TextureMemory::Dedicated(memory))
        };
        drop(hal_device);
        // wgpu moves the image out of UNDEFINED on its first use. The spec lets a driver drop
        // contents then; drivers do so for compression metadata, which lives in extra memory
        // planes, and only modifiers with a single memory plane are taken.
        // SAFETY: the texture was made on this device, as `desc` describes.
        Ok(unsafe { wgpu_device.create_texture_from_hal::<Vulkan>(texture, &desc, wgpu::TextureUses::UNINITIALIZED) })
    }
}
