//! wl_shm, wl_shm_pool and shm wl_buffers: smithay's implementation, behind a
//! thin layer of ours that charges pools and buffers to the client's limits
//! (see `limits.rs`), refuses the requests smithay would panic on, and notes
//! which clients' pools are safe for the GPU to read in place.

use smithay::reexports::wayland_server::backend::ClientId;
use smithay::reexports::wayland_server::protocol::wl_buffer::{self, WlBuffer};
use smithay::reexports::wayland_server::protocol::wl_shm::{self, WlShm};
use smithay::reexports::wayland_server::protocol::wl_shm_pool::{self, WlShmPool};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, Resource, WEnum};
use smithay::wayland::shm::{ShmBufferUserData, ShmHandler, ShmPoolUserData, ShmState};

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;

use rustix::fs::SealFlags;

use crate::limits;
use crate::state::ClientState;
use crate::Axiom;

impl ShmHandler for Axiom {
    fn shm_state(&self) -> &ShmState {
        &self.shm_state
    }
}

smithay::reexports::wayland_server::delegate_global_dispatch!(Axiom: [WlShm: ()] => ShmState);

impl Dispatch<WlShm, ()> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        shm: &WlShm,
        request: wl_shm::Request,
        data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        // Clients inserted without our data (Xwayland, which smithay inserts) are not counted; their requests
        // still reach smithay, which must initialise every object a request creates.
        let (wl_shm::Request::CreatePool { id, fd, size }, Some(client_data)) =
            (&request, client.get_data::<ClientState>())
        else {
            return <ShmState as Dispatch<WlShm, (), Self>>::request(state, client, shm, request, data, dh, data_init);
        };
        let bytes = u64::try_from(*size).unwrap_or(0);
        if let Err(exceeded) = client_data.usage.check_shm_pool(&state.limits, bytes) {
            limits::disconnect(dh, client, &exceeded);
            return;
        }
        if !cannot_fault(fd.as_fd(), *size) {
            client_data.shm_may_fault.store(true, Ordering::Relaxed);
        }
        let protocol_id = super::new_object_protocol_id(id);
        <ShmState as Dispatch<WlShm, (), Self>>::request(state, client, shm, request, data, dh, data_init);
        // smithay refuses a pool it cannot map with an error: only a live pool is charged.
        match protocol_id.and_then(|id| client.object_from_protocol_id::<WlShmPool>(dh, id).ok()) {
            Some(pool) if pool.is_alive() => client_data.usage.add_shm_pool(pool.id(), bytes),
            _ => tracing::debug!("shm pool not made (or not found): not charged"),
        }
    }
}

impl Dispatch<WlShmPool, ShmPoolUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        pool: &WlShmPool,
        request: wl_shm_pool::Request,
        data: &ShmPoolUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        match &request {
            wl_shm_pool::Request::CreateBuffer { format: WEnum::Unknown(format), .. } => {
                // smithay would find the stride wrong first and name the wrong error.
                pool.post_error(wl_shm::Error::InvalidFormat, format!("unknown format 0x{format:08x}"));
                return;
            }
            wl_shm_pool::Request::CreateBuffer { format: WEnum::Value(format), .. }
                if !crate::render::formats::SHM_FORMATS.iter().any(|f| f.shm == *format) =>
            {
                pool.post_error(wl_shm::Error::InvalidFormat, format!("format {format:?} is not supported"));
                return;
            }
            // A buffer spanning more than any pool can hold is invalid; smithay says so.
            wl_shm_pool::Request::CreateBuffer { id, stride, height, .. }
                if span(*stride, *height) <= i32::MAX as u64 =>
            {
                let Some(usage) = limits::usage(client) else {
                    return <ShmState as Dispatch<WlShmPool, ShmPoolUserData, Self>>::request(
                        state, client, pool, request, data, dh, data_init,
                    );
                };
                let bytes = span(*stride, *height);
                if let Err(exceeded) = usage.check_buffer(&state.limits, bytes) {
                    limits::disconnect(dh, client, &exceeded);
                    return;
                }
                let protocol_id = super::new_object_protocol_id(id);
                <ShmState as Dispatch<WlShmPool, ShmPoolUserData, Self>>::request(
                    state, client, pool, request, data, dh, data_init,
                );
                if let Some(buffer) = protocol_id.and_then(|id| client.object_from_protocol_id::<WlBuffer>(dh, id).ok())
                {
                    if buffer.is_alive() {
                        usage.add_shm_buffer(&pool.id(), buffer.id(), bytes);
                    }
                }
                return;
            }
            // smithay would unwrap a zero size into a panic. A pool can only grow (as libwayland: invalid_fd).
            wl_shm_pool::Request::Resize { size } if *size <= 0 => {
                pool.post_error(wl_shm::Error::InvalidFd, format!("invalid wl_shm_pool size {size}"));
                return;
            }
            // The file is not at hand to check the new size against: assume the worst.
            wl_shm_pool::Request::Resize { size } => {
                if let Some(data) = client.get_data::<ClientState>() {
                    data.shm_may_fault.store(true, Ordering::Relaxed);
                    if let Err(exceeded) = data.usage.resize_shm_pool(&state.limits, &pool.id(), *size as u64) {
                        limits::disconnect(dh, client, &exceeded);
                        return;
                    }
                }
                // smithay unmaps the pool's old mapping: no import may alias it then.
                if state.renderer.retire_host_imports(&client.id()) {
                    // The targets not painted yet wait for a frame without the retired imports.
                    state.schedule_repaint();
                }
            }
            _ => {}
        }
        <ShmState as Dispatch<WlShmPool, ShmPoolUserData, Self>>::request(
            state, client, pool, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, pool: &WlShmPool, data: &ShmPoolUserData) {
        limits::with_usage_of(&state.display_handle, client.clone(), |usage| usage.remove_shm_pool(&pool.id()));
        <ShmState as Dispatch<WlShmPool, ShmPoolUserData, Self>>::destroyed(state, client, pool, data);
    }
}

impl Dispatch<WlBuffer, ShmBufferUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        buffer: &WlBuffer,
        request: wl_buffer::Request,
        data: &ShmBufferUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        <ShmState as Dispatch<WlBuffer, ShmBufferUserData, Self>>::request(
            state, client, buffer, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, buffer: &WlBuffer, data: &ShmBufferUserData) {
        limits::with_usage_of(&state.display_handle, client.clone(), |usage| usage.remove_shm_buffer(&buffer.id()));
        <ShmState as Dispatch<WlBuffer, ShmBufferUserData, Self>>::destroyed(state, client, buffer, data);
    }
}

/// Whether a pool of `size` bytes over `fd` can be read without faulting for as
/// long as it lives: a memfd sealed against shrinking, at least `size` long.
fn cannot_fault(fd: BorrowedFd<'_>, size: i32) -> bool {
    let sealed = rustix::fs::fcntl_get_seals(fd).is_ok_and(|seals| seals.contains(SealFlags::SHRINK));
    sealed && rustix::fs::fstat(fd).is_ok_and(|stat| stat.st_size >= i64::from(size))
}

/// Bytes an shm buffer spans in its pool, as charged to the client.
fn span(stride: i32, height: i32) -> u64 {
    u64::try_from(stride).unwrap_or(0).saturating_mul(u64::try_from(height).unwrap_or(0))
}
