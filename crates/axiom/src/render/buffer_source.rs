//! Planes read by the shader straight from an imported buffer rather than
//! from textures (the `dmabuf-vulkan` ladder's steps 2 and 3), and the cache
//! of imports per wl_buffer (of every Vulkan step).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use smithay::reexports::wayland_server::backend::{ClientId, ObjectId};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::Resource;

/// `plane_kind` of RGBA8 and BGRA8 texels.
pub const TEXTURE_RGBA8: u32 = 2;
pub const TEXTURE_BGRA8: u32 = 3;

/// The kind of texel a plane holds, as `fetch_buffer` in buffer_source.wgsl decodes it.
pub fn plane_kind(format: wgpu::TextureFormat) -> u32 {
    match format {
        wgpu::TextureFormat::R8Unorm => 0,
        wgpu::TextureFormat::Rg8Unorm => 1,
        wgpu::TextureFormat::Rgba8Unorm => TEXTURE_RGBA8,
        wgpu::TextureFormat::Bgra8Unorm => TEXTURE_BGRA8,
        wgpu::TextureFormat::Rgb10a2Unorm => 4,
        _ => 5, // Rgba16Float
    }
}

/// The compose shader, with or without reading planes from buffers, for pipelines whose
/// planes come from textures (`source` 0) or from a buffer (1).
pub fn shader_source(buffer_source: bool, source: u32) -> String {
    let planes = if buffer_source { include_str!("buffer_source.wgsl") } else { include_str!("no_buffer_source.wgsl") };
    // Chroma of 4:2:0 planes: sampled from textures, read one by one from a buffer.
    let chroma = if source == 0 { "chroma_sampled" } else { "chroma_loaded" };
    let chroma_420 = format!("fn chroma_420(at: vec2<f32>) -> vec2<f32> {{\n    return {chroma}(at);\n}}\n");
    format!("{}\n{planes}\n{chroma_420}", include_str!("shader.wgsl"))
}

/// One imported wl_buffer.
#[derive(Clone)]
pub struct Import {
    pub memory: ImportedMemory,
    /// For a host-pointer import (wl_shm): what keeps the memory it aliases mapped.
    pub host: Option<Arc<HostImport>>,
}

/// A wl_shm buffer's bytes imported as host memory (step 3). Vulkan requires the
/// memory to stay mapped for as long as the import exists, so the import holds
/// its wl_buffer, which holds its pool's mapping; and a pool resize, which remaps
/// the pool, retires every host import of its client first
/// (`Renderer::retire_host_imports`): the device memory is freed and surfaces
/// showing it are imported again before they are drawn.
pub struct HostImport {
    pub buffer: wgpu::Buffer,
    /// The address range it aliases.
    pub range: HostRange,
    client: ClientId,
    retired: AtomicBool,
    _wl_buffer: WlBuffer,
}

impl HostImport {
    pub fn new(buffer: wgpu::Buffer, range: HostRange, wl_buffer: &WlBuffer) -> Option<Arc<Self>> {
        let client = wl_buffer.client()?.id();
        Some(Arc::new(Self { buffer, range, client, retired: AtomicBool::new(false), _wl_buffer: wl_buffer.clone() }))
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}

/// Every host import alive, by weak handle, so that a client's can be retired.
#[derive(Default)]
pub struct HostImports {
    imports: Mutex<Vec<Weak<HostImport>>>,
}

impl HostImports {
    pub fn register(&self, import: &Arc<HostImport>) {
        let mut imports = self.imports.lock().unwrap_or_else(|e| e.into_inner());
        imports.retain(|i| i.strong_count() > 0);
        imports.push(Arc::downgrade(import));
    }

    /// Whether `client` has a host import alive.
    pub fn any_of(&self, client: &ClientId) -> bool {
        let imports = self.imports.lock().unwrap_or_else(|e| e.into_inner());
        imports.iter().filter_map(Weak::upgrade).any(|i| i.client == *client && !i.is_retired())
    }

    /// Frees the device memory of every host import of `client`; returns how many.
    pub fn retire(&self, client: &ClientId) -> usize {
        let mut imports = self.imports.lock().unwrap_or_else(|e| e.into_inner());
        imports.retain(|i| i.strong_count() > 0);
        let mut retired = 0;
        for import in imports.iter().filter_map(Weak::upgrade) {
            if import.client == *client && !import.retired.swap(true, Ordering::AcqRel) {
                import.buffer.destroy();
                retired += 1;
            }
        }
        retired
    }

    /// Host imports alive and not retired, for the counters.
    pub fn live(&self) -> usize {
        let imports = self.imports.lock().unwrap_or_else(|e| e.into_inner());
        imports.iter().filter_map(Weak::upgrade).filter(|i| !i.is_retired()).count()
    }
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

/// Entries are made only for live wl_buffers: a buffer committed and destroyed
/// before the repaint read it has had its `forget` already, so an entry made
/// under its dead id would never go (its import then lives in the surface's
/// texture alone, and goes with it).
impl ImportCache {
    pub fn refuse(&self, id: ObjectId, alive: bool) {
        if alive {
            self.refused.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        }
    }

    pub fn is_refused(&self, id: &ObjectId) -> bool {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).contains(id)
    }

    pub fn get(&self, id: &ObjectId) -> Option<Import> {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    pub fn insert(&self, id: ObjectId, alive: bool, import: Import) {
        if alive {
            self.buffers.lock().unwrap_or_else(|e| e.into_inner()).insert(id, import);
        }
    }

    /// Drops the host imports of `client` (see `HostImports::retire`).
    pub fn forget_host_imports_of(&self, client: &ClientId) {
        let mut buffers = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        buffers.retain(|_, import| import.host.as_ref().is_none_or(|h| h.client != *client));
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
