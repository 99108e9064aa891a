//! Pointer, touch and keyboard input: finds the surface under a point of the
//! canvas and sends wl_pointer / wl_touch events to it, and keys to the focused
//! client, through the seat.
//!
//! Positions are in the canvas' logical space (the space's coordinates).
//! Every source of input calls these methods: the winit window's events
//! (`backend/winit.rs`), the seat's devices through libinput
//! (`backend/drm/input.rs`) and the WLCS module; the headless backend has none.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use smithay::backend::input::{ButtonState, KeyState};
use smithay::desktop::WindowSurfaceType;
use smithay::input::keyboard::{FilterResult, Keycode};
use smithay::input::pointer::{ButtonEvent, MotionEvent, RelativeMotionEvent};
use smithay::input::touch::{DownEvent, MotionEvent as TouchMotionEvent, UpEvent};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Clock, Logical, Monotonic, Point, SERIAL_COUNTER};
use smithay::wayland::compositor::{add_destruction_hook, with_states};

use crate::Axiom;

/// Milliseconds on CLOCK_MONOTONIC, for event sources that carry no timestamp of their own.
pub fn now_msec() -> u32 {
    let now: Duration = Clock::<Monotonic>::new().now().into();
    // wl_pointer and wl_touch times are 32-bit milliseconds that wrap.
    now.as_millis() as u32
}

/// Per-seat: which surface each touch point (by slot) went down on.
#[derive(Default)]
struct TouchPoints(Mutex<HashMap<u32, WlSurface>>);

type PointerTargetSlot = Option<Option<(WlSurface, Point<f64, Logical>)>>;

/// Per-seat: see `Axiom::pointer_target`.
#[derive(Default)]
struct PointerTarget(Mutex<PointerTargetSlot>);

/// Marks a surface whose destruction already ends its touch points.
struct TouchHook;

impl Axiom {
    /// The surface under `location` and the position of that surface's origin,
    /// topmost first: popups, then the window's surface tree (subsurfaces in
    /// stacking order), each only where its input region covers the point.
    pub fn surface_under(&self, location: Point<f64, Logical>) -> Option<(WlSurface, Point<f64, Logical>)> {
        // `element_under` already honours input regions; its location is where the
        // window's surface (not its geometry) is drawn.
        let (window, render_location) = self.space.element_under(location)?;
        let (surface, surface_location) =
            window.surface_under(location - render_location.to_f64(), WindowSurfaceType::ALL)?;
        Some((surface, (surface_location + render_location).to_f64()))
    }

    /// The pointer moved to `location`: enter/leave/motion/frame to whatever is under it.
    pub fn pointer_motion_absolute(&mut self, location: Point<f64, Logical>, time: u32) {
        let Some(pointer) = self.seat.get_pointer() else { return };
        let under = self.surface_under(location);
        *self.pointer_target() = Some(under.clone());
        pointer.motion(self, under, &MotionEvent { location, serial: SERIAL_COUNTER.next_serial(), time });
        pointer.frame(self);
        self.cursor_moved();
    }

    /// A key went down or up (`keycode`: XKB's, the Linux code plus 8); it goes to
    /// the focused client. Returns N for Ctrl+Alt+FN (XF86Switch_VT_N), which no
    /// client sees: switching terminals is the backend's business.
    pub fn keyboard_key(&mut self, keycode: Keycode, state: KeyState, time: u32) -> Option<i32> {
        const SWITCH_VT_1: u32 = 0x1008_fe01;
        const SWITCH_VT_12: u32 = 0x1008_fe0c;
        let keyboard = self.seat.get_keyboard()?;
        keyboard.input(self, keycode, state, SERIAL_COUNTER.next_serial(), time, |_, _, keysym| {
            let sym = keysym.modified_sym().raw();
            if state == KeyState::Pressed && (SWITCH_VT_1..=SWITCH_VT_12).contains(&sym) {
                FilterResult::Intercept((sym - SWITCH_VT_1 + 1) as i32)
            } else {
                FilterResult::Forward
            }
        })
    }

    /// The pointer moved by `delta` (a mouse): it stays on the canvas.
    pub fn pointer_motion_relative(&mut self, delta: Point<f64, Logical>, time: u32) {
        let Some(pointer) = self.seat.get_pointer() else { return };
        let location = self.clamp_to_output(pointer.current_location() + delta);
        let under = self.surface_under(location);
        *self.pointer_target() = Some(under.clone());
        pointer.motion(self, under.clone(), &MotionEvent { location, serial: SERIAL_COUNTER.next_serial(), time });
        let utime = u64::from(time) * 1000;
        pointer.relative_motion(self, under, &RelativeMotionEvent { delta, delta_unaccel: delta, utime });
        pointer.frame(self);
        self.cursor_moved();
    }

    /// A button (a Linux `BTN_*` code) was pressed or released. A press on a
    /// window raises it and gives it keyboard focus, unless a grab (a button
    /// already held) owns the pointer.
    pub fn pointer_button(&mut self, button: u32, state: ButtonState, time: u32) {
        let Some(pointer) = self.seat.get_pointer() else { return };
        if state == ButtonState::Pressed && !pointer.is_grabbed() {
            self.press_at(pointer.current_location());
        }
        let serial = SERIAL_COUNTER.next_serial();
        pointer.button(self, &ButtonEvent { button, state, serial, time });
        pointer.frame(self);
        if let Some(focus) = pointer.current_focus() {
            self.note_input_serial(serial, &focus);
        }
        // Releasing the last button may end a grab that moved things under the pointer.
        self.refresh_pointer_focus();
    }

