//! One output per connected connector of the KMS device, each on a CRTC of its
//! own at its connector's preferred mode (or the one `--mode` asks for). The
//! renderer composes one canvas with the outputs side by side (`outputs.rs`); each
//! CRTC shows its part of it. The first output is the primary one: its planes may
//! show client buffers (direct scanout, overlay), its flips carry the frame's
//! presentation feedback, and its writeback connector answers screencopy while they
//! do.

use std::os::fd::OwnedFd;

use smithay::backend::drm::{DrmDevice, DrmDeviceFd, DrmEvent};
use smithay::backend::session::libseat::LibSeatSession;
use smithay::backend::session::Session as _;
use smithay::desktop::utils::OutputPresentationFeedback;
use smithay::output::Output;
use smithay::reexports::calloop::RegistrationToken;
use smithay::reexports::wayland_server::backend::GlobalId;

use super::{flip_time, main_device, scanout, writeback, ConnectedOutput, KmsOutput, OpenedDevice, PlaneCursor};
use crate::backend::vblank::{OutputClock, Vblank};
use crate::cursor::CursorImage;
use crate::dmabuf::ImportStats;
use crate::outputs::side_by_side;
use crate::render::damage::Rect;
use crate::Axiom;
use smithay::utils::Rectangle;

/// The KMS device and the outputs on its connectors.
pub struct Kms {
    /// Left to right on the canvas; the first is the primary output. Never empty:
    /// when the last connector goes, its output stays (dark) so that clients keep one.
    pub heads: Vec<KmsOutput>,
    pub(super) device: DrmDevice,
    pub(super) fd: DrmDeviceFd,
    /// The seat session that opened the device.
    session: LibSeatSession,
    /// What the session opened, handed back to it in `release`.
    session_fd: Option<OwnedFd>,
    /// The device's path, for messages.
    pub(super) path: String,
    direct_scanout: bool,
    /// Its vblank events' source in the event loop, removed with the device.
    vblank_source: Option<RegistrationToken>,
}

impl Kms {
    /// Closes the device, then hands it back to the session (which drops DRM master).
    fn release(mut self) {
        let session_fd = self.session_fd.take();
        let mut session = self.session.clone();
        drop(self);
        if let Some(fd) = session_fd {
            if let Err(err) = session.close(fd) {
                tracing::warn!("the seat session cannot take the KMS device back: {err}");
            }
        }
    }

    /// Whether the session holds the device now (not switched away).
    pub fn is_active(&self) -> bool {
        self.device.is_active()
    }

    pub fn primary(&self) -> Option<&KmsOutput> {
        self.heads.first()
    }

    pub fn primary_mut(&mut self) -> Option<&mut KmsOutput> {
        self.heads.first_mut()
    }
}

impl Axiom {
    pub(super) fn primary_kms(&self) -> Option<&KmsOutput> {
        self.backend.kms()?.primary()
    }

    pub(super) fn primary_kms_mut(&mut self) -> Option<&mut KmsOutput> {
        self.backend.kms_mut()?.primary_mut()
    }

