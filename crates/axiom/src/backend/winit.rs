//! The nested backend: the output is a window on an existing X11 or Wayland
//! desktop (through winit), and the renderer presents each frame into it
//! through a wgpu surface. Pointer and keyboard input in the window go to the
//! clients. Frames are paced by the same timer as the headless output.

use std::sync::Arc;
use std::time::Duration;

use smithay::backend::input::{Axis, AxisSource, ButtonState, KeyState};
use smithay::input::pointer::AxisFrame;
use smithay::output::Mode;
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{
    self, EventSource, Interest, Mode as TriggerMode, Poll, PostAction, Readiness, Token, TokenFactory,
};
use winit::application::ApplicationHandler;
use winit::dpi::PhysicalSize;
use winit::event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::platform::pump_events::EventLoopExtPumpEvents;
use winit::platform::scancode::PhysicalKeyExtScancode;
use winit::window::{Window, WindowId};

use crate::cli::Options;
use crate::input::now_msec;
use crate::render::adapter::WindowTarget;
use crate::Axiom;

use super::serve::{block_signals, init_output, serve};

/// Linux input event codes of the mouse buttons (linux/input-event-codes.h).
const BTN_LEFT: u32 = 0x110;
const BTN_RIGHT: u32 = 0x111;
const BTN_MIDDLE: u32 = 0x112;
const BTN_SIDE: u32 = 0x113;
const BTN_EXTRA: u32 = 0x114;
/// Scroll distance of one wheel click, as libinput reports it.
const WHEEL_STEP: f64 = 15.0;

pub fn run(options: Options) -> anyhow::Result<u8> {
    let options = options.with_one_output()?;
    let signals = block_signals()?;
    let winit_loop = EventLoop::new().map_err(|err| {
        anyhow::anyhow!(
            "the nested backend cannot reach the desktop named by WAYLAND_DISPLAY or DISPLAY ({err}); \
             `--backend headless` runs without one"
        )
    })?;
    let (width, height) = options.size;
    let attributes = Window::default_attributes()
        .with_title("Axiom")
        .with_inner_size(PhysicalSize::new(width, height))
        .with_resizable(true);
    // winit 0.30 prefers windows made inside `resumed`; the renderer needs ours before the loop runs.
    #[allow(deprecated)]
    let window =
        Arc::new(winit_loop.create_window(attributes).map_err(|e| anyhow::anyhow!("cannot open a window: {e}"))?);
    // The compositor draws its own cursor in the window (`cursor.rs`), which the host's would hide.
    window.set_cursor_visible(false);
    let target = WindowTarget { display: Arc::new(winit_loop.owned_display_handle()), window: window.clone() };

    let (event_loop, mut state) = init_output(&options, ("WINIT-1", "Nested"), Some(&target), None)?;
    state.backend = super::Backend::Winit;
    let source = WinitSource {
        winit_loop: Generic::new(winit_loop, Interest::READ, TriggerMode::Level),
        inbox: Inbox { window: window.id(), events: Vec::new() },
        pending: None,
    };
    event_loop
        .handle()
        .insert_source(source, |event, _, state| state.window_event(event))
        .map_err(|e| anyhow::anyhow!("window event source: {e}"))?;
    // Keeps the window open as long as the compositor runs.
    let _window = window;
    serve(event_loop, state, &options, signals, "nested output ready")
}

/// The window's events as a calloop source. winit's connection to the desktop
/// may read events into its own queue while answering some other request, and
/// then its fd never becomes readable for them: the loop pumps winit before
/// each sleep too, and wakes itself when that found events.
struct WinitSource {
    winit_loop: Generic<EventLoop<()>>,
    inbox: Inbox,
    /// The token that wakes the loop for events found before sleeping.
    pending: Option<Token>,
}

impl WinitSource {
    fn pump(&mut self) {
        // SAFETY: the winit loop is only pumped here, never dropped or replaced.
        let winit_loop = unsafe { self.winit_loop.get_mut() };
        winit_loop.pump_app_events(Some(Duration::ZERO), &mut self.inbox);
    }
}

impl EventSource for WinitSource {
    type Event = WindowEvent;
    type Metadata = ();
    type Ret = ();
    type Error = std::io::Error;

    const NEEDS_EXTRA_LIFECYCLE_EVENTS: bool = true;

    fn before_sleep(&mut self) -> calloop::Result<Option<(Readiness, Token)>> {
        self.pump();
        Ok(self.pending.filter(|_| !self.inbox.events.is_empty()).map(|token| (Readiness::EMPTY, token)))
    }

    fn process_events<F>(&mut self, _: Readiness, _: Token, mut callback: F) -> Result<PostAction, Self::Error>
    where
        F: FnMut(WindowEvent, &mut ()),
    {
        self.pump();
        for event in self.inbox.events.drain(..) {
            callback(event, &mut ());
        }
        Ok(PostAction::Continue)
    }

