//! Saves what a KMS device scans out on one CRTC (the first, or `--crtc INDEX`
//! in the device's list) as an RGB PNG,
//! for tests that run in tests/vm: the primary plane's framebuffer, with the
//! framebuffers of the overlay planes on that CRTC laid over it where they are, then
//! those of its cursor planes (as the display shows planes, unscaled, in the order the
//! kernel lists them; an ARGB8888 one blended as premultiplied alpha).
//!
//! `axiom-kms-grab [--device PATH] [--crtc INDEX] [--wait-ms N] [--skip-fb ID] [--no-overlays] [--list] [OUT.png]`
//!
//! `--no-overlays` saves the primary plane alone.
//!
//! The compositor under test is DRM master; this tool opens the device as a
//! plain client. As root, GETFB2 still hands out GEM handles, which are
//! exported with PRIME and mapped read-only. Only linear XRGB8888/ARGB8888 is
//! read. `--list` prints every plane with its CRTC and framebuffer.
//!
//! `--wait-ms` polls until something is scanned out. A kernel fbdev console
//! (vkms has one) keeps a framebuffer on the CRTC until the compositor's first
//! commit; pass its id (from `--list`) as `--skip-fb` to wait for the next one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use drm::buffer::{DrmFourcc, DrmModifier};
use drm::control::{crtc, framebuffer, plane, Device as ControlDevice, PlaneType};
use drm::{ClientCapability, Device};

struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl Device for Card {}
impl ControlDevice for Card {}

struct Args {
    device: String,
    crtc: usize,
    wait: Duration,
    skip_fb: Option<u32>,
    list: bool,
    no_overlays: bool,
    out: Option<String>,
}

fn main() {
    if let Err(err) = run() {
        eprintln!("axiom-kms-grab: {err:#}");
        std::process::exit(1);
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        device: "/dev/dri/card0".into(),
        crtc: 0,
        wait: Duration::ZERO,
        skip_fb: None,
        list: false,
        no_overlays: false,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--device" => args.device = it.next().context("--device needs a path")?,
            "--wait-ms" => {
                let ms = it.next().context("--wait-ms needs a number")?;
                args.wait = Duration::from_millis(ms.parse().with_context(|| format!("--wait-ms {ms}"))?);
            }
            "--skip-fb" => {
                let fb = it.next().context("--skip-fb needs a framebuffer id")?;
                args.skip_fb = Some(fb.parse().with_context(|| format!("--skip-fb {fb}"))?);
            }
            "--crtc" => {
                let index = it.next().context("--crtc needs an index")?;
                args.crtc = index.parse().with_context(|| format!("--crtc {index}"))?;
            }
            "--list" => args.list = true,
            "--no-overlays" => args.no_overlays = true,
            "-h" | "--help" => {
                println!(
                    "usage: axiom-kms-grab [--device /dev/dri/card0] [--crtc INDEX] [--wait-ms N] [--skip-fb ID] [--no-overlays] [--list] [OUT.png]"
                );
                std::process::exit(0);
            }
            _ if arg.starts_with('-') => bail!("unknown option {arg}"),
            _ if args.out.is_none() => args.out = Some(arg),
            _ => bail!("more than one output file given"),
        }
    }
    if args.out.is_none() && !args.list {
        bail!("no output file given (see --help)");
    }
    Ok(args)
}

fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let file = OpenOptions::new().read(true).write(true).open(&args.device).with_context(|| args.device.clone())?;
    let card = Card(file);
    // The first opener of a primary node becomes master; give that up at once so
    // that a compositor starting after us can still take it. Fails harmlessly
    // (EINVAL) when we are not master.
    let _ = card.release_master_lock();
    // Without this the kernel hides primary and cursor planes.
    card.set_client_capability(ClientCapability::UniversalPlanes, true)
        .with_context(|| format!("{}: not a KMS device (universal planes)", args.device))?;
    // Without this the kernel hides the planes' atomic properties (CRTC_X, ...).
    card.set_client_capability(ClientCapability::Atomic, true)
        .with_context(|| format!("{}: no atomic modesetting", args.device))?;

    if args.list {
        list_planes(&card)?;
    }
    let Some(out) = args.out else { return Ok(()) };

    // The compositor may still be starting: poll until a CRTC scans something out.
    let deadline = Instant::now() + args.wait;
    let mut scanout = loop {
        match find_scanout(&card, args.crtc, args.skip_fb)? {
            Some(found) => break found,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => bail!("{}: CRTC {} has no (new) framebuffer on its primary plane", args.device, args.crtc),
        }
    };
    if args.no_overlays {
        scanout.overlays.clear();
    }
    grab(&card, &scanout, &out)
}

