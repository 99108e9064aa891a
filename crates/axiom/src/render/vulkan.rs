//! The Vulkan steps of the import ladder (`dmabuf-vulkan` feature), on wgpu's
//! own VkDevice so that the renderer samples imported memory itself.
//!
//! Step 1 (`image`) imports each plane as a VkImage by its DRM modifier.
//! Step 2 of the ladder lives here: a DMA-BUF fd is imported as the memory of
//! a VkBuffer (VK_EXT_external_memory_dma_buf), wrapped as a wgpu storage
//! buffer, and read by the fragment shader with the client's own offsets and
//! strides. No CPU byte is touched and no copy is made: the memory aliases
//! the client's buffer. Step 3 does the same for wl_shm: the pool's mapping is
//! imported as a host pointer (VK_EXT_external_memory_host). Implicit sync on
//! the GPU (`fence_wait`): a dma-buf's pending writes become a semaphore the
//! frame waits on.

mod fence_wait;
mod image;

pub use image::{ImagePlane, ImageRole};

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use anyhow::{anyhow, bail, Context};
use ash::vk;
use wgpu::hal::api::Vulkan;

use crate::dmabuf::params::MODIFIER_LINEAR;

/// Device extensions the ladder uses, enabled on wgpu's device where present.
const WANTED_EXTENSIONS: [&CStr; 6] = [
    ash::khr::external_memory_fd::NAME,
    ash::ext::external_memory_dma_buf::NAME,
    ash::ext::image_drm_format_modifier::NAME,
    ash::ext::external_memory_host::NAME,
    ash::ext::queue_family_foreign::NAME,
    ash::khr::external_semaphore_fd::NAME,
];

/// Opens wgpu's device on `adapter` with every wanted extension the driver has.
pub fn open_device(
    adapter: &wgpu::Adapter,
    desc: &wgpu::DeviceDescriptor<'_>,
) -> anyhow::Result<(wgpu::Device, wgpu::Queue, Vec<&'static CStr>)> {
    let open = {
        // SAFETY: the hal adapter is only used within this block, while `adapter` lives.
        let hal_adapter = unsafe { adapter.as_hal::<Vulkan>() }.context("not a Vulkan adapter")?;
        let capabilities = hal_adapter.physical_device_capabilities();
        let present: Vec<&'static CStr> =
            WANTED_EXTENSIONS.into_iter().filter(|e| capabilities.supports_extension(e)).collect();
        let enabled = present.clone();
        let callback: Box<wgpu::hal::vulkan::CreateDeviceCallback<'_>> = Box::new(move |args| {
            for extension in &enabled {
                if !args.extensions.contains(extension) {
                    args.extensions.push(extension);
                }
            }
        });
        // SAFETY: we only add extensions the physical device reports, and no features.
        let open = unsafe {
            hal_adapter.open_with_callback(
                desc.required_features,
                &desc.required_limits,
                &desc.memory_hints,
                Some(callback),
            )
        }
        .map_err(|e| anyhow!("opening the Vulkan device: {e}"))?;
        (open, present)
    };
    let (open, present) = open;
    // SAFETY: `open` was created from this adapter with desc's features and limits.
    let (device, queue) = unsafe { adapter.create_device_from_hal(open, desc) }?;
    Ok((device, queue, present))
}

