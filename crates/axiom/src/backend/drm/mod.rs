//! The DRM/KMS backend: a seat session through libseat, the first KMS device
//! with a connected connector (found through udev, or in /dev/dri where there
//! is no udev database; none connected yet, it waits for one: `hotplug.rs`),
//! one output per connected connector at its preferred mode or the one `--mode`
//! asks for (`heads.rs`), and
//! on each CRTC page flips between two dumb buffers, paced by its vblank events.
//!
//! Each frame is composed by the renderer as on every backend, and each output's
//! part of it written into its back buffer by the GPU: the dumb buffers are
//! shared with the renderer as dma-bufs and imported as render targets
//! (`render/scanout_target.rs`); where the renderer cannot write them, the part
//! is read back and copied by the CPU, and the log says why. That holds unless a fullscreen client's dma-buf
//! goes on the primary output's plane as it is (`scanout.rs`); the top window's
//! dma-buf may go on an overlay plane, the rest being composed (`overlay.rs`); the
//! cursor goes on each CRTC's cursor plane where it fits (`cursor_plane.rs`). A
//! frame's presentation feedback is sent when its flip completes, with the
//! kernel's vblank time and sequence; a client buffer on a plane is released only
//! once another frame has replaced it there. Screencopy can be written back by
//! the display (`writeback.rs`); connectors plugged and unplugged add and remove
//! outputs (`hotplug.rs`).

mod cursor_plane;
mod gbm_buffers;
mod heads;
mod hotplug;
mod input;
mod overlay;
mod scanout;
mod tearing;
mod writeback;

pub use cursor_plane::PlaneCursor;
pub use heads::Kms;
pub use overlay::Overlay;
pub use writeback::Captured;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use smithay::backend::drm::{DrmDeviceFd, DrmNode, DrmSurface, NodeType, PlaneConfig, PlaneState};
use smithay::backend::drm::{DrmEventMetadata as EventMetadata, DrmEventTime as DrmTime};
use smithay::backend::renderer::utils::Buffer;
use smithay::backend::session::libseat::LibSeatSession;
use smithay::backend::session::{Event as SessionEvent, Session};
use smithay::desktop::utils::OutputPresentationFeedback;
use smithay::reexports::drm::buffer::{Buffer as _, DrmFourcc};
use smithay::reexports::drm::control::{
    connector, crtc, dumbbuffer::DumbBuffer, framebuffer, plane, Device as _, Mode, ModeFlags, ModeTypeFlags,
};
use smithay::reexports::rustix::fs::OFlags;
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback::Kind;
use smithay::reexports::wayland_server::backend::GlobalId;
use smithay::utils::{DeviceFd, Monotonic, Physical, Rectangle, Transform};
use smithay::wayland::presentation::Refresh;

use crate::cli::Options;
use crate::handlers::frame_pacing::FifoBarriers;
use crate::render::completion::SubmissionId;
use crate::render::scanout_target::{ScanoutTarget, SharedScanoutBuffer};
use crate::render::Renderer;
use crate::Axiom;
use cursor_plane::{CursorOnPlane, CursorPlane, HeadCursor};

use super::serve::{block_signals, init_output, serve};

