//! Command-line options.

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(name = "axiom", version, about = "A Wayland compositor with zero-copy DMA-BUF support")]
pub struct Options {
    /// Which backend drives the outputs.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// Name of the Wayland socket under XDG_RUNTIME_DIR (default: the first free wayland-N).
    #[arg(long)]
    pub socket: Option<String>,

    /// Size of the output (headless; drm until a connector is connected) or of its window
    /// (winit), as WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),

    /// Refresh rate in Hz of the headless or nested output (drm: of the output clients
    /// have until a connector is connected).
    #[arg(long, default_value_t = 60.0, value_parser = parse_refresh)]
    pub refresh: f64,

    /// A headless output of WIDTHxHEIGHT, at HZ (default: --refresh); repeat it for
    /// several, placed left to right, each paced at its own rate. Replaces --size.
    #[arg(long = "output", value_name = "WxH[@HZ]", value_parser = parse_output, conflicts_with = "size")]
    pub outputs: Vec<OutputSpec>,

    /// The mode of a display connector (drm backend), as NAME=WxH[@HZ] (e.g.
    /// `Virtual-2=800x600@75`): the mode of that size closest to HZ (its preferred
    /// refresh where none is given) instead of its preferred mode; repeat it for others.
    /// A connector with no such mode keeps its preferred one (logged).
    #[arg(long = "mode", value_name = "NAME=WxH[@HZ]", value_parser = parse_mode_choice)]
    pub modes: Vec<ModeChoice>,

    /// Scale factor of the headless outputs (1.5, 2...): clients see logical sizes of
    /// WIDTH/SCALE by HEIGHT/SCALE and are asked for buffers this much larger.
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub scale: f64,

    /// Which graphics API the renderer uses: Vulkan first, then OpenGL ES.
    #[arg(long, value_enum, default_value_t = GraphicsApi::Auto)]
    pub graphics_api: GraphicsApi,

    /// How client buffers reach the renderer: `ladder` imports them through Vulkan
    /// where the device can (falling to the CPU step where it cannot), `cpu` always
    /// takes the CPU step (to test it, or where a driver's import misbehaves). A build
    /// without the `dmabuf-vulkan` feature has the CPU step only.
    #[arg(long, value_enum, env = "AXIOM_DMABUF_IMPORT", default_value_t = DmabufImport::Ladder)]
    pub dmabuf_import: DmabufImport,

    /// Most live wl_surfaces one client may hold; a client that creates more is disconnected.
    #[arg(long, default_value_t = crate::limits::Limits::default().surfaces, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_client_surfaces: u32,

    /// Most live wl_buffers (shm and dma-buf) one client may hold.
    #[arg(long, default_value_t = crate::limits::Limits::default().buffers, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_client_buffers: u32,

    /// Never put a client's buffer on a display plane as it is (drm backend); always compose.
    #[arg(long = "no-direct-scanout", action = clap::ArgAction::SetFalse)]
    pub direct_scanout: bool,

    /// Do not start Xwayland (by default it starts where the Xwayland binary exists).
    #[arg(long = "no-xwayland", action = clap::ArgAction::SetFalse)]
    pub xwayland: bool,

    /// Most MiB of buffer memory (shm pools and dma-buf planes) one client may have mapped or pinned.
    #[arg(long, default_value_t = crate::limits::Limits::default().buffer_bytes >> 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_client_buffer_mib: u64,

    /// Most file descriptors the compositor holds for one client (dma-buf planes, also
    /// of params not yet used, shm pools, feedback objects).
    #[arg(long, default_value_t = crate::limits::Limits::default().fds, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_client_fds: u32,

    /// Kiosk: every toplevel fills the primary output, fullscreen, without
    /// decorations and with no way out of it; the newest is on top.
    #[arg(long)]
    pub kiosk: bool,

    /// Once clients can connect, write the Wayland socket's name (and the X display,
    /// where Xwayland runs: `wayland-1 :0`) as one line to this inherited fd, then close it.
    #[arg(long, value_name = "FD")]
    pub ready_fd: Option<i32>,

    /// A program to run once clients can connect, with WAYLAND_DISPLAY (and DISPLAY,
    /// where Xwayland runs) set; the compositor stops when it exits, with its status
    /// (128+N if signal N ended it).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// One output asked for with `--output`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputSpec {
    pub size: (u32, u32),
    pub refresh: Option<f64>,
}

/// A connector's mode asked for with `--mode`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeChoice {
    pub connector: String,
    pub output: OutputSpec,
}

impl Options {
    /// The backend to run: `auto` resolved. Running a program or asking for headless
    /// outputs means headless, as test suites want, even from a desktop's terminal.
    pub fn backend(&self) -> Backend {
        let headless_asked = !self.command.is_empty() || !self.outputs.is_empty() || self.scale != 1.0;
        match self.backend {
            Backend::Auto if headless_asked => Backend::Headless,
            backend => backend.resolve(),
        }
    }

    /// The outputs to make, each with its size and refresh rate: those `--output`
    /// names, else one of `--size` at `--refresh`.
    pub fn output_modes(&self) -> Vec<((u32, u32), f64)> {
        if self.outputs.is_empty() {
            return vec![(self.size, self.refresh)];
        }
        self.outputs.iter().map(|o| (o.size, o.refresh.unwrap_or(self.refresh))).collect()
    }