/// Imports client memory into wgpu's device: dma-bufs (steps 1 and 2), wl_shm
/// mappings (step 3), and dma-buf fences as semaphores.
pub struct VulkanImporter {
    device: ash::Device,
    external_fd: ash::khr::external_memory_fd::Device,
    external_host: ash::ext::external_memory_host::Device,
    /// minImportedHostPointerAlignment: host imports start and end on it.
    pub host_alignment: u64,
    memory_types: Vec<vk::MemoryType>,
    /// Step 2 is live: the device imports dma-buf fds.
    pub dmabuf_buffers: bool,
    /// Step 1: the modifiers each plane texel format can be imported and sampled with
    /// (empty without VK_EXT_image_drm_format_modifier or dma-buf import).
    modifiers: HashMap<wgpu::TextureFormat, Vec<u64>>,
    /// The modifiers a scanout buffer of the output format can be imported with as a
    /// render target (empty where none).
    render_target_modifiers: HashMap<wgpu::TextureFormat, Vec<u64>>,
    /// Step 3 is live: the device imports host pointers (wl_shm mappings).
    pub host_pointers: bool,
    /// The device imports sync files as semaphores (frames wait for writers on the
    /// GPU), or why not.
    fence_waits: Result<fence_wait::FenceWaits, String>,
}

