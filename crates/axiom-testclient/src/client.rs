//! The client connection, its globals, and the requests tests use.

use std::collections::{HashMap, HashSet};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use wayland_client::backend::{ObjectId, WaylandError};
use wayland_client::globals::{registry_queue_init, GlobalList, GlobalListContents};
use wayland_client::protocol::{
    wl_buffer::{self, WlBuffer},
    wl_callback::{self, WlCallback},
    wl_compositor::WlCompositor,
    wl_output::{self, WlOutput},
    wl_registry::WlRegistry,
    wl_shm::{self, WlShm},
    wl_shm_pool::WlShmPool,
    wl_subcompositor::WlSubcompositor,
    wl_subsurface::WlSubsurface,
    wl_surface::WlSurface,
};
use wayland_client::{delegate_noop, Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::wp::presentation_time::client::{
    wp_presentation::{self, WpPresentation},
    wp_presentation_feedback::{self, WpPresentationFeedback},
};
use wayland_protocols::wp::viewporter::client::{wp_viewport::WpViewport, wp_viewporter::WpViewporter};
use wayland_protocols::xdg::shell::client::{
    xdg_popup::{self, XdgPopup},
    xdg_positioner::{self, XdgPositioner},
    xdg_surface::{self, XdgSurface},
    xdg_toplevel::{self, XdgToplevel},
    xdg_wm_base::{self, XdgWmBase},
};
use wayland_protocols_wlr::screencopy::v1::client::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1,
};

use crate::memfd::SharedMemory;
use axiom_formats::image::{Format32, Image};

/// How long any single wait may take before the test fails with a message.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// An event whose order relative to others a test checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    Released(ObjectId),
    Presented(ObjectId),
}

/// A presentation-feedback outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// `flags`: the wp_presentation_feedback kind bits.
    Presented {
        time: Duration,
        refresh_ns: u32,
        seq: u64,
        flags: u32,
    },
    Discarded,
}

#[derive(Default)]
pub struct State {
    configured: HashMap<ObjectId, u32>,
    toplevel_sizes: HashMap<ObjectId, (i32, i32)>,
    callbacks_done: HashSet<ObjectId>,
    released: HashSet<ObjectId>,
    frames: HashMap<ObjectId, CaptureState>,
    feedback: HashMap<ObjectId, Presented>,
    /// Buffer releases and presentation feedback events, in the order they came.
    arrivals: Vec<Arrival>,
    outputs: HashMap<ObjectId, OutputInfo>,
    presentation_clock: Option<u32>,
    pub(crate) dmabuf: crate::dmabuf::DmabufEvents,
    pub(crate) color: crate::color::ColorEvents,
    pub(crate) ext_capture: crate::ext_capture::ExtCaptureEvents,
    pub(crate) pointer: crate::pointer::PointerEvents,
    output_scales: HashMap<ObjectId, i32>,
    pub(crate) decoration_modes:
        HashMap<ObjectId, wayland_protocols::xdg::decoration::zv1::client::zxdg_toplevel_decoration_v1::Mode>,
}

/// What a wl_output announced: its name (version 4), its place and its current mode.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct OutputInfo {
    pub name: String,
    pub position: (i32, i32),
    pub size: (i32, i32),
}

#[derive(Default, Clone, Debug)]
struct CaptureState {
    shm: Option<(wl_shm::Format, u32, u32, u32)>,
    /// The `linux_dmabuf` offer: DRM fourcc, width, height.
    dmabuf: Option<(u32, u32, u32)>,
    buffer_done: bool,
    ready: Option<Duration>,
    failed: bool,
    /// `damage` events: x, y, width, height.
    damage: Vec<(u32, u32, u32, u32)>,
}

/// What a screencopy frame offers besides its wl_shm buffer.
#[derive(Debug, Clone, Copy)]
pub struct CaptureOffer {
    /// The `buffer` event's wl_shm format, width, height and stride.
    pub shm: Option<(wl_shm::Format, u32, u32, u32)>,
    /// The `linux_dmabuf` event's DRM fourcc, width and height, if it came.
    pub dmabuf: Option<(u32, u32, u32)>,
}

