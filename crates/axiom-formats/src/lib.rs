//! Pixel formats as both sides of a Wayland connection see them: the memory
//! layout of every plane of every format Axiom imports, the reference colour
//! conversion (the compositor's shader uses its coefficients; tests use it to
//! know which pixels to expect), and images with their encoders.

pub mod convert;
pub mod encode;
pub mod fourcc;
pub mod image;
pub mod layout;
