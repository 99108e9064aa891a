//! Explicit synchronisation: wp_linux_drm_syncobj_manager_v1 (smithay's
//! drm_syncobj, which checks the protocol's errors and signals a buffer's
//! release point when the last `Buffer` handle of it goes: no texture read in
//! place, no frame on the GPU, no plane holds it any more).
//!
//! Offered only with a DRM device that imports timelines and waits on their
//! points with an eventfd (the KMS device); headless there is none. A commit
//! whose acquire point is not signalled yet is held, watched by an eventfd in
//! the event loop: the surface keeps showing its previous buffer and nobody
//! waits. Each timeline (its syncobj's fd) and each held commit's eventfd
//! count against the client's fd limit; a held commit's watch goes with its
//! surface. Timelines live in DRM files of our own, replaced as timelines go
//! (`timeline_files.rs`), because smithay never destroys their handles.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smithay::backend::drm::DrmDeviceFd;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::RegistrationToken;
use smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::{
    wp_linux_drm_syncobj_manager_v1::{self as manager, WpLinuxDrmSyncobjManagerV1},
    wp_linux_drm_syncobj_surface_v1::{Error, WpLinuxDrmSyncobjSurfaceV1},
    wp_linux_drm_syncobj_timeline_v1::{self as timeline, WpLinuxDrmSyncobjTimelineV1},
};
use smithay::reexports::wayland_server::backend::ClientId;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{delegate_dispatch, delegate_global_dispatch};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, Resource};
use smithay::wayland::compositor::{
    self, add_destruction_hook, with_states, Blocker, BlockerState, BufferAssignment, CompositorHandler,
    SurfaceAttributes,
};
use smithay::wayland::drm_syncobj::{
    supports_syncobj_eventfd, DrmSyncPointBlocker, DrmSyncobjCachedState, DrmSyncobjGlobalData, DrmSyncobjHandler,
    DrmSyncobjState, DrmSyncobjSurfaceData, DrmSyncobjTimelineData,
};

use super::timeline_files::TimelineFiles;
use crate::Axiom;

impl DrmSyncobjHandler for Axiom {
    fn drm_syncobj_state(&mut self) -> Option<&mut DrmSyncobjState> {
        self.drm_syncobj_state.as_mut()
    }
}

// smithay's, but for the manager (a timeline holds its syncobj's fd, charged to its
// client) and the timeline (its handle goes with the DRM file it lives in).
delegate_global_dispatch!(Axiom: [WpLinuxDrmSyncobjManagerV1: DrmSyncobjGlobalData] => DrmSyncobjState);
delegate_dispatch!(Axiom: [WpLinuxDrmSyncobjSurfaceV1: DrmSyncobjSurfaceData] => DrmSyncobjState);

impl Dispatch<WpLinuxDrmSyncobjManagerV1, ()> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &WpLinuxDrmSyncobjManagerV1,
        request: manager::Request,
        data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let (timeline, received) = match &request {
            manager::Request::ImportTimeline { id, fd } => {
                (super::new_object_protocol_id(id), fd.try_clone().ok().map(|dup| (fd.as_raw_fd(), dup)))
            }
            _ => (None, None),
        };
        <DrmSyncobjState as Dispatch<WpLinuxDrmSyncobjManagerV1, (), Self>>::request(
            state, client, resource, request, data, dh, data_init,
        );
        let Some(timeline) =
            timeline.and_then(|id| client.object_from_protocol_id::<WpLinuxDrmSyncobjTimelineV1>(dh, id).ok())
        else {
            return;
        };
        if let (Some(files), Some((number, dup))) = (&mut state.timeline_files, received) {
            files.imported(timeline.id(), number, dup);
        }
        if let Some(usage) = crate::limits::usage(client) {
            if let Err(exceeded) = usage.add_timeline(&state.limits, &timeline) {
                crate::limits::disconnect(dh, client, &exceeded);
            }
        }
    }
}

