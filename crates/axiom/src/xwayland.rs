//! Xwayland: X11 clients (glxgears, older toolkits) as windows. smithay starts
//! the Xwayland server as a Wayland client of ours and runs the X11 window
//! manager on the privileged connection it hands back; X11 windows then map
//! into the same space as xdg toplevels, centred like them.

use std::process::Stdio;

use smithay::desktop::Window;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Rectangle};
use smithay::wayland::selection::SelectionTarget;
use smithay::wayland::xwayland_shell::{XWaylandShellHandler, XWaylandShellState};
use smithay::xwayland::xwm::{Reorder, ResizeEdge, XwmId};
use smithay::xwayland::{X11Surface, X11Wm, XWayland, XWaylandEvent, XwmHandler};

use crate::Axiom;

/// Starts Xwayland; the window manager starts when it is ready, and its
/// display is logged as `Xwayland ready: DISPLAY=:N`.
pub fn start(state: &mut Axiom) -> anyhow::Result<()> {
    ensure_socket_dir();
    let (xwayland, client) = XWayland::spawn(
        &state.display_handle,
        None,
        std::iter::empty::<(String, String)>(),
        true,
        Stdio::null(),
        Stdio::null(),
        |_| (),
    )?;
    let token = state
        .loop_handle
        .insert_source(xwayland, move |event, _, state| match event {
            XWaylandEvent::Ready { x11_socket, display_number } => {
                match X11Wm::start_wm(state.loop_handle.clone(), x11_socket, client.clone()) {
                    Ok(wm) => {
                        state.xwm = Some(wm);
                        state.xwayland_client = Some(client.clone());
                        tracing::info!("Xwayland ready: DISPLAY=:{display_number}");
                        state.announce_ready(Some(display_number));
                    }
                    Err(err) => {
                        tracing::warn!("Xwayland started but its window manager did not: {err}");
                        state.announce_ready(None);
                    }
                }
            }
            XWaylandEvent::Error => {
                tracing::warn!("Xwayland exited during start-up");
                state.announce_ready(None);
            }
        })
        .map_err(|e| anyhow::anyhow!("Xwayland source: {e}"))?;
    state.xwayland_source = Some(token);
    Ok(())
}

/// Stops Xwayland: dropping smithay's source closes its Wayland connection, so the
/// server exits, and removes its X11 socket and lock.
pub fn stop(state: &mut Axiom) {
    state.xwm = None;
    if let Some(token) = state.xwayland_source.take() {
        state.loop_handle.remove(token);
    }
}

/// X servers listen in /tmp/.X11-unix, which a desktop's boot creates (mode
/// 1777); a bare container may not have it.
fn ensure_socket_dir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::path::Path::new("/tmp/.X11-unix");
    if dir.is_dir() {
        return;
    }
    let created = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)));
    if let Err(err) = created {
        tracing::debug!("cannot create {}: {err}", dir.display());
    }
}

impl Axiom {
    fn x11_window(&self, surface: &X11Surface) -> Option<Window> {
        self.space.elements().find(|w| w.x11_surface() == Some(surface)).cloned()
    }
}

impl XWaylandShellHandler for Axiom {
    fn xwayland_shell_state(&mut self) -> &mut XWaylandShellState {
        &mut self.xwayland_shell_state
    }
}

smithay::delegate_xwayland_shell!(Axiom);

impl XwmHandler for Axiom {
    fn xwm_state(&mut self, _xwm: XwmId) -> &mut X11Wm {
        // Only called from the window manager's own events, which exist once it runs.
        self.xwm.as_mut().expect("the X11 window manager runs")
    }

    fn new_window(&mut self, _xwm: XwmId, _window: X11Surface) {}

    fn new_override_redirect_window(&mut self, _xwm: XwmId, _window: X11Surface) {}

    fn map_window_request(&mut self, _xwm: XwmId, surface: X11Surface) {
        if let Err(err) = surface.set_mapped(true) {
            tracing::debug!("X11 window gone before it mapped: {err}");
            return;
        }
        let (location, size) = match self.kiosk {
            true => {
                let area = self.primary_area();
                if let Err(err) = surface.set_fullscreen(true) {
                    tracing::debug!("X11 window gone before it went fullscreen: {err}");
                }
                (area.loc, area.size)
            }
            false => {
                let size = surface.geometry().size;
                (self.new_window_location(size), size)
            }
        };
        if let Err(err) = surface.configure(Rectangle::new(location, size)) {
            tracing::debug!("X11 window gone before its configure: {err}");
        }
        self.space.map_element(Window::new_x11_window(surface.clone()), location, true);
        tracing::info!(class = %surface.class(), x = location.x, y = location.y, w = size.w, h = size.h, "X11 window mapped");
        self.schedule_repaint();
    }