impl VulkanImporter {
    /// None if `device` is not a Vulkan device opened by `open_device`.
    pub fn new(device: &wgpu::Device, enabled: &[&'static CStr]) -> Option<Self> {
        // SAFETY: the raw handles are cloned (ash tables of function pointers) and used only
        // while wgpu's device lives: the importer is dropped with the renderer.
        let hal_device = unsafe { device.as_hal::<Vulkan>() }?;
        let raw = hal_device.raw_device().clone();
        let instance = hal_device.shared_instance().raw_instance();
        let physical = hal_device.raw_physical_device();
        let has = |e: &CStr| enabled.contains(&e);
        let external_fd = ash::khr::external_memory_fd::Device::new(instance, &raw);
        // SAFETY: a query on the physical device of a live instance.
        let properties = unsafe { instance.get_physical_device_memory_properties(physical) };
        let memory_types = properties.memory_types_as_slice().to_vec();
        let mut host_properties = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
        let host_pointers = has(ash::ext::external_memory_host::NAME);
        if host_pointers {
            let mut properties2 = vk::PhysicalDeviceProperties2::default().push_next(&mut host_properties);
            // SAFETY: a query on the physical device of a live instance; the extension is present.
            unsafe { instance.get_physical_device_properties2(physical, &mut properties2) };
        }
        let external_host = ash::ext::external_memory_host::Device::new(instance, &raw);
        let dmabuf_buffers = has(ash::khr::external_memory_fd::NAME) && has(ash::ext::external_memory_dma_buf::NAME);
        let by_modifier = dmabuf_buffers && has(ash::ext::image_drm_format_modifier::NAME);
        let importable = |role, formats: &[wgpu::TextureFormat]| match by_modifier {
            true => image::importable_modifiers(instance, physical, role, formats),
            false => HashMap::new(),
        };
        use wgpu::TextureFormat as T;
        let plane_formats = [T::R8Unorm, T::Rg8Unorm, T::Rgba8Unorm, T::Bgra8Unorm, T::Rgb10a2Unorm, T::Rgba16Float];
        let modifiers = importable(ImageRole::Sampled, &plane_formats);
        let render_target_modifiers = importable(ImageRole::RenderTarget, &[crate::render::OUTPUT_FORMAT]);
        let fence_waits = fence_wait::FenceWaits::new(
            instance,
            hal_device.shared_instance().instance_api_version(),
            physical,
            &raw,
            has(ash::khr::external_semaphore_fd::NAME),
        );
        Some(Self {
            device: raw,
            external_fd,
            external_host,
            host_alignment: host_properties.min_imported_host_pointer_alignment.max(1),
            memory_types,
            dmabuf_buffers,
            modifiers,
            render_target_modifiers,
            host_pointers,
            fence_waits,
        })
    }

    /// Frames can wait for a dma-buf's writers on the GPU (`wait_on_gpu`).
    pub fn waits_on_gpu(&self) -> bool {
        self.fence_waits.is_ok()
    }

    /// Makes the next submission on `queue` wait until `sync_file` signals.
    pub fn wait_on_gpu(&self, queue: &wgpu::Queue, sync_file: &OwnedFd) -> anyhow::Result<()> {
        let waits = self.fence_waits.as_ref().map_err(|why| anyhow!("no GPU waits: {why}"))?;
        waits.wait_before_next_submission(&self.device, queue, sync_file)
    }

    /// The next submission waits on a client's fence.
    pub fn gpu_waits_handed(&self) -> bool {
        self.fence_waits.as_ref().is_ok_and(|waits| waits.any_handed())
    }

    /// The submission `id` was made: it waits on the semaphores handed out so far.
    pub fn gpu_waits_submitted(&self, id: u64) {
        if let Ok(waits) = &self.fence_waits {
            waits.submitted(id);
        }
    }

    /// Submissions up to `id` have finished: the semaphores they waited on go.
    pub fn retire_gpu_waits_through(&self, id: u64) {
        if let Ok(waits) = &self.fence_waits {
            waits.retire_through(&self.device, id);
        }
    }

    /// Imports the first `size` bytes of the dma-buf `fd` as a storage buffer
    /// (`size` is rounded down to whole 32-bit words).
    pub fn import_dmabuf(
        &self,
        wgpu_device: &wgpu::Device,
        fd: BorrowedFd<'_>,
        size: u64,
    ) -> anyhow::Result<wgpu::Buffer> {
        self.import_dmabuf_as(wgpu_device, fd, size, BufferRole::Read)
    }

    /// As `import_dmabuf`, as a buffer the GPU copies into (a capture client's dma-buf).
    pub fn import_dmabuf_for_writing(
        &self,
        wgpu_device: &wgpu::Device,
        fd: BorrowedFd<'_>,
        size: u64,
    ) -> anyhow::Result<wgpu::Buffer> {
        self.import_dmabuf_as(wgpu_device, fd, size, BufferRole::CopyDestination)
    }

    fn import_dmabuf_as(
        &self,
        wgpu_device: &wgpu::Device,
        fd: BorrowedFd<'_>,
        size: u64,
        role: BufferRole,
    ) -> anyhow::Result<wgpu::Buffer> {
        if !self.dmabuf_buffers {
            bail!("the device cannot import dma-bufs");
        }
        let size = size & !3;
        if size == 0 {
            bail!("empty buffer");
        }
        let (fd, fd_types) = self.dup_dmabuf(fd)?;
        let buffer = self.create_external_buffer(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT, size, role)?;
        let bound = self.bind_imported_memory(buffer, fd, fd_types, size);
        self.hand_to_wgpu(wgpu_device, buffer, bound, size, role, "imported dma-buf")
    }

    /// Imports `len` bytes of this process's memory at `ptr` as a storage buffer the
    /// shader reads in place. Both must be multiples of `host_alignment`.
    ///
    /// # Safety
    /// The range must stay mapped, and its file must not shrink under it, for as long
    /// as the returned buffer is used by the GPU.
    pub unsafe fn import_host(
        &self,
        wgpu_device: &wgpu::Device,
        ptr: *const u8,
        len: u64,
    ) -> anyhow::Result<wgpu::Buffer> {
        if !self.host_pointers {
            bail!("the device cannot import host pointers");
        }
        if len == 0 || !(ptr as u64).is_multiple_of(self.host_alignment) || !len.is_multiple_of(self.host_alignment) {
            bail!("host range {ptr:p}+{len} is not aligned to {}", self.host_alignment);
        }
        let handle_type = vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT;
        let mut host_properties = vk::MemoryHostPointerPropertiesEXT::default();
        // SAFETY: a query on a mapped range of our address space.
        let queried = unsafe {
            (self.external_host.fp().get_memory_host_pointer_properties_ext)(
                self.device.handle(),
                handle_type,
                ptr.cast(),
                &mut host_properties,
            )
        };
        if queried != vk::Result::SUCCESS {
            bail!("vkGetMemoryHostPointerPropertiesEXT: {queried}");
        }
        let buffer = self.create_external_buffer(handle_type, len, BufferRole::Read)?;
        let bound = self.bind_host_memory(buffer, ptr, len, host_properties.memory_type_bits);
        self.hand_to_wgpu(wgpu_device, buffer, bound, len, BufferRole::Read, "imported shm")
    }

    /// Wraps `buffer`, bound to `memory`, as a wgpu buffer of `size` bytes for `role`,
    /// which then owns (and frees) both; on a binding error, destroys the buffer.
    fn hand_to_wgpu(
        &self,
        wgpu_device: &wgpu::Device,
        buffer: vk::Buffer,
        memory: anyhow::Result<vk::DeviceMemory>,
        size: u64,
        role: BufferRole,
        label: &'static str,
    ) -> anyhow::Result<wgpu::Buffer> {
        match memory {
            Ok(memory) => {
                // SAFETY: buffer and memory are ours, bound, and handed to wgpu, which frees both.
                let hal_buffer = unsafe { wgpu::hal::vulkan::Buffer::from_raw_managed(buffer, memory, 0, size) };
                let desc = wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage: role.wgpu_usage(),
                    mapped_at_creation: false,
                };
                // SAFETY: the hal buffer was created on this device with `role`'s usage and `size` bytes.
                Ok(unsafe { wgpu_device.create_buffer_from_hal::<Vulkan>(hal_buffer, &desc) })
            }
            Err(err) => {
                // SAFETY: the buffer is unused and not handed to anyone.
                unsafe { self.device.destroy_buffer(buffer, None) };
                Err(err)
            }
        }
    }

