//! wp_presentation: every committed frame is reported presented with real,
//! increasing CLOCK_MONOTONIC timestamps paced by the output's refresh.

use axiom_testclient::client::Presented;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::Image;

use crate::common::start_with;

#[test]
fn presentation_timestamps_increase_at_the_refresh_interval() {
    let compositor = start_with(160, 120, &["--refresh", "60"]);
    let mut client = compositor.connect().unwrap();
    assert_eq!(client.presentation_clock(), Some(1), "CLOCK_MONOTONIC");
    let window = client.create_window("presentation").unwrap();
    let buffers: Vec<_> = [Rgba::opaque(10, 20, 30), Rgba::opaque(30, 20, 10)]
        .iter()
        .map(|&c| client.create_buffer(&Image::solid(16, 16, c), Format32::Xrgb8888, 64, 0xff).unwrap())
        .collect();

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
    // Presentation times lie on the output's vblank grid: every gap is a whole,
    // non-zero number of refresh intervals.
    let interval = u128::from(refresh_ns);
    for pair in times.windows(2) {
        let gap = (pair[1] - pair[0]).as_nanos();
        assert!(gap >= interval && gap % interval == 0, "gap {gap} ns is not a multiple of {interval} ns: {times:?}");
    }
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