impl Dispatch<WpLinuxDrmSyncobjTimelineV1, DrmSyncobjTimelineData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &WpLinuxDrmSyncobjTimelineV1,
        request: timeline::Request,
        data: &DrmSyncobjTimelineData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        <DrmSyncobjState as Dispatch<WpLinuxDrmSyncobjTimelineV1, DrmSyncobjTimelineData, Self>>::request(
            state, client, resource, request, data, dh, data_init,
        );
    }

    fn destroyed(
        state: &mut Self,
        client: ClientId,
        resource: &WpLinuxDrmSyncobjTimelineV1,
        data: &DrmSyncobjTimelineData,
    ) {
        let rotate = state.timeline_files.as_mut().is_some_and(|files| files.destroying(&resource.id()));
        <DrmSyncobjState as Dispatch<WpLinuxDrmSyncobjTimelineV1, DrmSyncobjTimelineData, Self>>::destroyed(
            state, client, resource, data,
        );
        if rotate {
            state.rotate_timeline_files();
        }
    }
}

impl Axiom {
    /// Offers explicit sync with timelines imported into `device` (at `path`), where it
    /// can wait on their points with an eventfd; says in the log which.
    pub fn offer_explicit_sync(&mut self, device: &DrmDeviceFd, path: &str) {
        if !supports_syncobj_eventfd(device) {
            tracing::info!("explicit sync (wp_linux_drm_syncobj_manager_v1): not offered: {path} has no timeline syncobjs with eventfd waits");
            return;
        }
        // Another device: what was imported into the last one goes with it.
        if self.drm_syncobj_state.is_some() {
            self.withdraw_explicit_sync();
        }
        self.timeline_files = match TimelineFiles::open(device, path) {
            Ok(files) => Some(files),
            Err(err) => {
                tracing::warn!(
                    "explicit sync: timelines go into {path}'s own file, their handles kept until it closes: {err}"
                );
                None
            }
        };
        let import = self.timeline_files.as_ref().map_or(device, TimelineFiles::device).clone();
        self.drm_syncobj_state = Some(DrmSyncobjState::new::<Axiom>(&self.display_handle, import));
        tracing::info!("explicit sync (wp_linux_drm_syncobj_manager_v1): offered, timelines imported into {path}");
    }

    /// A fresh DRM file takes the live timelines over; the older closes once no
    /// destroyed timeline in it is used (checked each second until it is).
    fn rotate_timeline_files(&mut self) {
        // A primary node opened while the session is away could become its master.
        let away = self.backend.kms().is_some_and(|kms| !kms.is_active());
        let (Some(sync), Some(files)) = (&mut self.drm_syncobj_state, &mut self.timeline_files) else { return };
        if away && files.opens_primary_node() {
            return;
        }
        match files.rotate() {
            Ok(fresh) => {
                sync.update_device(fresh);
                files.check_moved();
            }
            Err(err) => tracing::warn!("explicit sync: cannot open a fresh DRM file for timelines: {err}"),
        }
        if files.sweep() && !files.sweeping {
            files.sweeping = true;
            let timer = Timer::from_duration(Duration::from_secs(1));
            let inserted = self.loop_handle.insert_source(timer, |_, _, state| {
                let Some(files) = &mut state.timeline_files else { return TimeoutAction::Drop };
                files.sweeping = files.sweep();
                match files.sweeping {
                    true => TimeoutAction::ToDuration(Duration::from_secs(1)),
                    false => TimeoutAction::Drop,
                }
            });
            if let Err(err) = inserted {
                files.sweeping = false;
                tracing::warn!("explicit sync: cannot schedule closing older timeline files: {err}");
            }
        }
    }

