use std::path::Path;

use std::time::{Duration, Instant};

use axiom_testclient::hostile::wire::{Ending, DISPLAY};
use axiom_testclient::hostile::WireClient;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::{Buffer, Compositor, Image, TestClient, Window};

/// The output colour where no window is (axiom::render::BACKGROUND).
pub const BACKGROUND: Rgba = Rgba::opaque(0x20, 0x20, 0x20);

pub fn start(width: u32, height: u32) -> Compositor {
    start_with(width, height, &[])
}

pub fn start_with(width: u32, height: u32, args: &[&str]) -> Compositor {
    Compositor::start(&axiom_binary(), width, height, args).expect("start axiom")
}

/// The compositor under test: the one cargo built, or $AXIOM_BIN (to run the tests
/// against a binary built elsewhere, e.g. on a GPU machine without a toolchain).
pub fn axiom_binary() -> std::path::PathBuf {
    std::env::var_os("AXIOM_BIN")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_BIN_EXE_axiom")).to_path_buf())
}

/// Top-left corner of a `w`x`h` window on a `width`x`height` output (windows are centred).
pub fn centred(width: u32, height: u32, w: u32, h: u32) -> (u32, u32) {
    ((width.saturating_sub(w)) / 2, (height.saturating_sub(h)) / 2)
}

/// How many pixels of the rectangle differ from the background.
pub fn non_background(image: &Image, x: u32, y: u32, w: u32, h: u32) -> usize {
    image.crop(x, y, w, h).pixels.iter().filter(|p| p.distance(BACKGROUND) > 0).count()
}

/// Saves an image next to the test binary's temporary files when a check fails, and
/// returns its path for the failure message.
pub fn save_png(image: &Image, name: &str) -> String {
    let path = std::env::temp_dir().join(format!("axiom-{name}.png"));
    let result = (|| -> anyhow::Result<()> {
        let file = std::fs::File::create(&path)?;
        let mut encoder = png::Encoder::new(file, image.width, image.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&image.rgba_bytes())?;
        Ok(())
    })();
    match result {
        Ok(()) => path.display().to_string(),
        Err(err) => format!("(could not save {}: {err})", path.display()),
    }
}

/// Asserts that `got` matches `want` within `tolerance`, saving both on failure.
pub fn assert_image(got: &Image, want: &Image, tolerance: u8, name: &str) {
    if let Err(diff) = got.compare(want, tolerance) {
        let g = save_png(got, &format!("{name}-got"));
        let w = save_png(want, &format!("{name}-want"));
        panic!("{name}: {diff} (saved {g} and {w})");
    }
}

