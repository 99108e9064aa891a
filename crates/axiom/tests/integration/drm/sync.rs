//! Synchronisation on a real device: implicit sync through dma-buf fences (vgem),
//! explicit sync through DRM syncobj timelines, and the limits and leaks of both.
//! These run with the Vulkan import ladder and again with the CPU step forced.

use super::*;

/// What the CRTC scans out now.
fn crtc_shot(compositor: &Compositor) -> Image {
    crtc_shot_and_fb(compositor).0
}

#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_commit_is_held_until_its_dmabufs_writers_finish_and_nobody_waits() {
    // Composition reads the buffers: keep the window off the planes.
    let compositor = start_drm_composing();
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (red, blue) = (Rgba::opaque(255, 0, 0), Rgba::opaque(0, 0, 255));
    let (x, y) = centred(width, height, 32, 16);

    // A finished red buffer is shown.
    let first = vgem_buffer(red);
    let (_first_buffer, window) = small_dmabuf_window(&compositor, &mut client, first.dmabuf.as_fd(), first.pitch());
    wait_on_crtc(&compositor, "drm-vgem-first", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));

    // A "GPU" is still writing the blue one: its commit is held, the window keeps its
    // red buffer, and the compositor goes on serving everyone.
    let second = vgem_buffer(blue);
    let fence = second.attach_write_fence().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let second_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, second.dmabuf.as_fd(), second.pitch(), (32, 16));
    window.surface.attach(Some(&second_buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 16);
    window.surface.commit();
    client.roundtrip().unwrap();
    let mut other = compositor.connect().unwrap();
    for _ in 0..3 {
        let shot = other.screenshot().unwrap();
        assert_image(&shot.crop(x, y, 32, 16), &Image::solid(32, 16, red), 0, "drm-vgem-held");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_image(&crtc_shot(&compositor).crop(x, y, 32, 16), &Image::solid(32, 16, red), 0, "drm-vgem-held-crtc");
    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!((get("held_commits"), get("sync_timeouts")), (Some(1), Some(0)), "{stats:?}");

    // The writes finish: the held commit is applied, with no wait anywhere.
    second.signal(fence).unwrap();
    wait_on_crtc(&compositor, "drm-vgem-released", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, blue));
    let stats = import_stats(&compositor);
    assert_eq!(stats.get("sync_timeouts"), Some(&0), "nothing read a buffer before its writers finished: {stats:?}");
}