    /// These options for a backend with one window or one output to start with, at
    /// scale 1 (winit, drm): a single `--output` becomes `--size` and `--refresh`.
    pub fn with_one_output(mut self) -> anyhow::Result<Self> {
        let [(size, refresh)] = self.output_modes()[..] else {
            anyhow::bail!("several --output are for the headless backend only");
        };
        anyhow::ensure!(self.scale == 1.0, "--scale is for the headless backend only");
        (self.size, self.refresh, self.outputs) = (size, refresh, Vec::new());
        Ok(self)
    }

    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            surfaces: self.max_client_surfaces,
            buffers: self.max_client_buffers,
            buffer_bytes: self.max_client_buffer_mib.saturating_mul(1 << 20),
            fds: self.max_client_fds,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// `headless` to run a program (`-- CMD`) or with `--output` or `--scale`; else
    /// `winit` where WAYLAND_DISPLAY or DISPLAY names a desktop, `drm` on a virtual
    /// terminal, otherwise `headless`.
    Auto,
    /// A virtual output rendered off screen; needs no GPU and no display.
    Headless,
    /// A window on the X11 or Wayland desktop named by DISPLAY or WAYLAND_DISPLAY.
    Winit,
    /// The displays of a KMS device (/dev/dri/card*), through a libseat session.
    Drm,
}

impl Backend {
    /// What `auto` means here: nested where a desktop session is named in the environment.
    pub fn resolve(self) -> Backend {
        let named = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
        match self {
            Backend::Auto if named("WAYLAND_DISPLAY") || named("DISPLAY") => Backend::Winit,
            Backend::Auto if on_virtual_terminal() => Backend::Drm,
            Backend::Auto => Backend::Headless,
            chosen => chosen,
        }
    }
}

/// Whether standard input is a Linux virtual terminal (/dev/ttyN), as when started from a console login.
fn on_virtual_terminal() -> bool {
    std::fs::read_link("/proc/self/fd/0").is_ok_and(|path| {
        path.to_str()
            .and_then(|p| p.strip_prefix("/dev/tty"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphicsApi {
    /// Vulkan if an adapter exists (lavapipe counts), otherwise OpenGL ES.
    Auto,
    Vulkan,
    Gl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DmabufImport {
    /// The whole import ladder: Vulkan image, Vulkan buffer, host pointer, then CPU.
    Ladder,
    /// The CPU step alone: dma-bufs copied or mapped, wl_shm uploaded.
    Cpu,
}

pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(|| format!("expected WIDTHxHEIGHT, got {text:?}"))?;
    let parse = |s: &str| s.trim().parse::<u32>().map_err(|e| format!("{s:?}: {e}"));
    let (w, h) = (parse(w)?, parse(h)?);
    // 16384 is the largest texture size every Vulkan and GL driver we target supports.
    if !(1..=16384).contains(&w) || !(1..=16384).contains(&h) {
        return Err(format!("output size {w}x{h} must be between 1x1 and 16384x16384"));
    }
    Ok((w, h))
}

/// `WxH` or `WxH@HZ`.
fn parse_output(text: &str) -> Result<OutputSpec, String> {
    let (size, refresh) = match text.split_once('@') {
        Some((size, hz)) => (size, Some(parse_refresh(hz)?)),
        None => (text, None),
    };
    Ok(OutputSpec { size: parse_size(size)?, refresh })
}

fn parse_mode_choice(text: &str) -> Result<ModeChoice, String> {
    let (connector, mode) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected NAME=WxH[@HZ]"))?;
    if connector.is_empty() {
        return Err(format!("{text:?}: no connector name"));
    }
    Ok(ModeChoice { connector: connector.to_string(), output: parse_output(mode)? })
}

fn parse_scale(text: &str) -> Result<f64, String> {
    let scale: f64 = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    // As smithay's fractional scales: multiples of 1/120.
    if !(0.25..=8.0).contains(&scale) || ((scale * 120.0).round() - scale * 120.0).abs() > 1e-9 {
        return Err(format!("scale {scale} must be between 0.25 and 8, a multiple of 1/120"));
    }
    Ok(scale)
}

fn parse_refresh(text: &str) -> Result<f64, String> {
    let hz: f64 = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    if !(1.0..=1000.0).contains(&hz) {
        return Err(format!("refresh rate {hz} Hz must be between 1 and 1000"));
    }
    Ok(hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bounds_hold() {
        assert_eq!(parse_size("1920x1080"), Ok((1920, 1080)));
        assert_eq!(parse_size("33X17"), Ok((33, 17)));
        assert!(parse_size("0x10").is_err());
        assert!(parse_size("1920").is_err());
        assert!(parse_size("99999x10").is_err());
        assert!(parse_refresh("0").is_err());
        assert_eq!(parse_refresh("144"), Ok(144.0));
        assert_eq!(parse_output("1024x768@30"), Ok(OutputSpec { size: (1024, 768), refresh: Some(30.0) }));
        assert_eq!(parse_output("800x600"), Ok(OutputSpec { size: (800, 600), refresh: None }));
        assert!(parse_output("800x600@0").is_err() && parse_output("@60").is_err());
        let choice = parse_mode_choice("Virtual-2=800x600@75").unwrap();
        assert_eq!(choice, ModeChoice { connector: "Virtual-2".into(), output: parse_output("800x600@75").unwrap() });
        assert!(parse_mode_choice("800x600").is_err() && parse_mode_choice("=800x600").is_err());
        assert_eq!(parse_scale("1.5"), Ok(1.5));
        assert!(parse_scale("0").is_err() && parse_scale("1.001").is_err());
    }
}
