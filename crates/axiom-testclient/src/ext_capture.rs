//! ext-image-copy-capture-v1 with output sources, from the client side.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use wayland_client::backend::ObjectId;
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::protocol::wl_output::WlOutput;
use wayland_client::protocol::wl_shm;
use wayland_client::{delegate_noop, Connection, Dispatch, Proxy, QueueHandle, WEnum};
use wayland_protocols::ext::image_capture_source::v1::client::{
    ext_image_capture_source_v1::ExtImageCaptureSourceV1,
    ext_output_image_capture_source_manager_v1::ExtOutputImageCaptureSourceManagerV1,
};
use wayland_protocols::ext::image_copy_capture::v1::client::{
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

#[derive(Default)]
pub(crate) struct ExtCaptureEvents {
    /// The two globals, bound once.
    managers: Option<(ExtOutputImageCaptureSourceManagerV1, ExtImageCopyCaptureManagerV1)>,
    sessions: HashMap<ObjectId, SessionEvents>,
    frames: HashMap<ObjectId, FrameEvents>,
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
        let (sources, manager) = match self.state.ext_capture.managers.clone() {
            Some(managers) => managers,
            None => {
                let sources: ExtOutputImageCaptureSourceManagerV1 =
                    self.globals.bind(&self.qh, 1..=1, ()).context("ext_output_image_capture_source_manager_v1")?;
                let manager: ExtImageCopyCaptureManagerV1 =
                    self.globals.bind(&self.qh, 1..=1, ()).context("ext_image_copy_capture_manager_v1")?;
                self.state.ext_capture.managers = Some((sources.clone(), manager.clone()));
                (sources, manager)
            }
        };
        let source = sources.create_source(output, &self.qh, ());
        let session = manager.create_session(&source, Options::empty(), &self.qh, ());
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

delegate_noop!(State: ignore ExtOutputImageCaptureSourceManagerV1);
delegate_noop!(State: ignore ExtImageCopyCaptureManagerV1);
delegate_noop!(State: ignore ExtImageCaptureSourceV1);
