//! Direct scanout: the dma-buf of a fullscreen window goes on the primary
//! plane as it is, without composition or copy, when the plane takes it
//! (checked with an atomic test commit). Fullscreen surfaces get a scanout
//! tranche in their dma-buf feedback, with the plane's formats, so that
//! clients can allocate buffers it takes. Each decision is logged when it
//! changes.

use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::allocator::{Buffer as _, Format, Fourcc, Modifier};
use smithay::backend::drm::{DrmDeviceFd, PlaneState};
use smithay::backend::renderer::utils::{with_renderer_surface_state, Buffer};
use smithay::desktop::utils::OutputPresentationFeedback;
use smithay::reexports::drm::buffer::{Handle as GemHandle, PlanarBuffer};
use smithay::reexports::drm::control::{framebuffer, Device as _, FbCmd2Flags};
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::TrancheFlags;
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::State as ToplevelState;
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Resource, Weak};
use smithay::utils::{Rectangle, Transform};
use smithay::wayland::compositor;
use smithay::wayland::dmabuf::get_dmabuf;
use smithay::wayland::viewporter::ViewportCachedState;

use super::PlaneCursor;
use crate::dmabuf::feedback::{Feedback, Tranche};
use crate::Axiom;

/// Formats a plane shows exactly as we compose them: no alpha to blend over the background.
const OPAQUE: [Fourcc; 4] = [Fourcc::Xrgb8888, Fourcc::Xbgr8888, Fourcc::Xrgb2101010, Fourcc::Xbgr2101010];

#[derive(Default)]
pub struct Scanout {
    /// Off with --no-direct-scanout.
    pub enabled: bool,
    /// What fullscreen surfaces are told: a scanout tranche, then the default ones.
    /// None where direct scanout is off or the plane takes nothing of our table.
    feedback: Option<Feedback>,
    /// What the top window is told when it is not fullscreen: likewise, with what the
    /// overlay planes take.
    overlay_feedback: Option<Feedback>,
    /// KMS framebuffers of client dma-bufs, per wl_buffer.
    framebuffers: Vec<(Weak<WlBuffer>, framebuffer::Handle)>,
    /// Buffers the plane refused: composed from then on.
    refused: Vec<Weak<WlBuffer>>,
    /// Why the last frame was (not) scanned out directly.
    direct_decision: Decision,
    /// Why the last composed frame had (no) overlay.
    overlay_decision: Decision,
}

/// The last decision of one kind, so that only changes are logged.
#[derive(Default)]
struct Decision(Option<String>);

impl Decision {
    fn log(&mut self, what: &str, decision: String) {
        if self.0.as_ref() != Some(&decision) {
            tracing::info!("{what}: {decision}");
            self.0 = Some(decision);
        }
    }
}

impl Scanout {
    /// `default`: the feedback every surface gets; `primary` and `overlays`: what the
    /// primary plane and the overlay planes of `device` scan out.
    pub fn new(enabled: bool, default: &Feedback, primary: &FormatSet, overlays: &[&FormatSet], device: u64) -> Self {
        let feedback = scanout_feedback(default, |format| primary.contains(format), device).filter(|_| enabled);
        let overlay_feedback =
            scanout_feedback(default, |format| overlays.iter().any(|formats| formats.contains(format)), device)
                .filter(|_| enabled);
        Self { enabled, feedback, overlay_feedback, ..Default::default() }
    }

    fn decide(&mut self, decision: String) {
        self.direct_decision.log("direct scanout", decision);
    }

    pub(super) fn decide_overlay(&mut self, decision: String) {
        self.overlay_decision.log("overlay plane", decision);
    }

    /// The framebuffer for `buffer`, made on first use.
    fn framebuffer(
        &mut self,
        fd: &DrmDeviceFd,
        buffer: &WlBuffer,
        dmabuf: &Dmabuf,
    ) -> std::io::Result<framebuffer::Handle> {
        if let Some((_, fb)) = self.framebuffers.iter().find(|(b, _)| b.upgrade().is_ok_and(|b| b == *buffer)) {
            return Ok(*fb);
        }
        let fb = add_framebuffer(fd, dmabuf)?;
        self.framebuffers.push((buffer.downgrade(), fb));
        Ok(fb)
    }

