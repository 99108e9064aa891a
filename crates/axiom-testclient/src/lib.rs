//! A Wayland test client for Axiom: creates windows from known pixels (wl_shm,
//! memfd "dmabufs", real dma-bufs), takes screenshots through zwlr_screencopy so
//! that tests can compare pixels exactly, and plays hostile clients.

pub mod client;
pub mod color;
pub mod decoration;
pub mod dmabuf;
pub mod ext_capture;
pub mod harness;
pub mod hostile;
pub mod memfd;
pub mod pacing;
pub mod pointer;
pub mod syncobj;
pub mod tearing;
pub mod uinput;
pub mod vgem;

pub use axiom_formats::image::{self, Image, Rgba};
pub use axiom_formats::{convert, encode, fourcc, layout};
pub use client::{Buffer, OutputInfo, ShmLayout, TestClient, Window};
pub use harness::Compositor;
