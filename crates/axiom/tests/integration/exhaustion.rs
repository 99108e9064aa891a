//! What one client can make the compositor hold: fds in params objects it never
//! uses, imports of buffers it destroys before they are read, buffers larger
//! than the device can draw, and the compositor's whole fd table. Each is
//! charged to that client or refused to it alone; the others go on, and what
//! was held is given back.

use std::os::fd::AsFd;
use std::time::Duration;

use axiom_testclient::hostile::requests::{memfd, DRM_XRGB8888, XRGB8888};
use axiom_testclient::hostile::stress::{self, BufferKind};
use axiom_testclient::hostile::wire::Arg;
use axiom_testclient::hostile::WireClient;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::{Compositor, Image};

use crate::common::{
    axiom_binary, centred, expect_no_memory, footprint, import_stats, open_fds, settled_footprint, start_with,
    Bystander,
};

const W: u32 = 64;
const H: u32 = 48;
/// Columns on the left no other test window covers.
const EDGE: u32 = 8;
const COLOUR: Rgba = Rgba::opaque(40, 160, 90);

#[test]
fn fds_held_by_unused_params_count_against_the_client() {
    let compositor = start_with(W, H, &["--max-client-fds", "64"]);
    let mut bystander = Bystander::new(&compositor, W, H, COLOUR);
    // Warm-up: what a first screenshot opens stays open.
    bystander.check("start-up", EDGE);
    let (baseline, _) = settled_footprint(compositor.pid());
    let fd = memfd(4096).unwrap();

    // 20 params of 4 planes each would hold 80 fds: the client is cut off at 64.
    expect_no_memory(&compositor, "80 fds in params never used", |c| {
        let dmabuf = c.bind("zwp_linux_dmabuf_v1", 3)?;
        for _ in 0..20 {
            c.pending_params(dmabuf, &fd, 4)?;
        }
        Ok(())
    });

    // Within the cap, and the fds go back when the params go: 3 x 15 x 4 = 180 fds
    // over the client's life, never more than 60 at once.
    let mut within = WireClient::connect(&compositor.socket_path()).unwrap();
    let dmabuf = within.bind("zwp_linux_dmabuf_v1", 3).unwrap();
    for _ in 0..3 {
        let params: Vec<u32> = (0..15).map(|_| within.pending_params(dmabuf, &fd, 4).unwrap()).collect();
        within.roundtrip().expect("60 fds are within the cap");
        for p in params {
            within.destroy(p).unwrap();
        }
        within.roundtrip().unwrap();
    }
    drop(within);
    bystander.check("a client over its fd limit", EDGE);
    let mut after = settled_footprint(compositor.pid());
    for _ in 0..20 {
        if after.0 <= baseline {
            break;
        }
        after = settled_footprint(compositor.pid());
    }
    assert_eq!(after.0, baseline, "every fd given back: {:?}", open_fds(compositor.pid()));
    let log = compositor.log();
    assert!(log.contains("more than 64 file descriptors"), "the log says which limit:\n{log}");
}

#[test]
fn running_out_of_fds_refuses_what_it_must_and_serves_the_rest() {
    // An fd table of 256 and no per-client cap in the way: one client fills the table.
    let mut compositor =
        Compositor::start_with_fd_limit(&axiom_binary(), W, H, &["--max-client-fds", "100000"], 256).unwrap();
    let mut bystander = Bystander::new(&compositor, W, H, COLOUR);
    let fd = memfd(4096).unwrap();
    let mut hog = WireClient::connect(&compositor.socket_path()).unwrap();
    let dmabuf = hog.bind("zwp_linux_dmabuf_v1", 3).unwrap();
    // 100 params of 4 planes: 400 fds, more than the table holds. The compositor may cut
    // the client off at any point; what matters is that it survives and serves others.
    let _ = (0..100).try_for_each(|_| hog.pending_params(dmabuf, &fd, 4).map(drop));
    let _ = hog.roundtrip();
    assert!(compositor.is_running(), "the compositor exited with its fd table full");
    let (held, _) = footprint(compositor.pid());
    eprintln!("fds held with the table full: {held}");

    // A client connecting now cannot be given an fd: it is refused, or served if the
    // compositor freed some; either way nothing else changes.
    if let Ok(mut late) = WireClient::connect(&compositor.socket_path()) {
        let _ = late.roundtrip();
    }
    bystander.check("the fd table filling up", EDGE);

    // Once the hog is gone, everything works again, new clients included.
    drop(hog);
    std::thread::sleep(Duration::from_millis(300));
    assert!(compositor.is_running());
    let mut late = compositor.connect().expect("a client connects once fds are free again");
    late.screenshot().expect("and is served");
    bystander.check("the hog leaving", EDGE);
}

