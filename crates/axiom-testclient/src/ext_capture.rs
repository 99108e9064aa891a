//! ext-image-copy-capture-v1 with output and toplevel sources, and the
//! ext_foreign_toplevel_list_v1 handles that name toplevels, from the client side.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use wayland_client::backend::ObjectId;
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::protocol::wl_output::WlOutput;
use wayland_client::protocol::wl_pointer::WlPointer;
use wayland_client::protocol::wl_shm;
use wayland_client::{delegate_noop, Connection, Dispatch, Proxy, QueueHandle, WEnum};
use wayland_protocols::ext::foreign_toplevel_list::v1::client::{
    ext_foreign_toplevel_handle_v1::{self, ExtForeignToplevelHandleV1},
    ext_foreign_toplevel_list_v1::{self, ExtForeignToplevelListV1},
};
use wayland_protocols::ext::image_capture_source::v1::client::{
    ext_foreign_toplevel_image_capture_source_manager_v1::ExtForeignToplevelImageCaptureSourceManagerV1,
    ext_image_capture_source_v1::ExtImageCaptureSourceV1,
    ext_output_image_capture_source_manager_v1::ExtOutputImageCaptureSourceManagerV1,
};
use wayland_protocols::ext::image_copy_capture::v1::client::{
    ext_image_copy_capture_cursor_session_v1::{self, ExtImageCopyCaptureCursorSessionV1},
    ext_image_copy_capture_frame_v1::{self, ExtImageCopyCaptureFrameV1},
    ext_image_copy_capture_manager_v1::{ExtImageCopyCaptureManagerV1, Options},
    ext_image_copy_capture_session_v1::{self, ExtImageCopyCaptureSessionV1},
};

use crate::client::{State, TestClient};

/// What a session announced, and whether it stopped.
#[derive(Default, Debug, Clone)]
pub struct SessionEvents {
    pub buffer_size: Option<(u32, u32)>,
    pub shm_formats: Vec<wl_shm::Format>,
    pub dmabuf_device: Option<u64>,
    /// DRM fourcc and modifiers.
    pub dmabuf_formats: Vec<(u32, Vec<u64>)>,
    pub done: bool,
    pub stopped: bool,
}

/// What became of a frame.
#[derive(Default, Debug, Clone)]
pub struct FrameEvents {
    pub transform: Option<u32>,
    /// x, y, width, height.
    pub damage: Vec<(i32, i32, i32, i32)>,
    pub presented: Option<Duration>,
    pub ready: bool,
    /// The failure reason.
    pub failed: Option<u32>,
}

/// A toplevel as ext_foreign_toplevel_list_v1 tells of it.
#[derive(Debug, Clone)]
pub struct Toplevel {
    pub handle: ExtForeignToplevelHandleV1,
    pub identifier: String,
    pub title: String,
    pub app_id: String,
    /// Its first `done` came.
    pub done: bool,
    pub closed: bool,
}

#[derive(Default)]
pub(crate) struct ExtCaptureEvents {
    /// The globals, each bound once.
    managers: Option<(ExtOutputImageCaptureSourceManagerV1, ExtImageCopyCaptureManagerV1)>,
    toplevel_sources: Option<ExtForeignToplevelImageCaptureSourceManagerV1>,
    toplevel_list: Option<ExtForeignToplevelListV1>,
    /// In the order they were announced.
    toplevels: Vec<Toplevel>,
    sessions: HashMap<ObjectId, SessionEvents>,
    frames: HashMap<ObjectId, FrameEvents>,
    cursors: HashMap<ObjectId, CursorEvents>,
}

/// What a cursor session told: `enter` and `leave` in order (true: enter), and the
/// last `position` and `hotspot`.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct CursorEvents {
    pub crossings: Vec<bool>,
    pub position: Option<(i32, i32)>,
    pub hotspot: Option<(i32, i32)>,
}

impl CursorEvents {
    /// Whether the cursor is in the captured area, as last told.
    pub fn inside(&self) -> bool {
        self.crossings.last() == Some(&true)
    }
}

/// A session of a capture of this client's output, with its announced constraints.
pub struct ExtSession {
    pub session: ExtImageCopyCaptureSessionV1,
    pub source: ExtImageCaptureSourceV1,
}

