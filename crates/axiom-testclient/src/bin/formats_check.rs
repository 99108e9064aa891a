//! For each linux-dmabuf format Axiom knows: is it advertised, does `create`
//! succeed with a memfd "dmabuf" (33x17, padded strides, non-zero offsets),
//! and does the screen then show the expected pixels? Prints one tab-separated
//! line per format: name, advertised, created, pixels.
//!
//! Screenshots come from wlr-screencopy where the compositor has it, otherwise
//! from `weston-screenshooter` (weston started with --debug). The window is
//! found by searching the screenshot for the expected image, so the
//! compositor's window placement does not matter.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use axiom_formats::encode::{block_pattern, encode, Options};
use axiom_formats::image::{Image, Rgba};
use axiom_formats::{fourcc, layout};
use axiom_testclient::dmabuf::{Created, Plane};
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::TestClient;

const W: u32 = 33;
const H: u32 = 17;
/// YUV conversions may round differently; beyond this a pixel is wrong.
const TOLERANCE: u8 = 2;

fn main() -> anyhow::Result<()> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").context("XDG_RUNTIME_DIR")?;
    let display = std::env::var_os("WAYLAND_DISPLAY").context("WAYLAND_DISPLAY")?;
    let socket = Path::new(&runtime).join(display);
    let image = block_pattern(W, H);
    for format in layout::FORMATS {
        let name = fourcc::name(format.fourcc);
        let (advertised, created, pixels) = match check(&socket, format.fourcc, &image) {
            Ok(result) => result,
            Err(err) => {
                eprintln!("{name}: {err:#}");
                (false, "error".to_string(), "-".to_string())
            }
        };
        println!("{name}\t{}\t{created}\t{pixels}", if advertised { "yes" } else { "no" });
    }
    Ok(())
}

/// (advertised, created, pixels) for one format, on a fresh connection.
fn check(socket: &Path, code: u32, image: &Image) -> anyhow::Result<(bool, String, String)> {
    let mut client = TestClient::connect(socket)?;
    let version = client
        .globals
        .contents()
        .with_list(|list| list.iter().find(|g| g.interface == "zwp_linux_dmabuf_v1").map(|g| g.version.min(5)));
    let Some(version) = version else { bail!("no zwp_linux_dmabuf_v1") };
    let dmabuf = client.bind_dmabuf(version)?;
    let advertised = if version >= 4 {
        let (_feedback, log) = client.default_feedback(&dmabuf)?;
        log.format_tables.last().is_some_and(|t| t.contains(&(code, 0)))
    } else {
        client.dmabuf_events().modifiers.contains(&(code, 0))
    };

    let options = Options { stride_pad: 16, plane_gap: 64, ..Default::default() };
    let encoded = encode(code, image, options).context("unknown format")?;
    let mut memory = SharedMemory::new(encoded.bytes.len())?;
    memory.bytes_mut().copy_from_slice(&encoded.bytes);
    let planes: Vec<Plane<'_>> =
        encoded.planes.iter().map(|&(offset, stride)| Plane { fd: memory.fd(), offset, stride, modifier: 0 }).collect();
    let params = client.dmabuf_params(&dmabuf, &planes);
    let buffer = match client.dmabuf_create(&params, W as i32, H as i32, code) {
        Ok(Created::Buffer(buffer)) => buffer,
        Ok(Created::Failed) => return Ok((advertised, "failed".into(), "-".into())),
        Err(err) => return Ok((advertised, format!("protocol error ({err})"), "-".into())),
    };
    let window = client.create_window("formats-check")?;
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, W as i32, H as i32);
    client.commit_and_wait_frame(&window.surface)?;
    // One more frame so that the compositor has certainly repainted.
    client.commit_and_wait_frame(&window.surface)?;
    let shot = if client.screencopy.is_some() { client.screenshot()? } else { weston_screenshot()? };
    // AXIOM_FORMATS_CHECK_SAVE=DIR keeps every screenshot, to look at a mismatch.
    if let Some(dir) = std::env::var_os("AXIOM_FORMATS_CHECK_SAVE") {
        save_png(&shot, &Path::new(&dir).join(format!("{}.png", fourcc::name(code))))?;
    }
    let pixels = match best_match(&shot, &encoded.expected) {
        Some(0) => "exact".to_string(),
        Some(diff) if diff <= TOLERANCE => format!("within {diff}"),
        Some(diff) => format!("wrong (off by {diff})"),
        None => "not found".to_string(),
    };
    Ok((advertised, "yes".into(), pixels))
}

/// The smallest largest-channel difference of `needle` anywhere in `haystack`.
fn best_match(haystack: &Image, needle: &Image) -> Option<u8> {
    if haystack.width < needle.width || haystack.height < needle.height {
        return None;
    }
    let mut best: Option<u8> = None;
    for y in 0..=haystack.height - needle.height {
        for x in 0..=haystack.width - needle.width {
            let limit = best.unwrap_or(u8::MAX);
            let mut worst = 0u8;
            'pixels: for ny in 0..needle.height {
                for nx in 0..needle.width {
                    worst = worst.max(haystack.pixel(x + nx, y + ny).distance(needle.pixel(nx, ny)));
                    if worst >= limit {
                        break 'pixels;
                    }
                }
            }
            if worst < limit {
                best = Some(worst);
                if worst == 0 {
                    return best;
                }
            }
        }
    }
    // Only a close match counts as the window; anything else is noise.
    best.filter(|&d| d < 64)
}

/// Runs weston-screenshooter in a scratch directory and decodes its PNG.
fn weston_screenshot() -> anyhow::Result<Image> {
    let dir = std::env::temp_dir().join(format!("axiom-formats-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let status = std::process::Command::new("weston-screenshooter")
        .current_dir(&dir)
        .status()
        .context("weston-screenshooter")?;
    anyhow::ensure!(status.success(), "weston-screenshooter failed (start weston with --debug)");
    let png: PathBuf = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .context("no PNG written")?;
    let image = decode_png(&png);
    let _ = std::fs::remove_dir_all(&dir);
    image
}

fn decode_png(path: &Path) -> anyhow::Result<Image> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info()?;
    let mut data = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut data)?;
    let channels = info.line_size / info.width as usize;
    anyhow::ensure!(info.bit_depth == png::BitDepth::Eight && channels >= 3, "unexpected PNG layout");
    Ok(Image::new(info.width, info.height, |x, y| {
        let at = y as usize * info.line_size + x as usize * channels;
        Rgba::opaque(data[at], data[at + 1], data[at + 2])
    }))
}

fn save_png(image: &Image, path: &Path) -> anyhow::Result<()> {
    let mut encoder = png::Encoder::new(std::fs::File::create(path)?, image.width, image.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&image.rgba_bytes())?;
    Ok(())
}
