//! The compositor state: every protocol global, the window space and the renderer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smithay::desktop::{PopupManager, Space, Window};
use smithay::input::{Seat, SeatState};
use smithay::output::Output;
use smithay::reexports::calloop::ping::Ping;
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
use crate::handlers::capture::PendingCapture;
use crate::handlers::color_representation::ColorRepresentationState;
use crate::handlers::screencopy::ScreencopyManagerState;
use crate::handlers::tearing_control::TearingControlState;
use crate::render::Renderer;

/// `CLOCK_MONOTONIC`: the clock of every presentation timestamp we send.
pub const PRESENTATION_CLOCK: u32 = 1;

pub struct Axiom {
    pub display_handle: DisplayHandle,
    pub loop_handle: LoopHandle<'static, Axiom>,
    pub loop_signal: LoopSignal,
    /// Set by `stop`: the event loop ends after this dispatch.
    pub stopping: bool,
    /// Readiness to announce and the program run under the compositor (`launch.rs`).
    pub launch: Option<crate::launch::Launch>,

    pub compositor_state: CompositorState,
    pub xdg_shell_state: XdgShellState,
    pub xdg_decoration_state: XdgDecorationState,
    pub shm_state: ShmState,
    pub seat_state: SeatState<Axiom>,
    pub data_device_state: DataDeviceState,
    pub output_manager_state: OutputManagerState,
    pub presentation_state: PresentationState,
    pub fifo_manager_state: smithay::wayland::fifo::FifoManagerState,
    pub commit_timing_manager_state: smithay::wayland::commit_timing::CommitTimingManagerState,
    /// Surfaces that use wp_fifo_v1 or wp_commit_timing_v1 (`handlers/frame_pacing.rs`).
    pub paced_surfaces: crate::handlers::frame_pacing::PacedSurfaces,
    pub viewporter_state: ViewporterState,
    pub fractional_scale_state: FractionalScaleManagerState,
    pub single_pixel_buffer_state: SinglePixelBufferState,
    pub screencopy_state: ScreencopyManagerState,
    pub image_copy_capture: crate::handlers::image_copy_capture::ImageCopyCaptureState,
    /// A handle for each mapped window (ext_foreign_toplevel_list_v1), by which capture
    /// clients name one.
    pub foreign_toplevels: crate::handlers::foreign_toplevel::ForeignToplevels,
    pub dmabuf_state: DmabufState,
    pub color_representation_state: ColorRepresentationState,
    pub tearing_control_state: TearingControlState,
    /// Explicit sync, offered once a DRM device that can is driven (`handlers/drm_syncobj.rs`).
    pub drm_syncobj_state: Option<smithay::wayland::drm_syncobj::DrmSyncobjState>,
    /// The DRM files its timelines are imported into (`handlers/timeline_files.rs`).
    pub timeline_files: Option<crate::handlers::timeline_files::TimelineFiles>,

    pub space: Space<Window>,
    /// Toplevels that have not committed a buffer yet.
    pub unmapped_windows: Vec<Window>,
    pub popups: PopupManager,
    pub seat: Seat<Axiom>,
    /// The pointer's cursor (`cursor.rs`).
    pub cursor: crate::cursor::Cursor,
    /// The primary output (`outputs.rs`); the only one on every backend but DRM.
    pub output: Output,
    /// Its wl_output global, where the backend may take it away.
    pub output_global: Option<smithay::reexports::wayland_server::backend::GlobalId>,
    pub vblank: crate::backend::vblank::Vblank,
    /// The clocks of headless outputs other than the primary one (`vblank.rs`).
    pub output_clocks: Vec<crate::backend::vblank::OutputClock>,
    /// The windows the last composed frame did not show (their feedback is `discarded`).
    pub hidden_windows: std::collections::HashSet<smithay::reexports::wayland_server::backend::ObjectId>,
    /// `--kiosk`: every toplevel fullscreen on the primary output (`handlers/xdg_shell.rs`).
    pub kiosk: bool,

