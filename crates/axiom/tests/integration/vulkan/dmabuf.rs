//! Dma-bufs through the Vulkan steps: images by modifier (step 1) or buffers (step 2).

use axiom_testclient::convert::{YuvMatrix, YuvRange};
use axiom_testclient::dmabuf::{seal_shrink, Created, Plane};
use axiom_testclient::encode::{block_pattern, encode, Options};
use axiom_testclient::image::Format32;
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Image, Rgba};
use smithay::backend::allocator::Fourcc;

use super::{OUT_H, OUT_W};
use crate::common::{assert_image, centred, import_stats, start};

#[test]
fn memfd_dmabufs_are_read_in_place_without_reimport() {
    let compositor = start(OUT_W, OUT_H);
    // lavapipe imports memfds as dma-bufs, so on CI a Vulkan step must be live.
    let step = crate::common::dmabuf_vulkan_counter(&compositor).unwrap_or_else(|| panic!("{}", compositor.log()));
    let mut client = compositor.connect().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (w, h, stride) = (32u32, 16u32, 160u32);
    let red = Rgba::opaque(255, 0, 0);
    let blue = Rgba::opaque(0, 0, 255);
    let mut memory = SharedMemory::new((stride * h) as usize).unwrap();
    memory.bytes_mut().copy_from_slice(&Format32::Xrgb8888.encode_image(&Image::solid(w, h, red), stride as usize, 0));
    seal_shrink(memory.fd()).unwrap();
    let params = client.dmabuf_params(&dmabuf, &[Plane { fd: memory.fd(), offset: 0, stride, modifier: 0 }]);
    let Created::Buffer(buffer) = client.dmabuf_create(&params, w as i32, h as i32, Fourcc::Xrgb8888 as u32).unwrap()
    else {
        panic!("create failed")
    };
    let window = client.create_window("vulkan").unwrap();
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, w as i32, h as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, w, h);
    assert_image(
        &client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap(),
        &Image::solid(w, h, red),
        0,
        "vulkan-red",
    );

    // Rewrite the client's bytes in place and commit the same buffer again: the new
    // pixels show, and the buffer was imported once. The compositor's memory is the
    // client's memory.
    memory.bytes_mut().copy_from_slice(&Format32::Xrgb8888.encode_image(&Image::solid(w, h, blue), stride as usize, 0));
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, w as i32, h as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    assert_image(
        &client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap(),
        &Image::solid(w, h, blue),
        0,
        "vulkan-blue",
    );

    let stats = import_stats(&compositor);
    assert_eq!(stats.get(step), Some(&1), "{stats:?}");
    assert_eq!(stats.get("cpu_imports"), Some(&0), "{stats:?}");
    assert_eq!(stats.get("cpu_bytes"), Some(&0), "no CPU byte touched: {stats:?}");
    assert_eq!(stats.get("live_imports"), Some(&1), "{stats:?}");
}

#[test]
fn every_format_takes_the_vulkan_step_with_exact_pixels() {
    let compositor = start(OUT_W, OUT_H);
    let step = crate::common::dmabuf_vulkan_counter(&compositor).unwrap_or_else(|| panic!("{}", compositor.log()));
    let mut client = compositor.connect().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (w, h) = (33u32, 17u32);
    let image = block_pattern(w, h);
    let formats = axiom_testclient::layout::FORMATS;
    for format in formats {
        let code = format.fourcc;
        let encoded = encode(
            code,
            &image,
            Options {
                stride_pad: 12,
                plane_gap: 36,
                matrix: YuvMatrix::Bt601,
                range: YuvRange::Limited,
                ..Options::default()
            },
        )
        .unwrap();
        // Whole pages, as every dma-buf is: lavapipe's images may need a little room past
        // the last row (its size requirement pads the height), which only this leaves.
        let mut memory = SharedMemory::new(encoded.bytes.len().next_multiple_of(4096)).unwrap();
        memory.bytes_mut()[..encoded.bytes.len()].copy_from_slice(&encoded.bytes);
        seal_shrink(memory.fd()).unwrap();
        let planes: Vec<Plane<'_>> = encoded
            .planes
            .iter()
            .map(|&(offset, stride)| Plane { fd: memory.fd(), offset, stride, modifier: 0 })
            .collect();
        let params = client.dmabuf_params(&dmabuf, &planes);
        let buffer = client.dmabuf_create_immed(&params, w as i32, h as i32, code);
        let window = client.create_window("vulkan-format").unwrap();
        window.surface.attach(Some(&buffer), 0, 0);
        window.surface.damage_buffer(0, 0, w as i32, h as i32);
        client.commit_and_wait_frame(&window.surface).unwrap();
        let (x, y) = centred(OUT_W, OUT_H, w, h);
        let shot = client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
        // RGB is exact; YUV within one code of the reference conversion.
        let tolerance = u8::from(format.yuv_bits.is_some());
        assert_image(&shot, &encoded.expected, tolerance, &format!("vulkan-{}", axiom_testclient::fourcc::name(code)));
        window.destroy();
        buffer.destroy();
    }
    client.roundtrip().unwrap();
    let stats = import_stats(&compositor);
    assert_eq!(stats.get(step), Some(&(formats.len() as u64)), "{stats:?}");
    assert_eq!(stats.get("cpu_imports"), Some(&0), "{stats:?}");
    // Every wl_buffer was destroyed: its import went with it.
    assert_eq!(stats.get("live_imports"), Some(&0), "{stats:?}");
}