    /// Removes the framebuffers of destroyed buffers, except those `in_use` (on screen:
    /// removing it would switch the CRTC off; or queued); they go at a later vblank.
    pub fn forget_dead(&mut self, fd: &DrmDeviceFd, in_use: &[Option<framebuffer::Handle>]) {
        self.framebuffers.retain(|(buffer, fb)| {
            let keep = buffer.upgrade().is_ok() || in_use.contains(&Some(*fb));
            if !keep {
                let _ = fd.destroy_framebuffer(*fb);
            }
            keep
        });
        self.refused.retain(|b| b.upgrade().is_ok());
    }

    /// Whether a plane refused `buffer` before (it is composed from then on).
    pub(super) fn was_refused(&self, buffer: &WlBuffer) -> bool {
        self.refused.iter().any(|b| b.upgrade().is_ok_and(|b| b == *buffer))
    }

    /// A plane refused `buffer`: compose it from now on.
    fn refuse(&mut self, buffer: &WlBuffer) {
        self.refused.push(buffer.downgrade());
    }

    pub fn forget_all(&mut self, fd: &DrmDeviceFd) {
        for (_, fb) in self.framebuffers.drain(..) {
            let _ = fd.destroy_framebuffer(fb);
        }
    }
}

impl super::KmsOutput {
    /// The framebuffer of `buffer` once the planes `planes(self, fb)` that show it pass
    /// an atomic test commit. A buffer the device or the test refuses is composed from
    /// then on; the error says why.
    pub(super) fn accept_on_planes(
        &mut self,
        buffer: &Buffer,
        dmabuf: &Dmabuf,
        planes: impl FnOnce(&Self, framebuffer::Handle) -> Vec<PlaneState<'static>>,
    ) -> Result<framebuffer::Handle, String> {
        let fb = match self.scanout.framebuffer(&self.fd, buffer, dmabuf) {
            Ok(fb) => fb,
            Err(err) => {
                self.scanout.refuse(buffer);
                return Err(format!("the device cannot import the buffer ({err})"));
            }
        };
        if let Err(err) = self.surface.test_state(planes(self, fb), false) {
            self.scanout.refuse(buffer);
            return Err(format!("the test commit failed ({err})"));
        }
        Ok(fb)
    }
}

/// `default` with a scanout tranche in front: the entries of its table that a plane
/// takes (`takes`), for `device`. None if the plane takes none of them.
fn scanout_feedback(default: &Feedback, takes: impl Fn(&Format) -> bool, device: u64) -> Option<Feedback> {
    let indices: Vec<u16> = default
        .table
        .entries
        .iter()
        .enumerate()
        .filter(|(_, (fourcc, modifier))| {
            Fourcc::try_from(*fourcc).is_ok_and(|code| takes(&Format { code, modifier: Modifier::from(*modifier) }))
        })
        .filter_map(|(i, _)| u16::try_from(i).ok())
        .collect();
    (!indices.is_empty()).then(|| {
        let mut tranches = vec![Tranche { target_device: device, flags: TrancheFlags::Scanout, indices }];
        tranches.extend(default.tranches.iter().cloned());
        Feedback { main_device: default.main_device, table: default.table.clone(), tranches }
    })
}

/// The buffer of `surface` (`what`, in reasons) when a plane could show it as it is:
/// one opaque dma-buf, no subsurface, popup, viewport, scale or transform.
pub(super) fn plain_dmabuf(surface: &WlSurface, what: &str) -> Result<(Buffer, Dmabuf), String> {
    if !compositor::get_children(surface).is_empty() {
        return Err(format!("{what} has subsurfaces"));
    }
    if smithay::desktop::PopupManager::popups_for_surface(surface).next().is_some() {
        return Err(format!("{what} has popups"));
    }
    let viewport = compositor::with_states(surface, |states| {
        let viewport = *states.cached_state.get::<ViewportCachedState>().current();
        viewport.src.is_some() || viewport.size().is_some()
    });
    if viewport {
        return Err("a viewport scales the buffer".into());
    }
    let buffer = with_renderer_surface_state(surface, |state| {
        if state.buffer_scale() != 1 || state.buffer_transform() != Transform::Normal {
            return Err("the buffer is scaled or transformed".to_string());
        }
        state.buffer().cloned().ok_or_else(|| "no buffer".to_string())
    })
    .ok_or("no buffer")??;
    let dmabuf = get_dmabuf(&buffer).map_err(|_| "the buffer is not a dma-buf".to_string())?.clone();
    let code = dmabuf.format().code;
    if !OPAQUE.contains(&code) {
        return Err(format!("{code:?} has alpha: composed over what lies beneath"));
    }
    Ok((buffer, dmabuf))
}

