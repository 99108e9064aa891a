//! The requests hostile scenarios send, by name, on top of [`WireClient`]:
//! opcodes and argument order from wayland.xml and xdg-shell.xml.

use std::os::fd::{AsFd, OwnedFd};

use super::wire::{Arg, WireClient};

/// The globals most scenarios need, bound at their highest versions.
pub struct Globals {
    pub compositor: u32,
    pub subcompositor: u32,
    pub shm: u32,
    pub wm_base: u32,
}

pub const XRGB8888: u32 = 1;
/// DRM_FORMAT_XRGB8888 ('XR24'), the same layout for linux-dmabuf.
pub const DRM_XRGB8888: u32 = 0x3432_5258;

impl WireClient {
    pub fn bind_common(&mut self) -> anyhow::Result<Globals> {
        Ok(Globals {
            compositor: self.bind("wl_compositor", 6)?,
            subcompositor: self.bind("wl_subcompositor", 1)?,
            shm: self.bind("wl_shm", 1)?,
            wm_base: self.bind("xdg_wm_base", 6)?,
        })
    }

    pub fn create_surface(&mut self, g: &Globals) -> anyhow::Result<u32> {
        let id = self.new_id();
        self.send(g.compositor, 0, &[Arg::Uint(id)])?;
        Ok(id)
    }

    pub fn create_pool(&mut self, g: &Globals, fd: impl AsFd, size: i32) -> anyhow::Result<u32> {
        let id = self.new_id();
        self.send(g.shm, 0, &[Arg::Uint(id), Arg::Fd(fd.as_fd()), Arg::Int(size)])?;
        Ok(id)
    }

    /// wl_shm_pool.create_buffer(offset, width, height, stride, format).
    pub fn create_buffer(
        &mut self,
        pool: u32,
        offset: i32,
        w: i32,
        h: i32,
        stride: i32,
        format: u32,
    ) -> anyhow::Result<u32> {
        let id = self.new_id();
        let args = [Arg::Uint(id), Arg::Int(offset), Arg::Int(w), Arg::Int(h), Arg::Int(stride), Arg::Uint(format)];
        self.send(pool, 0, &args)?;
        Ok(id)
    }

    /// A memfd of `size` bytes, a pool over it and one XRGB8888 buffer filling it (`w` wide).
    pub fn shm_buffer(&mut self, g: &Globals, w: i32, h: i32) -> anyhow::Result<(OwnedFd, u32, u32)> {
        let fd = memfd((w * h * 4) as u64)?;
        let pool = self.create_pool(g, &fd, w * h * 4)?;
        let buffer = self.create_buffer(pool, 0, w, h, w * 4, XRGB8888)?;
        Ok((fd, pool, buffer))
    }

    pub fn attach(&mut self, surface: u32, buffer: u32, x: i32, y: i32) -> anyhow::Result<()> {
        self.send(surface, 1, &[Arg::Uint(buffer), Arg::Int(x), Arg::Int(y)])
    }

    pub fn commit(&mut self, surface: u32) -> anyhow::Result<()> {
        self.send(surface, 6, &[])
    }

    /// wl_surface.frame; returns the callback's id.
    pub fn frame(&mut self, surface: u32) -> anyhow::Result<u32> {
        let id = self.new_id();
        self.send(surface, 3, &[Arg::Uint(id)])?;
        Ok(id)
    }

    pub fn damage_buffer(&mut self, surface: u32, x: i32, y: i32, w: i32, h: i32) -> anyhow::Result<()> {
        self.send(surface, 9, &[Arg::Int(x), Arg::Int(y), Arg::Int(w), Arg::Int(h)])
    }

    /// wl_shm_pool.destroy (opcode 1: the pool's destructor is not its first request).
    pub fn destroy_pool(&mut self, pool: u32) -> anyhow::Result<()> {
        self.send(pool, 1, &[])
    }

    /// wl_shm_pool.resize (opcode 2).
    pub fn resize_pool(&mut self, pool: u32, size: i32) -> anyhow::Result<()> {
        self.send(pool, 2, &[Arg::Int(size)])
    }