pub fn run(options: Options) -> anyhow::Result<u8> {
    let options = options.with_one_output()?;
    let _ = MODE_CHOICES.set(options.modes.clone());
    let signals = block_signals()?;
    let (mut session, session_events) = LibSeatSession::new().map_err(|err| {
        anyhow::anyhow!(
            "cannot open a seat through libseat ({err}): start axiom from a logind or seatd session, \
             or as root with LIBSEAT_BACKEND=builtin; `--backend headless` needs no seat"
        )
    })?;
    let seat = udev_seat(&session);
    let opened = open_kms_device(&mut session, &seat)?;
    let (sized, name, display_gpu) = match &opened {
        Some(opened) => {
            let first = &opened.connected[0];
            let (width, height) = first.mode.size();
            let refresh = if first.mode.vrefresh() > 0 { f64::from(first.mode.vrefresh()) } else { 60.0 };
            let sized = Options { size: (u32::from(width), u32::from(height)), refresh, ..options.clone() };
            // Render on the GPU that drives the display where there is an adapter on it.
            let display_gpu = pci_bus_id(&opened.fd);
            if display_gpu.is_none() {
                tracing::info!(
                    "{} is not a PCI GPU: the renderer takes the first suitable adapter",
                    opened.path.display()
                );
            }
            (sized, first.name.clone(), display_gpu)
        }
        None => {
            let (width, height) = options.size;
            tracing::warn!(
                "KMS: no connector is connected: waiting for one; until then clients have a {width}x{height} \
                 output that no display shows ({WAITING_OUTPUT})"
            );
            (options.clone(), WAITING_OUTPUT.to_owned(), None)
        }
    };
    let (event_loop, mut state) = init_output(&sized, (&name, "KMS"), None, display_gpu.as_deref())?;
    state.backend = super::Backend::Drm(None);
    let mut libinput = input::start(&session, &seat, &event_loop.handle())?;
    tracing::info!("direct scanout {}", if options.direct_scanout { "on" } else { "off (--no-direct-scanout)" });
    if let Some(opened) = opened {
        state.drive_kms_device(opened, session.clone(), options.direct_scanout)?;
    }
    hotplug::watch(&event_loop.handle(), session, &seat, options.direct_scanout);

    event_loop
        .handle()
        .insert_source(session_events, move |event, _, state| {
            match event {
                SessionEvent::PauseSession => {
                    tracing::info!("session paused (VT switch): releasing the display and input devices");
                    libinput.suspend();
                    if let Some(kms) = state.backend.kms_mut() {
                        kms.device.pause();
                    }
                }
                SessionEvent::ActivateSession => {
                    tracing::info!("session active again: taking the display and input devices back");
                    if libinput.resume().is_err() {
                        tracing::warn!("cannot take the input devices back");
                    }
                    let Some(kms) = state.backend.kms_mut() else { return };
                    if let Err(err) = kms.device.activate(false) {
                        tracing::warn!("cannot take the display back: {err}");
                    }
                    // A flip queued before the pause never completes: start over with a modeset.
                    for head in &mut kms.heads {
                        if let Some(mut lost) = head.flipping.take() {
                            lost.feedback.discarded();
                        }
                        head.needs_modeset = true;
                        // Whichever clock ticks first, each output gets its frame back.
                        head.owes_frame = true;
                    }
                    state.schedule_repaint();
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("session source: {e}"))?;
    serve(event_loop, state, &options, signals, "drm output ready")
}

/// The seat whose devices udev assigns us. libseat's noop backend names its seat
/// "noop", which udev knows nothing of: use seat0 there.
fn udev_seat(session: &LibSeatSession) -> String {
    match session.seat() {
        seat if seat == "noop" => "seat0".into(),
        seat => seat,
    }
}

/// The connector an output is shown on, and how.
struct ConnectedOutput {
    connector: connector::Handle,
    crtc: crtc::Handle,
    mode: Mode,
    /// e.g. Virtual-1, HDMI-A-1.
    name: String,
}

/// KMS devices of `seat`, the boot GPU first: udev's view where it has one, else
/// every /dev/dri/card* (containers and small VMs run no udev daemon).
fn kms_device_paths(seat: &str) -> Vec<PathBuf> {
    let mut paths = smithay::backend::udev::all_gpus(seat).unwrap_or_default();
    if paths.is_empty() {
        if let Ok(dir) = std::fs::read_dir("/dev/dri") {
            paths = dir
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("card")))
                .collect();
        }
    }
    paths.sort();
    if let Ok(Some(primary)) = smithay::backend::udev::primary_gpu(seat) {
        paths.retain(|p| *p != primary);
        paths.insert(0, primary);
    }
    paths
}

/// A KMS device opened through the seat session, with its connected connectors.
pub(super) struct OpenedDevice {
    path: PathBuf,
    /// What the session opened, handed back to it when the device is let go.
    session_fd: OwnedFd,
    fd: DrmDeviceFd,
    connected: Vec<ConnectedOutput>,
}

/// The output clients have while no connector is connected (until one is, it
/// makes way for the connectors' outputs).
const WAITING_OUTPUT: &str = "HEADLESS-1";

/// Opens the first KMS device that has a connected connector; None where devices
/// open but none has one yet.
fn open_kms_device(session: &mut LibSeatSession, seat: &str) -> anyhow::Result<Option<OpenedDevice>> {
    let paths = kms_device_paths(seat);
    anyhow::ensure!(
        !paths.is_empty(),
        "no DRM device (/dev/dri/card*) on this machine; `--backend headless` needs none"
    );
    let mut reasons = Vec::new();
    let mut unconnected = false;
    for path in paths {
        match open_with_connected(session, &path) {
            Ok(Some(opened)) => return Ok(Some(opened)),
            Ok(None) => unconnected = true,
            Err(reason) => reasons.push(format!("{reason:#}")),
        }
    }
    if unconnected {
        return Ok(None);
    }
    anyhow::bail!("no usable KMS device: {}", reasons.join("; "))
}

/// Opens the KMS device at `path`; None (closed again) if no connector of it is connected.
fn open_with_connected(session: &mut LibSeatSession, path: &Path) -> anyhow::Result<Option<OpenedDevice>> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let session_fd = session
        .open(path, flags)
        .map_err(|err| anyhow::anyhow!("{}: cannot open ({err}){}", path.display(), permission_hint(path)))?;
    // A duplicate for the device, so that the session can be handed back what it opened.
    let fd = match session_fd.try_clone() {
        Ok(fd) => DrmDeviceFd::new(DeviceFd::from(fd)),
        Err(err) => {
            let _ = session.close(session_fd);
            anyhow::bail!("{}: {err}", path.display());
        }
    };
    let listed = match connected_outputs(&fd, &[], &[]) {
        Ok(connected) if !connected.is_empty() => {
            return Ok(Some(OpenedDevice { path: path.to_owned(), session_fd, fd, connected }));
        }
        Ok(_) => Ok(None),
        Err(err) => Err(anyhow::anyhow!("{}: {err}", path.display())),
    };
    drop(fd);
    let _ = session.close(session_fd);
    listed
}

fn permission_hint(path: &Path) -> &'static str {
    match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            ": permission denied; run from a logind or seatd session, or join the video group"
        }
        _ => "",
    }
}

/// Every connected display connector but those in `known`, in the device's order,
/// with its preferred mode and a CRTC of its own, none of them in `taken`. A
/// connector no free CRTC can drive is left out (logged).
fn connected_outputs(
    fd: &DrmDeviceFd,
    known: &[connector::Handle],
    taken: &[crtc::Handle],
) -> anyhow::Result<Vec<ConnectedOutput>> {
    let resources = fd.resource_handles()?;
    let mut used = taken.to_vec();
    let mut outputs = Vec::new();
    for &handle in resources.connectors().iter().filter(|c| !known.contains(c)) {
        let info = fd.get_connector(handle, true)?;
        // A writeback connector says it is connected, but shows nothing.
        if info.interface() == connector::Interface::Writeback {
            continue;
        }
        let Some(mode) = chosen_mode(&info) else { continue };
        let name = connector_name(&info);
        let crtc = info
            .encoders()
            .iter()
            .filter_map(|&e| fd.get_encoder(e).ok())
            .flat_map(|e| resources.filter_crtcs(e.possible_crtcs()))
            .find(|crtc| !used.contains(crtc));
        let Some(crtc) = crtc else {
            tracing::warn!("KMS: no free CRTC can drive {name}: it stays dark");
            continue;
        };
        used.push(crtc);
        outputs.push(ConnectedOutput { connector: handle, crtc, mode, name });
    }
    Ok(outputs)
}