/// A client dma-buf's planes as KMS sees them.
struct ClientPlanes<'a> {
    dmabuf: &'a Dmabuf,
    handles: [Option<GemHandle>; 4],
}

impl PlanarBuffer for ClientPlanes<'_> {
    fn size(&self) -> (u32, u32) {
        let size = self.dmabuf.size();
        (size.w as u32, size.h as u32)
    }
    fn format(&self) -> Fourcc {
        self.dmabuf.format().code
    }
    fn modifier(&self) -> Option<Modifier> {
        Some(self.dmabuf.format().modifier)
    }
    fn pitches(&self) -> [u32; 4] {
        let mut pitches = [0; 4];
        self.dmabuf.strides().zip(&mut pitches).for_each(|(s, p)| *p = s);
        pitches
    }
    fn handles(&self) -> [Option<GemHandle>; 4] {
        self.handles
    }
    fn offsets(&self) -> [u32; 4] {
        let mut offsets = [0; 4];
        self.dmabuf.offsets().zip(&mut offsets).for_each(|(o, p)| *p = o);
        offsets
    }
}

/// Imports the dma-buf's planes into the KMS device (PRIME) and makes a framebuffer of them.
fn add_framebuffer(fd: &DrmDeviceFd, dmabuf: &Dmabuf) -> std::io::Result<framebuffer::Handle> {
    let mut handles = [None; 4];
    for (plane, slot) in dmabuf.handles().zip(&mut handles) {
        *slot = Some(fd.prime_fd_to_buffer(plane)?);
    }
    let planes = ClientPlanes { dmabuf, handles };
    let flags =
        if dmabuf.format().modifier == Modifier::Invalid { FbCmd2Flags::empty() } else { FbCmd2Flags::MODIFIERS };
    let fb = fd.add_planar_framebuffer(&planes, flags);
    // The framebuffer holds its own references; planes sharing one buffer share a handle.
    let mut closed = Vec::new();
    for handle in handles.into_iter().flatten() {
        if !closed.contains(&handle) {
            let _ = fd.close_buffer(handle);
            closed.push(handle);
        }
    }
    fb
}

impl Axiom {
    /// The buffer of the topmost window when it can be shown as
    /// they are: a fullscreen toplevel covering the output with one opaque,
    /// output-sized dma-buf the plane lists, no subsurface, popup, scale or viewport.
    fn scanout_candidate(&self, cursor: Option<&PlaneCursor>) -> Result<(WlSurface, Buffer, Dmabuf), String> {
        let kms = self.primary_kms().ok_or("no KMS output")?;
        if kms.composes_cursor_over(cursor, Rectangle::from_size(kms.size.into())) {
            return Err("the cursor is composed over the output".into());
        }
        let window = self.space.elements().last().ok_or("no window")?;
        let toplevel = window.toplevel().ok_or("the top window is an X11 window")?;
        if !toplevel.current_state().states.contains(ToplevelState::Fullscreen) {
            return Err("the top window is not fullscreen".into());
        }
        let surface = toplevel.wl_surface().clone();
        if self.space.element_location(window) != Some(self.primary_area().loc) {
            return Err("the fullscreen window is not at the primary output's origin".into());
        }
        let (buffer, dmabuf) = plain_dmabuf(&surface, "the fullscreen window")?;
        let (w, h) = kms.size;
        if (dmabuf.size().w, dmabuf.size().h) != (w, h) {
            return Err(format!("the buffer is {}x{}, the mode {w}x{h}", dmabuf.size().w, dmabuf.size().h));
        }
        let format = dmabuf.format();
        if !kms.surface.plane_info().formats.contains(&format) {
            return Err(format!(
                "the primary plane does not list {:?} with modifier {:?}",
                format.code, format.modifier
            ));
        }
        if kms.scanout.was_refused(&buffer) {
            return Err("the plane refused this buffer before".into());
        }
        Ok((surface, buffer, dmabuf))
    }