/// The compositor's import counters: asks with SIGUSR1 and parses the line it logs.
pub fn import_stats(compositor: &axiom_testclient::Compositor) -> std::collections::HashMap<String, u64> {
    const PREFIX: &str = "DMA-BUF stats: ";
    let before = compositor.log().matches(PREFIX).count();
    let pid = rustix::process::Pid::from_raw(compositor.pid() as i32).expect("a real pid");
    rustix::process::kill_process(pid, rustix::process::Signal::USR1).expect("SIGUSR1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = compositor.log();
        if log.matches(PREFIX).count() > before {
            let line = log.lines().rfind(|l| l.contains(PREFIX)).unwrap_or_default();
            let fields = line.split(PREFIX).nth(1).unwrap_or_default();
            return fields
                .split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect();
        }
        assert!(std::time::Instant::now() < deadline, "no stats line after SIGUSR1:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The import counter of the Vulkan step that takes a LINEAR dma-buf: step 1 (an
/// image by modifier) where it is live, else step 2 (a buffer read in place); None
/// where neither is (`--dmabuf-import cpu`, a build without the ladder, or no
/// dma-buf import in the driver).
pub fn dmabuf_vulkan_counter(compositor: &axiom_testclient::Compositor) -> Option<&'static str> {
    let log = compositor.log();
    if log.contains("1 dma-buf -> VkImage by modifier: live") {
        Some("vulkan_image")
    } else if log.contains("2 dma-buf -> VkBuffer sampled in place: live") {
        Some("vulkan_buffer")
    } else {
        None
    }
}

/// A well-behaved client whose window covers the whole output in one colour:
/// tests of hostile clients check that it is still served after each abuse.
pub struct Bystander {
    client: TestClient,
    window: Window,
    _buffer: Buffer,
    size: (u32, u32),
    colour: Rgba,
}

impl Bystander {
    /// Maps the window on a `width`x`height` output.
    pub fn new(compositor: &Compositor, width: u32, height: u32, colour: Rgba) -> Self {
        let mut client = compositor.connect().unwrap();
        let window = client.create_window("bystander").unwrap();
        let image = Image::solid(width, height, colour);
        let buffer = client.create_buffer(&image, Format32::Xrgb8888, width as usize * 4, 0xff).unwrap();
        client.present(&window.surface, &buffer).unwrap();
        Self { client, window, _buffer: buffer, size: (width, height), colour }
    }

    /// Gets a frame callback, then a screenshot whose first `columns` columns show
    /// the window exactly (other clients' windows are centred; those of a client
    /// that just left may take a moment to go, so this retries for up to 3 s).
    pub fn check(&mut self, after: &str, columns: u32) {
        let (width, height) = self.size;
        let columns = columns.min(width);
        let want = Image::solid(columns, height, self.colour);
        self.client
            .commit_and_wait_frame(&self.window.surface)
            .unwrap_or_else(|e| panic!("no frame after {after}: {e:#}"));
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let shot = self.client.screenshot().unwrap_or_else(|e| panic!("no screenshot after {after}: {e:#}"));
            let got = shot.crop(0, 0, columns, height);
            if got == want || Instant::now() > deadline {
                assert_image(&got, &want, 0, &format!("bystander after {after}"));
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An 8-bit RGB or RGBA PNG as opaque pixels.
pub fn load_png(path: &std::path::Path) -> Image {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut data).unwrap();
    let channels = info.line_size / info.width as usize;
    Image::from_rgb_rows(info.width, info.height, &data, info.line_size, channels)
}

/// One opaque XRGB8888 wl_shm buffer of `size`x`size` per colour.
pub fn solid_buffers(client: &mut TestClient, size: u32, colours: &[Rgba]) -> Vec<Buffer> {
    colours
        .iter()
        .map(|&c| {
            client.create_buffer(&Image::solid(size, size, c), Format32::Xrgb8888, size as usize * 4, 0xff).unwrap()
        })
        .collect()
}

/// Maps a window showing a `width`x`height` test pattern and waits until it is on screen.
pub fn show_pattern(client: &mut TestClient, width: u32, height: u32) -> (Window, Buffer, Image) {
    let window = client.create_window("pattern").unwrap();
    let pattern = axiom_testclient::image::test_pattern(width, height);
    let buffer = client.create_buffer(&pattern, Format32::Xrgb8888, width as usize * 4, 0xff).unwrap();
    client.present(&window.surface, &buffer).unwrap();
    client.commit_and_wait_frame(&window.surface).unwrap();
    (window, buffer, pattern)
}

/// wl_display.error code no_memory.
pub const NO_MEMORY: u32 = 2;

/// Open fds and resident memory (KiB) of a process, from /proc.
pub fn footprint(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (fds, rss)
}

/// Resident memory (KiB) of a process outside malloc's main heap. The heap's pages are
/// not a measure of what is alive: memory malloc took from the system once is touched
/// piecemeal as it is reused (on lavapipe the heap's resident size climbs to its full
/// extent over thousands of imports while the bytes in use stay flat), so a leak in
/// the heap is looked for in `malloc_in_use` instead.
pub fn resident_outside_heap(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut in_heap = false;
    let mut total = 0;
    for line in smaps.lines() {
        match line.split_once(':') {
            // A mapping's header: "start-end perms offset dev inode [name]".
            _ if line.split_whitespace().next().is_some_and(|range| range.contains('-') && !range.ends_with(':')) => {
                in_heap = line.ends_with("[heap]");
            }
            Some(("Rss", kib)) if !in_heap => {
                total += kib.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            }
            _ => {}
        }
    }
    total
}

/// Runs `requests` on a fresh raw connection and expects wl_display.error(no_memory).
pub fn expect_no_memory(
    compositor: &Compositor,
    what: &str,
    requests: impl FnOnce(&mut WireClient) -> anyhow::Result<()>,
) {
    let mut client = WireClient::connect(&compositor.socket_path()).unwrap();
    // The compositor may cut the client off before it has sent everything (a broken
    // pipe): what it said on the way out is still to be read.
    let sent = requests(&mut client);
    match client.expect_end() {
        Ok(Ending::Error(err)) => {
            assert_eq!((err.object, err.code), (DISPLAY, NO_MEMORY), "{what}: {}", err.message);
            assert!(err.message.contains("limit"), "{what}: the message says why: {}", err.message);
        }
        other => panic!("{what}: expected wl_display.error(no_memory), got {other:?} (sending: {sent:?})"),
    }
}

/// Where each open fd of a process points, for failure messages.
pub fn open_fds(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.flatten().map(|e| std::fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default()).collect()
}

/// The footprint once the compositor has finished with the clients that just left:
/// its open fds the same in two readings 300 ms apart (under the VM rig's emulation,
/// letting go of what many clients left takes longer than one such pause).
pub fn settled_footprint(pid: u32) -> (usize, u64) {
    std::thread::sleep(Duration::from_millis(300));
    let mut last = footprint(pid);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        let now = footprint(pid);
        if now.0 == last.0 {
            return now;
        }
        last = now;
    }
    last
}

/// Asserts that presented frames (`Presented::Presented`, in order) are paced by one
/// output's clock at `interval`: each has a refresh of its own (seq increases), every
/// frame reports the refresh `interval`, and the refreshes are `interval` apart in
/// time. Headless presentation time is when the frame's GPU work finished, after the
/// refresh (`seq`) that composed it, so any one frame may be late by however long a
/// loaded machine takes; the check is on the rate, not on that lateness. Time less seq
/// times `interval` is when refresh 0 was plus the frame's lateness; a clock running
/// at another rate moves it by the difference at every refresh. Over the refreshes the
/// frames span, it may move by a quarter of that span: a clock 25% off the interval
/// fails, a frame late by a few refreshes does not.
pub fn assert_on_refresh_grid(presented: &[axiom_testclient::client::Presented], interval: Duration, what: &str) {
    use axiom_testclient::client::Presented;
    let frames: Vec<(Duration, u64, u32)> = presented
        .iter()
        .map(|p| match *p {
            Presented::Presented { time, seq, refresh_ns, .. } => (time, seq, refresh_ns),
            Presented::Discarded => panic!("{what}: a frame was discarded: {presented:?}"),
        })
        .collect();
    let refresh = interval.as_nanos() as u32;
    assert!(frames.iter().all(|f| f.2 == refresh), "{what}: every frame reports refresh {refresh} ns: {frames:?}");
    assert!(frames.windows(2).all(|w| w[0].1 < w[1].1), "{what}: one refresh per frame (seq): {frames:?}");
    assert!(frames.windows(2).all(|w| w[0].0 < w[1].0), "{what}: times increase: {frames:?}");
    let span = frames.last().map_or(0, |f| f.1) - frames.first().map_or(0, |f| f.1);
    assert!(span >= 4, "{what}: the frames span at least 4 refreshes, for their rate to show: {frames:?}");
    let offsets: Vec<i128> = frames
        .iter()
        .map(|&(time, seq, _)| time.as_nanos() as i128 - i128::from(seq) * interval.as_nanos() as i128)
        .collect();
    let spread = offsets.iter().max().unwrap_or(&0) - offsets.iter().min().unwrap_or(&0);
    let allowed = i128::from(span) * interval.as_nanos() as i128 / 4;
    assert!(
        spread < allowed,
        "{what}: time less seq refreshes of {interval:?} varies by {spread} ns over {span} refreshes, more than \
         {allowed} ns (a quarter of them): the refreshes are not {interval:?} apart: {frames:?}"
    );
}
