//! Connector hotplug, seen through udev. A connector plugged in gets an output
//! of its own at its preferred mode, to the right of the others; one unplugged
//! loses its output (its CRTC turned off, its wl_output global removed, its
//! windows moved to the primary output), except the last one, which stays, dark,
//! so that clients keep an output; one plugged back with another preferred mode
//! is driven at that mode. When the device itself goes (unplugged, its driver
//! unbound), the backend hands it back to the seat and clients keep running
//! without a display, until a KMS device with a connected connector is added or
//! changed (a connector plugged into a device that had none connected): it is
//! driven as at start-up.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use smithay::backend::session::libseat::LibSeatSession;
use smithay::backend::udev::{UdevBackend, UdevEvent};
use smithay::output::Output;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::drm::control::{connector, Device as _, Mode};
use smithay::reexports::wayland_server::backend::GlobalId;

use super::{chosen_mode, connected_outputs, kms_device_paths, open_with_connected, ConnectedOutput, KmsOutput};
use crate::Axiom;

/// How long a removed output's global stays disabled before it is destroyed, so that
/// clients binding it meanwhile do not get a protocol error.
const GLOBAL_GRACE: Duration = Duration::from_secs(5);

/// Watches udev for the KMS devices of `seat`: the kernel reports a connector
/// plugged or unplugged as a change of its device. While no device is driven (the
/// last one went), a device added or changed is driven if a connector of it is
/// connected.
pub fn watch(handle: &LoopHandle<'static, Axiom>, mut session: LibSeatSession, seat: &str, direct_scanout: bool) {
    let udev = match UdevBackend::new(seat) {
        Ok(udev) => udev,
        Err(err) => {
            tracing::warn!("no udev monitor ({err}): connectors plugged or unplugged go unseen");
            return;
        }
    };
    let seat = seat.to_owned();
    let inserted = handle.insert_source(udev, move |event, _, state| {
        // The driven device's number, as udev names devices.
        let driven = state.backend.kms().map(|kms| kms.fd.dev_id().unwrap_or_default());
        match event {
            UdevEvent::Changed { device_id } if driven == Some(device_id) => state.on_kms_hotplug(),
            UdevEvent::Removed { device_id } if driven == Some(device_id) => state.on_kms_device_removed(),
            UdevEvent::Added { path, .. } if driven.is_none() => {
                state.adopt_kms_device(&mut session, &path, direct_scanout)
            }
            UdevEvent::Changed { device_id } if driven.is_none() => {
                if let Some(path) = device_path(&seat, device_id) {
                    state.adopt_kms_device(&mut session, &path, direct_scanout);
                }
            }
            _ => {}
        }
    });
    if let Err(err) = inserted {
        tracing::warn!("udev monitor: {err}");
    }
}

/// The path of the KMS device numbered `device_id`.
fn device_path(seat: &str, device_id: u64) -> Option<PathBuf> {
    kms_device_paths(seat).into_iter().find(|path| std::fs::metadata(path).is_ok_and(|meta| meta.rdev() == device_id))
}

/// What became of an output's connector.
enum Probed {
    Same,
    Unplugged,
    Back,
    NewMode(Mode),
}

impl Axiom {
    /// The KMS device changed: connectors may have come, gone or changed modes.
    fn on_kms_hotplug(&mut self) {
        let Some(kms) = self.backend.kms_mut() else { return };
        let mut changed = false;
        let mut remode = Vec::new();
        for (index, head) in kms.heads.iter_mut().enumerate() {
            let now = kms.fd.get_connector(head.connector, true).ok().and_then(|info| chosen_mode(&info));
            let probed = match now {
                None if head.connected => Probed::Unplugged,
                None => Probed::Same,
                Some(mode) if mode != head.mode => Probed::NewMode(mode),
                Some(_) if !head.connected => Probed::Back,
                Some(_) => Probed::Same,
            };
            match probed {
                Probed::Same => continue,
                Probed::Unplugged => {
                    tracing::info!("KMS: {} disconnected: its CRTC is off", head.name);
                    head.turn_off();
                    head.connected = false;
                }
                Probed::Back => {
                    tracing::info!("KMS: {} connected again: the next frame sets its mode", head.name);
                    head.connected = true;
                    self.renderer.forget_frame();
                }
                Probed::NewMode(mode) => {
                    let (w, h) = mode.size();
                    tracing::info!("KMS: {} connected with another preferred mode, {w}x{h}", head.name);
                    head.turn_off();
                    head.connected = false;
                    remode.push((index, mode));
                }
            }
            changed = true;
        }
        for (index, mode) in remode {
            self.restart_kms_head(index, mode);
        }
        changed |= self.add_new_kms_heads();
        changed |= self.remove_dark_kms_heads();
        if changed {
            self.arrange_kms_heads();
            self.rehome_windows();
        }
    }