    /// A single-plane linux-dmabuf buffer over `fd` through create_immed; the params
    /// object is destroyed again. `dmabuf` is a bound zwp_linux_dmabuf_v1.
    pub fn dmabuf_buffer(
        &mut self,
        dmabuf: u32,
        fd: impl AsFd,
        w: i32,
        h: i32,
        stride: u32,
        fourcc: u32,
    ) -> anyhow::Result<u32> {
        let params = self.new_id();
        self.send(dmabuf, 1, &[Arg::Uint(params)])?;
        // add(fd, plane_idx, offset, stride, modifier_hi, modifier_lo): LINEAR.
        let add = [Arg::Fd(fd.as_fd()), Arg::Uint(0), Arg::Uint(0), Arg::Uint(stride), Arg::Uint(0), Arg::Uint(0)];
        self.send(params, 1, &add)?;
        let buffer = self.new_id();
        self.send(params, 3, &[Arg::Uint(buffer), Arg::Int(w), Arg::Int(h), Arg::Uint(fourcc), Arg::Uint(0)])?;
        self.send(params, 0, &[])?;
        Ok(buffer)
    }

    /// A params object holding `planes` fds (each a copy of `fd`, planes 0..planes)
    /// that is never used: the compositor holds the fds until it is destroyed.
    pub fn pending_params(&mut self, dmabuf: u32, fd: impl AsFd, planes: u32) -> anyhow::Result<u32> {
        let params = self.new_id();
        self.send(dmabuf, 1, &[Arg::Uint(params)])?;
        for plane in 0..planes {
            let add = [Arg::Fd(fd.as_fd()), Arg::Uint(plane), Arg::Uint(0), Arg::Uint(64), Arg::Uint(0), Arg::Uint(0)];
            self.send(params, 1, &add)?;
        }
        Ok(params)
    }

    /// Destroys any object whose destructor is opcode 0 (wl_surface, wl_buffer, xdg_*).
    pub fn destroy(&mut self, object: u32) -> anyhow::Result<()> {
        self.send(object, 0, &[])
    }

    pub fn get_xdg_surface(&mut self, g: &Globals, surface: u32) -> anyhow::Result<u32> {
        let id = self.new_id();
        self.send(g.wm_base, 2, &[Arg::Uint(id), Arg::Uint(surface)])?;
        Ok(id)
    }

    pub fn get_toplevel(&mut self, xdg_surface: u32) -> anyhow::Result<u32> {
        let id = self.new_id();
        self.send(xdg_surface, 1, &[Arg::Uint(id)])?;
        Ok(id)
    }

    /// A toplevel that has had its initial commit and acked its first configure:
    /// (surface, xdg_surface, toplevel).
    pub fn configured_toplevel(&mut self, g: &Globals) -> anyhow::Result<(u32, u32, u32)> {
        let surface = self.create_surface(g)?;
        let xdg_surface = self.get_xdg_surface(g, surface)?;
        let toplevel = self.get_toplevel(xdg_surface)?;
        self.commit(surface)?;
        self.roundtrip()?;
        let serial =
            self.last_event_word(xdg_surface, 0).ok_or_else(|| anyhow::anyhow!("no configure for the toplevel"))?;
        self.send(xdg_surface, 4, &[Arg::Uint(serial)])?;
        Ok((surface, xdg_surface, toplevel))
    }

    pub fn create_positioner(&mut self, g: &Globals) -> anyhow::Result<u32> {
        let id = self.new_id();
        self.send(g.wm_base, 1, &[Arg::Uint(id)])?;
        Ok(id)
    }
}

/// An anonymous memory file of `size` bytes (which may be sealed).
pub fn memfd(size: u64) -> anyhow::Result<OwnedFd> {
    let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
    let fd = rustix::fs::memfd_create("axiom-hostile", flags)?;
    rustix::fs::ftruncate(&fd, size)?;
    Ok(fd)
}
