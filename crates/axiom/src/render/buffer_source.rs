//! Planes read by the shader straight from an imported buffer rather than
//! from textures (the `dmabuf-vulkan` ladder's steps 2 and 3), and the cache
//! of imports per wl_buffer (of every Vulkan step).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use smithay::reexports::wayland_server::backend::ObjectId;

/// The kind of texel a plane holds, as `fetch_buffer` in buffer_source.wgsl decodes it.
pub fn plane_kind(format: wgpu::TextureFormat) -> u32 {
    match format {
        wgpu::TextureFormat::R8Unorm => 0,
        wgpu::TextureFormat::Rg8Unorm => 1,
        wgpu::TextureFormat::Rgba8Unorm => 2,
        wgpu::TextureFormat::Bgra8Unorm => 3,
        wgpu::TextureFormat::Rgb10a2Unorm => 4,
        _ => 5, // Rgba16Float
    }
}

/// The compose shader, with or without reading planes from buffers.
pub fn shader_source(buffer_source: bool) -> String {
    let planes = if buffer_source { include_str!("buffer_source.wgsl") } else { include_str!("no_buffer_source.wgsl") };
    format!("{}\n{planes}", include_str!("shader.wgsl"))
}

/// One imported wl_buffer.
#[derive(Clone)]
pub struct Import {
    pub memory: ImportedMemory,
    /// For a host-pointer import (wl_shm): the address range it aliases, which is
    /// only valid while the pool stays mapped there.
    pub host_range: Option<HostRange>,
}

/// What a wl_buffer's memory was imported as.
#[derive(Clone)]
pub enum ImportedMemory {
    /// Step 1: one image per plane, sampled as textures.
    Images(Vec<wgpu::Texture>),
    /// Steps 2 and 3: one buffer the shader reads every plane from.
    Buffer(wgpu::Buffer),
}

impl ImportedMemory {
    pub fn buffer(self) -> Option<wgpu::Buffer> {
        match self {
            Self::Buffer(buffer) => Some(buffer),
            Self::Images(_) => None,
        }
    }
}

/// (start address, length) of host memory imported into the device.
pub type HostRange = (usize, u64);

/// Imported buffers by wl_buffer, so that re-commits of a buffer do not import it again.
#[derive(Default)]
pub struct ImportCache {
    buffers: Mutex<HashMap<ObjectId, Import>>,
    /// wl_buffers the Vulkan steps refused: their later commits go straight down the
    /// ladder instead of failing (and logging) again.
    refused: Mutex<HashSet<ObjectId>>,
}

impl ImportCache {
    pub fn refuse(&self, id: ObjectId) {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
    }

    pub fn is_refused(&self, id: &ObjectId) -> bool {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).contains(id)
    }

    pub fn get(&self, id: &ObjectId) -> Option<Import> {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    pub fn insert(&self, id: ObjectId, import: Import) {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).insert(id, import);
    }

    /// Drops the import of a destroyed wl_buffer (surfaces still showing it keep it alive).
    pub fn forget(&self, id: &ObjectId) {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    pub fn len(&self) -> usize {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