    /// A touch point `slot` went down at `location`; like a click, it raises and focuses the window.
    pub fn touch_down(&mut self, slot: u32, location: Point<f64, Logical>, time: u32) {
        let Some(touch) = self.seat.get_touch() else { return };
        self.press_at(location);
        let under = self.surface_under(location);
        if let Some((surface, _)) = &under {
            self.touch_points().insert(slot, surface.clone());
            // Once per surface: its touch points end (wl_touch.up) when it is destroyed.
            let first = with_states(surface, |states| states.data_map.insert_if_missing_threadsafe(|| TouchHook));
            if first {
                add_destruction_hook(surface, |state: &mut Axiom, surface: &WlSurface| {
                    state.touch_surface_gone(surface)
                });
            }
        }
        let serial = SERIAL_COUNTER.next_serial();
        if let Some((surface, _)) = &under {
            self.note_input_serial(serial, surface);
        }
        let event = DownEvent { slot: Some(slot).into(), location, serial, time };
        touch.down(self, under, &event);
        touch.frame(self);
    }

    /// A touch point moved; its events keep going to the surface it went down on.
    pub fn touch_motion(&mut self, slot: u32, location: Point<f64, Logical>, time: u32) {
        let Some(touch) = self.seat.get_touch() else { return };
        let under = self.surface_under(location);
        touch.motion(self, under, &TouchMotionEvent { slot: Some(slot).into(), location, time });
        touch.frame(self);
    }

    pub fn touch_up(&mut self, slot: u32, time: u32) {
        let Some(touch) = self.seat.get_touch() else { return };
        self.touch_points().remove(&slot);
        touch.up(self, &UpEvent { slot: Some(slot).into(), serial: SERIAL_COUNTER.next_serial(), time });
        touch.frame(self);
    }

    /// The scene changed under a still pointer (a window was mapped, moved, resized,
    /// restacked or destroyed): the surface now under it gets wl_pointer.enter (after
    /// a leave to the old one), or, if the same surface moved, a motion event with the
    /// new surface-local position. Nothing happens before the pointer was first moved,
    /// nor while a button is held (the surface it was pressed on keeps the pointer).
    pub fn refresh_pointer_focus(&mut self) {
        let Some(pointer) = self.seat.get_pointer() else { return };
        let Some(previous) = self.pointer_target().clone() else { return };
        if pointer.is_grabbed() {
            return;
        }
        let location = pointer.current_location();
        let under = self.surface_under(location);
        if under == previous {
            return;
        }
        *self.pointer_target() = Some(under.clone());
        pointer.motion(self, under, &MotionEvent { location, serial: SERIAL_COUNTER.next_serial(), time: now_msec() });
        pointer.frame(self);
    }

    /// What the pointer was last sent to: `None` until the pointer first moves, then
    /// the surface under it and that surface's origin (or `Some(None)` over nothing).
    fn pointer_target(&self) -> MutexGuard<'_, PointerTargetSlot> {
        let data = self.seat.user_data();
        data.insert_if_missing_threadsafe(PointerTarget::default);
        let target = data.get::<PointerTarget>().expect("inserted above");
        target.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The surface each touch point that is down went down on.
    fn touch_points(&self) -> MutexGuard<'_, HashMap<u32, WlSurface>> {
        let data = self.seat.user_data();
        data.insert_if_missing_threadsafe(TouchPoints::default);
        // Inserted just above; a poisoned lock only means a panic elsewhere, the map is still sound.
        let points = data.get::<TouchPoints>().expect("inserted above");
        points.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `surface` is being destroyed: the touch points on it end there.
    fn touch_surface_gone(&mut self, surface: &WlSurface) {
        let Some(touch) = self.seat.get_touch() else { return };
        let slots: Vec<u32> = {
            let mut points = self.touch_points();
            let slots = points.iter().filter(|(_, s)| *s == surface).map(|(slot, _)| *slot).collect();
            points.retain(|_, s| s != surface);
            slots
        };
        if slots.is_empty() {
            return;
        }
        let time = now_msec();
        for slot in slots {
            touch.up(self, &UpEvent { slot: Some(slot).into(), serial: SERIAL_COUNTER.next_serial(), time });
        }
        touch.frame(self);
    }

    /// A button press or touch at `location`. While a popup grab is active, one
    /// on another client's surface (or on nothing) dismisses the popups, and one
    /// on the grabbing client's surfaces leaves focus and stacking alone; else the
    /// window there is raised and focused.
    fn press_at(&mut self, location: Point<f64, Logical>) {
        let under = self.surface_under(location).map(|(surface, _)| surface);
        match self.popup_grab_owns(under.as_ref()) {
            Some(true) => return,
            Some(false) => self.dismiss_popup_grabs(),
            None => {}
        }
        self.raise_and_focus_at(location);
    }

    /// Raises the window under `location`, activates it and gives it keyboard focus.
    fn raise_and_focus_at(&mut self, location: Point<f64, Logical>) {
        let Some(window) = self.space.element_under(location).map(|(w, _)| w.clone()) else { return };
        self.space.raise_element(&window, true);
        // Raising changed the activated state of this window and of the one before it.
        for toplevel in self.space.elements().filter_map(|w| w.toplevel()) {
            toplevel.send_pending_configure();
        }
        self.focus_top_window();
        self.schedule_repaint();
    }

    fn clamp_to_output(&self, location: Point<f64, Logical>) -> Point<f64, Logical> {
        let size = self.output_size().to_f64();
        // Pixel centres run from 0 to size - 1; the far edge itself is off the output.
        (location.x.clamp(0.0, (size.w - 1.0).max(0.0)), location.y.clamp(0.0, (size.h - 1.0).max(0.0))).into()
    }
}
