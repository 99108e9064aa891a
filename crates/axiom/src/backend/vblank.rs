//! The repaint clock: a timer at the primary output's refresh interval that
//! paces composition on every backend (headless and winit outputs, and KMS,
//! whose CRTCs' flip events pace only their own flips: `backend/drm/mod.rs`).
//!
//! Tick k happens at start + k * interval on CLOCK_MONOTONIC; headless and
//! winit presentation times are tick times, so they are exact multiples of the
//! interval apart as on a real display. The timer runs only while there is
//! work: an idle compositor does not wake up at all.

use std::time::{Duration, Instant};

use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::utils::{Clock, Monotonic};

use crate::Axiom;

pub struct Vblank {
    start: Instant,
    start_monotonic: Duration,
    pub interval: Duration,
    /// The tick the armed timer fires at; None while idle.
    armed: Option<u32>,
}

impl Vblank {
    pub fn new(interval: Duration) -> Self {
        Self { start: Instant::now(), start_monotonic: Clock::<Monotonic>::new().now().into(), interval, armed: None }
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
    /// Something on screen changed: repaint at the next vblank.
    pub fn schedule_repaint(&mut self) {
        self.needs_redraw = true;
        self.arm_vblank();
    }

    /// Makes sure the vblank timer runs (for a repaint or a pending screencopy).
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
        self.repaint_tick(self.vblank.monotonic(tick));
        // Captures that wait for damage are answered by the repaint that damage schedules.
        if self.needs_redraw || self.pending_captures.iter().any(|c| !c.with_damage) {
            let next = self.vblank.next_tick().max(tick + 1);
            self.vblank.armed = Some(next);
            TimeoutAction::ToInstant(self.vblank.deadline(next))
        } else {
            self.vblank.armed = None;
            TimeoutAction::Drop
        }
    }
}