#[cfg(feature = "dmabuf-vulkan")]
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_fence_still_pending_when_a_frame_reads_the_buffer_is_waited_on_by_the_gpu() {
    let compositor = start_drm_composing();
    assert!(
        compositor.log().contains("Implicit sync: the GPU waits on sync files"),
        "lavapipe imports sync files where the kernel exports them: {}",
        compositor.log()
    );
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (red, blue, green, yellow) =
        (Rgba::opaque(255, 0, 0), Rgba::opaque(0, 0, 255), Rgba::opaque(0, 255, 0), Rgba::opaque(255, 255, 0));
    let (x, y) = centred(width, height, 32, 16);
    let first = vgem_buffer(red);
    let (_first_buffer, window) = small_dmabuf_window(&compositor, &mut client, first.dmabuf.as_fd(), first.pitch());
    wait_on_crtc(&compositor, "drm-gpu-wait-first", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));
    // Another client's window, fullscreen on the other output.
    let mut other = compositor.connect().unwrap();
    let other_output = outputs(&mut other).remove(1).0;
    let (other_window, _other_first) = fullscreen_colour_on(&mut other, &other_output, blue);
    let other_next = other.create_buffer(&Image::solid(1024, 768, green), Format32::Xrgb8888, 1024 * 4, 0xff).unwrap();

    // Commits are held for their writers one at a time per surface: the blue one is held,
    // and the next, whose "GPU" is still writing (green so far, yellow when done), queues
    // behind it unheld. Once blue's writes finish both apply, and the frame reads the
    // last buffer while its writes are still pending.
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let second = vgem_buffer(blue);
    let second_fence = second.attach_write_fence().unwrap();
    let second_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, second.dmabuf.as_fd(), second.pitch(), (32, 16));
    let mut third = vgem_buffer(green);
    let third_fence = third.attach_write_fence().unwrap();
    let third_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, third.dmabuf.as_fd(), third.pitch(), (32, 16));
    for buffer in [&second_buffer, &third_buffer] {
        window.surface.attach(Some(buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 32, 16);
        window.surface.commit();
    }
    client.roundtrip().unwrap();
    second.signal(second_fence).unwrap();

    // The frame's GPU work waits for the writes: the unfinished green never shows.
    std::thread::sleep(Duration::from_millis(500));
    let shot = crtc_shot(&compositor).crop(x, y, 32, 16);
    assert!(
        shot == Image::solid(32, 16, red) || shot == Image::solid(32, 16, blue),
        "only finished buffers reach the screen: {:?}",
        shot.pixel(0, 0)
    );
    // The GPU waits; the event loop does not: it answers the counters' signal, and the
    // other client's commit gets its frame callback while the writes are still pending.
    // (The fence stays pending until this test signals it: the frame reading the
    // buffer comes when the compositor gets to it, a while under emulation.)
    let deadline = Instant::now() + LIMIT;
    let waiting = loop {
        let stats = import_stats(&compositor);
        if stats.get("gpu_fence_waits") == Some(&1) || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(waiting.get("gpu_fence_waits"), Some(&1), "a frame waits on the GPU now: {waiting:?}");
    assert_eq!(waiting.get("loop_gpu_waits"), Some(&0), "{waiting:?}");
    other.present(&other_window.surface, &other_next).unwrap();
    fill(&mut third, yellow);
    third.signal(third_fence).unwrap();
    wait_on_crtc(&compositor, "drm-gpu-wait-done", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, yellow));
    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!(
        (get("held_commits"), get("gpu_fence_waits"), get("sync_timeouts")),
        (Some(1), Some(1), Some(0)),
        "the GPU, not the CPU, waited for the writers: {stats:?}"
    );
}

/// A timeline syncobj made through the card node, as a client's GPU driver would, and
/// its fd to hand to the compositor.
fn new_timeline(card: &Card) -> (smithay::reexports::drm::control::syncobj::Handle, std::os::fd::OwnedFd) {
    use smithay::reexports::drm::control::Device as _;
    let handle = card.create_syncobj(false).expect("DRM_IOCTL_SYNCOBJ_CREATE (vkms patched with syncobjs)");
    let fd = card.syncobj_to_fd(handle, false).expect("DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD");
    (handle, fd)
}

/// The last point signalled on a timeline.
fn signalled_point(card: &Card, timeline: smithay::reexports::drm::control::syncobj::Handle) -> u64 {
    use smithay::reexports::drm::control::Device as _;
    let mut points = [0u64];
    card.syncobj_timeline_query(&[timeline], &mut points, false).expect("DRM_IOCTL_SYNCOBJ_QUERY");
    points[0]
}

fn signal_point(card: &Card, timeline: smithay::reexports::drm::control::syncobj::Handle, point: u64) {
    use smithay::reexports::drm::control::Device as _;
    card.syncobj_timeline_signal(&[timeline], &[point]).expect("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL");
}

fn open_card() -> Card {
    Card(std::fs::OpenOptions::new().read(true).write(true).open(CARD).unwrap())
}

