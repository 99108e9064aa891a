//! linux-dmabuf protocol behaviour: every error the protocol names, imports
//! that fail softly, feedback, version 3 clients, stats, and hostile fds.

use std::os::fd::AsFd;
use std::time::Duration;

use axiom_testclient::dmabuf::{Created, Plane};
use axiom_testclient::image::Format32;
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Compositor, Image, Rgba, TestClient};
use smithay::backend::allocator::Fourcc;
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::Error as ParamsError;
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1;

use crate::common::{assert_image, centred, start};

const OUT_W: u32 = 160;
const OUT_H: u32 = 120;
const XRGB: u32 = Fourcc::Xrgb8888 as u32;
const NV12: u32 = Fourcc::Nv12 as u32;
const NO_FLAGS: wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::Flags =
    wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::Flags::empty();

fn plane(fd: std::os::fd::BorrowedFd<'_>, offset: u32, stride: u32) -> Plane<'_> {
    Plane { fd, offset, stride, modifier: 0 }
}

/// Runs `abuse` on a fresh client and returns the protocol error code it earned.
fn error_code(
    compositor: &Compositor,
    abuse: impl FnOnce(
        &mut TestClient,
        &wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
    ),
) -> u32 {
    let mut client = compositor.connect().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    abuse(&mut client, &dmabuf);
    let (interface, code) = client.expect_protocol_error().unwrap();
    assert_eq!(interface, "zwp_linux_buffer_params_v1");
    code
}

#[test]
fn every_params_error_is_the_one_the_protocol_names() {
    let compositor = start(OUT_W, OUT_H);
    let memory = SharedMemory::new(64 * 64 * 4).unwrap();
    let fd = memory.fd();
    type Case<'a> = (&'a str, ParamsError, Box<dyn Fn(&mut TestClient, &ZwpLinuxDmabufV1) + 'a>);
    let cases: Vec<Case> = vec![
        (
            "create twice",
            ParamsError::AlreadyUsed,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 256)]);
                p.create(64, 64, XRGB, NO_FLAGS);
                p.create(64, 64, XRGB, NO_FLAGS);
            }),
        ),
        (
            "add after create",
            ParamsError::AlreadyUsed,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 256)]);
                p.create(64, 64, XRGB, NO_FLAGS);
                p.add(fd, 1, 0, 256, 0, 0);
            }),
        ),
        (
            "plane index 4",
            ParamsError::PlaneIdx,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[]);
                p.add(fd, 4, 0, 256, 0, 0);
            }),
        ),
        (
            "plane set twice",
            ParamsError::PlaneSet,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 256)]);
                p.add(fd, 0, 0, 256, 0, 0);
            }),
        ),
        (
            "NV12 with one plane",
            ParamsError::Incomplete,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 64)]);
                p.create(64, 64, NV12, NO_FLAGS);
            }),
        ),
        (
            "XRGB with a hole at plane 0",
            ParamsError::Incomplete,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[]);
                p.add(fd, 1, 0, 256, 0, 0);
                p.create(64, 64, XRGB, NO_FLAGS);
            }),
        ),
        (
            "unknown fourcc",
            ParamsError::InvalidFormat,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 256)]);
                p.create(64, 64, 0x2020_2020, NO_FLAGS);
            }),
        ),
        (
            "tiled modifier",
            ParamsError::InvalidFormat,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[Plane { fd, offset: 0, stride: 256, modifier: 0x0100_0000_0000_0001 }]);
                p.create(64, 64, XRGB, NO_FLAGS);
            }),
        ),
        (
            "zero width",
            ParamsError::InvalidDimensions,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 256)]);
                p.create(0, 64, XRGB, NO_FLAGS);
            }),
        ),
        (
            "negative height (immed)",
            ParamsError::InvalidDimensions,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 256)]);
                c.dmabuf_create_immed(&p, 64, -1, XRGB);
            }),
        ),
        (
            "one row past the end",
            ParamsError::OutOfBounds,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, 256)]);
                p.create(64, 65, XRGB, NO_FLAGS);
            }),
        ),
        (
            "subsampled chroma plane past the end",
            ParamsError::OutOfBounds,
            Box::new(|c: &mut TestClient, d| {
                // Y fits exactly (64x64 at 0); CbCr (32 rows of 64 bytes) starts too late.
                let p = c.dmabuf_params(d, &[plane(fd, 0, 64), plane(fd, 64 * 64 * 4 - 64 * 31, 64)]);
                p.create(64, 64, NV12, NO_FLAGS);
            }),
        ),
        (
            "u32::MAX offset",
            ParamsError::OutOfBounds,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, u32::MAX, 256)]);
                p.create(64, 64, XRGB, NO_FLAGS);
            }),
        ),
        (
            "u32::MAX stride",
            ParamsError::OutOfBounds,
            Box::new(|c: &mut TestClient, d| {
                let p = c.dmabuf_params(d, &[plane(fd, 0, u32::MAX)]);
                c.dmabuf_create_immed(&p, i32::MAX, i32::MAX, XRGB);
            }),
        ),
    ];
    for (name, expected, abuse) in cases {
        let code = error_code(&compositor, |c, d| abuse(c, d));
        assert_eq!(code, expected as u32, "{name}: got error {code}, want {expected:?}");
    }
    let mut survivor = compositor.connect().unwrap();
    survivor.roundtrip().unwrap();
}

