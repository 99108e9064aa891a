//! linux-dmabuf from the client side: "dmabufs" made of memfds (real ones through
//! /dev/udmabuf where the kernel has it), sent through zwp_linux_buffer_params_v1,
//! and the feedback the compositor sends.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::Context;
use wayland_client::backend::ObjectId;
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::{event_created_child, Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::{self, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_feedback_v1::{self, ZwpLinuxDmabufFeedbackV1},
    zwp_linux_dmabuf_v1::{self, ZwpLinuxDmabufV1},
};

use crate::client::{State, TestClient};

/// One plane as sent with `add`.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub fd: BorrowedFd<'a>,
    pub offset: u32,
    pub stride: u32,
    pub modifier: u64,
}

/// The outcome of `create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Buffer(WlBuffer),
    Failed,
}

/// Everything one feedback object received.
#[derive(Debug, Default, Clone)]
pub struct FeedbackLog {
    pub format_tables: Vec<Vec<(u32, u64)>>,
    pub main_device: Option<u64>,
    pub tranches: Vec<(u64, u32, Vec<u16>)>,
    pub done: u32,
    current: Option<(u64, u32, Vec<u16>)>,
}

#[derive(Default)]
pub struct DmabufEvents {
    created: std::collections::HashMap<ObjectId, Created>,
    feedback: std::collections::HashMap<ObjectId, FeedbackLog>,
    /// `modifier` events of a version 3 binding.
    pub modifiers: Vec<(u32, u64)>,
}

impl TestClient {
    /// Binds zwp_linux_dmabuf_v1 at `version`.
    pub fn bind_dmabuf(&mut self, version: u32) -> anyhow::Result<ZwpLinuxDmabufV1> {
        let dmabuf = self.globals.bind(&self.qh, version..=version, ()).context("zwp_linux_dmabuf_v1")?;
        self.roundtrip()?;
        Ok(dmabuf)
    }

    pub fn dmabuf_events(&self) -> &DmabufEvents {
        &self.state.dmabuf
    }

    /// Params with `planes` added (plane i at index i).
    pub fn dmabuf_params(&mut self, dmabuf: &ZwpLinuxDmabufV1, planes: &[Plane<'_>]) -> ZwpLinuxBufferParamsV1 {
        let params = dmabuf.create_params(&self.qh, ());
        for (index, plane) in planes.iter().enumerate() {
            params.add(
                plane.fd,
                index as u32,
                plane.offset,
                plane.stride,
                (plane.modifier >> 32) as u32,
                plane.modifier as u32,
            );
        }
        params
    }

    /// `create` and wait for `created` or `failed`.
    pub fn dmabuf_create(
        &mut self,
        params: &ZwpLinuxBufferParamsV1,
        width: i32,
        height: i32,
        fourcc: u32,
    ) -> anyhow::Result<Created> {
        params.create(width, height, fourcc, zwp_linux_buffer_params_v1::Flags::empty());
        let id = params.id();
        self.wait_until("created or failed", |s| s.dmabuf.created.contains_key(&id))?;
        Ok(self.state.dmabuf.created[&id].clone())
    }

    /// `create_immed`: the buffer exists at once (the compositor kills us if it cannot import).
    pub fn dmabuf_create_immed(
        &mut self,
        params: &ZwpLinuxBufferParamsV1,
        width: i32,
        height: i32,
        fourcc: u32,
    ) -> WlBuffer {
        params.create_immed(width, height, fourcc, zwp_linux_buffer_params_v1::Flags::empty(), &self.qh, ())
    }

    pub fn default_feedback(
        &mut self,
        dmabuf: &ZwpLinuxDmabufV1,
    ) -> anyhow::Result<(ZwpLinuxDmabufFeedbackV1, FeedbackLog)> {
        let feedback = dmabuf.get_default_feedback(&self.qh, ());
        let log = self.wait_feedback_done(&feedback, 1)?;
        Ok((feedback, log))
    }

    pub fn surface_feedback(
        &mut self,
        dmabuf: &ZwpLinuxDmabufV1,
        surface: &wayland_client::protocol::wl_surface::WlSurface,
    ) -> anyhow::Result<(ZwpLinuxDmabufFeedbackV1, FeedbackLog)> {
        let feedback = dmabuf.get_surface_feedback(surface, &self.qh, ());
        let log = self.wait_feedback_done(&feedback, 1)?;
        Ok((feedback, log))
    }

    /// Everything `feedback` received so far (after a roundtrip, whatever was sent).
    pub fn feedback_log(&self, feedback: &ZwpLinuxDmabufFeedbackV1) -> FeedbackLog {
        self.state.dmabuf.feedback.get(&feedback.id()).cloned().unwrap_or_default()
    }

    /// Waits until `feedback` has received `done` at least `count` times.
    pub fn wait_feedback_done(
        &mut self,
        feedback: &ZwpLinuxDmabufFeedbackV1,
        count: u32,
    ) -> anyhow::Result<FeedbackLog> {
        let id = feedback.id();
        self.wait_until("feedback done", |s| s.dmabuf.feedback.get(&id).is_some_and(|f| f.done >= count))?;
        Ok(self.state.dmabuf.feedback[&id].clone())
    }
}

/// Reads a format table the way clients do: mmap the fd.
fn read_format_table(fd: OwnedFd, size: u32) -> Vec<(u32, u64)> {
    let mut bytes = vec![0u8; size as usize];
    let _ = rustix::io::pread(&fd, &mut bytes, 0);
    bytes
        .chunks_exact(16)
        .map(|e| {
            let format = u32::from_ne_bytes([e[0], e[1], e[2], e[3]]);
            let modifier = u64::from_ne_bytes([e[8], e[9], e[10], e[11], e[12], e[13], e[14], e[15]]);
            (format, modifier)
        })
        .collect()
}

fn dev(bytes: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    u64::from_ne_bytes(raw)
}

impl Dispatch<ZwpLinuxDmabufV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &ZwpLinuxDmabufV1,
        event: zwp_linux_dmabuf_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwp_linux_dmabuf_v1::Event::Modifier { format, modifier_hi, modifier_lo } = event {
            state.dmabuf.modifiers.push((format, (u64::from(modifier_hi) << 32) | u64::from(modifier_lo)));
        }
    }
}