/// Explicit sync: a commit whose acquire point is not signalled yet is held (the
/// surface keeps its buffer, and another client's commit gets its frame callback
/// meanwhile); once the point is signalled the buffer shows; the buffer it replaced
/// gets its release point signalled once nothing reads it, and the one on screen not.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn an_explicitly_synced_buffer_shows_once_its_acquire_point_is_signalled_and_is_released_after() {
    let compositor = start_drm_composing();
    assert!(
        compositor.log().contains("explicit sync (wp_linux_drm_syncobj_manager_v1): offered"),
        "{}",
        compositor.log()
    );
    let card = open_card();
    let (acquire, acquire_fd) = new_timeline(&card);
    let (release, release_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 32);
    let images = [Image::solid(32, 32, Rgba::opaque(220, 30, 30)), Image::solid(32, 32, Rgba::opaque(30, 30, 220))];
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let window = client.create_window("explicit").unwrap();
    let sync = client.explicit_sync(&window.surface, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    let commit = |client: &mut TestClient, buffer: &WlBuffer| {
        window.surface.attach(Some(buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 32, 32);
        window.surface.commit();
        client.roundtrip().unwrap();
    };

    // The first buffer, its acquire point signalled before the commit: shown.
    signal_point(&card, acquire, 1);
    sync.set_points(1, 1);
    commit(&mut client, &buffers[0]);
    wait_on_crtc(&compositor, "drm-explicit-first", |shot| shot.crop(x, y, 32, 32) == images[0]);

    // The second, its point not signalled: held. The first stays on screen, unreleased.
    sync.set_points(2, 2);
    commit(&mut client, &buffers[1]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(crtc_shot(&compositor).crop(x, y, 32, 32), images[0], "nothing shows before its acquire point");
    assert_eq!(signalled_point(&card, release), 0, "the buffer on screen is not released");
    assert_eq!(import_stats(&compositor).get("held_acquires"), Some(&1));
    let mut other = compositor.connect().unwrap();
    let other_window = other.create_window("bystander").unwrap();
    let grey = other.create_buffer(&Image::solid(16, 16, Rgba::opaque(90, 90, 90)), Format32::Xrgb8888, 64, 0xff);
    other.present(&other_window.surface, &grey.unwrap()).expect("another client goes on meanwhile");

    // (The bystander's window lies over the middle of ours: its corner shows.)
    signal_point(&card, acquire, 2);
    let corner = images[1].crop(0, 0, 8, 8);
    wait_on_crtc(&compositor, "drm-explicit-second", |shot| shot.crop(x, y, 8, 8) == corner);
    let deadline = Instant::now() + LIMIT;
    while signalled_point(&card, release) < 1 {
        assert!(Instant::now() < deadline, "the replaced buffer was never released");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(signalled_point(&card, release), 1, "the buffer on screen is not released");
    drop(memory);
}

/// The protocol's errors, each to its own client: a second syncobj surface for one
/// wl_surface, a wl_shm buffer with points, a dma-buf without an acquire point. A
/// client gone with a commit still held for its point leaves the compositor serving.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn explicit_sync_errors_are_the_protocols_own() {
    let compositor = start_drm_composing();
    let card = open_card();
    let fresh = || new_timeline(&card);

    let mut client = compositor.connect().unwrap();
    let window = client.create_window("twice").unwrap();
    let manager = client.bind_syncobj().unwrap();
    let _first = manager.get_surface(&window.surface, &client.qh, ());
    let _second = manager.get_surface(&window.surface, &client.qh, ());
    let error = client.expect_protocol_error().unwrap();
    assert_eq!(error, ("wp_linux_drm_syncobj_manager_v1".to_string(), 0), "surface_exists");

    let mut client = compositor.connect().unwrap();
    let window = client.create_window("shm").unwrap();
    let ((_, a), (_, r)) = (fresh(), fresh());
    let sync = client.explicit_sync(&window.surface, a.as_fd(), r.as_fd()).unwrap();
    let shm = client.create_buffer(&Image::solid(16, 16, Rgba::opaque(9, 9, 9)), Format32::Xrgb8888, 64, 0xff).unwrap();
    sync.set_points(1, 1);
    window.surface.attach(Some(&shm.buffer), 0, 0);
    window.surface.commit();
    let error = client.expect_protocol_error().unwrap();
    assert_eq!(error, ("wp_linux_drm_syncobj_surface_v1".to_string(), 2), "unsupported_buffer");

    let mut client = compositor.connect().unwrap();
    let window = client.create_window("no-acquire").unwrap();
    let ((_, a), (_, r)) = (fresh(), fresh());
    let _sync = client.explicit_sync(&window.surface, a.as_fd(), r.as_fd()).unwrap();
    let (memory, fd) = udmabuf_of(&Image::solid(32, 32, Rgba::opaque(9, 9, 9)));
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), 32 * 4, (32, 32));
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.commit();
    let error = client.expect_protocol_error().unwrap();
    assert_eq!(error, ("wp_linux_drm_syncobj_surface_v1".to_string(), 4), "no_acquire_point");

    // Gone with a commit held for a point nobody will signal: the eventfd that watched
    // it goes with the client.
    let eventfds = || open_fds(compositor.pid()).iter().filter(|f| f.contains("eventfd")).count();
    let before = eventfds();
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("gone").unwrap();
    let ((_, a), (_, r)) = (fresh(), fresh());
    let sync = client.explicit_sync(&window.surface, a.as_fd(), r.as_fd()).unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), 32 * 4, (32, 32));
    sync.set_points(1, 1);
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.commit();
    client.roundtrip().unwrap();
    assert_eq!(eventfds(), before + 1, "the held commit's point is watched: {:?}", open_fds(compositor.pid()));
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(eventfds(), before, "its watch went with the client: {:?}", open_fds(compositor.pid()));
    let mut late = compositor.connect().expect("the compositor serves on");
    late.roundtrip().unwrap();
    drop(memory);
}

