//! The repaint clocks. The primary clock, at the primary output's refresh
//! interval, paces composition on every backend. Each further output has a clock
//! of its own at its refresh (headless: `--output WxH@HZ`; KMS: each CRTC's mode,
//! `backend/drm/heads.rs`): the windows on it get frame callbacks at its rate, and
//! a frame is composed at its ticks too where the canvas changed. On KMS a tick
//! queues the frame on the outputs its clock paces only, and each CRTC's flip
//! events pace its own flips (`backend/drm/mod.rs`); an output whose part of the
//! scene another clock composed owes a frame at its own clock's next tick.
//!
//! Tick k happens at start + k * interval on CLOCK_MONOTONIC; headless and
//! winit frames are presented when the GPU has finished them, never before
//! the tick that composed them, with that tick's number as their `seq`
//! (`backend/repaint.rs`). A clock runs only while there is work: an idle
//! compositor does not wake up at all.

use std::time::{Duration, Instant};

use smithay::output::Output;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::utils::{Clock, Monotonic};

use crate::Axiom;

pub struct Vblank {
    start: Instant,
    start_monotonic: Duration,
    pub interval: Duration,
    /// The tick the armed timer fires at; None while idle.
    armed: Option<u32>,
    /// The windows this clock paces have a frame to be told of (frame callbacks,
    /// presentation feedback): set by every repaint request.
    pub frame_due: bool,
}

/// A headless output other than the primary one, with its own refresh rate.
pub struct OutputClock {
    pub output: Output,
    pub vblank: Vblank,
}

impl Vblank {
    pub fn new(interval: Duration) -> Self {
        Self {
            start: Instant::now(),
            start_monotonic: Clock::<Monotonic>::new().now().into(),
            interval,
            armed: None,
            frame_due: false,
        }
    }

    /// The first tick still ahead (after a stall, missed ticks are skipped, not fired in a burst).
    fn next_tick(&self) -> u32 {
        (self.start.elapsed().as_nanos() / self.interval.as_nanos().max(1)) as u32 + 1
    }

    fn deadline(&self, tick: u32) -> Instant {
        self.start + self.interval * tick
    }

    fn monotonic(&self, tick: u32) -> Duration {
        self.start_monotonic + self.interval * tick
    }
}

impl Axiom {
    /// Something on screen changed: repaint at the next vblank, and tell every
    /// clock's windows of the frame at its own next tick.
    pub fn schedule_repaint(&mut self) {
        self.needs_redraw = true;
        self.keep_clocks_ticking();
    }

    /// Every clock ticks at least once more, with frame events due.
    pub fn keep_clocks_ticking(&mut self) {
        self.vblank.frame_due = true;
        self.arm_vblank();
        for index in 0..self.output_clocks.len() {
            self.output_clocks[index].vblank.frame_due = true;
            self.arm_output_clock(index);
        }
    }

    /// Makes sure the primary clock runs (for a repaint or a pending screencopy).
    pub fn arm_vblank(&mut self) {
        if self.vblank.armed.is_some() {
            return;
        }
        let tick = self.vblank.next_tick();
        self.vblank.armed = Some(tick);
        let inserted = self
            .loop_handle
            .insert_source(Timer::from_deadline(self.vblank.deadline(tick)), |_, _, state| state.on_vblank());
        if let Err(err) = inserted {
            tracing::error!("cannot arm the repaint timer: {err}");
            self.vblank.armed = None;
        }
    }

    fn on_vblank(&mut self) -> TimeoutAction {
        let tick = self.vblank.armed.unwrap_or_else(|| self.vblank.next_tick());
        self.repaint_tick(None, self.vblank.monotonic(tick), u64::from(tick));
        // Captures that wait for damage are answered by the repaint that damage schedules.
        let captures = self.pending_captures.iter().any(|c| !c.with_damage);
        if self.needs_redraw || self.vblank.frame_due || captures || self.kms_frame_owed(None) {
            let next = self.vblank.next_tick().max(tick + 1);
            self.vblank.armed = Some(next);
            TimeoutAction::ToInstant(self.vblank.deadline(next))
        } else {
            self.vblank.armed = None;
            TimeoutAction::Drop
        }
    }

    fn arm_output_clock(&mut self, index: usize) {
        let clock = &mut self.output_clocks[index].vblank;
        if clock.armed.is_some() {
            return;
        }
        let tick = clock.next_tick();
        clock.armed = Some(tick);
        let deadline = clock.deadline(tick);
        let output = self.output_clocks[index].output.clone();
        let inserted = self
            .loop_handle
            .insert_source(Timer::from_deadline(deadline), move |_, _, state| state.on_output_clock(&output));
        if let Err(err) = inserted {
            tracing::error!("cannot arm an output's repaint timer: {err}");
            self.output_clocks[index].vblank.armed = None;
        }
    }

    fn on_output_clock(&mut self, output: &Output) -> TimeoutAction {
        let Some(index) = self.output_clocks.iter().position(|c| c.output == *output) else {
            return TimeoutAction::Drop;
        };
        let clock = &self.output_clocks[index].vblank;
        let tick = clock.armed.unwrap_or_else(|| clock.next_tick());
        let time = clock.monotonic(tick);
        self.repaint_tick(Some(output), time, u64::from(tick));
        let owed = self.kms_frame_owed(Some(output));
        let Some(index) = self.output_clocks.iter().position(|c| c.output == *output) else {
            return TimeoutAction::Drop;
        };
        let clock = &mut self.output_clocks[index].vblank;
        if clock.frame_due || owed {
            let next = clock.next_tick().max(tick + 1);
            clock.armed = Some(next);
            TimeoutAction::ToInstant(clock.deadline(next))
        } else {
            clock.armed = None;
            TimeoutAction::Drop
        }
    }

    /// Makes sure the clock pacing `output` runs (a display owes a frame).
    pub(crate) fn arm_clock_of(&mut self, output: &Output) {
        match self.output_clocks.iter().position(|c| c.output == *output) {
            Some(index) => self.arm_output_clock(index),
            None => self.arm_vblank(),
        }
    }

    /// The refresh interval of the clock `paced` names (None: the primary clock).
    pub fn clock_interval(&self, paced: Option<&Output>) -> Duration {
        paced
            .and_then(|o| self.output_clocks.iter().find(|c| c.output == *o))
            .map_or(self.vblank.interval, |c| c.vblank.interval)
    }

    /// Makes the clock `paced` names tick again after this tick.
    pub(crate) fn tick_again(&mut self, paced: Option<&Output>) {
        match paced.and_then(|o| self.output_clocks.iter_mut().find(|c| c.output == *o)) {
            Some(clock) => clock.vblank.frame_due = true,
            None => self.vblank.frame_due = true,
        }
    }

    /// Whether frame events are due on the clock `paced` names (None: the primary
    /// clock); clears it.
    pub(crate) fn take_frame_due(&mut self, paced: Option<&Output>) -> bool {
        let clock = match paced {
            Some(output) => match self.output_clocks.iter_mut().find(|c| c.output == *output) {
                Some(clock) => &mut clock.vblank,
                None => return false,
            },
            None => &mut self.vblank,
        };
        std::mem::take(&mut clock.frame_due)
    }

    /// The clock pacing `output`'s windows: its own, or the primary (None).
    pub fn clock_of(&self, output: &Output) -> Option<&Output> {
        self.output_clocks.iter().find(|c| c.output == *output).map(|c| &c.output)
    }
}
