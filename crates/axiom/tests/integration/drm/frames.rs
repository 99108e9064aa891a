//! What reaches the screen: composed frames and client buffers (shm, udmabuf, vgem,
//! a v4l2 camera's dma-bufs) on each CRTC, on the primary plane as they are or on an
//! overlay plane, and every buffer and import let go in every ordering. These run
//! with the Vulkan import ladder and again with the CPU step forced.

use super::*;

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
        // GBM allocates them (Mesa's kms_swrast drives vkms), unless told to use dumb buffers.
        let kind = match log.contains("no GBM scanout buffers: AXIOM_SCANOUT_BUFFERS=dumb") {
            true => "on the GPU (dumb buffers shared with the renderer as dma-bufs)",
            false => "on the GPU (GBM buffers (LINEAR) imported by the renderer)",
        };
        assert_eq!(log.matches(kind).count(), outputs, "{kind}:\n{log}");
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
fn dumb_buffers_shared_with_the_renderer_scan_out_exactly_the_composed_frame_without_gbm() {
    let binary = axiom_binary();
    let env = [("AXIOM_SCANOUT_BUFFERS", "dumb")];
    let compositor = Compositor::start_drm_with_env(&binary, &[], &env).expect("axiom --backend drm starts");
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (_window, _buffer, pattern) = crate::common::show_pattern(&mut client, 200, 150);
    let (x, y) = centred(width, height, 200, 150);
    let on_background = Image::new(width, height, |px, py| match (px.checked_sub(x), py.checked_sub(y)) {
        (Some(dx), Some(dy)) if dx < 200 && dy < 150 => pattern.pixel(dx, dy),
        _ => BACKGROUND,
    });
    wait_on_crtc(&compositor, "drm-dumb-pattern", |shot| *shot == on_background);
    assert!(!compositor.log().contains("GBM buffers ("), "{}", compositor.log());
    assert_composed_frames_reach_the_display_on_the_gpu(&compositor);
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

/// The scanout flag of a dma-buf feedback tranche.
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

/// Screencopy into a capture client's dma-buf. Where the renderer writes dma-bufs (step
/// 1 of the ladder live), the frame offers one (`linux_dmabuf`), and the scene is painted
/// straight into the client's udmabuf: exact pixels, no byte read back, the canvas not
/// painted; `copy_with_damage` reports what changed; a buffer destroyed while its capture
/// is on the GPU harms nothing; ext-image-copy-capture sessions of the output and of the
/// window write the same way.
/// With the CPU step forced no dma-buf is offered, and one sent anyway gets `failed`,
/// never a black frame.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_capture_into_a_dmabuf_is_painted_there_on_the_gpu() {
    let compositor = start_drm_composing();
    let mut client = compositor.connect().unwrap();
    let (w, h) = output_size(&mut client);
    let (window, _buffer, pattern) = crate::common::show_pattern(&mut client, 200, 150);
    let (x, y) = centred(w, h, 200, 150);
    wait_on_crtc(&compositor, "capture-shown", |shot| shot.crop(x, y, 200, 150) == pattern);
    let dmabuf = client.bind_dmabuf(4).unwrap();
    let red = Rgba::opaque(255, 0, 0);
    let (mut memory, fd) = udmabuf_of(&Image::solid(w, h, red));
    let target = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), w * 4, (w, h));
    let before = import_stats(&compositor);

    let (frame, offer) = client.start_capture().unwrap();
    if crate::common::dmabuf_vulkan_counter(&compositor) != Some("vulkan_image") {
        assert_eq!(offer.dmabuf, None, "no dma-buf offered where the renderer cannot write one");
        let failed = client.finish_capture(frame, &target, false);
        assert!(failed.is_err(), "a dma-buf sent anyway fails");
        assert!(client.screenshot().unwrap().crop(x, y, 200, 150) == pattern, "wl_shm captures go on");
        return;
    }
    assert_eq!(offer.dmabuf, Some((Fourcc::Xrgb8888 as u32, w, h)), "{}", compositor.log());
    client.finish_capture(frame, &target, false).unwrap();
    let shot = Image::from_xrgb8888(w, h, w as usize * 4, memory.bytes());
    assert_image(&shot.crop(x, y, 200, 150), &pattern, 0, "capture-dmabuf");
    assert_eq!(non_background(&shot, 0, 0, w, h), 200 * 150, "only the window, on the background");
    let after = import_stats(&compositor);
    assert_eq!(after.get("dmabuf_captures"), Some(&(before["dmabuf_captures"] + 1)), "{after:?}");
    for counter in ["readback_bytes", "canvas_paints", "loop_gpu_waits"] {
        assert_eq!(after.get(counter), before.get(counter), "{counter}: {after:?}");
    }

    // The window changes: a capture with damage gets it, and where it changed.
    let green = Rgba::opaque(0, 255, 0);
    let (frame, _) = client.start_capture().unwrap();
    let changed = client.create_buffer(&Image::solid(200, 150, green), Format32::Xrgb8888, 200 * 4, 0xff).unwrap();
    window.surface.attach(Some(&changed.buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 200, 150);
    window.surface.commit();
    let done = client.finish_capture(frame, &target, true).unwrap();
    let shot = Image::from_xrgb8888(w, h, w as usize * 4, memory.bytes());
    assert!(
        shot.crop(x, y, 200, 150) == Image::solid(200, 150, green),
        "{}",
        crate::common::save_png(&shot, "capture-damage")
    );
    assert!(!done.damage.is_empty(), "damage reported");
    for &(dx, dy, dw, dh) in &done.damage {
        assert!(dx >= x && dy >= y && dx + dw <= x + 200 && dy + dh <= y + 150, "{:?} within the window", done.damage);
    }

    // ext-image-copy-capture's output session writes the same way.
    let output = client.output.clone();
    let (session, constraints) = client.ext_capture_session(&output).unwrap();
    assert_eq!(constraints.dmabuf_formats.first(), Some(&(Fourcc::Xrgb8888 as u32, vec![0])), "{constraints:?}");
    memory.bytes_mut().fill(0);
    let before = import_stats(&compositor);
    let done = client.ext_capture_frame(&session, &target).unwrap();
    assert!(done.ready, "{done:?}");
    let shot = Image::from_xrgb8888(w, h, w as usize * 4, memory.bytes());
    assert!(
        shot.crop(x, y, 200, 150) == Image::solid(200, 150, green),
        "{}",
        crate::common::save_png(&shot, "ext-dmabuf")
    );
    let after = import_stats(&compositor);
    assert_eq!(after.get("dmabuf_captures"), Some(&(before["dmabuf_captures"] + 1)), "{after:?}");
    assert_eq!(after.get("readback_bytes"), before.get("readback_bytes"), "{after:?}");

    // A toplevel session paints the window alone straight into a dma-buf the same way
    // (rows 1024 bytes apart: a udmabuf is whole pages).
    let toplevel = client.foreign_toplevel("pattern").unwrap();
    let (session, constraints) = client.ext_toplevel_capture_session(&toplevel.handle).unwrap();
    assert_eq!(constraints.buffer_size, Some((200, 150)), "{constraints:?}");
    let (window_memory, window_fd) = udmabuf_of(&Image::solid(256, 160, red));
    let window_target = xrgb_buffer(&compositor, &mut client, &dmabuf, window_fd.as_fd(), 1024, (200, 150));
    let before = import_stats(&compositor);
    let done = client.ext_capture_frame(&session, &window_target).unwrap();
    assert!(done.ready, "{done:?}");
    let shot = Image::from_xrgb8888(200, 150, 1024, window_memory.bytes());
    assert!(shot == Image::solid(200, 150, green), "{}", crate::common::save_png(&shot, "toplevel-dmabuf"));
    let after = import_stats(&compositor);
    assert_eq!(after.get("dmabuf_captures"), Some(&(before["dmabuf_captures"] + 1)), "{after:?}");
    assert_eq!(after.get("readback_bytes"), before.get("readback_bytes"), "{after:?}");

    // Destroyed while its paint may still be on the GPU: the buffer and the frame.
    let (frame, _) = client.start_capture().unwrap();
    frame.copy(&target);
    target.destroy();
    frame.destroy();
    client.roundtrip().unwrap();
    drop((memory, fd));
    assert!(client.screenshot().unwrap().crop(x, y, 200, 150) == Image::solid(200, 150, green), "captures go on");
}
