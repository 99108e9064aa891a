//! Overlay-plane scanout: when the top window is not fullscreen but its
//! dma-buf could go on an overlay plane as it is, the plane shows it above
//! the primary plane, and only the rest of the output is composed. A video
//! player's window then costs no composition of its frames. The plane must
//! accept the buffer in an atomic test commit; otherwise it is composed.
//! Each decision is logged when it changes.

use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::Buffer as _;
use smithay::backend::drm::{PlaneConfig, PlaneState};
use smithay::backend::renderer::utils::Buffer;
use smithay::reexports::drm::control::{framebuffer, plane};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::State as ToplevelState;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Physical, Rectangle, Transform};

use super::scanout::plain_dmabuf;
use super::PlaneCursor;
use crate::Axiom;

/// A client framebuffer on an overlay plane, unscaled at `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayFrame {
    pub plane: plane::Handle,
    pub fb: framebuffer::Handle,
    pub dst: Rectangle<i32, Physical>,
}

impl OverlayFrame {
    pub fn plane_state(&self) -> PlaneState<'static> {
        PlaneState {
            handle: self.plane,
            config: Some(PlaneConfig {
                src: Rectangle::from_size((self.dst.size.w, self.dst.size.h).into()).to_f64(),
                dst: self.dst,
                transform: Transform::Normal,
                alpha: 1.0,
                damage_clips: None,
                fb: self.fb,
                fence: None,
            }),
        }
    }
}

/// This frame's overlay: the surface left out of composition, and what the plane shows.
pub struct Overlay {
    pub surface: WlSurface,
    /// Its buffer's format has no alpha: windows wholly under it are not seen.
    pub opaque: bool,
    pub frame: OverlayFrame,
    pub buffer: Buffer,
}

/// The top window's surface and buffer, where it would go, and on which plane.
struct Candidate {
    surface: WlSurface,
    buffer: Buffer,
    dmabuf: Dmabuf,
    dst: Rectangle<i32, Physical>,
    plane: plane::Handle,
}

impl Axiom {
    /// The top window's surface, buffer and place when an overlay plane could show
    /// it: a window that is not fullscreen (the primary plane's case), wholly on the
    /// output, with a buffer `plain_dmabuf` takes, in a format an overlay plane lists.
    fn overlay_candidate(&self, cursor: Option<&PlaneCursor>) -> Result<Candidate, String> {
        let kms = self.primary_kms().ok_or("no KMS output")?;
        if kms.surface.planes().overlay.is_empty() {
            return Err("the CRTC has no overlay plane".into());
        }
        let window = self.space.elements().last().ok_or("no window")?;
        let toplevel = window.toplevel().ok_or("the top window is an X11 window")?;
        if toplevel.current_state().states.contains(ToplevelState::Fullscreen) {
            return Err("the top window is fullscreen".into());
        }
        let surface = toplevel.wl_surface().clone();
        let location = self.space.element_location(window).ok_or("the top window is not mapped")?;
        let (buffer, dmabuf) = plain_dmabuf(&surface, "the top window")?;
        // On the primary output's CRTC, whose origin is the output's.
        let area = self.primary_area();
        let origin = location - window.geometry().loc - area.loc;
        let dst = Rectangle::new((origin.x, origin.y).into(), (dmabuf.size().w, dmabuf.size().h).into());
        if !Rectangle::from_size((area.size.w, area.size.h).into()).contains_rect(dst) {
            return Err("the top window is not wholly on the primary output".into());
        }
        // A composed cursor would lie under the overlay plane: where it shows over the
        // window, the window is composed too (the cursor plane lies above both).
        if kms.composes_cursor_over(cursor, dst) {
            return Err("the cursor is over the window".into());
        }
        let format = dmabuf.format();
        let plane = kms
            .surface
            .planes()
            .overlay
            .iter()
            .find(|plane| plane.formats.contains(&format))
            .ok_or_else(|| format!("no overlay plane lists {:?} with modifier {:?}", format.code, format.modifier))?
            .handle;
        if kms.scanout.was_refused(&buffer) {
            return Err("a plane refused this buffer before".into());
        }
        Ok(Candidate { surface, buffer, dmabuf, dst, plane })
    }

    /// The overlay for this frame, if the top window's buffer can go on an overlay
    /// plane as it is (the plane accepted it in a test commit) with `cursor` where it goes.
    pub fn try_overlay_scanout(&mut self, cursor: Option<&PlaneCursor>) -> Option<Overlay> {
        let kms = self.primary_kms()?;
        if !kms.scanout.enabled || kms.needs_modeset || !kms.connected {
            return None;
        }
        let candidate = self.overlay_candidate(cursor);
        let kms = self.backend.kms_mut()?.heads.first_mut()?;
        let accepted = candidate.and_then(|candidate| {
            let Candidate { buffer, dmabuf, dst, plane, .. } = &candidate;
            let fb = kms.accept_on_planes(buffer, dmabuf, |kms, fb| {
                let frame = OverlayFrame { plane: *plane, fb, dst: *dst };
                vec![kms.primary_plane(kms.front_framebuffer()), frame.plane_state()]
            })?;
            Ok((candidate, fb))
        });
        let (Candidate { surface, buffer, dmabuf, dst, plane }, fb) = match accepted {
            Ok(found) => found,
            Err(reason) => {
                kms.scanout.decide_overlay(format!("off: {reason}"));
                return None;
            }
        };
        let frame = OverlayFrame { plane, fb, dst };
        kms.scanout.decide_overlay(format!(
            "on: {}x{} {} buffer of the top window at ({},{}) on plane {} (fb {})",
            dst.size.w,
            dst.size.h,
            dmabuf.format().code,
            dst.loc.x,
            dst.loc.y,
            u32::from(plane),
            u32::from(fb)
        ));
        let opaque =
            crate::dmabuf::formats::DMABUF_FORMATS.iter().any(|f| f.fourcc == dmabuf.format().code && f.opaque);
        Some(Overlay { surface, opaque, frame, buffer })
    }
}
