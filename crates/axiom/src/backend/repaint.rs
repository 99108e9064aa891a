//! The repaint step shared by backends: render if something changed, answer
//! screencopy, then send frame callbacks and presentation feedback.

use smithay::desktop::utils::{send_frames_surface_tree, OutputPresentationFeedback};
use smithay::desktop::Window;
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

use crate::handlers::frame_pacing::FifoBarriers;
use crate::render::damage::Rect;
use crate::render::occlusion::Quad;
use crate::Axiom;

impl Axiom {
    /// Called once per refresh interval of a clock (`vblank.rs`): `paced` names the
    /// output whose own clock ticks, None the primary clock; `vblank` is this tick's
    /// time on CLOCK_MONOTONIC and `tick` its number. Composes where the canvas
    /// changed, then tells the windows this clock paces of the frame.
    pub fn repaint_tick(&mut self, paced: Option<&Output>, vblank: Duration, tick: u64) {
        let frame_due = self.take_frame_due(paced);
        let capture_waiting = self.pending_captures.iter().any(|c| !c.with_damage);
        // A capture into a dma-buf is painted on the GPU and waits for nothing.
        let readback_waiting = self.pending_captures.iter().any(|c| !c.with_damage && c.dmabuf.is_none());
        // While the GPU still composes the last frame (or waits on a client's fence for
        // it), the repaint waits for a later tick; frame callbacks go on. A capture that
        // wants the screen now (not its next damage) wants what clients committed, and
        // waits for its bytes anyway: it waits for the GPU.
        // A display paced by this clock may owe a frame of a scene another clock composed.
        let wants_redraw = self.needs_redraw || self.kms_frame_owed(paced);
        let mut throttled = wants_redraw && self.renderer.completions.frames_ahead();
        if throttled && readback_waiting {
            match self.renderer.wait_for_gpu() {
                Ok(()) => throttled = false,
                Err(err) => tracing::error!("waiting for the GPU before a capture failed: {err}"),
            }
        }
        let redraw = wants_redraw && !throttled;
        // While the GPU is busy with frames of our own, frame events wait for the tick
        // that composes: a client answering them now would replace what it committed
        // before it was ever composed (its frame discarded). While a frame waits on a
        // client's fence (for as long as that client likes) they go on, so that the
        // other clients are not held by it.
        let send_frames = frame_due && (!throttled || self.renderer.completions.waits_on_client());
        if throttled {
            // The tick that composes what waits owes its windows their frame events too.
            self.tick_again(paced);
        }
        if !redraw && !frame_due && !capture_waiting {
            return;
        }

        // On a display, the feedback goes with the frame and is sent when its flip completes.
        let mut feedback = Vec::new();
        let mut barriers = None;
        let mut damage = None;
        let mut overlay = None;
        let mut direct = None;
        let mut composed = None;
        let mut plane_cursor = None;
        let mut scene_lacks_plane = false;
        let mut planes_in_use = false;
        // Clients changed something since the last composition (not only a frame owed).
        let fresh = self.needs_redraw;
        if redraw {
            self.kms_frames_given(paced);
            self.sync_foreign_toplevels();
            self.update_scanout_feedback();
            // A client buffer on the display plane needs no composition; failing that, the
            // top window may go on an overlay plane, and only the rest is composed. (The
            // cursor goes on a cursor plane above them where it can; where it is composed
            // instead, no plane under it shows a client's buffer.)
            let cursor = self.cursor_image();
            plane_cursor = self.plane_cursor(cursor.as_ref());
            let mut accepted = self.accept_direct_scanout(plane_cursor.as_ref());
            if accepted.is_none() {
                overlay = self.try_overlay_scanout(plane_cursor.as_ref());
            }
            // Every clock's frame leaves out what the primary output's planes show; only
            // the primary's clock puts it there, with its own frames.
            let on_plane = accepted.as_ref().map(|(surface, ..)| surface).or(overlay.as_ref().map(|o| &o.surface));
            // A plane showed a buffer, or is to: what clients changed may concern it.
            planes_in_use = self.plane_surface.is_some() || on_plane.is_some();
            self.plane_surface = on_plane.cloned();
            if paced.is_some() {
                (accepted, overlay) = (None, None);
            }
            let on_plane = accepted.as_ref().map(|(surface, ..)| surface).or(overlay.as_ref().map(|o| &o.surface));
            // Other outputs still show the composed canvas while the primary's plane shows a client buffer.
            if accepted.is_none() || self.kms_shows_more_than_primary() {
                let left_out = self.plane_surface.clone();
                scene_lacks_plane = left_out.is_some();
                composed = Some(self.renderer.collect_draws(
                    &self.space,
                    &mut self.dmabuf_state.stats,
                    left_out.as_ref(),
                    cursor.as_ref(),
                ));
            }
            // A window on the overlay plane hides what lies wholly under it, as an opaque quad would.
            let on_top = overlay.as_ref().map(|o| {
                let origin = self.primary_area().loc;
                let dst = o.frame.dst;
                Quad {
                    window: o.surface.id(),
                    area: Rect::from_xywh(
                        [origin.x + dst.loc.x, origin.y + dst.loc.y, dst.size.w, dst.size.h].map(|v| v as f32),
                    ),
                    opaque: o.opaque,
                }
            });
            let outputs = self.output_canvas_rects();
            let hidden = composed
                .as_ref()
                .map(|items| self.renderer.hidden_windows(items, on_top, &outputs))
                .unwrap_or_default();
            feedback = self.take_presentation_feedback(paced, on_plane, accepted.is_some(), &hidden);
            let mut taken = self.take_fifo_barriers(paced);
            self.hidden_windows = hidden;
            if let Some((surface, buffer, fb)) = accepted {
                let (output, primary) = feedback.swap_remove(0);
                let tearing = crate::handlers::tearing_control::wants_tearing(&surface);
                let barriers = taken.take_for(&output);
                self.show_direct((fb, buffer), primary, barriers, tearing, plane_cursor.as_ref());
                direct = Some(surface);
            }
            barriers = Some(taken);
            self.needs_redraw = false;
        } else if frame_due && !throttled {
            // Composed at another output's tick already: what that frame hid, it still hides.
            // (While throttled, what clients committed is not composed yet: its feedback waits.)
            let hidden = std::mem::take(&mut self.hidden_windows);
            feedback = self.take_presentation_feedback(paced, None, false, &hidden);
            barriers = Some(self.take_fifo_barriers(paced));
            self.hidden_windows = hidden;
        }
        let composed_now = composed.is_some();
        if let Some(items) = composed {
            damage = self.renderer.render(&items);
            // Headless and nested outputs show the canvas; KMS outputs are painted into
            // their scanout buffers when they flip (`backend/drm`).
            if !self.backend.flips() {
                self.renderer.paint_canvas();
            }
            self.renderer.present();
            let frame_barriers = barriers.get_or_insert_default();
            let planes =
                crate::backend::FramePlanes { overlay, direct: direct.is_some(), cursor: plane_cursor.as_ref() };
            // What another clock's outputs owe a frame for: what changed of the scene, and
            // at another clock's tick whatever clients changed, for the primary output's
            // planes show buffers the scene leaves out.
            let planes_changed = fresh && paced.is_some() && planes_in_use;
            let changed = crate::backend::SceneChange { damage, planes: planes_changed };
            feedback = self.show_frame(feedback, frame_barriers, planes, paced, changed);
            // The scene leaves out what the primary output's planes show, whichever clock composed it.
            self.composed_without_overlay = scene_lacks_plane;
        } else if direct.is_some() {
            self.renderer.forget_frame();
        }
        // Screencopy wants what is on screen. Where the output texture lacks part of it (a
        // plane shows a client buffer), the display's writeback connector captures it, or
        // failing that the scene is composed whole.
        let lacking = self.renderer.frame_forgotten() || self.composed_without_overlay;
        let mut screen = None;
        if lacking && !throttled && (capture_waiting || !self.pending_captures.is_empty()) {
            // A capture into a dma-buf, of a window, or of an output without the cursor
            // where the display shows it, is painted from the scene: it must be whole.
            let cursor_shown = self.renderer.scene_cursor_area().is_some();
            let from_screen = |c: &crate::handlers::capture::PendingCapture| {
                c.dmabuf.is_none() && c.source.output().is_some() && (c.cursors || !cursor_shown)
            };
            if self.pending_captures.iter().all(from_screen) {
                screen = self.capture_screen();
            }
            if screen.is_none() {
                let cursor = self.cursor_image();
                let items =
                    self.renderer.collect_draws(&self.space, &mut self.dmabuf_state.stats, None, cursor.as_ref());
                damage = self.renderer.render(&items);
                self.composed_without_overlay = false;
            }
        }

        // This tick's frame is the last submission before captures (a capture's own is none).
        let submission = self.renderer.completions.last();
        self.answer_captures(damage, vblank, screen.as_ref());

        // Off KMS a frame is presented when the GPU has finished it, or at this tick where
        // it has already: its feedback, FIFO barriers and frame events wait for that.
        let interval = self.clock_interval(paced);
        let unfinished = !self.renderer.completions.has_finished(submission);
        if send_frames && !self.backend.flips() {
            for output in self.outputs_paced_by(paced) {
                crate::outputs::count_frame(&output);
            }
        }
        // A frame waiting on a client's fence may wait for as long as that client likes:
        // what it did not compose does not wait with it.
        let owed = unfinished && (composed_now || !self.renderer.completions.waits_on_client());
        let presented = Presented { tick, time: vblank, interval, paced: paced.cloned() };
        let shown = ShownFrame { feedback, barriers: barriers.unwrap_or_default(), frame_events: send_frames };
        // Frames the GPU has finished (the event loop may have waited for it this tick,
        // for a capture or a pool's remap) go before this tick's.
        self.present_finished_frames();
        if shown.is_empty() {
            // Nothing waits for this frame (a throttled tick): nothing is owed for it.
        } else if owed {
            self.owed_at_completion.push((submission, presented, shown));
        } else {
            // Now, not the tick's time: never before a frame presented just above.
            let now: Duration = smithay::utils::Clock::<Monotonic>::new().now().into();
            self.present(&presented, shown, now);
        }
        // Commit timers due by the next frame; while throttled, what clients committed is
        // not shown yet: they wait.
        if send_frames && !throttled && self.release_commit_timers(paced, vblank + interval) {
            self.tick_again(paced);
        }
        self.apply_released_fifo_commits();
    }