    /// The DRM device goes: so does explicit sync, and the device's fd it held. The
    /// global is disabled at once and removed a little later, so that a client binding it
    /// meanwhile is not cut off. Timelines imported until now stop working.
    pub fn withdraw_explicit_sync(&mut self) {
        let Some(state) = self.drm_syncobj_state.take() else { return };
        let global = state.into_global();
        // Invalidated with the global: nothing signals through these files any more.
        self.timeline_files = None;
        self.display_handle.disable_global::<Axiom>(global.clone());
        let removal = Timer::from_duration(Duration::from_secs(5));
        let inserted = self.loop_handle.insert_source(removal, move |_, _, state| {
            state.display_handle.remove_global::<Axiom>(global.clone());
            TimeoutAction::Drop
        });
        if let Err(err) = inserted {
            tracing::warn!("explicit sync: cannot schedule the global's removal: {err}");
        }
        tracing::info!("explicit sync (wp_linux_drm_syncobj_manager_v1): withdrawn with the DRM device");
    }
}

/// A commit's acquire point, or its surface gone: a synchronised subsurface's commit
/// is merged into its parent's, which would otherwise wait for ever on a point whose
/// watch went with the subsurface.
struct AcquireBlocker {
    point: DrmSyncPointBlocker,
    surface_gone: Arc<AtomicBool>,
}

impl Blocker for AcquireBlocker {
    fn state(&self) -> BlockerState {
        match self.surface_gone.load(Ordering::Acquire) {
            true => BlockerState::Released,
            false => self.point.state(),
        }
    }
}

/// A commit held for its acquire point: its number, the event source watching the
/// point, and the flag its blocker reads when the surface goes.
struct Held {
    id: u64,
    token: RegistrationToken,
    surface_gone: Arc<AtomicBool>,
}

/// A surface's commits held for their acquire points: their watches are removed
/// with the surface, so that a point never signalled leaves nothing behind.
#[derive(Default)]
struct HeldAcquires(Mutex<Vec<Held>>);

static NEXT_HELD: AtomicU64 = AtomicU64::new(0);

fn with_held<T>(surface: &WlSurface, f: impl FnOnce(&mut Vec<Held>) -> T) -> T {
    with_states(surface, |states| {
        states.data_map.insert_if_missing_threadsafe(HeldAcquires::default);
        let held = states.data_map.get::<HeldAcquires>().expect("inserted just above");
        let mut held = held.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut held)
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
    // Xwayland's client carries no usage of ours: its watches go uncharged.
    let charge = match crate::limits::usage(&client).map(|usage| usage.charge_fd(&state.limits)) {
        Some(Err(exceeded)) => return crate::limits::disconnect(&state.display_handle, &client, &exceeded),
        Some(Ok(charge)) => Some(charge),
        None => None,
    };
    let (point_blocker, source) = match point.generate_blocker() {
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
            with_held(&surface, |held| held.retain(|h| h.id != id));
        }
        let dh = state.display_handle.clone();
        state.client_compositor_state(&client).blocker_cleared(state, &dh);
        Ok(())
    });
    match inserted {
        Ok(token) => {
            let surface_gone = Arc::new(AtomicBool::new(false));
            with_held(surface, |held| held.push(Held { id, token, surface_gone: surface_gone.clone() }));
            remove_held_on_destruction(surface);
            compositor::add_blocker(surface, AcquireBlocker { point: point_blocker, surface_gone });
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

/// Once per surface: when it is destroyed, the watches of its commits still held go,
/// and what waited on them (a parent's commit) is let go.
fn remove_held_on_destruction(surface: &WlSurface) {
    struct Hooked;
    if !with_states(surface, |states| states.data_map.insert_if_missing_threadsafe(|| Hooked)) {
        return;
    }
    add_destruction_hook::<Axiom, _>(surface, |state, surface| {
        let held = with_held(surface, std::mem::take);
        if held.is_empty() {
            return;
        }
        for held in held {
            held.surface_gone.store(true, Ordering::Release);
            state.loop_handle.remove(held.token);
        }
        // Not from inside the surface's destruction: once it is done.
        let Some(client) = surface.client() else { return };
        state.loop_handle.insert_idle(move |state| {
            let dh = state.display_handle.clone();
            state.client_compositor_state(&client).blocker_cleared(state, &dh);
        });
    });
}
