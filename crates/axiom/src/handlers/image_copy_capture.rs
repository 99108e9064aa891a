//! ext-image-copy-capture-v1 with output sources
//! (ext_output_image_capture_source_manager_v1) and toplevel sources
//! (ext_foreign_toplevel_image_capture_source_manager_v1, of the handles
//! `foreign_toplevel.rs` gives out): the capture protocol screen recorders and
//! xdg-desktop-portal backends move to. smithay 0.7 has no implementation, so the
//! dispatch is ours; frames are answered from the repaint step with
//! zwlr_screencopy's (`capture.rs`).
//!
//! A session announces its buffer constraints: the source's size (an output's mode;
//! a window's geometry, in canvas pixels), the wl_shm formats, and where the GPU can
//! write dma-bufs, the render device and the LINEAR XRGB8888 and ARGB8888 dma-buf
//! formats; again whenever that size changes. Its first frame is answered at the
//! next repaint with full damage; each later one once the source's area has changed
//! since the frame before, with the bounding box of what changed since then. A
//! toplevel's frame shows the window alone, over transparency, the parts other
//! windows cover included. A capture that cannot be written into the client's
//! buffer (a window resized since) fails with `buffer_constraints`; one of an output
//! or window that is gone with `stopped`, and its session is stopped.
//!
//! Pointer cursor sessions are accepted but never see the cursor enter: no
//! compositor cursor is drawn on an output here, so there is no image to capture
//! and their capture sessions stop at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use smithay::output::Output;
use smithay::reexports::wayland_protocols::ext::image_capture_source::v1::server::{
    ext_foreign_toplevel_image_capture_source_manager_v1::{self, ExtForeignToplevelImageCaptureSourceManagerV1},
    ext_image_capture_source_v1::{self, ExtImageCaptureSourceV1},
    ext_output_image_capture_source_manager_v1::{self, ExtOutputImageCaptureSourceManagerV1},
};
use smithay::reexports::wayland_protocols::ext::image_copy_capture::v1::server::{
    ext_image_copy_capture_cursor_session_v1::{self, ExtImageCopyCaptureCursorSessionV1},
    ext_image_copy_capture_frame_v1::{self, ExtImageCopyCaptureFrameV1, FailureReason},
    ext_image_copy_capture_manager_v1::{self, ExtImageCopyCaptureManagerV1},
    ext_image_copy_capture_session_v1::{self, ExtImageCopyCaptureSessionV1},
};
use smithay::reexports::wayland_server::backend::{ClientId, ObjectId};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, Weak as WeakResource,
};
use smithay::utils::{Physical, Rectangle, Size};

use smithay::wayland::foreign_toplevel_list::ForeignToplevelHandle;

use super::capture::{check_buffer, damage_within, CaptureFrame, PendingCapture, Source, DMABUF_FORMATS, SHM_FORMATS};
use crate::render::damage::Rect;
use crate::Axiom;

/// DRM_FORMAT_MOD_LINEAR, as the `dmabuf_format` event's array holds it.
const LINEAR: u64 = 0;

pub struct ImageCopyCaptureState {
    /// Every session alive, to gather what changed on its output between frames.
    sessions: Vec<Weak<SessionShared>>,
}

impl ImageCopyCaptureState {
    pub fn new(dh: &DisplayHandle) -> Self {
        dh.create_global::<Axiom, ExtImageCopyCaptureManagerV1, ()>(1, ());
        dh.create_global::<Axiom, ExtOutputImageCaptureSourceManagerV1, ()>(1, ());
        dh.create_global::<Axiom, ExtForeignToplevelImageCaptureSourceManagerV1, ()>(1, ());
        Self { sessions: Vec::new() }
    }

    /// Sessions alive, for the counters (`capture_sessions=`).
    pub fn live_sessions(&self) -> usize {
        self.sessions.iter().filter(|s| s.strong_count() > 0).count()
    }
}

/// What an ext_image_capture_source_v1 captures (None: gone when the source was made).
pub struct SourceData {
    source: Option<Source>,
}

/// A session, shared by its frames.
pub struct SessionShared {
    source: Option<Source>,
    /// Weak: the resource's data holds this, and a strong handle would keep both alive.
    resource: OnceLock<WeakResource<ExtImageCopyCaptureSessionV1>>,
    /// The buffer size last announced: announced again when the output's mode, or the
    /// window's size, changes.
    size: Mutex<Size<i32, Physical>>,
    damage: Mutex<SessionDamage>,
    /// Its frame alive, if any: a session has one at a time.
    frame: Mutex<Option<ObjectId>>,
    stopped: AtomicBool,
}

