//! The DRM/KMS backend on a real KMS device. These tests need one (the VM
//! rig's vkms), so a plain `cargo test` skips them as ignored; `tests/vm/drm-tests`
//! runs them inside the VM, where the compositor is DRM master and
//! `axiom-kms-grab` reads back the framebuffer the CRTC scans out. The helpers
//! here are shared by the tests' modules; `frames` and `sync` run again with the
//! CPU import step forced, `devices` and `pacing` do not depend on the step.

mod devices;
mod frames;
mod pacing;
mod sync;

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

/// The output's size: the connector's preferred mode.
fn output_size(client: &mut TestClient) -> (u32, u32) {
    client.roundtrip().unwrap();
    let (w, h) = client.output_size().expect("a wl_output mode");
    (w as u32, h as u32)
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

/// wp_presentation_feedback kind bit: the client's buffer was shown as it is.
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
