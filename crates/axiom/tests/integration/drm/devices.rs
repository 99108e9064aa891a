//! The devices under the compositor: connectors plugged and unplugged, the display
//! device going away and coming back, and input devices through libinput.

use super::*;

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

/// Where a shot differs from `under`: the bounding box's top-left corner, if anywhere.
fn first_difference(shot: &Image, under: &Image) -> Option<(u32, u32)> {
    let differs = |x: u32, y: u32| shot.pixel(x, y) != under.pixel(x, y);
    let points: Vec<(u32, u32)> =
        (0..shot.height).flat_map(|y| (0..shot.width).map(move |x| (x, y))).filter(|&(x, y)| differs(x, y)).collect();
    Some((points.iter().map(|p| p.0).min()?, points.iter().map(|p| p.1).min()?))
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_mouse_shows_the_cursor_on_the_cursor_plane_over_a_fullscreen_buffer_which_stays_on_the_primary_plane() {
    use axiom_testclient::image::{blend_premultiplied, Format32};
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let window = client.create_window("fullscreen").unwrap();
    client.set_fullscreen(&window).unwrap();
    let pattern = test_pattern(width, height);
    let (_memory, fd) = udmabuf_of(&pattern);
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), width * 4, (width, height));
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, width as i32, height as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    wait_on_crtc(&compositor, "cursor-before", |shot| *shot == pattern);
    let on = wait_for_decision(&compositor, "direct scanout: ", "direct scanout: on");
    let (plane_w, plane_h) = cursor_plane_size(&compositor);

    // A mouse moved: the arrow shows on the cursor plane, and the client's buffer stays
    // on the primary plane under it.
    let pointer = client.pointer().unwrap();
    let mut mouse = axiom_testclient::uinput::Mouse::new("axiom test mouse").expect("uinput mouse");
    assert!(compositor.wait_for_log("input device added: axiom test mouse", LIMIT), "{}", compositor.log());
    mouse.move_by(40, 30).unwrap();
    let serial = client.wait_pointer_on(&window.surface).unwrap();
    let (aw, ah) = axiom::render::cursor::ARROW_SIZE;
    let arrow = axiom::render::cursor::arrow_pixels();
    let with_arrow = |(x, y): (u32, u32)| {
        Image::new(width, height, |px, py| {
            let inside = (x..x + aw).contains(&px) && (y..y + ah).contains(&py);
            match inside {
                true => {
                    let [b, g, r, a] = arrow[((py - y) * aw + (px - x)) as usize];
                    blend_premultiplied(Rgba(r, g, b, a), pattern.pixel(px, py))
                }
                false => pattern.pixel(px, py),
            }
        })
    };
    let shot = wait_on_crtc(&compositor, "cursor-arrow", |shot| {
        first_difference(shot, &pattern).is_some_and(|at| *shot == with_arrow(at))
    });
    let at = first_difference(&shot, &pattern).unwrap();
    let (px, py) = client.pointer_events().position;
    assert_eq!((px.round(), py.round()), (f64::from(at.0), f64::from(at.1)), "the tip is at the pointer");
    let (primary, planes) = kms_grab(&compositor, &["--no-overlays"]);
    assert_eq!(primary, pattern, "the primary plane alone has no cursor");
    let fb = planes.split_whitespace().find_map(|w| w.strip_prefix("fb=")).unwrap();
    assert!(on.contains(&format!("(fb {fb})")), "the primary plane still shows the client's framebuffer {fb}: {on}");
    let (_, planes) = kms_grab(&compositor, &[]);
    let cursor = planes.lines().find(|l| l.starts_with("cursor plane=")).unwrap_or_else(|| panic!("{planes}"));
    assert!(cursor.ends_with(&format!("x={} y={} {plane_w}x{plane_h}", at.0, at.1)), "{cursor}");
    let last = compositor.log().lines().rfind(|l| l.contains("direct scanout: ")).unwrap_or_default().to_string();
    assert!(last.contains("direct scanout: on"), "never composed for the cursor: {last}");
    // Moving the pointer moves the plane, and paints nothing.
    // Once, or twice where the client's pointer focus came between (the cursor set again).
    let at = every_scanout_buffer_painted(&compositor, &mut mouse, (at.0 as i32, at.1 as i32));
    client.roundtrip().unwrap();
    let (px, py) = client.pointer_events().position;
    let before = settled_stats(&compositor, "cursor_plane_paints");
    assert!((1..=2).contains(&before["cursor_plane_paints"]), "{before:?}");
    let moved = cursor_plane_moved_by(&compositor, &mut mouse, 0, at, (7, 5));
    let (px, py) = wait_pointer_moved(&mut client, (px, py));
    assert_eq!((px.round() as i32, py.round() as i32), moved, "the plane is at the pointer");
    let after = import_stats(&compositor);
    for counter in ["cursor_plane_paints", "scanout_paints"] {
        assert_eq!(after[counter], before[counter], "{counter}: {after:?}");
    }
    let at = (moved.0 as u32, moved.1 as u32);

    // A cursor wider than the plane: composed over the buffer, which leaves the primary plane.
    let (big_w, big_h) = (plane_w + 16, 8);
    let green = Rgba::opaque(0, 255, 0);
    let big = client.create_buffer(&Image::solid(big_w, big_h, green), Format32::Argb8888, big_w as usize * 4, 0xff);
    let big = big.unwrap();
    let surface = client.compositor.create_surface(&client.qh, ());
    surface.attach(Some(&big.buffer), 0, 0);
    surface.damage_buffer(0, 0, big_w as i32, big_h as i32);
    surface.commit();
    pointer.set_cursor(serial, Some(&surface), 0, 0);
    client.roundtrip().unwrap();
    let with_big = Image::new(width, height, |x, y| {
        let inside = (at.0..at.0 + big_w).contains(&x) && (at.1..at.1 + big_h).contains(&y);
        if inside {
            green
        } else {
            pattern.pixel(x, y)
        }
    });
    wait_on_crtc(&compositor, "cursor-too-large", |shot| *shot == with_big);
    wait_for_decision(&compositor, "direct scanout: ", "the cursor is composed over the output");
    let (_, planes) = kms_grab(&compositor, &[]);
    assert!(!planes.contains("cursor plane="), "the cursor plane is off: {planes}");

    // Hidden by the client: the buffer goes back on the primary plane as it is.
    pointer.set_cursor(serial, None, 0, 0);
    client.roundtrip().unwrap();
    wait_on_crtc(&compositor, "cursor-hidden", |shot| *shot == pattern);
    let on = wait_for_decision(&compositor, "direct scanout: ", "direct scanout: on");
    let (_, fb) = crtc_shot_and_fb(&compositor);
    assert!(on.contains(&format!("(fb {fb})")), "the CRTC shows the client's framebuffer {fb}: {on}");
    assert!(!compositor.log().contains("wgpu error"), "{}", compositor.log());
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn each_output_shows_its_part_of_the_cursor_on_its_own_cursor_plane() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    assert_eq!(output_size(&mut client), (1024, 768), "two 1024x768 outputs side by side");
    let mut mouse = axiom_testclient::uinput::Mouse::new("axiom test mouse").expect("uinput mouse");
    assert!(compositor.wait_for_log("input device added: axiom test mouse", LIMIT), "{}", compositor.log());
    let arrow_at = |at: (i32, i32)| arrow_over_background((1024, 768), at);

    // At the far right: on the second output's plane, at its last column; the first
    // output's plane is off.
    mouse.move_by(10000, 100).unwrap();
    let right = wait_for(|| cursor_plane_at(&compositor, 1).filter(|at| at.0 == 1023));
    assert_eq!(cursor_plane_at(&compositor, 0), None, "the cursor is not on the first output");
    wait_on_crtc_at(&compositor, 1, "cursor-second-output", |shot| *shot == arrow_at(right));
    wait_on_crtc_at(&compositor, 0, "cursor-not-on-first", |shot| *shot == arrow_at((-100, -100)));

    // At the far left: on the first output's plane; the second's is off.
    mouse.move_by(-10000, 0).unwrap();
    let left = wait_for(|| cursor_plane_at(&compositor, 0).filter(|at| at.0 == 0));
    assert_eq!(left.1, right.1, "moved along a row");
    wait_for(|| cursor_plane_at(&compositor, 1).is_none().then_some(()));
    wait_on_crtc_at(&compositor, 0, "cursor-first-output", |shot| *shot == arrow_at(left));

    // Across the edge between them (the tip in the first output's last 11 columns):
    // each output's plane shows its part of the arrow.
    let mut at = left;
    for _ in 0..60 {
        if (1013..1024).contains(&at.0) {
            break;
        }
        // Halved, as acceleration may scale a move.
        let step = ((1018 - at.0) / 2).clamp(-400, 400);
        mouse.move_by(if step == 0 { (1018 - at.0).signum() } else { step }, 0).unwrap();
        // A small move may round to the same pixel: a second with no change is as far as it went.
        let moved_by = Instant::now() + Duration::from_secs(1);
        let on_canvas = || {
            let on_second = || cursor_plane_at(&compositor, 1).map(|(x, y)| (x + 1024, y));
            cursor_plane_at(&compositor, 0).or_else(on_second)
        };
        at = wait_for(|| on_canvas().filter(|&now| now != at || Instant::now() > moved_by));
    }
    assert!((1013..1024).contains(&at.0), "the pointer never reached the edge: {at:?}");
    // The second output's plane, left of its origin (moved at that output's own tick).
    wait_for(|| (cursor_plane_at(&compositor, 1) == Some((at.0 - 1024, at.1))).then_some(()));
    wait_on_crtc_at(&compositor, 0, "cursor-edge-first", |shot| *shot == arrow_at(at));
    wait_on_crtc_at(&compositor, 1, "cursor-edge-second", |shot| *shot == arrow_at((at.0 - 1024, at.1)));
    // Each output's plane was painted the arrow once, whatever the motions since.
    let stats = import_stats(&compositor);
    assert_eq!(stats["cursor_plane_paints"], 2, "{stats:?}");
    assert!(!compositor.log().contains("wgpu error"), "{}", compositor.log());
}