/// What changed of the session's source since its last frame was ready.
#[derive(Default)]
struct SessionDamage {
    /// A frame was ready already (the first carries full damage).
    had_frame: bool,
    since_ready: Option<Rect>,
}

pub struct FrameData {
    session: Arc<SessionShared>,
    buffer: Mutex<Option<WlBuffer>>,
    captured: AtomicBool,
}

impl GlobalDispatch<ExtImageCopyCaptureManagerV1, ()> for Axiom {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<ExtImageCopyCaptureManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl GlobalDispatch<ExtOutputImageCaptureSourceManagerV1, ()> for Axiom {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<ExtOutputImageCaptureSourceManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl GlobalDispatch<ExtForeignToplevelImageCaptureSourceManagerV1, ()> for Axiom {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<ExtForeignToplevelImageCaptureSourceManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl Dispatch<ExtForeignToplevelImageCaptureSourceManagerV1, ()> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &ExtForeignToplevelImageCaptureSourceManagerV1,
        request: ext_foreign_toplevel_image_capture_source_manager_v1::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let ext_foreign_toplevel_image_capture_source_manager_v1::Request::CreateSource { source, toplevel_handle } =
            request
        {
            let handle = ForeignToplevelHandle::from_resource(&toplevel_handle);
            let source_of = handle.map(|h| Source::Toplevel(h.downgrade()));
            data_init.init(source, SourceData { source: source_of });
        }
    }
}

impl Dispatch<ExtOutputImageCaptureSourceManagerV1, ()> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &ExtOutputImageCaptureSourceManagerV1,
        request: ext_output_image_capture_source_manager_v1::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let ext_output_image_capture_source_manager_v1::Request::CreateSource { source, output } = request {
            data_init.init(source, SourceData { source: Output::from_resource(&output).map(Source::Output) });
        }
    }
}

impl Dispatch<ExtImageCaptureSourceV1, SourceData> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &ExtImageCaptureSourceV1,
        _: ext_image_capture_source_v1::Request,
        _: &SourceData,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

impl Dispatch<ExtImageCopyCaptureManagerV1, ()> for Axiom {
    fn request(
        state: &mut Self,
        _: &Client,
        manager: &ExtImageCopyCaptureManagerV1,
        request: ext_image_copy_capture_manager_v1::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        match request {
            ext_image_copy_capture_manager_v1::Request::CreateSession { session, source, options } => {
                if options.into_result().is_err() {
                    manager.post_error(ext_image_copy_capture_manager_v1::Error::InvalidOption, "unknown options");
                    return;
                }
                let source = source.data::<SourceData>().and_then(|s| s.source.clone());
                let shared = Arc::new(SessionShared::new(source));
                let session = data_init.init(session, shared.clone());
                let _ = shared.resource.set(session.downgrade());
                state.image_copy_capture.sessions.push(Arc::downgrade(&shared));
                let Some(shown) = shared.source.as_ref().and_then(|s| state.source_area(s)) else {
                    stop_session(&shared);
                    return;
                };
                let size = shown.area.size;
                *shared.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
                state.announce_constraints(&session, size);
            }
            ext_image_copy_capture_manager_v1::Request::CreatePointerCursorSession { session, .. } => {
                data_init.init(session, AtomicBool::new(false));
            }
            _ => {}
        }
    }
}

/// A cursor session's data: whether it gave out its capture session.
impl Dispatch<ExtImageCopyCaptureCursorSessionV1, AtomicBool> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        cursor_session: &ExtImageCopyCaptureCursorSessionV1,
        request: ext_image_copy_capture_cursor_session_v1::Request,
        cursor: &AtomicBool,
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let ext_image_copy_capture_cursor_session_v1::Request::GetCaptureSession { session } = request {
            if cursor.swap(true, Ordering::SeqCst) {
                cursor_session.post_error(
                    ext_image_copy_capture_cursor_session_v1::Error::DuplicateSession,
                    "the cursor session has its capture session",
                );
                return;
            }
            // No cursor image to capture (module comment): the session stops at once.
            let shared = Arc::new(SessionShared::new(None));
            let session = data_init.init(session, shared.clone());
            let _ = shared.resource.set(session.downgrade());
            stop_session(&shared);
        }
    }
}

