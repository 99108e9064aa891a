//! Asynchronous page flips for a client buffer on the primary plane whose surface
//! asks to tear (wp_tearing_control_v1): the display switches to it at once rather
//! than at the next vblank. Through the atomic API that takes a kernel that reports
//! DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP (6.8 and later, where the driver has them) and a
//! commit that changes nothing but the primary plane's FB_ID; anything else flips at
//! vblank, and the log says why, once per output.

use smithay::backend::drm::DrmDeviceFd;
use smithay::reexports::drm::control::{
    atomic::AtomicModeReq, framebuffer, plane, property, AtomicCommitFlags, Device as ControlDevice,
};
use smithay::reexports::drm::{Device as _, DriverCapability};

pub struct AsyncFlips {
    /// The primary plane's FB_ID property, where the device takes asynchronous flips.
    fb_id: Option<property::Handle>,
    /// Why not, where it does not.
    missing: Option<String>,
    /// Why surfaces that asked to tear got vsync, each logged once.
    told: Vec<&'static str>,
}

impl AsyncFlips {
    pub fn probe(fd: &DrmDeviceFd, primary: plane::Handle) -> Self {
        let capable = fd.get_driver_capability(DriverCapability::AtomicASyncPageFlip).unwrap_or(0) == 1;
        let fb_id =
            capable.then(|| super::writeback::property_handles(fd, primary).ok()?.get("FB_ID").copied()).flatten();
        let missing = match (capable, fb_id) {
            (true, Some(_)) => None,
            (true, None) => Some("its primary plane has no FB_ID property".to_string()),
            (false, _) => Some("the driver reports no DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP".to_string()),
        };
        Self { fb_id, missing, told: Vec::new() }
    }

    /// Whether the device takes asynchronous flips at all.
    pub fn available(&self) -> bool {
        self.fb_id.is_some()
    }

    /// Queues an asynchronous flip of the primary plane to `fb`, with a flip event. False
    /// (logged once) where the device has none or refused this one: flip at vblank then.
    pub fn flip(&mut self, fd: &DrmDeviceFd, primary: plane::Handle, fb: framebuffer::Handle, output: &str) -> bool {
        let Some(fb_id) = self.fb_id else {
            let why = self.missing.clone().unwrap_or_default();
            self.vsync_instead(output, "device", &why);
            return false;
        };
        let mut request = AtomicModeReq::new();
        request.add_property(primary, fb_id, property::Value::Framebuffer(Some(fb)));
        let flags =
            AtomicCommitFlags::PAGE_FLIP_ASYNC | AtomicCommitFlags::PAGE_FLIP_EVENT | AtomicCommitFlags::NONBLOCK;
        match fd.atomic_commit(flags, request) {
            Ok(()) => true,
            // Drivers refuse some (a framebuffer in another memory domain, say): that frame waits.
            Err(err) => {
                let why = format!("the driver refused an asynchronous flip: {err}");
                self.vsync_instead(output, "refused", &why);
                false
            }
        }
    }

    /// A surface asked for tearing and gets vsync: says why, once per kind of reason.
    pub fn vsync_instead(&mut self, output: &str, kind: &'static str, why: &str) {
        if !self.told.contains(&kind) {
            self.told.push(kind);
            tracing::info!("KMS: {output}: a surface asks to tear; its frames flip at vblank: {why}");
        }
    }
}
