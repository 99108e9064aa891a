//! Backends drive outputs: each shows the composed frames somewhere (off screen,
//! a window, KMS) and feeds its input; the shared repaint clock (`vblank.rs`)
//! decides when to repaint.

pub mod drm;
pub mod headless;
pub mod repaint;
pub mod vblank;
pub mod winit;
