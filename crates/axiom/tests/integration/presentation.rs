//! wp_presentation: every committed frame is reported presented with real,
//! increasing CLOCK_MONOTONIC timestamps paced by the output's refresh, and a
//! frame nobody could see is reported discarded; the per-output frame and
//! readback counters agree.

use axiom_testclient::client::Presented;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::{Buffer, Image, TestClient};
use wayland_client::protocol::wl_surface::WlSurface;

use crate::common::{axiom_binary, import_stats, solid_buffers, start_with};

#[test]
fn presentation_timestamps_increase_at_the_refresh_interval() {
    let compositor = start_with(160, 120, &["--refresh", "60"]);
    let mut client = compositor.connect().unwrap();
    assert_eq!(client.presentation_clock(), Some(1), "CLOCK_MONOTONIC");
    let window = client.create_window("presentation").unwrap();
    let buffers = solid_buffers(&mut client, 16, &[Rgba::opaque(10, 20, 30), Rgba::opaque(30, 20, 10)]);

    let mut feedbacks = Vec::new();
    for i in 0..12 {
        feedbacks.push(client.request_feedback(&window.surface));
        client.present(&window.surface, &buffers[i % 2]).unwrap();
    }
    let results = client.wait_for_feedback(&feedbacks).unwrap();

    let now: std::time::Duration = {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    let refresh_ns = std::time::Duration::from_secs_f64(1.0 / 60.0).as_nanos() as u32;
    let mut times = Vec::new();
    let mut seqs = Vec::new();
    for result in &results {
        match *result {
            Presented::Presented { time, refresh_ns: r, seq, .. } => {
                assert_eq!(r, refresh_ns, "refresh {r} ns, want {refresh_ns}");
                assert!(
                    time <= now && now - time < std::time::Duration::from_secs(60),
                    "timestamp {time:?} is not recent CLOCK_MONOTONIC (now {now:?})"
                );
                times.push(time);
                seqs.push(seq);
            }
            Presented::Discarded => panic!("a frame that was shown was reported discarded"),
        }
    }
    assert!(times.windows(2).all(|w| w[0] < w[1]), "timestamps must increase: {times:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq must increase: {seqs:?}");
    // One refresh per frame at the output's rate; the compositor's first frame also
    // builds its pipelines, and is left out.
    let interval = std::time::Duration::from_nanos(refresh_ns.into());
    crate::common::assert_on_refresh_grid(&results[1..], interval, "presentation");
}

#[test]
fn an_idle_compositor_does_not_wake_up() {
    let compositor = start_with(160, 120, &[]);
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("idle").unwrap();
    let buffer =
        client.create_buffer(&Image::solid(16, 16, Rgba::opaque(1, 2, 3)), Format32::Xrgb8888, 64, 0xff).unwrap();
    client.present(&window.surface, &buffer).unwrap();
    // With nothing to show, the event loop must sleep: a repaint timer ticking at 60 Hz
    // would switch the main thread in and out 60 times a second.
    let switches = || {
        let status = std::fs::read_to_string(format!("/proc/{0}/task/{0}/status", compositor.pid())).unwrap();
        status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).unwrap().trim().parse::<u64>().unwrap()
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = switches();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let woken = switches() - before;
    assert!(woken < 10, "the idle compositor woke {woken} times in a second");
}

/// A window wholly under an opaque one is never shown, so its frames are reported
/// `discarded`; under a translucent cover, or one that leaves part of it showing,
/// they are presented.
#[test]
fn a_window_wholly_under_an_opaque_one_is_discarded() {
    let compositor = start_with(160, 120, &[]);
    let mut client = compositor.connect().unwrap();
    let below = client.create_window("below").unwrap();
    let small = small_buffers(&mut client);
    client.present(&below.surface, &small[0]).unwrap();

    let top = client.create_window("top").unwrap();
    let (w, h) = client.set_fullscreen(&top).unwrap();
    assert_eq!((w, h), (160, 120), "fullscreen size");
    let (w, h) = (w as u32, h as u32);
    let cover = |client: &mut axiom_testclient::TestClient, format, alpha| {
        client.create_buffer(&Image::solid(w, h, Rgba(0, 0, 200, alpha)), format, w as usize * 4, 0xff).unwrap()
    };
    let translucent = cover(&mut client, Format32::Argb8888, 0x80);
    let opaque = cover(&mut client, Format32::Xrgb8888, 0xff);
    // A frame of the bottom window, committed while `top` shows `cover`.
    let frame_below = |client: &mut TestClient, i: usize| present_with_feedback(client, &below.surface, &small[i % 2]);

    client.present(&top.surface, &translucent).unwrap();
    let under_translucent = frame_below(&mut client, 1);
    client.present(&top.surface, &opaque).unwrap();
    let under_opaque = frame_below(&mut client, 2);
    let top_feedback = client.request_feedback(&top.surface);
    client.present(&top.surface, &opaque).unwrap();
    let top_result = client.wait_for_feedback(&[top_feedback]).unwrap().remove(0);

    assert!(
        matches!(under_translucent, Presented::Presented { .. }),
        "under a translucent cover: {under_translucent:?}"
    );
    assert_eq!(under_opaque, Presented::Discarded, "wholly under an opaque window");
    assert!(matches!(top_result, Presented::Presented { .. }), "the covering window itself: {top_result:?}");
}

/// Outputs of unequal heights leave part of the canvas on no output: a window
/// whose only uncovered part lies there is shown nowhere, so `discarded`; the
/// same window reaching onto the shorter output is presented.
#[test]
fn a_window_only_where_no_output_reaches_is_discarded() {
    // A 160x120 output and a 96x64 one to its right: canvas (160..256, 64..120) is on neither.
    let args = ["--output", "160x120", "--output", "96x64"];
    let compositor = axiom_testclient::Compositor::start(&axiom_binary(), 0, 0, &args).expect("start axiom");
    let mut client = compositor.connect().unwrap();
    let below = client.create_window("below").unwrap();
    let small = small_buffers(&mut client);
    // Centred on the first output: its 16x16 surface at (72, 52); the subsurface 128 to the right.
    client.present(&below.surface, &small[0]).unwrap();
    let (_sub, subsurface) = client.create_subsurface(&below.surface, 128, 0, &small[1]);
    client.present(&below.surface, &small[0]).unwrap();

    let top = client.create_window("top").unwrap();
    let (w, h) = client.set_fullscreen(&top).unwrap();
    assert_eq!((w, h), (160, 120), "fullscreen on the first output");
    let cover = Image::solid(w as u32, h as u32, Rgba::opaque(0, 0, 200));
    let opaque = client.create_buffer(&cover, Format32::Xrgb8888, w as usize * 4, 0xff).unwrap();
    client.present(&top.surface, &opaque).unwrap();

    let frame_below = |client: &mut TestClient, i: usize| present_with_feedback(client, &below.surface, &small[i % 2]);
    // The subsurface at canvas (200, 52)..(216, 68): its top rows are on the second output.
    let reaching = frame_below(&mut client, 0);
    // At (200, 90)..(216, 106): below the second output's bottom edge, on no output.
    subsurface.set_position(128, 38);
    let nowhere = frame_below(&mut client, 1);

    assert!(matches!(reaching, Presented::Presented { .. }), "partly on the second output: {reaching:?}");
    assert_eq!(nowhere, Presented::Discarded, "covered on the first output, and on no output otherwise");
}

/// Two 16x16 opaque buffers, red and green.
fn small_buffers(client: &mut TestClient) -> Vec<Buffer> {
    solid_buffers(client, 16, &[Rgba::opaque(200, 0, 0), Rgba::opaque(0, 200, 0)])
}

/// Presents `buffer` on `surface` and waits for what became of the frame.
fn present_with_feedback(client: &mut TestClient, surface: &WlSurface, buffer: &Buffer) -> Presented {
    let feedback = client.request_feedback(surface);
    client.present(surface, buffer).unwrap();
    client.wait_for_feedback(&[feedback]).unwrap().remove(0)
}

/// The counters say what became of composed frames: each output counts the frames
/// it showed, and no byte of them is read back from the GPU until a capture asks
/// for some, then exactly the bytes it asked for. Frames complete on the GPU while
/// the event loop goes on: it waits for the GPU only for the capture.
#[test]
fn frames_are_counted_per_output_and_read_back_only_for_captures() {
    let compositor = start_with(160, 120, &[]);
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("counters").unwrap();
    let buffers = solid_buffers(&mut client, 16, &[Rgba::opaque(10, 20, 30), Rgba::opaque(30, 20, 10)]);
    let counters = || {
        let stats = import_stats(&compositor);
        let frames: Vec<u64> = stats.iter().filter(|(k, _)| k.starts_with("frames_")).map(|(_, &n)| n).collect();
        (frames, stats.get("readback_bytes").copied(), stats.get("loop_gpu_waits").copied())
    };
    let (frames_before, _, _) = counters();
    assert_eq!(frames_before.len(), 1, "one headless output, one frame counter");
    for i in 0..10 {
        client.present(&window.surface, &buffers[i % 2]).unwrap();
    }
    let (frames_after, readback, waits) = counters();
    assert!(frames_after[0] >= frames_before[0] + 10, "10 frames shown: {frames_before:?} -> {frames_after:?}");
    assert_eq!(readback, Some(0), "no readback without a capture");
    assert_eq!(waits, Some(0), "the event loop never waited for the GPU to finish a frame");

    client.screenshot_region(8, 4, 16, 8).unwrap();
    let (_, readback, waits) = counters();
    assert_eq!(readback, Some(16 * 8 * 4), "a 16x8 capture reads back its own bytes");
    assert!(waits.is_some_and(|n| n >= 1), "the capture waited for its bytes: {waits:?}");
}