    /// Presents a frame of the clock `presented.paced` names at `time` (not before its
    /// tick): its feedback, frame events (a client that draws its next frame now finds
    /// the GPU free for it, where one told earlier would only wait behind this frame:
    /// `scripts/bench-kms`), and its FIFO barriers.
    fn present(&mut self, presented: &Presented, shown: ShownFrame, time: Duration) {
        let time = time.max(presented.time);
        let ShownFrame { feedback, barriers, frame_events } = shown;
        for (_, mut feedback) in feedback {
            feedback.presented::<_, Monotonic>(
                time,
                Refresh::Fixed(presented.interval),
                presented.tick,
                wp_presentation_feedback::Kind::Vsync | wp_presentation_feedback::Kind::HwCompletion,
            );
        }
        if frame_events {
            self.send_frame_events(presented.paced.as_ref(), time);
        }
        drop(barriers);
    }

    /// The GPU has finished submission `id` and those before it (`render/completion.rs`):
    /// what they read in place is let go, and the frames written by then are flipped.
    pub(crate) fn on_gpu_finished(&mut self, id: crate::render::completion::SubmissionId) {
        self.renderer.finished_through(id);
        self.finish_gpu_captures();
        self.flip_written_frames();
        self.present_finished_frames();
        self.apply_released_fifo_commits();
    }

