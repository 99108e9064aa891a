//! wp_fifo_v1 and wp_commit_timing_v1, through smithay's managed mode: smithay
//! holds a commit that waits on a FIFO barrier or for a target time, and we
//! release it at a tick of the clock that paces the surface (`backend/vblank.rs`:
//! the primary clock, or its headless output's own): a FIFO barrier once the
//! content that set it has been presented, a commit timer once the frame after
//! this tick is presented at or after its target. A client committing with FIFO
//! as fast as it can thus gets one frame per refresh of its output.

use std::time::Duration;

use smithay::output::Output;
use smithay::reexports::rustix::fs::Timespec;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, Resource, Weak};
use smithay::utils::{Monotonic, Time};
use smithay::wayland::commit_timing::{CommitTimerBarrierStateUserData, CommitTimerStateUserData};
use smithay::wayland::compositor::{get_parent, with_states, CompositorHandler};
use smithay::wayland::fifo::{FifoBarrierCachedState, FifoCachedState};
use smithay::{delegate_commit_timing, delegate_fifo};

use crate::Axiom;

delegate_fifo!(Axiom);
delegate_commit_timing!(Axiom);

/// The surfaces that use FIFO or commit timers, alive or not (pruned at each tick).
#[derive(Default)]
pub struct PacedSurfaces(Vec<Weak<WlSurface>>);

impl Axiom {
    /// Before each commit (and before smithay's hooks hold it): a surface that uses
    /// either protocol is tracked, and the clocks tick until what it waits for is released.
    pub(crate) fn note_paced_commit(&mut self, surface: &WlSurface) {
        let paced = with_states(surface, |states| {
            let fifo = *states.cached_state.get::<FifoCachedState>().pending();
            fifo.wait_barrier || fifo.set_barrier || states.data_map.get::<CommitTimerStateUserData>().is_some()
        });
        if !paced {
            return;
        }
        if !self.paced_surfaces.0.iter().any(|weak| weak.id() == surface.id()) {
            self.paced_surfaces.0.push(surface.downgrade());
        }
        self.keep_clocks_ticking();
    }

    /// At a tick of the clock `paced` names (None: the primary clock), whose next
    /// frame is presented at `next` on CLOCK_MONOTONIC: releases the FIFO barriers of
    /// the surfaces it paces and the commit timers due by then. Whether any of its
    /// surfaces still waits for a later target.
    pub(crate) fn release_paced_commits(&mut self, paced: Option<&Output>, next: Duration) -> bool {
        self.paced_surfaces.0.retain(|weak| weak.upgrade().is_ok());
        let next =
            Time::<Monotonic>::from(Timespec { tv_sec: next.as_secs() as i64, tv_nsec: next.subsec_nanos() as i64 });
        let mut released = Vec::new();
        let mut waiting = false;
        for weak in &self.paced_surfaces.0 {
            let Ok(surface) = weak.upgrade() else { continue };
            if self.clock_of_surface(&surface).as_ref() != paced {
                continue;
            }
            let (signalled, later) = with_states(&surface, |states| {
                let barrier = states.cached_state.get::<FifoBarrierCachedState>().current().barrier.take();
                let mut signalled = barrier.inspect(|b| b.signal()).is_some();
                let mut later = false;
                if let Some(timers) = states.data_map.get::<CommitTimerBarrierStateUserData>() {
                    let mut timers = timers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    signalled |= timers.signal_until(next);
                    later = timers.next_deadline().is_some();
                }
                (signalled, later)
            });
            waiting |= later;
            match surface.client() {
                Some(client) if signalled && !released.iter().any(|c: &Client| c.id() == client.id()) => {
                    released.push(client)
                }
                _ => {}
            }
        }
        let dh = self.display_handle.clone();
        for client in released {
            self.client_compositor_state(&client).blocker_cleared(self, &dh);
        }
        waiting
    }

    /// The output whose clock paces `surface`'s window (None: the primary clock's,
    /// also for a surface no window holds yet).
    fn clock_of_surface(&self, surface: &WlSurface) -> Option<Output> {
        let mut root = surface.clone();
        while let Some(parent) = get_parent(&root) {
            root = parent;
        }
        self.window_for_surface(&root).and_then(|window| self.paced_by(&window))
    }
}
