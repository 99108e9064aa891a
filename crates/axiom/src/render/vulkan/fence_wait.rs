//! Implicit sync on the GPU: the fence of a dma-buf's pending writes, exported
//! as a sync file, is imported as a semaphore that wgpu's next submission waits
//! on (VK_KHR_external_semaphore_fd, SYNC_FD handles). The frame then reads the
//! buffer only after its writers finish, and the CPU never polls the fence.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use ash::vk;
use wgpu::hal::api::Vulkan;

pub struct FenceWaits {
    semaphore_fd: ash::khr::external_semaphore_fd::Device,
    /// The driver also exports semaphores as sync files: what a KMS flip could wait on
    /// (`IN_FENCE_FD`) instead of the event loop hearing of the GPU's completion.
    pub exports: bool,
    /// Semaphores handed to wgpu's next submission.
    handed: Mutex<Vec<vk::Semaphore>>,
    /// Semaphores a submission waits on, by its id (`completion.rs`), destroyed once it
    /// has finished.
    waited: Mutex<Vec<(u64, vk::Semaphore)>>,
}

impl FenceWaits {
    /// Err (why not, for the start-up log) unless the device imports sync files as semaphores.
    pub fn new(
        instance: &ash::Instance,
        instance_version: u32,
        physical: vk::PhysicalDevice,
        device: &ash::Device,
        extension_enabled: bool,
    ) -> Result<Self, String> {
        if !extension_enabled {
            return Err("no VK_KHR_external_semaphore_fd".into());
        }
        if instance_version < vk::API_VERSION_1_1 {
            return Err("a Vulkan 1.0 instance".into());
        }
        let info = vk::PhysicalDeviceExternalSemaphoreInfo::default()
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let mut properties = vk::ExternalSemaphoreProperties::default();
        // SAFETY: a query on the physical device of a live Vulkan 1.1 instance.
        unsafe { instance.get_physical_device_external_semaphore_properties(physical, &info, &mut properties) };
        let features = properties.external_semaphore_features;
        if !features.contains(vk::ExternalSemaphoreFeatureFlags::IMPORTABLE) {
            return Err(if features.is_empty() {
                "the driver takes no sync files as semaphores".to_string()
            } else {
                format!("sync files are not importable as semaphores (features {features:?})")
            });
        }
        Ok(Self {
            semaphore_fd: ash::khr::external_semaphore_fd::Device::new(instance, device),
            exports: features.contains(vk::ExternalSemaphoreFeatureFlags::EXPORTABLE),
            handed: Mutex::new(Vec::new()),
            waited: Mutex::new(Vec::new()),
        })
    }

    /// Makes wgpu's next submission wait, before any of its commands, until `sync_file`
    /// signals. Vulkan takes a dup: on an error the caller can still wait on the file.
    pub fn wait_before_next_submission(
        &self,
        device: &ash::Device,
        queue: &wgpu::Queue,
        sync_file: &OwnedFd,
    ) -> anyhow::Result<()> {
        let sync_file = sync_file.try_clone().context("dup of the sync file")?;
        // SAFETY: a plain binary semaphore on a live device; destroyed below or in `retire`.
        let semaphore = unsafe { device.create_semaphore(&vk::SemaphoreCreateInfo::default(), None) }
            .context("vkCreateSemaphore")?;
        let destroy = || {
            // SAFETY: the semaphore was never handed to a submission.
            unsafe { device.destroy_semaphore(semaphore, None) }
        };
        let raw_fd = sync_file.into_raw_fd();
        // Sync files may only be imported temporarily: the payload goes with the first wait.
        let import = vk::ImportSemaphoreFdInfoKHR::default()
            .semaphore(semaphore)
            .flags(vk::SemaphoreImportFlags::TEMPORARY)
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD)
            .fd(raw_fd);
        // SAFETY: on success Vulkan owns raw_fd; on failure it stays ours (the spec and Mesa agree).
        if let Err(e) = unsafe { self.semaphore_fd.import_semaphore_fd(&import) } {
            // SAFETY: the import failed, so the fd is still open and ours alone.
            drop(unsafe { OwnedFd::from_raw_fd(raw_fd) });
            destroy();
            return Err(anyhow!("vkImportSemaphoreFdKHR (sync file): {e}"));
        }
        // SAFETY: the hal queue is only used for this call, while `queue` lives.
        let Some(hal_queue) = (unsafe { queue.as_hal::<Vulkan>() }) else {
            destroy();
            return Err(anyhow!("not a Vulkan queue"));
        };
        // The planes are read by the fragment shader; wait before every stage to be plain.
        hal_queue.add_wait_semaphore(semaphore, None, vk::PipelineStageFlags::ALL_COMMANDS);
        self.handed.lock().unwrap_or_else(|e| e.into_inner()).push(semaphore);
        Ok(())
    }

    /// Whether the next submission waits on a semaphore.
    pub fn any_handed(&self) -> bool {
        !self.handed.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// The submission `id` was made: it waits on the semaphores handed out so far.
    pub fn submitted(&self, id: u64) {
        let handed: Vec<_> = self.handed.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect();
        self.waited.lock().unwrap_or_else(|e| e.into_inner()).extend(handed.into_iter().map(|s| (id, s)));
    }

    /// Destroys the semaphores of submissions up to `id`, which have finished.
    pub fn retire_through(&self, device: &ash::Device, id: u64) {
        self.waited.lock().unwrap_or_else(|e| e.into_inner()).retain(|&(by, semaphore)| {
            if by > id {
                return true;
            }
            // SAFETY: the submission that waited on it has finished; nothing else holds it.
            unsafe { device.destroy_semaphore(semaphore, None) };
            false
        });
    }
}
