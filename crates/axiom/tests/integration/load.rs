//! Resource abuse: per-client limits, buffer churn by clients that come and
//! go (fds and RSS back at their baseline), a client flooding commits while
//! never reading its socket, and 200 clients at once. Figures are printed for
//! docs/RELIABILITY.md; the assertions are on counts, never on timings.

use axiom_testclient::hostile::capture;
use axiom_testclient::hostile::requests::{memfd, XRGB8888};
use axiom_testclient::hostile::stress::{self, BufferKind, Reading};
use axiom_testclient::hostile::WireClient;
use axiom_testclient::image::Rgba;
use axiom_testclient::Compositor;

use crate::common::{
    expect_no_memory, import_stats, open_fds, resident_outside_heap, settled_footprint, start_with, Bystander,
};

const W: u32 = 64;
const H: u32 = 48;
/// Columns on the left no other test window covers.
const EDGE: u32 = 8;
const COLOUR: Rgba = Rgba::opaque(200, 40, 90);

#[test]
fn going_over_a_client_limit_is_no_memory_and_a_log_line_naming_the_client() {
    let args = ["--max-client-surfaces", "4", "--max-client-buffers", "6", "--max-client-buffer-mib", "1"];
    let compositor = start_with(W, H, &args);
    let mut bystander = Bystander::new(&compositor, W, H, COLOUR);

    expect_no_memory(&compositor, "a fifth surface", |c| {
        let g = c.bind_common()?;
        for _ in 0..5 {
            c.create_surface(&g)?;
        }
        Ok(())
    });
    expect_no_memory(&compositor, "a seventh buffer", |c| {
        let g = c.bind_common()?;
        let pool = c.create_pool(&g, memfd(4096)?, 4096)?;
        for _ in 0..7 {
            c.create_buffer(pool, 0, 4, 4, 16, XRGB8888)?;
        }
        Ok(())
    });
    // An shm pool is mapped whole, and stays mapped while any buffer of it lives: its size is charged.
    const KIB_600: i32 = 600 << 10;
    expect_no_memory(&compositor, "an shm pool over 1 MiB", |c| {
        let g = c.bind_common()?;
        c.create_pool(&g, memfd(1 << 21)?, (1 << 20) + 1)?;
        Ok(())
    });
    expect_no_memory(&compositor, "shm pools adding up to over 1 MiB, with no buffer", |c| {
        let g = c.bind_common()?;
        let fd = memfd(KIB_600 as u64)?;
        c.create_pool(&g, &fd, KIB_600)?;
        c.create_pool(&g, &fd, KIB_600)?;
        Ok(())
    });
    expect_no_memory(&compositor, "an shm pool grown past 1 MiB", |c| {
        let g = c.bind_common()?;
        let pool = c.create_pool(&g, memfd(1 << 21)?, 4096)?;
        c.resize_pool(pool, (1 << 20) + 1)?;
        Ok(())
    });
    expect_no_memory(&compositor, "a destroyed shm pool whose buffer lives, and another pool", |c| {
        let g = c.bind_common()?;
        let fd = memfd(KIB_600 as u64)?;
        let pool = c.create_pool(&g, &fd, KIB_600)?;
        c.create_buffer(pool, 0, 4, 4, 16, XRGB8888)?;
        c.destroy_pool(pool)?;
        c.roundtrip()?;
        c.create_pool(&g, &fd, KIB_600)?;
        Ok(())
    });
    expect_no_memory(&compositor, "dma-bufs adding up to over 1 MiB", |c| {
        let dmabuf = c.bind("zwp_linux_dmabuf_v1", 3)?;
        let size = 300 * 300 * 4;
        let fd = memfd(size as u64)?;
        for _ in 0..3 {
            c.dmabuf_buffer(dmabuf, &fd, 300, 300, 300 * 4, axiom_testclient::hostile::requests::DRM_XRGB8888)?;
        }
        Ok(())
    });

    expect_no_memory(&compositor, "a seventh params object, never used", |c| {
        let dmabuf = c.bind("zwp_linux_dmabuf_v1", 3)?;
        for _ in 0..7 {
            let params = c.new_id();
            c.send(dmabuf, 1, &[axiom_testclient::hostile::wire::Arg::Uint(params)])?;
        }
        Ok(())
    });

    // Counts go down again: a client that keeps destroying what it made stays within its caps.
    let mut within = WireClient::connect(&compositor.socket_path()).unwrap();
    let g = within.bind_common().unwrap();
    let fd = memfd(KIB_600 as u64).unwrap();
    for _ in 0..20 {
        let pool = within.create_pool(&g, &fd, KIB_600).unwrap();
        let surface = within.create_surface(&g).unwrap();
        let buffers: Vec<u32> = (0..6).map(|_| within.create_buffer(pool, 0, 4, 4, 16, XRGB8888).unwrap()).collect();
        within.destroy_pool(pool).unwrap();
        for buffer in buffers {
            within.destroy(buffer).unwrap();
        }
        within.destroy(surface).unwrap();
        within.roundtrip().expect("a client within its limits is not disconnected");
    }

    let log = compositor.log();
    let line = log.lines().filter(|l| l.contains("exceeded its resource limit")).collect::<Vec<_>>();
    assert_eq!(line.len(), 8, "one log line per client over a limit:\n{log}");
    let pid = format!("pid {} (", std::process::id());
    let exe = std::env::current_exe().unwrap().display().to_string();
    assert!(line.iter().all(|l| l.contains(&pid) && l.contains(&exe)), "lines name pid and executable: {line:#?}");
    bystander.check("the limits", EDGE);
}