/// A screencopy frame that is ready.
#[derive(Debug, Clone)]
pub struct CaptureDone {
    pub presented: Duration,
    /// Its `damage` events: x, y, width, height.
    pub damage: Vec<(u32, u32, u32, u32)>,
}

/// Where a wl_shm buffer lies in its pool.
#[derive(Debug, Clone, Copy)]
pub struct ShmLayout {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub offset: usize,
}

pub struct Buffer {
    pub buffer: WlBuffer,
    pub memory: SharedMemory,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

pub struct Window {
    pub surface: WlSurface,
    pub xdg_surface: XdgSurface,
    pub toplevel: XdgToplevel,
}

impl Window {
    /// Destroys the toplevel, its xdg_surface and its wl_surface, in that order.
    pub fn destroy(&self) {
        self.toplevel.destroy();
        self.xdg_surface.destroy();
        self.surface.destroy();
    }
}

pub struct TestClient {
    pub conn: Connection,
    pub queue: EventQueue<State>,
    pub qh: QueueHandle<State>,
    pub state: State,
    pub globals: GlobalList,
    pub compositor: WlCompositor,
    pub subcompositor: WlSubcompositor,
    pub shm: WlShm,
    pub wm_base: XdgWmBase,
    pub output: WlOutput,
    /// None on compositors without wlr-screencopy (weston).
    pub screencopy: Option<ZwlrScreencopyManagerV1>,
    pub presentation: WpPresentation,
    pub viewporter: WpViewporter,
}

impl TestClient {
    /// Connects to the socket at `path` (XDG_RUNTIME_DIR/NAME) and binds the globals tests use.
    pub fn connect(path: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path).with_context(|| format!("connect to {}", path.display()))?;
        let conn = Connection::from_socket(stream)?;
        let (globals, mut queue) = registry_queue_init::<State>(&conn)?;
        let qh = queue.handle();
        let compositor = globals.bind(&qh, 4..=6, ())?;
        let subcompositor = globals.bind(&qh, 1..=1, ())?;
        let shm = globals.bind(&qh, 1..=1, ())?;
        let wm_base = globals.bind(&qh, 1..=6, ())?;
        let output = globals.bind(&qh, 1..=4, ())?;
        let screencopy = globals.bind(&qh, 3..=3, ()).ok();
        let presentation = globals.bind(&qh, 1..=2, ())?;
        let viewporter = globals.bind(&qh, 1..=1, ())?;
        let mut state = State::default();
        queue.roundtrip(&mut state)?;
        Ok(Self {
            conn,
            queue,
            qh,
            state,
            globals,
            compositor,
            subcompositor,
            shm,
            wm_base,
            output,
            screencopy,
            presentation,
            viewporter,
        })
    }

    /// Waits until the compositor has handled every request sent so far, failing after
    /// [`WAIT_LIMIT`] (a compositor that stopped answering fails the test, not hangs it).
    pub fn roundtrip(&mut self) -> anyhow::Result<()> {
        let id = self.conn.display().sync(&self.qh, ()).id();
        self.wait_until("a roundtrip", |s| s.callbacks_done.contains(&id))
    }

    /// The output's current mode size, as announced on wl_output.
    pub fn output_size(&self) -> Option<(i32, i32)> {
        let size = self.state.outputs.get(&self.output.id())?.size;
        (size.0 > 0 && size.1 > 0).then_some(size)
    }

    pub fn presentation_clock(&self) -> Option<u32> {
        self.state.presentation_clock
    }

