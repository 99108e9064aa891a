//! Connector hotplug, seen through udev: when the output's connector goes away,
//! its CRTC is turned off and frames stop going to it (clients keep running);
//! when it comes back, the next frame sets the mode again.

use smithay::backend::udev::{UdevBackend, UdevEvent};
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::drm::control::{connector, Device as _};

use crate::Axiom;

/// Watches udev for changes of the KMS device `device_id`: the kernel reports a
/// connector plugged or unplugged as a change of its device.
pub fn watch(handle: &LoopHandle<'static, Axiom>, seat: &str, device_id: u64) {
    let udev = match UdevBackend::new(seat) {
        Ok(udev) => udev,
        Err(err) => {
            tracing::warn!("no udev monitor ({err}): connectors plugged or unplugged go unseen");
            return;
        }
    };
    let inserted = handle.insert_source(udev, move |event, _, state| {
        if matches!(event, UdevEvent::Changed { device_id: changed } if changed == device_id) {
            state.on_kms_hotplug();
        }
    });
    if let Err(err) = inserted {
        tracing::warn!("udev monitor: {err}");
    }
}

impl Axiom {
    /// The KMS device changed: the output's connector may have gone or come back.
    fn on_kms_hotplug(&mut self) {
        let Some(kms) = self.kms.as_mut() else { return };
        let connected =
            kms.fd.get_connector(kms.connector, true).is_ok_and(|info| info.state() == connector::State::Connected);
        if connected == kms.connected {
            return;
        }
        kms.connected = connected;
        if connected {
            tracing::info!("KMS: {} connected again: the next frame sets its mode", kms.name);
            self.renderer.forget_frame();
            self.schedule_repaint();
        } else {
            tracing::info!("KMS: {} disconnected: its CRTC is off until it comes back", kms.name);
            kms.turn_off();
        }
    }
}
