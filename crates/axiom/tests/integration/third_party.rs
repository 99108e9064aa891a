//! Real third-party clients from Debian against the real compositor. Each one
//! asserts something it could fail: pixels at the window's place, an exit
//! code, a file written, the globals announced.

use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use axiom_testclient::{Compositor, Image};

use crate::common::{centred, non_background, save_png, start, BACKGROUND};

const CLIENT_LIMIT: Duration = Duration::from_secs(60);

pub(crate) fn spawn(compositor: &Compositor, program: &str, args: &[&str]) -> Child {
    compositor
        .client_command(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("{program} must be installed (scripts/setup installs it): {err}"))
}

pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// glxgears on the compositor's Xwayland, once that is ready.
pub(crate) fn spawn_glxgears(compositor: &Compositor) -> Child {
    assert!(
        compositor.wait_for_log("Xwayland ready: DISPLAY=:", CLIENT_LIMIT),
        "Xwayland did not start:\n{}",
        compositor.log()
    );
    let log = compositor.log();
    let display = log.split("Xwayland ready: DISPLAY=").nth(1).and_then(|s| s.split_whitespace().next()).unwrap();
    compositor
        .client_command("glxgears")
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("glxgears must be installed (scripts/setup installs mesa-utils)")
}

/// Takes screenshots until at least `min` pixels of the rectangle are not background.
pub(crate) fn wait_on_screen(compositor: &Compositor, rect: (u32, u32, u32, u32), min: usize, name: &str) -> Image {
    let mut client = compositor.connect().unwrap();
    let deadline = Instant::now() + CLIENT_LIMIT;
    loop {
        let shot = client.screenshot().unwrap();
        let (x, y, w, h) = rect;
        let drawn = non_background(&shot, x, y, w, h);
        if drawn >= min {
            return shot;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: only {drawn} of {min} pixels drawn at {rect:?} (screenshot {})",
            save_png(&shot, name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything outside `rect` is background.
fn assert_only_inside(shot: &Image, rect: (u32, u32, u32, u32), name: &str) {
    let (x, y, w, h) = rect;
    let stray = (0..shot.height)
        .flat_map(|py| (0..shot.width).map(move |px| (px, py)))
        .filter(|&(px, py)| !(px >= x && px < x + w && py >= y && py < y + h))
        .filter(|&(px, py)| shot.pixel(px, py) != BACKGROUND)
        .count();
    assert_eq!(stray, 0, "{name}: {stray} pixels drawn outside the window (screenshot {})", save_png(shot, name));
}

pub(crate) fn window_rect(out: (u32, u32), size: (u32, u32)) -> (u32, u32, u32, u32) {
    let (x, y) = centred(out.0, out.1, size.0, size.1);
    (x, y, size.0.min(out.0), size.1.min(out.1))
}

/// Runs a weston demo client (250x250 window) and checks that at least `min` pixels
/// of its centred window are drawn, and nothing outside it.
fn weston_demo_is_drawn_centred(program: &str, min: usize) {
    let compositor = start(640, 480);
    let mut child = spawn(&compositor, program, &[]);
    let rect = window_rect((640, 480), (250, 250));
    let shot = wait_on_screen(&compositor, rect, min, program);
    assert_only_inside(&shot, rect, program);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn weston_simple_shm_is_drawn_centred() {
    // Most of its window is painted (a few border pixels may match the background).
    weston_demo_is_drawn_centred("weston-simple-shm", 250 * 250 / 2);
}

#[test]
fn weston_simple_egl_is_drawn() {
    weston_demo_is_drawn_centred("weston-simple-egl", 250 * 250 / 4);
}

#[test]
fn vkcube_wayland_draws_and_exits_cleanly() {
    let compositor = start(640, 520);
    let mut child = spawn(&compositor, "vkcube-wayland", &["--c", "120"]);
    let rect = window_rect((640, 520), (500, 500));
    wait_on_screen(&compositor, rect, 500 * 500 / 2, "vkcube-wayland");
    let status = wait_exit(&mut child, CLIENT_LIMIT).expect("vkcube-wayland --c 120 finishes");
    assert!(status.success(), "vkcube-wayland exited with {status}");
}

#[test]
fn foot_runs_a_command() {
    let compositor = start(640, 480);
    let marker = compositor.runtime_dir.join("foot-marker");
    let script = format!("printf AXIOM-FOOT-OK > '{}'", marker.display());
    let mut child = spawn(&compositor, "foot", &["sh", "-c", &script]);
    let status = wait_exit(&mut child, CLIENT_LIMIT).expect("foot exits when its command does");
    assert!(status.success(), "foot exited with {status}\n{}", compositor.log());
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default(), "AXIOM-FOOT-OK");
}

#[test]
fn wayland_info_lists_our_globals() {
    let compositor = start(320, 240);
    let output = compositor.client_command("wayland-info").output().expect("wayland-info must be installed");
    assert!(output.status.success(), "wayland-info failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let globals: std::collections::HashMap<String, u32> = text
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("interface: '")?;
            let (name, rest) = rest.split_once('\'')?;
            let version = rest.split("version:").nth(1)?.split(',').next()?.trim().parse().ok()?;
            Some((name.to_string(), version))
        })
        .collect();
    let expected = [
        ("wl_compositor", 6),
        ("wl_subcompositor", 1),
        ("wl_shm", 2),
        ("xdg_wm_base", 6),
        ("zxdg_decoration_manager_v1", 1),
        ("wl_seat", 9),
        ("wl_output", 4),
        ("zxdg_output_manager_v1", 3),
        ("wp_presentation", 2),
        ("wp_viewporter", 1),
        ("wp_single_pixel_buffer_manager_v1", 1),
        ("wp_fractional_scale_manager_v1", 1),
        ("wl_data_device_manager", 3),
        ("zwlr_screencopy_manager_v1", 3),
        ("wp_fifo_manager_v1", 1),
        ("wp_commit_timing_manager_v1", 1),
        ("wp_tearing_control_manager_v1", 1),
    ];
    for (name, version) in expected {
        assert_eq!(globals.get(name), Some(&version), "{name} v{version} in:\n{text}");
    }
    // Explicit sync needs a DRM device to import timelines into; headless has none
    // (on KMS: `drm::an_explicitly_synced_buffer_...`).
    assert!(!globals.contains_key("wp_linux_drm_syncobj_manager_v1"), "{text}");
    assert!(compositor.log().contains("wp_linux_drm_syncobj_manager_v1): not offered"), "{}", compositor.log());
    // The output is described with our mode.
    assert!(text.contains("width: 320 px, height: 240 px") || text.contains("320x240"), "{text}");
}

#[test]
fn grim_screenshot_shows_weston_simple_shm() {
    let compositor = start(400, 300);
    let mut child = spawn(&compositor, "weston-simple-shm", &[]);
    let rect = window_rect((400, 300), (250, 250));
    wait_on_screen(&compositor, rect, 250 * 250 / 2, "grim-setup");

    let path = compositor.runtime_dir.join("grim.png");
    let status = compositor.client_command("grim").arg(&path).status().expect("grim must be installed");
    assert!(status.success(), "grim exited with {status}");
    let _ = child.kill();
    let _ = child.wait();

    let image = crate::common::load_png(&path);
    assert_eq!((image.width, image.height), (400, 300), "grim's PNG has the output's size");
    let (x, y, w, h) = rect;
    assert!(non_background(&image, x, y, w, h) >= 250 * 250 / 2, "window missing in grim's PNG");
    assert_only_inside(&image, rect, "grim");
}

#[test]
fn glxgears_through_xwayland_is_drawn_centred_and_listed_and_captured_alone() {
    let compositor =
        Compositor::start_with_xwayland(&crate::common::axiom_binary(), 640, 480, &[]).expect("start axiom");
    let mut child = spawn_glxgears(&compositor);
    // glxgears asks for a 300x300 window; it shows centred like any toplevel.
    let rect = window_rect((640, 480), (300, 300));
    let mut shot = wait_on_screen(&compositor, rect, 300 * 300 / 4, "glxgears");
    assert_only_inside(&shot, rect, "glxgears");
    // Its three gears: red, green and blue pixels. The window can show before its first
    // frame does (black), on a loaded machine for a while.
    let (x, y, w, h) = rect;
    // In the window's area of `shot`, at (x, y).
    let gear_pixels = |shot: &Image, (x, y): (u32, u32)| {
        let gears = shot.crop(x, y, w, h);
        let count = |is: fn(&axiom_testclient::Rgba) -> bool| gears.pixels.iter().filter(|p| is(p)).count();
        let red = count(|p| p.0 > 150 && p.1 < 60 && p.2 < 60);
        let green = count(|p| p.1 > 150 && p.0 < 60 && p.2 < 60);
        let blue = count(|p| p.2 > 150 && p.0 < 60 && p.1 < 60);
        [("red", red), ("green", green), ("blue", blue)]
    };
    let mut client = compositor.connect().unwrap();
    let deadline = Instant::now() + CLIENT_LIMIT;
    while gear_pixels(&shot, (x, y)).iter().any(|&(_, n)| n <= 500) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        shot = client.screenshot().unwrap();
    }
    for (name, n) in gear_pixels(&shot, (x, y)) {
        assert!(n > 500, "only {n} {name} pixels (screenshot {})", save_png(&shot, "glxgears"));
    }
    // The X11 window is in ext_foreign_toplevel_list_v1 by its title, and a toplevel
    // capture session shows it alone, at its size, gears and all.
    let toplevel = client.foreign_toplevel("glxgears").unwrap();
    let (session, constraints) = client.ext_toplevel_capture_session(&toplevel.handle).unwrap();
    assert_eq!(constraints.buffer_size, Some((w, h)), "{constraints:?}");
    let layout = axiom_testclient::ShmLayout { width: w, height: h, stride: w as usize * 4, offset: 0 };
    let format = axiom_testclient::image::Format32::Xrgb8888.shm_code();
    let target = client.create_shm_buffer(&vec![0; (w * h * 4) as usize], layout, format, true).unwrap();
    let frame = client.ext_capture_frame(&session, &target.buffer).unwrap();
    assert!(frame.ready, "{frame:?}");
    let alone = Image::from_xrgb8888(w, h, w as usize * 4, target.memory.bytes());
    for (name, n) in gear_pixels(&alone, (0, 0)) {
        assert!(n > 500, "only {n} {name} pixels in its capture ({})", save_png(&alone, "glxgears-alone"));
    }
    let _ = child.kill();
    let _ = child.wait();
}