#[test]
fn ten_thousand_buffer_cycles_leave_fds_memory_and_imports_at_baseline() {
    // A fast refresh so that most committed buffers are really imported.
    let mut compositor = start_with(W, H, &["--refresh", "500"]);
    soak(&mut compositor, &BufferKind::ALL, 2);
}

/// The leak soak: after a warm-up (`warmup` clients of 250 cycles per kind),
/// each kind of buffer in turn, 2,500 create/commit/destroy cycles by 10
/// clients coming and going, measured on its own; fails on one extra fd, one
/// live import, mapping or texture, or 1 MiB more in use by malloc or resident
/// outside malloc's heap.
pub fn soak(compositor: &mut Compositor, kinds: &[BufferKind], warmup: usize) {
    let socket = compositor.socket_path();
    let socket = socket.as_path();
    let pid = compositor.pid();
    // `clients` clients making buffers of `kind`, five at a time, coming and going.
    let round = |kind: BufferKind, clients: usize, cycles: usize| {
        for _ in 0..clients.div_ceil(5) {
            std::thread::scope(|s| {
                let churns: Vec<_> =
                    (0..clients.min(5)).map(|_| s.spawn(move || stress::churn(socket, kind, cycles))).collect();
                for churn in churns {
                    churn.join().unwrap().unwrap_or_else(|e| panic!("{kind:?} churn: {e:#}"));
                }
            });
        }
    };
    // Open fds, malloc's bytes in use and resident KiB outside its heap, once settled.
    let footprint = |compositor: &Compositor| {
        let (fds, _) = settled_footprint(pid);
        let in_use = import_stats(compositor).get("malloc_in_use").copied().unwrap_or(u64::MAX);
        (fds, in_use, resident_outside_heap(pid))
    };
    let live = |compositor: &Compositor| {
        let stats = import_stats(compositor);
        LIVE.map(|k| stats.get(k).copied().unwrap_or(u64::MAX))
    };
    // Warm-up: every path's allocator pools, shader pipelines and caches reach their working size.
    for &kind in kinds {
        round(kind, warmup, 250);
    }
    // Each import path in turn: 2,500 cycles by 10 clients, measured on its own.
    for &kind in kinds {
        let baseline = footprint(compositor);
        let live_before = live(compositor);
        let counters_before = import_stats(compositor);
        round(kind, 10, 250);
        // Clients that just left are cleaned up when the compositor next runs: give it a moment.
        let mut after = footprint(compositor);
        for _ in 0..20 {
            if after.0 <= baseline.0 && after.1 <= baseline.1 + MALLOC_SLACK {
                break;
            }
            after = footprint(compositor);
        }
        let counters = import_stats(compositor);
        let read = |k: &str| {
            counters.get(k).copied().unwrap_or(0).saturating_sub(counters_before.get(k).copied().unwrap_or(0))
        };
        let paths = READ_BY.map(|k| format!("{k} +{}", read(k))).join(", ");
        eprintln!(
            "soak {kind:?}: 2500 create/commit/destroy cycles by 10 clients: fds {} -> {}, malloc in use {} KiB -> {} KiB, resident outside the heap {} KiB -> {} KiB; read by {paths}",
            baseline.0,
            after.0,
            baseline.1 / 1024,
            after.1 / 1024,
            baseline.2,
            after.2
        );
        assert!(compositor.is_running());
        // The buffers were really read, not just created.
        assert!(READ_BY.iter().map(|k| read(k)).sum::<u64>() > 100, "{kind:?}: buffers read ({paths})");
        assert_eq!(live(compositor), live_before, "{kind:?}: {LIVE:?} back at the baseline");
        assert_eq!(after.0, baseline.0, "{kind:?}: open fds back at the baseline: {:?}", open_fds(pid));
        assert!(
            after.1 <= baseline.1 + MALLOC_SLACK,
            "{kind:?}: malloc's bytes in use back near the baseline: {} KiB -> {} KiB",
            baseline.1 / 1024,
            after.1 / 1024
        );
        assert!(
            after.2 <= baseline.2 + RESIDENT_SLACK_KIB,
            "{kind:?}: resident memory outside the heap back near the baseline: {} KiB -> {} KiB",
            baseline.2,
            after.2
        );
    }
}

