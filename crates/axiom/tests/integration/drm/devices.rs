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
fn a_mouse_shows_the_cursor_on_the_crtc_over_a_fullscreen_buffer_which_goes_back_on_the_plane_once_hidden() {
    use axiom_testclient::image::blend_premultiplied;
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
    assert!(compositor.wait_for_log("direct scanout: on", LIMIT), "{}", compositor.log());

    // A mouse moved: the arrow shows over the buffer, which is composed for it.
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
    let log = compositor.log();
    let off = log.lines().rfind(|l| l.contains("direct scanout: ")).unwrap_or_else(|| panic!("{log}"));
    assert!(off.contains("the cursor is composed over the output"), "{off}");

    // Hidden by the client: the buffer goes back on the primary plane as it is.
    pointer.set_cursor(serial, None, 0, 0);
    client.roundtrip().unwrap();
    wait_on_crtc(&compositor, "cursor-hidden", |shot| *shot == pattern);
    let on = wait_for_decision(&compositor, "direct scanout: ", "direct scanout: on");
    let (_, fb) = crtc_shot_and_fb(&compositor);
    assert!(on.contains(&format!("(fb {fb})")), "the CRTC shows the client's framebuffer {fb}: {on}");
    assert!(!compositor.log().contains("wgpu error"), "{}", compositor.log());
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
fn a_window_on_an_overlay_plane_is_composed_only_while_the_cursor_is_over_it() {
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

    // Over the window: composed with the cursor above it.
    let deadline = Instant::now() + LIMIT;
    while client.pointer_events().entered.is_none() {
        assert!(Instant::now() < deadline, "the pointer never reached the window");
        mouse.move_by(20, 15).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        client.roundtrip().unwrap();
    }
    wait_for_decision(&compositor, "overlay plane: ", "off: the cursor is over the window");
    assert!(!compositor.log().contains("wgpu error"), "{}", compositor.log());
}