impl TestClient {
    /// Starts a capture session of `output` and waits for its constraints (`done`) or
    /// its `stopped`.
    pub fn ext_capture_session(&mut self, output: &WlOutput) -> anyhow::Result<(ExtSession, SessionEvents)> {
        let (sources, _) = self.ext_managers()?;
        let source = sources.create_source(output, &self.qh, ());
        self.ext_session_of(source, Options::empty())
    }

    /// As `ext_capture_session`, with the `paint_cursors` option.
    pub fn ext_capture_session_painting_cursors(
        &mut self,
        output: &WlOutput,
    ) -> anyhow::Result<(ExtSession, SessionEvents)> {
        let (sources, _) = self.ext_managers()?;
        let source = sources.create_source(output, &self.qh, ());
        self.ext_session_of(source, Options::PaintCursors)
    }

    /// Starts a cursor session of `pointer`'s cursor on `output` and the capture
    /// session it gives out; waits for that one's constraints (`done`) or `stopped`.
    pub fn ext_cursor_session(
        &mut self,
        output: &WlOutput,
        pointer: &WlPointer,
    ) -> anyhow::Result<(ExtImageCopyCaptureCursorSessionV1, ExtSession, SessionEvents)> {
        let (sources, manager) = self.ext_managers()?;
        let source = sources.create_source(output, &self.qh, ());
        let cursor = manager.create_pointer_cursor_session(&source, pointer, &self.qh, ());
        let session = cursor.get_capture_session(&self.qh, ());
        let (session, events) = self.ext_wait_constraints(session, source)?;
        Ok((cursor, session, events))
    }

    /// What `cursor` told so far.
    pub fn ext_cursor_events(&mut self, cursor: &ExtImageCopyCaptureCursorSessionV1) -> anyhow::Result<CursorEvents> {
        self.roundtrip()?;
        Ok(self.state.ext_capture.cursors.get(&cursor.id()).cloned().unwrap_or_default())
    }

    /// Starts a capture session of the toplevel `handle` names and waits for its
    /// constraints (`done`) or its `stopped`.
    pub fn ext_toplevel_capture_session(
        &mut self,
        handle: &ExtForeignToplevelHandleV1,
    ) -> anyhow::Result<(ExtSession, SessionEvents)> {
        let sources = match self.state.ext_capture.toplevel_sources.clone() {
            Some(sources) => sources,
            None => {
                let sources: ExtForeignToplevelImageCaptureSourceManagerV1 = self
                    .globals
                    .bind(&self.qh, 1..=1, ())
                    .context("ext_foreign_toplevel_image_capture_source_manager_v1")?;
                self.state.ext_capture.toplevel_sources = Some(sources.clone());
                sources
            }
        };
        let source = sources.create_source(handle, &self.qh, ());
        self.ext_session_of(source, Options::empty())
    }

    /// The toplevels ext_foreign_toplevel_list_v1 told of so far (binding it the
    /// first time), each once its first `done` came, in the order announced.
    pub fn foreign_toplevels(&mut self) -> anyhow::Result<Vec<Toplevel>> {
        if self.state.ext_capture.toplevel_list.is_none() {
            let list: ExtForeignToplevelListV1 =
                self.globals.bind(&self.qh, 1..=1, ()).context("ext_foreign_toplevel_list_v1")?;
            self.state.ext_capture.toplevel_list = Some(list);
        }
        self.roundtrip()?;
        Ok(self.state.ext_capture.toplevels.iter().filter(|t| t.done).cloned().collect())
    }

    /// The toplevel titled `title`, waiting until the list tells of it.
    pub fn foreign_toplevel(&mut self, title: &str) -> anyhow::Result<Toplevel> {
        self.foreign_toplevels()?;
        self.wait_until("the toplevel in the list", |s| {
            s.ext_capture.toplevels.iter().any(|t| t.done && !t.closed && t.title == title)
        })?;
        let toplevels = &self.state.ext_capture.toplevels;
        toplevels.iter().find(|t| t.done && !t.closed && t.title == title).cloned().context("gone")
    }