    fn mapped_override_redirect_window(&mut self, _xwm: XwmId, surface: X11Surface) {
        let location = surface.geometry().loc;
        self.space.map_element(Window::new_x11_window(surface), location, true);
        self.schedule_repaint();
    }

    fn unmapped_window(&mut self, _xwm: XwmId, surface: X11Surface) {
        if let Some(window) = self.x11_window(&surface) {
            self.space.unmap_elem(&window);
        }
        if !surface.is_override_redirect() {
            let _ = surface.set_mapped(false);
        }
        self.schedule_repaint();
    }

    fn destroyed_window(&mut self, _xwm: XwmId, _surface: X11Surface) {}

    fn configure_request(
        &mut self,
        _xwm: XwmId,
        surface: X11Surface,
        _x: Option<i32>,
        _y: Option<i32>,
        w: Option<u32>,
        h: Option<u32>,
        _reorder: Option<Reorder>,
    ) {
        // Windows pick their size, not their place (as for Wayland toplevels); a kiosk's fill the output.
        if self.kiosk && !surface.is_override_redirect() {
            let _ = surface.configure(self.primary_area());
            return;
        }
        let mut geometry = surface.geometry();
        if let Some(w) = w {
            geometry.size.w = i32::try_from(w).unwrap_or(i32::MAX).min(1 << 20);
        }
        if let Some(h) = h {
            geometry.size.h = i32::try_from(h).unwrap_or(i32::MAX).min(1 << 20);
        }
        let _ = surface.configure(geometry);
    }

    fn configure_notify(
        &mut self,
        _xwm: XwmId,
        surface: X11Surface,
        geometry: Rectangle<i32, Logical>,
        _above: Option<u32>,
    ) {
        if let Some(window) = self.x11_window(&surface) {
            self.space.map_element(window, geometry.loc, false);
            self.schedule_repaint();
        }
    }

    fn resize_request(&mut self, _xwm: XwmId, _surface: X11Surface, _button: u32, _edge: ResizeEdge) {}

    fn move_request(&mut self, _xwm: XwmId, _surface: X11Surface, _button: u32) {}

    fn send_selection(
        &mut self,
        _xwm: XwmId,
        _selection: SelectionTarget,
        _mime_type: String,
        _fd: std::os::fd::OwnedFd,
    ) {
    }
}

/// The surface an X11 window draws into, once Xwayland has associated one.
pub fn wl_surface_of(window: &Window) -> Option<WlSurface> {
    let legacy = || window.user_data().get::<LegacySurface>().and_then(|s| s.0.lock().ok()?.clone());
    window.x11_surface().and_then(X11Surface::wl_surface).or_else(legacy)
}

/// The wl_surface of an X11 window, matched by the id Xwayland before 23.1 sends
/// (WL_SURFACE_ID) instead of the xwayland-shell serial smithay matches itself.
#[derive(Default)]
struct LegacySurface(std::sync::Mutex<Option<WlSurface>>);

impl Axiom {
    /// Matches X11 windows that have no wl_surface yet with the surface Xwayland named.
    pub fn associate_x11_surfaces(&mut self) {
        let Some(client) = self.xwayland_client.clone() else { return };
        let mut associated = false;
        for window in self.space.elements() {
            let Some(x11) = window.x11_surface() else { continue };
            if wl_surface_of(window).is_some() {
                continue;
            }
            #[allow(deprecated)] // the only way with Xwayland 22 (Debian 12's)
            let Some(id) = x11.wl_surface_id() else {
                continue;
            };
            let Ok(surface) = client.object_from_protocol_id::<WlSurface>(&self.display_handle, id) else { continue };
            window.user_data().insert_if_missing_threadsafe(LegacySurface::default);
            if let Some(slot) = window.user_data().get::<LegacySurface>() {
                if let Ok(mut slot) = slot.0.lock() {
                    *slot = Some(surface);
                    associated = true;
                }
            }
        }
        if associated {
            self.schedule_repaint();
        }
    }
}