#[test]
fn buffers_destroyed_before_the_repaint_that_reads_them_leave_nothing_behind() {
    let compositor = start_with(W, H, &[]);
    let mut bystander = Bystander::new(&compositor, W, H, COLOUR);
    bystander.check("start-up", EDGE);
    let pid = compositor.pid();
    let stat = |name: &str| import_stats(&compositor).get(name).copied().unwrap_or(u64::MAX);
    let before = (stat("live_imports"), stat("live_mappings"), stat("live_textures"));
    let (fds_before, _) = settled_footprint(pid);

    let mut c = WireClient::connect(&compositor.socket_path()).unwrap();
    let g = c.bind_common().unwrap();
    let dmabuf = c.bind("zwp_linux_dmabuf_v1", 3).unwrap();
    let (surface, _, _) = c.configured_toplevel(&g).unwrap();
    let (size, stride) = (32, 32 * 4);
    // Sealed (read in place, or mapped and kept by the CPU path) and unsealed (pread).
    let sealed = memfd(32 * 32 * 4).unwrap();
    rustix::fs::fcntl_add_seals(&sealed, rustix::fs::SealFlags::SHRINK).unwrap();
    let unsealed = memfd(32 * 32 * 4).unwrap();
    for cycle in 0..300 {
        let fd = if cycle % 2 == 0 { sealed.as_fd() } else { unsealed.as_fd() };
        // Attached, committed and destroyed in one flush: the repaint reads a dead buffer.
        let buffer = c.dmabuf_buffer(dmabuf, fd, size, size, stride, DRM_XRGB8888).unwrap();
        c.attach(surface, buffer, 0, 0).unwrap();
        c.damage_buffer(surface, 0, 0, size, size).unwrap();
        let frame = c.frame(surface).unwrap();
        c.commit(surface).unwrap();
        c.destroy(buffer).unwrap();
        c.wait_event(frame, 0).unwrap();
        c.events.clear();
    }
    let stats = import_stats(&compositor);
    assert!(stats.get("created").is_some_and(|&n| n >= 300), "{stats:?}");
    drop(c);

    let mut after = (0, 0, 0);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        after = (stat("live_imports"), stat("live_mappings"), stat("live_textures"));
        if after == before {
            break;
        }
    }
    assert_eq!(after, before, "(live_imports, live_mappings, live_textures) back at the baseline");
    let (fds_after, _) = settled_footprint(pid);
    assert_eq!(fds_after, fds_before, "open fds back at the baseline: {:?}", open_fds(pid));
}

