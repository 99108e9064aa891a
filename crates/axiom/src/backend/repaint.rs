//! The repaint step shared by backends: render if something changed, answer
//! screencopy, then send frame callbacks and presentation feedback.

use smithay::desktop::utils::{send_frames_surface_tree, OutputPresentationFeedback};
use smithay::output::Output;
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback::Kind;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Resource;
use smithay::wayland::seat::WaylandFocus;
use std::collections::HashSet;
use std::time::Duration;

use smithay::utils::Monotonic;
use smithay::wayland::presentation::Refresh;

use crate::Axiom;

impl Axiom {
    /// Called once per refresh interval; `vblank` is this tick's time on CLOCK_MONOTONIC.
    pub fn repaint_tick(&mut self, vblank: Duration) {
        let redraw = self.needs_redraw;
        let capture_waiting = self.pending_captures.iter().any(|c| !c.with_damage);
        if !redraw && !capture_waiting {
            return;
        }

        // On a display, the feedback goes with the frame and is sent when its flip completes.
        let mut feedback = Vec::new();
        let mut damage = None;
        let mut overlay = None;
        let mut direct = None;
        let mut composed = None;
        if redraw {
            self.update_scanout_feedback();
            // A client buffer on the display plane needs no composition; failing that, the
            // top window may go on an overlay plane, and only the rest is composed.
            let accepted = self.accept_direct_scanout();
            if accepted.is_none() {
                overlay = self.try_overlay_scanout();
            }
            let on_plane = accepted.as_ref().map(|(surface, ..)| surface).or(overlay.as_ref().map(|o| &o.surface));
            // Other outputs still show the composed canvas while the primary's plane shows a client buffer.
            if accepted.is_none() || self.kms_shows_more_than_primary() {
                composed = Some(self.renderer.collect_draws(&self.space, &mut self.dmabuf_state.stats, on_plane));
            }
            let hidden = composed.as_ref().map(|items| self.renderer.hidden_windows(items)).unwrap_or_default();
            feedback = self.take_presentation_feedback(on_plane, accepted.is_some(), &hidden);
            if let Some((surface, buffer, fb)) = accepted {
                let primary = feedback.swap_remove(0).1;
                self.show_direct(fb, buffer, primary);
                direct = Some(surface);
            }
            self.needs_redraw = false;
        }
        if let Some(items) = composed {
            let on_plane = direct.is_some() || overlay.is_some();
            damage = self.renderer.render(&items);
            self.renderer.present();
            if self.kms.is_some() {
                self.show_on_kms(std::mem::take(&mut feedback), overlay, direct.is_some());
            } else {
                // Off KMS the frame is shown once drawn (headless), or handed to the window system.
                self.space.outputs().for_each(crate::outputs::count_frame);
            }
            self.composed_without_overlay = on_plane;
        } else if direct.is_some() {
            self.renderer.forget_frame();
        }
        // Screencopy wants what is on screen. Where the output texture lacks part of it (a
        // plane shows a client buffer), the display's writeback connector captures it, or
        // failing that the scene is composed whole.
        let lacking = self.renderer.frame_forgotten() || self.composed_without_overlay;
        let mut screen = None;
        if lacking && (capture_waiting || !self.pending_captures.is_empty()) {
            screen = self.capture_kms_screen();
            if screen.is_none() {
                let items = self.renderer.collect_draws(&self.space, &mut self.dmabuf_state.stats, None);
                damage = self.renderer.render(&items);
                self.composed_without_overlay = false;
            }
        }

        self.answer_captures(damage, vblank, screen.as_ref());

        if redraw {
            if !feedback.is_empty() {
                self.frame_seq += 1;
            }
            for (_, mut feedback) in feedback {
                feedback.presented::<_, Monotonic>(
                    vblank,
                    Refresh::Fixed(self.vblank.interval),
                    self.frame_seq,
                    wp_presentation_feedback::Kind::Vsync | wp_presentation_feedback::Kind::HwCompletion,
                );
            }
            let output = self.output.clone();
            for window in self.space.elements() {
                window.send_frame(&output, vblank, Some(self.vblank.interval), |_, _| Some(output.clone()));
                // smithay's Window does not know the surfaces of Xwayland before 23.1.
                if let (None, Some(surface)) = (window.wl_surface(), crate::xwayland::wl_surface_of(window)) {
                    send_frames_surface_tree(&surface, &output, vblank, Some(self.vblank.interval), |_, _| {
                        Some(output.clone())
                    });
                }
            }
        }
    }
}

impl Axiom {
    /// The presentation feedback of this frame's surfaces, one per output, the primary
    /// output's first; each window's goes with the output under its centre, to be sent
    /// with that output's flip. The surface on a display plane (`on_plane`) is flagged
    /// zero-copy, and only it. Windows a fullscreen buffer on the primary plane hides
    /// (`direct`: wholly on the primary output, below it) and windows the composed
    /// frame does not show (`hidden_windows`, keyed by their surface) are never shown: their
    /// feedback is `discarded` now.
    fn take_presentation_feedback(
        &self,
        on_plane: Option<&WlSurface>,
        direct: bool,
        hidden_windows: &HashSet<ObjectId>,
    ) -> Vec<(Output, OutputPresentationFeedback)> {
        let mut outputs: Vec<Output> = vec![self.output.clone()];
        outputs.extend(self.space.outputs().filter(|o| **o != self.output).cloned());
        let mut feedback: Vec<(Output, OutputPresentationFeedback)> =
            outputs.into_iter().map(|o| (o.clone(), OutputPresentationFeedback::new(&o))).collect();
        let primary = self.primary_area();
        let mut hidden = OutputPresentationFeedback::new(&self.output);
        for window in self.space.elements() {
            let is_on_plane = on_plane.is_some_and(|s| window.wl_surface().as_deref() == Some(s));
            let output = self.output_under_centre(window).unwrap_or_else(|| self.output.clone());
            let inside_primary = self.space.element_geometry(window).is_some_and(|g| primary.contains_rect(g));
            let root =
                window.wl_surface().map(|s| s.id()).or_else(|| crate::xwayland::wl_surface_of(window).map(|s| s.id()));
            let covered = root.is_some_and(|id| hidden_windows.contains(&id));
            let target = match feedback.iter_mut().find(|(o, _)| *o == output) {
                _ if !is_on_plane && (covered || direct && inside_primary) => &mut hidden,
                Some((_, f)) => f,
                None => &mut feedback[0].1,
            };
            let flags = if is_on_plane { Kind::ZeroCopy } else { Kind::empty() };
            window.take_presentation_feedback(target, |_, _| Some(output.clone()), |_, _| flags);
        }
        hidden.discarded();
        feedback
    }
}
