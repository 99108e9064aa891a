//! wl_shm, wl_shm_pool and shm wl_buffers: smithay's implementation, behind a
//! thin layer of ours that charges pools and buffers to the client's limits
//! (see `limits.rs`), refuses the requests smithay would panic on, and notes
//! which clients' pools are safe for the GPU to read in place.

use smithay::reexports::wayland_server::backend::ClientId;
use smithay::reexports::wayland_server::protocol::wl_buffer::{self, WlBuffer};
use smithay::reexports::wayland_server::protocol::wl_shm::{self, WlShm};
use smithay::reexports::wayland_server::protocol::wl_shm_pool::{self, WlShmPool};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, Resource, WEnum};
use smithay::wayland::shm::{with_buffer_contents, ShmBufferUserData, ShmHandler, ShmPoolUserData, ShmState};

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
        if let (wl_shm::Request::CreatePool { fd, size, .. }, Some(client_data)) =
            (&request, client.get_data::<ClientState>())
        {
            if let Err(exceeded) = client_data.usage.add_shm_pool(&state.limits) {
                limits::disconnect(dh, client, &exceeded);
                return;
            }
            if !cannot_fault(fd.as_fd(), *size) {
                client_data.shm_may_fault.store(true, Ordering::Relaxed);
            }
        }
        <ShmState as Dispatch<WlShm, (), Self>>::request(state, client, shm, request, data, dh, data_init);
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
            wl_shm_pool::Request::CreateBuffer { stride, height, .. } if span(*stride, *height) <= i32::MAX as u64 => {
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
                // Counted before smithay validates: if it refuses, the client is gone anyway.
                usage.add_shm_buffer(bytes);
            }
            // smithay would unwrap a zero size into a panic. A pool can only grow (as libwayland: invalid_fd).
            wl_shm_pool::Request::Resize { size } if *size <= 0 => {
                pool.post_error(wl_shm::Error::InvalidFd, format!("invalid wl_shm_pool size {size}"));
                return;
            }
            // The file is not at hand to check the new size against: assume the worst.
            wl_shm_pool::Request::Resize { .. } => {
                if let Some(data) = client.get_data::<ClientState>() {
                    data.shm_may_fault.store(true, Ordering::Relaxed);
                }
                // smithay unmaps the pool's old mapping: no import may alias it then.
                state.renderer.retire_host_imports(&client.id());
            }
            _ => {}
        }
        <ShmState as Dispatch<WlShmPool, ShmPoolUserData, Self>>::request(
            state, client, pool, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, pool: &WlShmPool, data: &ShmPoolUserData) {
        limits::with_usage_of(&state.display_handle, client.clone(), |usage| usage.remove_shm_pool());
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
        let bytes = with_buffer_contents(buffer, |_, _, info| span(info.stride, info.height)).unwrap_or(0);
        limits::with_usage_of(&state.display_handle, client.clone(), |usage| usage.remove_shm_buffer(bytes));
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