/// What a soak round may leave behind: malloc's caches and pools (bytes in use), and
/// resident pages of driver and library mappings (KiB); tens of KiB were measured.
/// Each round creates 2,500 buffers and reads some 300 of them (the rest are replaced
/// before a frame draws them): a leak of 512 bytes per buffer made, or of 4 KiB (its
/// pixels, a mapping of them, its import and texture structures) per buffer read,
/// goes over.
const MALLOC_SLACK: u64 = 1024 * 1024;
const RESIDENT_SLACK_KIB: u64 = 1024;

/// What the compositor holds for buffers while they live.
const LIVE: [&str; 4] = ["live_imports", "live_host_imports", "live_mappings", "live_textures"];
/// The counters of each way a buffer is read: CPU copy or mapping of a dma-buf, the
/// two Vulkan import steps, a wl_shm pool read in place, a wl_shm copy.
const READ_BY: [&str; 5] = ["cpu_imports", "vulkan_buffer", "vulkan_image", "host_pointer", "shm_cpu_uploads"];

#[test]
fn clients_flooding_commits_do_not_starve_others_or_grow_memory() {
    let mut compositor = start_with(W, H, &[]);
    let socket = compositor.socket_path();
    let mut bystander = Bystander::new(&compositor, W, H, COLOUR);
    let mut rss = Vec::new();
    // Alternately a client that never reads its socket (the compositor must cut it
    // off rather than queue its events without bound) and one that reads but never
    // waits for a release or a frame.
    let rounds = [Reading::Never, Reading::Drains, Reading::Never, Reading::Drains];
    for (round, reading) in rounds.into_iter().enumerate() {
        let flood = std::thread::scope(|s| {
            // The client that never reads is cut off after a few thousand commits on
            // Linux's default socket buffers; the margin allows for larger ones.
            let count = if reading == Reading::Never { 50_000 } else { 10_000 };
            let socket = &socket;
            let flood = s.spawn(move || stress::flood(socket, count, reading));
            // Served while the flood runs.
            for _ in 0..5 {
                bystander.check("a flood of commits", EDGE);
            }
            flood.join().unwrap().expect("flood")
        });
        assert!(compositor.is_running(), "the compositor died in flood {round}");
        bystander.check("a flood of commits", EDGE);
        let (_, kib) = settled_footprint(compositor.pid());
        eprintln!(
            "flood {round} ({reading:?}): {} commits in {:.2} s ({:.0}/s), cut off: {}, compositor RSS {kib} KiB",
            flood.commits,
            flood.elapsed.as_secs_f64(),
            flood.per_second(),
            flood.cut_off
        );
        match reading {
            Reading::Never => assert!(flood.cut_off, "a client that never reads is disconnected, not buffered for"),
            Reading::Drains => assert!(!flood.cut_off, "a client that reads its events is served"),
        }
        rss.push(kib);
    }
    // Each flood creates and drops thousands of buffers: memory must not follow.
    assert!(rss[3] <= rss[1] + 8 * 1024, "RSS grows with each flood: {rss:?} KiB");
}

#[test]
fn two_hundred_clients_with_a_window_each_all_get_frame_callbacks() {
    const CLIENTS: usize = 200;
    let compositor = start_with(W, H, &[]);
    let socket = compositor.socket_path();
    let mut windows = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = WireClient::connect(&socket).unwrap();
        let g = c.bind_common().unwrap();
        let (surface, _, _) = c.configured_toplevel(&g).unwrap();
        let (fd, pool, buffer) = c.shm_buffer(&g, 8, 8).unwrap();
        c.attach(surface, buffer, 0, 0).unwrap();
        c.commit(surface).unwrap();
        windows.push((c, surface, (fd, pool, buffer)));
    }
    // Three rounds: every client asks for a frame and commits, then every one must get it.
    for round in 0..3 {
        let callbacks: Vec<u32> = windows
            .iter_mut()
            .map(|(c, surface, _)| {
                let frame = c.frame(*surface).unwrap();
                c.damage_buffer(*surface, 0, 0, 8, 8).unwrap();
                c.commit(*surface).unwrap();
                frame
            })
            .collect();
        for (i, ((c, _, _), frame)) in windows.iter_mut().zip(callbacks).enumerate() {
            c.wait_event(frame, 0)
                .unwrap_or_else(|e| panic!("client {i} of {CLIENTS} starved in round {round}: {e:#}"));
            c.events.clear();
        }
    }
}