/// The connectors' modes `--mode` asks for, set once at start.
static MODE_CHOICES: std::sync::OnceLock<Vec<crate::cli::ModeChoice>> = std::sync::OnceLock::new();

/// A connector's name as outputs are named after it (`Virtual-1`, `HDMI-A-2`).
fn connector_name(info: &connector::Info) -> String {
    format!("{}-{}", info.interface().as_str(), info.interface_id())
}

/// The mode a connected connector is driven at: the one `--mode` asks for where it
/// lists a progressive mode of that size (the refresh closest to the one asked for;
/// with none asked for, its preferred mode where that is the size, else the closest
/// to its refresh), else the one it prefers (its first, where it names none); None
/// while it is disconnected or lists no mode.
fn chosen_mode(info: &connector::Info) -> Option<Mode> {
    if info.state() != connector::State::Connected {
        return None;
    }
    let modes = info.modes();
    let preferred = modes.iter().find(|m| m.mode_type().contains(ModeTypeFlags::PREFERRED)).or(modes.first())?;
    let name = connector_name(info);
    let Some(choice) = MODE_CHOICES.get().and_then(|c| c.iter().find(|c| c.connector == name)) else {
        return Some(*preferred);
    };
    let (w, h) = choice.output.size;
    let of_size = |m: &Mode| (u32::from(m.size().0), u32::from(m.size().1)) == (w, h);
    if choice.output.refresh.is_none() && of_size(preferred) {
        return Some(*preferred);
    }
    let want = choice.output.refresh.unwrap_or_else(|| refresh_hz(preferred));
    let distance = |m: &&Mode| (refresh_hz(m) - want).abs();
    // Progressive modes only: an interlaced or double-scanned one is never what is meant.
    let odd = ModeFlags::INTERLACE | ModeFlags::DBLSCAN;
    let sized = modes.iter().filter(|m| of_size(m) && !m.flags().intersects(odd));
    match sized.min_by(|a, b| distance(a).total_cmp(&distance(b))) {
        Some(mode) => Some(*mode),
        None => {
            tracing::warn!("KMS: {name} lists no {w}x{h} mode: it keeps its preferred one");
            Some(*preferred)
        }
    }
}

/// A mode's refresh rate in Hz, to the millihertz.
fn refresh_hz(mode: &Mode) -> f64 {
    f64::from(smithay::output::Mode::from(*mode).refresh) / 1000.0
}

/// dev_t for the linux-dmabuf feedback: the device's render node, or the KMS node
/// itself where the device renders nothing (vkms).
fn main_device(fd: &DrmDeviceFd) -> u64 {
    let Ok(dev) = fd.dev_id() else { return 0 };
    DrmNode::from_dev_id(dev)
        .ok()
        .and_then(|node| node.node_with_type(NodeType::Render).and_then(Result::ok))
        .map_or(dev, |render| render.dev_id())
}

/// The PCI bus id ("0000:03:00.0") of the KMS device, as sysfs names it; None for
/// devices not on PCI (vkms, say).
fn pci_bus_id(fd: &DrmDeviceFd) -> Option<String> {
    let dev = fd.dev_id().ok()?;
    let sysfs = PathBuf::from(format!("/sys/dev/char/{}:{}/device", rustix::fs::major(dev), rustix::fs::minor(dev)));
    let device = std::fs::canonicalize(&sysfs).ok()?;
    let subsystem = std::fs::canonicalize(device.join("subsystem")).ok()?;
    if subsystem.file_name()? != "pci" {
        return None;
    }
    device.file_name()?.to_str().map(str::to_owned)
}

/// A buffer composed frames are shown from, and the renderer's import of it where
/// the renderer writes it itself.
struct DisplayBuffer {
    memory: DisplayMemory,
    fb: framebuffer::Handle,
    target: Option<ScanoutTarget>,
}

/// Where a display buffer's memory comes from.
enum DisplayMemory {
    /// GBM, for the renderer to draw into (`gbm_buffers.rs`).
    Gbm(gbm_buffers::GbmScanoutBuffer),
    /// A dumb buffer: shared with the renderer as a dma-buf, or written by the CPU.
    Dumb(DumbBuffer),
}

/// Frees the display's side of `buffers`; the renderer's imports hold their memory until
/// the GPU is done with it.
fn destroy_display_buffers(fd: &DrmDeviceFd, buffers: Vec<DisplayBuffer>) {
    for DisplayBuffer { memory, fb, .. } in buffers {
        match memory {
            // Its framebuffer goes with it.
            DisplayMemory::Gbm(buffer) => drop(buffer),
            DisplayMemory::Dumb(dumb) => {
                let _ = fd.destroy_framebuffer(fb);
                let _ = fd.destroy_dumb_buffer(dumb);
            }
        }
    }
}

/// A frame whose buffers the GPU is writing, by submission `submission`: flipped to
/// `fb` once it is done (dumb buffer `composed`, where it is one).
struct Writing {
    frame: QueuedFrame,
    fb: framebuffer::Handle,
    composed: Option<usize>,
    submission: SubmissionId,
}

