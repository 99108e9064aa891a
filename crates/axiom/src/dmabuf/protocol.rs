//! zwp_linux_dmabuf_v1 (version 5), zwp_linux_buffer_params_v1 and
//! zwp_linux_dmabuf_feedback_v1. The dispatch is ours rather than smithay's so
//! that validation (see `params.rs`) and feedback (see `feedback.rs`) follow
//! the protocol to the letter; the resulting wl_buffers carry smithay's
//! `Dmabuf`, so the rest of smithay (buffer tracking, sizes) works as usual.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags};
use smithay::backend::allocator::{Fourcc, Modifier};
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::{
    zwp_linux_buffer_params_v1::{self, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_feedback_v1::{self, ZwpLinuxDmabufFeedbackV1},
    zwp_linux_dmabuf_v1::{self, ZwpLinuxDmabufV1},
};
use smithay::reexports::wayland_server::protocol::wl_buffer::{self, WlBuffer};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};
use smithay::wayland::buffer::BufferHandler;

use super::feedback::{send_feedback, FeedbackData};
use super::params::{validate, ParamsError, PlaneParams, ValidBuffer, MAX_PLANES};
use crate::limits;
use crate::Axiom;

/// Per params-object state: the planes added so far, and whether `create` was called.
#[derive(Default)]
pub struct ParamsData {
    planes: Mutex<[Option<(OwnedFd, PlaneParams)>; MAX_PLANES]>,
    /// The planes' fds, charged to the client until they become a buffer's or close.
    charges: Mutex<Vec<limits::FdCharge>>,
    used: AtomicBool,
}

impl GlobalDispatch<ZwpLinuxDmabufV1, ()> for Axiom {
    fn bind(
        state: &mut Self,
        _dh: &DisplayHandle,
        _client: &Client,
        resource: New<ZwpLinuxDmabufV1>,
        _global_data: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        let dmabuf = data_init.init(resource, ());
        // Version 4 and later learn formats from feedback only.
        if dmabuf.version() < 4 {
            for &(format, modifier) in &state.dmabuf_state.default_feedback.table.entries {
                if dmabuf.version() >= 3 {
                    dmabuf.modifier(format, (modifier >> 32) as u32, modifier as u32);
                } else if modifier == super::params::MODIFIER_LINEAR {
                    dmabuf.format(format);
                }
            }
        }
    }
}

impl Dispatch<ZwpLinuxDmabufV1, ()> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        _resource: &ZwpLinuxDmabufV1,
        request: zwp_linux_dmabuf_v1::Request,
        _data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        match request {
            zwp_linux_dmabuf_v1::Request::CreateParams { params_id } => {
                let params = data_init.init(params_id, ParamsData::default());
                if let Some(Err(exceeded)) = limits::usage(client).map(|u| u.add_params(&state.limits, &params)) {
                    limits::disconnect(dh, client, &exceeded);
                }
            }
            zwp_linux_dmabuf_v1::Request::GetDefaultFeedback { id } => {
                let feedback = data_init.init(id, FeedbackData::for_surface(None));
                if !charge_feedback(state, client, dh, &feedback) {
                    return;
                }
                if let Some(data) = feedback.data::<FeedbackData>() {
                    send_feedback(&feedback, data, &state.dmabuf_state.default_feedback);
                }
            }
            zwp_linux_dmabuf_v1::Request::GetSurfaceFeedback { id, surface } => {
                let feedback = data_init.init(id, FeedbackData::for_surface(Some(surface.clone())));
                if !charge_feedback(state, client, dh, &feedback) {
                    return;
                }
                if let Some(data) = feedback.data::<FeedbackData>() {
                    let current = state.dmabuf_state.surface_feedback(&surface).clone();
                    send_feedback(&feedback, data, &current);
                }
                state.dmabuf_state.surface_feedback_objects.push(feedback);
            }
            zwp_linux_dmabuf_v1::Request::Destroy => {}
            _ => {}
        }
    }
}

impl Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData> for Axiom {
    fn request(
        state: &mut Self,
        _client: &Client,
        resource: &ZwpLinuxDmabufFeedbackV1,
        request: zwp_linux_dmabuf_feedback_v1::Request,
        _data: &FeedbackData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, Self>,
    ) {
        if let zwp_linux_dmabuf_feedback_v1::Request::Destroy = request {
            state.dmabuf_state.surface_feedback_objects.retain(|f| f != resource);
        }
    }

    fn destroyed(
        state: &mut Self,
        _client: smithay::reexports::wayland_server::backend::ClientId,
        resource: &ZwpLinuxDmabufFeedbackV1,
        _data: &FeedbackData,
    ) {
        state.dmabuf_state.surface_feedback_objects.retain(|f| f != resource);
    }
}

