//! wp_fifo_v1 and wp_commit_timing_v1, through smithay's managed mode: smithay
//! holds a commit that waits on a FIFO barrier or for a target time. A FIFO
//! barrier is released once the content that set it has been presented: the
//! barriers go with the frame composed at a tick of the clock that paces the
//! surface (`backend/vblank.rs`: the primary clock, or its headless output's
//! own) and are signalled by its flip on KMS, or when its GPU work is done
//! elsewhere. A commit timer is released at the tick whose frame is presented at
//! or after its target. A client committing with FIFO as fast as it can thus
//! gets one frame per refresh of its output, and never two in one refresh.

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

    /// The FIFO barriers set by what the surfaces the clock `paced` names (None: the
    /// primary clock) show now, each with the output its window is on: they go with
    /// the frame that shows that content, and are signalled when it is presented.
    pub(crate) fn take_fifo_barriers(&mut self, paced: Option<&Output>) -> FifoBarriers {
        self.paced_surfaces.0.retain(|weak| weak.upgrade().is_ok());
        let mut barriers = FifoBarriers::default();
        for weak in &self.paced_surfaces.0 {
            let Ok(surface) = weak.upgrade() else { continue };
            let root = root_of(&surface);
            let window = self.window_for_surface(&root);
            if window.as_ref().and_then(|w| self.paced_by(w)).as_ref() != paced {
                continue;
            }
            let taken = with_states(&surface, |states| {
                states.cached_state.get::<FifoBarrierCachedState>().current().barrier.take()
            });
            if let Some(barrier) = taken {
                let output = window.and_then(|w| self.output_under_centre(&w)).unwrap_or_else(|| self.output.clone());
                barriers.0.push((output, barrier));
            }
        }
        barriers
    }

    /// At a tick of the clock `paced` names, whose next frame is presented at `next`
    /// on CLOCK_MONOTONIC: releases the commit timers of its surfaces due by then.
    /// Whether any of its surfaces still waits for a later target.
    pub(crate) fn release_commit_timers(&mut self, paced: Option<&Output>, next: Duration) -> bool {
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
                let Some(timers) = states.data_map.get::<CommitTimerBarrierStateUserData>() else {
                    return (false, false);
                };
                let mut timers = timers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                (timers.signal_until(next), timers.next_deadline().is_some())
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

    /// Commits held on FIFO barriers signalled since (a frame presented or dropped) go
    /// on: each client with a paced surface looks at what it holds again.
    pub(crate) fn apply_released_fifo_commits(&mut self) {
        if !FifoBarriers::take_signalled() {
            return;
        }
        let mut clients: Vec<Client> = Vec::new();
        for weak in &self.paced_surfaces.0 {
            if let Some(client) = weak.upgrade().ok().and_then(|s| s.client()) {
                if !clients.iter().any(|c| c.id() == client.id()) {
                    clients.push(client);
                }
            }
        }
        let dh = self.display_handle.clone();
        for client in clients {
            self.client_compositor_state(&client).blocker_cleared(self, &dh);
        }
    }

    /// The output whose clock paces `surface`'s window (None: the primary clock's,
    /// also for a surface no window holds yet).
    fn clock_of_surface(&self, surface: &WlSurface) -> Option<Output> {
        self.window_for_surface(&root_of(surface)).and_then(|window| self.paced_by(&window))
    }
}

fn root_of(surface: &WlSurface) -> WlSurface {
    let mut root = surface.clone();
    while let Some(parent) = get_parent(&root) {
        root = parent;
    }
    root
}

/// The FIFO barriers of content a frame shows, with the output each surface is on.
/// They are signalled when the frame is presented (its flip on KMS, its GPU work
/// done elsewhere), and also when it is dropped unshown (a failed flip, an output
/// gone): whatever becomes of the frame, no client waits for it forever. A frame
/// replaced before it was shown hands its barriers to the one replacing it.
#[derive(Default)]
pub struct FifoBarriers(Vec<(Output, smithay::wayland::compositor::Barrier)>);

/// Set when a barrier is signalled, so that the event loop knows to apply the
/// commits it held (`Axiom::apply_released_fifo_commits`).
static SIGNALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl FifoBarriers {
    /// Those of surfaces on `output`, taken out.
    pub fn take_for(&mut self, output: &Output) -> FifoBarriers {
        let (on, rest) = std::mem::take(&mut self.0).into_iter().partition(|(o, _)| o == output);
        self.0 = rest;
        FifoBarriers(on)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes over `other`'s barriers (a frame replacing an unshown one).
    pub fn absorb(&mut self, mut other: FifoBarriers) {
        self.0.append(&mut other.0);
    }

    fn take_signalled() -> bool {
        SIGNALLED.swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FifoBarriers {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        for (_, barrier) in self.0.drain(..) {
            barrier.signal();
        }
        SIGNALLED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
