//! Integration tests: each starts the real `axiom` binary headless on a private
//! XDG_RUNTIME_DIR and talks to it over its Wayland socket, with our own test
//! client or with real third-party clients, and checks pixels on screenshots.

mod adapter;
mod common;
mod dmabuf;
mod dmabuf_formats;
mod drm;
mod fuzz;
mod hostile;
mod load;
mod nested;
mod presentation;
mod robustness;
mod shm;
mod stacking;
mod third_party;
#[cfg(feature = "dmabuf-vulkan")]
mod vulkan;