impl Dispatch<ZwpLinuxBufferParamsV1, ParamsData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        params: &ZwpLinuxBufferParamsV1,
        request: zwp_linux_buffer_params_v1::Request,
        data: &ParamsData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        use zwp_linux_buffer_params_v1::{Error, Request};
        match request {
            Request::Add { fd, plane_idx, offset, stride, modifier_hi, modifier_lo } => {
                if data.used.load(Ordering::SeqCst) {
                    params.post_error(Error::AlreadyUsed, "params were already used to create a buffer");
                    return;
                }
                let Some(slot_index) = usize::try_from(plane_idx).ok().filter(|&i| i < MAX_PLANES) else {
                    params.post_error(Error::PlaneIdx, format!("plane index {plane_idx} is out of bounds"));
                    return;
                };
                let mut planes = data.planes.lock().unwrap_or_else(|e| e.into_inner());
                if planes[slot_index].is_some() {
                    params.post_error(Error::PlaneSet, format!("plane {plane_idx} is already set"));
                    return;
                }
                if let Some(usage) = limits::usage(client) {
                    match usage.charge_fd(&state.limits) {
                        Ok(charge) => data.charges.lock().unwrap_or_else(|e| e.into_inner()).push(charge),
                        Err(exceeded) => {
                            limits::disconnect(dh, client, &exceeded);
                            return;
                        }
                    }
                }
                let modifier = (u64::from(modifier_hi) << 32) | u64::from(modifier_lo);
                planes[slot_index] = Some((fd, PlaneParams { offset, stride, modifier }));
            }
            Request::Create { width, height, format, flags } => {
                let Some(planes) = take_planes(params, data) else { return };
                params_used(client, params);
                match state.build_buffer(planes, width, height, format, flags) {
                    Ok((valid, dmabuf)) => {
                        let Some(charge) = charge_buffer(state, client, dh, &valid) else { return };
                        match client.create_resource::<WlBuffer, Dmabuf, Axiom>(dh, 1, dmabuf) {
                            Ok(buffer) => {
                                state.dmabuf_state.log_created(&valid, &buffer);
                                record_buffer(client, &buffer, charge, valid.format.planes.len());
                                params.created(&buffer);
                            }
                            Err(_) => params.failed(),
                        }
                    }
                    Err(ParamsError::Unsupported(reason)) => {
                        state.dmabuf_state.refused(&reason);
                        params.failed();
                    }
                    Err(err) => post_params_error(params, err),
                }
            }
            Request::CreateImmed { buffer_id, width, height, format, flags } => {
                let Some(planes) = take_planes(params, data) else { return };
                params_used(client, params);
                match state.build_buffer(planes, width, height, format, flags) {
                    Ok((valid, dmabuf)) => {
                        let Some(charge) = charge_buffer(state, client, dh, &valid) else { return };
                        let buffer = data_init.init(buffer_id, dmabuf);
                        state.dmabuf_state.log_created(&valid, &buffer);
                        record_buffer(client, &buffer, charge, valid.format.planes.len());
                    }
                    Err(ParamsError::Unsupported(reason)) => {
                        state.dmabuf_state.refused(&reason);
                        params.post_error(Error::InvalidWlBuffer, format!("create_immed failed: {reason}"));
                    }
                    Err(err) => post_params_error(params, err),
                }
            }
            Request::Destroy => {}
            _ => {}
        }
    }
}

/// Checks the client's limits for one more buffer of `valid.bytes`; disconnects it if it
/// is over (None), else returns the bytes to charge once the buffer exists.
fn charge_buffer(state: &Axiom, client: &Client, dh: &DisplayHandle, valid: &ValidBuffer) -> Option<u64> {
    // A client without our data is not counted (the buffer must still be created).
    let Some(usage) = limits::usage(client) else { return Some(valid.bytes) };
    match usage.check_buffer(&state.limits, valid.bytes) {
        Ok(()) => Some(valid.bytes),
        Err(exceeded) => {
            limits::disconnect(dh, client, &exceeded);
            None
        }
    }
}

fn record_buffer(client: &Client, buffer: &WlBuffer, bytes: u64, fds: usize) {
    if let Some(usage) = limits::usage(client) {
        usage.add_dmabuf(buffer, bytes, fds);
    }
}

fn params_used(client: &Client, params: &ZwpLinuxBufferParamsV1) {
    if let Some(usage) = limits::usage(client) {
        usage.params_used(params);
    }
}

/// Counts a new feedback object against the client's fds; false if that disconnected it.
fn charge_feedback(state: &Axiom, client: &Client, dh: &DisplayHandle, feedback: &ZwpLinuxDmabufFeedbackV1) -> bool {
    let Some(usage) = limits::usage(client) else { return true };
    match usage.add_feedback(&state.limits, feedback) {
        Ok(()) => true,
        Err(exceeded) => {
            limits::disconnect(dh, client, &exceeded);
            false
        }
    }
}

/// Marks the params used and takes their planes; posts `already_used` on a second create.
fn take_planes(
    params: &ZwpLinuxBufferParamsV1,
    data: &ParamsData,
) -> Option<[Option<(OwnedFd, PlaneParams)>; MAX_PLANES]> {
    if data.used.swap(true, Ordering::SeqCst) {
        params
            .post_error(zwp_linux_buffer_params_v1::Error::AlreadyUsed, "params were already used to create a buffer");
        return None;
    }
    // The fds move into the buffer, which is charged for them (or close here).
    data.charges.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let mut planes = data.planes.lock().unwrap_or_else(|e| e.into_inner());
    Some(std::mem::take(&mut *planes))
}