#[test]
fn the_format_table_offers_tiled_modifiers_only_where_step_one_samples_them() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let (_feedback, events) = client.default_feedback(&dmabuf).unwrap();
    let table = &events.format_tables[0];
    let linear: Vec<u32> = table.iter().filter(|(_, m)| *m == 0).map(|(f, _)| *f).collect();
    let every: Vec<u32> = axiom_testclient::layout::FORMATS.iter().map(|f| f.fourcc).collect();
    assert_eq!(linear, every, "every format LINEAR, in table order");
    // The start-up log counts the tiled pairs the driver reports for step 1; without
    // step 1 there are none, whatever the driver says.
    let log = compositor.log();
    let reported = match log.split_once("VkImage by modifier: live (") {
        Some((_, rest)) => rest.split(' ').next().and_then(|n| n.parse::<usize>().ok()).expect("a count"),
        None => 0,
    };
    let tiled: Vec<&(u32, u64)> = table.iter().filter(|(_, m)| *m != 0).collect();
    assert_eq!(tiled.len(), reported, "{tiled:x?}\n{log}");
    // Only single-plane RGB formats get tiled modifiers.
    for (fourcc, _) in tiled {
        let layout = axiom_testclient::layout::layout(*fourcc).unwrap();
        assert!(layout.planes.len() == 1 && layout.yuv_bits.is_none(), "{fourcc:x}");
    }
}

/// `--dmabuf-import cpu` sends a buffer the ladder would read in place through the
/// CPU step instead, with the same pixels.
#[test]
fn the_cpu_switch_takes_the_cpu_step_where_the_ladder_would_read_in_place() {
    let ladder = start(OUT_W, OUT_H);
    assert!(crate::common::dmabuf_vulkan_counter(&ladder).is_some(), "a Vulkan step is live: {}", ladder.log());
    drop(ladder);

    let compositor = crate::common::start_with(OUT_W, OUT_H, &["--dmabuf-import", "cpu"]);
    assert_eq!(crate::common::dmabuf_vulkan_counter(&compositor), None, "{}", compositor.log());
    let mut client = compositor.connect().unwrap();
    let colour = Rgba::opaque(200, 100, 0);
    let (_memory, _buffer, _window) = crate::dmabuf::dmabuf_window(&mut client, colour, true);
    let (x, y) = centred(OUT_W, OUT_H, 32, 16);
    let shot = client.screenshot_region(x as i32, y as i32, 32, 16).unwrap();
    assert_image(&shot, &Image::solid(32, 16, colour), 0, "cpu-switch");
    let stats = import_stats(&compositor);
    let get = |k: &str| stats.get(k).copied();
    assert_eq!(
        (get("cpu_imports"), get("vulkan_image"), get("vulkan_buffer")),
        (Some(1), Some(0), Some(0)),
        "a sealed memfd dma-buf, read by the CPU: {stats:?}"
    );
}