#[test]
fn clients_leaving_mid_frame_leave_nothing_behind() {
    // A fast refresh, so that the repaint often runs while a client is leaving.
    let compositor = start_with(W, H, &["--refresh", "500"]);
    let mut bystander = Bystander::new(&compositor, W, H, COLOUR);
    bystander.check("start-up", EDGE);
    let socket = compositor.socket_path();
    let pid = compositor.pid();
    let live = || {
        let stats = import_stats(&compositor);
        ["live_imports", "live_host_imports", "live_mappings", "live_textures"]
            .map(|k| stats.get(k).copied().unwrap_or(u64::MAX))
    };
    // Leaving 0 to 4 ms after the commit: before it is read, before the repaint
    // imports the buffer, while the frame is drawn, or once it is shown.
    let leave = |rounds: u64| {
        for round in 0..rounds {
            for kind in BufferKind::ALL {
                let linger = Duration::from_micros(round * 500 % 4000);
                stress::leave_mid_frame(&socket, kind, linger).unwrap_or_else(|e| panic!("{kind:?}: {e:#}"));
            }
        }
    };
    leave(2);
    // (The last of those clients is cleaned up when the compositor next runs.)
    let (fds_before, _) = settled_footprint(pid);
    let before = live();
    assert_eq!(before[3], 1, "only the bystander's texture lives");
    leave(40);
    let stats = import_stats(&compositor);
    let read = |k: &str| stats.get(k).copied().unwrap_or(0);
    assert!(read("cpu_imports") + read("vulkan_buffer") + read("vulkan_image") > 0, "dma-bufs were read: {stats:?}");

    let mut after = [0; 4];
    for _ in 0..20 {
        after = live();
        if after == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(after, before, "[live_imports, live_host_imports, live_mappings, live_textures] back at the baseline");
    let (fds_after, _) = settled_footprint(pid);
    assert_eq!(fds_after, fds_before, "open fds back at the baseline: {:?}", open_fds(pid));
    bystander.check("160 clients leaving mid-frame", EDGE);
}

#[test]
fn a_buffer_too_large_to_draw_leaves_out_only_its_own_surface() {
    let compositor = start_with(W, H, &[]);
    // wl_shm allows any width; no device draws a texture 65537 texels wide.
    let mut hog = WireClient::connect(&compositor.socket_path()).unwrap();
    let g = hog.bind_common().unwrap();
    let (surface, _, _) = hog.configured_toplevel(&g).unwrap();
    let width = 65_537;
    let fd = memfd(width as u64 * 4).unwrap();
    let pool = hog.create_pool(&g, &fd, width * 4).unwrap();
    let buffer = hog.create_buffer(pool, 0, width, 1, width * 4, XRGB8888).unwrap();
    hog.attach(surface, buffer, 0, 0).unwrap();
    hog.damage_buffer(surface, 0, 0, width, 1).unwrap();
    hog.commit(surface).unwrap();
    hog.roundtrip().expect("a wide shm buffer is no protocol error");

    // Another client's window maps on top of it and shows.
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("after-a-huge-buffer").unwrap();
    let green = Rgba::opaque(0, 200, 0);
    let image = Image::solid(16, 16, green);
    let shown = client.create_buffer(&image, Format32::Xrgb8888, 64, 0xff).unwrap();
    client.present(&window.surface, &shown).unwrap();
    client.commit_and_wait_frame(&window.surface).unwrap();
    let (x, y) = centred(W, H, 16, 16);
    let shot = client.screenshot_region(x as i32, y as i32, 16, 16).unwrap();
    crate::common::assert_image(&shot, &image, 0, "window-after-a-huge-buffer");
    let stats = import_stats(&compositor);
    assert!(stats.get("too_large").is_some_and(|&n| n > 0), "{stats:?}");
    hog.roundtrip().expect("its client stays connected");
    // (Dropping the compositor fails the test if any frame had a wgpu error.)
}

/// The live surface textures, once the compositor has run a dispatch or two.
fn live_textures(compositor: &Compositor, want: u64) -> u64 {
    let mut got = u64::MAX;
    for _ in 0..30 {
        got = import_stats(compositor).get("live_textures").copied().unwrap_or(u64::MAX);
        if got == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    got
}

#[test]
fn a_surface_and_what_refers_to_it_go_with_it_in_every_order() {
    let compositor = start_with(W, H, &[]);
    let mut bystander = Bystander::new(&compositor, W, H, COLOUR);
    bystander.check("start-up", EDGE);
    let baseline = live_textures(&compositor, 1);
    assert_eq!(baseline, 1, "the bystander's texture");

    // A toplevel showing a buffer, with a colour-representation object: (client, surface,
    // xdg_surface, toplevel, representation).
    let shown = |name: &str| {
        let mut c = WireClient::connect(&compositor.socket_path()).unwrap();
        let g = c.bind_common().unwrap();
        let manager = c.bind("wp_color_representation_manager_v1", 1).unwrap();
        let (surface, xdg_surface, toplevel) = c.configured_toplevel(&g).unwrap();
        let representation = c.new_id();
        c.send(manager, 1, &[Arg::Uint(representation), Arg::Uint(surface)]).unwrap();
        let (_fd, _pool, buffer) = c.shm_buffer(&g, 8, 8).unwrap();
        c.attach(surface, buffer, 0, 0).unwrap();
        let frame = c.frame(surface).unwrap();
        c.commit(surface).unwrap();
        c.wait_event(frame, 0).unwrap();
        assert_eq!(live_textures(&compositor, baseline + 1), baseline + 1, "{name}: its texture");
        (c, surface, xdg_surface, toplevel, representation)
    };

    // The client leaves with everything alive.
    let (c, ..) = shown("disconnect");
    drop(c);
    assert_eq!(live_textures(&compositor, baseline), baseline, "the texture goes when its client leaves");

    // The surface is destroyed first, the representation object later (it is then inert).
    let (mut c, surface, xdg_surface, toplevel, representation) = shown("surface first");
    for object in [toplevel, xdg_surface, surface] {
        c.destroy(object).unwrap();
    }
    c.roundtrip().unwrap();
    assert_eq!(live_textures(&compositor, baseline), baseline, "the texture goes with its surface");
    c.destroy(representation).unwrap();
    c.roundtrip().expect("destroying an inert representation object is no error");

    // The representation object first, then the surface; the client stays.
    let (mut c, surface, xdg_surface, toplevel, representation) = shown("representation first");
    c.destroy(representation).unwrap();
    for object in [toplevel, xdg_surface, surface] {
        c.destroy(object).unwrap();
    }
    c.roundtrip().unwrap();
    assert_eq!(live_textures(&compositor, baseline), baseline, "the texture goes with its surface");
    bystander.check("surfaces coming and going", EDGE);
}