    /// Dispatches events until `done` holds, failing after [`WAIT_LIMIT`].
    pub fn wait_until(&mut self, what: &str, mut done: impl FnMut(&State) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            self.queue.dispatch_pending(&mut self.state)?;
            if done(&self.state) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                bail!("timed out after {WAIT_LIMIT:?} waiting for {what}");
            }
            self.queue.flush()?;
            if let Some(guard) = self.queue.prepare_read() {
                let fd = guard.connection_fd();
                let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
                let timeout = rustix::event::Timespec::try_from(deadline - now).ok();
                rustix::event::poll(&mut fds, timeout.as_ref()).context("poll")?;
                if !fds[0].revents().is_empty() {
                    match guard.read() {
                        Ok(_) => {}
                        Err(WaylandError::Io(err)) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(err) => {
                            if let Some(protocol) = self.conn.protocol_error() {
                                bail!("protocol error while waiting for {what}: {protocol}");
                            }
                            return Err(err).with_context(|| format!("connection lost while waiting for {what}"));
                        }
                    }
                }
            }
            if let Some(err) = self.conn.protocol_error() {
                bail!("protocol error while waiting for {what}: {err}");
            }
        }
    }

    /// Creates a wl_shm buffer holding `image` in `format`, rows `stride` bytes apart.
    pub fn create_buffer(
        &mut self,
        image: &Image,
        format: Format32,
        stride: usize,
        x_byte: u8,
    ) -> anyhow::Result<Buffer> {
        let bytes = format.encode_image(image, stride, x_byte);
        self.create_shm_buffer(
            &bytes,
            ShmLayout { width: image.width, height: image.height, stride, offset: 0 },
            format.shm_code(),
            false,
        )
    }

    /// Creates a wl_shm buffer over a memfd holding `bytes`, in wl_shm format `code`;
    /// `seal` seals the memfd against shrinking first (as careful clients do).
    pub fn create_shm_buffer(
        &mut self,
        bytes: &[u8],
        layout: ShmLayout,
        code: u32,
        seal: bool,
    ) -> anyhow::Result<Buffer> {
        let mut memory = SharedMemory::new(bytes.len())?;
        memory.bytes_mut().copy_from_slice(bytes);
        if seal {
            crate::dmabuf::seal_shrink(memory.fd())?;
        }
        let pool = self.shm.create_pool(memory.fd(), bytes.len() as i32, &self.qh, ());
        let buffer = pool.create_buffer(
            layout.offset as i32,
            layout.width as i32,
            layout.height as i32,
            layout.stride as i32,
            wl_shm::Format::try_from(code).map_err(|_| anyhow::anyhow!("unknown wl_shm format {code:#x}"))?,
            &self.qh,
            (),
        );
        pool.destroy();
        Ok(Buffer { buffer, memory, width: layout.width, height: layout.height, stride: layout.stride })
    }

    /// Creates an xdg toplevel and waits for its first configure (acked).
    pub fn create_window(&mut self, title: &str) -> anyhow::Result<Window> {
        let surface = self.compositor.create_surface(&self.qh, ());
        let xdg_surface = self.wm_base.get_xdg_surface(&surface, &self.qh, ());
        let toplevel = xdg_surface.get_toplevel(&self.qh, ());
        toplevel.set_title(title.into());
        toplevel.set_app_id("axiom-testclient".into());
        surface.commit();
        let id = xdg_surface.id();
        self.wait_until("the first configure", |s| s.configured.contains_key(&id))?;
        let serial = self.state.configured[&id];
        xdg_surface.ack_configure(serial);
        Ok(Window { surface, xdg_surface, toplevel })
    }

    /// xdg_toplevel.set_fullscreen: waits for the configure that follows, acks it, and
    /// returns the size it asks for.
    pub fn set_fullscreen(&mut self, window: &Window) -> anyhow::Result<(i32, i32)> {
        let before = self.configure_serial(window);
        window.toplevel.set_fullscreen(None);
        self.ack_next_configure(window, before)
    }

    /// xdg_toplevel.set_fullscreen on `output`: as `set_fullscreen`.
    pub fn set_fullscreen_on(&mut self, window: &Window, output: &WlOutput) -> anyhow::Result<(i32, i32)> {
        let before = self.configure_serial(window);
        window.toplevel.set_fullscreen(Some(output));
        self.ack_next_configure(window, before)
    }

    /// The scale factor `output` announced (1 where it announced none).
    pub fn output_scale(&self, output: &WlOutput) -> i32 {
        self.state.output_scales.get(&output.id()).copied().unwrap_or(1)
    }

    /// The size the last configure of `window` asked for ((0, 0): the client picks).
    pub fn configured_size(&self, window: &Window) -> (i32, i32) {
        self.state.toplevel_sizes.get(&window.toplevel.id()).copied().unwrap_or((0, 0))
    }

    /// The serial of the last configure of `window`.
    pub fn configure_serial(&self, window: &Window) -> Option<u32> {
        self.state.configured.get(&window.xdg_surface.id()).copied()
    }

    /// Waits for a configure of `window` after the one numbered `after`, acks it, and
    /// returns the size it asks for.
    pub fn ack_next_configure(&mut self, window: &Window, after: Option<u32>) -> anyhow::Result<(i32, i32)> {
        let id = window.xdg_surface.id();
        self.wait_until("a new configure", |s| s.configured.get(&id).copied() != after)?;
        window.xdg_surface.ack_configure(self.state.configured[&id]);
        Ok(self.state.toplevel_sizes.get(&window.toplevel.id()).copied().unwrap_or((0, 0)))
    }

    /// The global names of the wl_outputs the registry lists now.
    pub fn output_globals(&self) -> Vec<u32> {
        self.globals
            .contents()
            .clone_list()
            .into_iter()
            .filter(|g| g.interface == WlOutput::interface().name)
            .map(|g| g.name)
            .collect()
    }

    /// Binds the wl_output global `name` (version 4, for its name) and waits for what it announces.
    pub fn bind_output(&mut self, name: u32) -> anyhow::Result<WlOutput> {
        let output: WlOutput = self.globals.registry().bind(name, 4, &self.qh, ());
        self.roundtrip()?;
        Ok(output)
    }

    /// What `output` announced.
    pub fn output_info(&self, output: &WlOutput) -> OutputInfo {
        self.state.outputs.get(&output.id()).cloned().unwrap_or_default()
    }

    /// Takes a screenshot of the whole of `output`.
    pub fn screenshot_of(&mut self, output: &WlOutput) -> anyhow::Result<Image> {
        let frame = self.screencopy()?.capture_output(0, output, &self.qh, ());
        self.capture(frame)
    }

    /// Attaches `buffer` with full damage, commits, and waits for the frame callback.
    pub fn present(&mut self, surface: &WlSurface, buffer: &Buffer) -> anyhow::Result<()> {
        surface.attach(Some(&buffer.buffer), 0, 0);
        surface.damage_buffer(0, 0, buffer.width as i32, buffer.height as i32);
        self.commit_and_wait_frame(surface)
    }

    /// Commits `surface` with a frame callback and waits until the callback is done.
    pub fn commit_and_wait_frame(&mut self, surface: &WlSurface) -> anyhow::Result<()> {
        let callback = surface.frame(&self.qh, ());
        surface.commit();
        let id = callback.id();
        self.wait_until("a frame callback", |s| s.callbacks_done.contains(&id))
    }

    /// Whether the compositor released `buffer` since it was last attached.
    pub fn is_released(&self, buffer: &Buffer) -> bool {
        self.state.released.contains(&buffer.buffer.id())
    }

    /// A subsurface of `parent` at (x, y) showing `buffer`; committed (synchronised
    /// subsurfaces apply on the parent's next commit).
    pub fn create_subsurface(
        &mut self,
        parent: &WlSurface,
        x: i32,
        y: i32,
        buffer: &Buffer,
    ) -> (WlSurface, WlSubsurface) {
        let surface = self.compositor.create_surface(&self.qh, ());
        let subsurface = self.subcompositor.get_subsurface(&surface, parent, &self.qh, ());
        subsurface.set_position(x, y);
        surface.attach(Some(&buffer.buffer), 0, 0);
        surface.damage_buffer(0, 0, buffer.width as i32, buffer.height as i32);
        surface.commit();
        (surface, subsurface)
    }

    /// An xdg popup of `parent`, anchored at (x, y) of the parent's window geometry
    /// (top-left gravity), showing `buffer`. Waits for its configure and maps it.
    pub fn create_popup(
        &mut self,
        parent: &Window,
        x: i32,
        y: i32,
        buffer: &Buffer,
    ) -> anyhow::Result<(WlSurface, XdgPopup)> {
        let positioner = self.wm_base.create_positioner(&self.qh, ());
        positioner.set_size(buffer.width as i32, buffer.height as i32);
        positioner.set_anchor_rect(x, y, 1, 1);
        positioner.set_anchor(xdg_positioner::Anchor::TopLeft);
        positioner.set_gravity(xdg_positioner::Gravity::BottomRight);
        let surface = self.compositor.create_surface(&self.qh, ());
        let xdg_surface = self.wm_base.get_xdg_surface(&surface, &self.qh, ());
        let popup = xdg_surface.get_popup(Some(&parent.xdg_surface), &positioner, &self.qh, ());
        positioner.destroy();
        surface.commit();
        let id = xdg_surface.id();
        self.wait_until("the popup's configure", |s| s.configured.contains_key(&id))?;
        xdg_surface.ack_configure(self.state.configured[&id]);
        self.present(&surface, buffer)?;
        Ok((surface, popup))
    }

    /// Takes a screenshot of the whole output through zwlr_screencopy.
    pub fn screenshot(&mut self) -> anyhow::Result<Image> {
        let frame = self.screencopy()?.capture_output(0, &self.output, &self.qh, ());
        self.capture(frame)
    }

    /// Takes a screenshot of the whole output with the cursor painted on (`overlay_cursor`).
    pub fn screenshot_with_cursor(&mut self) -> anyhow::Result<Image> {
        let frame = self.screencopy()?.capture_output(1, &self.output, &self.qh, ());
        self.capture(frame)
    }

    /// Takes a screenshot of a region of the output.
    pub fn screenshot_region(&mut self, x: i32, y: i32, width: i32, height: i32) -> anyhow::Result<Image> {
        let frame = self.screencopy()?.capture_output_region(0, &self.output, x, y, width, height, &self.qh, ());
        self.capture(frame)
    }

    /// Starts a capture of the whole output and waits for the buffers it offers.
    pub fn start_capture(&mut self) -> anyhow::Result<(ZwlrScreencopyFrameV1, CaptureOffer)> {
        let frame = self.screencopy()?.capture_output(0, &self.output, &self.qh, ());
        let id = frame.id();
        self.wait_until("screencopy buffer_done", |s| s.frames.get(&id).is_some_and(|f| f.buffer_done || f.failed))?;
        let info = &self.state.frames[&id];
        anyhow::ensure!(!info.failed, "screencopy failed before a buffer was offered");
        Ok((frame, CaptureOffer { shm: info.shm, dmabuf: info.dmabuf }))
    }

    /// Copies a started capture into `buffer` (with damage: once the output changed)
    /// and waits: the damage rectangles and presentation time on `ready`, an error on
    /// `failed`.
    pub fn finish_capture(
        &mut self,
        frame: ZwlrScreencopyFrameV1,
        buffer: &WlBuffer,
        with_damage: bool,
    ) -> anyhow::Result<CaptureDone> {
        let id = frame.id();
        if with_damage {
            frame.copy_with_damage(buffer);
        } else {
            frame.copy(buffer);
        }
        self.wait_until("screencopy ready", |s| s.frames.get(&id).is_some_and(|f| f.ready.is_some() || f.failed))?;
        frame.destroy();
        let info = self.state.frames.remove(&id).unwrap_or_default();
        match info.ready {
            Some(presented) if !info.failed => Ok(CaptureDone { presented, damage: info.damage }),
            _ => bail!("screencopy failed"),
        }
    }

    fn screencopy(&self) -> anyhow::Result<&ZwlrScreencopyManagerV1> {
        self.screencopy.as_ref().context("the compositor has no zwlr_screencopy_manager_v1")
    }

    fn capture(&mut self, frame: ZwlrScreencopyFrameV1) -> anyhow::Result<Image> {
        let id = frame.id();
        self.wait_until("screencopy buffer_done", |s| s.frames.get(&id).is_some_and(|f| f.buffer_done || f.failed))?;
        let info = self.state.frames[&id].clone();
        let Some((format, width, height, stride)) = info.shm.filter(|_| !info.failed) else {
            bail!("screencopy failed before a buffer was offered");
        };
        anyhow::ensure!(
            format == wl_shm::Format::Xrgb8888 || format == wl_shm::Format::Argb8888,
            "unexpected format {format:?}"
        );
        let size = stride as usize * height as usize;
        let memory = SharedMemory::new(size)?;
        // Sealed, so that capturing does not make this client's own buffers lose the
        // compositor's read-in-place path (which only trusts sealed pools).
        crate::dmabuf::seal_shrink(memory.fd())?;
        let pool = self.shm.create_pool(memory.fd(), size as i32, &self.qh, ());
        let buffer = pool.create_buffer(0, width as i32, height as i32, stride as i32, format, &self.qh, ());
        pool.destroy();
        frame.copy(&buffer);
        self.wait_until("screencopy ready", |s| s.frames.get(&id).is_some_and(|f| f.ready.is_some() || f.failed))?;
        let failed = self.state.frames[&id].failed;
        frame.destroy();
        buffer.destroy();
        self.state.frames.remove(&id);
        anyhow::ensure!(!failed, "screencopy failed");
        Ok(Image::from_xrgb8888(width, height, stride as usize, memory.bytes()))
    }

    /// Asks for presentation feedback on the next commit of `surface`.
    pub fn request_feedback(&mut self, surface: &WlSurface) -> WpPresentationFeedback {
        self.presentation.feedback(surface, &self.qh, ())
    }

    /// Buffer releases and presentations so far, in the order they arrived.
    pub fn arrivals(&self) -> &[Arrival] {
        &self.state.arrivals
    }

    /// Waits until every feedback in `feedbacks` is presented or discarded.
    pub fn wait_for_feedback(&mut self, feedbacks: &[WpPresentationFeedback]) -> anyhow::Result<Vec<Presented>> {
        let ids: Vec<ObjectId> = feedbacks.iter().map(|f| f.id()).collect();
        self.wait_until("presentation feedback", |s| ids.iter().all(|id| s.feedback.contains_key(id)))?;
        Ok(ids.iter().map(|id| self.state.feedback[id]).collect())
    }

    /// Declares all of `surface` (`width` x `height`) opaque, from its next commit.
    pub fn set_opaque(&self, surface: &WlSurface, width: i32, height: i32) {
        let region = self.compositor.create_region(&self.qh, ());
        region.add(0, 0, width, height);
        surface.set_opaque_region(Some(&region));
        region.destroy();
    }

    pub fn viewport(&self, surface: &WlSurface) -> WpViewport {
        self.viewporter.get_viewport(surface, &self.qh, ())
    }

    /// Waits for the server to close the connection with a protocol error, and returns
    /// (interface, code).
    pub fn expect_protocol_error(&mut self) -> anyhow::Result<(String, u32)> {
        let _ = self.wait_until("a protocol error", |_| false);
        match self.conn.protocol_error() {
            Some(err) => Ok((err.object_interface, err.code)),
            None => bail!("expected a protocol error, the connection is fine"),
        }
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<XdgWmBase, ()> for State {
    fn event(
        _: &mut Self,
        wm_base: &XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm_base.pong(serial);
        }
    }
}

