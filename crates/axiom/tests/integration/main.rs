//! Integration tests: each starts the real `axiom` binary on a private
//! XDG_RUNTIME_DIR (headless, nested on Xvfb, or on the VM rig's KMS device),
//! talks to it over its Wayland socket with our own test client or real
//! third-party clients, and checks pixels on screenshots or on the CRTC.

mod adapter;
mod capture;
mod common;
mod cursor;
mod dmabuf;
mod dmabuf_formats;
mod drm;
mod exhaustion;
mod frame_pacing;
mod fuzz;
mod headless_outputs;
mod hostile;
mod image_quality;
mod kiosk;
mod launch;
mod load;
mod nested;
mod presentation;
mod robustness;
mod shm;
mod stacking;
mod tearing;
mod texel_copies;
mod third_party;
#[cfg(feature = "dmabuf-vulkan")]
mod vulkan;
mod wlheadless;
