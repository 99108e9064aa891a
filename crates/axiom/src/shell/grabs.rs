//! Interactive move and resize (xdg_toplevel.move / xdg_toplevel.resize): a
//! pointer grab, started from the implicit grab of a held button, that moves
//! or resizes the window until every button is released. While it lasts no
//! surface has the pointer (wl_pointer.leave is sent when it starts).

use std::sync::Mutex;

use smithay::desktop::Window;
use smithay::input::pointer::{
    AxisFrame, ButtonEvent, Focus, GestureHoldBeginEvent, GestureHoldEndEvent, GesturePinchBeginEvent,
    GesturePinchEndEvent, GesturePinchUpdateEvent, GestureSwipeBeginEvent, GestureSwipeEndEvent,
    GestureSwipeUpdateEvent, GrabStartData, MotionEvent, PointerGrab, PointerInnerHandle, RelativeMotionEvent,
};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::{ResizeEdge, State};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Resource;
use smithay::utils::{Logical, Point, Rectangle, Serial, Size};
use smithay::wayland::compositor::with_states;
use smithay::wayland::shell::xdg::{SurfaceCachedState, ToplevelSurface};

use crate::Axiom;

/// The gesture callbacks of a grab that leaves gestures alone.
macro_rules! forward_gestures {
    () => {
        fn gesture_swipe_begin(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GestureSwipeBeginEvent,
        ) {
            handle.gesture_swipe_begin(data, event);
        }
        fn gesture_swipe_update(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GestureSwipeUpdateEvent,
        ) {
            handle.gesture_swipe_update(data, event);
        }
        fn gesture_swipe_end(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GestureSwipeEndEvent,
        ) {
            handle.gesture_swipe_end(data, event);
        }
        fn gesture_pinch_begin(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GesturePinchBeginEvent,
        ) {
            handle.gesture_pinch_begin(data, event);
        }
        fn gesture_pinch_update(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GesturePinchUpdateEvent,
        ) {
            handle.gesture_pinch_update(data, event);
        }
        fn gesture_pinch_end(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GesturePinchEndEvent,
        ) {
            handle.gesture_pinch_end(data, event);
        }
        fn gesture_hold_begin(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GestureHoldBeginEvent,
        ) {
            handle.gesture_hold_begin(data, event);
        }
        fn gesture_hold_end(
            &mut self,
            data: &mut Axiom,
            handle: &mut PointerInnerHandle<'_, Axiom>,
            event: &GestureHoldEndEvent,
        ) {
            handle.gesture_hold_end(data, event);
        }
    };
}

/// The start data of the pointer's current grab if `serial` is that grab's and
/// it began on a surface of `surface`'s client: the only case in which a client
/// may start a move or resize.
fn grab_for(state: &Axiom, surface: &WlSurface, serial: Serial) -> Option<GrabStartData<Axiom>> {
    let pointer = state.seat.get_pointer()?;
    if !pointer.has_grab(serial) {
        return None;
    }
    let start = pointer.grab_start_data()?;
    let (focus, _) = start.focus.as_ref()?;
    focus.id().same_client_as(&surface.id()).then_some(start)
}

impl Axiom {
    /// xdg_toplevel.move: the window follows the pointer until the buttons are released.
    pub fn start_interactive_move(&mut self, toplevel: &ToplevelSurface, serial: Serial) {
        let Some(start_data) = grab_for(self, toplevel.wl_surface(), serial) else { return };
        let Some(window) = self.window_for_surface(toplevel.wl_surface()) else { return };
        let Some(initial_location) = self.space.element_location(&window) else { return };
        let Some(pointer) = self.seat.get_pointer() else { return };
        let grab = MoveGrab { start_data, window, initial_location };
        pointer.set_grab(self, grab, serial, Focus::Clear);
    }