    fn bind_imported_memory(
        &self,
        buffer: vk::Buffer,
        fd: OwnedFd,
        fd_types: u32,
        size: u64,
    ) -> anyhow::Result<vk::DeviceMemory> {
        let (index, requirements) = self.memory_type_for(buffer, fd_types, "the dma-buf")?;
        if requirements.size > size.next_multiple_of(requirements.alignment.max(1)) {
            bail!("the buffer needs {} bytes, the dma-buf has {size}", requirements.size);
        }
        let dedicated = vk::MemoryDedicatedAllocateInfo::default().buffer(buffer);
        let memory = self.import_dmabuf_memory(fd, requirements.size, index, dedicated)?;
        self.bind(buffer, memory)
    }

    /// Imports the dma-buf `fd` as `size` bytes of memory of type `index`, dedicated to
    /// one buffer or image.
    fn import_dmabuf_memory(
        &self,
        fd: OwnedFd,
        size: u64,
        index: u32,
        mut dedicated: vk::MemoryDedicatedAllocateInfo<'_>,
    ) -> anyhow::Result<vk::DeviceMemory> {
        let available = crate::dmabuf::fd_size(fd.as_fd()).unwrap_or(0);
        if size > available {
            bail!("the import needs {size} bytes, the dma-buf has {available}");
        }
        let identity = crate::dmabuf::file_identity(fd.as_fd());
        let raw_fd = fd.into_raw_fd();
        let mut import =
            vk::ImportMemoryFdInfoKHR::default().handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT).fd(raw_fd);
        let allocate = vk::MemoryAllocateInfo::default()
            .allocation_size(size)
            .memory_type_index(index)
            .push_next(&mut import)
            .push_next(&mut dedicated);
        // SAFETY: on success Vulkan owns raw_fd; on failure see below.
        match unsafe { self.device.allocate_memory(&allocate, None) } {
            Ok(memory) => Ok(memory),
            Err(e) => {
                // The spec gives the fd back on failure, but some drivers (lavapipe) close
                // it anyway: close it only if that number still names the same file.
                // SAFETY: only a query; the number is not kept.
                let same = crate::dmabuf::file_identity(unsafe { BorrowedFd::borrow_raw(raw_fd) });
                if same.is_some() && same == identity {
                    // SAFETY: the fd is still open, ours, and owned by no one else.
                    drop(unsafe { OwnedFd::from_raw_fd(raw_fd) });
                }
                bail!("vkAllocateMemory (dma-buf import): {e}");
            }
        }
    }

    /// Allocates device memory over `len` bytes of our address space at `ptr` (host types
    /// `host_types`) and binds it to `buffer`.
    fn bind_host_memory(
        &self,
        buffer: vk::Buffer,
        ptr: *const u8,
        len: u64,
        host_types: u32,
    ) -> anyhow::Result<vk::DeviceMemory> {
        let (index, requirements) = self.memory_type_for(buffer, host_types, "host memory")?;
        if requirements.size > len {
            bail!("the buffer needs {} bytes, the host range has {len}", requirements.size);
        }
        let mut import = vk::ImportMemoryHostPointerInfoEXT::default()
            .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT)
            .host_pointer(ptr as *mut _);
        let allocate =
            vk::MemoryAllocateInfo::default().allocation_size(len).memory_type_index(index).push_next(&mut import);
        // SAFETY: the range is mapped and aligned (checked by import_host; kept alive by its caller).
        let memory = unsafe { self.device.allocate_memory(&allocate, None) }
            .map_err(|e| anyhow!("vkAllocateMemory (host pointer import): {e}"))?;
        self.bind(buffer, memory)
    }

    /// A buffer of `size` bytes for `role` whose memory will be imported as `handle_type`.
    fn create_external_buffer(
        &self,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
        size: u64,
        role: BufferRole,
    ) -> anyhow::Result<vk::Buffer> {
        let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle_type);
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(role.vk_usage())
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .push_next(&mut external);
        // SAFETY: valid create info; the caller destroys the buffer on failure or hands it to wgpu.
        unsafe { self.device.create_buffer(&info, None) }.map_err(|e| anyhow!("vkCreateBuffer: {e}"))
    }

    /// The first memory type both `buffer` and the imported memory (`allowed` types,
    /// described as `what` in errors) accept, with the buffer's requirements.
    fn memory_type_for(
        &self,
        buffer: vk::Buffer,
        allowed: u32,
        what: &str,
    ) -> anyhow::Result<(u32, vk::MemoryRequirements)> {
        // SAFETY: a query on a buffer we just created.
        let requirements = unsafe { self.device.get_buffer_memory_requirements(buffer) };
        let index = self.memory_type(&requirements, allowed, "the buffer", what)?;
        Ok((index, requirements))
    }

    /// The first memory type that both `requirements` (of `object`) and `allowed` (the
    /// types of `what`) permit.
    fn memory_type(
        &self,
        requirements: &vk::MemoryRequirements,
        allowed: u32,
        object: &str,
        what: &str,
    ) -> anyhow::Result<u32> {
        let types = requirements.memory_type_bits & allowed;
        (0..self.memory_types.len() as u32)
            .find(|i| types & (1 << i) != 0)
            .ok_or_else(|| anyhow!("no memory type fits both {object} and {what}"))
    }

    /// A dup of the dma-buf `fd` for Vulkan to take, and the memory types it can be imported as.
    fn dup_dmabuf(&self, fd: BorrowedFd<'_>) -> anyhow::Result<(OwnedFd, u32)> {
        let fd: OwnedFd = fd.try_clone_to_owned().context("dup")?;
        let mut fd_properties = vk::MemoryFdPropertiesKHR::default();
        // SAFETY: a query on a valid fd we own.
        unsafe {
            self.external_fd.get_memory_fd_properties(
                vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
                fd.as_raw_fd(),
                &mut fd_properties,
            )
        }
        .map_err(|e| anyhow!("vkGetMemoryFdPropertiesKHR: {e}"))?;
        Ok((fd, fd_properties.memory_type_bits))
    }

    /// Binds `memory` to `buffer`, or frees it.
    fn bind(&self, buffer: vk::Buffer, memory: vk::DeviceMemory) -> anyhow::Result<vk::DeviceMemory> {
        // SAFETY: memory was allocated for this buffer's requirements.
        if let Err(e) = unsafe { self.device.bind_buffer_memory(buffer, memory, 0) } {
            // SAFETY: the memory is bound to nothing.
            unsafe { self.device.free_memory(memory, None) };
            bail!("vkBindBufferMemory: {e}");
        }
        Ok(memory)
    }

    /// Step 1 is live.
    pub fn has_image_step(&self) -> bool {
        !self.modifiers.is_empty()
    }

    /// The (fourcc, modifier) pairs beyond LINEAR that step 1 reads in place: for RGB
    /// formats of one plane whose texel format has the modifier. Other formats' planes are
    /// sampled as reinterpreted texels (YUYV as RGBA8, say), where a tiled layout of the
    /// texel format need not be the layout of the format itself.
    pub fn tiled_format_modifiers(&self) -> Vec<(u32, u64)> {
        use crate::render::formats::SampleMode;
        crate::dmabuf::formats::DMABUF_FORMATS
            .iter()
            .filter(|f| matches!(f.mode, SampleMode::Direct | SampleMode::SwapRedBlue) && f.planes.len() == 1)
            .flat_map(|f| {
                let texel = f.planes[0].texture;
                self.modifiers
                    .get(&texel)
                    .into_iter()
                    .flatten()
                    .filter(|&&m| m != MODIFIER_LINEAR)
                    .map(move |&m| (f.fourcc as u32, m))
            })
            .collect()
    }

    /// The ladder's steps and whether each is live, for the start-up log.
    pub fn describe(&self) -> String {
        [
            if self.modifiers.is_empty() {
                "1 dma-buf -> VkImage by modifier: unavailable (no VK_EXT_image_drm_format_modifier with dma-buf import)"
                    .to_string()
            } else {
                let tiled = self.tiled_format_modifiers().len();
                format!("1 dma-buf -> VkImage by modifier: live ({tiled} tiled format/modifier pairs offered)")
            },
            if self.dmabuf_buffers {
                "2 dma-buf -> VkBuffer sampled in place: live".to_string()
            } else {
                "2 dma-buf -> VkBuffer sampled in place: unavailable (no VK_EXT_external_memory_dma_buf)".to_string()
            },
            if self.host_pointers {
                format!("3 shm -> host pointer read in place: live (alignment {})", self.host_alignment)
            } else {
                "3 shm -> host pointer read in place: unavailable (no VK_EXT_external_memory_host)".to_string()
            },
            "4 CPU copy: live".to_string(),
        ]
        .join("; ")
            + &match &self.fence_waits {
                Ok(waits) => format!(
                    ". Implicit sync: the GPU waits on sync files (semaphores); sync files exported: {}",
                    if waits.exports { "yes" } else { "no" }
                ),
                Err(why) => format!(". Implicit sync: bounded CPU wait ({why})"),
            }
    }
}

/// What an imported buffer is for.
#[derive(Debug, Clone, Copy)]
enum BufferRole {
    /// The shader reads it in place (a client's dma-buf or wl_shm pool), or a paint
    /// copies its texels (render/paint.rs).
    Read,
    /// The GPU copies a captured frame into it (a capture client's dma-buf).
    CopyDestination,
}

impl BufferRole {
    fn vk_usage(self) -> vk::BufferUsageFlags {
        match self {
            Self::Read => vk::BufferUsageFlags::STORAGE_BUFFER | vk::BufferUsageFlags::TRANSFER_SRC,
            Self::CopyDestination => vk::BufferUsageFlags::TRANSFER_DST,
        }
    }

    fn wgpu_usage(self) -> wgpu::BufferUsages {
        match self {
            Self::Read => wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            Self::CopyDestination => wgpu::BufferUsages::COPY_DST,
        }
    }
}
