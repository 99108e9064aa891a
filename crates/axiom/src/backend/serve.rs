//! What every backend shares: the compositor state with its event loop and
//! first output (`init_output`), the Wayland socket and the loop that serves
//! it (`serve`), the signals it handles, and Xwayland.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use calloop::signals::{Signal, Signals};
use smithay::output::{Mode, Output, PhysicalProperties, Scale, Subpixel};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::ping;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{EventLoop, Interest, Mode as TriggerMode, PostAction};
use smithay::reexports::wayland_server::backend::GlobalId;
use smithay::reexports::wayland_server::{Display, DisplayHandle};
use smithay::utils::{Logical, Physical, Size, Transform};

use crate::backend::vblank::{OutputClock, Vblank};
use crate::cli::Options;
use crate::render::adapter::WindowTarget;
use crate::render::Renderer;
use crate::state::ClientReaper;
use crate::Axiom;

/// How long readiness waits for Xwayland's display.
const XWAYLAND_START_LIMIT: Duration = Duration::from_secs(10);

/// Blocks the signals the event loop handles before any thread exists (the renderer's
/// driver starts some), so that they always reach it: SIGUSR1 prints the import
/// counters; SIGTERM and SIGINT stop the compositor cleanly (socket and lock removed,
/// Xwayland stopped, exit status 0, or the program's: `launch.rs`). Call it first.
pub fn block_signals() -> anyhow::Result<Signals> {
    Signals::new(&[Signal::SIGUSR1, Signal::SIGTERM, Signal::SIGINT])
        .map_err(|e| anyhow::anyhow!("signal handler: {e}"))
}

/// Listens on the Wayland socket, starts Xwayland and runs the event loop until the
/// compositor is asked to stop, or the program it runs ends (`launch.rs`); returns
/// the exit status. `ready` is logged once clients can connect.
pub fn serve(
    mut event_loop: EventLoop<'static, Axiom>,
    mut state: Axiom,
    options: &Options,
    signals: Signals,
    ready: &str,
) -> anyhow::Result<u8> {
    let (listener, socket_name) = crate::listener::listen(&event_loop.handle(), options.socket.as_deref())?;
    state.listener = Some(listener);
    state.launch = Some(crate::launch::Launch::new(socket_name.clone(), options.ready_fd, options.command.clone())?);

    event_loop
        .handle()
        .insert_source(signals, |event, _, state| match event.signal() {
            Signal::SIGUSR1 => state.log_import_stats(),
            signal => {
                tracing::info!("{signal:?}: stopping");
                state.stop_on_signal();
            }
        })
        .map_err(|e| anyhow::anyhow!("signal source: {e}"))?;

    let xwayland_starting = options.xwayland && start_xwayland(&mut state);
    if state.drm_syncobj_state.is_none() && !matches!(state.backend, super::Backend::Drm(_)) {
        tracing::info!(
            "explicit sync (wp_linux_drm_syncobj_manager_v1): not offered: no DRM device (--backend drm has one)"
        );
    }

    let size = state.output_size();
    let refresh = 1.0 / state.vblank.interval.as_secs_f64();
    tracing::info!(socket = %socket_name, width = size.w, height = size.h, refresh, "{ready}");
    // Tests and scripts wait for this line.
    println!("WAYLAND_DISPLAY={socket_name}");
    use std::io::Write;
    std::io::stdout().flush()?;
    // With Xwayland, once its display is up (`xwayland.rs`), or without it if it says
    // nothing for long: readiness never waits on X11 forever.
    if xwayland_starting {
        event_loop
            .handle()
            .insert_source(Timer::from_duration(XWAYLAND_START_LIMIT), |_, _, state| {
                if state.launch.as_ref().is_some_and(|launch| !launch.announced()) {
                    tracing::warn!("Xwayland not ready after {XWAYLAND_START_LIMIT:?}: ready without it");
                    state.announce_ready(None);
                }
                TimeoutAction::Drop
            })
            .map_err(|e| anyhow::anyhow!("Xwayland start timer: {e}"))?;
    } else {
        state.announce_ready(None);
    }

    // Not `EventLoop::run`, which ends at the first error any event source returns:
    // nothing a client does may stop the compositor for everybody.
    while !state.stopping {
        if let Err(err) = event_loop.dispatch(None, &mut state) {
            tracing::error!("event loop: {err}; serving on");
        }
        state.after_dispatch();
    }
    // The state's loop handles keep the loop's sources alive past `event_loop`: the
    // ones that own files outside the process are dropped here, by hand.
    event_loop.handle().remove(listener);
    crate::xwayland::stop(&mut state);
    Ok(state.launch.as_mut().map_or(0, |launch| launch.finish()))
}