/// One client, two surfaces: one waits on implicit sync (a vgem fence), the other on
/// an explicit acquire point. Each commit waits for its own alone: the implicit one
/// shows once its writes finish while the explicit one is still held, which shows once
/// its point is signalled.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_client_mixing_implicit_and_explicit_sync_on_two_surfaces_waits_for_each_alone() {
    let compositor = start_drm_composing();
    let card = open_card();
    let (acquire, acquire_fd) = new_timeline(&card);
    let (_release, release_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 16);
    let (red, green, blue) = (Rgba::opaque(220, 30, 30), Rgba::opaque(30, 200, 30), Rgba::opaque(30, 30, 220));

    // Implicit: a vgem window on the first output, showing red.
    let first = vgem_buffer(red);
    let (_first_buffer, implicit) = small_dmabuf_window(&compositor, &mut client, first.dmabuf.as_fd(), first.pitch());
    wait_on_crtc(&compositor, "drm-mixed-red", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, red));

    // Explicit: fullscreen on the second output, its acquire point not signalled.
    let second_output = outputs(&mut client).remove(1).0;
    let explicit = client.create_window("explicit").unwrap();
    let (w, h) = client.set_fullscreen_on(&explicit, &second_output).unwrap();
    let (w, h) = (w as u32, h as u32);
    let sync = client.explicit_sync(&explicit.surface, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    let image = Image::solid(w, h, blue);
    let (pages, fd) = udmabuf_of(&image);
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, fd.as_fd(), w * 4, (w, h));
    sync.set_points(1, 1);
    explicit.surface.attach(Some(&buffer), 0, 0);
    explicit.surface.damage_buffer(0, 0, w as i32, h as i32);
    explicit.surface.commit();

    // Implicit: the next buffer's writes still pending.
    let second = vgem_buffer(green);
    let fence = second.attach_write_fence().unwrap();
    let second_buffer = xrgb_buffer(&compositor, &mut client, &dmabuf, second.dmabuf.as_fd(), second.pitch(), (32, 16));
    implicit.surface.attach(Some(&second_buffer), 0, 0);
    implicit.surface.damage_buffer(0, 0, 32, 16);
    implicit.surface.commit();
    client.roundtrip().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(crtc_shot(&compositor).crop(x, y, 32, 16), Image::solid(32, 16, red), "green's writes are pending");

    // Its writes finish: green shows, while the explicit commit is still held.
    second.signal(fence).unwrap();
    wait_on_crtc(&compositor, "drm-mixed-green", |shot| shot.crop(x, y, 32, 16) == Image::solid(32, 16, green));
    let on_second = kms_grab(&compositor, &["--crtc", "1"]).0;
    assert_ne!(on_second, image, "the explicit buffer shows before its acquire point");

    signal_point(&card, acquire, 1);
    wait_on_crtc_at(&compositor, 1, "drm-mixed-blue", |shot| *shot == image);
    let stats = import_stats(&compositor);
    assert_eq!((stats.get("held_commits"), stats.get("held_acquires")), (Some(&1), Some(&1)), "{stats:?}");
    drop(pages);
}

