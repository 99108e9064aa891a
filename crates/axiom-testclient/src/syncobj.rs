//! wp_linux_drm_syncobj_v1 (explicit sync) from the client side.

use std::os::fd::BorrowedFd;

use wayland_client::protocol::wl_surface::WlSurface;
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1,
    wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};

use crate::client::{State, TestClient};

/// A surface's explicit-sync object, and the timelines of its acquire and release points.
pub struct ExplicitSync {
    pub surface: WpLinuxDrmSyncobjSurfaceV1,
    pub acquire: WpLinuxDrmSyncobjTimelineV1,
    pub release: WpLinuxDrmSyncobjTimelineV1,
}

impl ExplicitSync {
    /// The next commit waits for `acquire` on the acquire timeline, and the compositor
    /// signals `release` on the release timeline once it no longer reads the buffer.
    pub fn set_points(&self, acquire: u64, release: u64) {
        self.surface.set_acquire_point(&self.acquire, (acquire >> 32) as u32, acquire as u32);
        self.surface.set_release_point(&self.release, (release >> 32) as u32, release as u32);
    }
}

impl TestClient {
    pub fn bind_syncobj(&mut self) -> anyhow::Result<WpLinuxDrmSyncobjManagerV1> {
        Ok(self.globals.bind(&self.qh, 1..=1, ())?)
    }

    /// Explicit sync for `surface`, with the timelines `acquire` and `release` (syncobj fds).
    pub fn explicit_sync(
        &mut self,
        surface: &WlSurface,
        acquire: BorrowedFd<'_>,
        release: BorrowedFd<'_>,
    ) -> anyhow::Result<ExplicitSync> {
        let manager = self.bind_syncobj()?;
        Ok(ExplicitSync {
            surface: manager.get_surface(surface, &self.qh, ()),
            acquire: manager.import_timeline(acquire, &self.qh, ()),
            release: manager.import_timeline(release, &self.qh, ()),
        })
    }
}

wayland_client::delegate_noop!(State: ignore WpLinuxDrmSyncobjManagerV1);
wayland_client::delegate_noop!(State: ignore WpLinuxDrmSyncobjSurfaceV1);
wayland_client::delegate_noop!(State: ignore WpLinuxDrmSyncobjTimelineV1);