/// What a CRTC shows: its state, its primary plane's framebuffer, its mode's size,
/// and its overlay and cursor planes with a framebuffer, bottom first.
struct Scanout {
    crtc: crtc::Info,
    fb: framebuffer::Handle,
    width: u32,
    height: u32,
    overlays: Vec<OverlayPlane>,
}

/// An overlay or cursor plane showing `fb` at (x, y) on the CRTC, `width` x `height`.
struct OverlayPlane {
    plane: plane::Handle,
    /// "overlay" or "cursor".
    kind: &'static str,
    fb: framebuffer::Handle,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
}

/// The value of the plane's property `name`.
fn plane_property(card: &Card, plane: plane::Handle, name: &str) -> anyhow::Result<Option<u64>> {
    let props = card.get_properties(plane).context("plane properties")?;
    for (&prop, &raw) in props.iter() {
        if card.get_property(prop).context("property info")?.name().to_bytes() == name.as_bytes() {
            return Ok(Some(raw));
        }
    }
    Ok(None)
}

/// The plane's "type" property: Primary, Overlay or Cursor.
fn plane_type(card: &Card, plane: plane::Handle) -> anyhow::Result<Option<PlaneType>> {
    let props = card.get_properties(plane).context("plane properties")?;
    for (&prop, &raw) in props.iter() {
        let info = card.get_property(prop).context("property info")?;
        if info.name().to_bytes() == b"type" {
            return Ok(match raw {
                x if x == PlaneType::Primary as u64 => Some(PlaneType::Primary),
                x if x == PlaneType::Overlay as u64 => Some(PlaneType::Overlay),
                x if x == PlaneType::Cursor as u64 => Some(PlaneType::Cursor),
                _ => None,
            });
        }
    }
    Ok(None)
}

fn id<H: Into<u32>>(handle: Option<H>) -> String {
    handle.map_or("none".into(), |h| h.into().to_string())
}

fn list_planes(card: &Card) -> anyhow::Result<()> {
    for plane in card.plane_handles().context("plane list")? {
        let info = card.get_plane(plane).context("plane info")?;
        let kind = plane_type(card, plane)?.map_or("unknown".into(), |t| format!("{t:?}"));
        let (crtc, fb) = (id(info.crtc()), id(info.framebuffer()));
        writeln!(std::io::stdout(), "plane={} type={kind} crtc={crtc} fb={fb}", u32::from(plane)).context("stdout")?;
    }
    Ok(())
}

/// The CRTC numbered `index` when it has a mode and its primary plane holds a
/// framebuffer, with that framebuffer (unless it is `skip`) and the mode's size.
fn find_scanout(card: &Card, index: usize, skip: Option<u32>) -> anyhow::Result<Option<Scanout>> {
    let resources = card.resource_handles().context("mode resources")?;
    let mut primaries = Vec::new();
    for plane in card.plane_handles().context("plane list")? {
        if plane_type(card, plane)? == Some(PlaneType::Primary) {
            primaries.push(card.get_plane(plane).context("plane info")?);
        }
    }
    if let Some(&handle) = resources.crtcs().get(index) {
        let crtc = card.get_crtc(handle).context("crtc info")?;
        let Some(mode) = crtc.mode() else { return Ok(None) };
        // The primary plane on this CRTC; failing that, an unattached one that
        // may go there (each CRTC has exactly one primary plane).
        let primary = primaries.iter().find(|p| p.crtc() == Some(handle)).or_else(|| {
            primaries
                .iter()
                .find(|p| p.crtc().is_none() && resources.filter_crtcs(p.possible_crtcs()).contains(&handle))
        });
        if let Some(fb) = primary.and_then(|p| p.framebuffer()).filter(|&fb| Some(u32::from(fb)) != skip) {
            let (width, height) = mode.size();
            let overlays = overlays_on(card, handle)?;
            return Ok(Some(Scanout { crtc, fb, width: width.into(), height: height.into(), overlays }));
        }
    }
    Ok(None)
}

