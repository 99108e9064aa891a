//! Several headless outputs (`--output WxH[@HZ]`, repeated): placed left to
//! right, each showing its part of the scene, and each pacing its windows'
//! frames and presentation times at its own rate.

use std::time::Duration;

use axiom_testclient::client::Presented;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::{Compositor, Image, OutputInfo, TestClient};

use crate::common::{assert_image, assert_on_refresh_grid, axiom_binary, import_stats};

/// Presentation times of `frames` frames of a window fullscreen on `output`, showing
/// `colour` and a second one in turn, and the refresh each was reported with.
fn presented_frames(client: &mut TestClient, output: usize, colour: Rgba, frames: usize) -> Vec<Presented> {
    client.roundtrip().unwrap();
    let name = client.output_globals()[output];
    let output = client.bind_output(name).unwrap();
    let window = client.create_window("per-output").unwrap();
    let (w, h) = client.set_fullscreen_on(&window, &output).unwrap();
    let buffers: Vec<_> = [colour, Rgba::opaque(1, 2, 3), colour]
        .iter()
        .map(|&c| client.create_buffer(&Image::solid(w as u32, h as u32, c), Format32::Xrgb8888, w as usize * 4, 0xff))
        .collect::<anyhow::Result<_>>()
        .unwrap();
    let mut feedbacks = Vec::new();
    for i in 0..frames {
        feedbacks.push(client.request_feedback(&window.surface));
        client.present(&window.surface, &buffers[if i + 1 == frames { 2 } else { i % 2 }]).unwrap();
    }
    std::mem::forget(window);
    client.wait_for_feedback(&feedbacks).unwrap()
}

#[test]
fn outputs_sit_left_to_right_each_showing_its_windows_at_its_own_rate() {
    let compositor =
        Compositor::start(&axiom_binary(), 0, 0, &["--output", "160x120", "--output", "96x64@30", "--refresh", "60"])
            .expect("start axiom");
    let mut client = compositor.connect().unwrap();
    client.roundtrip().unwrap();
    let infos: Vec<OutputInfo> = client
        .output_globals()
        .into_iter()
        .map(|name| {
            let output = client.bind_output(name).unwrap();
            client.roundtrip().unwrap();
            client.output_info(&output)
        })
        .collect();
    let want = [
        OutputInfo { name: "HEADLESS-1".into(), position: (0, 0), size: (160, 120) },
        OutputInfo { name: "HEADLESS-2".into(), position: (160, 0), size: (96, 64) },
    ];
    assert_eq!(infos, want, "two outputs, left to right, at the sizes asked for");

    let (red, blue) = (Rgba::opaque(200, 0, 0), Rgba::opaque(0, 0, 200));
    let first = presented_frames(&mut client, 0, red, 12);
    let second = presented_frames(&mut client, 1, blue, 12);
    // Each at its own rate: a frame per refresh of its output, the refreshes its
    // interval apart. The compositor's first frame also builds its pipelines, and is
    // left out.
    assert_on_refresh_grid(&first[1..], Duration::from_secs_f64(1.0 / 60.0), "HEADLESS-1 (60 Hz)");
    assert_on_refresh_grid(&second, Duration::from_secs_f64(1.0 / 30.0), "HEADLESS-2 (30 Hz)");

    for (index, (colour, (w, h))) in [(red, (160, 120)), (blue, (96, 64))].into_iter().enumerate() {
        let output = client.bind_output(client.output_globals()[index]).unwrap();
        let shot = client.screenshot_of(&output).unwrap();
        assert_image(&shot, &Image::solid(w, h, colour), 0, &format!("headless-output-{}", index + 1));
    }
    let stats = import_stats(&compositor);
    for name in ["frames_HEADLESS-1", "frames_HEADLESS-2"] {
        assert!(stats.get(name).is_some_and(|&n| n >= 8), "{name} counts the frames shown: {stats:?}");
    }
}