/// What a flip puts on the primary plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The output texture, copied into a dumb buffer.
    Composed,
    /// A client's dma-buf as it is.
    Client(framebuffer::Handle),
}

/// A frame on its way to the screen, with what waits for it to get there.
struct QueuedFrame {
    frame: Frame,
    /// A client framebuffer on an overlay plane, above the frame.
    overlay: Option<overlay::OverlayFrame>,
    /// The presentation feedback of the surfaces it shows.
    feedback: OutputPresentationFeedback,
    /// The client buffers it puts on planes, kept (unreleased) while the display
    /// may read them.
    buffers: Vec<Buffer>,
    /// The FIFO barriers of what it shows, signalled once it is presented (or dropped).
    barriers: FifoBarriers,
    /// Its surface asks to tear (a client buffer on the primary plane alone).
    tearing: bool,
    /// It was flipped asynchronously: shown at once, not at a vblank.
    torn: bool,
    /// Where the cursor goes (`cursor_plane.rs`), and the cursor buffer the plane shows
    /// with it, once one is ready.
    cursor: HeadCursor,
    cursor_on: Option<CursorOnPlane>,
}

impl QueuedFrame {
    /// The framebuffers of client buffers it puts on planes.
    fn client_framebuffers(&self) -> impl Iterator<Item = framebuffer::Handle> {
        let primary = match self.frame {
            Frame::Client(fb) => Some(fb),
            Frame::Composed => None,
        };
        primary.into_iter().chain(self.overlay.map(|o| o.fb))
    }
}

/// When a flip completed: (time on CLOCK_MONOTONIC, the CRTC's vblank sequence).
pub type FlipTime = (Duration, u64);

/// The flip's time from the event, on the clock of wp_presentation.
fn flip_time(meta: &Option<EventMetadata>) -> Option<FlipTime> {
    let meta = meta.as_ref()?;
    let time = match meta.time {
        DrmTime::Monotonic(time) => time,
        // Kernels without monotonic timestamps: move the realtime stamp onto the monotonic clock.
        DrmTime::Realtime(time) => {
            let ago = std::time::SystemTime::now().duration_since(time).unwrap_or_default();
            Duration::from(smithay::utils::Clock::<Monotonic>::new().now()).saturating_sub(ago)
        }
    };
    Some((time, meta.sequence.into()))
}

/// The output on a CRTC: two dumb buffers for composed frames, and client
/// framebuffers for direct scanout.
pub struct KmsOutput {
    fd: DrmDeviceFd,
    surface: DrmSurface,
    /// Its mode's size, and where it sits on the canvas (`outputs.rs`).
    size: (i32, i32),
    position: (i32, i32),
    mode: Mode,
    buffers: Vec<DisplayBuffer>,
    /// The dumb buffer last handed to the display.
    front: usize,
    /// A composed frame the GPU is writing into a dumb buffer: flipped once it is done.
    writing: Option<Writing>,
    /// The frame of the queued flip; the next one waits for its vblank.
    flipping: Option<QueuedFrame>,
    /// A frame waiting for the pending flip to finish.
    next: Option<QueuedFrame>,
    /// The client buffers on planes now, and their framebuffers.
    on_screen: Vec<Buffer>,
    on_screen_fbs: Vec<framebuffer::Handle>,
    /// The overlay plane the last flip turned on, to turn off when a frame has none.
    overlay_on: Option<plane::Handle>,
    /// The output's refresh interval, for presentation feedback.
    refresh: Duration,
    /// The next frame needs a full commit (first frame, or after a VT switch).
    needs_modeset: bool,
    pub(crate) scanout: scanout::Scanout,
    /// The writeback connector that captures this CRTC, where the device has one.
    writeback: Option<writeback::Writeback>,
    /// Asynchronous flips for surfaces that ask to tear, where the device has them.
    async_flips: tearing::AsyncFlips,
    /// The cursor plane the cursor is shown on, where it has one the renderer can paint.
    cursor_plane: Option<CursorPlane>,
    /// The cursor plane refused a commit and is no longer used: the frames it left the
    /// cursor out of need a repaint.
    pub(super) cursor_plane_lost: bool,
    /// The scene changed since its last frame was queued (at another clock's tick): its
    /// own clock's next tick queues one.
    pub(super) owes_frame: bool,
    /// The connector shown on, its name, and whether it is plugged in (`hotplug.rs`).
    connector: connector::Handle,
    crtc: crtc::Handle,
    name: String,
    connected: bool,
    /// Its wl_output, and the global clients bind it through.
    output: smithay::output::Output,
    global: Option<GlobalId>,
}