impl Dispatch<ExtImageCopyCaptureSessionV1, Arc<SessionShared>> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        session: &ExtImageCopyCaptureSessionV1,
        request: ext_image_copy_capture_session_v1::Request,
        shared: &Arc<SessionShared>,
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let ext_image_copy_capture_session_v1::Request::CreateFrame { frame } = request {
            let mut current = shared.frame.lock().unwrap_or_else(|e| e.into_inner());
            if current.is_some() {
                session.post_error(
                    ext_image_copy_capture_session_v1::Error::DuplicateFrame,
                    "the session's frame is still alive",
                );
                return;
            }
            let data =
                FrameData { session: shared.clone(), buffer: Mutex::new(None), captured: AtomicBool::new(false) };
            let frame = data_init.init(frame, data);
            *current = Some(frame.id());
        }
    }
}

impl Dispatch<ExtImageCopyCaptureFrameV1, FrameData> for Axiom {
    fn request(
        state: &mut Self,
        _: &Client,
        frame: &ExtImageCopyCaptureFrameV1,
        request: ext_image_copy_capture_frame_v1::Request,
        data: &FrameData,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        use ext_image_copy_capture_frame_v1::Error;
        match request {
            ext_image_copy_capture_frame_v1::Request::AttachBuffer { .. }
            | ext_image_copy_capture_frame_v1::Request::DamageBuffer { .. }
                if data.captured.load(Ordering::SeqCst) =>
            {
                frame.post_error(Error::AlreadyCaptured, "the frame was captured already");
            }
            ext_image_copy_capture_frame_v1::Request::AttachBuffer { buffer } => {
                *data.buffer.lock().unwrap_or_else(|e| e.into_inner()) = Some(buffer);
            }
            // Every capture writes the whole buffer: the client's damage needs no more.
            ext_image_copy_capture_frame_v1::Request::DamageBuffer { x, y, width, height }
                if x < 0 || y < 0 || width <= 0 || height <= 0 =>
            {
                frame.post_error(Error::InvalidBufferDamage, "damage must lie in the buffer and not be empty");
            }
            ext_image_copy_capture_frame_v1::Request::Capture => {
                if data.captured.swap(true, Ordering::SeqCst) {
                    frame.post_error(Error::AlreadyCaptured, "capture was already sent");
                    return;
                }
                let Some(buffer) = data.buffer.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
                    frame.post_error(Error::NoBuffer, "no buffer attached");
                    return;
                };
                state.queue_ext_capture(frame, data, buffer);
            }
            _ => {}
        }
    }

    fn destroyed(_: &mut Self, _: ClientId, frame: &ExtImageCopyCaptureFrameV1, data: &FrameData) {
        let mut current = data.session.frame.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref() == Some(&frame.id()) {
            *current = None;
        }
    }
}