impl Dispatch<XdgSurface, ()> for State {
    fn event(
        state: &mut Self,
        surface: &XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            state.configured.insert(surface.id(), serial);
        }
    }
}

impl Dispatch<XdgToplevel, ()> for State {
    fn event(
        state: &mut Self,
        toplevel: &XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_toplevel::Event::Configure { width, height, .. } = event {
            state.toplevel_sizes.insert(toplevel.id(), (width, height));
        }
    }
}

impl Dispatch<XdgPopup, ()> for State {
    fn event(_: &mut Self, _: &XdgPopup, _: xdg_popup::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}
}

impl Dispatch<WlCallback, ()> for State {
    fn event(
        state: &mut Self,
        callback: &WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.callbacks_done.insert(callback.id());
        }
    }
}

impl Dispatch<WlBuffer, ()> for State {
    fn event(
        state: &mut Self,
        buffer: &WlBuffer,
        event: wl_buffer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            state.released.insert(buffer.id());
            state.arrivals.push(Arrival::Released(buffer.id()));
        }
    }
}

impl Dispatch<WlOutput, ()> for State {
    fn event(
        state: &mut Self,
        output: &WlOutput,
        event: wl_output::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let info = state.outputs.entry(output.id()).or_default();
        match event {
            wl_output::Event::Mode { flags, width, height, .. }
                if flags.into_result().is_ok_and(|f| f.contains(wl_output::Mode::Current)) =>
            {
                info.size = (width, height)
            }
            wl_output::Event::Geometry { x, y, .. } => info.position = (x, y),
            wl_output::Event::Name { name } => info.name = name,
            wl_output::Event::Scale { factor } => {
                state.output_scales.insert(output.id(), factor);
            }
            _ => {}
        }
    }
}