impl Dispatch<ZwpLinuxBufferParamsV1, ()> for State {
    fn event(
        state: &mut Self,
        params: &ZwpLinuxBufferParamsV1,
        event: zwp_linux_buffer_params_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let outcome = match event {
            zwp_linux_buffer_params_v1::Event::Created { buffer } => Created::Buffer(buffer),
            zwp_linux_buffer_params_v1::Event::Failed => Created::Failed,
            _ => return,
        };
        state.dmabuf.created.insert(params.id(), outcome);
    }

    event_created_child!(State, ZwpLinuxBufferParamsV1, [
        zwp_linux_buffer_params_v1::EVT_CREATED_OPCODE => (WlBuffer, ()),
    ]);
}

impl Dispatch<ZwpLinuxDmabufFeedbackV1, ()> for State {
    fn event(
        state: &mut Self,
        feedback: &ZwpLinuxDmabufFeedbackV1,
        event: zwp_linux_dmabuf_feedback_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let log = state.dmabuf.feedback.entry(feedback.id()).or_default();
        use zwp_linux_dmabuf_feedback_v1::Event;
        match event {
            Event::FormatTable { fd, size } => log.format_tables.push(read_format_table(fd, size)),
            Event::MainDevice { device } => log.main_device = Some(dev(&device)),
            Event::TrancheTargetDevice { device } => log.current.get_or_insert_with(Default::default).0 = dev(&device),
            Event::TrancheFlags { flags } => {
                log.current.get_or_insert_with(Default::default).1 =
                    flags.into_result().map(|f| f.bits()).unwrap_or(u32::MAX)
            }
            Event::TrancheFormats { indices } => {
                let current = log.current.get_or_insert_with(Default::default);
                current.2 = indices.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
            }
            Event::TrancheDone => {
                if let Some(tranche) = log.current.take() {
                    log.tranches.push(tranche);
                }
            }
            Event::Done => log.done += 1,
            _ => {}
        }
    }
}

/// Seals a memfd against shrinking, as udmabuf requires of real dma-buf memfds.
pub fn seal_shrink(fd: impl AsFd) -> anyhow::Result<()> {
    rustix::fs::fcntl_add_seals(fd, rustix::fs::SealFlags::SHRINK).context("F_ADD_SEALS")
}

/// `struct udmabuf_create` of linux/udmabuf.h.
#[repr(C)]
struct UdmabufCreate {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}

/// `_IOW('u', 0x42, struct udmabuf_create)`.
const UDMABUF_CREATE: libc::c_ulong = 0x4018_7542;
const UDMABUF_FLAGS_CLOEXEC: u32 = 1;

/// A real dma-buf made of `memory`'s pages through /dev/udmabuf (kernels with
/// CONFIG_UDMABUF, such as the VM rig's). The memfd must be sealed against
/// shrinking and `size` page-aligned; the pages stay shared, so writes to the
/// memfd show through the dma-buf.
pub fn udmabuf(memory: BorrowedFd<'_>, size: u64) -> anyhow::Result<OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let device = std::fs::File::open("/dev/udmabuf").context("/dev/udmabuf")?;
    let request = UdmabufCreate { memfd: memory.as_raw_fd() as u32, flags: UDMABUF_FLAGS_CLOEXEC, offset: 0, size };
    // SAFETY: the request matches the kernel's struct; the ioctl returns a new fd or -1.
    let fd = unsafe { libc::ioctl(device.as_raw_fd(), UDMABUF_CREATE, &request) };
    anyhow::ensure!(fd >= 0, "UDMABUF_CREATE: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
