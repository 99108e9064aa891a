//! The DRM/KMS backend on a real KMS device. These tests need one (the VM
//! rig's vkms), so a plain `cargo test` skips them as ignored; `tests/vm/drm-tests`
//! runs them inside the VM, where the compositor is DRM master and
//! `axiom-kms-grab` reads back the framebuffer the CRTC scans out.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axiom_testclient::client::Presented;
use axiom_testclient::dmabuf::{udmabuf, Created, Plane};
use axiom_testclient::hostile::wire::Arg;
use axiom_testclient::image::{test_pattern, Format32};
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Buffer, Compositor, Image, OutputInfo, Rgba, TestClient};
use smithay::backend::allocator::Fourcc;
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::protocol::wl_output::WlOutput;
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1;

use crate::common::{
    assert_image, axiom_binary, centred, import_stats, load_png, non_background, open_fds, solid_buffers, BACKGROUND,
};
use crate::third_party::{spawn, wait_exit};

const LIMIT: Duration = Duration::from_secs(60);
const CARD: &str = "/dev/dri/card0";

fn start_drm() -> Compositor {
    let compositor = Compositor::start_drm(&axiom_binary(), &[]).expect("axiom --backend drm starts");
    assert!(compositor.log().contains(&format!("device={CARD}")), "{}", compositor.log());
    compositor
}

/// The compositor on the DRM backend, composing every buffer (no plane shows one as it is).
fn start_drm_composing() -> Compositor {
    Compositor::start_drm(&axiom_binary(), &["--no-direct-scanout"]).expect("axiom --backend drm starts")
}

/// Where the renderer imports dma-bufs by modifier (step 1 of the ladder live), it writes
/// composed frames into every output's scanout buffers itself: nothing has been read
/// back to the CPU (no screencopy client ran before), and the event loop never waited for
/// the GPU. Otherwise (the CPU step forced)
/// frames are read back and copied, and the log says why for each output.
fn assert_composed_frames_reach_the_display_on_the_gpu(compositor: &Compositor) {
    let stats = import_stats(compositor);
    let log = compositor.log();
    let outputs = log.matches("KMS output: the connector's preferred mode").count();
    let readback = stats.get("readback_bytes").copied();
    if crate::common::dmabuf_vulkan_counter(compositor) == Some("vulkan_image") {
        let written = log.matches("composition draws straight into its scanout buffers on the GPU").count();
        assert_eq!(written, outputs, "every output renders into its scanout buffers:\n{log}");
        assert_eq!(readback, Some(0), "no composed byte read back: {stats:?}");
        // Nor drawn anywhere else first: the canvas is painted for captures alone.
        assert_eq!(stats.get("canvas_paints"), Some(&0), "{stats:?}");
        // Flips follow the GPU's completion, heard of in the event loop, which never waited.
        assert_eq!(stats.get("loop_gpu_waits"), Some(&0), "{stats:?}");
    } else {
        let copied =
            log.matches("composed frames are read back and copied into its scanout buffers by the CPU").count();
        assert_eq!(copied, outputs, "each output says why frames are copied:\n{log}");
        assert!(readback.is_some_and(|n| n >= 1024 * 768 * 4), "{stats:?}");
    }
}

/// The output's size: the connector's preferred mode.
fn output_size(client: &mut TestClient) -> (u32, u32) {
    client.roundtrip().unwrap();
    let (w, h) = client.output_size().expect("a wl_output mode");
    (w as u32, h as u32)
}

/// What the CRTC scans out now.
fn crtc_shot(compositor: &Compositor) -> Image {
    crtc_shot_and_fb(compositor).0
}

/// What the CRTC scans out now, and the id of the framebuffer on its primary plane.
fn crtc_shot_and_fb(compositor: &Compositor) -> (Image, u32) {
    let (shot, report) = kms_grab(compositor, &[]);
    // "crtc=62 fb=73 1024x768 format=XR24 ..." comes first.
    let fb = report.split_whitespace().find_map(|w| w.strip_prefix("fb=")?.parse().ok()).expect("fb= in the output");
    (shot, fb)
}