    /// Waits until the list closes the toplevel whose identifier is `identifier`.
    pub fn wait_toplevel_closed(&mut self, identifier: &str) -> anyhow::Result<()> {
        self.wait_until("the toplevel closed", |s| {
            s.ext_capture.toplevels.iter().any(|t| t.identifier == identifier && t.closed)
        })
    }

    fn ext_managers(&mut self) -> anyhow::Result<(ExtOutputImageCaptureSourceManagerV1, ExtImageCopyCaptureManagerV1)> {
        if let Some(managers) = self.state.ext_capture.managers.clone() {
            return Ok(managers);
        }
        let sources: ExtOutputImageCaptureSourceManagerV1 =
            self.globals.bind(&self.qh, 1..=1, ()).context("ext_output_image_capture_source_manager_v1")?;
        let manager: ExtImageCopyCaptureManagerV1 =
            self.globals.bind(&self.qh, 1..=1, ()).context("ext_image_copy_capture_manager_v1")?;
        self.state.ext_capture.managers = Some((sources.clone(), manager.clone()));
        Ok((sources, manager))
    }

    fn ext_session_of(
        &mut self,
        source: ExtImageCaptureSourceV1,
        options: Options,
    ) -> anyhow::Result<(ExtSession, SessionEvents)> {
        let (_, manager) = self.ext_managers()?;
        let session = manager.create_session(&source, options, &self.qh, ());
        self.ext_wait_constraints(session, source)
    }

    fn ext_wait_constraints(
        &mut self,
        session: ExtImageCopyCaptureSessionV1,
        source: ExtImageCaptureSourceV1,
    ) -> anyhow::Result<(ExtSession, SessionEvents)> {
        let id = session.id();
        self.wait_until("the session's constraints", |s| {
            s.ext_capture.sessions.get(&id).is_some_and(|e| e.done || e.stopped)
        })?;
        let events = self.state.ext_capture.sessions.get(&id).cloned().unwrap_or_default();
        Ok((ExtSession { session, source }, events))
    }

    /// What `session` announced so far.
    pub fn ext_session_events(&mut self, session: &ExtSession) -> anyhow::Result<SessionEvents> {
        self.roundtrip()?;
        Ok(self.state.ext_capture.sessions.get(&session.session.id()).cloned().unwrap_or_default())
    }

    /// Creates a frame of `session`, captures it into `buffer` and waits until it is
    /// ready or failed; destroys the frame.
    pub fn ext_capture_frame(&mut self, session: &ExtSession, buffer: &WlBuffer) -> anyhow::Result<FrameEvents> {
        let frame = self.ext_start_frame(session, buffer);
        self.ext_finish_frame(frame)
    }

    /// Creates a frame of `session`, attaches `buffer` and sends `capture`.
    pub fn ext_start_frame(&mut self, session: &ExtSession, buffer: &WlBuffer) -> ExtImageCopyCaptureFrameV1 {
        let frame = session.session.create_frame(&self.qh, ());
        frame.attach_buffer(buffer);
        frame.damage_buffer(0, 0, i32::MAX, i32::MAX);
        frame.capture();
        frame
    }

    /// What `frame` has been told so far.
    pub fn ext_frame_events(&mut self, frame: &ExtImageCopyCaptureFrameV1) -> anyhow::Result<FrameEvents> {
        self.roundtrip()?;
        Ok(self.state.ext_capture.frames.get(&frame.id()).cloned().unwrap_or_default())
    }

    /// Waits until `frame` is ready or failed, then destroys it.
    pub fn ext_finish_frame(&mut self, frame: ExtImageCopyCaptureFrameV1) -> anyhow::Result<FrameEvents> {
        let id = frame.id();
        self.wait_until("the frame ready or failed", |s| {
            s.ext_capture.frames.get(&id).is_some_and(|f| f.ready || f.failed.is_some())
        })?;
        frame.destroy();
        Ok(self.state.ext_capture.frames.remove(&id).unwrap_or_default())
    }
}