    /// The KMS device is gone: every output goes dark and the device is let go.
    /// Clients keep running, paced by the repaint timer, on the primary output's
    /// wl_output, which stays (as the last output does when unplugged).
    fn on_kms_device_removed(&mut self) {
        let Some(path) = self.backend.kms().map(|kms| kms.path.clone()) else { return };
        tracing::warn!("KMS: {path} is gone: no display any more; clients keep running");
        self.let_go_of_kms_device();
        self.renderer.resize_output(self.primary_area().size.to_physical(1));
        self.schedule_repaint();
    }

    /// While no KMS device is driven, a device at `path` that has a connected
    /// connector is driven, as at start-up.
    fn adopt_kms_device(&mut self, session: &mut LibSeatSession, path: &Path, direct_scanout: bool) {
        let opened = match open_with_connected(session, path) {
            Ok(Some(opened)) => opened,
            Ok(None) => return tracing::info!("KMS: {}: no connector is connected yet", path.display()),
            Err(reason) => return tracing::warn!("KMS: not driving {}: {reason:#}", path.display()),
        };
        tracing::info!("KMS: {} is here: driving it", path.display());
        match self.drive_kms_device(opened, session.clone(), direct_scanout) {
            Ok(()) => self.rehome_windows(),
            Err(err) => tracing::warn!("KMS: cannot drive {}: {err:#}", path.display()),
        }
    }

    /// Drives head `index` again at `mode`, as the same wl_output.
    fn restart_kms_head(&mut self, index: usize, mode: Mode) {
        let Some(kms) = self.backend.kms_mut() else { return };
        let Some(head) = kms.heads.get_mut(index) else { return };
        let connected = ConnectedOutput { connector: head.connector, crtc: head.crtc, mode, name: head.name.clone() };
        let (output, global) = (head.output.clone(), head.global.take());
        // Its dumb buffers and surface go before new ones are made for the CRTC.
        drop(kms.heads.remove(index));
        match self.add_kms_head(&connected, Some((output.clone(), global.clone()))) {
            // Back to its place in the row.
            Ok(()) => {
                if let Some(kms) = self.backend.kms_mut() {
                    kms.heads[index..].rotate_right(1);
                }
            }
            Err(err) => {
                tracing::warn!("cannot drive {} at its new mode: {err:#}; its output is removed", connected.name);
                self.remove_output(&output, global);
            }
        }
    }

    /// Outputs for connectors plugged in that have none; true if any was added.
    fn add_new_kms_heads(&mut self) -> bool {
        let Some(kms) = self.backend.kms() else { return false };
        let taken: Vec<_> = kms.heads.iter().map(|h| h.crtc).collect();
        let known: Vec<connector::Handle> = kms.heads.iter().map(|h| h.connector).collect();
        let fresh = match connected_outputs(&kms.fd, &known, &taken) {
            Ok(outputs) => outputs,
            Err(err) => {
                tracing::warn!("KMS: cannot list the connectors: {err}");
                Vec::new()
            }
        };
        let mut added = false;
        for connected in fresh {
            tracing::info!("KMS: {} connected: a new output", connected.name);
            match self.add_kms_head(&connected, None) {
                Ok(()) => added = true,
                Err(err) => tracing::warn!("{err:#}"),
            }
        }
        added
    }

    /// Unplugged outputs go once another output is connected; true if any went.
    fn remove_dark_kms_heads(&mut self) -> bool {
        let Some(kms) = self.backend.kms_mut() else { return false };
        if !kms.heads.iter().any(|h| h.connected) {
            return false;
        }
        let (dark, lit): (Vec<KmsOutput>, Vec<KmsOutput>) = kms.heads.drain(..).partition(|h| !h.connected);
        kms.heads = lit;
        let removed = !dark.is_empty();
        for mut head in dark {
            tracing::info!("KMS: {}'s output is removed", head.name);
            self.remove_output(&head.output, head.global.take());
        }
        removed
    }

    /// Takes an output out of the layout, and its global away from clients now (it is
    /// destroyed later).
    pub(super) fn remove_output(&mut self, output: &Output, global: Option<GlobalId>) {
        self.space.unmap_output(output);
        let Some(global) = global else { return };
        self.display_handle.disable_global::<Axiom>(global.clone());
        let removed = self.loop_handle.insert_source(Timer::from_duration(GLOBAL_GRACE), move |_, _, state| {
            state.display_handle.remove_global::<Axiom>(global.clone());
            TimeoutAction::Drop
        });
        if let Err(err) = removed {
            tracing::warn!("cannot schedule the removal of an output's global: {err}");
        }
    }
}
