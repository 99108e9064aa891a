//! ext_foreign_toplevel_list_v1 (smithay's): a handle for each mapped window (xdg
//! toplevel or X11), with its title and app id, closed once it is unmapped. Capture
//! clients name the window they capture by its handle (`image_copy_capture.rs`).

use smithay::desktop::Window;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{DisplayHandle, Resource};
use smithay::utils::IsAlive;
use smithay::utils::{Physical, Rectangle};
use smithay::wayland::compositor::with_states;
use smithay::wayland::foreign_toplevel_list::{
    ForeignToplevelHandle, ForeignToplevelListHandler, ForeignToplevelListState,
};
use smithay::wayland::shell::xdg::XdgToplevelSurfaceData;

use crate::Axiom;

pub struct ForeignToplevels {
    state: ForeignToplevelListState,
    /// Each mapped window with its handle.
    handles: Vec<(Window, ForeignToplevelHandle)>,
}

/// A handle's window: the id of its toplevel surface, as the scene's draws name it.
struct WindowSurface(ObjectId);

impl ForeignToplevels {
    pub fn new(dh: &DisplayHandle) -> Self {
        Self { state: ForeignToplevelListState::new::<Axiom>(dh), handles: Vec::new() }
    }
}

impl ForeignToplevelListHandler for Axiom {
    fn foreign_toplevel_list_state(&mut self) -> &mut ForeignToplevelListState {
        &mut self.foreign_toplevels.state
    }
}

smithay::delegate_foreign_toplevel_list!(Axiom);

impl Axiom {
    /// Brings the handles up to the mapped windows: new ones announced, changed titles
    /// and app ids sent, unmapped ones closed.
    pub fn sync_foreign_toplevels(&mut self) {
        let mapped: Vec<Window> = self.space.elements().cloned().collect();
        let list = &mut self.foreign_toplevels;
        list.handles.retain(|(window, handle)| {
            let keep = mapped.contains(window) && window.alive();
            if !keep {
                list.state.remove_toplevel(handle);
            }
            keep
        });
        // An X11 override-redirect window (a menu, a tooltip) is no toplevel.
        let toplevels = mapped.into_iter().filter(|w| w.x11_surface().is_none_or(|x| !x.is_override_redirect()));
        for window in toplevels {
            let Some(surface) = toplevel_surface(&window) else { continue };
            let (title, app_id) = title_and_app_id(&window, &surface);
            match list.handles.iter().find(|(w, _)| *w == window) {
                Some((_, handle)) => {
                    if handle.title() != title || handle.app_id() != app_id {
                        handle.send_title(&title);
                        handle.send_app_id(&app_id);
                        handle.send_done();
                    }
                }
                None => {
                    let handle = list.state.new_toplevel::<Axiom>(title, app_id);
                    handle.user_data().insert_if_missing_threadsafe(|| WindowSurface(surface.id()));
                    list.handles.push((window, handle));
                }
            }
        }
    }

    /// The window `handle` names while it is mapped: its toplevel surface's id and
    /// where its geometry lies on the canvas (canvas pixels).
    pub fn toplevel_area(&self, handle: &ForeignToplevelHandle) -> Option<(ObjectId, Rectangle<i32, Physical>)> {
        if handle.is_closed() {
            return None;
        }
        // Each handle's identifier is its own.
        let id = handle.identifier();
        let (window, _) = self.foreign_toplevels.handles.iter().find(|(_, h)| h.identifier() == id)?;
        let surface = handle.user_data().get::<WindowSurface>()?.0.clone();
        let location = self.space.element_location(window)?;
        let scale = self.renderer.canvas_scale;
        // Edges rounded as the window's quads are (`render/compose.rs`), each on its own.
        let origin = location.to_f64().to_physical(scale).to_i32_round();
        let end = (location + window.geometry().size).to_f64().to_physical(scale).to_i32_round::<i32>();
        Some((surface, Rectangle::new(origin, (end.x - origin.x, end.y - origin.y).into())))
    }
}

/// An xdg toplevel's surface, or an X11 window's once Xwayland gave it one.
fn toplevel_surface(window: &Window) -> Option<WlSurface> {
    window.toplevel().map(|t| t.wl_surface().clone()).or_else(|| crate::xwayland::wl_surface_of(window))
}

fn title_and_app_id(window: &Window, surface: &WlSurface) -> (String, String) {
    if let Some(x11) = window.x11_surface() {
        return (x11.title(), x11.class());
    }
    with_states(surface, |states| {
        let data = states.data_map.get::<XdgToplevelSurfaceData>();
        let data = data.map(|d| d.lock().unwrap_or_else(|e| e.into_inner()));
        let title = data.as_ref().and_then(|d| d.title.clone()).unwrap_or_default();
        let app_id = data.as_ref().and_then(|d| d.app_id.clone()).unwrap_or_default();
        (title, app_id)
    })
}
