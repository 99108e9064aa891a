//! The nested backend (`--backend winit`) on Xvfb: what the compositor composes
//! reaches the X server's screen pixel for pixel, the output follows the
//! window's size, and X input reaches Wayland clients.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axiom_testclient::{Compositor, Image};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _, ImageFormat, InputFocus, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use crate::common::{assert_image, axiom_binary, centred, non_background, BACKGROUND};
use crate::third_party::{spawn, wait_exit, window_rect};

pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// An X server of our own, on the first free display.
pub(crate) struct Xvfb {
    child: Child,
    display: String,
    pub(crate) conn: RustConnection,
    pub(crate) root: Window,
}

impl Xvfb {
    pub(crate) fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb must be installed (scripts/setup installs it)");
        // With -displayfd, Xvfb picks a free display and writes its number once it accepts clients.
        let mut number = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut number).unwrap();
        let display = format!(":{}", number.trim());
        let (conn, screen) = x11rb::connect(Some(&display)).expect("connect to Xvfb");
        let root = conn.setup().roots[screen].root;
        Self { child, display, conn, root }
    }

    /// The compositor's window: the only top-level window Xvfb has (no window manager runs).
    pub(crate) fn axiom_window(&self) -> (Window, i16, i16, u16, u16) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let children = self.conn.query_tree(self.root).unwrap().reply().unwrap().children;
            if let Some(&window) = children.last() {
                let geometry = self.conn.get_geometry(window).unwrap().reply().unwrap();
                let at = self.conn.translate_coordinates(window, self.root, 0, 0).unwrap().reply().unwrap();
                return (window, at.dst_x, at.dst_y, geometry.width, geometry.height);
            }
            assert!(Instant::now() < deadline, "axiom opened no X window");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The screen's pixels in a rectangle of root coordinates.
    fn screenshot(&self, x: i16, y: i16, width: u16, height: u16) -> Image {
        let reply =
            self.conn.get_image(ImageFormat::Z_PIXMAP, self.root, x, y, width, height, !0).unwrap().reply().unwrap();
        assert_eq!((reply.depth, reply.data.len()), (24, width as usize * height as usize * 4), "32-bit pixels");
        // Depth 24 in 32-bit pixels, least significant byte first: B, G, R, unused = XRGB8888.
        Image::from_xrgb8888(width.into(), height.into(), width as usize * 4, &reply.data)
    }

    /// The compositor's window as shown on the screen.
    pub(crate) fn window_shot(&self) -> Image {
        let (_, x, y, width, height) = self.axiom_window();
        self.screenshot(x, y, width, height)
    }

    /// Moves the X pointer to (x, y) of the root window through XTEST.
    pub(crate) fn move_pointer(&self, x: i16, y: i16) {
        const MOTION: u8 = 6;
        self.conn.xtest_fake_input(MOTION, 0, 0, self.root, x, y, 0).unwrap();
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }

    /// Sends a key press and release through XTEST (`code`: Linux input event code).
    fn type_key(&self, code: u8) {
        const KEY_PRESS: u8 = 2;
        const KEY_RELEASE: u8 = 3;
        for kind in [KEY_PRESS, KEY_RELEASE] {
            // The X server's keycodes are evdev codes plus 8.
            self.conn.xtest_fake_input(kind, code + 8, 0, self.root, 0, 0, 0).unwrap();
        }
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_nested(xvfb: &Xvfb, width: u32, height: u32) -> Compositor {
    Compositor::start_nested(&axiom_binary(), width, height, &xvfb.display).expect("start axiom --backend winit")
}

/// Waits until the window on the X screen passes `check`, or fails with the last shot saved.
pub(crate) fn wait_for_screen(xvfb: &Xvfb, what: &str, mut check: impl FnMut(&Image) -> bool) -> Image {
    let deadline = Instant::now() + LIMIT;
    loop {
        let shot = xvfb.window_shot();
        if check(&shot) {
            return shot;
        }
        if Instant::now() > deadline {
            panic!("{what}: not on the X screen (saved {})", crate::common::save_png(&shot, what));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nested_window_shows_the_composed_output_pixel_for_pixel() {
    let xvfb = Xvfb::start();
    let compositor = start_nested(&xvfb, 320, 240);
    assert!(compositor.log().contains("nested output ready"), "{}", compositor.log());
    let (_, _, _, width, height) = xvfb.axiom_window();
    assert_eq!((width, height), (320, 240), "the window has the output's size");

    let mut client = compositor.connect().unwrap();
    let (_window, _buffer, pattern) = crate::common::show_pattern(&mut client, 200, 150);
    let composed = client.screenshot().unwrap();

    let (x, y) = centred(320, 240, 200, 150);
    let shown = wait_for_screen(&xvfb, "nested-pattern", |shot| shot.crop(x, y, 200, 150) == pattern);
    // The whole window, background included, is exactly what screencopy returns.
    assert_image(&shown, &composed, 0, "nested-vs-screencopy");
    assert_image(&shown.crop(x, y, 200, 150), &pattern, 0, "nested-pattern");
}

#[test]
fn weston_simple_shm_shows_on_the_x_screen() {
    let xvfb = Xvfb::start();
    let compositor = start_nested(&xvfb, 400, 300);
    let mut child = spawn(&compositor, "weston-simple-shm", &[]);
    let (x, y, w, h) = window_rect((400, 300), (250, 250));
    // Before the first present the window is black, which is not the background either.
    let shot = wait_for_screen(&xvfb, "nested-weston-simple-shm", |shot| {
        shot.pixel(0, 0) == BACKGROUND && non_background(shot, x, y, w, h) >= 250 * 250 / 2
    });
    // Around the client: only the compositor's background.
    let outside = (0..300).flat_map(|row| (0..400).map(move |col| (col, row)));
    let stray = outside
        .filter(|&(col, row)| !(x..x + w).contains(&col) || !(y..y + h).contains(&row))
        .filter(|&(col, row)| shot.pixel(col, row) != BACKGROUND)
        .count();
    assert_eq!(
        stray,
        0,
        "pixels outside weston-simple-shm's window (saved {})",
        crate::common::save_png(&shot, "nested-weston-outside")
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn resizing_the_window_resizes_the_output() {
    let xvfb = Xvfb::start();
    let compositor = start_nested(&xvfb, 320, 240);
    let mut client = compositor.connect().unwrap();
    client.roundtrip().unwrap();
    assert_eq!(client.output_size(), Some((320, 240)));

    let (window, ..) = xvfb.axiom_window();
    xvfb.conn.configure_window(window, &ConfigureWindowAux::new().width(480).height(360)).unwrap();
    xvfb.conn.get_input_focus().unwrap().reply().unwrap();
    let deadline = Instant::now() + LIMIT;
    while client.output_size() != Some((480, 360)) {
        assert!(Instant::now() < deadline, "no wl_output mode 480x360: {:?}", client.output_size());
        std::thread::sleep(Duration::from_millis(20));
        client.roundtrip().unwrap();
    }

    let (_window, _buffer, pattern) = crate::common::show_pattern(&mut client, 64, 48);
    let (x, y) = centred(480, 360, 64, 48);
    let shown = wait_for_screen(&xvfb, "nested-resized", |shot| {
        shot.width == 480 && shot.height == 360 && shot.crop(x, y, 64, 48) == pattern
    });
    assert_image(&shown, &client.screenshot().unwrap(), 0, "nested-resized-vs-screencopy");
}

#[test]
fn keys_typed_into_the_window_reach_foot() {
    let xvfb = Xvfb::start();
    let compositor = start_nested(&xvfb, 640, 480);
    let marker = compositor.runtime_dir.join("typed");
    let script = format!("read line; printf %s \"$line\" > '{}'", marker.display());
    let mut foot = spawn(&compositor, "foot", &["sh", "-c", &script]);
    // foot is focused as the newest window once mapped; keys sent before would be lost.
    assert!(compositor.wait_for_log("app_id=Some(\"foot\")", LIMIT), "foot never mapped\n{}", compositor.log());

    // No window manager runs: give the window the X keyboard focus as one would.
    let (window, x, y, ..) = xvfb.axiom_window();
    xvfb.conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME).unwrap();
    const MOTION: u8 = 6;
    xvfb.conn.xtest_fake_input(MOTION, 0, 0, xvfb.root, x + 100, y + 100, 0).unwrap();
    const KEY_O: u8 = 24;
    const KEY_K: u8 = 37;
    const KEY_ENTER: u8 = 28;
    for key in [KEY_O, KEY_K, KEY_ENTER] {
        xvfb.type_key(key);
    }
    let status = wait_exit(&mut foot, LIMIT).expect("foot exits once its shell has read the line");
    assert!(status.success(), "foot exited with {status}\n{}", compositor.log());
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default(), "ok");
}