impl KmsOutput {
    fn new(
        fd: DrmDeviceFd,
        surface: DrmSurface,
        connected: &ConnectedOutput,
        (output, global): (smithay::output::Output, Option<GlobalId>),
    ) -> anyhow::Result<Self> {
        let (width, height) = connected.mode.size();
        let size = (i32::from(width), i32::from(height));
        let mut buffers: Vec<DisplayBuffer> = Vec::new();
        for _ in 0..2 {
            let buffer = match fd.create_dumb_buffer((size.0 as u32, size.1 as u32), DrmFourcc::Xrgb8888, 32) {
                Ok(buffer) => buffer,
                Err(err) => {
                    destroy_display_buffers(&fd, buffers);
                    return Err(err.into());
                }
            };
            let fb = match fd.add_framebuffer(&buffer, 24, 32) {
                Ok(fb) => fb,
                Err(err) => {
                    let _ = fd.destroy_dumb_buffer(buffer);
                    destroy_display_buffers(&fd, buffers);
                    return Err(err.into());
                }
            };
            buffers.push(DisplayBuffer { memory: DisplayMemory::Dumb(buffer), fb, target: None });
        }
        let async_flips = tearing::AsyncFlips::probe(&fd, surface.plane());
        tracing::info!(
            "KMS: {}: asynchronous page flips (for surfaces that ask to tear): {}",
            connected.name,
            if async_flips.available() { "yes" } else { "no" }
        );
        let refresh_mhz = smithay::output::Mode::from(connected.mode).refresh;
        let refresh = match u64::try_from(refresh_mhz) {
            Ok(mhz) if mhz > 0 => Duration::from_nanos(1_000_000_000_000 / mhz),
            _ => Duration::from_secs(1) / 60,
        };
        Ok(Self {
            fd,
            surface,
            size,
            position: (0, 0),
            mode: connected.mode,
            buffers,
            front: 1,
            writing: None,
            flipping: None,
            next: None,
            on_screen: Vec::new(),
            on_screen_fbs: Vec::new(),
            overlay_on: None,
            refresh,
            needs_modeset: true,
            scanout: Default::default(),
            writeback: None,
            async_flips,
            cursor_plane: None,
            cursor_plane_lost: false,
            // Nothing is on its screen yet.
            owes_frame: true,
            connector: connected.connector,
            crtc: connected.crtc,
            name: connected.name.clone(),
            connected: true,
            output,
            global,
        })
    }

    /// The connector is gone: turn the CRTC off, drop the frames on their way to it,
    /// and let go of the client buffers it showed.
    fn turn_off(&mut self) {
        let written = self.writing.take().map(|w| w.frame);
        for mut frame in [written, self.flipping.take(), self.next.take()].into_iter().flatten() {
            frame.feedback.discarded();
        }
        if let Err(err) = self.surface.clear() {
            tracing::warn!("KMS: cannot turn the CRTC off: {err}");
        }
        self.needs_modeset = true;
        self.overlay_on = None;
        if let Some(plane) = &mut self.cursor_plane {
            plane.shown = None;
        }
        self.on_screen.clear();
        self.on_screen_fbs.clear();
    }

    /// What the display shows now, planes included, written back by the display hardware;
    /// None where it has no writeback connector or the capture failed (logged).
    pub fn capture_screen(&mut self) -> Option<writeback::Captured> {
        let captured = self.writeback.as_mut()?.capture(&self.fd);
        match &captured {
            Ok(_) => tracing::debug!("screencopy: the frame on screen, written back by the display"),
            Err(err) => tracing::warn!("writeback capture failed; composing for screencopy instead: {err:#}"),
        }
        captured.ok()
    }

    /// A new frame was composed (with `overlay` on its plane above it, and `cursor` where
    /// it is): show it now, or at the vblank that ends the pending flip.
    pub fn show(
        &mut self,
        renderer: &mut Renderer,
        feedback: OutputPresentationFeedback,
        barriers: FifoBarriers,
        overlay: Option<Overlay>,
        cursor: Option<&PlaneCursor>,
    ) {
        let (overlay, buffers) = match overlay {
            Some(overlay) => (Some(overlay.frame), vec![overlay.buffer]),
            None => (None, Vec::new()),
        };
        let cursor = self.place_cursor(cursor);
        let frame = QueuedFrame {
            frame: Frame::Composed,
            overlay,
            feedback,
            buffers,
            barriers,
            tearing: false,
            torn: false,
            cursor,
            cursor_on: None,
        };
        self.queue(frame, renderer);
    }

    /// Client buffer `buffer` (framebuffer `fb`) goes on the primary plane.
    fn show_client(
        &mut self,
        (fb, buffer): (framebuffer::Handle, Buffer),
        renderer: &mut Renderer,
        feedback: OutputPresentationFeedback,
        barriers: FifoBarriers,
        tearing: bool,
        cursor: Option<&PlaneCursor>,
    ) {
        let frame = Frame::Client(fb);
        let buffers = vec![buffer];
        let cursor = self.place_cursor(cursor);
        let queued = QueuedFrame {
            frame,
            overlay: None,
            feedback,
            buffers,
            barriers,
            tearing,
            torn: false,
            cursor,
            cursor_on: None,
        };
        self.queue(queued, renderer);
    }

    /// Where this output's frames show `cursor` (None: no cursor shows).
    fn place_cursor(&self, cursor: Option<&PlaneCursor>) -> HeadCursor {
        let Some(plane) = &self.cursor_plane else { return HeadCursor::Composed };
        let crtc = Rectangle::from_size(self.size.into());
        match cursor {
            Some(cursor) if cursor.on_crtc(self.position).overlaps(crtc) => match plane.fits(cursor) {
                true => HeadCursor::Plane(cursor.clone()),
                false => HeadCursor::Composed,
            },
            _ => HeadCursor::Away,
        }
    }

    /// Whether this output's frames compose `cursor` over `area` (CRTC pixels): then no
    /// plane under the cursor can show a client buffer there.
    pub(super) fn composes_cursor_over(&self, cursor: Option<&PlaneCursor>, area: Rectangle<i32, Physical>) -> bool {
        let over = cursor.is_some_and(|c| c.on_crtc(self.position).overlaps(area));
        over && matches!(self.place_cursor(cursor), HeadCursor::Composed)
    }

