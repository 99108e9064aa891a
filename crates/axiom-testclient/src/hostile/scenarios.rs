//! Protocol abuse, one scenario per misuse: wrong arguments, wrong order,
//! twice, after destroy, objects the client does not own, broken messages.
//! Each names the error the protocol XML prescribes (or, where the XML names
//! none, that the client is disconnected), and the object it must be posted on.
//! Requests the server cannot parse (unknown ids or opcodes, broken messages)
//! end the connection without an error event: that is how wayland-rs's server
//! answers them (libwayland would send `invalid_object`/`invalid_method`).

use std::path::Path;

use super::requests::{memfd, Globals, XRGB8888};
use super::wire::{Arg, Ending, WireClient, DISPLAY};

/// What the server must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `wl_display.error` with this code, on the object the scenario returns.
    Error(u32),
    /// The connection closed without an error event. libwayland would post
    /// `libwayland`; wayland-rs's server cannot (`why`), so the test pins down
    /// that it closes and sends nothing else, never an unrelated error.
    Closed { libwayland: &'static str, why: &'static str },
    /// Nothing: the requests are legal, however odd.
    Survive,
}

pub struct Scenario {
    pub name: &'static str,
    pub expect: Expect,
    /// Sends the requests; returns the object the error must name.
    pub run: fn(&mut WireClient) -> anyhow::Result<u32>,
}

/// The result of one scenario against a live compositor.
#[derive(Debug)]
pub struct Outcome {
    pub name: &'static str,
    pub expect: Expect,
    pub got: String,
    pub passed: bool,
}

/// Runs `scenario` on a fresh connection to the compositor at `socket`.
pub fn run(socket: &Path, scenario: &Scenario) -> Outcome {
    let result = (|| -> anyhow::Result<(u32, Option<Ending>)> {
        let mut client = WireClient::connect(socket)?;
        let object = (scenario.run)(&mut client)?;
        let ending = match scenario.expect {
            Expect::Survive => client.roundtrip().map(|_| None)?,
            _ => Some(client.expect_end()?),
        };
        Ok((object, ending))
    })();
    let (got, passed) = match (result, scenario.expect) {
        (Err(err), _) => (format!("failed: {err:#}"), false),
        (Ok((_, None)), expect) => ("connection alive".into(), expect == Expect::Survive),
        (Ok((object, Some(Ending::Error(err)))), expect) => {
            let got = format!("error {} on object {} ({})", err.code, err.object, err.message);
            let passed = matches!(expect, Expect::Error(code) if err.code == code && err.object == object);
            (got, passed)
        }
        (Ok((_, Some(Ending::Closed))), expect) => {
            ("closed without an error".into(), matches!(expect, Expect::Closed { .. }))
        }
    };
    Outcome { name: scenario.name, expect: scenario.expect, got, passed }
}

// Error codes, from the XML.
const DISPLAY_INVALID_OBJECT: u32 = 0;
const SHM_INVALID_FORMAT: u32 = 0;
const SHM_INVALID_STRIDE: u32 = 1;
const SHM_INVALID_FD: u32 = 2;
const SURFACE_INVALID_SCALE: u32 = 0;
const SURFACE_INVALID_TRANSFORM: u32 = 1;
const SURFACE_INVALID_OFFSET: u32 = 3;
const SUBCOMPOSITOR_BAD_SURFACE: u32 = 0;
const SUBCOMPOSITOR_BAD_PARENT: u32 = 1;
const WM_BASE_ROLE: u32 = 0;
const WM_BASE_DEFUNCT_SURFACES: u32 = 1;
const WM_BASE_INVALID_POPUP_PARENT: u32 = 3;
const WM_BASE_INVALID_POSITIONER: u32 = 5;
const SUBSURFACE_BAD_SURFACE: u32 = 0;
const XDG_SURFACE_ALREADY_CONSTRUCTED: u32 = 2;
const XDG_SURFACE_UNCONFIGURED_BUFFER: u32 = 3;
const XDG_SURFACE_INVALID_SIZE: u32 = 5;
const XDG_SURFACE_DEFUNCT_ROLE_OBJECT: u32 = 6;
const POSITIONER_INVALID_INPUT: u32 = 0;
const TOPLEVEL_INVALID_PARENT: u32 = 1;
const TOPLEVEL_INVALID_SIZE: u32 = 2;

