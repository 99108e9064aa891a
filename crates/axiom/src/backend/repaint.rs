//! The repaint step shared by backends: render if something changed, answer
//! screencopy, then send frame callbacks and presentation feedback.

use smithay::desktop::utils::{send_frames_surface_tree, OutputPresentationFeedback};
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::wayland::seat::WaylandFocus;
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

        let mut feedback = OutputPresentationFeedback::new(&self.output);
        let mut damage = None;
        if redraw {
            let output = self.output.clone();
            for window in self.space.elements() {
                window.take_presentation_feedback(
                    &mut feedback,
                    |_, _| Some(output.clone()),
                    |_, _| wp_presentation_feedback::Kind::empty(),
                );
            }
            self.update_scanout_feedback();
        }
        // On a display, the feedback goes with the frame and is sent when its flip completes.
        let mut feedback = Some(feedback);
        let mut overlay = None;
        let mut direct = None;
        if redraw {
            // A client buffer on the display plane needs no composition; failing that, the
            // top window may go on an overlay plane, and only the rest is composed.
            direct = self.try_direct_scanout(&mut feedback);
            if direct.is_none() {
                overlay = self.try_overlay_scanout();
            }
            self.needs_redraw = false;
        }
        // Other outputs still show the composed canvas while the primary's plane shows a client buffer.
        if redraw && (direct.is_none() || self.kms_shows_more_than_primary()) {
            let on_plane = direct.clone().or_else(|| overlay.as_ref().map(|o| o.surface.clone()));
            let items = self.renderer.collect_draws(&self.space, &mut self.dmabuf_state.stats, on_plane.as_ref());
            damage = self.renderer.render(&items);
            self.renderer.present();
            if self.kms.is_some() {
                self.show_on_kms(feedback.take(), overlay, direct.is_some());
            }
            self.composed_without_overlay = on_plane.is_some();
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
            if let Some(mut feedback) = feedback {
                self.frame_seq += 1;
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