/// A synchronised subsurface's commit waits for its acquire point, and takes its
/// parent's next commit with it; destroyed before the point is signalled, it lets the
/// parent's commit go on rather than hold it for ever.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn a_parents_commit_waiting_on_a_destroyed_subsurfaces_acquire_point_goes_on() {
    let compositor = start_drm_composing();
    let card = open_card();
    let (_acquire, acquire_fd) = new_timeline(&card);
    let (_release, release_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 32);
    let (red, green) = (Rgba::opaque(220, 30, 30), Rgba::opaque(30, 200, 30));
    let images =
        [Image::solid(32, 32, red), Image::solid(32, 32, green), Image::solid(32, 32, Rgba::opaque(0, 0, 200))];
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let window = client.create_window("parent").unwrap();
    window.surface.attach(Some(&buffers[0]), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    // The corner the subsurface's first (8x8) buffer leaves uncovered.
    let corner = |shot: &Image| shot.crop(x + 24, y + 24, 8, 8);
    wait_on_crtc(&compositor, "drm-sub-parent", |shot| corner(shot) == Image::solid(8, 8, red));

    let grey = client.create_buffer(&Image::solid(8, 8, Rgba::opaque(90, 90, 90)), Format32::Xrgb8888, 32, 0xff);
    let grey = grey.unwrap();
    let (sub, subsurface) = client.create_subsurface(&window.surface, 0, 0, &grey);
    let sync = client.explicit_sync(&sub, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    sync.set_points(1, 1);
    sub.attach(Some(&buffers[2]), 0, 0);
    sub.damage_buffer(0, 0, 32, 32);
    sub.commit();
    // The parent's next commit applies the subsurface's with it: both wait for the point.
    window.surface.attach(Some(&buffers[1]), 0, 0);
    window.surface.damage_buffer(0, 0, 32, 32);
    window.surface.commit();
    client.roundtrip().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(corner(&crtc_shot(&compositor)), Image::solid(8, 8, red), "the parent's commit waits with its child's");

    subsurface.destroy();
    sub.destroy();
    client.roundtrip().unwrap();
    wait_on_crtc(&compositor, "drm-sub-gone", |shot| corner(shot) == Image::solid(8, 8, green));
    drop(memory);
}

/// wp_linux_drm_syncobj_manager_v1.import_timeline
const IMPORT_TIMELINE: u16 = 2;

/// Each imported timeline holds its syncobj's fd: past `--max-client-fds`, the client
/// gets `no_memory`, and the compositor serves on.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn imported_timelines_count_against_the_clients_fds() {
    let compositor = Compositor::start_drm(&axiom_binary(), &["--no-direct-scanout", "--max-client-fds", "8"])
        .expect("axiom --backend drm starts");
    let card = open_card();
    let timelines: Vec<_> = (0..12).map(|_| new_timeline(&card)).collect();
    crate::common::expect_no_memory(&compositor, "12 timelines over a cap of 8 fds", |client| {
        let manager = client.bind("wp_linux_drm_syncobj_manager_v1", 1)?;
        for (_, fd) in &timelines {
            let id = client.new_id();
            client.send(manager, IMPORT_TIMELINE, &[Arg::Uint(id), Arg::Fd(fd.as_fd())])?;
        }
        Ok(())
    });
    assert!(compositor.log().contains("exceeded its resource limit"), "{}", compositor.log());
    let mut late = compositor.connect().expect("the compositor serves on");
    late.roundtrip().unwrap();
}

