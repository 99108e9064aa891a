//! The headless backend: virtual outputs rendered off screen, each repainted by
//! a timer at its refresh rate. Needs no GPU (lavapipe) and no display.

use smithay::reexports::calloop::EventLoop;

use super::serve::{block_signals, init_output, serve};
use crate::cli::Options;
use crate::Axiom;

pub fn run(options: Options) -> anyhow::Result<u8> {
    let signals = block_signals()?;
    let (event_loop, state) = init(&options)?;
    serve(event_loop, state, &options, signals, "headless output ready")
}

/// The compositor and its headless output, dispatching clients but listening
/// on no socket: `run` adds the socket, an embedder (the WLCS module) inserts
/// its clients itself. Drive it with `Axiom::after_dispatch` after each dispatch.
pub fn init(options: &Options) -> anyhow::Result<(EventLoop<'static, Axiom>, Axiom)> {
    init_output(options, ("HEADLESS-1", "Headless"), None, None)
}
