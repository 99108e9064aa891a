//! Capture clients that come and go by the thousand: captures into memfd dma-bufs
//! through zwlr_screencopy and through ext-image-copy-capture (output and toplevel
//! sources), each dropped in another ordering, while it may still be on the GPU.

use std::path::Path;

use super::requests::{memfd, DRM_XRGB8888};
use super::wire::{Arg, WireClient};

/// zwlr_screencopy_frame_v1 requests and events.
const FRAME_COPY: u16 = 0;
const FRAME_DESTROY: u16 = 1;
const FRAME_READY: u16 = 2;
const FRAME_FAILED: u16 = 3;
const FRAME_BUFFER_DONE: u16 = 6;

/// A capture client's life: `cycles` times capture the whole `width` x `height`
/// output into a fresh memfd dma-buf, and in turn wait for the frame (ready, or
/// failed where no dma-buf can be written), destroy the buffer while its capture
/// may still be on the GPU, or destroy the frame before it is answered; then
/// disconnect with its last capture unanswered.
pub fn capture_churn(socket: &Path, width: i32, height: i32, cycles: usize) -> anyhow::Result<()> {
    let mut c = WireClient::connect(socket)?;
    let dmabuf = c.bind("zwp_linux_dmabuf_v1", 3)?;
    let screencopy = c.bind("zwlr_screencopy_manager_v1", 3)?;
    let output = c.bind("wl_output", 1)?;
    for cycle in 0..cycles {
        let frame = c.new_id();
        c.send(screencopy, 0, &[Arg::Uint(frame), Arg::Int(0), Arg::Uint(output)])?;
        c.wait_event(frame, FRAME_BUFFER_DONE)?;
        let bytes = (width * height * 4) as u64;
        let fd = memfd(bytes)?;
        rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK)?;
        let buffer = c.dmabuf_buffer(dmabuf, &fd, width, height, (width * 4) as u32, DRM_XRGB8888)?;
        c.send(frame, FRAME_COPY, &[Arg::Uint(buffer)])?;
        let last = cycle + 1 == cycles;
        match cycle % 3 {
            _ if last => return Ok(()),
            0 => {
                while !c.events.iter().any(|e| e.object == frame && matches!(e.opcode, FRAME_READY | FRAME_FAILED)) {
                    c.roundtrip()?;
                }
                c.destroy(buffer)?;
                c.send(frame, FRAME_DESTROY, &[])?;
            }
            1 => {
                c.destroy(buffer)?;
                c.send(frame, FRAME_DESTROY, &[])?;
            }
            _ => {
                c.send(frame, FRAME_DESTROY, &[])?;
                c.destroy(buffer)?;
            }
        }
        c.events.clear();
    }
    c.roundtrip()?;
    Ok(())
}

/// ext-image-copy-capture requests and events.
const SOURCE_DESTROY: u16 = 0;
const CREATE_SOURCE: u16 = 0;
const CREATE_SESSION: u16 = 0;
const SESSION_BUFFER_SIZE: u16 = 0;
const SESSION_DONE: u16 = 4;
const SESSION_STOPPED: u16 = 5;
const SESSION_CREATE_FRAME: u16 = 0;
const SESSION_DESTROY: u16 = 1;
const EXT_FRAME_DESTROY: u16 = 0;
const EXT_FRAME_ATTACH_BUFFER: u16 = 1;
const EXT_FRAME_CAPTURE: u16 = 3;
const EXT_FRAME_READY: u16 = 3;
const EXT_FRAME_FAILED: u16 = 4;
/// ext_foreign_toplevel_list_v1.toplevel
const LIST_TOPLEVEL: u16 = 0;
/// wl_seat.get_pointer; ext_image_copy_capture_manager_v1.create_pointer_cursor_session;
/// ext_image_copy_capture_cursor_session_v1 requests.
const SEAT_GET_POINTER: u16 = 0;
const CREATE_POINTER_CURSOR_SESSION: u16 = 1;
const CURSOR_SESSION_DESTROY: u16 = 0;
const CURSOR_SESSION_GET_CAPTURE_SESSION: u16 = 1;