    fn queue(&mut self, mut frame: QueuedFrame, renderer: &mut Renderer) {
        // A frame still waiting is replaced before it was ever shown: what it showed
        // of FIFO surfaces, the new one shows or replaces.
        if let Some(mut superseded) = self.next.take() {
            superseded.feedback.discarded();
            frame.barriers.absorb(std::mem::take(&mut superseded.barriers));
        }
        self.next = Some(frame);
        self.flush(renderer);
    }

    /// Queues the waiting frame unless a flip is still pending or a frame still being
    /// written. A composed frame is written into the back buffer first, and flipped
    /// once the GPU is done (`written`): the event loop does not wait for it.
    fn flush(&mut self, renderer: &mut Renderer) {
        if !self.connected {
            if let Some(mut unshown) = self.next.take() {
                unshown.feedback.discarded();
            }
            return;
        }
        if self.flipping.is_some() || self.writing.is_some() {
            return;
        }
        // A composed frame is not painted yet while a frame waits on a client's fence
        // (`Axiom::flip_written_frames` comes back when it is done: a submission queued
        // behind it would block in the driver on some, lavapipe, and the event loop with
        // it), nor while the scene reads memory that is gone (a wl_shm pool was resized:
        // the next frame replaces it).
        // So is a cursor buffer: its quads read what the scene's read.
        let paints = self.next.as_ref().is_some_and(|f| f.frame == Frame::Composed || self.paints_cursor(f));
        if paints && (renderer.completions.waits_on_client() || renderer.scene_stale) {
            return;
        }
        let Some(mut queued) = self.next.take() else { return };
        let cursor_painted = self.prepare_cursor(&mut queued, renderer);
        let (fb, composed, painted) = match queued.frame {
            Frame::Client(fb) => (fb, None, cursor_painted),
            Frame::Composed => {
                let back = 1 - self.front;
                let with_cursor = matches!(queued.cursor, HeadCursor::Composed);
                match self.fill(back, renderer, with_cursor) {
                    // Submissions finish in order: the later one is waited for.
                    Ok(filled) => (self.buffers[back].fb, Some(back), filled.max(cursor_painted)),
                    Err(err) => {
                        tracing::warn!("cannot copy the frame into the scanout buffer: {err:#}");
                        queued.feedback.discarded();
                        return;
                    }
                }
            }
        };
        match painted {
            Some(submission) => self.writing = Some(Writing { frame: queued, fb, composed, submission }),
            None => self.commit(queued, fb, composed),
        }
    }

    /// Whether showing `queued` paints a cursor buffer (its image is in neither).
    fn paints_cursor(&self, queued: &QueuedFrame) -> bool {
        let HeadCursor::Plane(cursor) = &queued.cursor else { return false };
        self.cursor_plane.as_ref().is_some_and(|plane| !plane.holds(cursor))
    }

    /// Readies the cursor buffer `queued` shows on the cursor plane, if any: the
    /// submission that paints it, where it is painted.
    fn prepare_cursor(&mut self, queued: &mut QueuedFrame, renderer: &mut Renderer) -> Option<SubmissionId> {
        let HeadCursor::Plane(cursor) = &queued.cursor else { return None };
        let Some(plane) = &mut self.cursor_plane else {
            // Lost since the frame was made: it is composed with the cursor.
            queued.cursor = HeadCursor::Composed;
            return None;
        };
        let (on, painted) = plane.prepare(cursor, self.position, renderer);
        queued.cursor_on = Some(on);
        painted
    }

    /// The GPU may have finished writing the frame being written: flip it then.
    fn written(&mut self, renderer: &Renderer) {
        let Some(writing) = self.writing.take_if(|w| renderer.completions.has_finished(w.submission)) else { return };
        if !self.connected {
            let mut unshown = writing.frame;
            unshown.feedback.discarded();
            return;
        }
        self.commit(writing.frame, writing.fb, writing.composed);
    }