impl Dispatch<ExtImageCopyCaptureSessionV1, ()> for State {
    fn event(
        state: &mut Self,
        session: &ExtImageCopyCaptureSessionV1,
        event: ext_image_copy_capture_session_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use ext_image_copy_capture_session_v1::Event;
        let entry = state.ext_capture.sessions.entry(session.id()).or_default();
        match event {
            Event::BufferSize { width, height } => entry.buffer_size = Some((width, height)),
            Event::ShmFormat { format: WEnum::Value(format) } => entry.shm_formats.push(format),
            Event::DmabufDevice { device } => {
                entry.dmabuf_device = device.try_into().ok().map(u64::from_ne_bytes);
            }
            Event::DmabufFormat { format, modifiers } => {
                let modifiers =
                    modifiers.chunks_exact(8).filter_map(|m| m.try_into().ok().map(u64::from_ne_bytes)).collect();
                entry.dmabuf_formats.push((format, modifiers));
            }
            Event::Done => entry.done = true,
            Event::Stopped => entry.stopped = true,
            _ => {}
        }
    }
}

impl Dispatch<ExtImageCopyCaptureFrameV1, ()> for State {
    fn event(
        state: &mut Self,
        frame: &ExtImageCopyCaptureFrameV1,
        event: ext_image_copy_capture_frame_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use ext_image_copy_capture_frame_v1::Event;
        let entry = state.ext_capture.frames.entry(frame.id()).or_default();
        match event {
            Event::Transform { transform } => entry.transform = Some(u32::from(transform)),
            Event::Damage { x, y, width, height } => entry.damage.push((x, y, width, height)),
            Event::PresentationTime { tv_sec_hi, tv_sec_lo, tv_nsec } => {
                let secs = (u64::from(tv_sec_hi) << 32) | u64::from(tv_sec_lo);
                entry.presented = Some(Duration::new(secs, tv_nsec));
            }
            Event::Ready => entry.ready = true,
            Event::Failed { reason } => entry.failed = Some(u32::from(reason)),
            _ => {}
        }
    }
}

impl Dispatch<ExtForeignToplevelListV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &ExtForeignToplevelListV1,
        event: ext_foreign_toplevel_list_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let ext_foreign_toplevel_list_v1::Event::Toplevel { toplevel } = event {
            state.ext_capture.toplevels.push(Toplevel {
                handle: toplevel,
                identifier: String::new(),
                title: String::new(),
                app_id: String::new(),
                done: false,
                closed: false,
            });
        }
    }

    wayland_client::event_created_child!(State, ExtForeignToplevelListV1, [
        ext_foreign_toplevel_list_v1::EVT_TOPLEVEL_OPCODE => (ExtForeignToplevelHandleV1, ()),
    ]);
}

impl Dispatch<ExtForeignToplevelHandleV1, ()> for State {
    fn event(
        state: &mut Self,
        handle: &ExtForeignToplevelHandleV1,
        event: ext_foreign_toplevel_handle_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use ext_foreign_toplevel_handle_v1::Event;
        let Some(entry) = state.ext_capture.toplevels.iter_mut().find(|t| t.handle == *handle) else { return };
        match event {
            Event::Identifier { identifier } => entry.identifier = identifier,
            Event::Title { title } => entry.title = title,
            Event::AppId { app_id } => entry.app_id = app_id,
            Event::Done => entry.done = true,
            Event::Closed => entry.closed = true,
            _ => {}
        }
    }
}

impl Dispatch<ExtImageCopyCaptureCursorSessionV1, ()> for State {
    fn event(
        state: &mut Self,
        cursor: &ExtImageCopyCaptureCursorSessionV1,
        event: ext_image_copy_capture_cursor_session_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use ext_image_copy_capture_cursor_session_v1::Event;
        let entry = state.ext_capture.cursors.entry(cursor.id()).or_default();
        match event {
            Event::Enter => entry.crossings.push(true),
            Event::Leave => entry.crossings.push(false),
            Event::Position { x, y } => entry.position = Some((x, y)),
            Event::Hotspot { x, y } => entry.hotspot = Some((x, y)),
            _ => {}
        }
    }
}

delegate_noop!(State: ignore ExtOutputImageCaptureSourceManagerV1);
delegate_noop!(State: ignore ExtForeignToplevelImageCaptureSourceManagerV1);
delegate_noop!(State: ignore ExtImageCopyCaptureManagerV1);
delegate_noop!(State: ignore ExtImageCaptureSourceV1);
