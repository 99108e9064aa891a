//! The DRM/KMS backend on a real KMS device. These tests need one (the VM
//! rig's vkms), so a plain `cargo test` skips them as ignored; `tests/vm/drm-tests`
//! runs them inside the VM, where the compositor is DRM master and
//! `axiom-kms-grab` reads back the framebuffer the CRTC scans out.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axiom_testclient::dmabuf::{udmabuf, Created, Plane};
use axiom_testclient::image::{test_pattern, Format32};
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Compositor, Image, Rgba, TestClient};
use smithay::backend::allocator::Fourcc;

use crate::common::{assert_image, axiom_binary, centred, import_stats, load_png, non_background, BACKGROUND};
use crate::third_party::spawn;

const LIMIT: Duration = Duration::from_secs(60);
const CARD: &str = "/dev/dri/card0";

fn start_drm() -> Compositor {
    let compositor = Compositor::start_drm(&axiom_binary(), &[]).expect("axiom --backend drm starts");
    assert!(compositor.log().contains(&format!("device={CARD}")), "{}", compositor.log());
    compositor
}

/// The output's size: the connector's preferred mode.
fn output_size(client: &mut TestClient) -> (u32, u32) {
    client.roundtrip().unwrap();
    let (w, h) = client.output_size().expect("a wl_output mode");
    (w as u32, h as u32)
}

/// What the CRTC scans out now.
fn crtc_shot(compositor: &Compositor) -> Image {
    let tool = axiom_binary().with_file_name("axiom-kms-grab");
    let path = compositor.runtime_dir.join("crtc.png");
    let output = Command::new(&tool)
        .args(["--device", CARD, "--wait-ms", "10000"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo build -p axiom-testclient builds it)", tool.display()));
    assert!(output.status.success(), "axiom-kms-grab: {}", String::from_utf8_lossy(&output.stderr));
    load_png(&path)
}

/// Grabs the CRTC until `check` passes: a frame reaches it one flip after composition.
fn wait_on_crtc(compositor: &Compositor, what: &str, mut check: impl FnMut(&Image) -> bool) -> Image {
    let deadline = Instant::now() + LIMIT;
    loop {
        let shot = crtc_shot(compositor);
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
    let window = client.create_window("pattern").unwrap();
    let pattern = test_pattern(200, 150);
    let buffer = client.create_buffer(&pattern, Format32::Xrgb8888, 200 * 4, 0xff).unwrap();
    client.present(&window.surface, &buffer).unwrap();
    client.commit_and_wait_frame(&window.surface).unwrap();
    let composed = client.screenshot().unwrap();

    let (x, y) = centred(width, height, 200, 150);
    let shown = wait_on_crtc(&compositor, "drm-pattern", |shot| shot.crop(x, y, 200, 150) == pattern);
    assert_eq!((shown.width, shown.height), (width, height), "the CRTC scans the output's mode");
    assert_image(&shown, &composed, 0, "drm-crtc-vs-screencopy");
    assert!(compositor.log().contains("KMS: mode set, first frame on screen"), "{}", compositor.log());
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
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_udmabuf_reaches_the_crtc_and_rewrites_show_through() {
    let compositor = start_drm();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (red, blue) = (Rgba::opaque(255, 0, 0), Rgba::opaque(0, 0, 255));

    // A real dma-buf: the pages of a sealed memfd, through /dev/udmabuf.
    let mut memory = SharedMemory::new(4096).unwrap();
    let encode = |colour| Format32::Xrgb8888.encode_image(&Image::solid(32, 16, colour), 128, 0xff);
    memory.bytes_mut()[..2048].copy_from_slice(&encode(red));
    axiom_testclient::dmabuf::seal_shrink(memory.fd()).unwrap();
    let dmabuf_fd = udmabuf(memory.fd(), 4096).expect("udmabuf of a sealed memfd");

    let dmabuf = client.bind_dmabuf(5).unwrap();
    let plane = Plane { fd: dmabuf_fd.as_fd(), offset: 0, stride: 128, modifier: 0 };
    let params = client.dmabuf_params(&dmabuf, &[plane]);
    let Created::Buffer(buffer) = client.dmabuf_create(&params, 32, 16, Fourcc::Xrgb8888 as u32).unwrap() else {
        panic!("the udmabuf was refused\n{}", compositor.log())
    };
    let window = client.create_window("udmabuf").unwrap();
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let (x, y) = centred(width, height, 32, 16);
    wait_on_crtc(&compositor, "drm-udmabuf-red", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));

    // The same pages, rewritten through the memfd: the dma-buf aliases them.
    memory.bytes_mut()[..2048].copy_from_slice(&encode(blue));
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    client.commit_and_wait_frame(&window.surface).unwrap();
    wait_on_crtc(&compositor, "drm-udmabuf-blue", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, blue));

    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!((get("created"), get("failed")), (Some(1), Some(0)), "{stats:?}");
    // lavapipe imports the udmabuf where the Vulkan ladder is built in; otherwise the CPU reads it.
    let (vulkan, cpu) = if crate::common::vulkan_buffer_step_live(&compositor) { (1, 0) } else { (0, 1) };
    assert_eq!((get("vulkan_buffer"), get("cpu_imports")), (Some(vulkan), Some(cpu)), "{stats:?}");
    eprintln!("udmabuf import counters: {stats:?}");
}