#[test]
fn several_outputs_are_refused_where_the_backend_has_one() {
    let output = std::process::Command::new(axiom_binary())
        .args(["--backend", "winit", "--output", "64x64", "--output", "64x64"])
        .env("DISPLAY", ":nonexistent")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("several --output are for the headless backend only"), "{stderr}");
}

#[test]
fn a_connector_mode_is_refused_where_there_are_no_connectors() {
    let output = std::process::Command::new(axiom_binary())
        .args(["--backend", "headless", "--mode", "HDMI-A-1=1920x1080@75"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--mode names display connectors: it is for the drm backend only"), "{stderr}");
}

/// An image whose every pixel differs from its neighbours': a scaled draw that is
/// off by one pixel anywhere shows.
fn pattern(width: u32, height: u32) -> Image {
    Image::new(width, height, |x, y| Rgba::opaque((x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8))
}

#[test]
fn at_scale_2_clients_see_logical_sizes_and_scaled_buffers_show_pixel_for_pixel() {
    let compositor = Compositor::start(&axiom_binary(), 320, 240, &["--scale", "2"]).expect("start axiom");
    let mut client = compositor.connect().unwrap();
    client.roundtrip().unwrap();
    let output = client.bind_output(client.output_globals()[0]).unwrap();
    client.roundtrip().unwrap();
    assert_eq!(client.output_info(&output).size, (320, 240), "the mode is in pixels");
    assert_eq!(client.output_scale(&output), 2);

    let window = client.create_window("scale-2").unwrap();
    let (w, h) = client.set_fullscreen(&window).unwrap();
    assert_eq!((w, h), (160, 120), "a fullscreen window is asked for the logical size");
    let image = pattern(320, 240);
    let buffer = client.create_buffer(&image, Format32::Xrgb8888, 320 * 4, 0xff).unwrap();
    window.surface.set_buffer_scale(2);
    client.present(&window.surface, &buffer).unwrap();
    assert_image(&client.screenshot().unwrap(), &image, 0, "scale-2-buffer-scale-2");

    // A scale-1 buffer is drawn twice as large.
    let small = client.create_window("scale-2-small").unwrap();
    let red = Rgba::opaque(220, 30, 30);
    let buffer = client.create_buffer(&Image::solid(16, 16, red), Format32::Xrgb8888, 64, 0xff).unwrap();
    client.present(&small.surface, &buffer).unwrap();
    let shot = client.screenshot().unwrap();
    // Centred on the 160x120 logical output: (72, 52) logical, (144, 104) in pixels.
    assert_image(&shot.crop(144, 104, 32, 32), &Image::solid(32, 32, red), 0, "scale-2-buffer-scale-1");
    assert_ne!(shot.pixel(143, 104), red, "no wider than 32 pixels");
    assert_ne!(shot.pixel(176, 104), red, "no wider than 32 pixels");
    // A region capture names the region in logical units: the window's 16x16 are 32x32 pixels.
    let region = client.screenshot_region(72, 52, 16, 16).unwrap();
    assert_image(&region, &Image::solid(32, 32, red), 0, "scale-2-region");
}

#[test]
fn a_fractional_scale_gives_the_rounded_logical_size_and_wl_output_rounds_it_up() {
    let compositor = Compositor::start(&axiom_binary(), 300, 240, &["--scale", "1.5"]).expect("start axiom");
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("scale-1.5").unwrap();
    assert_eq!(client.set_fullscreen(&window).unwrap(), (200, 160), "300x240 pixels at 1.5");
    let output = client.bind_output(client.output_globals()[0]).unwrap();
    client.roundtrip().unwrap();
    assert_eq!(client.output_scale(&output), 2, "wl_output announces the scale rounded up");
}

#[test]
fn outputs_wider_together_than_the_gpu_can_hold_are_refused_with_a_message() {
    let output = std::process::Command::new(axiom_binary())
        .args(["--backend", "headless", "--no-xwayland", "--output", "16384x16", "--output", "16384x16"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the outputs need a 32768x16 canvas"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