    /// Presents, now, the frames owed to submissions the GPU has finished.
    fn present_finished_frames(&mut self) {
        if self.owed_at_completion.is_empty() {
            return;
        }
        let completions = &self.renderer.completions;
        let (done, waiting) =
            std::mem::take(&mut self.owed_at_completion).into_iter().partition(|(s, ..)| completions.has_finished(*s));
        self.owed_at_completion = waiting;
        let now: Duration = smithay::utils::Clock::<Monotonic>::new().now().into();
        for (_, presented, shown) in done {
            self.present(&presented, shown, now);
        }
    }

    /// Frame callbacks (at `time`) for the windows the clock `paced` names paces.
    fn send_frame_events(&self, paced: Option<&Output>, time: Duration) {
        let output = paced.cloned().unwrap_or_else(|| self.output.clone());
        let interval = self.clock_interval(paced);
        for window in self.space.elements().filter(|w| self.paced_by(w).as_ref() == paced) {
            window.send_frame(&output, time, Some(interval), |_, _| Some(output.clone()));
            // smithay's Window does not know the surfaces of Xwayland before 23.1.
            if let (None, Some(surface)) = (window.wl_surface(), crate::xwayland::wl_surface_of(window)) {
                send_frames_surface_tree(&surface, &output, time, Some(interval), |_, _| Some(output.clone()));
            }
        }
        // An animated cursor draws its next image on the primary clock's frames.
        if let Some(surface) = self.cursor_surface().filter(|_| paced.is_none()) {
            send_frames_surface_tree(&surface, &output, time, Some(interval), |_, _| Some(output.clone()));
        }
    }