impl Dispatch<WpPresentation, ()> for State {
    fn event(
        state: &mut Self,
        _: &WpPresentation,
        event: wp_presentation::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation::Event::ClockId { clk_id } = event {
            state.presentation_clock = Some(clk_id);
        }
    }
}

impl Dispatch<WpPresentationFeedback, ()> for State {
    fn event(
        state: &mut Self,
        feedback: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let result = match event {
            wp_presentation_feedback::Event::Presented {
                tv_sec_hi,
                tv_sec_lo,
                tv_nsec,
                refresh,
                seq_hi,
                seq_lo,
                flags,
            } => {
                let secs = (u64::from(tv_sec_hi) << 32) | u64::from(tv_sec_lo);
                Presented::Presented {
                    time: Duration::new(secs, tv_nsec),
                    refresh_ns: refresh,
                    seq: (u64::from(seq_hi) << 32) | u64::from(seq_lo),
                    flags: flags.into(),
                }
            }
            wp_presentation_feedback::Event::Discarded => Presented::Discarded,
            _ => return,
        };
        if matches!(result, Presented::Presented { .. }) {
            state.arrivals.push(Arrival::Presented(feedback.id()));
        }
        state.feedback.insert(feedback.id(), result);
    }
}

impl Dispatch<ZwlrScreencopyFrameV1, ()> for State {
    fn event(
        state: &mut Self,
        frame: &ZwlrScreencopyFrameV1,
        event: zwlr_screencopy_frame_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let entry = state.frames.entry(frame.id()).or_default();
        match event {
            zwlr_screencopy_frame_v1::Event::Buffer { format, width, height, stride } => {
                if let Ok(format) = format.into_result() {
                    entry.shm = Some((format, width, height, stride));
                }
            }
            zwlr_screencopy_frame_v1::Event::LinuxDmabuf { format, width, height } => {
                entry.dmabuf = Some((format, width, height));
            }
            zwlr_screencopy_frame_v1::Event::BufferDone => entry.buffer_done = true,
            zwlr_screencopy_frame_v1::Event::Ready { tv_sec_hi, tv_sec_lo, tv_nsec } => {
                let secs = (u64::from(tv_sec_hi) << 32) | u64::from(tv_sec_lo);
                entry.ready = Some(Duration::new(secs, tv_nsec));
            }
            zwlr_screencopy_frame_v1::Event::Damage { x, y, width, height } => {
                entry.damage.push((x, y, width, height));
            }
            zwlr_screencopy_frame_v1::Event::Failed => entry.failed = true,
            _ => {}
        }
    }
}

delegate_noop!(State: ignore WlCompositor);
delegate_noop!(State: ignore WlSurface);
delegate_noop!(State: ignore WlShm);
delegate_noop!(State: ignore WlShmPool);
delegate_noop!(State: ignore WlSubcompositor);
delegate_noop!(State: ignore WlSubsurface);
delegate_noop!(State: ignore XdgPositioner);
delegate_noop!(State: ignore ZwlrScreencopyManagerV1);
delegate_noop!(State: ignore WpViewporter);
delegate_noop!(State: ignore WpViewport);
delegate_noop!(State: wayland_client::protocol::wl_region::WlRegion);