    /// Drives the KMS device `opened` (through `session`): one output per connected
    /// connector, the first as the primary wl_output clients have where it is named
    /// after that connector (a placeholder, or another connector's, makes way for it).
    pub(super) fn drive_kms_device(
        &mut self,
        opened: OpenedDevice,
        session: LibSeatSession,
        direct_scanout: bool,
    ) -> anyhow::Result<()> {
        let OpenedDevice { path, session_fd, fd, connected } = opened;
        let path = path.display().to_string();
        let (device, vblanks) = DrmDevice::new(fd.clone(), true).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        self.dmabuf_state.set_main_device(main_device(&fd), &path);
        self.backend = crate::backend::Backend::Drm(Some(Box::new(Kms {
            heads: Vec::new(),
            device,
            fd,
            session,
            session_fd: Some(session_fd),
            path,
            direct_scanout,
            vblank_source: None,
        })));
        let primary = (self.output.clone(), self.output_global.take());
        let keeps_primary = connected.first().is_some_and(|c| c.name == primary.0.name());
        let mut first = keeps_primary.then(|| primary.clone());
        for output in &connected {
            if let Err(err) = self.add_kms_head(output, first.take()) {
                tracing::warn!("cannot drive {}: {err:#}", output.name);
            }
        }
        if self.backend.kms().is_none_or(|kms| kms.heads.is_empty()) {
            if let Some(kms) = self.backend.take_kms() {
                kms.release();
            }
            self.output_global = primary.1;
            anyhow::bail!("no connector could be driven");
        }
        if !keeps_primary {
            self.remove_output(&primary.0, primary.1);
        }
        self.arrange_kms_heads();
        // Nothing composed so far is on these screens.
        self.renderer.forget_frame();
        let vblank_source = self
            .loop_handle
            .insert_source(vblanks, |event, meta, state| match event {
                DrmEvent::VBlank(crtc) => state.on_kms_vblank(crtc, flip_time(meta)),
                DrmEvent::Error(err) => tracing::warn!("KMS device error: {err}"),
            })
            .map_err(|e| anyhow::anyhow!("vblank source: {e}"))?;
        let Some(kms) = self.backend.kms_mut() else { return Ok(()) };
        kms.vblank_source = Some(vblank_source);
        // Driven: timelines can be imported into it from now.
        let (fd, path) = (kms.fd.clone(), kms.path.clone());
        self.offer_explicit_sync(&fd, &path);
        Ok(())
    }

    /// Lets go of the KMS device: its outputs go dark, its vblanks unwatched, and
    /// the primary output's wl_output stays for clients (see `drive_kms_device`).
    pub(super) fn let_go_of_kms_device(&mut self) {
        let Some(mut kms) = self.backend.take_kms() else { return };
        if let Some(source) = kms.vblank_source.take() {
            self.loop_handle.remove(source);
        }
        // Only the primary output stays, on the primary clock.
        self.output_clocks.clear();
        for (index, head) in kms.heads.iter_mut().enumerate() {
            head.turn_off();
            if index == 0 {
                self.output_global = head.global.take();
            } else {
                self.remove_output(&head.output, head.global.take());
            }
        }
        kms.release();
        self.withdraw_explicit_sync();
    }

    /// Drives `connected` on its CRTC at its preferred mode, as the rightmost output.
    /// `output`: the wl_output to show it as (a new one if None).
    pub(super) fn add_kms_head(
        &mut self,
        connected: &ConnectedOutput,
        output: Option<(Output, Option<GlobalId>)>,
    ) -> anyhow::Result<()> {
        let kms = self.backend.kms_mut().ok_or_else(|| anyhow::anyhow!("no KMS device"))?;
        let surface = kms
            .device
            .create_surface(connected.crtc, connected.mode, &[connected.connector])
            .map_err(|e| anyhow::anyhow!("cannot drive {} on {}: {e}", connected.name, kms.path))?;
        let mode = smithay::output::Mode::from(connected.mode);
        let output_was_new = output.is_none();
        let (output, global) = match output {
            Some((output, global)) => {
                output.change_current_state(Some(mode), None, None, None);
                output.set_preferred(mode);
                (output, global)
            }
            None => {
                let (output, global) =
                    crate::backend::serve::new_output(&self.display_handle, (&connected.name, "KMS"), mode);
                (output, Some(global))
            }
        };
        let made_here = global.clone().filter(|_| output_was_new);
        let mut head = match KmsOutput::new(kms.fd.clone(), surface, connected, (output, global)) {
            Ok(head) => head,
            Err(err) => {
                // Never announced yet (clients hear of it after this dispatch): gone at once.
                if let Some(global) = made_here {
                    self.display_handle.remove_global::<Axiom>(global);
                }
                return Err(err);
            }
        };
        let overlays: Vec<_> = head.surface.planes().overlay.iter().map(|plane| plane.formats.clone()).collect();
        head.scanout = scanout::Scanout::new(
            kms.direct_scanout,
            &self.dmabuf_state.default_feedback,
            &head.surface.plane_info().formats,
            &overlays.iter().collect::<Vec<_>>(),
            kms.fd.dev_id().unwrap_or_default(),
        );
        match head.share_buffers_with(&self.renderer) {
            Ok(buffers) => tracing::info!(
                "KMS: {}: composition draws straight into its scanout buffers on the GPU ({buffers})",
                connected.name
            ),
            Err(why) => tracing::warn!(
                "KMS: {}: composed frames are read back and copied into its scanout buffers by the CPU: {why:#}",
                connected.name
            ),
        }
        match head.use_cursor_plane(&self.renderer) {
            Ok(()) => {
                let (w, h) = head.cursor_plane.as_ref().map_or((0, 0), |p| p.size());
                tracing::info!("KMS: {}: the cursor goes on its cursor plane ({w}x{h} ARGB8888)", connected.name)
            }
            Err(why) => tracing::info!("KMS: {}: the cursor is composed: {why:#}", connected.name),
        }
        let (width, height) = connected.mode.size();
        head.writeback = writeback::Writeback::find(&kms.fd, connected.crtc, (width.into(), height.into()));
        tracing::info!(
            device = %kms.path, connector = %connected.name, width, height, refresh = connected.mode.vrefresh(),
            "KMS output: the connector's preferred mode"
        );
        tracing::info!(
            "{}: screencopy while planes show client buffers: {}",
            connected.name,
            if head.writeback.is_some() { "written back by the display (writeback connector)" } else { "composed" }
        );
        kms.heads.push(head);
        Ok(())
    }