    /// The output whose own clock paces `window` (the one under its centre, where it
    /// has one); None: the primary clock.
    pub(crate) fn paced_by(&self, window: &Window) -> Option<Output> {
        if self.output_clocks.is_empty() {
            return None;
        }
        self.output_under_centre(window).and_then(|o| self.clock_of(&o).cloned())
    }

    /// The outputs whose frames the clock `paced` names shows.
    fn outputs_paced_by(&self, paced: Option<&Output>) -> Vec<Output> {
        match paced {
            Some(output) => vec![output.clone()],
            None => self.space.outputs().filter(|o| self.clock_of(o).is_none()).cloned().collect(),
        }
    }
}

impl Axiom {
    /// The presentation feedback of this frame's surfaces that the clock `paced` names
    /// paces, one per output, the primary output's (or the paced one's) first; each window's goes with the output under its centre, to be sent
    /// with that output's flip. The surface on a display plane (`on_plane`) is flagged
    /// zero-copy, and only it. Windows a fullscreen buffer on the primary plane hides
    /// (`direct`: wholly on the primary output, below it) and windows the composed
    /// frame does not show (`hidden_windows`, keyed by their surface) are never shown: their
    /// feedback is `discarded` now.
    fn take_presentation_feedback(
        &self,
        paced: Option<&Output>,
        on_plane: Option<&WlSurface>,
        direct: bool,
        hidden_windows: &HashSet<ObjectId>,
    ) -> Vec<(Output, OutputPresentationFeedback)> {
        let mut outputs: Vec<Output> = vec![paced.unwrap_or(&self.output).clone()];
        if paced.is_none() {
            outputs.extend(self.space.outputs().filter(|o| **o != self.output && self.clock_of(o).is_none()).cloned());
        }
        let mut feedback: Vec<(Output, OutputPresentationFeedback)> =
            outputs.into_iter().map(|o| (o.clone(), OutputPresentationFeedback::new(&o))).collect();
        let primary = self.primary_area();
        let mut hidden = OutputPresentationFeedback::new(&self.output);
        // Windows another clock paces keep their feedback for its tick.
        for window in self.space.elements().filter(|w| self.paced_by(w).as_ref() == paced) {
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

/// Which frame of which clock a composed frame is, for its presentation: the tick
/// that composed it (its number is the frame's `seq`, the output's refresh count),
/// and the refresh interval.
pub struct Presented {
    tick: u64,
    time: Duration,
    interval: Duration,
    paced: Option<Output>,
}

/// What waits for a frame off KMS to be presented.
pub struct ShownFrame {
    feedback: Vec<(Output, OutputPresentationFeedback)>,
    barriers: FifoBarriers,
    frame_events: bool,
}

impl ShownFrame {
    fn is_empty(&self) -> bool {
        self.feedback.is_empty() && self.barriers.is_empty() && !self.frame_events
    }
}
