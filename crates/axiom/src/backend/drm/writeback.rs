//! Capture through the display's writeback connector, where the device has one
//! (vkms does; some embedded display engines do): the display hardware copies
//! what the CRTC shows, every plane blended as on screen, into a buffer of
//! ours. Screencopy takes it while planes show client buffers, so that it
//! returns what the display shows rather than a composition made for it.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use anyhow::Context;
use smithay::backend::drm::DrmDeviceFd;
use smithay::reexports::drm::buffer::{Buffer as _, DrmFourcc};
use smithay::reexports::drm::control::atomic::AtomicModeReq;
use smithay::reexports::drm::control::dumbbuffer::DumbBuffer;
use smithay::reexports::drm::control::{
    connector, crtc, framebuffer, property, AtomicCommitFlags, Device as ControlDevice,
};
use smithay::reexports::drm::{ClientCapability, Device as _};

/// How long the written frame may take after the commit (one refresh, with room).
const WRITE_LIMIT: Duration = Duration::from_millis(500);

pub struct Writeback {
    connector: connector::Handle,
    crtc: crtc::Handle,
    /// The connector's CRTC_ID, WRITEBACK_FB_ID and WRITEBACK_OUT_FENCE_PTR properties.
    crtc_id: property::Handle,
    fb_id: property::Handle,
    out_fence_ptr: property::Handle,
    buffer: DumbBuffer,
    fb: framebuffer::Handle,
}

/// One captured frame: XRGB8888 rows, `stride` bytes apart.
pub struct Captured {
    pub bytes: Vec<u8>,
    pub stride: usize,
}

impl Writeback {
    /// The writeback connector that can capture `crtc` (whose mode is `size`), with a
    /// buffer to write into; None where the device has none.
    pub fn find(fd: &DrmDeviceFd, crtc: crtc::Handle, size: (u32, u32)) -> Option<Self> {
        // Writeback connectors stay hidden from clients that do not ask for them.
        fd.set_client_capability(ClientCapability::WritebackConnectors, true).ok()?;
        let resources = fd.resource_handles().ok()?;
        let connector = resources.connectors().iter().copied().find(|&handle| {
            let Ok(info) = fd.get_connector(handle, false) else { return false };
            info.interface() == connector::Interface::Writeback
                && info.encoders().iter().any(|&encoder| {
                    fd.get_encoder(encoder).is_ok_and(|e| resources.filter_crtcs(e.possible_crtcs()).contains(&crtc))
                })
        })?;
        let props = property_handles(fd, connector).ok()?;
        let (crtc_id, fb_id, out_fence_ptr) =
            (*props.get("CRTC_ID")?, *props.get("WRITEBACK_FB_ID")?, *props.get("WRITEBACK_OUT_FENCE_PTR")?);
        let buffer = fd.create_dumb_buffer(size, DrmFourcc::Xrgb8888, 32).ok()?;
        let fb = match fd.add_framebuffer(&buffer, 24, 32) {
            Ok(fb) => fb,
            Err(_) => {
                let _ = fd.destroy_dumb_buffer(buffer);
                return None;
            }
        };
        Some(Self { connector, crtc, crtc_id, fb_id, out_fence_ptr, buffer, fb })
    }

    /// Writes back the CRTC's next frame, after any flip in flight, and returns it. Blocks
    /// the caller for a refresh or two.
    pub fn capture(&mut self, fd: &DrmDeviceFd) -> anyhow::Result<Captured> {
        let mut fence: i32 = -1;
        let mut request = AtomicModeReq::new();
        request.add_property(self.connector, self.crtc_id, property::Value::CRTC(Some(self.crtc)));
        request.add_property(self.connector, self.fb_id, property::Value::Framebuffer(Some(self.fb)));
        // The kernel writes the out-fence's fd through this pointer during the commit.
        let fence_ptr = std::ptr::addr_of_mut!(fence) as u64;
        request.add_property(self.connector, self.out_fence_ptr, property::Value::UnsignedRange(fence_ptr));
        // A blocking commit: it waits for the flip in flight, then for the frame it writes
        // back. Binding the connector to the CRTC the first time is a modeset.
        fd.atomic_commit(AtomicCommitFlags::ALLOW_MODESET, request).context("writeback commit")?;
        // SAFETY: `fence` is a live local; the kernel wrote it behind the compiler's back.
        let fence = unsafe { std::ptr::read_volatile(std::ptr::addr_of!(fence)) };
        anyhow::ensure!(fence >= 0, "the writeback commit returned no fence");
        // SAFETY: the kernel gave us this new sync-file fd, which we now own.
        let fence = unsafe { OwnedFd::from_raw_fd(fence) };
        anyhow::ensure!(
            crate::dmabuf::sync::signalled_within(&fence, WRITE_LIMIT),
            "the frame was not written back within {WRITE_LIMIT:?}"
        );
        let stride = self.buffer.pitch() as usize;
        let mapping = fd.map_dumb_buffer(&mut self.buffer).context("mapping the writeback buffer")?;
        Ok(Captured { bytes: mapping.to_vec(), stride })
    }

    pub fn destroy(self, fd: &DrmDeviceFd) {
        let _ = fd.destroy_framebuffer(self.fb);
        let _ = fd.destroy_dumb_buffer(self.buffer);
    }
}

/// The object's properties by name.
pub(super) fn property_handles(
    fd: &DrmDeviceFd,
    object: impl smithay::reexports::drm::control::ResourceHandle,
) -> std::io::Result<HashMap<String, property::Handle>> {
    let values = fd.get_properties(object)?;
    let names = values.as_hashmap(fd)?;
    Ok(names.into_iter().map(|(name, info)| (name, info.handle())).collect())
}