    /// Lays the outputs out side by side, sizes the canvas to hold them all, and
    /// makes the first the primary output.
    pub(super) fn arrange_kms_heads(&mut self) {
        let Some(kms) = self.backend.kms_mut() else { return };
        let sizes: Vec<_> = kms.heads.iter().map(|h| h.size.into()).collect();
        let (places, canvas) = side_by_side(&sizes);
        for (head, place) in kms.heads.iter_mut().zip(places) {
            head.position = (place.x, place.y);
            head.output.change_current_state(None, None, None, Some(place));
            self.space.map_output(&head.output, place);
            tracing::info!("KMS: {} at ({}, {}) on the canvas", head.name, place.x, place.y);
        }
        if let Some(primary) = kms.heads.first() {
            self.output = primary.output.clone();
            self.vblank.interval = primary.refresh;
        }
        // Every other output is paced by a clock of its own, at its mode's refresh.
        let others: Vec<(Output, std::time::Duration)> =
            kms.heads.iter().skip(1).map(|h| (h.output.clone(), h.refresh)).collect();
        self.output_clocks.retain(|clock| others.iter().any(|(output, _)| *output == clock.output));
        for (output, refresh) in others {
            match self.output_clocks.iter_mut().find(|clock| clock.output == output) {
                Some(clock) => clock.vblank.interval = refresh,
                None => self.output_clocks.push(OutputClock { output, vblank: Vblank::new(refresh) }),
            }
        }
        self.renderer.resize_output((canvas.w, canvas.h).into());
        self.schedule_repaint();
    }

