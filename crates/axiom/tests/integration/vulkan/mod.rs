//! The `dmabuf-vulkan` ladder on lavapipe: memfd "dmabufs" sealed against
//! shrinking are imported and read in place by the shader, as images by
//! modifier (step 1) where lavapipe offers VK_EXT_image_drm_format_modifier (in
//! the VM rig, where udmabuf exists) and as buffers (step 2) elsewhere; wl_shm
//! pools of sealed memfds are read in place as host pointers (step 3).
//!
//! `dmabuf` holds the dma-buf tests, which `tests/vm/drm-tests` runs in the VM
//! rig too (step 1 and implicit sync on the GPU are live only there); `shm` the
//! wl_shm ones, whose path is the same everywhere.

mod dmabuf;
mod shm;

const OUT_W: u32 = 160;
const OUT_H: u32 = 120;