/// The overlay planes on `crtc` that hold a framebuffer, then its cursor planes, and where.
fn overlays_on(card: &Card, crtc: crtc::Handle) -> anyhow::Result<Vec<OverlayPlane>> {
    let mut overlays = Vec::new();
    let mut cursors = Vec::new();
    for plane in card.plane_handles().context("plane list")? {
        let (list, kind) = match plane_type(card, plane)? {
            Some(PlaneType::Overlay) => (&mut overlays, "overlay"),
            Some(PlaneType::Cursor) => (&mut cursors, "cursor"),
            _ => continue,
        };
        let info = card.get_plane(plane).context("plane info")?;
        let (Some(fb), true) = (info.framebuffer(), info.crtc() == Some(crtc)) else { continue };
        let prop = |name| plane_property(card, plane, name).map(|v| v.unwrap_or(0));
        list.push(OverlayPlane {
            plane,
            kind,
            fb,
            // CRTC_X and CRTC_Y are signed.
            x: prop("CRTC_X")? as i64 as i32,
            y: prop("CRTC_Y")? as i64 as i32,
            width: prop("CRTC_W")? as u32,
            height: prop("CRTC_H")? as u32,
        });
    }
    overlays.append(&mut cursors);
    Ok(overlays)
}

/// Reads `width` x `height` pixels of framebuffer `fb` from (x0, y0) as packed RGBA
/// (alpha 255 where the format has none).
fn read_framebuffer(
    card: &Card,
    fb: framebuffer::Handle,
    (x0, y0): (u32, u32),
    width: u32,
    height: u32,
) -> anyhow::Result<(Vec<u8>, framebuffer::PlanarInfo)> {
    let info = card.get_planar_framebuffer(fb).context("GETFB2")?;
    // GETFB2 opened new GEM handles (one per distinct buffer); close them on every path.
    let mut handles: Vec<_> = info.buffers().into_iter().flatten().collect();
    handles.sort_by_key(|&h| u32::from(h));
    handles.dedup();
    let result = read_fb(card, &info, (x0, y0), width, height);
    for handle in handles {
        let _ = card.close_buffer(handle);
    }
    Ok((result?, info))
}

fn grab(card: &Card, scanout: &Scanout, out: &str) -> anyhow::Result<()> {
    let Scanout { crtc, fb, width, height, overlays } = scanout;
    // The CRTC position is where the CRTC's view starts in the primary framebuffer.
    let (mut rgba, info) = read_framebuffer(card, *fb, crtc.position(), *width, *height)?;
    // Printed after the CRTC's line, which tools read first.
    let mut overlay_lines = String::new();
    for overlay in overlays {
        let (pixels, _) = read_framebuffer(card, overlay.fb, (0, 0), overlay.width, overlay.height)?;
        for y in 0..overlay.height as i64 {
            for x in 0..overlay.width as i64 {
                let (cx, cy) = (overlay.x as i64 + x, overlay.y as i64 + y);
                if (0..*width as i64).contains(&cx) && (0..*height as i64).contains(&cy) {
                    let src = ((y * overlay.width as i64 + x) * 4) as usize;
                    let dst = ((cy * *width as i64 + cx) * 4) as usize;
                    let (over, under) = (&pixels[src..src + 4], &mut rgba[dst..dst + 4]);
                    // Premultiplied: what shows through is the part alpha leaves.
                    let left = 255 - u32::from(over[3]);
                    for c in 0..3 {
                        under[c] = (u32::from(over[c]) + (u32::from(under[c]) * left + 127) / 255).min(255) as u8;
                    }
                }
            }
        }
        use std::fmt::Write as _;
        writeln!(
            overlay_lines,
            "{} plane={} fb={} x={} y={} {}x{}",
            overlay.kind,
            u32::from(overlay.plane),
            u32::from(overlay.fb),
            overlay.x,
            overlay.y,
            overlay.width,
            overlay.height
        )
        .context("format")?;
    }

    let modifier = info.modifier().map_or("none".into(), |m| format!("{:#x}", u64::from(m)));
    writeln!(
        std::io::stdout(),
        "crtc={} fb={} {width}x{height} format={} modifier={modifier} pitch={}",
        u32::from(crtc.handle()),
        u32::from(*fb),
        info.pixel_format(),
        info.pitches()[0]
    )
    .context("stdout")?;
    write!(std::io::stdout(), "{overlay_lines}").context("stdout")?;

    let file = File::create(out).with_context(|| out.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), *width, *height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    encoder.write_header()?.write_image_data(&rgb).with_context(|| out.to_string())?;
    Ok(())
}