    /// Queues the composed frame on the heads the clock `paced` names paces (the
    /// primary's plane shows a client buffer instead when `planes.direct`, and
    /// `planes.overlay` goes on its overlay plane); each head's flip sends its output's
    /// `feedback`, and shows `planes.cursor` on its cursor plane where it can. The other
    /// heads owe a frame at their clock's next tick where `changed` concerns them: the
    /// damage is on them, or (the primary) what its planes show may have changed.
    pub(crate) fn show_on_kms(
        &mut self,
        mut feedback: Vec<(smithay::output::Output, OutputPresentationFeedback)>,
        barriers: &mut crate::handlers::frame_pacing::FifoBarriers,
        planes: crate::backend::FramePlanes<'_>,
        paced: Option<&Output>,
        changed: crate::backend::SceneChange,
    ) {
        let this_clock = self.kms_heads_paced_by(paced);
        let Some(kms) = self.backend.kms_mut() else { return };
        let crate::backend::FramePlanes { mut overlay, direct, cursor } = planes;
        let mut owing = Vec::new();
        for ((index, head), this_clock) in kms.heads.iter_mut().enumerate().zip(this_clock) {
            if !this_clock {
                let region = Rect::of_area(Rectangle::new(head.position.into(), head.size.into()));
                let damaged = changed.damage.is_some_and(|d| d.intersect(region).is_some());
                head.owes_frame |= damaged || (index == 0 && changed.planes);
                if head.owes_frame {
                    owing.push(head.output.clone());
                }
                continue;
            }
            if index == 0 && direct {
                continue;
            }
            let feedback = match feedback.iter().position(|(o, _)| *o == head.output) {
                Some(at) => feedback.swap_remove(at).1,
                None => OutputPresentationFeedback::new(&head.output),
            };
            let barriers = barriers.take_for(&head.output);
            head.show(&mut self.renderer, feedback, barriers, overlay.take().filter(|_| index == 0), cursor);
        }
        for output in owing {
            self.arm_clock_of(&output);
        }
        self.repaint_if_cursor_plane_lost();
    }

    /// Whether a head the clock `paced` names paces owes a frame: of a scene composed
    /// at another clock's tick, or its first (started, or the session back). None is
    /// owed while the session is away.
    pub(crate) fn kms_frame_owed(&self, paced: Option<&Output>) -> bool {
        let Some(kms) = self.backend.kms().filter(|kms| kms.is_active()) else { return false };
        kms.heads.iter().any(|head| head.owes_frame && head.connected && self.clock_of(&head.output) == paced)
    }

    /// For each head, whether the clock `paced` names paces it.
    fn kms_heads_paced_by(&self, paced: Option<&Output>) -> Vec<bool> {
        let heads = self.backend.kms().map(|kms| kms.heads.as_slice()).unwrap_or_default();
        heads.iter().map(|head| self.clock_of(&head.output) == paced).collect()
    }

    /// This tick of the clock `paced` names gives its heads a frame: they owe none.
    pub(crate) fn kms_frames_given(&mut self, paced: Option<&Output>) {
        let this_clock = self.kms_heads_paced_by(paced);
        let Some(kms) = self.backend.kms_mut() else { return };
        for (head, this_clock) in kms.heads.iter_mut().zip(this_clock) {
            head.owes_frame &= !this_clock;
        }
    }

    /// The cursor for cursor planes, from `image` (None off KMS, or with no cursor).
    pub(crate) fn plane_cursor(&self, image: Option<&CursorImage>) -> Option<PlaneCursor> {
        self.backend.kms()?;
        // Counted once, with the frame's own quads.
        let items = self.renderer.cursor_items(image?, &mut ImportStats::default());
        PlaneCursor::new(items, self.cursor.changes)
    }

    /// An output lost its cursor plane: frames composed without the cursor for it are
    /// composed again, with it.
    pub(super) fn repaint_if_cursor_plane_lost(&mut self) {
        let Some(kms) = self.backend.kms_mut() else { return };
        let mut lost = Vec::new();
        for head in &mut kms.heads {
            if std::mem::take(&mut head.cursor_plane_lost) {
                head.owes_frame = true;
                lost.push(head.output.clone());
            }
        }
        for output in lost {
            self.arm_clock_of(&output);
        }
    }

    /// More than the primary output shows the canvas: it is composed even when the
    /// primary output's plane shows a client buffer.
    pub(crate) fn kms_shows_more_than_primary(&self) -> bool {
        self.backend.kms().is_some_and(|kms| kms.heads.iter().skip(1).any(|head| head.connected))
    }

    /// What the primary output's display shows, written back (`writeback.rs`).
    pub(crate) fn capture_kms_screen(&mut self) -> Option<writeback::Captured> {
        self.primary_kms_mut()?.capture_screen()
    }
}
