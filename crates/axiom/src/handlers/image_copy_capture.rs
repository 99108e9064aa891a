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
//! Without `paint_cursors`, an output's frames leave the cursor out (painted from the
//! scene where it shows); with it, they show it. Pointer cursor sessions of an
//! output source tell where the cursor is (`cursor_session.rs`), and their capture
//! sessions' frames are the cursor's image alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use smithay::output::Output;
use smithay::reexports::wayland_protocols::ext::image_capture_source::v1::server::{
    ext_foreign_toplevel_image_capture_source_manager_v1::{self, ExtForeignToplevelImageCaptureSourceManagerV1},
    ext_image_capture_source_v1::{self, ExtImageCaptureSourceV1},
    ext_output_image_capture_source_manager_v1::{self, ExtOutputImageCaptureSourceManagerV1},
};
use smithay::reexports::wayland_protocols::ext::image_copy_capture::v1::server::{
    ext_image_copy_capture_cursor_session_v1::ExtImageCopyCaptureCursorSessionV1,
    ext_image_copy_capture_frame_v1::{self, ExtImageCopyCaptureFrameV1, FailureReason},
    ext_image_copy_capture_manager_v1::{self, ExtImageCopyCaptureManagerV1, Options},
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
    pub(super) sessions: Vec<Weak<SessionShared>>,
    /// Every cursor session alive, to tell of the cursor on its output (`cursor_session.rs`).
    pub(super) cursor_sessions:
        Vec<(WeakResource<ExtImageCopyCaptureCursorSessionV1>, Arc<super::cursor_session::CursorSessionData>)>,
}

impl ImageCopyCaptureState {
    pub fn new(dh: &DisplayHandle) -> Self {
        dh.create_global::<Axiom, ExtImageCopyCaptureManagerV1, ()>(1, ());
        dh.create_global::<Axiom, ExtOutputImageCaptureSourceManagerV1, ()>(1, ());
        dh.create_global::<Axiom, ExtForeignToplevelImageCaptureSourceManagerV1, ()>(1, ());
        Self { sessions: Vec::new(), cursor_sessions: Vec::new() }
    }

    /// Sessions alive, cursor sessions included, for the counters (`capture_sessions=`).
    pub fn live_sessions(&self) -> usize {
        let cursors = self.cursor_sessions.iter().filter(|(s, _)| s.upgrade().is_ok()).count();
        self.sessions.iter().filter(|s| s.strong_count() > 0).count() + cursors
    }
}

/// What an ext_image_capture_source_v1 captures (None: gone when the source was made).
pub struct SourceData {
    pub(super) source: Option<Source>,
}

/// A session, shared by its frames.
pub struct SessionShared {
    source: Option<Source>,
    /// `paint_cursors`: the cursor is painted onto an output's frames.
    paint_cursors: bool,
    /// Weak: the resource's data holds this, and a strong handle would keep both alive.
    pub(super) resource: OnceLock<WeakResource<ExtImageCopyCaptureSessionV1>>,
    /// A cursor session's: the cursor's image changes (`Cursor::changes`) its last
    /// frame showed.
    cursor_changes_seen: AtomicU64,
    /// A cursor session's: the cursor does not show on its output; frames wait.
    paused: AtomicBool,
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
                let paint_cursors = options.into_result().is_ok_and(|o| o.contains(Options::PaintCursors));
                let shared = Arc::new(SessionShared::new(source, paint_cursors));
                state.start_session(data_init.init(session, shared.clone()), shared);
            }
            ext_image_copy_capture_manager_v1::Request::CreatePointerCursorSession { session, source, .. } => {
                state.start_cursor_session(data_init, session, &source);
            }
            _ => {}
        }
    }
}

impl Axiom {
    /// Announces a new session's buffer constraints, or stops it where its source is gone.
    pub(super) fn start_session(&mut self, session: ExtImageCopyCaptureSessionV1, shared: Arc<SessionShared>) {
        let _ = shared.resource.set(session.downgrade());
        self.image_copy_capture.sessions.push(Arc::downgrade(&shared));
        let Some(shown) = shared.source.as_ref().and_then(|s| self.source_area(s)) else {
            stop_session(&shared);
            return;
        };
        // A cursor that does not show yet: the arrow's size, until it shows.
        let size = match shown.area.is_empty() {
            true => crate::render::cursor::arrow_canvas_size(self.renderer.canvas_scale),
            false => shown.area.size,
        };
        *shared.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
        self.announce_constraints(&session, size);
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
    pub(super) fn new(source: Option<Source>, paint_cursors: bool) -> Self {
        SessionShared {
            source,
            paint_cursors,
            resource: OnceLock::new(),
            cursor_changes_seen: AtomicU64::new(u64::MAX),
            paused: AtomicBool::new(false),
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
        // A cursor that does not show now: a buffer of the size last announced waits for it.
        let size = match shown.area.is_empty() {
            true => *session.size.lock().unwrap_or_else(|e| e.into_inner()),
            false => shown.area.size,
        };
        let region = Rectangle::from_size(size);
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
            cursors: session.paint_cursors,
            damage: None,
        };
        self.pending_captures.push(capture);
        self.note_capture_damage(None, None);
        self.arm_vblank();
    }

    /// Adds a repaint's damage (canvas pixels) to what every session's output has
    /// changed since its last frame, stops the sessions whose output is gone, and
    /// lets the ext frames that have something new to show be answered.
    pub(super) fn note_capture_damage(&mut self, damage: Option<Rect>, cursorless: Option<Rect>) {
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
            let cursor = matches!(session.source, Some(Source::Cursor(_)));
            session.paused.store(cursor && area.is_empty(), Ordering::SeqCst);
            if area.is_empty() {
                return true;
            }
            // The cursor's image changed since its session's last look: all of it is new.
            let cursor_changed = cursor
                && session.cursor_changes_seen.swap(self.cursor.changes, Ordering::SeqCst) != self.cursor.changes;
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
                _ if resized || cursor_changed => Some(Rect::of_area(area)),
                // A cursor's frame shows its image: where it moves, its session says.
                None if cursor => None,
                Some(window) => window_damage.iter().find(|(w, _)| w == window).map(|(_, d)| *d),
                None if session.paint_cursors => damage,
                None => cursorless,
            };
            if let Some(relative) = changed.and_then(|d| damage_within(d, area)) {
                let mut since = session.damage.lock().unwrap_or_else(|e| e.into_inner());
                since.since_ready = Some(since.since_ready.map_or(relative, |r| r.union(relative)));
            }
            true
        });
        self.update_cursor_sessions();
        self.renderer.watch_windows(watched);
        if sessions.is_empty() && self.pending_captures.is_empty() {
            self.renderer.drop_capture_texture();
        }
        self.image_copy_capture.sessions = sessions;
        for capture in &mut self.pending_captures {
            if let CaptureFrame::Ext(frame) = &capture.frame {
                if let Some(data) = frame.data::<FrameData>() {
                    let since = data.session.damage.lock().unwrap_or_else(|e| e.into_inner());
                    let paused = data.session.paused.load(Ordering::SeqCst);
                    capture.with_damage = paused || since.had_frame && since.since_ready.is_none();
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