#[test]
fn imports_that_cannot_work_fail_softly_or_kill_with_invalid_wl_buffer() {
    let mut compositor = start(OUT_W, OUT_H);
    let (pipe_read, _pipe_write) = rustix::pipe::pipe().unwrap();
    let dev_null = std::fs::File::open("/dev/null").unwrap();
    let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let memory = SharedMemory::new(4096).unwrap();
    // A sparse memfd big enough for a buffer wider than any GPU's textures (16384 on
    // lavapipe, 32768 on NVIDIA).
    let huge = SharedMemory::new(1).unwrap();
    huge.truncate(70_000 * 4 * 2).unwrap();

    let mut client = compositor.connect().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let soft_failures: [(&str, Plane<'_>, i32, i32); 5] = [
        ("a pipe", plane(pipe_read.as_fd(), 0, 64), 16, 16),
        ("/dev/null", plane(dev_null.as_fd(), 0, 64), 16, 16),
        ("a socket", plane(socket.as_fd(), 0, 64), 16, 16),
        ("stride smaller than a row", plane(memory.fd(), 0, 8), 16, 16),
        ("larger than any texture", plane(huge.fd(), 0, 70_000 * 4), 70_000, 2),
    ];
    for (name, p, w, h) in soft_failures {
        let params = client.dmabuf_params(&dmabuf, &[p]);
        let outcome = client.dmabuf_create(&params, w, h, XRGB).unwrap();
        assert_eq!(outcome, Created::Failed, "{name}: create must answer failed");
    }
    // The same with create_immed kills the client with invalid_wl_buffer.
    let code = error_code(&compositor, |c, d| {
        let p = c.dmabuf_params(d, &[plane(pipe_read.as_fd(), 0, 64)]);
        c.dmabuf_create_immed(&p, 16, 16, XRGB);
    });
    assert_eq!(code, ParamsError::InvalidWlBuffer as u32);
    client.roundtrip().unwrap();
    assert!(compositor.is_running());
}

/// A window showing an XRGB8888 memfd dmabuf; returns the memory, the buffer and the window.
pub(crate) fn dmabuf_window(
    client: &mut TestClient,
    colour: Rgba,
    seal: bool,
) -> (SharedMemory, wayland_client::protocol::wl_buffer::WlBuffer, axiom_testclient::Window) {
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let bytes = Format32::Xrgb8888.encode_image(&Image::solid(32, 16, colour), 128, 0xff);
    let mut memory = SharedMemory::new(bytes.len()).unwrap();
    memory.bytes_mut().copy_from_slice(&bytes);
    if seal {
        axiom_testclient::dmabuf::seal_shrink(memory.fd()).unwrap();
    }
    let params = client.dmabuf_params(&dmabuf, &[plane(memory.fd(), 0, 128)]);
    let Created::Buffer(buffer) = client.dmabuf_create(&params, 32, 16, XRGB).unwrap() else { panic!("create failed") };
    let window = client.create_window("dmabuf").unwrap();
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    client.commit_and_wait_frame(&window.surface).unwrap();
    (memory, buffer, window)
}

#[test]
fn rewritten_bytes_show_after_a_recommit_damaged_rows_only() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (x, y) = centred(OUT_W, OUT_H, 32, 16);
    for seal in [false, true] {
        let red = Rgba::opaque(255, 0, 0);
        let blue = Rgba::opaque(0, 0, 255);
        let (mut memory, buffer, window) = dmabuf_window(&mut client, red, seal);
        let shot = client.screenshot_region(x as i32, y as i32, 32, 16).unwrap();
        assert_image(&shot, &Image::solid(32, 16, red), 0, "dmabuf-before");
        let bytes = Format32::Xrgb8888.encode_image(&Image::solid(32, 16, blue), 128, 0xff);
        memory.bytes_mut().copy_from_slice(&bytes);
        // Damage rows 4..8 only: only they are read again.
        window.surface.attach(Some(&buffer), 0, 0);
        window.surface.damage_buffer(0, 4, 32, 4);
        client.commit_and_wait_frame(&window.surface).unwrap();
        let shot = client.screenshot_region(x as i32, y as i32, 32, 16).unwrap();
        let partial = Image::new(32, 16, |_, row| if (4..8).contains(&row) { blue } else { red });
        assert_image(&shot, &partial, 0, &format!("dmabuf-partial-seal-{seal}"));
        window.surface.attach(Some(&buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 32, 16);
        client.commit_and_wait_frame(&window.surface).unwrap();
        let shot = client.screenshot_region(x as i32, y as i32, 32, 16).unwrap();
        assert_image(&shot, &Image::solid(32, 16, blue), 0, &format!("dmabuf-after-seal-{seal}"));
        window.destroy();
    }
}

#[test]
fn truncating_the_fd_after_creation_skips_the_frame_and_nothing_crashes() {
    let mut compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (memory, buffer, window) = dmabuf_window(&mut client, Rgba::opaque(0, 255, 0), false);
    memory.truncate(0).unwrap();
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    client.commit_and_wait_frame(&window.surface).unwrap();
    assert!(compositor.wait_for_log("CPU import skipped a frame", Duration::from_secs(10)), "{}", compositor.log());
    // Still alive, and still serving this client and others.
    client.roundtrip().unwrap();
    let mut other = compositor.connect().unwrap();
    other.screenshot().unwrap();
    assert!(compositor.is_running());
}

#[test]
fn version_3_gets_modifier_events_and_version_5_gets_feedback() {
    let compositor = start(OUT_W, OUT_H);
    let mut v3 = compositor.connect().unwrap();
    v3.bind_dmabuf(3).unwrap();
    // Every format, LINEAR, in table order: lavapipe and NVIDIA sample them all.
    let expected: Vec<(u32, u64)> = axiom_testclient::layout::FORMATS.iter().map(|f| (f.fourcc, 0)).collect();
    assert_eq!(v3.dmabuf_events().modifiers, expected);

    let mut v5 = compositor.connect().unwrap();
    let dmabuf = v5.bind_dmabuf(5).unwrap();
    assert!(v5.dmabuf_events().modifiers.is_empty(), "v4+ clients get feedback only");
    let (_default, log) = v5.default_feedback(&dmabuf).unwrap();
    assert_eq!(log.format_tables, vec![expected.clone()], "one format table, the advertised formats");
    assert_eq!(log.main_device, Some(axiom::dmabuf::PLACEHOLDER_DEVICE), "placeholder device without /dev/dri");
    let all: Vec<u16> = (0..expected.len() as u16).collect();
    assert_eq!(log.tranches, vec![(axiom::dmabuf::PLACEHOLDER_DEVICE, 0, all.clone())]);
    assert_eq!(log.done, 1);

    // Surface feedback: the same content; the table comes once per object, not per done.
    let window = v5.create_window("feedback").unwrap();
    let (_surface_feedback, log) = v5.surface_feedback(&dmabuf, &window.surface).unwrap();
    assert_eq!(log.format_tables.len(), 1);
    assert_eq!(log.tranches, vec![(axiom::dmabuf::PLACEHOLDER_DEVICE, 0, all)]);
    v5.roundtrip().unwrap();
}

#[test]
fn wayland_info_shows_v5_main_device_and_tranche_formats() {
    let compositor = start(OUT_W, OUT_H);
    let output = compositor.client_command("wayland-info").output().expect("wayland-info must be installed");
    let text = String::from_utf8_lossy(&output.stdout);
    let section: String = text
        .split("interface: ")
        .find(|s| s.starts_with("'zwp_linux_dmabuf_v1'"))
        .unwrap_or_else(|| panic!("no linux-dmabuf global in:\n{text}"))
        .to_string();
    assert!(section.contains("version:  5"), "{section}");
    assert!(section.contains("main device: 0x1"), "{section}");
    assert!(section.contains("tranche"), "{section}");
    for name in ["'XR24'", "'AR24'", "'NV12'", "'P010'", "'YU12'", "'YUYV'", "'AB4H'", "'RG16'"] {
        assert!(section.contains(name), "{name} missing in:\n{section}");
    }
    assert!(section.contains("LINEAR"), "{section}");
}

#[test]
fn sigusr1_prints_import_counters() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (_memory, _buffer, _window) = dmabuf_window(&mut client, Rgba::opaque(1, 2, 3), true);
    let stats = crate::common::import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!((get("created"), get("failed"), get("cpu_skipped")), (Some(1), Some(0), Some(0)), "{stats:?}");
    // The sealed memfd takes the Vulkan step where it is live, the CPU step otherwise.
    if let Some(step) = crate::common::dmabuf_vulkan_counter(&compositor) {
        assert_eq!((get(step), get("cpu_imports"), get("cpu_bytes")), (Some(1), Some(0), Some(0)), "{stats:?}");
    } else {
        // 16 rows of 128 bytes.
        assert_eq!(
            (get("vulkan_image"), get("vulkan_buffer"), get("cpu_imports"), get("cpu_bytes")),
            (Some(0), Some(0), Some(1), Some(2048)),
            "{stats:?}"
        );
    }
}

#[test]
fn yuv_coefficients_on_an_rgb_buffer_are_a_pixel_format_error() {
    use wayland_protocols::wp::color_representation::v1::client::wp_color_representation_surface_v1::{
        Coefficients, Error as RepError, Range,
    };
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let manager = client.bind_color_representation().unwrap();
    let window = client.create_window("rgb-with-yuv-coefficients").unwrap();
    let _rep = client.set_color_representation(&manager, &window.surface, Coefficients::Bt709, Range::Full);
    let buffer =
        client.create_buffer(&Image::solid(8, 8, Rgba::opaque(1, 2, 3)), Format32::Xrgb8888, 32, 0xff).unwrap();
    window.surface.attach(Some(&buffer.buffer), 0, 0);
    window.surface.commit();
    let (interface, code) = client.expect_protocol_error().unwrap();
    assert_eq!((interface.as_str(), code), ("wp_color_representation_surface_v1", RepError::PixelFormat as u32));
    // Others are not affected.
    compositor.connect().unwrap().screenshot().unwrap();
}