/// Starts Xwayland if its binary is installed; X11 clients are a bonus, so a
/// failure is logged, not fatal. Whether it is starting.
fn start_xwayland(state: &mut Axiom) -> bool {
    let installed = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("Xwayland").is_file()));
    if !installed {
        tracing::info!("Xwayland is not installed: no X11 clients");
        return false;
    }
    match crate::xwayland::start(state) {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!("cannot start Xwayland: {err:#}");
            false
        }
    }
}

/// `init` for any backend whose output the timer paces: `name` is the output's
/// name and model, `window` the window it is presented into (nested backend).
pub fn init_output(
    options: &Options,
    (name, model): (&str, &str),
    window: Option<&WindowTarget>,
    display_gpu: Option<&str>,
) -> anyhow::Result<(EventLoop<'static, Axiom>, Axiom)> {
    let modes = options.output_modes();
    let scale = output_scale(options.scale);
    let physical: Vec<Size<i32, Physical>> = modes.iter().map(|((w, h), _)| (*w as i32, *h as i32).into()).collect();
    // Side by side in logical units; the canvas holds each output's pixels from its place times the scale.
    let logical: Vec<Size<i32, Logical>> =
        physical.iter().map(|size| size.to_f64().to_logical(scale.fractional_scale()).to_i32_round()).collect();
    let (places, _) = crate::outputs::side_by_side(&logical);
    let canvas = places.iter().zip(&physical).fold(Size::<i32, Physical>::from((0, 0)), |canvas, (place, size)| {
        let x = place.to_f64().to_physical(scale.fractional_scale()).to_i32_round::<i32>().x;
        (canvas.w.max(x + size.w), canvas.h.max(size.h)).into()
    });
    let ((width, height), refresh) = modes[0];
    let size = (width as i32, height as i32).into();
    let refresh_interval = Duration::from_secs_f64(1.0 / refresh);

    let mut renderer = Renderer::new(options.graphics_api, options.dmabuf_import, canvas, window, display_gpu)?;
    renderer.canvas_scale = scale.fractional_scale();

    let event_loop: EventLoop<'static, Axiom> = EventLoop::try_new()?;
    let mut display: Display<Axiom> = Display::new()?;
    let dh = display.handle();

    let (output, global) = new_output(&dh, (name, model), Mode { size, refresh: millihertz(refresh) });
    let mut state =
        Axiom::new(dh.clone(), event_loop.handle(), event_loop.get_signal(), renderer, output, refresh_interval)?;
    // Frames complete on the GPU while the loop goes on: it hears of each here.
    if let Some(completions) = state.renderer.completions.take_source() {
        event_loop
            .handle()
            .insert_source(completions, |event, _, state: &mut Axiom| {
                if let smithay::reexports::calloop::channel::Event::Msg(id) = event {
                    state.on_gpu_finished(id);
                }
            })
            .map_err(|e| anyhow::anyhow!("GPU completion source: {e}"))?;
    }
    state.limits = options.limits();
    state.kiosk = options.kiosk;
    state.output_global = Some(global);
    state.output.change_current_state(None, None, Some(scale), None);
    // Further headless outputs, left to right, each on a clock of its own.
    for (index, (((w, h), hz), place)) in modes.iter().zip(&places).enumerate().skip(1) {
        let mode = Mode { size: (*w as i32, *h as i32).into(), refresh: millihertz(*hz) };
        let (output, _global) = new_output(&dh, (&format!("HEADLESS-{}", index + 1), model), mode);
        output.change_current_state(None, None, Some(scale), Some(*place));
        state.space.map_output(&output, *place);
        let vblank = Vblank::new(Duration::from_secs_f64(1.0 / hz));
        state.output_clocks.push(OutputClock { output, vblank });
    }

    // The display is dispatched when a client writes, and for each killed client
    // the reaper hands over (see `ClientReaper`).
    let poll_fd = display.backend().poll_fd().try_clone_to_owned()?;
    let display = Rc::new(RefCell::new(display));
    let readable = display.clone();
    event_loop
        .handle()
        .insert_source(Generic::new(poll_fd, Interest::READ, TriggerMode::Level), move |_, _, state| {
            // An error here is the display's own (its epoll); each client's errors end
            // that client only. Neither may end the event loop for everybody.
            if let Err(err) = readable.borrow_mut().dispatch_clients(state) {
                tracing::warn!("dispatching clients: {err}");
            }
            Ok(PostAction::Continue)
        })
        .map_err(|e| anyhow::anyhow!("display source: {e}"))?;
    let (wake, wake_source) = ping::make_ping()?;
    state.reaper = Some(ClientReaper::new(wake));
    event_loop
        .handle()
        .insert_source(wake_source, move |_, _, state| {
            for client in state.reaper.as_ref().map(ClientReaper::take).unwrap_or_default() {
                // Fails for the killed client by design; the cleanup runs either way.
                let _ = display.borrow_mut().backend().dispatch_single_client(state, client);
            }
        })
        .map_err(|e| anyhow::anyhow!("reaper source: {e}"))?;

    state.schedule_repaint();
    Ok((event_loop, state))
}