    /// The planes a commit of `queued` showing `fb` on the primary plane sets: the
    /// primary, the overlay (or turns it off), and with `cursor` the cursor plane.
    fn commit_planes(&self, queued: &QueuedFrame, fb: framebuffer::Handle, cursor: bool) -> Vec<PlaneState<'static>> {
        let mut planes = vec![self.primary_plane(fb)];
        match (&queued.overlay, self.overlay_on) {
            (Some(overlay), _) => planes.push(overlay.plane_state()),
            (None, Some(plane)) => planes.push(PlaneState { handle: plane, config: None }),
            (None, None) => {}
        }
        if let Some(plane) = self.cursor_plane.as_ref().filter(|_| cursor) {
            planes.push(plane.state(queued.cursor_on));
        }
        planes
    }

    /// Flips to `fb` (dumb buffer `composed`, where it is one) with the frame's planes.
    fn commit(&mut self, mut queued: QueuedFrame, fb: framebuffer::Handle, composed: Option<usize>) {
        let cursor_shown = self.cursor_plane.as_ref().and_then(|plane| plane.shown);
        let with_cursor = queued.cursor_on.is_some() || cursor_shown.is_some();
        let planes = self.commit_planes(&queued, fb, with_cursor);
        // An asynchronous flip changes the primary plane's framebuffer and nothing else.
        let only_primary = composed.is_none()
            && queued.overlay.is_none()
            && self.overlay_on.is_none()
            && queued.cursor_on == cursor_shown;
        queued.torn = match queued.tearing {
            // The first frame after a mode set (start, VT switch) flips at vblank, silently.
            true if self.needs_modeset => false,
            true if only_primary => self.async_flips.flip(&self.fd, self.surface.plane(), fb, &self.name),
            true => {
                let why = "the frame changes more than the primary plane (an overlay)";
                self.async_flips.vsync_instead(&self.name, "planes", why);
                false
            }
            false => false,
        };
        let committed = if queued.torn {
            Ok(())
        } else if self.needs_modeset {
            self.surface.commit(planes, true)
        } else {
            self.surface.page_flip(planes, true)
        };
        match committed {
            Ok(()) => {
                if std::mem::take(&mut self.needs_modeset) {
                    tracing::info!("KMS: {}: mode set, first frame on screen", self.name);
                }
                if let Some(buffer) = composed {
                    self.front = buffer;
                }
                self.overlay_on = queued.overlay.map(|o| o.plane);
                if let Some(plane) = &mut self.cursor_plane {
                    plane.shown = queued.cursor_on;
                }
                self.flipping = Some(queued);
            }
            // The cursor plane may refuse what no test foresaw (where the cursor is, say):
            // where the same commit without it would pass, the cursor is composed from now
            // on. (A paused session refuses both: the plane is not to blame.)
            Err(err)
                if with_cursor
                    && self.surface.test_state(self.commit_planes(&queued, fb, false), self.needs_modeset).is_ok() =>
            {
                tracing::warn!(
                    "KMS: {}: a commit with the cursor plane failed ({err}): the cursor is composed from now on",
                    self.name
                );
                if let Some(plane) = self.cursor_plane.take() {
                    plane.destroy(&self.fd);
                }
                self.cursor_plane_lost = true;
                queued.feedback.discarded();
            }
            Err(err) => {
                tracing::warn!("KMS: page flip failed: {err}");
                queued.feedback.discarded();
            }
        }
    }

    /// The dumb buffer's framebuffer last handed to the display.
    fn front_framebuffer(&self) -> framebuffer::Handle {
        self.buffers[self.front].fb
    }

    /// Whether the display refuses `allocated` in a test commit where it takes the dumb
    /// buffers it has now.
    fn display_refuses(&self, allocated: &[(gbm_buffers::GbmScanoutBuffer, ScanoutTarget)]) -> bool {
        let Some((gbm, _)) = allocated.first() else { return true };
        // One test commit where the display takes GBM's, as it mostly does.
        !self.takes_framebuffer(gbm.fb()) && self.buffers.first().is_some_and(|dumb| self.takes_framebuffer(dumb.fb))
    }

    /// Whether a test commit (a mode set allowed) of the primary plane showing `fb` passes.
    fn takes_framebuffer(&self, fb: framebuffer::Handle) -> bool {
        self.surface.test_state([self.primary_plane(fb)], true).is_ok()
    }

    /// The primary plane showing `fb` over the whole CRTC.
    fn primary_plane(&self, fb: framebuffer::Handle) -> PlaneState<'static> {
        let (w, h) = self.size;
        PlaneState {
            handle: self.surface.plane(),
            config: Some(PlaneConfig {
                src: Rectangle::from_size((w, h).into()).to_f64(),
                dst: Rectangle::from_size((w, h).into()),
                transform: Transform::Normal,
                alpha: 1.0,
                damage_clips: None,
                fb,
                fence: None,
            }),
        }
    }

    /// Gives the renderer buffers to write composed frames into: GBM's in place of the
    /// dumb buffers where it can, else the dumb buffers shared as dma-bufs. Says which;
    /// the error says why neither, and frames are then copied by the CPU. Called before
    /// the first frame, while no buffer is on screen.
    fn share_buffers_with(&mut self, renderer: &Renderer) -> anyhow::Result<String> {
        let size = (self.size.0 as u32, self.size.1 as u32);
        // AXIOM_SCANOUT_BUFFERS=dumb keeps the dumb buffers (to test that path, or where
        // a driver's GBM misbehaves).
        let forced_dumb = match std::env::var("AXIOM_SCANOUT_BUFFERS").as_deref() {
            Ok("dumb") => true,
            Ok("gbm") | Err(_) => false,
            Ok(other) => {
                tracing::warn!("AXIOM_SCANOUT_BUFFERS={other:?} is neither gbm nor dumb: GBM is tried");
                false
            }
        };
        let gbm = match forced_dumb {
            true => Err(anyhow::anyhow!("AXIOM_SCANOUT_BUFFERS=dumb")),
            false => gbm_buffers::allocate(&self.fd, &self.surface.plane_info().formats, size, 2, renderer),
        };
        match gbm {
            // A display that refuses them in a test commit where it takes the dumb
            // buffers keeps those. (A paused session refuses both: GBM's are kept.)
            Ok((allocated, _)) if self.display_refuses(&allocated) => {
                tracing::info!("KMS: {}: no GBM scanout buffers: a test commit refused them", self.name);
            }
            Ok((allocated, modifier)) => {
                let dumb = std::mem::take(&mut self.buffers);
                destroy_display_buffers(&self.fd, dumb);
                self.buffers = allocated
                    .into_iter()
                    .map(|(buffer, target)| DisplayBuffer {
                        fb: buffer.fb(),
                        memory: DisplayMemory::Gbm(buffer),
                        target: Some(target),
                    })
                    .collect();
                let layout = match modifier {
                    smithay::backend::allocator::Modifier::Linear => "LINEAR".to_string(),
                    other => format!("modifier {:#x}", u64::from(other)),
                };
                return Ok(format!("GBM buffers ({layout}) imported by the renderer"));
            }
            Err(why) => tracing::info!("KMS: {}: no GBM scanout buffers: {why:#}", self.name),
        }
        let mut targets = Vec::new();
        for buffer in &self.buffers {
            let DisplayMemory::Dumb(dumb) = &buffer.memory else { continue };
            targets.push(share_dumb_buffer(&self.fd, dumb, renderer)?);
        }
        for (buffer, target) in self.buffers.iter_mut().zip(targets) {
            buffer.target = Some(target);
        }
        Ok("dumb buffers shared with the renderer as dma-bufs".to_string())
    }

    /// Shows the cursor on the CRTC's cursor plane from now on, where it has one the
    /// renderer can paint (composition draws into the scanout buffers: `fill` never
    /// reads the canvas, which has the cursor); the error says why not.
    fn use_cursor_plane(&mut self, renderer: &Renderer) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.buffers.iter().all(|b| b.target.is_some()),
            "composed frames are copied by the CPU from a canvas that has the cursor"
        );
        self.cursor_plane = Some(CursorPlane::new(&self.fd, &self.surface, renderer)?);
        Ok(())
    }

    /// Writes this output's part of the composed scene into dumb buffer `index`, the
    /// cursor included or not: drawn there by the GPU where the renderer can write it
    /// (the submission to wait for, if any), else read back from the canvas and copied
    /// by the CPU.
    fn fill(&mut self, index: usize, renderer: &mut Renderer, cursor: bool) -> anyhow::Result<Option<SubmissionId>> {
        let region = Rectangle::new(self.position.into(), self.size.into());
        let buffer = &mut self.buffers[index];
        if let Some(target) = &mut buffer.target {
            let painted = renderer.paint_scanout(region, target, cursor)?;
            renderer.scanout_paints += u64::from(painted.is_some());
            return Ok(painted);
        }
        let DisplayMemory::Dumb(dumb) = &mut buffer.memory else {
            anyhow::bail!("a GBM buffer the renderer did not import")
        };
        let pitch = dumb.pitch() as usize;
        let mut mapping = self.fd.map_dumb_buffer(dumb)?;
        renderer.read_output(region, &mut mapping, pitch)?;
        Ok(None)
    }
}