    /// xdg_toplevel.resize: configures follow the pointer until the buttons are released.
    pub fn start_interactive_resize(&mut self, toplevel: &ToplevelSurface, serial: Serial, edges: ResizeEdge) {
        if edges == ResizeEdge::None {
            return;
        }
        let Some(start_data) = grab_for(self, toplevel.wl_surface(), serial) else { return };
        let Some(window) = self.window_for_surface(toplevel.wl_surface()) else { return };
        let Some(location) = self.space.element_location(&window) else { return };
        let Some(pointer) = self.seat.get_pointer() else { return };
        let initial = Rectangle::new(location, window.geometry().size);
        set_resize_state(&window, Some(ResizeState { edges, initial }));
        toplevel.with_pending_state(|state| {
            state.states.set(State::Resizing);
        });
        toplevel.send_pending_configure();
        let grab = ResizeGrab { start_data, window, edges, initial };
        pointer.set_grab(self, grab, serial, Focus::Clear);
    }

    /// After a commit of a window being (or just having been) resized from its
    /// top or left edge: the window moves so that the opposite edges stay put.
    pub fn anchor_resized_window(&mut self, window: &Window) {
        let Some(resize) = resize_state(window) else { return };
        let size = window.geometry().size;
        let Some(mut location) = self.space.element_location(window) else { return };
        if has_edge(resize.edges, ResizeEdge::Left) {
            location.x = resize.initial.loc.x + resize.initial.size.w - size.w;
        }
        if has_edge(resize.edges, ResizeEdge::Top) {
            location.y = resize.initial.loc.y + resize.initial.size.h - size.h;
        }
        if self.space.element_location(window) != Some(location) {
            self.move_window(window, location);
        }
        // The resize is over once the client has acked the configure without Resizing.
        let resizing = window.toplevel().is_some_and(|t| t.current_state().states.contains(State::Resizing));
        let grabbed = self.seat.get_pointer().is_some_and(|p| p.is_grabbed());
        if !resizing && !grabbed {
            set_resize_state(window, None);
        }
    }
}

#[derive(Clone, Copy)]
struct ResizeState {
    edges: ResizeEdge,
    /// The window's geometry in the space when the resize began.
    initial: Rectangle<i32, Logical>,
}

#[derive(Default)]
struct ResizeData(Mutex<Option<ResizeState>>);