    /// Whether the fullscreen window's buffer can go on the primary plane as it is
    /// (a test commit says so): its surface, buffer and framebuffer when it can. The
    /// frame then needs no composition of it; `show_direct` puts it there. `cursor`:
    /// where it does not go on the cursor plane, it is composed.
    pub fn accept_direct_scanout(
        &mut self,
        cursor: Option<&PlaneCursor>,
    ) -> Option<(WlSurface, Buffer, framebuffer::Handle)> {
        let kms = self.primary_kms()?;
        if !kms.scanout.enabled || kms.needs_modeset || !kms.connected {
            return None;
        }
        let candidate = self.scanout_candidate(cursor);
        let kms = self.backend.kms_mut()?.heads.first_mut()?;
        let accepted = candidate.and_then(|(surface, buffer, dmabuf)| {
            let fb = kms.accept_on_planes(&buffer, &dmabuf, |kms, fb| vec![kms.primary_plane(fb)])?;
            Ok((surface, buffer, dmabuf, fb))
        });
        let (surface, buffer, dmabuf, fb) = match accepted {
            Ok(found) => found,
            Err(reason) => {
                kms.scanout.decide(format!("off, composing: {reason}"));
                return None;
            }
        };
        let size = dmabuf.size();
        kms.scanout.decide(format!(
            "on: {}x{} {:?} buffer of the fullscreen window on the primary plane (fb {})",
            size.w,
            size.h,
            dmabuf.format().code,
            u32::from(fb)
        ));
        Some((surface, buffer, fb))
    }

    /// Shows client buffer `buffer` (framebuffer `fb`), which `accept_direct_scanout`
    /// accepted, on the primary output's plane, at once where its surface asks to tear
    /// (`tearing`) and the display can, else at vblank; `feedback` is sent once it is on
    /// screen, and `cursor` goes on the cursor plane above it.
    pub fn show_direct(
        &mut self,
        (fb, buffer): (framebuffer::Handle, Buffer),
        feedback: OutputPresentationFeedback,
        barriers: crate::handlers::frame_pacing::FifoBarriers,
        tearing: bool,
        cursor: Option<&PlaneCursor>,
    ) {
        if let Some(kms) = self.backend.kms_mut().and_then(|kms| kms.heads.first_mut()) {
            kms.show_client((fb, buffer), &mut self.renderer, feedback, barriers, tearing, cursor);
        }
    }

    /// Gives fullscreen surfaces a scanout tranche (the primary plane's formats)
    /// in front of the default one, and the top window, when it is not fullscreen,
    /// one with the overlay planes' formats; takes them away when that changes.
    /// Feedback objects hear of it only when it changes.
    pub fn update_scanout_feedback(&mut self) {
        let Some(kms) = self.primary_kms() else { return };
        let (primary, overlay) = (kms.scanout.feedback.clone(), kms.scanout.overlay_feedback.clone());
        let default = self.dmabuf_state.default_feedback.clone();
        let top = self.space.elements().last().cloned();
        let surfaces: Vec<(WlSurface, bool, bool)> = self
            .space
            .elements()
            .filter_map(|w| {
                let toplevel = w.toplevel()?;
                // Only the primary output's plane may show a client buffer.
                let fullscreen = toplevel.current_state().states.contains(ToplevelState::Fullscreen)
                    && self.output_of(w) == self.output;
                Some((toplevel.wl_surface().clone(), fullscreen, Some(w) == top.as_ref()))
            })
            .collect();
        for (surface, fullscreen, on_top) in surfaces {
            // Fullscreen: the primary plane's formats; the top window: the overlay planes'.
            let wanted = match (fullscreen, on_top) {
                (true, _) => primary.clone(),
                (false, true) => overlay.clone(),
                (false, false) => None,
            };
            if self.dmabuf_state.surface_feedback(&surface) != wanted.as_ref().unwrap_or(&default) {
                self.dmabuf_state.set_surface_feedback(&surface, wanted);
            }
        }
    }
}
