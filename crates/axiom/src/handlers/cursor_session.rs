//! ext_image_copy_capture_cursor_session_v1: where the pointer's cursor is on an
//! output, for capture clients that draw it themselves (a screen recorder that
//! leaves it out of its frames, or shows it as metadata).
//!
//! The cursor enters the session when its image overlaps the output, and leaves
//! when it no longer does (or is hidden); while in, `position` says where the
//! pointer (the hotspot) is relative to the output's top-left corner and `hotspot`
//! where it is within the image, both in canvas pixels, sent as they change. The
//! capture session it gives out captures the image alone (`Source::Cursor`): its
//! buffer size is the image's, announced again when that changes; its frames wait
//! while the cursor is away, and are answered when the image changes. A session of
//! a toplevel source never sees the cursor: its capture session stops at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use smithay::output::Output;
use smithay::reexports::wayland_protocols::ext::image_capture_source::v1::server::ext_image_capture_source_v1::ExtImageCaptureSourceV1;
use smithay::reexports::wayland_protocols::ext::image_copy_capture::v1::server::ext_image_copy_capture_cursor_session_v1::{
    self, ExtImageCopyCaptureCursorSessionV1,
};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, New, Resource};

use super::capture::Source;
use super::image_copy_capture::{SessionShared, SourceData};
use crate::cursor::CursorShown;
use crate::Axiom;

/// A cursor session's output (None: not an output's, or gone when made), whether it
/// gave out its capture session, and the cursor as last told (None: not in).
pub struct CursorSessionData {
    output: Option<Output>,
    given: AtomicBool,
    told: Mutex<Option<CursorShown>>,
}

impl Axiom {
    pub(super) fn start_cursor_session(
        &mut self,
        data_init: &mut DataInit<'_, Self>,
        session: New<ExtImageCopyCaptureCursorSessionV1>,
        source: &ExtImageCaptureSourceV1,
    ) {
        let output = match source.data::<SourceData>().and_then(|s| s.source.clone()) {
            Some(Source::Output(output)) => Some(output),
            _ => None,
        };
        let data = Arc::new(CursorSessionData { output, given: AtomicBool::new(false), told: Mutex::new(None) });
        let session = data_init.init(session, data.clone());
        self.image_copy_capture.cursor_sessions.push((session.downgrade(), data));
        self.update_cursor_sessions();
    }

    /// Tells every cursor session where the cursor is now, as it changed.
    pub(super) fn update_cursor_sessions(&mut self) {
        let mut sessions = std::mem::take(&mut self.image_copy_capture.cursor_sessions);
        sessions.retain(|(weak, data)| {
            let Ok(session) = weak.upgrade() else { return false };
            let now = data.output.as_ref().and_then(|o| self.cursor_shown_on(o));
            let mut told = data.told.lock().unwrap_or_else(|e| e.into_inner());
            tell(&session, told.as_ref(), now.as_ref());
            *told = now;
            true
        });
        self.image_copy_capture.cursor_sessions = sessions;
    }
}

/// Sends what changed between the cursor as told (`before`) and as it is (`now`).
fn tell(session: &ExtImageCopyCaptureCursorSessionV1, before: Option<&CursorShown>, now: Option<&CursorShown>) {
    match (before, now) {
        (Some(_), None) => session.leave(),
        (None, Some(now)) => {
            session.enter();
            session.position(now.position.x, now.position.y);
            session.hotspot(now.hotspot.x, now.hotspot.y);
        }
        (Some(before), Some(now)) => {
            if before.position != now.position {
                session.position(now.position.x, now.position.y);
            }
            if before.hotspot != now.hotspot {
                session.hotspot(now.hotspot.x, now.hotspot.y);
            }
        }
        (None, None) => {}
    }
}

impl Dispatch<ExtImageCopyCaptureCursorSessionV1, Arc<CursorSessionData>> for Axiom {
    fn request(
        state: &mut Self,
        _: &Client,
        cursor_session: &ExtImageCopyCaptureCursorSessionV1,
        request: ext_image_copy_capture_cursor_session_v1::Request,
        data: &Arc<CursorSessionData>,
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let ext_image_copy_capture_cursor_session_v1::Request::GetCaptureSession { session } = request {
            if data.given.swap(true, Ordering::SeqCst) {
                cursor_session.post_error(
                    ext_image_copy_capture_cursor_session_v1::Error::DuplicateSession,
                    "the cursor session has its capture session",
                );
                return;
            }
            // Not an output's cursor (no source): it never shows, and the session stops.
            let shared = Arc::new(SessionShared::new(data.output.clone().map(Source::Cursor), false));
            state.start_session(data_init.init(session, shared.clone()), shared);
        }
    }
}