/// smithay imports each timeline as a syncobj handle it never destroys: a client
/// importing and destroying timelines by the hundred must not grow the handles the
/// compositor holds (they go with the DRM file they live in, replaced every
/// `ROTATE_AFTER` destroyed timelines). A timeline live across those replacements
/// still holds commits and releases buffers; one destroyed while its release point is
/// owed (its buffer on screen) still gets that point signalled after them.
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn timelines_imported_and_destroyed_by_the_hundred_leave_no_handles_behind() {
    use axiom::handlers::timeline_files::ROTATE_AFTER;
    const CYCLES: usize = 5 * ROTATE_AFTER;
    let compositor = start_drm_composing();
    let card = open_card();
    let (acquire, acquire_fd) = new_timeline(&card);
    let (release, release_fd) = new_timeline(&card);
    let (owed, owed_fd) = new_timeline(&card);
    let mut client = compositor.connect().unwrap();
    let (width, height) = output_size(&mut client);
    let (x, y) = centred(width, height, 32, 32);
    let colours = [Rgba::opaque(220, 30, 30), Rgba::opaque(30, 200, 30), Rgba::opaque(30, 30, 220)];
    let images = colours.map(|colour| Image::solid(32, 32, colour));
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (memory, buffers) = udmabuf_buffers(&compositor, &mut client, &dmabuf, &images);
    let window = client.create_window("timelines").unwrap();
    let sync = client.explicit_sync(&window.surface, acquire_fd.as_fd(), release_fd.as_fd()).unwrap();
    let manager = client.bind_syncobj().unwrap();
    let commit = |client: &mut TestClient, buffer: &WlBuffer| {
        window.surface.attach(Some(buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 32, 32);
        window.surface.commit();
        client.roundtrip().unwrap();
    };
    signal_point(&card, acquire, 2);
    sync.set_points(1, 1);
    commit(&mut client, &buffers[0]);
    // The second buffer's release point lies on a timeline whose object goes at once.
    let owed_timeline = manager.import_timeline(owed_fd.as_fd(), &client.qh, ());
    sync.surface.set_acquire_point(&sync.acquire, 0, 2);
    sync.surface.set_release_point(&owed_timeline, 0, 1);
    commit(&mut client, &buffers[1]);
    owed_timeline.destroy();
    wait_on_crtc(&compositor, "drm-timelines-owed", |shot| shot.crop(x, y, 32, 32) == images[1]);

    for _ in 0..CYCLES / 32 {
        let timelines: Vec<_> = (0..32).map(|_| new_timeline(&card)).collect();
        for (_, fd) in &timelines {
            manager.import_timeline(fd.as_fd(), &client.qh, ()).destroy();
        }
        client.roundtrip().unwrap();
    }
    assert_eq!(signalled_point(&card, owed), 0, "the buffer on screen is not released");

    // The live timeline, moved from file to file, still holds a commit for its point.
    sync.set_points(3, 2);
    commit(&mut client, &buffers[2]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(crtc_shot(&compositor).crop(x, y, 32, 32), images[1], "nothing shows before its acquire point");
    signal_point(&card, acquire, 3);
    wait_on_crtc(&compositor, "drm-timelines-live", |shot| shot.crop(x, y, 32, 32) == images[2]);
    let deadline = Instant::now() + LIMIT;
    while signalled_point(&card, owed) < 1 {
        assert!(Instant::now() < deadline, "a destroyed timeline's owed release point was never signalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(signalled_point(&card, release), 1, "the first buffer was released on the live timeline");
    // ... and signals a release point set after the moves.
    signal_point(&card, acquire, 4);
    sync.set_points(4, 3);
    commit(&mut client, &buffers[0]);
    wait_on_crtc(&compositor, "drm-timelines-again", |shot| shot.crop(x, y, 32, 32) == images[0]);
    let deadline = Instant::now() + LIMIT;
    while signalled_point(&card, release) < 2 {
        assert!(Instant::now() < deadline, "the live timeline's release point was never signalled after the moves");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Left: one file, holding the two live timelines and those destroyed since it took over.
    let bound = 2 + ROTATE_AFTER as u64;
    let deadline = Instant::now() + LIMIT;
    loop {
        let stats = import_stats(&compositor);
        let (files, handles) = (stats["timeline_files"], stats["timeline_handles"]);
        if files == 1 && handles <= bound {
            assert!(handles >= 2, "the live timelines' handles are counted: {handles}");
            break;
        }
        assert!(Instant::now() < deadline, "{files} timeline files with {handles} handles after {CYCLES} timelines");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(memory);
}

/// On KMS, wayland-info lists every synchronisation protocol Axiom has: explicit sync,
/// FIFO, commit timing, tearing control and presentation time (docs/SYNC.md).
#[test]
#[ignore = "needs a KMS device: tests/vm/drm-tests runs it in the VM rig"]
fn wayland_info_on_kms_lists_every_synchronisation_protocol() {
    let compositor = start_drm();
    let output = compositor.client_command("wayland-info").output().expect("wayland-info must be installed");
    assert!(output.status.success(), "wayland-info failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    for name in [
        "wp_linux_drm_syncobj_manager_v1",
        "wp_fifo_manager_v1",
        "wp_commit_timing_manager_v1",
        "wp_tearing_control_manager_v1",
        "wp_presentation",
    ] {
        assert!(text.contains(&format!("interface: '{name}'")), "{name} in:\n{text}");
    }
}