    pub renderer: Renderer,
    /// Something on screen may have changed since the last repaint.
    pub needs_redraw: bool,
    /// Screencopy requests waiting for the next repaint.
    pub pending_captures: Vec<PendingCapture>,
    /// Captures painted into clients' dma-bufs, until the GPU is done with them.
    pub captures_on_gpu: Vec<crate::handlers::capture::CaptureOnGpu>,
    /// Sequence number for a KMS flip whose event carried no time (wp_presentation
    /// `seq`); elsewhere a frame's `seq` is its tick's number.
    pub frame_seq: u64,
    /// Frames presented once the GPU has finished the submission that composed them:
    /// their feedback, FIFO barriers and frame events (`backend/repaint.rs`).
    pub owed_at_completion: Vec<(
        crate::render::completion::SubmissionId,
        crate::backend::repaint::Presented,
        crate::backend::repaint::ShownFrame,
    )>,
    /// Per-client resource caps.
    pub limits: crate::limits::Limits,
    pub xdg_strict: crate::handlers::strict::XdgStrict,
    /// The X11 window manager, once Xwayland is ready (see `xwayland.rs`).
    pub xwm: Option<smithay::xwayland::X11Wm>,
    /// The Wayland socket's event source (`listener.rs`), once listening.
    pub listener: Option<smithay::reexports::calloop::RegistrationToken>,
    /// Xwayland's process and X11 sockets, while it runs (`xwayland::stop` ends them).
    pub xwayland_source: Option<smithay::reexports::calloop::RegistrationToken>,
    /// Xwayland's own Wayland connection.
    pub xwayland_client: Option<smithay::reexports::wayland_server::Client>,
    pub xwayland_shell_state: smithay::wayland::xwayland_shell::XWaylandShellState,
    /// Set by a backend that dispatches clients; see `ClientReaper`.
    pub reaper: Option<ClientReaper>,
    /// Where frames go: off screen, a window, or the displays of a KMS device.
    pub backend: crate::backend::Backend,
    /// The output texture lacks the window an overlay plane shows (screencopy composes it whole).
    pub composed_without_overlay: bool,
    /// The surface a plane of the primary output shows as it is (direct scanout, overlay),
    /// as its clock last decided: frames other clocks compose leave it out too.
    pub plane_surface: Option<smithay::reexports::wayland_server::protocol::wl_surface::WlSurface>,
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
            fifo_manager_state: smithay::wayland::fifo::FifoManagerState::new::<Self>(dh),
            commit_timing_manager_state: smithay::wayland::commit_timing::CommitTimingManagerState::new::<Self>(dh),
            paced_surfaces: Default::default(),
            viewporter_state: ViewporterState::new::<Self>(dh),
            fractional_scale_state: FractionalScaleManagerState::new::<Self>(dh),
            single_pixel_buffer_state: SinglePixelBufferState::new::<Self>(dh),
            screencopy_state: ScreencopyManagerState::new(dh),
            image_copy_capture: crate::handlers::image_copy_capture::ImageCopyCaptureState::new(dh),
            foreign_toplevels: crate::handlers::foreign_toplevel::ForeignToplevels::new(dh),
            dmabuf_state: DmabufState::new(dh, &renderer.adapter, &renderer.tiled_format_modifiers())?,
            color_representation_state: ColorRepresentationState::new(dh),
            tearing_control_state: TearingControlState::new(dh),
            drm_syncobj_state: None,
            timeline_files: None,
            space,
            unmapped_windows: Vec::new(),
            popups: PopupManager::default(),
            seat,
            cursor: Default::default(),
            output,
            output_global: None,
            vblank: crate::backend::vblank::Vblank::new(refresh_interval),
            output_clocks: Vec::new(),
            kiosk: false,
            hidden_windows: Default::default(),
            renderer,
            needs_redraw: false,
            pending_captures: Vec::new(),
            captures_on_gpu: Vec::new(),
            frame_seq: 0,
            owed_at_completion: Vec::new(),
            limits: crate::limits::Limits::default(),
            xdg_strict: Default::default(),
            xwm: None,
            listener: None,
            xwayland_source: None,
            xwayland_client: None,
            xwayland_shell_state: smithay::wayland::xwayland_shell::XWaylandShellState::new::<Self>(dh),
            reaper: None,
            backend: Default::default(),
            composed_without_overlay: false,
            plane_surface: None,
            display_handle,
            loop_handle,
            loop_signal,
            stopping: false,
            launch: None,
        })
    }
}

impl Axiom {
    /// The canvas the renderer composes, in logical units: every output's area (`outputs.rs`).
    pub fn output_size(&self) -> smithay::utils::Size<i32, smithay::utils::Logical> {
        self.renderer.output_size().to_f64().to_logical(self.renderer.canvas_scale).to_i32_round()
    }
}

/// Per-client data smithay needs.
#[derive(Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
    /// What the client holds, checked against `Axiom::limits`.
    pub usage: crate::limits::ClientUsage,
    /// Some wl_shm pool of this client could fault when read: it is not a memfd
    /// sealed against shrinking that covers the pool, or it was resized. Only
    /// clients without such a pool get their shm read by the GPU in place.
    pub shm_may_fault: std::sync::atomic::AtomicBool,
    reaper: Option<ClientReaper>,
}

impl ClientData for ClientState {
    fn initialized(&self, _client_id: ClientId) {}
    fn disconnected(&self, client_id: ClientId, reason: DisconnectReason) {
        tracing::debug!(?client_id, ?reason, "client disconnected");
        if let Some(reaper) = &self.reaper {
            reaper.bury(client_id);
        }
    }
}

impl Axiom {
    /// The data for a client about to be inserted into the display.
    pub fn new_client_state(&self) -> Arc<ClientState> {
        Arc::new(ClientState { reaper: self.reaper.clone(), ..Default::default() })
    }
}

/// Finishes off killed clients. wayland-rs only destroys a killed client's
/// objects and closes its socket the next time the display is dispatched
/// with something to read; a client killed outside request dispatch (an error
/// found while rendering its buffer) would otherwise linger until another
/// client speaks. The backend dispatches the ids this collects.
#[derive(Clone)]
pub struct ClientReaper {
    dead: Arc<Mutex<Vec<ClientId>>>,
    wake: Ping,
}

impl ClientReaper {
    pub fn new(wake: Ping) -> Self {
        Self { dead: Default::default(), wake }
    }

    fn bury(&self, client: ClientId) {
        if let Ok(mut dead) = self.dead.lock() {
            dead.push(client);
        }
        self.wake.ping();
    }

    /// The clients killed since the last call.
    pub fn take(&self) -> Vec<ClientId> {
        self.dead.lock().map(|mut dead| std::mem::take(&mut *dead)).unwrap_or_default()
    }
}