    fn register(&mut self, poll: &mut Poll, tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.pending = Some(tokens.token());
        self.winit_loop.register(poll, tokens)
    }

    fn reregister(&mut self, poll: &mut Poll, tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.pending = Some(tokens.token());
        self.winit_loop.reregister(poll, tokens)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.pending = None;
        self.winit_loop.unregister(poll)
    }
}

/// Collects the window's events while winit is pumped; they are handled after.
struct Inbox {
    window: WindowId,
    events: Vec<WindowEvent>,
}

impl ApplicationHandler for Inbox {
    fn resumed(&mut self, _: &ActiveEventLoop) {}

    fn window_event(&mut self, _: &ActiveEventLoop, id: WindowId, event: WindowEvent) {
        if id == self.window {
            self.events.push(event);
        }
    }
}

impl Axiom {
    fn window_event(&mut self, event: WindowEvent) {
        tracing::trace!(?event, "window event");
        let time = now_msec();
        match event {
            WindowEvent::CloseRequested => {
                tracing::info!("the window was closed: stopping");
                self.stop();
            }
            WindowEvent::Resized(size) => self.resize_output(size.width as i32, size.height as i32),
            WindowEvent::RedrawRequested => self.schedule_repaint(),
            WindowEvent::CursorMoved { position, .. } => {
                self.pointer_motion_absolute((position.x, position.y).into(), time)
            }
            WindowEvent::CursorLeft { .. } => self.cursor_gone(),
            WindowEvent::MouseInput { state, button, .. } => {
                if let Some(code) = button_code(button) {
                    self.pointer_button(code, button_state(state), time);
                }
            }
            WindowEvent::MouseWheel { delta, .. } => self.pointer_scroll(delta, time),
            WindowEvent::KeyboardInput { event, is_synthetic: false, .. } => {
                if let Some(code) = event.physical_key.to_scancode() {
                    let state = match event.state {
                        ElementState::Pressed => KeyState::Pressed,
                        ElementState::Released => KeyState::Released,
                    };
                    self.key(code, state, time);
                }
            }
            _ => {}
        }
    }
}

fn button_code(button: MouseButton) -> Option<u32> {
    Some(match button {
        MouseButton::Left => BTN_LEFT,
        MouseButton::Right => BTN_RIGHT,
        MouseButton::Middle => BTN_MIDDLE,
        MouseButton::Back => BTN_SIDE,
        MouseButton::Forward => BTN_EXTRA,
        MouseButton::Other(_) => return None,
    })
}

fn button_state(state: ElementState) -> ButtonState {
    match state {
        ElementState::Pressed => ButtonState::Pressed,
        ElementState::Released => ButtonState::Released,
    }
}

impl Axiom {
    /// The output's window got a new size: the output mode follows it.
    fn resize_output(&mut self, width: i32, height: i32) {
        if width <= 0 || height <= 0 {
            return;
        }
        let size = (width, height).into();
        let refresh = self.output.current_mode().map_or(60_000, |m| m.refresh);
        self.output.change_current_state(Some(Mode { size, refresh }), None, None, None);
        self.output.set_preferred(Mode { size, refresh });
        self.renderer.resize_output(size);
        tracing::info!(width, height, "the output follows the window's size");
        self.schedule_repaint();
    }

    fn pointer_scroll(&mut self, delta: MouseScrollDelta, time: u32) {
        let Some(pointer) = self.seat.get_pointer() else { return };
        let mut frame = AxisFrame::new(time);
        match delta {
            MouseScrollDelta::LineDelta(x, y) => {
                frame = frame.source(AxisSource::Wheel);
                // winit counts up-and-left as positive; Wayland counts down-and-right.
                for (axis, lines) in [(Axis::Horizontal, -x), (Axis::Vertical, -y)] {
                    if lines != 0.0 {
                        frame = frame.value(axis, f64::from(lines) * WHEEL_STEP).v120(axis, (lines * 120.0) as i32);
                    }
                }
            }
            MouseScrollDelta::PixelDelta(position) => {
                frame = frame.source(AxisSource::Finger);
                frame = frame.value(Axis::Horizontal, -position.x).value(Axis::Vertical, -position.y);
            }
        }
        pointer.axis(self, frame);
        pointer.frame(self);
    }

    /// A key (by Linux input event code) went down or up in the window.
    fn key(&mut self, code: u32, state: KeyState, time: u32) {
        // XKB keycodes are evdev codes plus 8. The desktop switches terminals, not a nested compositor.
        let _ = self.keyboard_key((code + 8).into(), state, time);
    }
}