impl SessionShared {
    fn new(source: Option<Source>) -> Self {
        SessionShared {
            source,
            resource: OnceLock::new(),
            size: Mutex::default(),
            damage: Mutex::default(),
            frame: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    fn resource(&self) -> Option<ExtImageCopyCaptureSessionV1> {
        self.resource.get().and_then(|weak| weak.upgrade().ok())
    }
}

impl Axiom {
    /// The buffer constraints of a session of a source of `size`.
    fn announce_constraints(&self, session: &ExtImageCopyCaptureSessionV1, size: Size<i32, Physical>) {
        session.buffer_size(size.w as u32, size.h as u32);
        for format in SHM_FORMATS {
            session.shm_format(format);
        }
        // Only where the GPU can write the client's dma-buf: never a black frame.
        if self.renderer.writes_dmabufs() {
            let device = self.dmabuf_state.default_feedback.main_device;
            session.dmabuf_device(device.to_ne_bytes().to_vec());
            for format in DMABUF_FORMATS {
                session.dmabuf_format(format as u32, LINEAR.to_ne_bytes().to_vec());
            }
        }
        session.done();
    }

    /// Queues a frame's capture for the repaint step, or fails it at once.
    fn queue_ext_capture(&mut self, frame: &ExtImageCopyCaptureFrameV1, data: &FrameData, buffer: WlBuffer) {
        let session = &data.session;
        let live = session.source.as_ref().filter(|_| !session.stopped.load(Ordering::SeqCst));
        let Some((source, shown)) = live.and_then(|s| Some((s.clone(), self.source_area(s)?))) else {
            stop(frame);
            return;
        };
        let region = Rectangle::from_size(shown.area.size);
        let dmabuf = match check_buffer(&buffer, region) {
            Ok(dmabuf) => dmabuf,
            Err(reason) => {
                tracing::debug!("ext-image-copy-capture: {reason}");
                frame.failed(FailureReason::BufferConstraints);
                return;
            }
        };
        if dmabuf.is_some() && !self.renderer.writes_dmabufs() {
            frame.failed(FailureReason::BufferConstraints);
            return;
        }
        let frame = CaptureFrame::Ext(frame.clone());
        // Answered at once where it has something new to show (`note_capture_damage`).
        // What it reports as changed, its session gathers (`take_damage`).
        let capture = PendingCapture {
            frame,
            buffer,
            source,
            region,
            with_damage: true,
            reports_damage: false,
            dmabuf,
            damage: None,
        };
        self.pending_captures.push(capture);
        self.note_capture_damage(None);
        self.arm_vblank();
    }

    /// Adds a repaint's damage (canvas pixels) to what every session's output has
    /// changed since its last frame, stops the sessions whose output is gone, and
    /// lets the ext frames that have something new to show be answered.
    pub(super) fn note_capture_damage(&mut self, damage: Option<Rect>) {
        let mut sessions = std::mem::take(&mut self.image_copy_capture.sessions);
        // A window captured alone changes with its own quads only (not with what other
        // windows do over it): the renderer gathers those for the windows watched.
        let window_damage = self.renderer.take_window_damage();
        let mut watched = Vec::new();
        sessions.retain(|weak| {
            let Some(session) = weak.upgrade() else { return false };
            let Some(resource) = session.resource() else { return false };
            let Some(shown) = session.source.as_ref().and_then(|s| self.source_area(s)) else {
                stop_session(&session);
                return false;
            };
            let area = shown.area;
            // The output's mode, or the window's size, changed: the client's buffers must follow.
            let mut size = session.size.lock().unwrap_or_else(|e| e.into_inner());
            let resized = *size != area.size;
            if resized {
                *size = area.size;
                self.announce_constraints(&resource, area.size);
            }
            drop(size);
            if let Some(window) = shown.window.as_ref().filter(|w| !watched.contains(*w)) {
                watched.push(window.clone());
            }
            let changed = match &shown.window {
                // A frame into a buffer of the new size has all of it to show.
                _ if resized => Some(Rect::of_area(area)),
                Some(window) => window_damage.iter().find(|(w, _)| w == window).map(|(_, d)| *d),
                None => damage,
            };
            if let Some(relative) = changed.and_then(|d| damage_within(d, area)) {
                let mut since = session.damage.lock().unwrap_or_else(|e| e.into_inner());
                since.since_ready = Some(since.since_ready.map_or(relative, |r| r.union(relative)));
            }
            true
        });
        self.renderer.watch_windows(watched);
        self.image_copy_capture.sessions = sessions;
        for capture in &mut self.pending_captures {
            if let CaptureFrame::Ext(frame) = &capture.frame {
                if let Some(data) = frame.data::<FrameData>() {
                    let since = data.session.damage.lock().unwrap_or_else(|e| e.into_inner());
                    capture.with_damage = since.had_frame && since.since_ready.is_none();
                }
            }
        }
    }
}

/// What changed on `frame`'s source since its session's last frame (all of it for the
/// first), as the frame is ready; starts gathering again.
pub(super) fn take_damage(frame: &ExtImageCopyCaptureFrameV1) -> Option<Rect> {
    let data = frame.data::<FrameData>()?;
    let mut since = data.session.damage.lock().unwrap_or_else(|e| e.into_inner());
    let changed = since.since_ready.take();
    if std::mem::replace(&mut since.had_frame, true) {
        changed
    } else {
        let size = *data.session.size.lock().unwrap_or_else(|e| e.into_inner());
        Some(Rect { x0: 0, y0: 0, x1: size.w, y1: size.h })
    }
}

/// Fails `frame` because its output or window is gone, and stops its session.
pub(super) fn stop(frame: &ExtImageCopyCaptureFrameV1) {
    frame.failed(FailureReason::Stopped);
    if let Some(data) = frame.data::<FrameData>() {
        stop_session(&data.session);
    }
}

/// Sends `stopped` on a session, once.
fn stop_session(session: &SessionShared) {
    if !session.stopped.swap(true, Ordering::SeqCst) {
        if let Some(resource) = session.resource() {
            resource.stopped();
        }
    }
}
