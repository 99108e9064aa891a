//! Axiom: a Wayland compositor whose headline is complete, zero-copy DMA-BUF
//! support. The binary in `main.rs` only parses the command line; everything
//! else lives here so that it can be tested without the binary.

pub mod backend;
pub mod cli;
pub mod cursor;
pub mod dmabuf;
pub mod handlers;
pub mod input;
pub mod launch;
pub mod limits;
pub mod listener;
pub mod logging;
pub mod malloc_stats;
pub mod outputs;
pub mod render;
pub mod shell;
pub mod state;
pub mod xwayland;

pub use axiom_formats::convert;
pub use state::Axiom;

/// Runs the compositor until it is asked to stop, or until the program given
/// after `--` ends; returns the exit status (that program's, else 0).
pub fn run(options: cli::Options) -> anyhow::Result<u8> {
    if let Some(fd) = options.ready_fd {
        launch::claim_ready_fd(fd)?;
    }
    let backend = options.backend();
    anyhow::ensure!(
        options.modes.is_empty() || backend == cli::Backend::Drm,
        "--mode names display connectors: it is for the drm backend only"
    );
    match backend {
        cli::Backend::Winit => backend::winit::run(options),
        cli::Backend::Drm => backend::drm::run(options),
        _ => backend::headless::run(options),
    }
}