/// Captures into dma-bufs made and dropped by the thousand, through zwlr_screencopy
/// and ext-image-copy-capture (output and toplevel sources), in every ordering
/// (answered, the buffer destroyed while the capture may be on the GPU, the frame
/// destroyed before it is answered, an ext session and source destroyed under a
/// pending frame, a client gone with its capture pending), leave the compositor's
/// fds, imports, sessions and malloc'd memory at their baseline. Where no dma-buf can
/// be written (the CPU step forced) each capture fails, and the same holds.
#[test]
fn captures_into_dmabufs_by_the_thousand_in_every_ordering_leave_nothing_behind() {
    let compositor = start_with(W, H, &["--refresh", "500"]);
    let _bystander = Bystander::new(&compositor, W, H, COLOUR);
    let socket = compositor.socket_path();
    let pid = compositor.pid();
    let round = |clients: usize, cycles: usize| {
        std::thread::scope(|s| {
            let socket = &socket;
            let churns: Vec<_> = (0..clients)
                .map(|n| {
                    s.spawn(move || match n % 2 {
                        0 => capture::capture_churn(socket, W as i32, H as i32, cycles),
                        _ => capture::ext_capture_churn(socket, cycles),
                    })
                })
                .collect();
            for churn in churns {
                churn.join().unwrap().unwrap_or_else(|e| panic!("capture churn: {e:#}"));
            }
        });
    };
    let footprint = || {
        let (fds, _) = settled_footprint(pid);
        let stats = import_stats(&compositor);
        let live: Vec<u64> = LIVE.iter().map(|k| stats.get(*k).copied().unwrap_or(u64::MAX)).collect();
        (fds, live, stats.get("malloc_in_use").copied().unwrap_or(u64::MAX), stats)
    };
    // Warm-up: pipelines, pools and caches reach their working size.
    round(2, 100);
    let (fds, live, malloc, before) = footprint();
    round(5, 200);
    let mut after = footprint();
    for _ in 0..20 {
        if after.0 <= fds && after.2 <= malloc + MALLOC_SLACK {
            break;
        }
        after = footprint();
    }
    let (fds_after, live_after, malloc_after, stats) = after;
    let captured = stats["dmabuf_captures"] - before["dmabuf_captures"];
    eprintln!(
        "capture soak: 1000 captures into dma-bufs by 5 clients, {captured} written: fds {fds} -> {fds_after}, malloc in use {} KiB -> {} KiB",
        malloc / 1024,
        malloc_after / 1024
    );
    if crate::common::dmabuf_vulkan_counter(&compositor).is_some() {
        // Each zwlr client's (0, 2, 4) every third capture and each ext client's (1, 3)
        // every fourth waits for its answer: those all were written.
        let every = |n: usize| (0..200).filter(|cycle| cycle % n == 0 && cycle + 1 != 200).count() as u64;
        let waited = 3 * every(3) + 2 * every(4);
        assert!(captured >= waited, "the captures waited for were written: {captured} of {waited}");
    }
    assert_eq!(live_after, live, "{LIVE:?} back at the baseline");
    assert_eq!(stats.get("capture_sessions"), Some(&0), "every session freed: {stats:?}");
    assert_eq!(fds_after, fds, "open fds back at the baseline: {:?}", open_fds(pid));
    assert!(
        malloc_after <= malloc + MALLOC_SLACK,
        "malloc in use {} KiB -> {} KiB",
        malloc / 1024,
        malloc_after / 1024
    );
}

/// ext-image-copy-capture sessions made and destroyed by the thousand are each freed
/// with its object: the compositor tracks none afterwards (`capture_sessions=`).
#[test]
fn capture_sessions_made_and_destroyed_by_the_thousand_are_freed() {
    let compositor = start_with(W, H, &[]);
    let mut client = compositor.connect().unwrap();
    let output = client.output.clone();
    let mut kept = Vec::new();
    for n in 0..1000 {
        let (session, events) = client.ext_capture_session(&output).unwrap();
        assert!(events.done, "{events:?}");
        // Every tenth stays until the count below.
        if n % 10 == 0 {
            kept.push(session);
        } else {
            session.session.destroy();
            session.source.destroy();
        }
    }
    let sessions = |client: &mut axiom_testclient::TestClient| {
        // A repaint drops what the compositor still tracks of sessions that are gone.
        let _shown = crate::common::show_pattern(client, 16, 16);
        import_stats(&compositor).get("capture_sessions").copied()
    };
    assert_eq!(sessions(&mut client), Some(100), "the sessions alive");
    for session in kept {
        session.session.destroy();
        session.source.destroy();
    }
    assert_eq!(sessions(&mut client), Some(0), "none once all are destroyed");
}