/// Runs axiom-kms-grab with `args` (on the first CRTC unless they say `--crtc`): the picture, and what it printed (the CRTC's
/// line, then one "overlay plane=.. fb=.. x=.. y=.. WxH" line per overlay plane shown).
fn kms_grab(compositor: &Compositor, args: &[&str]) -> (Image, String) {
    let tool = axiom_binary().with_file_name("axiom-kms-grab");
    let path = compositor.runtime_dir.join("crtc.png");
    let mut command = Command::new(&tool);
    command.args(["--device", CARD, "--wait-ms", "10000"]).args(args).arg(&path);
    let output = output_within(command, LIMIT)
        .unwrap_or_else(|e| panic!("{}: {e:#} (cargo build -p axiom-testclient builds it)", tool.display()));
    assert!(output.status.success(), "axiom-kms-grab: {}", String::from_utf8_lossy(&output.stderr));
    (load_png(&path), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `command` to its end and collects its output, killing it after `limit` (it
/// reads buffers the compositor may still be writing: a fence that never signals
/// would block it).
fn output_within(mut command: Command, limit: Duration) -> anyhow::Result<std::process::Output> {
    use std::process::Stdio;
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let exited = wait_exit(&mut child, limit);
    // Reaped either way: this collects what it wrote.
    let output = child.wait_with_output()?;
    anyhow::ensure!(exited.is_some(), "still running after {limit:?}: {}", String::from_utf8_lossy(&output.stderr));
    Ok(output)
}

/// Grabs the first CRTC until `check` passes: a frame reaches it one flip after composition.
fn wait_on_crtc(compositor: &Compositor, what: &str, check: impl FnMut(&Image) -> bool) -> Image {
    wait_on_crtc_at(compositor, 0, what, check)
}

/// Grabs CRTC number `index` until `check` passes.
fn wait_on_crtc_at(compositor: &Compositor, index: usize, what: &str, mut check: impl FnMut(&Image) -> bool) -> Image {
    let deadline = Instant::now() + LIMIT;
    loop {
        let shot = kms_grab(compositor, &["--crtc", &index.to_string()]).0;
        if check(&shot) {
            return shot;
        }
        if Instant::now() > deadline {
            panic!("{what}: not scanned out (saved {})\n{}", crate::common::save_png(&shot, what), compositor.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn drm_output_scans_out_exactly_the_composed_frame() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (_window, _buffer, pattern) = crate::common::show_pattern(&mut client, 200, 150);
    let composed = client.screenshot().unwrap();

    let (x, y) = centred(width, height, 200, 150);
    let shown = wait_on_crtc(&compositor, "drm-pattern", |shot| shot.crop(x, y, 200, 150) == pattern);
    assert_eq!((shown.width, shown.height), (width, height), "the CRTC scans the output's mode");
    assert_image(&shown, &composed, 0, "drm-crtc-vs-screencopy");
    assert!(compositor.log().contains("KMS: Virtual-1: mode set, first frame on screen"), "{}", compositor.log());
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn weston_simple_shm_is_scanned_out() {
    let compositor = start_drm();
    let (width, height) = output_size(&mut compositor.connect().unwrap());
    let mut child = spawn(&compositor, "weston-simple-shm", &[]);
    let (x, y) = centred(width, height, 250, 250);
    wait_on_crtc(&compositor, "drm-weston-simple-shm", |shot| {
        shot.pixel(0, 0) == BACKGROUND && non_background(shot, x, y, 250, 250) >= 250 * 250 / 2
    });
    assert_composed_frames_reach_the_display_on_the_gpu(&compositor);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_v4l2_camera_streams_yuyv_dmabufs_to_the_crtc_through_weston_simple_dmabuf_v4l() {
    // The VM's vivid driver is a webcam whose capture buffers weston's client exports
    // (VIDIOC_EXPBUF) and sends as YUYV dma-bufs: a real third-party dma-buf client.
    let compositor = start_drm_composing();
    let (width, height) = output_size(&mut compositor.connect().unwrap());
    let mut child = spawn(&compositor, "weston-simple-dmabuf-v4l", &["-v", "/dev/video0"]);
    let (x, y) = centred(width, height, 640, 360);
    // vivid's 75% colour bars, converted from YUYV by our shader (BT.601, limited range).
    let bars = [
        (191, 191, 191),
        (191, 191, 0),
        (0, 191, 191),
        (0, 191, 0),
        (191, 0, 191),
        (191, 0, 0),
        (0, 0, 191),
        (0, 0, 0),
    ]
    .map(|(r, g, b)| Rgba::opaque(r, g, b));
    let bars_shown = |shot: &Image| {
        bars.iter().enumerate().all(|(i, &bar)| shot.pixel(x + 40 + 80 * i as u32, y + 300).distance(bar) <= 8)
    };
    let first = wait_on_crtc(&compositor, "drm-v4l2-bars", |shot| shot.pixel(0, 0) == BACKGROUND && bars_shown(shot));
    // The camera keeps streaming: its overlay (a frame counter) changes frame after frame.
    let text = |shot: &Image| shot.crop(x, y, 640, 160);
    wait_on_crtc(&compositor, "drm-v4l2-streams", |shot| bars_shown(shot) && text(shot) != text(&first));
    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied().unwrap_or(0);
    assert!(get("created") >= 2 && get("failed") == 0, "every capture buffer is a wl_buffer: {stats:?}");
    // With the Vulkan ladder, lavapipe refuses these buffers (ERROR_INVALID_EXTERNAL_HANDLE):
    // each is tried once, then the CPU reads it at every commit.
    assert!(get("cpu_imports") >= 2, "{stats:?}");
    if crate::common::dmabuf_vulkan_counter(&compositor).is_some() {
        assert!(get("vulkan_failed") <= get("created"), "a refused buffer is not tried again: {stats:?}");
    }
    eprintln!("v4l2 capture import counters: {stats:?}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn feedback_main_device_is_the_display_device() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (_feedback, log) = client.default_feedback(&dmabuf).unwrap();
    // vkms renders nothing, so it has no render node: its KMS node is the device.
    let card = rustix::fs::stat(Path::new(CARD)).unwrap().st_rdev;
    assert_eq!(log.main_device, Some(card), "{log:?}");
    assert!(log.tranches.iter().all(|(device, ..)| *device == card), "{log:?}");
    // Nor is vkms a GPU on PCI: no adapter can be on it, and the log says which was taken.
    assert!(compositor.log().contains(&format!("{CARD} is not a PCI GPU")), "{}", compositor.log());
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_udmabuf_reaches_the_crtc_and_rewrites_show_through() {
    // The composition of a real dma-buf is under test: keep the window off the planes.
    let compositor = start_drm_composing();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (red, blue) = (Rgba::opaque(255, 0, 0), Rgba::opaque(0, 0, 255));

    // A real dma-buf: the pages of a sealed memfd, through /dev/udmabuf.
    let mut memory = SharedMemory::new(4096).unwrap();
    let encode = |colour| Format32::Xrgb8888.encode_image(&Image::solid(32, 16, colour), 128, 0xff);
    memory.bytes_mut()[..2048].copy_from_slice(&encode(red));
    axiom_testclient::dmabuf::seal_shrink(memory.fd()).unwrap();
    let dmabuf_fd = udmabuf(memory.fd(), 4096).expect("udmabuf of a sealed memfd");

    let (buffer, window) = small_dmabuf_window(&compositor, &mut client, dmabuf_fd.as_fd(), 128);
    let (x, y) = centred(width, height, 32, 16);
    wait_on_crtc(&compositor, "drm-udmabuf-red", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));

    // The same pages, rewritten through the memfd: the dma-buf aliases them.
    memory.bytes_mut()[..2048].copy_from_slice(&encode(blue));
    recommit(&mut client, &window, &buffer);
    wait_on_crtc(&compositor, "drm-udmabuf-blue", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, blue));

    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!((get("created"), get("failed")), (Some(1), Some(0)), "{stats:?}");
    // lavapipe imports the udmabuf (once) where the Vulkan ladder is built in: as an image
    // by modifier, since udmabuf makes it offer VK_EXT_image_drm_format_modifier. Otherwise
    // the CPU reads it at each of the two commits.
    match crate::common::dmabuf_vulkan_counter(&compositor) {
        Some(step) => {
            assert_eq!(step, "vulkan_image", "step 1 is live in the VM");
            assert_eq!((get(step), get("cpu_imports")), (Some(1), Some(0)), "{stats:?}");
        }
        None => assert_eq!(get("cpu_imports"), Some(2), "{stats:?}"),
    }
    eprintln!("udmabuf import counters: {stats:?}");
}

/// A `width` x `height` XRGB8888 wl_buffer of the dma-buf `fd` (rows `stride` bytes apart).
fn xrgb_buffer(
    compositor: &Compositor,
    client: &mut TestClient,
    dmabuf: &ZwpLinuxDmabufV1,
    fd: std::os::fd::BorrowedFd<'_>,
    stride: u32,
    (width, height): (u32, u32),
) -> WlBuffer {
    let params = client.dmabuf_params(dmabuf, &[Plane { fd, offset: 0, stride, modifier: 0 }]);
    let created = client.dmabuf_create(&params, width as i32, height as i32, Fourcc::Xrgb8888 as u32).unwrap();
    let Created::Buffer(buffer) = created else { panic!("the dma-buf was refused\n{}", compositor.log()) };
    buffer
}

/// A window showing the 32x16 XRGB8888 dma-buf `fd` (rows `stride` bytes apart), drawn.
fn small_dmabuf_window(
    compositor: &Compositor,
    client: &mut TestClient,
    fd: std::os::fd::BorrowedFd<'_>,
    stride: u32,
) -> (WlBuffer, axiom_testclient::Window) {
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let buffer = xrgb_buffer(compositor, client, &dmabuf, fd, stride, (32, 16));
    let window = client.create_window("dmabuf").unwrap();
    recommit(client, &window, &buffer);
    (buffer, window)
}

/// Attaches `buffer` with full damage and waits for the frame.
fn recommit(client: &mut TestClient, window: &axiom_testclient::Window, buffer: &WlBuffer) {
    window.surface.attach(Some(buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    client.commit_and_wait_frame(&window.surface).unwrap();
}

/// Memory holding `image` as XRGB8888 and a udmabuf of it (`image` must fill whole pages).
fn udmabuf_of(image: &Image) -> (SharedMemory, std::os::fd::OwnedFd) {
    let bytes = Format32::Xrgb8888.encode_image(image, image.width as usize * 4, 0xff);
    let mut memory = SharedMemory::new(bytes.len()).unwrap();
    memory.bytes_mut().copy_from_slice(&bytes);
    axiom_testclient::dmabuf::seal_shrink(memory.fd()).unwrap();
    let fd = udmabuf(memory.fd(), bytes.len() as u64).expect("udmabuf of a sealed memfd");
    (memory, fd)
}

/// A udmabuf of each image, and an XRGB8888 wl_buffer over each: the memory (kept while
/// the buffers are in use) and the buffers, in the images' order.
fn udmabuf_buffers(
    compositor: &Compositor,
    client: &mut TestClient,
    dmabuf: &ZwpLinuxDmabufV1,
    images: &[Image],
) -> (Vec<(SharedMemory, std::os::fd::OwnedFd)>, Vec<WlBuffer>) {
    let memory: Vec<_> = images.iter().map(udmabuf_of).collect();
    let buffers = memory
        .iter()
        .zip(images)
        .map(|((_, fd), image)| {
            xrgb_buffer(compositor, client, dmabuf, fd.as_fd(), image.width * 4, (image.width, image.height))
        })
        .collect();
    (memory, buffers)
}

/// A fullscreen window showing a test pattern from a udmabuf; returns the dma-buf
/// feedback batches the surface got (before, after) and the pattern.
fn fullscreen_udmabuf_window(compositor: &Compositor, client: &mut TestClient) -> (Vec<u32>, Vec<(u64, u32)>, Image) {
    let (width, height) = output_size(client);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let window = client.create_window("fullscreen").unwrap();
    let (feedback, before) = client.surface_feedback(&dmabuf, &window.surface).unwrap();
    assert_eq!(client.set_fullscreen(&window).unwrap(), (width as i32, height as i32), "fullscreen fills the mode");

    let pattern = test_pattern(width, height);
    let (memory, fd) = udmabuf_of(&pattern);
    let buffer = xrgb_buffer(compositor, client, &dmabuf, fd.as_fd(), width * 4, (width, height));
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, width as i32, height as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    // One more frame: the surface's feedback follows its fullscreen state at the repaint.
    client.commit_and_wait_frame(&window.surface).unwrap();
    client.roundtrip().unwrap();
    let after = client.feedback_log(&feedback);
    let first_batch = before.tranches.len();
    let flags_before = before.tranches.iter().map(|(_, flags, _)| *flags).collect();
    let after = after.tranches[first_batch.min(after.tranches.len())..].iter().map(|(d, f, _)| (*d, *f)).collect();
    // Kept alive by the test process until the end: the compositor may scan them out.
    std::mem::forget((memory, fd, buffer, window, feedback));
    (flags_before, after, pattern)
}

const SCANOUT: u32 = 1;

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_fullscreen_dmabuf_goes_on_the_primary_plane_as_it_is() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (before, after, pattern) = fullscreen_udmabuf_window(&compositor, &mut client);
    assert!(before.iter().all(|flags| flags & SCANOUT == 0), "a window that is not fullscreen: {before:?}");
    let card = rustix::fs::stat(Path::new(CARD)).unwrap().st_rdev;
    assert_eq!(
        after.first(),
        Some(&(card, SCANOUT)),
        "fullscreen: a scanout tranche first, for the display: {after:?}"
    );

    let shot = wait_on_crtc(&compositor, "drm-direct-scanout", |shot| *shot == pattern);
    let (_, fb) = crtc_shot_and_fb(&compositor);
    let log = compositor.log();
    let on = log.lines().rfind(|l| l.contains("direct scanout: on:")).unwrap_or_else(|| panic!("{log}"));
    assert!(on.contains(&format!("(fb {fb})")), "the CRTC shows the client's framebuffer {fb}: {on}");
    assert_image(&shot, &pattern, 0, "drm-direct-scanout");
    // Nothing composed the buffer: no import of any kind.
    assert_nothing_imported(&compositor);
    // Screencopy still works, and composes nothing either: vkms's writeback connector
    // copies what the display shows.
    assert_image(&client.screenshot().unwrap(), &pattern, 0, "drm-direct-scanout-screencopy");
    assert_written_back(&compositor);
}

/// A fullscreen dma-buf with a buffer transform is not put on the primary plane as it is
/// (vkms's planes cannot turn it): it is composed, the right way round, for a half turn
/// and for a quarter turn of a buffer as tall as the mode is wide.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_fullscreen_dmabuf_with_a_buffer_transform_is_composed_the_right_way_round() {
    use wayland_client::protocol::wl_output::Transform;
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let window = client.create_window("transformed").unwrap();
    assert_eq!(client.set_fullscreen(&window).unwrap(), (width as i32, height as i32));
    let half = test_pattern(width, height);
    let quarter = test_pattern(height, width);
    for (transform, buffer, shown) in [
        (Transform::_180, &half, half.rotated_clockwise().rotated_clockwise()),
        (Transform::_90, &quarter, quarter.rotated_clockwise()),
    ] {
        let (memory, fd) = udmabuf_of(buffer);
        let size = (buffer.width, buffer.height);
        let wl_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), buffer.width * 4, size);
        window.surface.set_buffer_transform(transform);
        window.surface.attach(Some(&wl_buffer), 0, 0);
        window.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
        client.commit_and_wait_frame(&window.surface).unwrap();
        let shot = wait_on_crtc(&compositor, &format!("drm-transform-{transform:?}"), |shot| *shot == shown);
        assert_image(&shot, &shown, 0, &format!("drm-transform-{transform:?}"));
        std::mem::forget((memory, fd, wl_buffer));
    }
    let log = compositor.log();
    assert!(!log.contains("direct scanout: on:"), "a transformed buffer is composed: {log}");
    let stats = import_stats(&compositor);
    let composed = ["cpu_imports", "vulkan_image", "vulkan_buffer"].iter().filter_map(|k| stats.get(*k)).sum::<u64>();
    assert!(composed >= 2, "both buffers were imported to be composed: {stats:?}");
}

/// The last screencopy was answered with what vkms's writeback connector captured of the
/// display, not with a composition made for it (which would have imported the buffers).
fn assert_written_back(compositor: &Compositor) {
    let log = compositor.log();
    assert!(log.contains("screencopy: the frame on screen, written back by the display"), "{log}");
    assert!(!log.contains("writeback capture failed"), "{log}");
    assert_nothing_imported(compositor);
}

/// No client buffer was imported for composition, by any step of the ladder.
fn assert_nothing_imported(compositor: &Compositor) {
    let stats = import_stats(compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!(
        (get("cpu_imports"), get("vulkan_image"), get("vulkan_buffer")),
        (Some(0), Some(0), Some(0)),
        "{stats:?}"
    );
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn no_direct_scanout_composes_and_offers_no_scanout_tranche() {
    let compositor = Compositor::start_drm(&axiom_binary(), &["--no-direct-scanout"]).unwrap();
    let mut client = compositor.connect().unwrap();
    let (_, after, pattern) = fullscreen_udmabuf_window(&compositor, &mut client);
    assert!(after.iter().all(|(_, flags)| flags & SCANOUT == 0), "{after:?}");
    let shot = wait_on_crtc(&compositor, "drm-composed-fullscreen", |shot| *shot == pattern);
    assert_image(&shot, &pattern, 0, "drm-composed-fullscreen");
    assert!(!compositor.log().contains("direct scanout: on"), "{}", compositor.log());
    let stats = import_stats(&compositor);
    let composed: u64 = ["cpu_imports", "vulkan_image", "vulkan_buffer"].iter().filter_map(|k| stats.get(*k)).sum();
    assert_eq!(composed, 1, "the buffer was composed: {stats:?}");
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn keys_from_a_keyboard_reach_foot_through_libinput() {
    // A real evdev keyboard (uinput), tagged by udev and found by libinput.
    let mut keyboard = axiom_testclient::uinput::Keyboard::new("axiom test keyboard").expect("uinput keyboard");
    let compositor = start_drm();
    let marker = compositor.runtime_dir.join("typed");
    let script = format!("read line; printf %s \"$line\" > '{}'", marker.display());
    let mut foot = spawn(&compositor, "foot", &["sh", "-c", &script]);
    // foot is focused as the newest window once mapped; keys sent before would be lost.
    assert!(compositor.wait_for_log("app_id=Some(\"foot\")", LIMIT), "foot never mapped\n{}", compositor.log());
    std::thread::sleep(Duration::from_millis(500));
    const KEY_O: u16 = 24;
    const KEY_K: u16 = 37;
    const KEY_ENTER: u16 = 28;
    for key in [KEY_O, KEY_K, KEY_ENTER] {
        keyboard.tap(key).unwrap();
    }
    let status = crate::third_party::wait_exit(&mut foot, LIMIT).expect("foot exits once its shell has read the line");
    assert!(status.success(), "foot exited with {status}\n{}", compositor.log());
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default(), "ok");
    assert!(compositor.log().contains("input device added: axiom test keyboard"), "{}", compositor.log());
}

/// A 32x16 vgem buffer (a dma-buf that takes fences) filled with `colour`.
fn vgem_buffer(colour: Rgba) -> axiom_testclient::vgem::VgemBuffer {
    let mut vgem = axiom_testclient::vgem::VgemBuffer::new(32, 16).expect("a vgem buffer");
    fill(&mut vgem, colour);
    vgem
}

fn fill(vgem: &mut axiom_testclient::vgem::VgemBuffer, colour: Rgba) {
    let pitch = vgem.pitch() as usize;
    vgem.write(&Format32::Xrgb8888.encode_image(&Image::solid(32, 16, colour), pitch, 0xff)).unwrap();
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_commit_is_held_until_its_dmabufs_writers_finish_and_nobody_waits() {
    // Composition reads the buffers: keep the window off the planes.
    let compositor = start_drm_composing();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (red, blue) = (Rgba::opaque(255, 0, 0), Rgba::opaque(0, 0, 255));
    let (x, y) = centred(width, height, 32, 16);

    // A finished red buffer is shown.
    let first = vgem_buffer(red);
    let (_first_buffer, window) = small_dmabuf_window(&compositor, &mut client, first.dmabuf.as_fd(), first.pitch());
    wait_on_crtc(&compositor, "drm-vgem-first", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));

    // A "GPU" is still writing the blue one: its commit is held, the window keeps its
    // red buffer, and the compositor goes on serving everyone.
    let second = vgem_buffer(blue);
    let fence = second.attach_write_fence().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let second_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, second.dmabuf.as_fd(), second.pitch(), (32, 16));
    window.surface.attach(Some(&second_buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    window.surface.commit();
    client.roundtrip().unwrap();
    let mut other = compositor.connect().unwrap();
    for _ in 0..3 {
        let shot = other.screenshot().unwrap();
        assert_image(&shot.crop(x, y, 32, 16), &Image::solid(32, 16, red), 0, "drm-vgem-held");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_image(&crtc_shot(&compositor).crop(x, y, 32, 16), &Image::solid(32, 16, red), 0, "drm-vgem-held-crtc");
    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!((get("held_commits"), get("sync_timeouts")), (Some(1), Some(0)), "{stats:?}");

    // The writes finish: the held commit is applied, with no wait anywhere.
    second.signal(fence).unwrap();
    wait_on_crtc(&compositor, "drm-vgem-released", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, blue));
    let stats = import_stats(&compositor);
    assert_eq!(stats.get("sync_timeouts"), Some(&0), "nothing read a buffer before its writers finished: {stats:?}");
}

#[cfg(feature = "dmabuf-vulkan")]
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_fence_still_pending_when_a_frame_reads_the_buffer_is_waited_on_by_the_gpu() {
    let compositor = start_drm_composing();
    assert!(
        compositor.log().contains("Implicit sync: the GPU waits on sync files"),
        "lavapipe imports sync files where the kernel exports them: {}",
        compositor.log()
    );
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (red, blue, green, yellow) =
        (Rgba::opaque(255, 0, 0), Rgba::opaque(0, 0, 255), Rgba::opaque(0, 255, 0), Rgba::opaque(255, 255, 0));
    let (x, y) = centred(width, height, 32, 16);
    let first = vgem_buffer(red);
    let (_first_buffer, window) = small_dmabuf_window(&compositor, &mut client, first.dmabuf.as_fd(), first.pitch());
    wait_on_crtc(&compositor, "drm-gpu-wait-first", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));
    // Another client's window, fullscreen on the other output.
    let mut other = compositor.connect().unwrap();
    let other_output = outputs(&mut other).remove(1).0;
    let (other_window, _other_first) = fullscreen_colour_on(&mut other, &other_output, blue);
    let other_next = other.create_buffer(&Image::solid(1024, 768, green), Format32::Xrgb8888, 1024 * 4, 0xff).unwrap();

    // Commits are held for their writers one at a time per surface: the blue one is held,
    // and the next, whose "GPU" is still writing (green so far, yellow when done), queues
    // behind it unheld. Once blue's writes finish both apply, and the frame reads the
    // last buffer while its writes are still pending.
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let second = vgem_buffer(blue);
    let second_fence = second.attach_write_fence().unwrap();
    let second_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, second.dmabuf.as_fd(), second.pitch(), (32, 16));
    let mut third = vgem_buffer(green);
    let third_fence = third.attach_write_fence().unwrap();
    let third_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, third.dmabuf.as_fd(), third.pitch(), (32, 16));
    for buffer in [&second_buffer, &third_buffer] {
        window.surface.attach(Some(buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 32, 16);
        window.surface.commit();
    }
    client.roundtrip().unwrap();
    second.signal(second_fence).unwrap();

    // The frame's GPU work waits for the writes: the unfinished green never shows.
    std::thread::sleep(Duration::from_millis(500));
    let shot = crtc_shot(&compositor).crop(x, y, 32, 16);
    assert!(
        shot == Image::solid(32, 16, red) || shot == Image::solid(32, 16, blue),
        "only finished buffers reach the screen: {:?}",
        shot.pixel(0, 0)
    );
    // The GPU waits; the event loop does not: it answers the counters' signal, and the
    // other client's commit gets its frame callback while the writes are still pending.
    let waiting = import_stats(&compositor);
    assert_eq!(waiting.get("gpu_fence_waits"), Some(&1), "a frame waits on the GPU now: {waiting:?}");
    assert_eq!(waiting.get("loop_gpu_waits"), Some(&0), "{waiting:?}");
    other.present(&other_window.surface, &other_next).unwrap();
    fill(&mut third, yellow);
    third.signal(third_fence).unwrap();
    wait_on_crtc(&compositor, "drm-gpu-wait-done", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, yellow));
    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!(
        (get("held_commits"), get("gpu_fence_waits"), get("sync_timeouts")),
        (Some(1), Some(1), Some(0)),
        "the GPU, not the CPU, waited for the writers: {stats:?}"
    );
}

/// Forces the connector's status through sysfs, as a plug or unplug would change it;
/// dropped, it lets the kernel detect it again.
struct ConnectorStatus(&'static str);

impl ConnectorStatus {
    fn force(&self, status: &str) {
        std::fs::write(self.0, status).unwrap_or_else(|e| panic!("{}: {e}", self.0));
    }
}

impl Drop for ConnectorStatus {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, "detect");
    }
}

/// The wl_outputs the compositor lists now, bound, with what each announced.
fn outputs(client: &mut TestClient) -> Vec<(WlOutput, OutputInfo)> {
    client.roundtrip().unwrap();
    let globals = client.output_globals();
    globals
        .into_iter()
        .map(|name| {
            let output = client.bind_output(name).unwrap();
            let info = client.output_info(&output);
            (output, info)
        })
        .collect()
}

fn output_info(name: &str, x: i32) -> OutputInfo {
    OutputInfo { name: name.into(), position: (x, 0), size: (1024, 768) }
}

/// A window made fullscreen on `output`, showing one colour.
fn fullscreen_colour_on(
    client: &mut TestClient,
    output: &WlOutput,
    colour: Rgba,
) -> (axiom_testclient::Window, Buffer) {
    let window = client.create_window("fullscreen-on").unwrap();
    let (w, h) = client.set_fullscreen_on(&window, output).unwrap();
    assert_eq!((w, h), (1024, 768), "a fullscreen window is asked to take its output's size");
    let image = Image::solid(w as u32, h as u32, colour);
    let buffer = client.create_buffer(&image, Format32::Xrgb8888, w as usize * 4, 0xff).unwrap();
    client.present(&window.surface, &buffer).unwrap();
    (window, buffer)
}

/// Waits until nobody is DRM master of the device: a process that opens it can become it.
fn wait_until_no_drm_master() {
    use smithay::reexports::drm::Device as _;
    let deadline = Instant::now() + LIMIT;
    loop {
        // Master only for as long as the file is open.
        let card = Card(std::fs::File::open(CARD).unwrap());
        if card.acquire_master_lock().is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "{CARD} still has a DRM master");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until CRTC number `index` scans nothing out.
fn wait_until_crtc_off(index: usize) {
    use smithay::reexports::drm::control::Device as _;
    let card = Card(std::fs::File::open(CARD).unwrap());
    let crtc = card.resource_handles().unwrap().crtcs()[index];
    let deadline = Instant::now() + LIMIT;
    while card.get_crtc(crtc).unwrap().framebuffer().is_some() {
        assert!(Instant::now() < deadline, "CRTC {index} still scans out: {:?}", card.get_crtc(crtc));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the log says `needle` `count` times.
fn wait_for_log_count(compositor: &Compositor, needle: &str, count: usize) {
    let deadline = Instant::now() + LIMIT;
    while compositor.log().matches(needle).count() < count {
        assert!(Instant::now() < deadline, "{needle:?} not logged {count} times:\n{}", compositor.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn each_connected_connector_is_an_output_of_its_own_showing_its_part_of_the_scene() {
    let compositor = start_drm_composing();
    let mut client = compositor.connect().unwrap();
    let outputs = outputs(&mut client);
    let infos: Vec<_> = outputs.iter().map(|(_, info)| info.clone()).collect();
    assert_eq!(infos, vec![output_info("Virtual-1", 0), output_info("Virtual-2", 1024)], "{}", compositor.log());

    // A new window opens centred on the primary output; a fullscreen one fills the output it names.
    let (_window, _buffer, pattern) = crate::common::show_pattern(&mut client, 200, 150);
    let blue = Rgba::opaque(0, 0, 255);
    let (_fullscreen, _blue) = fullscreen_colour_on(&mut client, &outputs[1].0, blue);
    let (x, y) = centred(1024, 768, 200, 150);
    let first = wait_on_crtc_at(&compositor, 0, "two-outputs-first", |shot| shot.crop(x, y, 200, 150) == pattern);
    assert_eq!(non_background(&first, 0, 0, 1024, 768), 200 * 150, "only the window is on the first output");
    wait_on_crtc_at(&compositor, 1, "two-outputs-second", |shot| *shot == Image::solid(1024, 768, blue));

    // Each output counts its own flips, and composed frames reach both without a CPU copy.
    let stats = crate::common::import_stats(&compositor);
    for name in ["Virtual-1", "Virtual-2"] {
        assert!(stats.get(&format!("frames_{name}")).is_some_and(|&n| n > 0), "{name} flipped: {stats:?}");
    }
    assert_composed_frames_reach_the_display_on_the_gpu(&compositor);

    // Screencopy captures each output's own part.
    let shot = client.screenshot_of(&outputs[0].0).unwrap();
    assert_image(&shot.crop(x, y, 200, 150), &pattern, 0, "screencopy-first");
    assert_eq!(non_background(&shot, 0, 0, 1024, 768), 200 * 150, "screencopy of the first output");
    let shot = client.screenshot_of(&outputs[1].0).unwrap();
    assert!(
        shot == Image::solid(1024, 768, blue),
        "screencopy of the second output: {}",
        crate::common::save_png(&shot, "screencopy-second")
    );
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn connectors_plugged_and_unplugged_add_and_remove_outputs_at_their_preferred_modes() {
    let compositor = start_drm_composing();
    let mut client = compositor.connect().unwrap();
    let outputs = outputs(&mut client);
    assert_eq!(outputs.len(), 2, "{}", compositor.log());
    let blue = Rgba::opaque(0, 0, 255);
    let (window, buffer) = fullscreen_colour_on(&mut client, &outputs[1].0, blue);
    let all_blue = Image::solid(1024, 768, blue);
    wait_on_crtc_at(&compositor, 1, "hotplug-second", |shot| *shot == all_blue);

    // The kernel reports Virtual-2 gone, through udev: its CRTC goes off, its wl_output
    // goes, and its fullscreen window is asked to fill the output that is left.
    let second = ConnectorStatus("/sys/class/drm/card0-Virtual-2/status");
    let serial = client.configure_serial(&window);
    second.force("off");
    assert!(compositor.wait_for_log("KMS: Virtual-2's output is removed", LIMIT), "{}", compositor.log());
    wait_until_crtc_off(1);
    assert_eq!(client.ack_next_configure(&window, serial).unwrap(), (1024, 768));
    client.present(&window.surface, &buffer).unwrap();
    wait_on_crtc_at(&compositor, 0, "hotplug-moved-to-first", |shot| *shot == all_blue);
    client.roundtrip().unwrap();
    assert_eq!(client.output_globals().len(), 1, "the unplugged output's global is gone");

    // Plugged back: a new output to the right of the first, with nothing on it yet.
    second.force("detect");
    assert!(compositor.wait_for_log("KMS: Virtual-2 connected: a new output", LIMIT), "{}", compositor.log());
    wait_on_crtc_at(&compositor, 1, "hotplug-second-back", |shot| *shot == Image::solid(1024, 768, BACKGROUND));
    let outputs = self::outputs(&mut client);
    let infos: Vec<_> = outputs.iter().map(|(_, info)| info.clone()).collect();
    assert_eq!(infos, vec![output_info("Virtual-1", 0), output_info("Virtual-2", 1024)]);
    let virtual_2 = &outputs[1].0;

    // The primary connector unplugged: Virtual-2 becomes the primary output, at the
    // origin, and the fullscreen window fills it.
    let first = ConnectorStatus("/sys/class/drm/card0-Virtual-1/status");
    let serial = client.configure_serial(&window);
    first.force("off");
    assert!(compositor.wait_for_log("KMS: Virtual-1's output is removed", LIMIT), "{}", compositor.log());
    wait_until_crtc_off(0);
    assert_eq!(client.ack_next_configure(&window, serial).unwrap(), (1024, 768));
    client.present(&window.surface, &buffer).unwrap();
    wait_on_crtc_at(&compositor, 1, "hotplug-moved-to-second", |shot| *shot == all_blue);

    // The last connector unplugged keeps its output, dark: clients go on (a commit gets its
    // frame callback), and its frame comes back with it.
    second.force("off");
    wait_for_log_count(&compositor, "KMS: Virtual-2 disconnected", 2);
    wait_until_crtc_off(1);
    client.roundtrip().unwrap();
    assert_eq!(client.output_globals().len(), 1, "the last output stays");
    window.surface.damage_buffer(0, 0, 1, 1);
    client.commit_and_wait_frame(&window.surface).unwrap();
    second.force("detect");
    assert!(compositor.wait_for_log("KMS: Virtual-2 connected again", LIMIT), "{}", compositor.log());
    wait_on_crtc_at(&compositor, 1, "hotplug-last-back", |shot| *shot == all_blue);

    // Plugged back with another preferred mode (another monitor): it is driven at that
    // mode, as the same wl_output, and the fullscreen window is asked to fill it.
    let _mode = PreferredMode::set(800, 600);
    second.force("off");
    wait_for_log_count(&compositor, "KMS: Virtual-2 disconnected", 3);
    wait_until_crtc_off(1);
    client.roundtrip().unwrap();
    let serial = client.configure_serial(&window);
    second.force("detect");
    let logged = "KMS: Virtual-2 connected with another preferred mode, 800x600";
    assert!(compositor.wait_for_log(logged, LIMIT), "{}", compositor.log());
    assert_eq!(client.ack_next_configure(&window, serial).unwrap(), (800, 600));
    assert_eq!(client.output_info(virtual_2).size, (800, 600), "wl_output announces the new mode");
    let small = client.create_buffer(&Image::solid(800, 600, blue), Format32::Xrgb8888, 800 * 4, 0xff).unwrap();
    client.present(&window.surface, &small).unwrap();
    wait_on_crtc_at(&compositor, 1, "hotplug-new-mode", |shot| *shot == Image::solid(800, 600, blue));
    drop(first);
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn the_display_device_going_away_leaves_clients_running_without_a_display_until_it_is_back() {
    let compositor = start_drm_composing();
    let mut client = compositor.connect().unwrap();
    let (window, _buffer, pattern) = crate::common::show_pattern(&mut client, 200, 150);
    let (x, y) = centred(1024, 768, 200, 150);
    wait_on_crtc(&compositor, "device-removed-before", |shot| shot.crop(x, y, 200, 150) == pattern);

    // udev reports the device removed: the compositor lets go of it (no longer DRM master,
    // so the kernel's console may take the CRTCs back).
    let removed = UdevRemoved::trigger("/sys/class/drm/card0");
    assert!(compositor.wait_for_log("KMS: /dev/dri/card0 is gone", LIMIT), "{}", compositor.log());
    wait_until_no_drm_master();
    // Clients go on: a commit gets its frame callback, screencopy shows the scene (composed),
    // and one wl_output stays.
    window.surface.damage_buffer(0, 0, 1, 1);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let shot = client.screenshot().unwrap();
    assert_image(&shot.crop(x, y, 200, 150), &pattern, 0, "device-removed-screencopy");
    client.roundtrip().unwrap();
    let primary = client.output_globals();
    assert_eq!(primary.len(), 1, "the primary output stays");

    // udev reports it added: it is driven again, one output per connector, the first
    // being the wl_output clients kept, and the scene is on the display again.
    drop(removed);
    assert!(compositor.wait_for_log("KMS: /dev/dri/card0 is here: driving it", LIMIT), "{}", compositor.log());
    wait_on_crtc(&compositor, "device-back", |shot| shot.crop(x, y, 200, 150) == pattern);
    wait_on_crtc_at(&compositor, 1, "device-back-second", |shot| *shot == Image::solid(1024, 768, BACKGROUND));
    client.roundtrip().unwrap();
    let globals = client.output_globals();
    assert_eq!(globals.len(), 2, "{}", compositor.log());
    assert_eq!(globals[0], primary[0], "the primary wl_output is the one clients kept");
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn started_with_no_connector_connected_it_waits_and_drives_the_connectors_plugged_later() {
    let first = ConnectorStatus("/sys/class/drm/card0-Virtual-1/status");
    let second = ConnectorStatus("/sys/class/drm/card0-Virtual-2/status");
    first.force("off");
    second.force("off");
    let compositor = start_drm_composing();
    assert!(compositor.log().contains("KMS: no connector is connected: waiting for one"), "{}", compositor.log());

    // Meanwhile clients have an output no display shows, and run: a fullscreen window
    // fills it and gets its frame callbacks.
    let mut client = compositor.connect().unwrap();
    let waiting = outputs(&mut client);
    let infos: Vec<_> = waiting.iter().map(|(_, info)| info.clone()).collect();
    let placeholder = OutputInfo { name: "HEADLESS-1".into(), position: (0, 0), size: (1920, 1080) };
    assert_eq!(infos, vec![placeholder]);
    let window = client.create_window("fullscreen-waiting").unwrap();
    assert_eq!(client.set_fullscreen_on(&window, &waiting[0].0).unwrap(), (1920, 1080));
    let blue = Rgba::opaque(0, 0, 255);
    let big = client.create_buffer(&Image::solid(1920, 1080, blue), Format32::Xrgb8888, 1920 * 4, 0xff).unwrap();
    client.present(&window.surface, &big).unwrap();

    // Plugged: each connector gets its output, the waiting one goes, and the fullscreen
    // window is asked to fill the primary output.
    let serial = client.configure_serial(&window);
    first.force("detect");
    second.force("detect");
    assert!(compositor.wait_for_log("KMS: /dev/dri/card0 is here: driving it", LIMIT), "{}", compositor.log());
    assert_eq!(client.ack_next_configure(&window, serial).unwrap(), (1024, 768));
    let buffer = client.create_buffer(&Image::solid(1024, 768, blue), Format32::Xrgb8888, 1024 * 4, 0xff).unwrap();
    client.present(&window.surface, &buffer).unwrap();
    wait_on_crtc(&compositor, "plugged-later", |shot| *shot == Image::solid(1024, 768, blue));
    let infos: Vec<_> = outputs(&mut client).into_iter().map(|(_, info)| info).collect();
    assert_eq!(infos, vec![output_info("Virtual-1", 0), output_info("Virtual-2", 1024)], "{}", compositor.log());
}

/// A "remove" uevent for a device that stays (synthetic, through its sysfs `uevent` file,
/// as `udevadm trigger` does: the later tests still need the device), and an "add" one
/// when dropped.
struct UdevRemoved(String);

impl UdevRemoved {
    fn trigger(syspath: &str) -> Self {
        let uevent = format!("{syspath}/uevent");
        std::fs::write(&uevent, "remove").unwrap_or_else(|e| panic!("{uevent}: {e}"));
        Self(uevent)
    }
}

impl Drop for UdevRemoved {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "add");
    }
}

/// Sets vkms's preferred mode (a parameter `tests/vm/prepare` adds) until dropped.
struct PreferredMode;

impl PreferredMode {
    fn set(width: u32, height: u32) -> Self {
        for (name, value) in [("width", width), ("height", height)] {
            let path = format!("/sys/module/vkms/parameters/preferred_{name}");
            std::fs::write(&path, value.to_string()).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        PreferredMode
    }
}

impl Drop for PreferredMode {
    fn drop(&mut self) {
        let _ = std::fs::write("/sys/module/vkms/parameters/preferred_width", "1024");
        let _ = std::fs::write("/sys/module/vkms/parameters/preferred_height", "768");
    }
}

/// wp_presentation_feedback kind bits.
const VSYNC: u32 = 0x1;
const HW_CLOCK: u32 = 0x2;
const HW_COMPLETION: u32 = 0x4;
const ZERO_COPY: u32 = 0x8;

/// A process that opens the KMS device (not as master) to read its vblank counter.
struct Card(std::fs::File);

impl AsFd for Card {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl smithay::reexports::drm::Device for Card {}
impl smithay::reexports::drm::control::Device for Card {}

/// The CRTC's vblank counter now, and the time of its last vblank (CLOCK_MONOTONIC).
fn last_vblank(card: &Card) -> (u64, Duration) {
    use smithay::reexports::drm::{VblankWaitFlags, VblankWaitTarget};
    let reply = smithay::reexports::drm::Device::wait_vblank(
        card,
        VblankWaitTarget::Relative(0),
        VblankWaitFlags::empty(),
        0,
        0,
    )
    .expect("DRM_IOCTL_WAIT_VBLANK on the first CRTC");
    (reply.frame().into(), reply.time().expect("a vblank time"))
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn presentation_feedback_carries_the_kernels_flip_time_and_sequence() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("presented").unwrap();
    let buffers = solid_buffers(&mut client, 64, &[Rgba::opaque(10, 20, 30), Rgba::opaque(30, 20, 10)]);
    let mut feedbacks = Vec::new();
    for i in 0..8 {
        feedbacks.push(client.request_feedback(&window.surface));
        client.present(&window.surface, &buffers[i % 2]).unwrap();
    }
    let results = client.wait_for_feedback(&feedbacks).unwrap();
    let card = Card(std::fs::File::open(CARD).unwrap());
    let (now_seq, now_time) = last_vblank(&card);

    let mut presented = Vec::new();
    for result in results {
        // A frame replaced while it waited for a flip is discarded: that is rare (the
        // repaint timer and the vblank drift apart), and the others must still be right.
        let Presented::Presented { time, refresh_ns, seq, flags } = result else { continue };
        assert_eq!(flags & (VSYNC | HW_CLOCK | HW_COMPLETION), VSYNC | HW_CLOCK | HW_COMPLETION, "flags {flags:#x}");
        assert_eq!(flags & ZERO_COPY, 0, "composed frames are copies: {flags:#x}");
        presented.push((seq, time, refresh_ns));
    }
    // Each frame's time and sequence are those of a real vblank of the CRTC: counted back
    // from the kernel's last vblank, whole refresh intervals apart. A timer of our own
    // would keep neither the kernel's counter nor its phase.
    for &(seq, time, refresh_ns) in &presented {
        assert!(
            seq <= now_seq && time <= now_time,
            "frame {seq} at {time:?} after the last vblank {now_seq} at {now_time:?}"
        );
        let frames = (now_seq - seq) as u32;
        let expected = now_time - Duration::from_nanos(u64::from(refresh_ns)) * frames;
        let error = expected.abs_diff(time);
        assert!(
            error < Duration::from_micros(50) + Duration::from_micros(2) * frames,
            "frame {seq} at {time:?}: {frames} vblanks before {now_seq} at {now_time:?} is {expected:?}\n{presented:?}"
        );
    }
    assert!(presented.len() >= 4, "most frames are shown: {presented:?}");
    assert!(presented.windows(2).all(|w| w[0].0 < w[1].0), "one flip per frame: {presented:?}");
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_scanned_out_buffer_is_released_only_after_the_flip_that_replaces_it() {
    use axiom_testclient::client::Arrival;
    use wayland_client::Proxy;
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    // A window the fullscreen one will hide.
    let below = client.create_window("below").unwrap();
    let grey = client.create_buffer(&Image::solid(64, 64, Rgba::opaque(90, 90, 90)), Format32::Xrgb8888, 256, 0xff);
    client.present(&below.surface, &grey.unwrap()).unwrap();
    let window = client.create_window("fullscreen").unwrap();
    client.set_fullscreen(&window).unwrap();
    let images = [test_pattern(width, height), Image::solid(width, height, Rgba::opaque(200, 40, 40))];
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let (a, b) = (&buffers[0], &buffers[1]);

    // A goes on the plane as it is.
    for _ in 0..2 {
        window.surface.attach(Some(a), 0, 0);
        window.surface.damage_buffer(0, 0, width as i32, height as i32);
        client.commit_and_wait_frame(&window.surface).unwrap();
    }
    wait_on_crtc(&compositor, "drm-release-a", |shot| *shot == images[0]);
    assert!(compositor.log().contains("direct scanout: on"), "{}", compositor.log());

    // B replaces it. A may be written again only once the display has stopped reading
    // it: its release must come after B's flip, which B's presentation reports.
    // The hidden window commits in the same frame: it is never shown, so discarded.
    let hidden = client.request_feedback(&below.surface);
    below.surface.damage_buffer(0, 0, 64, 64);
    below.surface.commit();
    let feedback = client.request_feedback(&window.surface);
    window.surface.attach(Some(b), 0, 0);
    window.surface.damage_buffer(0, 0, width as i32, height as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let results = client.wait_for_feedback(&[feedback.clone(), hidden]).unwrap();
    let Presented::Presented { flags, .. } = results[0] else { panic!("B was discarded") };
    assert_ne!(flags & ZERO_COPY, 0, "B was scanned out as it is: {flags:#x}");
    assert_eq!(results[1], Presented::Discarded, "the window under the fullscreen one was never shown");
    let deadline = Instant::now() + LIMIT;
    let released = Arrival::Released(a.id());
    while !client.arrivals().contains(&released) {
        assert!(Instant::now() < deadline, "A was never released: {:?}", client.arrivals());
        std::thread::sleep(Duration::from_millis(10));
        client.roundtrip().unwrap();
    }
    let arrivals = client.arrivals();
    let position = |arrival: &Arrival| arrivals.iter().position(|a| a == arrival);
    assert!(
        position(&Arrival::Presented(feedback.id())) < position(&released),
        "A was released before B's flip: {arrivals:?}"
    );
    wait_on_crtc(&compositor, "drm-release-b", |shot| *shot == images[1]);
    drop(memory);
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn the_top_windows_dmabuf_goes_on_an_overlay_plane_and_the_rest_is_composed() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    // Below: a composed shm window. On top: a window showing a udmabuf.
    let below = client.create_window("below").unwrap();
    let green = client.create_buffer(&Image::solid(200, 300, Rgba::opaque(0, 160, 0)), Format32::Xrgb8888, 800, 0xff);
    client.present(&below.surface, &green.unwrap()).unwrap();
    // Between them, a window wholly under the top one: never seen while the top is on its plane.
    let under = client.create_window("under").unwrap();
    let red = client.create_buffer(&Image::solid(64, 64, Rgba::opaque(200, 0, 0)), Format32::Xrgb8888, 256, 0xff);
    client.present(&under.surface, &red.unwrap()).unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let top = client.create_window("top").unwrap();
    let (top_feedback, before) = client.surface_feedback(&dmabuf, &top.surface).unwrap();
    let pattern = test_pattern(256, 128);
    let (memory, fd) = udmabuf_of(&pattern);
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), 256 * 4, (256, 128));
    top.surface.attach(Some(&buffer), 0, 0);
    top.surface.damage_buffer(0, 0, 256, 128);
    client.commit_and_wait_frame(&top.surface).unwrap();
    assert!(compositor.wait_for_log("overlay plane: on:", LIMIT), "{}", compositor.log());
    let log = compositor.log();
    let on = log.lines().rfind(|l| l.contains("overlay plane: on:")).unwrap_or_else(|| panic!("{log}"));
    let (x, y) = centred(width, height, 256, 128);
    assert!(on.contains(&format!("256x128 XR24 buffer of the top window at ({x},{y})")), "{on}");
    // The top window's feedback now starts with a scanout tranche for the display.
    client.roundtrip().unwrap();
    let after = client.feedback_log(&top_feedback);
    let card = rustix::fs::stat(Path::new(CARD)).unwrap().st_rdev;
    let batch: Vec<(u64, u32)> = after.tranches[before.tranches.len()..].iter().map(|(d, f, _)| (*d, *f)).collect();
    assert_eq!(batch.first(), Some(&(card, SCANOUT)), "the top window gets a scanout tranche: {batch:?}");

    // Only the window on the plane is zero-copy; the one below is composed, and the one
    // wholly under the plane's window is discarded.
    let feedbacks = [
        client.request_feedback(&top.surface),
        client.request_feedback(&below.surface),
        client.request_feedback(&under.surface),
    ];
    below.surface.damage_buffer(0, 0, 200, 300);
    below.surface.commit();
    under.surface.damage_buffer(0, 0, 64, 64);
    under.surface.commit();
    top.surface.damage_buffer(0, 0, 256, 128);
    client.commit_and_wait_frame(&top.surface).unwrap();
    let results = client.wait_for_feedback(&feedbacks).unwrap();
    assert_eq!(results[2], Presented::Discarded, "the window under the plane's is not seen: {results:?}");
    let flags: Vec<u32> = results[..2]
        .iter()
        .map(|p| match *p {
            Presented::Presented { flags, .. } => flags,
            Presented::Discarded => panic!("a shown window's frame was discarded: {results:?}"),
        })
        .collect();
    assert_ne!(flags[0] & ZERO_COPY, 0, "the top window is on the overlay plane: {flags:?}");
    assert_eq!(flags[1] & ZERO_COPY, 0, "the window below is composed: {flags:?}");

    // The overlay plane holds the client's own framebuffer where the window is, and
    // nothing composed or imported that buffer.
    let deadline = Instant::now() + LIMIT;
    let report = loop {
        let (_, report) = kms_grab(&compositor, &[]);
        if report.contains("overlay plane=") {
            break report;
        }
        assert!(Instant::now() < deadline, "no overlay plane on the CRTC\n{report}\n{}", compositor.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let overlay = report.lines().find(|l| l.starts_with("overlay plane=")).unwrap();
    assert!(overlay.ends_with(&format!("x={x} y={y} 256x128")), "{overlay}");
    let fb = overlay.split_whitespace().find_map(|w| w.strip_prefix("fb=")).unwrap();
    assert!(on.contains(&format!("(fb {fb})")), "the plane shows the client's framebuffer: {overlay} / {on}");
    assert_nothing_imported(&compositor);

    // The display shows the whole scene, as screencopy (written back by vkms) does.
    let whole = client.screenshot().unwrap();
    assert_image(&whole.crop(x, y, 256, 128), &pattern, 0, "drm-overlay-screencopy");
    assert_written_back(&compositor);
    let shot = wait_on_crtc(&compositor, "drm-overlay", |shot| *shot == whole);
    assert_image(&shot, &whole, 0, "drm-overlay-vs-screencopy");
    let (primary, _) = kms_grab(&compositor, &["--no-overlays"]);
    assert_ne!(primary.crop(x, y, 256, 128), pattern, "the primary plane does not hold the window");

    // Without the top window the overlay plane goes off, and the display shows what the
    // primary plane held all along: the scene without that window.
    top.destroy();
    client.roundtrip().unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        let (shot, report) = kms_grab(&compositor, &[]);
        if !report.contains("overlay plane=") && shot == primary {
            break;
        }
        assert!(Instant::now() < deadline, "the overlay plane stayed on\n{report}\n{}", compositor.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(compositor.log().contains("overlay plane: off"), "{}", compositor.log());
    drop((memory, fd));
}

/// `compositor` with a client that has taken one screenshot (so that screencopy's own
/// buffers exist before the baseline), the output size, and what it holds then.
fn settled(compositor: Compositor) -> (Compositor, TestClient, (u32, u32), Holdings) {
    let mut viewer = compositor.connect().unwrap();
    let size = output_size(&mut viewer);
    viewer.screenshot().unwrap();
    let baseline = holdings(&compositor);
    (compositor, viewer, size, baseline)
}

/// (live_imports, live_mappings, live_textures) and open fds of a compositor.
type Holdings = ((u64, u64, u64), usize);

/// What the compositor holds, once it has settled.
fn holdings(compositor: &Compositor) -> Holdings {
    let stats = import_stats(compositor);
    let get = |k: &str| stats.get(k).copied().unwrap_or(u64::MAX);
    let (fds, _) = crate::common::settled_footprint(compositor.pid());
    ((get("live_imports"), get("live_mappings"), get("live_textures")), fds)
}

/// Waits until the compositor holds what it held at `baseline` again.
fn assert_back_to(compositor: &Compositor, baseline: Holdings, after: &str) {
    let mut now = holdings(compositor);
    for _ in 0..30 {
        if now == baseline {
            return;
        }
        now = holdings(compositor);
    }
    panic!(
        "after {after}: (live imports, mappings, textures) and fds {now:?}, at the start {baseline:?}: {:?}",
        crate::common::open_fds(compositor.pid())
    );
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_buffer_destroyed_and_its_client_gone_while_its_commit_is_held_leaves_nothing_behind() {
    let (compositor, _viewer, (width, height), baseline) = settled(start_drm_composing());

    let mut client = compositor.connect().unwrap();
    let first = vgem_buffer(Rgba::opaque(255, 0, 0));
    let (_first_buffer, window) = small_dmabuf_window(&compositor, &mut client, first.dmabuf.as_fd(), first.pitch());
    // A "GPU" is still writing the next buffer: its commit is held. The client destroys the
    // buffer and its window, and leaves, all while the commit waits.
    let second = vgem_buffer(Rgba::opaque(0, 0, 255));
    let fence = second.attach_write_fence().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let second_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, second.dmabuf.as_fd(), second.pitch(), (32, 16));
    window.surface.attach(Some(&second_buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    window.surface.commit();
    client.roundtrip().unwrap();
    assert_eq!(import_stats(&compositor).get("held_commits"), Some(&1));
    second_buffer.destroy();
    window.destroy();
    client.roundtrip().unwrap();
    drop(client);
    // The writes finish after everything is gone.
    second.signal(fence).unwrap();
    assert_back_to(&compositor, baseline, "a held commit's client leaving");
    let (x, y) = centred(width, height, 32, 16);
    wait_on_crtc(&compositor, "drm-held-gone", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, BACKGROUND));
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_buffer_destroyed_while_on_the_primary_plane_goes_once_the_plane_lets_go() {
    let (compositor, _viewer, (width, height), baseline) = settled(start_drm());

    let mut client = compositor.connect().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let window = client.create_window("fullscreen").unwrap();
    client.set_fullscreen(&window).unwrap();
    let pattern = test_pattern(width, height);
    let (memory, fd) = udmabuf_of(&pattern);
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), width * 4, (width, height));
    for _ in 0..2 {
        window.surface.attach(Some(&buffer), 0, 0);
        window.surface.damage_buffer(0, 0, width as i32, height as i32);
        client.commit_and_wait_frame(&window.surface).unwrap();
    }
    wait_on_crtc(&compositor, "drm-plane-destroy-on", |shot| *shot == pattern);
    assert!(compositor.log().contains("direct scanout: on"), "{}", compositor.log());

    // Destroyed while the display reads it: it stays on the plane until something
    // replaces it there; then everything it held goes.
    buffer.destroy();
    client.roundtrip().unwrap();
    drop((memory, fd));
    window.destroy();
    client.roundtrip().unwrap();
    drop(client);
    wait_on_crtc(&compositor, "drm-plane-destroy-off", |shot| {
        shot.crop(0, 0, width, height) == Image::solid(width, height, BACKGROUND)
    });
    assert_back_to(&compositor, baseline, "a scanned-out buffer destroyed and its client gone");
}

/// The leak soak over real dma-bufs (udmabuf), composed onto vkms: each is
/// imported by the Vulkan image step on the ladder, or mapped by the CPU step
/// where it is forced, and 2,500 of them made and dropped by clients coming and
/// going leave fds, imports, mappings, textures and memory at their baseline.
#[test]
#[ignore = "needs a KMS device and /dev/udmabuf: tests/vm/drm-tests runs it in the VM rig"]
fn real_dmabufs_made_and_dropped_by_the_thousand_leave_nothing_behind() {
    let mut compositor = start_drm_composing();
    crate::load::soak(&mut compositor, &[axiom_testclient::hostile::stress::BufferKind::Udmabuf], 4);
    let stats = import_stats(&compositor);
    let step = crate::common::dmabuf_vulkan_counter(&compositor).unwrap_or("cpu_imports");
    assert!(stats.get(step).is_some_and(|&n| n > 100), "read by {step}: {stats:?}");
}

/// wp_fifo_v1 on a display: a burst of frames committed through FIFO as fast as the
/// client can is shown whole, each frame by a flip of its own (the kernel's vblank
/// sequence increases from one to the next), and the last one stays on screen. The
/// same burst without FIFO is mostly replaced before it is shown.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn fifo_frames_are_each_shown_by_a_flip_of_their_own() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("fifo").unwrap();
    let buffers = solid_buffers(&mut client, 64, &[Rgba::opaque(200, 40, 40), Rgba::opaque(40, 40, 200)]);
    client.present(&window.surface, &buffers[1]).unwrap();

    let unpaced = crate::frame_pacing::commit_burst(&mut client, &window, &buffers, 6, false);
    let discarded = unpaced.iter().filter(|p| **p == Presented::Discarded).count();
    assert!(discarded >= 4, "a burst without FIFO is mostly discarded: {unpaced:?}");

    let paced = crate::frame_pacing::commit_burst(&mut client, &window, &buffers, 8, true);
    let flips: Vec<(u64, Duration, u32)> = paced
        .iter()
        .map(|p| match *p {
            Presented::Presented { time, seq, flags, .. } => (seq, time, flags),
            Presented::Discarded => panic!("a FIFO frame was discarded: {paced:?}"),
        })
        .collect();
    assert!(flips.iter().all(|f| f.2 & (VSYNC | HW_CLOCK) == VSYNC | HW_CLOCK), "flipped at vblank: {flips:?}");
    assert!(flips.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "a flip per frame: {flips:?}");
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 64, 64);
    wait_on_crtc(&compositor, "drm-fifo", |shot| {
        shot.crop(x, y, 64, 64) == Image::solid(64, 64, Rgba::opaque(40, 40, 200))
    });
}

/// wp_commit_timing_v1 on a display: a commit with a target time is held (the CRTC
/// still shows the buffer before it) and flipped at a vblank at or after its target,
/// never before: the repaint clock runs at the mode's refresh but is not locked to the
/// CRTC's vblank (docs/SYNC.md).
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_commit_with_a_target_time_is_flipped_at_or_after_it() {
    use axiom_testclient::pacing::monotonic_now;
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 64, 64);
    let window = client.create_window("timed").unwrap();
    let colours = [Rgba::opaque(200, 40, 40), Rgba::opaque(40, 40, 200)];
    let buffers = solid_buffers(&mut client, 64, &colours);
    client.present(&window.surface, &buffers[1]).unwrap();
    wait_on_crtc(&compositor, "drm-timed-before", |shot| shot.crop(x, y, 64, 64) == Image::solid(64, 64, colours[1]));

    let timer = client.commit_timer(&window.surface).unwrap();
    let target = monotonic_now() + Duration::from_millis(1500);
    let feedback = crate::frame_pacing::commit_at(&mut client, &window, &buffers[0], &timer, target);
    let early = kms_grab(&compositor, &["--crtc", "0"]).0;
    if monotonic_now() < target {
        assert_eq!(early.crop(x, y, 64, 64), Image::solid(64, 64, colours[1]), "held until its target");
    }
    let Presented::Presented { time, refresh_ns, flags, .. } = client.wait_for_feedback(&[feedback]).unwrap()[0] else {
        panic!("a timed commit was discarded")
    };
    assert_eq!(flags & (VSYNC | HW_CLOCK), VSYNC | HW_CLOCK, "flipped at a vblank: {flags:#x}");
    let refresh = Duration::from_nanos(refresh_ns.into());
    assert!(time >= target, "flipped at {time:?}, before its target {target:?}");
    // Released by the tick before its target, it is composed and flipped next; in the
    // VM's emulated CPU composing takes a few refreshes (up to 70 ms seen), so the bound
    // only says it went at its target and not at some later event.
    let late = target + 30 * refresh;
    assert!(time < late, "flipped at {time:?}, thirty refreshes after its target {target:?}");
    wait_on_crtc(&compositor, "drm-timed-after", |shot| shot.crop(x, y, 64, 64) == Image::solid(64, 64, colours[0]));
}

/// A fullscreen client buffer on the primary plane whose surface asks to tear
/// (wp_tearing_control_v1) goes there by an asynchronous flip where the device takes
/// them (the VM's vkms is patched to), and its feedback says it was not synced to a
/// vblank; once the surface withdraws the hint, its frames flip at vblank again.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_surface_that_asks_to_tear_is_flipped_asynchronously() {
    let compositor = start_drm();
    assert!(
        compositor.log().contains("asynchronous page flips (for surfaces that ask to tear): yes"),
        "{}",
        compositor.log()
    );
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let window = client.create_window("tearing").unwrap();
    client.set_fullscreen(&window).unwrap();
    let control = client.ask_to_tear(&window.surface).unwrap();
    let images = [test_pattern(width, height), Image::solid(width, height, Rgba::opaque(40, 200, 40))];
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let present = |client: &mut TestClient, i: usize| {
        let feedback = client.request_feedback(&window.surface);
        window.surface.attach(Some(&buffers[i % 2]), 0, 0);
        window.surface.damage_buffer(0, 0, width as i32, height as i32);
        client.commit_and_wait_frame(&window.surface).unwrap();
        client.wait_for_feedback(&[feedback]).unwrap().remove(0)
    };
    // The first frames may be composed while direct scanout sets in.
    let flags: Vec<u32> = (0..8)
        .filter_map(|i| match present(&mut client, i) {
            Presented::Presented { flags, .. } => Some(flags),
            Presented::Discarded => None,
        })
        .collect();
    assert!(compositor.log().contains("direct scanout: on"), "{}", compositor.log());
    let torn: Vec<&u32> = flags.iter().filter(|f| *f & ZERO_COPY != 0).collect();
    assert!(torn.len() >= 4, "most frames go on the plane: {flags:x?}");
    assert!(torn.iter().all(|f| *f & VSYNC == 0), "a flip not synced to a vblank says so: {flags:x?}");
    wait_on_crtc(&compositor, "drm-tearing", |shot| *shot == images[1]);

    // Withdrawn (from the next commit): flips at vblank again.
    control.destroy();
    let flags: Vec<u32> = (0..4)
        .filter_map(|i| match present(&mut client, i) {
            Presented::Presented { flags, .. } => Some(flags),
            Presented::Discarded => None,
        })
        .collect();
    assert!(
        !flags.is_empty() && flags.iter().all(|f| *f & (VSYNC | ZERO_COPY) == VSYNC | ZERO_COPY),
        "scanned out at vblank: {flags:x?}"
    );
    assert!(!compositor.log().contains("its frames flip at vblank"), "no flip fell back: {}", compositor.log());
    drop(memory);
}

/// A timeline syncobj made through the card node, as a client's GPU driver would, and
/// its fd to hand to the compositor.
fn new_timeline(card: &Card) -> (smithay::reexports::drm::control::syncobj::Handle, std::os::fd::OwnedFd) {
    use smithay::reexports::drm::control::Device as _;
    let handle = card.create_syncobj(false).expect("DRM_IOCTL_SYNCOBJ_CREATE (vkms patched with syncobjs)");
    let fd = card.syncobj_to_fd(handle, false).expect("DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD");
    (handle, fd)
}

/// The last point signalled on a timeline.
fn signalled_point(card: &Card, timeline: smithay::reexports::drm::control::syncobj::Handle) -> u64 {
    use smithay::reexports::drm::control::Device as _;
    let mut points = [0u64];
    card.syncobj_timeline_query(&[timeline], &mut points, false).expect("DRM_IOCTL_SYNCOBJ_QUERY");
    points[0]
}

fn signal_point(card: &Card, timeline: smithay::reexports::drm::control::syncobj::Handle, point: u64) {
    use smithay::reexports::drm::control::Device as _;
    card.syncobj_timeline_signal(&[timeline], &[point]).expect("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL");
}

fn open_card() -> Card {
    Card(std::fs::OpenOptions::new().read(true).write(true).open(CARD).unwrap())
}

/// Explicit sync: a commit whose acquire point is not signalled yet is held (the
/// surface keeps its buffer, and another client's commit gets its frame callback
/// meanwhile); once the point is signalled the buffer shows; the buffer it replaced
/// gets its release point signalled once nothing reads it, and the one on screen not.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn an_explicitly_synced_buffer_shows_once_its_acquire_point_is_signalled_and_is_released_after() {
    let compositor = start_drm_composing();
    assert!(
        compositor.log().contains("explicit sync (wp_linux_drm_syncobj_manager_v1): offered"),
        "{}",
        compositor.log()
    );
    let card = open_card();
    let (acquire, acquire_fd) = new_timeline(&card);
    let (release, release_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 32);
    let images = [Image::solid(32, 32, Rgba::opaque(220, 30, 30)), Image::solid(32, 32, Rgba::opaque(30, 30, 220))];
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let window = client.create_window("explicit").unwrap();
    let sync = client.explicit_sync(&window.surface, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    let commit = |client: &mut TestClient, buffer: &WlBuffer| {
        window.surface.attach(Some(buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 32, 32);
        window.surface.commit();
        client.roundtrip().unwrap();
    };

    // The first buffer, its acquire point signalled before the commit: shown.
    signal_point(&card, acquire, 1);
    sync.set_points(1, 1);
    commit(&mut client, &buffers[0]);
    wait_on_crtc(&compositor, "drm-explicit-first", |shot| shot.crop(x, y, 32, 32) == images[0]);

    // The second, its point not signalled: held. The first stays on screen, unreleased.
    sync.set_points(2, 2);
    commit(&mut client, &buffers[1]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(crtc_shot(&compositor).crop(x, y, 32, 32), images[0], "nothing shows before its acquire point");
    assert_eq!(signalled_point(&card, release), 0, "the buffer on screen is not released");
    assert_eq!(import_stats(&compositor).get("held_acquires"), Some(&1));
    let mut other = compositor.connect().unwrap();
    let other_window = other.create_window("bystander").unwrap();
    let grey = other.create_buffer(&Image::solid(16, 16, Rgba::opaque(90, 90, 90)), Format32::Xrgb8888, 64, 0xff);
    other.present(&other_window.surface, &grey.unwrap()).expect("another client goes on meanwhile");

    // (The bystander's window lies over the middle of ours: its corner shows.)
    signal_point(&card, acquire, 2);
    let corner = images[1].crop(0, 0, 8, 8);
    wait_on_crtc(&compositor, "drm-explicit-second", |shot| shot.crop(x, y, 8, 8) == corner);
    let deadline = Instant::now() + LIMIT;
    while signalled_point(&card, release) < 1 {
        assert!(Instant::now() < deadline, "the replaced buffer was never released");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(signalled_point(&card, release), 1, "the buffer on screen is not released");
    drop(memory);
}

/// The protocol's errors, each to its own client: a second syncobj surface for one
/// wl_surface, a wl_shm buffer with points, a dma-buf without an acquire point. A
/// client gone with a commit still held for its point leaves the compositor serving.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn explicit_sync_errors_are_the_protocols_own() {
    let compositor = start_drm_composing();
    let card = open_card();
    let fresh = || new_timeline(&card);

    let mut client = compositor.connect().unwrap();
    let window = client.create_window("twice").unwrap();
    let manager = client.bind_syncobj().unwrap();
    let _first = manager.get_surface(&window.surface, &client.qh, ());
    let _second = manager.get_surface(&window.surface, &client.qh, ());
    let error = client.expect_protocol_error().unwrap();
    assert_eq!(error, ("wp_linux_drm_syncobj_manager_v1".to_string(), 0), "surface_exists");

    let mut client = compositor.connect().unwrap();
    let window = client.create_window("shm").unwrap();
    let ((_, a), (_, r)) = (fresh(), fresh());
    let sync = client.explicit_sync(&window.surface, a.as_fd(), r.as_fd()).unwrap();
    let shm = client.create_buffer(&Image::solid(16, 16, Rgba::opaque(9, 9, 9)), Format32::Xrgb8888, 64, 0xff).unwrap();
    sync.set_points(1, 1);
    window.surface.attach(Some(&shm.buffer), 0, 0);
    window.surface.commit();
    let error = client.expect_protocol_error().unwrap();
    assert_eq!(error, ("wp_linux_drm_syncobj_surface_v1".to_string(), 2), "unsupported_buffer");

    let mut client = compositor.connect().unwrap();
    let window = client.create_window("no-acquire").unwrap();
    let ((_, a), (_, r)) = (fresh(), fresh());
    let _sync = client.explicit_sync(&window.surface, a.as_fd(), r.as_fd()).unwrap();
    let (memory, fd) = udmabuf_of(&Image::solid(32, 32, Rgba::opaque(9, 9, 9)));
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), 32 * 4, (32, 32));
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.commit();
    let error = client.expect_protocol_error().unwrap();
    assert_eq!(error, ("wp_linux_drm_syncobj_surface_v1".to_string(), 4), "no_acquire_point");

    // Gone with a commit held for a point nobody will signal: the eventfd that watched
    // it goes with the client.
    let eventfds = || open_fds(compositor.pid()).iter().filter(|f| f.contains("eventfd")).count();
    let before = eventfds();
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("gone").unwrap();
    let ((_, a), (_, r)) = (fresh(), fresh());
    let sync = client.explicit_sync(&window.surface, a.as_fd(), r.as_fd()).unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), 32 * 4, (32, 32));
    sync.set_points(1, 1);
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.commit();
    client.roundtrip().unwrap();
    assert_eq!(eventfds(), before + 1, "the held commit's point is watched: {:?}", open_fds(compositor.pid()));
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(eventfds(), before, "its watch went with the client: {:?}", open_fds(compositor.pid()));
    let mut late = compositor.connect().expect("the compositor serves on");
    late.roundtrip().unwrap();
    drop(memory);
}

/// One client, two surfaces: one waits on implicit sync (a vgem fence), the other on
/// an explicit acquire point. Each commit waits for its own alone: the implicit one
/// shows once its writes finish while the explicit one is still held, which shows once
/// its point is signalled.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_client_mixing_implicit_and_explicit_sync_on_two_surfaces_waits_for_each_alone() {
    let compositor = start_drm_composing();
    let card = open_card();
    let (acquire, acquire_fd) = new_timeline(&card);
    let (_release, release_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 16);
    let (red, green, blue) = (Rgba::opaque(220, 30, 30), Rgba::opaque(30, 200, 30), Rgba::opaque(30, 30, 220));

    // Implicit: a vgem window on the first output, showing red.
    let first = vgem_buffer(red);
    let (_first_buffer, implicit) = small_dmabuf_window(&compositor, &mut client, first.dmabuf.as_fd(), first.pitch());
    wait_on_crtc(&compositor, "drm-mixed-red", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));

    // Explicit: fullscreen on the second output, its acquire point not signalled.
    let second_output = outputs(&mut client).remove(1).0;
    let explicit = client.create_window("explicit").unwrap();
    let (w, h) = client.set_fullscreen_on(&explicit, &second_output).unwrap();
    let (w, h) = (w as u32, h as u32);
    let sync = client.explicit_sync(&explicit.surface, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    let image = Image::solid(w, h, blue);
    let (pages, fd) = udmabuf_of(&image);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), w * 4, (w, h));
    sync.set_points(1, 1);
    explicit.surface.attach(Some(&buffer), 0, 0);
    explicit.surface.damage_buffer(0, 0, w as i32, h as i32);
    explicit.surface.commit();

    // Implicit: the next buffer's writes still pending.
    let second = vgem_buffer(green);
    let fence = second.attach_write_fence().unwrap();
    let second_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, second.dmabuf.as_fd(), second.pitch(), (32, 16));
    implicit.surface.attach(Some(&second_buffer), 0, 0);
    implicit.surface.damage_buffer(0, 0, 32, 16);
    implicit.surface.commit();
    client.roundtrip().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(crtc_shot(&compositor).crop(x, y, 32, 16), Image::solid(32, 16, red), "green's writes are pending");

    // Its writes finish: green shows, while the explicit commit is still held.
    second.signal(fence).unwrap();
    wait_on_crtc(&compositor, "drm-mixed-green", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, green));
    let on_second = kms_grab(&compositor, &["--crtc", "1"]).0;
    assert_ne!(on_second, image, "the explicit buffer shows before its acquire point");

    signal_point(&card, acquire, 1);
    wait_on_crtc_at(&compositor, 1, "drm-mixed-blue", |shot| *shot == image);
    let stats = import_stats(&compositor);
    assert_eq!((stats.get("held_commits"), stats.get("held_acquires")), (Some(&1), Some(&1)), "{stats:?}");
    drop(pages);
}

/// A synchronised subsurface's commit waits for its acquire point, and takes its
/// parent's next commit with it; destroyed before the point is signalled, it lets the
/// parent's commit go on rather than hold it for ever.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_parents_commit_waiting_on_a_destroyed_subsurfaces_acquire_point_goes_on() {
    let compositor = start_drm_composing();
    let card = open_card();
    let (_acquire, acquire_fd) = new_timeline(&card);
    let (_release, release_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 32);
    let (red, green) = (Rgba::opaque(220, 30, 30), Rgba::opaque(30, 200, 30));
    let images =
        [Image::solid(32, 32, red), Image::solid(32, 32, green), Image::solid(32, 32, Rgba::opaque(0, 0, 200))];
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let window = client.create_window("parent").unwrap();
    window.surface.attach(Some(&buffers[0]), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    // The corner the subsurface's first (8x8) buffer leaves uncovered.
    let corner = |shot: &Image| shot.crop(x + 24, y + 24, 8, 8);
    wait_on_crtc(&compositor, "drm-sub-parent", |shot| corner(shot) == Image::solid(8, 8, red));

    let grey = client.create_buffer(&Image::solid(8, 8, Rgba::opaque(90, 90, 90)), Format32::Xrgb8888, 32, 0xff);
    let grey = grey.unwrap();
    let (sub, subsurface) = client.create_subsurface(&window.surface, 0, 0, &grey);
    let sync = client.explicit_sync(&sub, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    sync.set_points(1, 1);
    sub.attach(Some(&buffers[2]), 0, 0);
    sub.damage_buffer(0, 0, 32, 32);
    sub.commit();
    // The parent's next commit applies the subsurface's with it: both wait for the point.
    window.surface.attach(Some(&buffers[1]), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 32);
    window.surface.commit();
    client.roundtrip().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(corner(&crtc_shot(&compositor)), Image::solid(8, 8, red), "the parent's commit waits with its child's");

    subsurface.destroy();
    sub.destroy();
    client.roundtrip().unwrap();
    wait_on_crtc(&compositor, "drm-sub-gone", |shot| corner(shot) == Image::solid(8, 8, green));
    drop(memory);
}

/// wp_linux_drm_syncobj_manager_v1.import_timeline
const IMPORT_TIMELINE: u16 = 2;

/// Each imported timeline holds its syncobj's fd: past `--max-client-fds`, the client
/// gets `no_memory`, and the compositor serves on.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn imported_timelines_count_against_the_clients_fds() {
    let compositor = Compositor::start_drm(&axiom_binary(), &["--no-direct-scanout", "--max-client-fds", "8"])
        .expect("axiom --backend drm starts");
    let card = open_card();
    let timelines: Vec<_> = (0..12).map(|_| new_timeline(&card)).collect();
    crate::common::expect_no_memory(&compositor, "12 timelines over a cap of 8 fds", |client| {
        let manager = client.bind("wp_linux_drm_syncobj_manager_v1", 1)?;
        for (_, fd) in &timelines {
            let id = client.new_id();
            client.send(manager, IMPORT_TIMELINE, &[Arg::Uint(id), Arg::Fd(fd.as_fd())])?;
        }
        Ok(())
    });
    assert!(compositor.log().contains("exceeded its resource limit"), "{}", compositor.log());
    let mut late = compositor.connect().expect("the compositor serves on");
    late.roundtrip().unwrap();
}

/// smithay imports each timeline as a syncobj handle it never destroys: a client
/// importing and destroying timelines by the hundred must not grow the handles the
/// compositor holds (they go with the DRM file they live in, replaced every
/// `ROTATE_AFTER` destroyed timelines). A timeline live across those replacements
/// still holds commits and releases buffers; one destroyed while its release point is
/// owed (its buffer on screen) still gets that point signalled after them.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn timelines_imported_and_destroyed_by_the_hundred_leave_no_handles_behind() {
    use axiom::handlers::timeline_files::ROTATE_AFTER;
    const CYCLES: usize = 5 * ROTATE_AFTER;
    let compositor = start_drm_composing();
    let card = open_card();
    let (acquire, acquire_fd) = new_timeline(&card);
    let (release, release_fd) = new_timeline(&card);
    let (owed, owed_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 32);
    let colours = [Rgba::opaque(220, 30, 30), Rgba::opaque(30, 200, 30), Rgba::opaque(30, 30, 220)];
    let images = colours.map(|colour| Image::solid(32, 32, colour));
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let window = client.create_window("timelines").unwrap();
    let sync = client.explicit_sync(&window.surface, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    let manager = client.bind_syncobj().unwrap();
    let commit = |client: &mut TestClient, buffer: &WlBuffer| {
        window.surface.attach(Some(buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 32, 32);
        window.surface.commit();
        client.roundtrip().unwrap();
    };
    signal_point(&card, acquire, 2);
    sync.set_points(1, 1);
    commit(&mut client, &buffers[0]);
    // The second buffer's release point lies on a timeline whose object goes at once.
    let owed_timeline = manager.import_timeline(owed_fd.as_fd(), &client.qh, ());
    sync.surface.set_acquire_point(&sync.acquire, 0, 2);
    sync.surface.set_release_point(&owed_timeline, 0, 1);
    commit(&mut client, &buffers[1]);
    owed_timeline.destroy();
    wait_on_crtc(&compositor, "drm-timelines-owed", |shot| shot.crop(x, y, 32, 32) == images[1]);

    for _ in 0..CYCLES / 32 {
        let timelines: Vec<_> = (0..32).map(|_| new_timeline(&card)).collect();
        for (_, fd) in &timelines {
            manager.import_timeline(fd.as_fd(), &client.qh, ()).destroy();
        }
        client.roundtrip().unwrap();
    }
    assert_eq!(signalled_point(&card, owed), 0, "the buffer on screen is not released");

    // The live timeline, moved from file to file, still holds a commit for its point.
    sync.set_points(3, 2);
    commit(&mut client, &buffers[2]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(crtc_shot(&compositor).crop(x, y, 32, 32), images[1], "nothing shows before its acquire point");
    signal_point(&card, acquire, 3);
    wait_on_crtc(&compositor, "drm-timelines-live", |shot| shot.crop(x, y, 32, 32) == images[2]);
    let deadline = Instant::now() + LIMIT;
    while signalled_point(&card, owed) < 1 {
        assert!(Instant::now() < deadline, "a destroyed timeline's owed release point was never signalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(signalled_point(&card, release), 1, "the first buffer was released on the live timeline");
    // ... and signals a release point set after the moves.
    signal_point(&card, acquire, 4);
    sync.set_points(4, 3);
    commit(&mut client, &buffers[0]);
    wait_on_crtc(&compositor, "drm-timelines-again", |shot| shot.crop(x, y, 32, 32) == images[0]);
    let deadline = Instant::now() + LIMIT;
    while signalled_point(&card, release) < 2 {
        assert!(Instant::now() < deadline, "the live timeline's release point was never signalled after the moves");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Left: one file, holding the two live timelines and those destroyed since it took over.
    let bound = 2 + ROTATE_AFTER as u64;
    let deadline = Instant::now() + LIMIT;
    loop {
        let stats = import_stats(&compositor);
        let (files, handles) = (stats["timeline_files"], stats["timeline_handles"]);
        if files == 1 && handles <= bound {
            assert!(handles >= 2, "the live timelines' handles are counted: {handles}");
            break;
        }
        assert!(Instant::now() < deadline, "{files} timeline files with {handles} handles after {CYCLES} timelines");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(memory);
}

/// On KMS, wayland-info lists every synchronisation protocol Axiom has: explicit sync,
/// FIFO, commit timing, tearing control and presentation time (docs/SYNC.md).
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn wayland_info_on_kms_lists_every_synchronisation_protocol() {
    let compositor = start_drm();
    let output = compositor.client_command("wayland-info").output().expect("wayland-info must be installed");
    assert!(output.status.success(), "wayland-info failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    for name in [
        "wp_linux_drm_syncobj_manager_v1",
        "wp_fifo_manager_v1",
        "wp_commit_timing_manager_v1",
        "wp_tearing_control_manager_v1",
        "wp_presentation",
    ] {
        assert!(text.contains(&format!("interface: '{name}'")), "{name} in:\n{text}");
    }
}