fn common(c: &mut WireClient) -> anyhow::Result<Globals> {
    c.bind_common()
}

pub const SCENARIOS: &[Scenario] = &[
    // --- wl_display: ids and opcodes -----------------------------------
    Scenario {
        name: "request on an object id that was never created",
        expect: Expect::Closed {
            libwayland: "wl_display.invalid_object",
            why: "wayland-backend finds a request's signature by its object id; an id it does not hold makes the message unparseable, and it closes the connection without posting an error",
        },
        run: |c| {
            c.send(999, 0, &[])?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "unknown opcode",
        expect: Expect::Closed {
            libwayland: "wl_display.invalid_method",
            why: "wayland-backend finds no signature for an opcode past the interface's requests: the message is unparseable, and it closes the connection without posting an error",
        },
        run: |c| {
            let g = common(c)?;
            c.send(g.compositor, 7, &[])?;
            Ok(g.compositor)
        },
    },
    Scenario {
        name: "new id that is already in use",
        expect: Expect::Error(DISPLAY_INVALID_OBJECT),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            c.send(g.compositor, 0, &[Arg::Uint(surface)])?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "request on a destroyed surface",
        expect: Expect::Closed {
            libwayland: "wl_display.invalid_object",
            why: "wayland-backend finds a request's signature by its object id; an id it does not hold makes the message unparseable, and it closes the connection without posting an error",
        },
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            c.destroy(surface)?;
            c.roundtrip()?;
            c.commit(surface)?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "wl_buffer destroyed twice",
        expect: Expect::Closed {
            libwayland: "wl_display.invalid_object",
            why: "wayland-backend finds a request's signature by its object id; an id it does not hold makes the message unparseable, and it closes the connection without posting an error",
        },
        run: |c| {
            let g = common(c)?;
            let (_fd, _pool, buffer) = c.shm_buffer(&g, 4, 4)?;
            c.destroy(buffer)?;
            c.roundtrip()?;
            c.destroy(buffer)?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "attach an object id another client owns",
        expect: Expect::Error(DISPLAY_INVALID_OBJECT),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            // Ids are per client: 40 is a buffer in many clients, never in this one.
            c.attach(surface, 40, 0, 0)?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "a surface passed where a buffer is expected",
        expect: Expect::Error(DISPLAY_INVALID_OBJECT),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            let other = c.create_surface(&g)?;
            c.attach(surface, other, 0, 0)?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "message header shorter than a header",
        expect: Expect::Closed {
            libwayland: "wl_display.invalid_method (its arguments cannot be read)",
            why: "wayland-backend finds a header whose size is below its own 8 bytes malformed, and closes the connection without posting an error",
        },
        run: |c| {
            let g = common(c)?;
            let mut bytes = g.compositor.to_ne_bytes().to_vec();
            bytes.extend_from_slice(&(4u32 << 16).to_ne_bytes());
            c.send_raw(&bytes, &[])?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "string argument without its terminating NUL",
        expect: Expect::Closed {
            libwayland: "wl_display.invalid_method (its arguments cannot be read)",
            why: "wayland-backend finds the message malformed, and closes the connection without posting an error",
        },
        run: |c| {
            let g = common(c)?;
            let (surface, _, toplevel) = c.configured_toplevel(&g)?;
            let _ = surface;
            // xdg_toplevel.set_title with length 4 and no NUL byte.
            let mut bytes = toplevel.to_ne_bytes().to_vec();
            bytes.extend_from_slice(&((16u32 << 16) | 2).to_ne_bytes());
            bytes.extend_from_slice(&4u32.to_ne_bytes());
            bytes.extend_from_slice(b"abcd");
            c.send_raw(&bytes, &[])?;
            Ok(DISPLAY)
        },
    },
    // --- wl_shm -----------------------------------------------------------
    Scenario {
        name: "wl_shm pool of size 0",
        expect: Expect::Error(SHM_INVALID_STRIDE),
        run: |c| {
            let g = common(c)?;
            c.create_pool(&g, memfd(4096)?, 0)?;
            Ok(g.shm)
        },
    },
    Scenario {
        name: "wl_shm pool from a pipe",
        expect: Expect::Error(SHM_INVALID_FD),
        run: |c| {
            let g = common(c)?;
            let (read, _write) = rustix::pipe::pipe()?;
            c.create_pool(&g, read, 4096)?;
            Ok(g.shm)
        },
    },
    Scenario {
        name: "wl_shm pool from a socket",
        expect: Expect::Error(SHM_INVALID_FD),
        run: |c| {
            let g = common(c)?;
            let (socket, _peer) = std::os::unix::net::UnixStream::pair()?;
            c.create_pool(&g, socket, 4096)?;
            Ok(g.shm)
        },
    },
    Scenario {
        name: "wl_shm pool from /dev/null",
        expect: Expect::Error(SHM_INVALID_FD),
        run: |c| {
            let g = common(c)?;
            c.create_pool(&g, std::fs::File::open("/dev/null")?, 4096)?;
            Ok(g.shm)
        },
    },
    Scenario {
        name: "wl_shm buffer in an unknown format",
        expect: Expect::Error(SHM_INVALID_FORMAT),
        run: |c| {
            let g = common(c)?;
            let pool = c.create_pool(&g, memfd(4096)?, 4096)?;
            c.create_buffer(pool, 0, 4, 4, 16, 0x1234_5678)?;
            Ok(pool)
        },
    },
    Scenario {
        name: "wl_shm buffer reaching past the pool",
        expect: Expect::Error(SHM_INVALID_STRIDE),
        run: |c| {
            let g = common(c)?;
            let pool = c.create_pool(&g, memfd(4096)?, 4096)?;
            c.create_buffer(pool, 0, 64, 64, 256, XRGB8888)?;
            Ok(pool)
        },
    },
    Scenario {
        name: "wl_shm buffer at a negative offset",
        expect: Expect::Error(SHM_INVALID_STRIDE),
        run: |c| {
            let g = common(c)?;
            let pool = c.create_pool(&g, memfd(4096)?, 4096)?;
            c.create_buffer(pool, -16, 4, 4, 16, XRGB8888)?;
            Ok(pool)
        },
    },
    Scenario {
        name: "wl_shm buffer with stride overflowing height",
        expect: Expect::Error(SHM_INVALID_STRIDE),
        run: |c| {
            let g = common(c)?;
            let pool = c.create_pool(&g, memfd(4096)?, 4096)?;
            c.create_buffer(pool, 0, 4, i32::MAX / 2, 1 << 20, XRGB8888)?;
            Ok(pool)
        },
    },
    Scenario {
        name: "wl_shm pool shrunk",
        expect: Expect::Error(SHM_INVALID_FD),
        run: |c| {
            let g = common(c)?;
            let pool = c.create_pool(&g, memfd(8192)?, 8192)?;
            c.send(pool, 2, &[Arg::Int(4096)])?;
            Ok(pool)
        },
    },
    Scenario {
        name: "wl_shm pool resized to 0",
        expect: Expect::Error(SHM_INVALID_FD),
        run: |c| {
            let g = common(c)?;
            let pool = c.create_pool(&g, memfd(4096)?, 4096)?;
            c.send(pool, 2, &[Arg::Int(0)])?;
            Ok(pool)
        },
    },
    Scenario {
        name: "wl_shm pool resized to 1 GiB over a 4 KiB file",
        expect: Expect::Error(SHM_INVALID_FD),
        run: |c| {
            let g = common(c)?;
            let (surface, _, _) = c.configured_toplevel(&g)?;
            let pool = c.create_pool(&g, memfd(4096)?, 4096)?;
            // 1 GiB: within the default cap on what a client's pools may map.
            c.send(pool, 2, &[Arg::Int(1 << 30)])?;
            // Reading a buffer past the file's end faults; the compositor must catch
            // that and post the error on the buffer, as libwayland does.
            let buffer = c.create_buffer(pool, (1 << 30) - 64 * 64 * 4, 64, 64, 256, XRGB8888)?;
            c.attach(surface, buffer, 0, 0)?;
            c.commit(surface)?;
            Ok(buffer)
        },
    },
    Scenario {
        name: "wl_shm file truncated to 0 after its buffer was shown, then re-attached",
        expect: Expect::Error(SHM_INVALID_FD),
        run: |c| {
            let g = common(c)?;
            let (surface, _, _) = c.configured_toplevel(&g)?;
            let (fd, _pool, buffer) = c.shm_buffer(&g, 32, 32)?;
            c.attach(surface, buffer, 0, 0)?;
            let frame = c.frame(surface)?;
            c.commit(surface)?;
            c.wait_event(frame, 0)?;
            rustix::fs::ftruncate(&fd, 0)?;
            c.attach(surface, buffer, 0, 0)?;
            c.damage_buffer(surface, 0, 0, 32, 32)?;
            c.commit(surface)?;
            Ok(buffer)
        },
    },
    // --- wl_surface and wl_subsurface ---------------------------------------
    Scenario {
        name: "attach with a non-zero offset (wl_surface v5+)",
        expect: Expect::Error(SURFACE_INVALID_OFFSET),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            let (_fd, _pool, buffer) = c.shm_buffer(&g, 4, 4)?;
            c.attach(surface, buffer, 5, 5)?;
            Ok(surface)
        },
    },
    Scenario {
        name: "buffer scale 0",
        expect: Expect::Error(SURFACE_INVALID_SCALE),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            c.send(surface, 8, &[Arg::Int(0)])?;
            Ok(surface)
        },
    },
    Scenario {
        name: "buffer transform 8",
        expect: Expect::Error(SURFACE_INVALID_TRANSFORM),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            c.send(surface, 7, &[Arg::Int(8)])?;
            Ok(surface)
        },
    },
    Scenario {
        name: "subsurface whose parent is itself",
        expect: Expect::Error(SUBCOMPOSITOR_BAD_PARENT),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            let id = c.new_id();
            c.send(g.subcompositor, 1, &[Arg::Uint(id), Arg::Uint(surface), Arg::Uint(surface)])?;
            Ok(g.subcompositor)
        },
    },
    Scenario {
        name: "subsurface placed above itself",
        expect: Expect::Error(SUBSURFACE_BAD_SURFACE),
        run: |c| {
            let g = common(c)?;
            let (parent, surface) = (c.create_surface(&g)?, c.create_surface(&g)?);
            let subsurface = c.new_id();
            c.send(g.subcompositor, 1, &[Arg::Uint(subsurface), Arg::Uint(surface), Arg::Uint(parent)])?;
            c.send(subsurface, 2, &[Arg::Uint(surface)])?;
            Ok(subsurface)
        },
    },
    Scenario {
        name: "damage, buffer damage and regions of negative size",
        expect: Expect::Survive,
        run: |c| {
            let g = common(c)?;
            let (surface, _, _) = c.configured_toplevel(&g)?;
            let (_fd, _pool, buffer) = c.shm_buffer(&g, 8, 8)?;
            c.attach(surface, buffer, 0, 0)?;
            c.send(surface, 2, &[Arg::Int(0), Arg::Int(0), Arg::Int(-5), Arg::Int(4)])?;
            c.damage_buffer(surface, 0, 0, 4, i32::MIN)?;
            let region = c.new_id();
            c.send(g.compositor, 1, &[Arg::Uint(region)])?;
            c.send(region, 1, &[Arg::Int(0), Arg::Int(0), Arg::Int(-1), Arg::Int(-1)])?;
            c.send(region, 2, &[Arg::Int(0), Arg::Int(0), Arg::Int(3), Arg::Int(-3)])?;
            c.send(surface, 5, &[Arg::Uint(region)])?;
            c.commit(surface)?;
            c.roundtrip()?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "a chain of 900 nested subsurfaces, each as far from its parent as allowed",
        expect: Expect::Survive,
        run: |c| {
            let g = common(c)?;
            let (root, _, _) = c.configured_toplevel(&g)?;
            let fd = memfd(8 * 8 * 4)?;
            let pool = c.create_pool(&g, &fd, 8 * 8 * 4)?;
            let mut parent = root;
            for _ in 0..900 {
                let surface = c.create_surface(&g)?;
                let subsurface = c.new_id();
                c.send(g.subcompositor, 1, &[Arg::Uint(subsurface), Arg::Uint(surface), Arg::Uint(parent)])?;
                c.send(subsurface, 1, &[Arg::Int(i32::MAX), Arg::Int(i32::MIN)])?;
                let buffer = c.create_buffer(pool, 0, 8, 8, 32, XRGB8888)?;
                c.attach(surface, buffer, 0, 0)?;
                c.commit(surface)?;
                parent = surface;
            }
            let buffer = c.create_buffer(pool, 0, 8, 8, 32, XRGB8888)?;
            c.attach(root, buffer, 0, 0)?;
            let frame = c.frame(root)?;
            c.commit(root)?;
            c.wait_event(frame, 0)?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "subsurface made twice for one surface",
        expect: Expect::Error(SUBCOMPOSITOR_BAD_SURFACE),
        run: |c| {
            let g = common(c)?;
            let (parent, _, _) = c.configured_toplevel(&g)?;
            let surface = c.create_surface(&g)?;
            for _ in 0..2 {
                let id = c.new_id();
                c.send(g.subcompositor, 1, &[Arg::Uint(id), Arg::Uint(surface), Arg::Uint(parent)])?;
            }
            Ok(g.subcompositor)
        },
    },
    Scenario {
        name: "buffer destroyed while attached and shown, then surface committed again",
        expect: Expect::Survive,
        run: |c| {
            let g = common(c)?;
            let (surface, _, _) = c.configured_toplevel(&g)?;
            let (_fd, _pool, buffer) = c.shm_buffer(&g, 32, 32)?;
            c.attach(surface, buffer, 0, 0)?;
            c.commit(surface)?;
            c.destroy(buffer)?;
            c.commit(surface)?;
            c.roundtrip()?;
            Ok(DISPLAY)
        },
    },
    // --- xdg-shell ---------------------------------------------------------
    Scenario {
        name: "xdg_surface for a surface that already has a role",
        expect: Expect::Error(WM_BASE_ROLE),
        run: |c| {
            let g = common(c)?;
            let (parent, _, _) = c.configured_toplevel(&g)?;
            let surface = c.create_surface(&g)?;
            let id = c.new_id();
            c.send(g.subcompositor, 1, &[Arg::Uint(id), Arg::Uint(surface), Arg::Uint(parent)])?;
            c.get_xdg_surface(&g, surface)?;
            Ok(g.wm_base)
        },
    },
    Scenario {
        name: "get_toplevel twice",
        expect: Expect::Error(XDG_SURFACE_ALREADY_CONSTRUCTED),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            let xdg_surface = c.get_xdg_surface(&g, surface)?;
            c.get_toplevel(xdg_surface)?;
            c.get_toplevel(xdg_surface)?;
            Ok(xdg_surface)
        },
    },
    Scenario {
        name: "buffer committed before the first configure is acked",
        expect: Expect::Error(XDG_SURFACE_UNCONFIGURED_BUFFER),
        run: |c| {
            let g = common(c)?;
            let surface = c.create_surface(&g)?;
            let xdg_surface = c.get_xdg_surface(&g, surface)?;
            c.get_toplevel(xdg_surface)?;
            let (_fd, _pool, buffer) = c.shm_buffer(&g, 4, 4)?;
            c.attach(surface, buffer, 0, 0)?;
            c.commit(surface)?;
            Ok(xdg_surface)
        },
    },
    Scenario {
        name: "window geometry of zero size",
        expect: Expect::Error(XDG_SURFACE_INVALID_SIZE),
        run: |c| {
            let g = common(c)?;
            let (_, xdg_surface, _) = c.configured_toplevel(&g)?;
            c.send(xdg_surface, 3, &[Arg::Int(0), Arg::Int(0), Arg::Int(0), Arg::Int(10)])?;
            Ok(xdg_surface)
        },
    },
    Scenario {
        name: "xdg_surface destroyed before its toplevel",
        expect: Expect::Error(XDG_SURFACE_DEFUNCT_ROLE_OBJECT),
        run: |c| {
            let g = common(c)?;
            let (_, xdg_surface, _) = c.configured_toplevel(&g)?;
            c.destroy(xdg_surface)?;
            Ok(xdg_surface)
        },
    },
    Scenario {
        name: "xdg_wm_base destroyed while it has surfaces",
        expect: Expect::Error(WM_BASE_DEFUNCT_SURFACES),
        run: |c| {
            let g = common(c)?;
            c.configured_toplevel(&g)?;
            c.destroy(g.wm_base)?;
            Ok(g.wm_base)
        },
    },
    Scenario {
        name: "popup with a positioner that has no size",
        expect: Expect::Error(WM_BASE_INVALID_POSITIONER),
        run: |c| {
            let g = common(c)?;
            let (_, parent, _) = c.configured_toplevel(&g)?;
            let positioner = c.create_positioner(&g)?;
            let surface = c.create_surface(&g)?;
            let xdg_surface = c.get_xdg_surface(&g, surface)?;
            let popup = c.new_id();
            c.send(xdg_surface, 2, &[Arg::Uint(popup), Arg::Uint(parent), Arg::Uint(positioner)])?;
            Ok(g.wm_base)
        },
    },
    Scenario {
        name: "popup that is its own parent",
        expect: Expect::Error(WM_BASE_INVALID_POPUP_PARENT),
        run: |c| {
            let g = common(c)?;
            let positioner = c.create_positioner(&g)?;
            c.send(positioner, 1, &[Arg::Int(10), Arg::Int(10)])?;
            c.send(positioner, 2, &[Arg::Int(0), Arg::Int(0), Arg::Int(1), Arg::Int(1)])?;
            let surface = c.create_surface(&g)?;
            let xdg_surface = c.get_xdg_surface(&g, surface)?;
            let popup = c.new_id();
            c.send(xdg_surface, 2, &[Arg::Uint(popup), Arg::Uint(xdg_surface), Arg::Uint(positioner)])?;
            Ok(g.wm_base)
        },
    },
    Scenario {
        name: "positioner with a negative parent size",
        expect: Expect::Survive,
        run: |c| {
            let g = common(c)?;
            let positioner = c.create_positioner(&g)?;
            c.send(positioner, 8, &[Arg::Int(-20), Arg::Int(-1)])?;
            c.roundtrip()?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "popup anchored and offset at the ends of i32",
        expect: Expect::Survive,
        run: |c| {
            let g = common(c)?;
            let (_, parent, _) = c.configured_toplevel(&g)?;
            let positioner = c.create_positioner(&g)?;
            c.send(positioner, 1, &[Arg::Int(i32::MAX), Arg::Int(i32::MAX)])?;
            c.send(positioner, 2, &[Arg::Int(i32::MAX), Arg::Int(i32::MAX), Arg::Int(i32::MAX), Arg::Int(i32::MAX)])?;
            c.send(positioner, 6, &[Arg::Int(i32::MAX), Arg::Int(i32::MIN)])?;
            let surface = c.create_surface(&g)?;
            let xdg_surface = c.get_xdg_surface(&g, surface)?;
            let popup = c.new_id();
            c.send(xdg_surface, 2, &[Arg::Uint(popup), Arg::Uint(parent), Arg::Uint(positioner)])?;
            c.commit(surface)?;
            c.roundtrip()?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "window geometry and damage at the ends of i32",
        expect: Expect::Survive,
        run: |c| {
            let g = common(c)?;
            let (surface, xdg_surface, _) = c.configured_toplevel(&g)?;
            let (_fd, _pool, buffer) = c.shm_buffer(&g, 8, 8)?;
            c.send(xdg_surface, 3, &[Arg::Int(i32::MIN), Arg::Int(i32::MAX), Arg::Int(i32::MAX), Arg::Int(1)])?;
            c.attach(surface, buffer, 0, 0)?;
            c.damage_buffer(surface, i32::MAX, i32::MAX, i32::MAX, i32::MAX)?;
            let frame = c.frame(surface)?;
            c.commit(surface)?;
            c.wait_event(frame, 0)?;
            Ok(DISPLAY)
        },
    },
    Scenario {
        name: "positioner of size 0",
        expect: Expect::Error(POSITIONER_INVALID_INPUT),
        run: |c| {
            let g = common(c)?;
            let positioner = c.create_positioner(&g)?;
            c.send(positioner, 1, &[Arg::Int(0), Arg::Int(0)])?;
            Ok(positioner)
        },
    },
    Scenario {
        name: "toplevel that is its own parent",
        expect: Expect::Error(TOPLEVEL_INVALID_PARENT),
        run: |c| {
            let g = common(c)?;
            let (_, _, toplevel) = c.configured_toplevel(&g)?;
            c.send(toplevel, 1, &[Arg::Uint(toplevel)])?;
            Ok(toplevel)
        },
    },
    Scenario {
        name: "negative maximum size",
        expect: Expect::Error(TOPLEVEL_INVALID_SIZE),
        run: |c| {
            let g = common(c)?;
            let (_, _, toplevel) = c.configured_toplevel(&g)?;
            c.send(toplevel, 7, &[Arg::Int(-1), Arg::Int(-1)])?;
            Ok(toplevel)
        },
    },
];
