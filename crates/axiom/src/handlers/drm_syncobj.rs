//! Explicit synchronisation: wp_linux_drm_syncobj_manager_v1 (smithay's
//! drm_syncobj, which checks the protocol's errors and signals a buffer's
//! release point when the last `Buffer` handle of it goes: no texture read in
//! place, no frame on the GPU, no plane holds it any more).
//!
//! Offered only with a DRM device that imports timelines and waits on their
//! points with an eventfd (the KMS device); headless there is none. A commit
//! whose acquire point is not signalled yet is held, watched by an eventfd in
//! the event loop: the surface keeps showing its previous buffer and nobody
//! waits. Each held commit's eventfd counts against its client's fd limit, and
//! goes with its surface.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use smithay::backend::drm::DrmDeviceFd;
use smithay::delegate_drm_syncobj;
use smithay::reexports::calloop::RegistrationToken;
use smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_surface_v1::{
    Error, WpLinuxDrmSyncobjSurfaceV1,
};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Resource;
use smithay::wayland::compositor::{
    self, add_destruction_hook, with_states, BufferAssignment, CompositorHandler, SurfaceAttributes,
};
use smithay::wayland::drm_syncobj::{
    supports_syncobj_eventfd, DrmSyncobjCachedState, DrmSyncobjHandler, DrmSyncobjState,
};

use crate::Axiom;

impl DrmSyncobjHandler for Axiom {
    fn drm_syncobj_state(&mut self) -> Option<&mut DrmSyncobjState> {
        self.drm_syncobj_state.as_mut()
    }
}

delegate_drm_syncobj!(Axiom);

impl Axiom {
    /// Offers explicit sync with timelines imported into `device` (at `path`), where it
    /// can wait on their points with an eventfd; says in the log which.
    pub fn offer_explicit_sync(&mut self, device: &DrmDeviceFd, path: &str) {
        if !supports_syncobj_eventfd(device) {
            tracing::info!("explicit sync (wp_linux_drm_syncobj_manager_v1): not offered: {path} has no timeline syncobjs with eventfd waits");
            return;
        }
        match &mut self.drm_syncobj_state {
            Some(state) => state.update_device(device.clone()),
            None => self.drm_syncobj_state = Some(DrmSyncobjState::new::<Axiom>(&self.display_handle, device.clone())),
        }
        tracing::info!("explicit sync (wp_linux_drm_syncobj_manager_v1): offered, timelines imported into {path}");
    }

    /// The DRM device goes: so does explicit sync (its global, and the device's fd it held).
    pub fn withdraw_explicit_sync(&mut self) {
        if let Some(state) = self.drm_syncobj_state.take() {
            self.display_handle.remove_global::<Axiom>(state.into_global());
            tracing::info!("explicit sync (wp_linux_drm_syncobj_manager_v1): withdrawn with the DRM device");
        }
    }
}

/// The event sources of a surface's commits held for their acquire points, by a
/// number of their own: removed with the surface, so that a point never signalled
/// leaves nothing behind.
#[derive(Default)]
struct HeldAcquires(Mutex<Vec<(u64, RegistrationToken)>>);

static NEXT_HELD: AtomicU64 = AtomicU64::new(0);

fn with_held<T>(surface: &WlSurface, f: impl FnOnce(&mut Vec<(u64, RegistrationToken)>) -> T) -> T {
    with_states(surface, |states| {
        states.data_map.insert_if_missing_threadsafe(HeldAcquires::default);
        let held = states.data_map.get::<HeldAcquires>().expect("inserted just above");
        let mut tokens = held.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut tokens)
    })
}

/// Whether the commit being made on `surface` carries an acquire point: then its
/// buffer's implicit fences are not waited on (the protocol says to ignore them).
pub fn has_acquire_point(surface: &WlSurface) -> bool {
    with_states(surface, |states| states.cached_state.get::<DrmSyncobjCachedState>().pending().acquire_point.is_some())
}

/// Holds the commit being made on `surface` until its acquire point is signalled,
/// where it is not yet. Call from a pre-commit hook.
pub fn hold_commit_for_acquire_point(state: &mut Axiom, surface: &WlSurface) {
    if !buffer_has_points(surface) {
        return;
    }
    let point = with_states(surface, |states| {
        states.cached_state.get::<DrmSyncobjCachedState>().pending().acquire_point.clone()
    });
    let (Some(point), Some(client)) = (point, surface.client()) else { return };
    if smithay::backend::renderer::sync::Fence::is_signaled(&point) {
        return;
    }
    let Some(usage) = crate::limits::usage(&client) else { return };
    let charge = match usage.charge_fd(&state.limits) {
        Ok(charge) => charge,
        Err(exceeded) => return crate::limits::disconnect(&state.display_handle, &client, &exceeded),
    };
    let (blocker, source) = match point.generate_blocker() {
        Ok(pair) => pair,
        Err(err) => {
            // The commit goes through unheld: the point's wait would fail the same way later.
            tracing::warn!("explicit sync: cannot wait on an acquire point: {err}");
            return;
        }
    };
    let id = NEXT_HELD.fetch_add(1, Ordering::Relaxed);
    let held = surface.downgrade();
    let inserted = state.loop_handle.insert_source(source, move |_, _, state| {
        // The eventfd is closed with this source: the client's fd goes back with it.
        let _fd = &charge;
        if let Ok(surface) = held.upgrade() {
            with_held(&surface, |tokens| tokens.retain(|(held, _)| *held != id));
        }
        let dh = state.display_handle.clone();
        state.client_compositor_state(&client).blocker_cleared(state, &dh);
        Ok(())
    });
    match inserted {
        Ok(token) => {
            with_held(surface, |tokens| tokens.push((id, token)));
            remove_held_on_destruction(surface);
            compositor::add_blocker(surface, blocker);
            state.dmabuf_state.stats.held_acquires += 1;
        }
        Err(err) => tracing::warn!("explicit sync: cannot watch an acquire point: {err}"),
    }
}

/// smithay 0.7 checks every error of the points but one: on a surface with explicit
/// sync, a buffer attached with no point at all is `no_acquire_point`. False then.
fn buffer_has_points(surface: &WlSurface) -> bool {
    with_states(surface, |states| {
        let object = states.data_map.get::<RefCell<Option<WpLinuxDrmSyncobjSurfaceV1>>>();
        let Some(object) = object.and_then(|o| o.borrow().clone()) else { return true };
        let new_buffer = matches!(
            states.cached_state.get::<SurfaceAttributes>().pending().buffer,
            Some(BufferAssignment::NewBuffer(_))
        );
        let mut points = states.cached_state.get::<DrmSyncobjCachedState>();
        let points = points.pending();
        if new_buffer && points.acquire_point.is_none() && points.release_point.is_none() {
            object.post_error(Error::NoAcquirePoint, "a buffer committed without an acquire point");
            return false;
        }
        true
    })
}

/// Once per surface: when it is destroyed, the sources of its commits still held go.
fn remove_held_on_destruction(surface: &WlSurface) {
    struct Hooked;
    if !with_states(surface, |states| states.data_map.insert_if_missing_threadsafe(|| Hooked)) {
        return;
    }
    add_destruction_hook::<Axiom, _>(surface, |state, surface| {
        for (_, token) in with_held(surface, std::mem::take) {
            state.loop_handle.remove(token);
        }
    });
}