/// Screencopy into a dma-buf: the frame offers one, and the frame reaches the client's
/// buffer on the GPU, never through the CPU: painted into it where step 1 is live (the
/// VM rig), else copied from the output into it imported as a buffer (step 2: the CI
/// host), at any stride (a multiple of 256 bytes is one copy, any other a copy per
/// row), the padding between rows left as it was.
#[test]
fn a_capture_into_a_memfd_dmabuf_gets_exact_pixels_from_the_gpu() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (_window, _buffer, pattern) = crate::common::show_pattern(&mut client, 40, 30);
    let (x, y) = centred(OUT_W, OUT_H, 40, 30);
    let dmabuf = client.bind_dmabuf(4).unwrap();
    const UNTOUCHED: u8 = 0x55;
    for stride in [OUT_W * 4, 1024] {
        assert!(stride >= OUT_W * 4);
        let before = import_stats(&compositor);
        let (frame, offer) = client.start_capture().unwrap();
        assert_eq!(offer.dmabuf, Some((Fourcc::Xrgb8888 as u32, OUT_W, OUT_H)), "{}", compositor.log());
        let mut memory = SharedMemory::new((stride * OUT_H) as usize).unwrap();
        memory.bytes_mut().fill(UNTOUCHED);
        seal_shrink(memory.fd()).unwrap();
        let params = client.dmabuf_params(&dmabuf, &[Plane { fd: memory.fd(), offset: 0, stride, modifier: 0 }]);
        let created = client.dmabuf_create(&params, OUT_W as i32, OUT_H as i32, Fourcc::Xrgb8888 as u32).unwrap();
        let Created::Buffer(target) = created else { panic!("create failed\n{}", compositor.log()) };
        client.finish_capture(frame, &target, false).unwrap();

        let shot = Image::from_xrgb8888(OUT_W, OUT_H, stride as usize, memory.bytes());
        assert_image(&shot.crop(x, y, 40, 30), &pattern, 0, &format!("capture-memfd-{stride}"));
        assert_eq!(crate::common::non_background(&shot, 0, 0, OUT_W, OUT_H), 40 * 30, "stride {stride}");
        let padding = memory.bytes().chunks(stride as usize).flat_map(|row| &row[OUT_W as usize * 4..]);
        assert!(padding.into_iter().all(|&b| b == UNTOUCHED), "stride {stride}: the padding is the client's");
        let after = import_stats(&compositor);
        assert_eq!(after["dmabuf_captures"], before["dmabuf_captures"] + 1, "{after:?}");
        assert_eq!(after.get("readback_bytes"), before.get("readback_bytes"), "nothing read back: {after:?}");
        target.destroy();
    }
}

/// A dma-buf that is not what a capture offered (another size, another format) is the
/// protocol's `invalid_buffer` error for that client; the compositor and its other
/// clients' captures go on.
#[test]
fn a_capture_into_the_wrong_dmabuf_is_the_protocols_invalid_buffer_error() {
    const INVALID_BUFFER: u32 = 1;
    let compositor = start(OUT_W, OUT_H);
    for (width, height, fourcc) in [(32, 16, Fourcc::Xrgb8888), (OUT_W, OUT_H, Fourcc::Abgr8888)] {
        let mut client = compositor.connect().unwrap();
        let dmabuf = client.bind_dmabuf(4).unwrap();
        let memory = SharedMemory::new((width * 4 * height) as usize).unwrap();
        seal_shrink(memory.fd()).unwrap();
        let params =
            client.dmabuf_params(&dmabuf, &[Plane { fd: memory.fd(), offset: 0, stride: width * 4, modifier: 0 }]);
        let created = client.dmabuf_create(&params, width as i32, height as i32, fourcc as u32).unwrap();
        let Created::Buffer(target) = created else { panic!("create failed\n{}", compositor.log()) };
        let (frame, _) = client.start_capture().unwrap();
        frame.copy(&target);
        let (interface, code) = client.expect_protocol_error().unwrap();
        assert_eq!(
            (interface.as_str(), code),
            ("zwlr_screencopy_frame_v1", INVALID_BUFFER),
            "{width}x{height} {fourcc:?}"
        );
    }
    let mut client = compositor.connect().unwrap();
    client.screenshot().unwrap();
}