fn resize_state(window: &Window) -> Option<ResizeState> {
    let data = window.user_data().get::<ResizeData>()?;
    *data.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn set_resize_state(window: &Window, value: Option<ResizeState>) {
    window.user_data().insert_if_missing_threadsafe(ResizeData::default);
    if let Some(data) = window.user_data().get::<ResizeData>() {
        *data.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
    }
}

fn has_edge(edges: ResizeEdge, edge: ResizeEdge) -> bool {
    (edges as u32) & (edge as u32) != 0
}

struct MoveGrab {
    start_data: GrabStartData<Axiom>,
    window: Window,
    initial_location: Point<i32, Logical>,
}

struct ResizeGrab {
    start_data: GrabStartData<Axiom>,
    window: Window,
    edges: ResizeEdge,
    /// The window's geometry in the space when the resize began.
    initial: Rectangle<i32, Logical>,
}

impl ResizeGrab {
    fn size_at(&self, location: Point<f64, Logical>) -> Size<i32, Logical> {
        let delta = (location - self.start_data.location).to_i32_round::<i32>();
        let (mut w, mut h) = (self.initial.size.w, self.initial.size.h);
        if has_edge(self.edges, ResizeEdge::Left) {
            w -= delta.x;
        } else if has_edge(self.edges, ResizeEdge::Right) {
            w += delta.x;
        }
        if has_edge(self.edges, ResizeEdge::Top) {
            h -= delta.y;
        } else if has_edge(self.edges, ResizeEdge::Bottom) {
            h += delta.y;
        }
        let (min, max) = self
            .window
            .toplevel()
            .map(|t| {
                with_states(t.wl_surface(), |states| {
                    let mut cached = states.cached_state.get::<SurfaceCachedState>();
                    let current = cached.current();
                    (current.min_size, current.max_size)
                })
            })
            .unwrap_or_default();
        let clamp = |value: i32, min: i32, max: i32| {
            let value = value.max(min.max(1));
            if max > 0 {
                value.min(max)
            } else {
                value
            }
        };
        (clamp(w, min.w, max.w), clamp(h, min.h, max.h)).into()
    }
}

impl PointerGrab<Axiom> for MoveGrab {
    fn motion(
        &mut self,
        data: &mut Axiom,
        handle: &mut PointerInnerHandle<'_, Axiom>,
        _focus: Option<(WlSurface, Point<f64, Logical>)>,
        event: &MotionEvent,
    ) {
        // No surface has the pointer while the window moves.
        handle.motion(data, None, event);
        let delta = event.location - self.start_data.location;
        let location = self.initial_location.to_f64() + delta;
        data.space.map_element(self.window.clone(), location.to_i32_round(), true);
        data.schedule_repaint();
    }

    fn relative_motion(
        &mut self,
        data: &mut Axiom,
        handle: &mut PointerInnerHandle<'_, Axiom>,
        _focus: Option<(WlSurface, Point<f64, Logical>)>,
        event: &RelativeMotionEvent,
    ) {
        handle.relative_motion(data, None, event);
    }

    fn button(&mut self, data: &mut Axiom, handle: &mut PointerInnerHandle<'_, Axiom>, event: &ButtonEvent) {
        handle.button(data, event);
        if handle.current_pressed().is_empty() {
            handle.unset_grab(self, data, event.serial, event.time, true);
        }
    }

    fn axis(&mut self, data: &mut Axiom, handle: &mut PointerInnerHandle<'_, Axiom>, details: AxisFrame) {
        handle.axis(data, details);
    }

    fn frame(&mut self, data: &mut Axiom, handle: &mut PointerInnerHandle<'_, Axiom>) {
        handle.frame(data);
    }

    forward_gestures!();

    fn start_data(&self) -> &GrabStartData<Axiom> {
        &self.start_data
    }

    fn unset(&mut self, _data: &mut Axiom) {}
}

impl PointerGrab<Axiom> for ResizeGrab {
    fn motion(
        &mut self,
        data: &mut Axiom,
        handle: &mut PointerInnerHandle<'_, Axiom>,
        _focus: Option<(WlSurface, Point<f64, Logical>)>,
        event: &MotionEvent,
    ) {
        handle.motion(data, None, event);
        let size = self.size_at(event.location);
        if let Some(toplevel) = self.window.toplevel() {
            toplevel.with_pending_state(|state| {
                state.size = Some(size);
                state.states.set(State::Resizing);
            });
            toplevel.send_pending_configure();
        }
    }

    fn relative_motion(
        &mut self,
        data: &mut Axiom,
        handle: &mut PointerInnerHandle<'_, Axiom>,
        _focus: Option<(WlSurface, Point<f64, Logical>)>,
        event: &RelativeMotionEvent,
    ) {
        handle.relative_motion(data, None, event);
    }

    fn button(&mut self, data: &mut Axiom, handle: &mut PointerInnerHandle<'_, Axiom>, event: &ButtonEvent) {
        handle.button(data, event);
        if handle.current_pressed().is_empty() {
            handle.unset_grab(self, data, event.serial, event.time, true);
        }
    }

    fn axis(&mut self, data: &mut Axiom, handle: &mut PointerInnerHandle<'_, Axiom>, details: AxisFrame) {
        handle.axis(data, details);
    }

    fn frame(&mut self, data: &mut Axiom, handle: &mut PointerInnerHandle<'_, Axiom>) {
        handle.frame(data);
    }

    forward_gestures!();

    fn start_data(&self) -> &GrabStartData<Axiom> {
        &self.start_data
    }

    fn unset(&mut self, _data: &mut Axiom) {
        // The final configure: the size stays, Resizing goes.
        if let Some(toplevel) = self.window.toplevel() {
            toplevel.with_pending_state(|state| {
                state.states.unset(State::Resizing);
            });
            toplevel.send_pending_configure();
        }
    }
}