/// Shares dumb buffer `dumb` with `renderer` as a dma-buf, imported as a render target.
fn share_dumb_buffer(fd: &DrmDeviceFd, dumb: &DumbBuffer, renderer: &Renderer) -> anyhow::Result<ScanoutTarget> {
    let shared = fd
        .buffer_to_prime_fd(dumb.handle(), smithay::reexports::drm::CLOEXEC | smithay::reexports::drm::RDWR)
        .map_err(|err| anyhow::anyhow!("the device cannot share its dumb buffers as dma-bufs: {err}"))?;
    let (width, height) = dumb.size();
    renderer.import_scanout_target(SharedScanoutBuffer {
        fd: shared.as_fd(),
        width,
        height,
        offset: 0,
        stride: dumb.pitch(),
        modifier: crate::dmabuf::params::MODIFIER_LINEAR,
    })
}

impl Drop for KmsOutput {
    fn drop(&mut self) {
        destroy_display_buffers(&self.fd, std::mem::take(&mut self.buffers));
        if let Some(plane) = self.cursor_plane.take() {
            plane.destroy(&self.fd);
        }
        self.scanout.forget_all(&self.fd);
        if let Some(writeback) = self.writeback.take() {
            writeback.destroy(&self.fd);
        }
    }
}

impl Axiom {
    /// Flips the composed frames the GPU has finished writing, and starts writing those
    /// whose composition it has finished.
    pub(crate) fn flip_written_frames(&mut self) {
        let Some(kms) = self.backend.kms_mut() else { return };
        for head in &mut kms.heads {
            head.written(&self.renderer);
            head.flush(&mut self.renderer);
        }
        self.repaint_if_cursor_plane_lost();
    }

    /// The queued flip on `crtc` happened: its frame's surfaces learn when, the client
    /// buffer it replaced on the plane is released, and a frame composed meanwhile goes
    /// on screen.
    fn on_kms_vblank(&mut self, crtc: crtc::Handle, when: Option<FlipTime>) {
        let Some(kms) = self.backend.kms_mut() else { return };
        let Some(head) = kms.heads.iter_mut().find(|head| head.crtc == crtc) else { return };
        if let Some(mut flipped) = head.flipping.take() {
            // A torn frame went on screen at once, not at this vblank.
            let mut flags = if flipped.torn { Kind::HwCompletion } else { Kind::Vsync | Kind::HwCompletion };
            let (time, seq) = match when {
                Some(when) => {
                    flags |= Kind::HwClock;
                    when
                }
                None => {
                    self.frame_seq += 1;
                    (smithay::utils::Clock::<Monotonic>::new().now().into(), self.frame_seq)
                }
            };
            // Zero-copy is the flag of the surface on the plane alone, set when its
            // feedback was taken (`Axiom::take_presentation_feedback`).
            flipped.feedback.presented::<_, Monotonic>(time, Refresh::Fixed(head.refresh), seq, flags);
            crate::outputs::count_frame(&head.output);
            // Dropping the last references releases the buffers that were on planes until now.
            head.on_screen_fbs = flipped.client_framebuffers().collect();
            head.on_screen = flipped.buffers;
        }
        head.flush(&mut self.renderer);
        // Framebuffers on planes now, or queued for them, stay.
        let mut in_use: Vec<_> = head.on_screen_fbs.iter().copied().map(Some).collect();
        let writing = head.writing.as_ref().map(|w| &w.frame);
        for frame in [head.flipping.as_ref(), writing, head.next.as_ref()].into_iter().flatten() {
            in_use.extend(frame.client_framebuffers().map(Some));
        }
        head.scanout.forget_dead(&head.fd, &in_use);
        self.repaint_if_cursor_plane_lost();
        self.apply_released_fifo_commits();
    }
}
