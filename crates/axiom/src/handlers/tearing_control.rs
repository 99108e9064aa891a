//! wp_tearing_control_v1 (staging; smithay 0.7 has none): a surface may ask for
//! its frames to be shown at once rather than at the next vblank, tearing. The hint
//! is double-buffered surface state (smithay's cached state, so synchronised
//! subsurfaces apply it with their parent); a fullscreen surface on the primary plane
//! that asks for it gets asynchronous page flips where the display has them
//! (`backend/drm`), and vsync, logged once, where it has not.

use std::sync::Mutex;

use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum, Weak,
};
use smithay::wayland::compositor::{with_states, Cacheable};
use wayland_protocols::wp::tearing_control::v1::server::{
    wp_tearing_control_manager_v1::{self as manager, WpTearingControlManagerV1},
    wp_tearing_control_v1::{self as control, PresentationHint, WpTearingControlV1},
};

use crate::Axiom;

/// wl_display.error.invalid_method (the server side has no wl_display type to name it).
const WL_DISPLAY_INVALID_METHOD: u32 = 1;

pub struct TearingControlState;

impl TearingControlState {
    pub fn new(dh: &DisplayHandle) -> Self {
        dh.create_global::<Axiom, WpTearingControlManagerV1, ()>(1, ());
        Self
    }
}

/// The surface's presentation hint: asynchronous (tearing) or vsync, the default.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct TearingHint {
    tearing: bool,
}

impl Cacheable for TearingHint {
    fn commit(&mut self, _: &DisplayHandle) -> Self {
        *self
    }
    fn merge_into(self, into: &mut Self, _: &DisplayHandle) {
        *into = self;
    }
}

/// The surface's wp_tearing_control_v1, while it exists (one per surface). Weak: the
/// object must not keep a destroyed surface's state alive, nor the surface the object.
#[derive(Default)]
struct ControlObject(Mutex<Option<Weak<WpTearingControlV1>>>);

fn with_object<T>(surface: &WlSurface, f: impl FnOnce(&mut Option<Weak<WpTearingControlV1>>) -> T) -> T {
    with_states(surface, |states| {
        states.data_map.insert_if_missing_threadsafe(ControlObject::default);
        let slot = states.data_map.get::<ControlObject>().expect("inserted just above");
        let mut guard = slot.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    })
}

fn set_pending(surface: &WlSurface, tearing: bool) {
    with_states(surface, |states| states.cached_state.get::<TearingHint>().pending().tearing = tearing);
}

/// Whether the surface's committed state asks for asynchronous presentation.
pub fn wants_tearing(surface: &WlSurface) -> bool {
    with_states(surface, |states| states.cached_state.get::<TearingHint>().current().tearing)
}

impl GlobalDispatch<WpTearingControlManagerV1, ()> for Axiom {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<WpTearingControlManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl Dispatch<WpTearingControlManagerV1, ()> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        manager: &WpTearingControlManagerV1,
        request: manager::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let manager::Request::GetTearingControl { id, surface } = request {
            if with_object(&surface, |object| object.as_ref().is_some_and(Weak::is_alive)) {
                manager.post_error(
                    manager::Error::TearingControlExists,
                    "the surface already has a wp_tearing_control_v1",
                );
                return;
            }
            let object = data_init.init(id, surface.downgrade());
            with_object(&surface, |slot| *slot = Some(object.downgrade()));
        }
    }
}

impl Dispatch<WpTearingControlV1, Weak<WlSurface>> for Axiom {
    fn request(
        _: &mut Self,
        client: &Client,
        object: &WpTearingControlV1,
        request: control::Request,
        surface: &Weak<WlSurface>,
        dh: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        // Once the surface is gone the object is inert: its requests do nothing.
        let Some(surface) = surface.upgrade().ok().filter(Resource::is_alive) else { return };
        match request {
            control::Request::SetPresentationHint { hint: WEnum::Value(hint) } => {
                set_pending(&surface, hint == PresentationHint::Async);
            }
            control::Request::SetPresentationHint { hint: WEnum::Unknown(value) } => {
                // The protocol defines no error of its own for it: a malformed request.
                let message = format!("wp_tearing_control_v1@{}: unknown presentation hint {value}", object.id());
                super::display_error(dh, client, WL_DISPLAY_INVALID_METHOD, message);
            }
            // Destroying the object reverts the hint to vsync (from the next commit).
            control::Request::Destroy => {
                set_pending(&surface, false);
                with_object(&surface, |slot| *slot = None);
            }
            _ => {}
        }
    }
}