/// The same life through ext-image-copy-capture: each cycle a new source (in turn
/// the output, and the first toplevel the list tells of, where there is one), a
/// session of it, and a frame into a fresh memfd dma-buf of the announced size;
/// then in turn: wait for the frame and destroy everything; destroy the buffer, then
/// the frame, while it may be on the GPU; destroy the session and source while the
/// frame is pending, then the frame; destroy the frame first. Every other round of
/// the three orderings that do not wait uses a pointer cursor session's capture
/// session instead: of the output (its frames wait for a cursor, which no pointer
/// shows here) or of the toplevel (stopped at once). It disconnects with its last
/// capture unanswered.
pub fn ext_capture_churn(socket: &Path, cycles: usize) -> anyhow::Result<()> {
    let mut c = WireClient::connect(socket)?;
    let dmabuf = c.bind("zwp_linux_dmabuf_v1", 3)?;
    let outputs = c.bind("ext_output_image_capture_source_manager_v1", 1)?;
    let toplevels = c.bind("ext_foreign_toplevel_image_capture_source_manager_v1", 1)?;
    let manager = c.bind("ext_image_copy_capture_manager_v1", 1)?;
    let output = c.bind("wl_output", 1)?;
    let list = c.bind("ext_foreign_toplevel_list_v1", 1)?;
    let seat = c.bind("wl_seat", 1)?;
    let pointer = c.new_id();
    c.send(seat, SEAT_GET_POINTER, &[Arg::Uint(pointer)])?;
    c.roundtrip()?;
    let toplevel = c.last_event_word(list, LIST_TOPLEVEL);
    for cycle in 0..cycles {
        let source = c.new_id();
        match toplevel.filter(|_| cycle % 2 == 1) {
            Some(toplevel) => c.send(toplevels, CREATE_SOURCE, &[Arg::Uint(source), Arg::Uint(toplevel)])?,
            None => c.send(outputs, CREATE_SOURCE, &[Arg::Uint(source), Arg::Uint(output)])?,
        }
        // Ids are used in the order they are taken.
        let cursor = (cycle % 4 != 0 && (cycle / 4) % 2 == 1).then(|| c.new_id());
        let session = c.new_id();
        match cursor {
            Some(cursor) => {
                let args = [Arg::Uint(cursor), Arg::Uint(source), Arg::Uint(pointer)];
                c.send(manager, CREATE_POINTER_CURSOR_SESSION, &args)?;
                c.send(cursor, CURSOR_SESSION_GET_CAPTURE_SESSION, &[Arg::Uint(session)])?;
            }
            None => c.send(manager, CREATE_SESSION, &[Arg::Uint(session), Arg::Uint(source), Arg::Uint(0)])?,
        }
        while !c.events.iter().any(|e| e.object == session && matches!(e.opcode, SESSION_DONE | SESSION_STOPPED)) {
            c.roundtrip()?;
        }
        let size = c.events.iter().rev().find(|e| e.object == session && e.opcode == SESSION_BUFFER_SIZE);
        let (width, height) = size.and_then(|e| Some((e.word(0)? as i32, e.word(1)? as i32))).unwrap_or((1, 1));
        let fd = memfd((width * height * 4) as u64)?;
        rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK)?;
        let buffer = c.dmabuf_buffer(dmabuf, &fd, width, height, (width * 4) as u32, DRM_XRGB8888)?;
        let frame = c.new_id();
        c.send(session, SESSION_CREATE_FRAME, &[Arg::Uint(frame)])?;
        c.send(frame, EXT_FRAME_ATTACH_BUFFER, &[Arg::Uint(buffer)])?;
        c.send(frame, EXT_FRAME_CAPTURE, &[])?;
        let last = cycle + 1 == cycles;
        match cycle % 4 {
            _ if last => return Ok(()),
            0 => {
                while !c
                    .events
                    .iter()
                    .any(|e| e.object == frame && matches!(e.opcode, EXT_FRAME_READY | EXT_FRAME_FAILED))
                {
                    c.roundtrip()?;
                }
                c.destroy(buffer)?;
                c.send(frame, EXT_FRAME_DESTROY, &[])?;
            }
            1 => {
                c.destroy(buffer)?;
                c.send(frame, EXT_FRAME_DESTROY, &[])?;
            }
            2 => {
                c.send(session, SESSION_DESTROY, &[])?;
                if let Some(cursor) = cursor {
                    c.send(cursor, CURSOR_SESSION_DESTROY, &[])?;
                }
                c.send(source, SOURCE_DESTROY, &[])?;
                c.send(frame, EXT_FRAME_DESTROY, &[])?;
                c.destroy(buffer)?;
            }
            _ => {
                c.send(frame, EXT_FRAME_DESTROY, &[])?;
                c.destroy(buffer)?;
            }
        }
        if cycle % 4 != 2 {
            // A cursor session goes before the capture session it gave out, here.
            if let Some(cursor) = cursor {
                c.send(cursor, CURSOR_SESSION_DESTROY, &[])?;
            }
            c.send(session, SESSION_DESTROY, &[])?;
            c.send(source, SOURCE_DESTROY, &[])?;
        }
        c.events.clear();
    }
    c.roundtrip()?;
    Ok(())
}