/// A `width` x `height` output of background with the arrow's tip at `at` (clipped).
fn arrow_over_background((width, height): (u32, u32), at: (i32, i32)) -> Image {
    let (aw, ah) = axiom::render::cursor::ARROW_SIZE;
    let arrow = axiom::render::cursor::arrow_pixels();
    Image::new(width, height, |x, y| {
        let (ax, ay) = (x as i32 - at.0, y as i32 - at.1);
        if (0..aw as i32).contains(&ax) && (0..ah as i32).contains(&ay) {
            let [b, g, r, a] = arrow[(ay as u32 * aw + ax as u32) as usize];
            axiom_testclient::image::blend_premultiplied(Rgba(r, g, b, a), BACKGROUND)
        } else {
            BACKGROUND
        }
    })
}

/// The stats once `counter` no longer changes (the same in two reads 300 ms apart).
fn settled_stats(compositor: &Compositor, counter: &str) -> std::collections::HashMap<String, u64> {
    let mut stats = import_stats(compositor);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        let now = import_stats(compositor);
        if now.get(counter) == stats.get(counter) {
            return now;
        }
        stats = now;
    }
    panic!("{counter} keeps changing: {stats:?}");
}

/// Polls `check` until it gives something (or the test's limit passes).
fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "never came");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where CRTC `index`'s cursor plane shows a buffer, if it shows one.
fn cursor_plane_at(compositor: &Compositor, index: usize) -> Option<(i32, i32)> {
    let (_, planes) = kms_grab(compositor, &["--crtc", &index.to_string()]);
    let line = planes.lines().find(|l| l.starts_with("cursor plane="))?;
    let value = |key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(key)?.parse().ok());
    Some((value("x=")?, value("y=")?))
}