fn post_params_error(params: &ZwpLinuxBufferParamsV1, err: ParamsError) {
    use zwp_linux_buffer_params_v1::Error;
    let code = match err {
        ParamsError::Incomplete(_) => Error::Incomplete,
        ParamsError::InvalidFormat(_) => Error::InvalidFormat,
        ParamsError::InvalidDimensions(_) => Error::InvalidDimensions,
        ParamsError::OutOfBounds(_) => Error::OutOfBounds,
        ParamsError::Unsupported(_) => Error::InvalidWlBuffer,
    };
    tracing::info!("DMA-BUF: protocol error {code:?}: {err}");
    params.post_error(code, err.to_string());
}

fn build_dmabuf(
    valid: ValidBuffer,
    planes: [Option<(OwnedFd, PlaneParams)>; MAX_PLANES],
    flags: smithay::reexports::wayland_server::WEnum<zwp_linux_buffer_params_v1::Flags>,
) -> Option<Dmabuf> {
    let flags = flags.into_result().unwrap_or(zwp_linux_buffer_params_v1::Flags::empty());
    let mut dmabuf_flags = DmabufFlags::empty();
    if flags.contains(zwp_linux_buffer_params_v1::Flags::YInvert) {
        dmabuf_flags |= DmabufFlags::Y_INVERT;
    }
    let mut builder = Dmabuf::builder(
        (valid.width as i32, valid.height as i32),
        valid.format.fourcc,
        Modifier::from(valid.modifier),
        dmabuf_flags,
    );
    for (index, (fd, plane)) in planes.into_iter().flatten().enumerate() {
        builder.add_plane(fd, index as u32, plane.offset, plane.stride);
    }
    // Validation guaranteed 1..=4 planes, which is all `build` checks.
    builder.build()
}

impl Axiom {
    /// Validates the params and builds the buffer they describe.
    fn build_buffer(
        &self,
        planes: [Option<(OwnedFd, PlaneParams)>; MAX_PLANES],
        width: i32,
        height: i32,
        format: u32,
        flags: smithay::reexports::wayland_server::WEnum<zwp_linux_buffer_params_v1::Flags>,
    ) -> Result<(ValidBuffer, Dmabuf), ParamsError> {
        let valid = self.validate_params(&planes, width, height, format, flags)?;
        let dmabuf = build_dmabuf(valid, planes, flags).ok_or_else(|| ParamsError::Unsupported("no planes".into()))?;
        Ok((valid, dmabuf))
    }

    fn validate_params(
        &self,
        planes: &[Option<(OwnedFd, PlaneParams)>; MAX_PLANES],
        width: i32,
        height: i32,
        format: u32,
        flags: smithay::reexports::wayland_server::WEnum<zwp_linux_buffer_params_v1::Flags>,
    ) -> Result<ValidBuffer, ParamsError> {
        let flags = flags.into_result().map_err(|_| ParamsError::Unsupported("unknown flags".into()))?;
        if flags
            .intersects(zwp_linux_buffer_params_v1::Flags::Interlaced | zwp_linux_buffer_params_v1::Flags::BottomFirst)
        {
            return Err(ParamsError::Unsupported("interlaced buffers are not supported".into()));
        }
        let params = planes.each_ref().map(|p| p.as_ref().map(|(_, params)| *params));
        let table = &self.dmabuf_state.default_feedback.table;
        validate(
            &params,
            width,
            height,
            format,
            |fourcc, modifier| table.index_of(fourcc, modifier).is_some(),
            |index| planes[index].as_ref().and_then(|(fd, _)| super::fd_size(fd.as_fd())),
            self.renderer.max_texture_dimension(),
        )
    }
}

impl Dispatch<WlBuffer, Dmabuf> for Axiom {
    fn request(
        state: &mut Self,
        _client: &Client,
        buffer: &WlBuffer,
        request: wl_buffer::Request,
        _data: &Dmabuf,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, Self>,
    ) {
        if let wl_buffer::Request::Destroy = request {
            state.buffer_destroyed(buffer);
        }
    }

    fn destroyed(
        state: &mut Self,
        _client: smithay::reexports::wayland_server::backend::ClientId,
        buffer: &WlBuffer,
        _data: &Dmabuf,
    ) {
        // Also when the client goes away without destroying its buffers.
        state.renderer.forget_buffer(&buffer.id());
    }
}

/// A DRM fourcc as `0x34325258`: the form of the `DMA-BUF: created buffer ...` and
/// `DMA-BUF: zero-copy Vulkan import succeeded ...` log lines that the original
/// design documents, kept so that scripts grepping for them go on working.
pub fn fourcc_hex(fourcc: Fourcc) -> String {
    format!("0x{:08x}", fourcc as u32)
}
