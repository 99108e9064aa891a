//! wp_fifo_v1 and wp_commit_timing_v1: a client committing with FIFO as fast as
//! it can gets one frame per refresh of its own output, and a commit with a
//! target time is shown by the first frame at or after it. Slow refresh rates
//! keep a loaded machine's timer jitter far below one refresh.

use std::time::Duration;

use axiom_testclient::client::Presented;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::pacing::{monotonic_now, set_target};
use axiom_testclient::{Buffer, Compositor, Image, TestClient, Window};
use wayland_protocols::wp::commit_timing::v1::client::wp_commit_timer_v1::WpCommitTimerV1;
use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::WpPresentationFeedback;

use crate::common::{assert_image, assert_on_refresh_grid, axiom_binary};

/// A window fullscreen on output `index`, and two buffers of its size.
fn fullscreen_window(client: &mut TestClient, index: usize) -> (Window, Vec<Buffer>) {
    client.roundtrip().unwrap();
    let output = client.bind_output(client.output_globals()[index]).unwrap();
    let window = client.create_window("pacing").unwrap();
    let (w, h) = client.set_fullscreen_on(&window, &output).unwrap();
    let buffers: Vec<Buffer> = [Rgba::opaque(200, 40, 40), Rgba::opaque(40, 40, 200)]
        .iter()
        .map(|&c| client.create_buffer(&Image::solid(w as u32, h as u32, c), Format32::Xrgb8888, w as usize * 4, 0xff))
        .collect::<anyhow::Result<_>>()
        .unwrap();
    client.present(&window.surface, &buffers[1]).unwrap();
    (window, buffers)
}

/// Commits `buffer` (whole) on `window` with target time `target` through `timer`,
/// asking for its presentation feedback.
pub(crate) fn commit_at(
    client: &mut TestClient,
    window: &Window,
    buffer: &Buffer,
    timer: &WpCommitTimerV1,
    target: Duration,
) -> WpPresentationFeedback {
    let feedback = client.request_feedback(&window.surface);
    window.surface.attach(Some(&buffer.buffer), 0, 0);
    window.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
    set_target(timer, target);
    window.surface.commit();
    client.flush().unwrap();
    feedback
}

/// Commits `frames` frames in one go, without waiting for anything, through FIFO
/// (each sets a barrier and waits for the previous one) or not; returns what
/// presentation feedback says of each.
pub(crate) fn commit_burst(
    client: &mut TestClient,
    window: &Window,
    buffers: &[Buffer],
    frames: usize,
    fifo: bool,
) -> Vec<Presented> {
    let fifo = fifo.then(|| client.fifo(&window.surface).unwrap());
    let mut feedbacks = Vec::new();
    for i in 0..frames {
        feedbacks.push(client.request_feedback(&window.surface));
        window.surface.attach(Some(&buffers[i % 2].buffer), 0, 0);
        window.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
        if let Some(fifo) = &fifo {
            fifo.set_barrier();
            fifo.wait_barrier();
        }
        window.surface.commit();
    }
    client.flush().unwrap();
    let presented = client.wait_for_feedback(&feedbacks).unwrap();
    if let Some(fifo) = fifo {
        fifo.destroy();
    }
    presented
}

#[test]
fn fifo_commits_in_a_burst_are_shown_one_per_refresh_of_their_own_output() {
    let args = ["--output", "96x64@20", "--output", "96x64@10"];
    let compositor = Compositor::start(&axiom_binary(), 0, 0, &args).expect("start axiom");
    let mut client = compositor.connect().unwrap();
    for (index, hz) in [(0, 20.0), (1, 10.0)] {
        let interval = Duration::from_secs_f64(1.0 / hz);
        let (window, buffers) = fullscreen_window(&mut client, index);

        // Without FIFO a burst replaces itself: all but the last are never shown.
        let unpaced = commit_burst(&mut client, &window, &buffers, 6, false);
        let discarded = unpaced.iter().filter(|p| **p == Presented::Discarded).count();
        assert!(discarded >= 4, "output {index}: a burst without FIFO is mostly discarded: {unpaced:?}");

        // With FIFO every frame is shown, each at a refresh of its own.
        let paced = commit_burst(&mut client, &window, &buffers, 6, true);
        assert_on_refresh_grid(&paced, interval, &format!("output {index} ({hz} Hz), FIFO"));
        std::mem::forget(window);
    }
}

#[test]
fn a_commit_with_a_target_time_is_shown_by_the_first_frame_at_or_after_it() {
    let compositor = Compositor::start(&axiom_binary(), 96, 64, &["--refresh", "10"]).expect("start axiom");
    let mut client = compositor.connect().unwrap();
    let (window, buffers) = fullscreen_window(&mut client, 0);
    let interval = Duration::from_millis(100);
    let timer = client.commit_timer(&window.surface).unwrap();
    // A frame without a target, for where the output's refreshes fall: it was composed at
    // refresh `seq`, at most its GPU time before `time`.
    let reference = client.request_feedback(&window.surface);
    client.present(&window.surface, &buffers[1]).unwrap();
    let Presented::Presented { time: reference_time, seq: reference_seq, .. } =
        client.wait_for_feedback(&[reference]).unwrap()[0]
    else {
        panic!("a frame was discarded")
    };
    let gpu_time = Duration::from_millis(20);

    let target = monotonic_now() + Duration::from_millis(650);
    let feedback = commit_at(&mut client, &window, &buffers[0], &timer, target);
    // Held until then: the screen still shows the previous buffer.
    let early = client.screenshot().unwrap();
    if monotonic_now() < target {
        assert_image(&early, &Image::solid(96, 64, Rgba::opaque(40, 40, 200)), 0, "commit-timing-early");
    }
    let Presented::Presented { time, seq, .. } = client.wait_for_feedback(&[feedback]).unwrap()[0] else {
        panic!("a timed commit was discarded")
    };
    assert!(time >= target, "shown at {time:?}, before its target {target:?}");
    // Composed at the first refresh at or after the target: the one before it was earlier.
    let refresh_before = reference_time + interval * (seq - reference_seq - 1) as u32;
    assert!(
        refresh_before < target + gpu_time,
        "shown at refresh {seq} ({time:?}), more than a refresh after its target {target:?} \
         (refresh {reference_seq} at {reference_time:?} at the latest)"
    );

    // A target already past is no reason to wait.
    let committed = monotonic_now();
    let feedback =
        commit_at(&mut client, &window, &buffers[1], &timer, committed.saturating_sub(Duration::from_secs(1)));
    let Presented::Presented { time, .. } = client.wait_for_feedback(&[feedback]).unwrap()[0] else {
        panic!("a timed commit was discarded")
    };
    // Released at the next tick, composed at the one after, presented when its GPU work
    // is done.
    assert!(
        time < committed + 2 * interval + gpu_time,
        "a past target: shown by the frame after the next tick ({time:?}, committed {committed:?})"
    );
}