/// Moves the mouse by `delta` (libinput may scale it: pointer acceleration) and waits
/// until CRTC `index`'s cursor plane leaves `from`: where it is then.
fn cursor_plane_moved_by(
    compositor: &Compositor,
    mouse: &mut axiom_testclient::uinput::Mouse,
    index: usize,
    from: (i32, i32),
    delta: (i32, i32),
) -> (i32, i32) {
    mouse.move_by(delta.0, delta.1).unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        match cursor_plane_at(compositor, index) {
            Some(at) if at != from => return at,
            at => assert!(Instant::now() < deadline, "the cursor plane stayed at {at:?}\n{}", compositor.log()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Moves the pointer to and fro (from CRTC 0's cursor plane at `at`) until each output
/// has flipped twice, so that both its scanout buffers were painted: a motion may be
/// composed at either output's clock, and the first paint of a buffer paints it all.
/// Where the cursor plane is then.
fn every_scanout_buffer_painted(
    compositor: &Compositor,
    mouse: &mut axiom_testclient::uinput::Mouse,
    mut at: (i32, i32),
) -> (i32, i32) {
    let deadline = Instant::now() + LIMIT;
    for delta in [(5, 3), (-5, -3)].into_iter().cycle() {
        let stats = import_stats(compositor);
        let flips = ["frames_Virtual-1", "frames_Virtual-2"].map(|output| stats.get(output).copied().unwrap_or(0));
        if flips.iter().all(|&n| n >= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "an output never flipped twice: {stats:?}");
        at = cursor_plane_moved_by(compositor, mouse, 0, at, delta);
    }
    at
}

/// The pointer's position on the client's surface once it is no longer `from`.
fn wait_pointer_moved(client: &mut TestClient, from: (f64, f64)) -> (f64, f64) {
    let deadline = Instant::now() + LIMIT;
    loop {
        client.roundtrip().unwrap();
        let at = client.pointer_events().position;
        if at != from {
            return at;
        }
        assert!(Instant::now() < deadline, "no motion event");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The size of the first output's cursor plane, as the compositor logged it.
fn cursor_plane_size(compositor: &Compositor) -> (u32, u32) {
    let what = "the cursor goes on its cursor plane (";
    assert!(compositor.wait_for_log(what, LIMIT), "{}", compositor.log());
    let log = compositor.log();
    let line = log.lines().find(|l| l.contains(what)).unwrap();
    let size = line.split(what).nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_default();
    let parsed = size.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    parsed.unwrap_or_else(|| panic!("no cursor plane size in {line}"))
}

/// The last log line with `kind` (a plane's decision: "direct scanout: ", "overlay
/// plane: "), waiting until it contains `want`.
fn wait_for_decision(compositor: &Compositor, kind: &str, want: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let log = compositor.log();
        let last = log.lines().rfind(|l| l.contains(kind)).unwrap_or_default().to_string();
        if last.contains(want) {
            return last;
        }
        assert!(Instant::now() < deadline, "the {kind:?} decision never became {want:?}: {last}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_window_on_an_overlay_plane_stays_there_under_the_cursor_on_the_cursor_plane() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 256, 128);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let top = client.create_window("top").unwrap();
    let pattern = test_pattern(256, 128);
    let (_memory, fd) = udmabuf_of(&pattern);
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), 256 * 4, (256, 128));
    top.surface.attach(Some(&buffer), 0, 0);
    top.surface.damage_buffer(0, 0, 256, 128);
    client.commit_and_wait_frame(&top.surface).unwrap();
    wait_for_decision(&compositor, "overlay plane: ", "overlay plane: on:");

    // The cursor in the top-left corner, away from the centred window: it stays on its plane.
    let mut mouse = axiom_testclient::uinput::Mouse::new("axiom test mouse").expect("uinput mouse");
    assert!(compositor.wait_for_log("input device added: axiom test mouse", LIMIT), "{}", compositor.log());
    let _pointer = client.pointer().unwrap();
    mouse.move_by(-10000, -10000).unwrap();
    let corner = wait_on_crtc(&compositor, "overlay-cursor-corner", |shot| shot.pixel(0, 0) == Rgba::opaque(0, 0, 0));
    assert_eq!(corner.pixel(1, 2), Rgba::opaque(255, 255, 255), "the arrow's tip is at the corner");
    client.roundtrip().unwrap();
    assert!(client.pointer_events().entered.is_none(), "the pointer is not on the window");
    wait_for_decision(&compositor, "overlay plane: ", "overlay plane: on:");
    // Captures of what the display shows (a plane included) leave the cursor out unless
    // asked to paint it.
    let plain = client.screenshot().unwrap();
    assert_eq!(plain.pixel(0, 0), BACKGROUND, "no cursor without overlay_cursor");
    assert_image(&plain.crop(x, y, 256, 128), &pattern, 0, "overlay-capture-without-cursor");
    let painted = client.screenshot_with_cursor().unwrap();
    assert_eq!((painted.pixel(0, 0), painted.pixel(1, 2)), (Rgba::opaque(0, 0, 0), Rgba::opaque(255, 255, 255)));
    assert_image(&painted.crop(x, y, 256, 128), &pattern, 0, "overlay-capture-with-cursor");

    // Over the window: the cursor plane shows the arrow above the overlay plane, and
    // the window stays on it.
    let deadline = Instant::now() + LIMIT;
    while client.pointer_events().entered.is_none() {
        assert!(Instant::now() < deadline, "the pointer never reached the window");
        mouse.move_by(20, 15).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        client.roundtrip().unwrap();
    }
    let (px, py) = client.pointer_events().position;
    let tip = (x + px.round() as u32, y + py.round() as u32);
    let shot = wait_on_crtc(&compositor, "overlay-cursor-over", |shot| {
        shot.pixel(tip.0, tip.1) == Rgba::opaque(0, 0, 0)
            && shot.pixel(tip.0 + 1, tip.1 + 2) == Rgba::opaque(255, 255, 255)
    });
    // Away from the arrow, the window's own pixels.
    assert_eq!(shot.pixel(x + 255, y + 127), pattern.pixel(255, 127));
    let (_, planes) = kms_grab(&compositor, &[]);
    assert!(planes.contains("overlay plane="), "the window is on its plane under the cursor: {planes}");
    assert!(planes.contains("cursor plane="), "{planes}");
    let last = compositor.log().lines().rfind(|l| l.contains("overlay plane: ")).unwrap_or_default().to_string();
    assert!(last.contains("overlay plane: on:"), "never composed for the cursor: {last}");
    // Moving the pointer over the window, or over the composed rest, moves the cursor
    // plane and paints neither the scanout buffers nor the cursor's.
    // First motions, so that each scanout buffer holds the scene as it is now (the
    // captures above composed the window into it and out again).
    let mut at = (tip.0 as i32, tip.1 as i32);
    for delta in [(6, 4), (-6, 4)] {
        at = cursor_plane_moved_by(&compositor, &mut mouse, 0, at, delta);
    }
    let mut at = every_scanout_buffer_painted(&compositor, &mut mouse, at);
    let before = import_stats(&compositor);
    for delta in [(-3, 2), (-300, -250)] {
        at = cursor_plane_moved_by(&compositor, &mut mouse, 0, at, delta);
    }
    let after = import_stats(&compositor);
    for counter in ["cursor_plane_paints", "scanout_paints"] {
        assert_eq!(after[counter], before[counter], "{counter}: {after:?}");
    }
    assert!(!compositor.log().contains("wgpu error"), "{}", compositor.log());
}
