//! zwlr_screencopy_manager_v1 (version 3), so that grim and our tests can take
//! screenshots. smithay has no implementation, so the dispatch is ours.
//!
//! Frames are answered from the repaint step (`capture.rs`): `copy` always gets the
//! next repainted (or current) output contents, `copy_with_damage` waits until
//! the output has changed, as the protocol asks. Besides its wl_shm buffer, a
//! frame offers a dma-buf (`linux_dmabuf`) where the GPU can write one.

use std::sync::atomic::{AtomicBool, Ordering};

use smithay::backend::allocator::Fourcc;
use smithay::output::Output;
use smithay::reexports::wayland_protocols_wlr::screencopy::v1::server::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::{self, ZwlrScreencopyManagerV1},
};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};
use smithay::utils::{Logical, Physical, Rectangle};

use super::capture::{check_buffer, output_size, CaptureFrame, PendingCapture, Source, BYTES_PER_PIXEL, SHM_FORMATS};
use crate::Axiom;

const MANAGER_VERSION: u32 = 3;
pub struct ScreencopyManagerState;

impl ScreencopyManagerState {
    pub fn new(dh: &DisplayHandle) -> Self {
        dh.create_global::<Axiom, ZwlrScreencopyManagerV1, ()>(MANAGER_VERSION, ());
        Self
    }
}

/// State of one zwlr_screencopy_frame_v1.
pub struct FrameData {
    /// The captured output and part of it, in output pixels; `None` if the capture failed at once.
    region: Option<(Output, Rectangle<i32, Physical>)>,
    /// `overlay_cursor`: the cursor is painted onto the frame.
    cursors: bool,
    used: AtomicBool,
}

impl GlobalDispatch<ZwlrScreencopyManagerV1, ()> for Axiom {
    fn bind(
        _state: &mut Self,
        _dh: &DisplayHandle,
        _client: &Client,
        resource: New<ZwlrScreencopyManagerV1>,
        _global_data: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl Dispatch<ZwlrScreencopyManagerV1, ()> for Axiom {
    fn request(
        state: &mut Self,
        _client: &Client,
        _manager: &ZwlrScreencopyManagerV1,
        request: zwlr_screencopy_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let (frame, output, region, overlay_cursor) = match request {
            zwlr_screencopy_manager_v1::Request::CaptureOutput { frame, output, overlay_cursor } => {
                let output = Output::from_resource(&output);
                let region = output.as_ref().map(|o| Rectangle::from_size(output_size(o)));
                (frame, output, region, overlay_cursor)
            }
            zwlr_screencopy_manager_v1::Request::CaptureOutputRegion {
                frame,
                output,
                x,
                y,
                width,
                height,
                overlay_cursor,
            } => {
                let output = Output::from_resource(&output);
                // Given in the output's logical coordinates.
                let region = output.as_ref().and_then(|o| {
                    let requested = Rectangle::<i32, Logical>::new((x, y).into(), (width, height).into());
                    let scale = o.current_scale().fractional_scale();
                    requested
                        .to_f64()
                        .to_physical(scale)
                        .to_i32_round()
                        .intersection(Rectangle::from_size(output_size(o)))
                });
                (frame, output, region, overlay_cursor)
            }
            zwlr_screencopy_manager_v1::Request::Destroy => return,
            _ => return,
        };
        let shown = output.filter(|o| state.output_area(o).is_some());
        let region = shown.zip(region.filter(|r| r.size.w > 0 && r.size.h > 0));
        let frame = data_init.init(
            frame,
            FrameData { region: region.clone(), cursors: overlay_cursor != 0, used: AtomicBool::new(false) },
        );
        let Some((_, region)) = region else {
            frame.failed();
            return;
        };
        let (w, h) = (region.size.w as u32, region.size.h as u32);
        frame.buffer(SHM_FORMATS[0], w, h, w * BYTES_PER_PIXEL as u32);
        if frame.version() >= 3 {
            // Only where the scene can be painted into the client's dma-buf: never a
            // dma-buf the renderer cannot write (a black frame).
            if state.renderer.writes_dmabufs() {
                frame.linux_dmabuf(Fourcc::Xrgb8888 as u32, w, h);
            }
            frame.buffer_done();
        }
    }
}

impl Dispatch<ZwlrScreencopyFrameV1, FrameData> for Axiom {
    fn request(
        state: &mut Self,
        _client: &Client,
        frame: &ZwlrScreencopyFrameV1,
        request: zwlr_screencopy_frame_v1::Request,
        data: &FrameData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, Self>,
    ) {
        let (buffer, with_damage) = match request {
            zwlr_screencopy_frame_v1::Request::Copy { buffer } => (buffer, false),
            zwlr_screencopy_frame_v1::Request::CopyWithDamage { buffer } => (buffer, true),
            zwlr_screencopy_frame_v1::Request::Destroy => return,
            _ => return,
        };
        if data.used.swap(true, Ordering::SeqCst) {
            frame.post_error(zwlr_screencopy_frame_v1::Error::AlreadyUsed, "frame already used");
            return;
        }
        let Some((output, region)) = data.region.clone() else {
            frame.failed();
            return;
        };
        let dmabuf = match check_buffer(&buffer, region) {
            Ok(dmabuf) => dmabuf,
            Err(reason) => {
                frame.post_error(zwlr_screencopy_frame_v1::Error::InvalidBuffer, reason);
                return;
            }
        };
        if dmabuf.is_some() && !state.renderer.writes_dmabufs() {
            // Not offered: the client guessed.
            tracing::debug!("screencopy: a dma-buf, which this renderer cannot write: failed");
            frame.failed();
            return;
        }
        let frame = CaptureFrame::Wlr(frame.clone());
        let reports_damage = with_damage;
        let capture = PendingCapture {
            frame,
            buffer,
            source: Source::Output(output),
            region,
            with_damage,
            reports_damage,
            dmabuf,
            cursors: data.cursors,
            damage: None,
        };
        state.pending_captures.push(capture);
        state.arm_vblank();
    }
}