/// `--scale` as smithay's output scale: integral where it is whole.
fn output_scale(scale: f64) -> Scale {
    match scale.fract() == 0.0 {
        true => Scale::Integer(scale as i32),
        false => Scale::Fractional(scale),
    }
}

fn millihertz(hz: f64) -> i32 {
    (hz * 1000.0).round() as i32
}

/// An output named `name` showing `mode` at the canvas' origin (a backend with more
/// than one moves it), and its wl_output global.
pub fn new_output(dh: &DisplayHandle, (name, model): (&str, &str), mode: Mode) -> (Output, GlobalId) {
    let output = Output::new(
        name.into(),
        PhysicalProperties {
            size: (0, 0).into(),
            subpixel: Subpixel::Unknown,
            make: "Axiom".into(),
            model: model.into(),
        },
    );
    output.change_current_state(Some(mode), Some(Transform::Normal), None, Some((0, 0).into()));
    output.set_preferred(mode);
    let global = output.create_global::<Axiom>(dh);
    (output, global)
}

impl Axiom {
    /// Ends the event loop after the current dispatch (`serve` then cleans up).
    pub fn stop(&mut self) {
        self.stopping = true;
        self.loop_signal.wakeup();
    }

    /// Housekeeping after each dispatch of the event loop: drop dead windows,
    /// popups and dma-buf objects, and send the events queued for clients.
    pub fn after_dispatch(&mut self) {
        self.associate_x11_surfaces();
        self.space.refresh();
        self.popups.cleanup();
        self.xdg_strict.prune();
        self.unmapped_windows.retain(smithay::utils::IsAlive::alive);
        self.dmabuf_state.cleanup();
        if let Err(err) = self.display_handle.flush_clients() {
            tracing::debug!("flushing clients: {err}");
        }
    }
}
