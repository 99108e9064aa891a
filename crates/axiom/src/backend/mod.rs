//! Backends drive outputs: they own the event loop and decide when to repaint.

pub mod drm;
pub mod headless;
pub mod repaint;
pub mod vblank;
pub mod winit;
