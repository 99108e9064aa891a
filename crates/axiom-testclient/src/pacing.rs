//! wp_fifo_v1 and wp_commit_timing_v1 from the client side.

use std::time::Duration;

use wayland_client::protocol::wl_surface::WlSurface;
use wayland_protocols::wp::commit_timing::v1::client::{
    wp_commit_timer_v1::WpCommitTimerV1, wp_commit_timing_manager_v1::WpCommitTimingManagerV1,
};
use wayland_protocols::wp::fifo::v1::client::{wp_fifo_manager_v1::WpFifoManagerV1, wp_fifo_v1::WpFifoV1};

use crate::client::{State, TestClient};

impl TestClient {
    /// A wp_fifo_v1 for `surface`.
    pub fn fifo(&mut self, surface: &WlSurface) -> anyhow::Result<WpFifoV1> {
        let manager: WpFifoManagerV1 = self.globals.bind(&self.qh, 1..=1, ())?;
        Ok(manager.get_fifo(surface, &self.qh, ()))
    }

    /// A wp_commit_timer_v1 for `surface`.
    pub fn commit_timer(&mut self, surface: &WlSurface) -> anyhow::Result<WpCommitTimerV1> {
        let manager: WpCommitTimingManagerV1 = self.globals.bind(&self.qh, 1..=1, ())?;
        Ok(manager.get_timer(surface, &self.qh, ()))
    }

    /// Sends what was asked so far without waiting for anything.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.conn.flush()?;
        Ok(())
    }
}

/// Sets the next commit's target time, on CLOCK_MONOTONIC.
pub fn set_target(timer: &WpCommitTimerV1, time: Duration) {
    let secs = time.as_secs();
    timer.set_timestamp((secs >> 32) as u32, secs as u32, time.subsec_nanos());
}

/// Now on CLOCK_MONOTONIC, the clock of wp_presentation and commit timers.
pub fn monotonic_now() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

wayland_client::delegate_noop!(State: ignore WpFifoManagerV1);
wayland_client::delegate_noop!(State: ignore WpFifoV1);
wayland_client::delegate_noop!(State: ignore WpCommitTimingManagerV1);
wayland_client::delegate_noop!(State: ignore WpCommitTimerV1);