/// Reads `width` x `height` pixels of the framebuffer from (x0, y0) as packed RGBA
/// (alpha 255 for XRGB8888); pixels outside the framebuffer stay transparent black.
fn read_fb(
    card: &Card,
    info: &framebuffer::PlanarInfo,
    (x0, y0): (u32, u32),
    width: u32,
    height: u32,
) -> anyhow::Result<Vec<u8>> {
    let format = info.pixel_format();
    if !matches!(format, DrmFourcc::Xrgb8888 | DrmFourcc::Argb8888) {
        bail!("framebuffer format {format} is not XRGB8888 or ARGB8888");
    }
    if let Some(m) = info.modifier().filter(|&m| m != DrmModifier::Linear) {
        bail!("framebuffer modifier {:#x} is not LINEAR", u64::from(m));
    }
    let Some(handle) = info.buffers()[0] else {
        bail!("GETFB2 returned no GEM handle (not root, or not CAP_SYS_ADMIN?)");
    };
    let (pitch, offset) = (info.pitches()[0] as usize, info.offsets()[0] as usize);
    let (fb_w, fb_h) = info.size();

    let dmabuf = card.buffer_to_prime_fd(handle, rustix::fs::OFlags::CLOEXEC.bits()).context("PRIME export")?;
    // A dma-buf's size is where SEEK_END lands.
    let size = rustix::fs::seek(&dmabuf, rustix::fs::SeekFrom::End(0)).context("dma-buf size")? as usize;
    let needed = offset + pitch * fb_h as usize;
    if size < needed {
        bail!("dma-buf has {size} bytes, the framebuffer needs {needed}");
    }
    let map = Mapping::new(dmabuf.as_fd(), size)?;

    let mut rgba = vec![0u8; width as usize * height as usize * 4];
    let alpha = format == DrmFourcc::Argb8888;
    sync(dmabuf.as_fd(), DMA_BUF_SYNC_START);
    let bytes = map.bytes();
    for y in 0..height.min(fb_h.saturating_sub(y0)) {
        let row = offset + (y0 + y) as usize * pitch;
        for x in 0..width.min(fb_w.saturating_sub(x0)) {
            // Little-endian XRGB8888 lies in memory as B, G, R, X.
            let src = row + (x0 + x) as usize * 4;
            let dst = (y * width + x) as usize * 4;
            let a = if alpha { bytes[src + 3] } else { 255 };
            rgba[dst..dst + 4].copy_from_slice(&[bytes[src + 2], bytes[src + 1], bytes[src], a]);
        }
    }
    sync(dmabuf.as_fd(), DMA_BUF_SYNC_END);
    Ok(rgba)
}

/// A read-only shared mapping, unmapped on drop.
struct Mapping {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize) -> anyhow::Result<Self> {
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        // SAFETY: a fresh read-only mapping of the dma-buf; unmapped in Drop.
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED, fd, 0) }
            .context("mmap dma-buf")?;
        Ok(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from our own mmap.
        let _ = unsafe { rustix::mm::munmap(self.ptr, self.len) };
    }
}

const DMA_BUF_SYNC_READ: u64 = 1;
const DMA_BUF_SYNC_START: u64 = 0;
const DMA_BUF_SYNC_END: u64 = 4;

/// Brackets CPU reads so that caches are coherent with what the device wrote.
/// Best effort: a failure only risks stale pixels.
fn sync(fd: BorrowedFd<'_>, when: u64) {
    // DMA_BUF_IOCTL_SYNC = _IOW('b', 0, struct dma_buf_sync { u64 flags })
    const OPCODE: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<u64>(b'b', 0);
    // SAFETY: the kernel reads one u64 of flags for this opcode.
    let _ = unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Setter::<OPCODE, u64>::new(DMA_BUF_SYNC_READ | when)) };
}
