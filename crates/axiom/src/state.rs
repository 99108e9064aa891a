//! The compositor state: every protocol global, the window space and the renderer.

use std::sync::Arc;
use std::time::Duration;

use smithay::desktop::{PopupManager, Space, Window};
use smithay::input::{Seat, SeatState};
use smithay::output::Output;
use smithay::reexports::calloop::{LoopHandle, LoopSignal};
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::wl_shm;
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::wayland::compositor::{CompositorClientState, CompositorState};
use smithay::wayland::fractional_scale::FractionalScaleManagerState;
use smithay::wayland::output::OutputManagerState;
use smithay::wayland::presentation::PresentationState;
use smithay::wayland::selection::data_device::DataDeviceState;
use smithay::wayland::shell::xdg::decoration::XdgDecorationState;
use smithay::wayland::shell::xdg::XdgShellState;
use smithay::wayland::shm::ShmState;
use smithay::wayland::single_pixel_buffer::SinglePixelBufferState;
use smithay::wayland::viewporter::ViewporterState;

use crate::dmabuf::DmabufState;
use crate::handlers::color_representation::ColorRepresentationState;
use crate::handlers::screencopy::{PendingCapture, ScreencopyManagerState};
use crate::render::Renderer;

/// `CLOCK_MONOTONIC`: the clock of every presentation timestamp we send.
pub const PRESENTATION_CLOCK: u32 = 1;

pub struct Axiom {
    pub display_handle: DisplayHandle,
    pub loop_handle: LoopHandle<'static, Axiom>,
    pub loop_signal: LoopSignal,

    pub compositor_state: CompositorState,
    pub xdg_shell_state: XdgShellState,
    pub xdg_decoration_state: XdgDecorationState,
    pub shm_state: ShmState,
    pub seat_state: SeatState<Axiom>,
    pub data_device_state: DataDeviceState,
    pub output_manager_state: OutputManagerState,
    pub presentation_state: PresentationState,
    pub viewporter_state: ViewporterState,
    pub fractional_scale_state: FractionalScaleManagerState,
    pub single_pixel_buffer_state: SinglePixelBufferState,
    pub screencopy_state: ScreencopyManagerState,
    pub dmabuf_state: DmabufState,
    pub color_representation_state: ColorRepresentationState,

    pub space: Space<Window>,
    /// Toplevels that have not committed a buffer yet.
    pub unmapped_windows: Vec<Window>,
    pub popups: PopupManager,
    pub seat: Seat<Axiom>,
    pub output: Output,
    pub vblank: crate::backend::vblank::Vblank,

    pub renderer: Renderer,
    /// Something on screen may have changed since the last repaint.
    pub needs_redraw: bool,
    /// Screencopy requests waiting for the next repaint.
    pub pending_captures: Vec<PendingCapture>,
    /// Sequence number of the last presented frame (wp_presentation `seq`).
    pub frame_seq: u64,
}

impl Axiom {
    pub fn new(
        display_handle: DisplayHandle,
        loop_handle: LoopHandle<'static, Axiom>,
        loop_signal: LoopSignal,
        renderer: Renderer,
        output: Output,
        refresh_interval: Duration,
    ) -> anyhow::Result<Self> {
        let dh = &display_handle;
        let shm_formats: Vec<wl_shm::Format> = crate::render::formats::SHM_FORMATS.iter().map(|f| f.shm).collect();

        let mut seat_state = SeatState::new();
        let seat = crate::handlers::seat::create_virtual_seat(dh, &mut seat_state)?;

        let mut space = Space::default();
        space.map_output(&output, (0, 0));

        Ok(Self {
            compositor_state: CompositorState::new_v6::<Self>(dh),
            xdg_shell_state: XdgShellState::new::<Self>(dh),
            xdg_decoration_state: XdgDecorationState::new::<Self>(dh),
            shm_state: ShmState::new::<Self>(dh, shm_formats),
            seat_state,
            data_device_state: DataDeviceState::new::<Self>(dh),
            output_manager_state: OutputManagerState::new_with_xdg_output::<Self>(dh),
            presentation_state: PresentationState::new::<Self>(dh, PRESENTATION_CLOCK),
            viewporter_state: ViewporterState::new::<Self>(dh),
            fractional_scale_state: FractionalScaleManagerState::new::<Self>(dh),
            single_pixel_buffer_state: SinglePixelBufferState::new::<Self>(dh),
            screencopy_state: ScreencopyManagerState::new(dh),
            dmabuf_state: DmabufState::new(dh, &renderer.adapter)?,
            color_representation_state: ColorRepresentationState::new(dh),
            space,
            unmapped_windows: Vec::new(),
            popups: PopupManager::default(),
            seat,
            output,
            vblank: crate::backend::vblank::Vblank::new(refresh_interval),
            renderer,
            needs_redraw: false,
            pending_captures: Vec::new(),
            frame_seq: 0,
            display_handle,
            loop_handle,
            loop_signal,
        })
    }
}

impl Axiom {
    pub fn output_size(&self) -> smithay::utils::Size<i32, smithay::utils::Logical> {
        let size = self.renderer.output_size();
        (size.w, size.h).into()
    }
}

/// Per-client data smithay needs.
#[derive(Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
}

impl ClientData for ClientState {
    fn initialized(&self, _client_id: ClientId) {}
    fn disconnected(&self, client_id: ClientId, reason: DisconnectReason) {
        tracing::debug!(?client_id, ?reason, "client disconnected");
    }
}

impl ClientState {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}
