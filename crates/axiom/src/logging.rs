//! `tracing` set-up: `RUST_LOG` filters, the default shows Axiom's info lines.

use tracing_subscriber::EnvFilter;

pub fn init() {
    // smithay asks for DRM master on every DRM file it wraps and warns where it cannot:
    // the files explicit-sync timelines live in never can, by design (handlers/timeline_files.rs).
    let default = "axiom=info,warn,smithay::backend::drm::device::fd=error";
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
