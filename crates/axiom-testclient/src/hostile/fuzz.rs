//! A protocol fuzzer: a seeded client that binds the common globals and sends
//! random sequences of valid-looking requests on objects it created (surfaces,
//! pools, buffers, regions, subsurfaces, xdg surfaces, toplevels, popups,
//! positioners, viewports, linux-dmabuf params over memfds), with random
//! arguments that are mostly plausible and sometimes out of range, and now and
//! then a request on an object it already destroyed.
//!
//! A sequence ends with a roundtrip: the server either answers, or has ended
//! the connection (with a protocol error, or without one). Both are fine; a
//! compositor that stops answering or stops accepting connections is not.
//! Sequence `i` of a run with seed `s` uses seed `s + i`, so any sequence can
//! be replayed alone (`run(socket, seed, 1)`).

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use axiom_formats::layout::FORMATS;

use super::requests::{memfd, Globals, XRGB8888};
use super::wire::{Arg, Ending, WireClient, DISPLAY};

/// SplitMix64: small, fast and good enough to drive a fuzzer reproducibly.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    /// `int` leaves its range one time in `wild / 2`.
    wild: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed, wild: 16 }
    }

    /// How often `int` leaves its range: one time in `one_in / 2`. Sequences that
    /// stray rarely get deeper before the server ends them with an error.
    pub fn set_wildness(&mut self, one_in: u64) {
        self.wild = one_in.max(2);
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// The sane branch of a choice that is sane `percent` times in a hundred at the
    /// default wildness, and more or less often as the sequence strays more or less.
    pub fn sane(&mut self, percent: u64) -> bool {
        let insane = (100 - percent.min(100)) * 16;
        self.below(100 * self.wild) >= insane
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
        (i64::from(lo) + self.below((i64::from(hi) - i64::from(lo) + 1) as u64) as i64) as i32
    }

    /// Mostly in `lo..=hi`; otherwise an edge value or any i32 (see `set_wildness`).
    pub fn int(&mut self, lo: i32, hi: i32) -> i32 {
        const EDGES: [i32; 10] = [0, -1, 1, i32::MIN, i32::MAX, 2, 4096, 65536, -4096, i32::MAX / 4];
        match self.below(self.wild) {
            0 => EDGES[self.below(EDGES.len() as u64) as usize],
            1 => self.next_u64() as i32,
            _ => self.range(lo, hi),
        }
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Surface,
    Region,
    Pool,
    Buffer,
    Subsurface,
    XdgSurface,
    Toplevel,
    Popup,
    Positioner,
    Params,
    Feedback,
    Viewport,
}

impl Kind {
    fn interface(self) -> &'static str {
        match self {
            Kind::Surface => "wl_surface",
            Kind::Region => "wl_region",
            Kind::Pool => "wl_shm_pool",
            Kind::Buffer => "wl_buffer",
            Kind::Subsurface => "wl_subsurface",
            Kind::XdgSurface => "xdg_surface",
            Kind::Toplevel => "xdg_toplevel",
            Kind::Popup => "xdg_popup",
            Kind::Positioner => "xdg_positioner",
            Kind::Params => "zwp_linux_buffer_params_v1",
            Kind::Feedback => "zwp_linux_dmabuf_feedback_v1",
            Kind::Viewport => "wp_viewport",
        }
    }

    /// The destructor's opcode.
    fn destructor(self) -> u16 {
        match self {
            Kind::Pool => 1,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Object {
    id: u32,
    kind: Kind,
    alive: bool,
    /// Pools: index of their file in `Session::files`; xdg surfaces and subsurfaces: their wl_surface.
    link: usize,
}

/// How one sequence ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceEnd {
    /// The final roundtrip was answered.
    Alive,
    /// `wl_display.error` on an object of `interface`.
    Error { interface: String, code: u32, message: String },
    /// The server closed the connection without an error event.
    Closed,
}

/// One sequence: its seed, how many requests it sent and how it ended.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub seed: u64,
    pub requests: usize,
    pub end: SequenceEnd,
}

/// Totals over a run.
#[derive(Debug, Default, Clone)]
pub struct FuzzReport {
    pub sequences: usize,
    pub requests: usize,
    /// Sequences whose connection was still alive at the end.
    pub alive: usize,
    /// Connections the server closed without an error event.
    pub closed_without_error: usize,
    /// Protocol errors by (interface, code).
    pub protocol_errors: BTreeMap<(String, u32), usize>,
}

impl FuzzReport {
    pub fn record(&mut self, sequence: &Sequence) {
        self.sequences += 1;
        self.requests += sequence.requests;
        match &sequence.end {
            SequenceEnd::Alive => self.alive += 1,
            SequenceEnd::Closed => self.closed_without_error += 1,
            SequenceEnd::Error { interface, code, .. } => {
                *self.protocol_errors.entry((interface.clone(), *code)).or_default() += 1
            }
        }
    }

    pub fn errors(&self) -> usize {
        self.protocol_errors.values().sum()
    }
}

impl fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sequences: {}", self.sequences)?;
        writeln!(f, "requests: {}", self.requests)?;
        writeln!(f, "connections alive at the end: {}", self.alive)?;
        writeln!(f, "connections closed without an error: {}", self.closed_without_error)?;
        writeln!(f, "protocol errors: {}", self.errors())?;
        for ((interface, code), count) in &self.protocol_errors {
            writeln!(f, "  {interface} code {code}: {count}")?;
        }
        Ok(())
    }
}

/// Runs `sequences` sequences, seeds `seed`, `seed + 1`, ...; fails, naming the
/// seed, if the compositor stops answering or accepting connections.
pub fn run(socket: &Path, seed: u64, sequences: usize) -> anyhow::Result<FuzzReport> {
    run_while(socket, seed, |report| report.sequences < sequences)
}

/// As [`run`], for `duration`.
pub fn run_for(socket: &Path, seed: u64, duration: Duration) -> anyhow::Result<FuzzReport> {
    let deadline = Instant::now() + duration;
    run_while(socket, seed, |_| Instant::now() < deadline)
}

fn run_while(socket: &Path, seed: u64, mut more: impl FnMut(&FuzzReport) -> bool) -> anyhow::Result<FuzzReport> {
    let mut report = FuzzReport::default();
    while more(&report) {
        let seed = seed.wrapping_add(report.sequences as u64);
        let sequence = run_sequence(socket, seed)?;
        report.record(&sequence);
        check_alive(socket).with_context(|| format!("after the sequence of seed {seed}"))?;
    }
    Ok(report)
}

/// The compositor accepts a connection and answers a roundtrip.
pub fn check_alive(socket: &Path) -> anyhow::Result<()> {
    WireClient::connect(socket).map(drop).context("the compositor no longer accepts connections")
}

/// One sequence on a fresh connection. An error means the compositor failed
/// (did not accept the connection, or stopped answering), not the client.
pub fn run_sequence(socket: &Path, seed: u64) -> anyhow::Result<Sequence> {
    let client = WireClient::connect(socket).with_context(|| format!("seed {seed}: connect"))?;
    let mut session = Session::new(client, seed).with_context(|| format!("seed {seed}: bind globals"))?;
    let count = session.rng.range(50, 200) as usize;
    while session.requests < count {
        if session.step().is_err() {
            // The server has most likely closed the connection: see how below.
            break;
        }
    }
    let end = session.finish().with_context(|| format!("seed {seed}: the compositor stopped answering"))?;
    Ok(Sequence { seed, requests: session.requests, end })
}

/// Optional globals, bound when the compositor has them.
#[derive(Default)]
struct Extra {
    dmabuf: Option<u32>,
    viewporter: Option<u32>,
    single_pixel: Option<u32>,
    seat: Option<u32>,
    output: Option<u32>,
}

struct Session {
    c: WireClient,
    rng: Rng,
    g: Globals,
    extra: Extra,
    objects: Vec<Object>,
    /// Memfds behind pools and dma-buf planes, with their current size.
    files: Vec<(OwnedFd, u64)>,
    requests: usize,
}

const SHM_FORMATS: [u32; 5] = [0, XRGB8888, 0x3432_4241, 0x3432_4258, 0x3631_4752];

impl Session {
    fn new(mut c: WireClient, seed: u64) -> anyhow::Result<Self> {
        let g = c.bind_common()?;
        let mut extra = Extra::default();
        let version = |c: &WireClient, name: &str| c.globals.iter().find(|(_, i, _)| i == name).map(|g| g.2);
        if let Some(v) = version(&c, "zwp_linux_dmabuf_v1") {
            extra.dmabuf = Some(c.bind("zwp_linux_dmabuf_v1", v.min(5))?);
        }
        if version(&c, "wp_viewporter").is_some() {
            extra.viewporter = Some(c.bind("wp_viewporter", 1)?);
        }
        if version(&c, "wp_single_pixel_buffer_manager_v1").is_some() {
            extra.single_pixel = Some(c.bind("wp_single_pixel_buffer_manager_v1", 1)?);
        }
        if version(&c, "wl_seat").is_some() {
            extra.seat = Some(c.bind("wl_seat", 1)?);
        }
        if version(&c, "wl_output").is_some() {
            extra.output = Some(c.bind("wl_output", 1)?);
        }
        let mut rng = Rng::new(seed);
        let wildness = rng.pick(&[4, 16, 64, 256]);
        rng.set_wildness(wildness);
        Ok(Self { c, rng, g, extra, objects: Vec::new(), files: Vec::new(), requests: 0 })
    }

    fn add(&mut self, id: u32, kind: Kind, link: usize) {
        self.objects.push(Object { id, kind, alive: true, link });
    }

    /// A live object of `kind`, or (rarely) a destroyed one.
    fn pick(&mut self, kind: Kind) -> Option<Object> {
        let stale = self.rng.chance(2);
        let candidates: Vec<Object> =
            self.objects.iter().filter(|o| o.kind == kind && (o.alive || stale)).copied().collect();
        (!candidates.is_empty()).then(|| self.rng.pick(&candidates))
    }

    /// An object of `kind`, or 0 (null) when there is none or one time in ten.
    fn pick_or_null(&mut self, kind: Kind) -> u32 {
        if self.rng.chance(10) {
            return 0;
        }
        self.pick(kind).map_or(0, |o| o.id)
    }

    fn send(&mut self, object: u32, opcode: u16, args: &[Arg<'_>]) -> anyhow::Result<()> {
        self.requests += 1;
        self.c.send(object, opcode, args)
    }

    fn file(&mut self, size: u64) -> anyhow::Result<usize> {
        let fd = memfd(size)?;
        // Half the files are sealed against shrinking, as careful clients do: those are
        // the ones a dmabuf-vulkan compositor reads in place.
        if self.rng.chance(50) {
            rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK)?;
        }
        self.files.push((fd, size));
        Ok(self.files.len() - 1)
    }

    /// A serial: mostly the latest configure of `xdg_surface`, else random.
    fn serial(&mut self, xdg_surface: u32) -> u32 {
        match self.c.last_event_word(xdg_surface, 0) {
            Some(serial) if self.rng.sane(80) => serial,
            Some(serial) if self.rng.chance(50) => serial.wrapping_add(self.rng.range(-2, 2) as u32),
            _ => self.rng.next_u64() as u32,
        }
    }

    /// One random request (or a few, for the compound ones).
    fn step(&mut self) -> anyhow::Result<()> {
        match self.rng.below(100) {
            0..=7 => self.new_surface(),
            8..=10 => self.new_window(),
            11..=15 => self.new_pool(),
            16..=23 => self.new_buffer(),
            24..=29 => self.attach(),
            30..=34 => self.damage(),
            35..=44 => self.commit(),
            45..=47 => self.frame(),
            48..=50 => self.scale_transform_offset(),
            51..=53 => self.region(),
            54..=56 => self.subsurface(),
            57..=60 => self.xdg_surface(),
            61..=65 => self.toplevel(),
            66..=69 => self.positioner(),
            70..=72 => self.popup(),
            73..=74 => self.resize_pool(),
            75..=80 => self.dmabuf(),
            81..=82 => self.viewport(),
            83..=84 => self.single_pixel_buffer(),
            85..=88 => self.roundtrip(),
            89 => self.truncate_file(),
            _ => self.destroy(),
        }
    }

    fn new_surface(&mut self) -> anyhow::Result<()> {
        let id = self.c.new_id();
        self.send(self.g.compositor, 0, &[Arg::Uint(id)])?;
        self.add(id, Kind::Surface, 0);
        Ok(())
    }

    /// A toplevel that is committed, configured and acked, ready for buffers.
    fn new_window(&mut self) -> anyhow::Result<()> {
        let (surface, xdg_surface, toplevel) = self.c.configured_toplevel(&self.g)?;
        self.requests += 6;
        self.add(surface, Kind::Surface, 0);
        self.add(xdg_surface, Kind::XdgSurface, surface as usize);
        self.add(toplevel, Kind::Toplevel, 0);
        if self.rng.chance(50) {
            let (w, h) = (self.rng.range(1, 64), self.rng.range(1, 64));
            let file = self.file((w * h * 4) as u64)?;
            let fd = self.files[file].0.try_clone()?;
            let pool = self.c.create_pool(&self.g, fd, w * h * 4)?;
            self.add(pool, Kind::Pool, file);
            let buffer = self.c.create_buffer(pool, 0, w, h, w * 4, XRGB8888)?;
            self.add(buffer, Kind::Buffer, 0);
            self.c.attach(surface, buffer, 0, 0)?;
            self.requests += 3;
            self.commit_id(surface)?;
        }
        Ok(())
    }

    fn new_pool(&mut self) -> anyhow::Result<()> {
        let size = self.rng.pick(&[64u64, 4096, 16384, 65536, 262144]);
        let file = self.file(size)?;
        let declared = if self.rng.sane(90) { size as i32 } else { self.rng.int(0, size as i32 * 2) };
        let id = self.c.new_id();
        let fd = self.files[file].0.try_clone()?;
        self.send(self.g.shm, 0, &[Arg::Uint(id), Arg::Fd(fd.as_fd()), Arg::Int(declared)])?;
        self.add(id, Kind::Pool, file);
        Ok(())
    }

    fn new_buffer(&mut self) -> anyhow::Result<()> {
        let Some(pool) = self.pick(Kind::Pool) else { return self.new_pool() };
        let size = self.files.get(pool.link).map_or(4096, |f| f.1) as i32;
        let sane = self.rng.sane(90);
        let (w, h) = if sane {
            // As large as 64x64, as far as the pool holds it.
            let w = self.rng.range(1, 64).min((size / 4).max(1));
            let rows = (size / (w * 4)).clamp(1, 64);
            (w, self.rng.range(1, rows))
        } else {
            (self.rng.int(1, 64), self.rng.int(1, 64))
        };
        let stride = if sane { w.wrapping_mul(4) } else { self.rng.int(0, 512) };
        let fits = size.saturating_sub(stride.saturating_mul(h)).max(0);
        let offset = if sane { self.rng.range(0, fits) & !3 } else { self.rng.int(0, size) };
        let format = if sane || self.rng.chance(50) { self.rng.pick(&SHM_FORMATS) } else { self.rng.next_u64() as u32 };
        let id = self.c.create_buffer(pool.id, offset, w, h, stride, format)?;
        self.requests += 1;
        self.add(id, Kind::Buffer, 0);
        Ok(())
    }

    fn commit_id(&mut self, surface: u32) -> anyhow::Result<()> {
        self.send(surface, 6, &[])
    }

    fn attach(&mut self) -> anyhow::Result<()> {
        let Some(surface) = self.pick(Kind::Surface) else { return self.new_surface() };
        let buffer = self.pick_or_null(Kind::Buffer);
        let (x, y) = if self.rng.sane(90) { (0, 0) } else { (self.rng.int(-8, 8), self.rng.int(-8, 8)) };
        self.send(surface.id, 1, &[Arg::Uint(buffer), Arg::Int(x), Arg::Int(y)])
    }

    fn damage(&mut self) -> anyhow::Result<()> {
        let Some(surface) = self.pick(Kind::Surface) else { return Ok(()) };
        let opcode = self.rng.pick(&[2u16, 9]);
        let r = [self.rng.int(-16, 64), self.rng.int(-16, 64), self.rng.int(0, 128), self.rng.int(0, 128)];
        self.send(surface.id, opcode, &r.map(Arg::Int))
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        let Some(surface) = self.pick(Kind::Surface) else { return Ok(()) };
        self.commit_id(surface.id)
    }

    fn frame(&mut self) -> anyhow::Result<()> {
        let Some(surface) = self.pick(Kind::Surface) else { return Ok(()) };
        let id = self.c.new_id();
        self.send(surface.id, 3, &[Arg::Uint(id)])
    }

    fn scale_transform_offset(&mut self) -> anyhow::Result<()> {
        let Some(surface) = self.pick(Kind::Surface) else { return Ok(()) };
        match self.rng.below(3) {
            0 => {
                let scale = if self.rng.sane(90) { self.rng.range(1, 4) } else { self.rng.int(-2, 8) };
                self.send(surface.id, 8, &[Arg::Int(scale)])
            }
            1 => {
                let transform = if self.rng.sane(90) { self.rng.range(0, 7) } else { self.rng.int(-1, 9) };
                self.send(surface.id, 7, &[Arg::Int(transform)])
            }
            _ => {
                let (x, y) = (self.rng.int(-32, 32), self.rng.int(-32, 32));
                self.send(surface.id, 10, &[Arg::Int(x), Arg::Int(y)])
            }
        }
    }

    fn region(&mut self) -> anyhow::Result<()> {
        match self.rng.below(3) {
            0 => {
                let id = self.c.new_id();
                self.send(self.g.compositor, 1, &[Arg::Uint(id)])?;
                self.add(id, Kind::Region, 0);
                Ok(())
            }
            1 => {
                let Some(region) = self.pick(Kind::Region) else { return Ok(()) };
                let opcode = self.rng.pick(&[1u16, 2]);
                let r = [self.rng.int(-16, 64), self.rng.int(-16, 64), self.rng.int(0, 128), self.rng.int(0, 128)];
                self.send(region.id, opcode, &r.map(Arg::Int))
            }
            _ => {
                let Some(surface) = self.pick(Kind::Surface) else { return Ok(()) };
                let region = self.pick_or_null(Kind::Region);
                let opcode = self.rng.pick(&[4u16, 5]);
                self.send(surface.id, opcode, &[Arg::Uint(region)])
            }
        }
    }

    fn subsurface(&mut self) -> anyhow::Result<()> {
        if self.rng.chance(40) {
            // Mostly a fresh surface under an existing one.
            let Some(parent) = self.pick(Kind::Surface) else { return self.new_surface() };
            let surface = match self.pick(Kind::Surface) {
                Some(surface) if !self.rng.sane(80) => surface,
                _ => {
                    self.new_surface()?;
                    *self.objects.last().expect("just added")
                }
            };
            let id = self.c.new_id();
            self.send(self.g.subcompositor, 1, &[Arg::Uint(id), Arg::Uint(surface.id), Arg::Uint(parent.id)])?;
            self.add(id, Kind::Subsurface, surface.id as usize);
            return Ok(());
        }
        let Some(sub) = self.pick(Kind::Subsurface) else { return Ok(()) };
        match self.rng.below(4) {
            0 => {
                let (x, y) = (self.rng.int(-64, 64), self.rng.int(-64, 64));
                self.send(sub.id, 1, &[Arg::Int(x), Arg::Int(y)])
            }
            1 => {
                let Some(sibling) = self.pick(Kind::Surface) else { return Ok(()) };
                let opcode = self.rng.pick(&[2u16, 3]);
                self.send(sub.id, opcode, &[Arg::Uint(sibling.id)])
            }
            _ => {
                let opcode = self.rng.pick(&[4u16, 5]);
                self.send(sub.id, opcode, &[])
            }
        }
    }

    fn xdg_surface(&mut self) -> anyhow::Result<()> {
        if self.rng.chance(35) {
            let surface = match self.pick(Kind::Surface) {
                Some(surface) if !self.rng.sane(80) => surface,
                _ => {
                    self.new_surface()?;
                    *self.objects.last().expect("just added")
                }
            };
            let id = self.c.new_id();
            self.send(self.g.wm_base, 2, &[Arg::Uint(id), Arg::Uint(surface.id)])?;
            self.add(id, Kind::XdgSurface, surface.id as usize);
            return Ok(());
        }
        let Some(xdg) = self.pick(Kind::XdgSurface) else { return Ok(()) };
        match self.rng.below(4) {
            0 => {
                let id = self.c.new_id();
                self.send(xdg.id, 1, &[Arg::Uint(id)])?;
                self.add(id, Kind::Toplevel, 0);
                Ok(())
            }
            1 => {
                let r = [self.rng.int(-8, 32), self.rng.int(-8, 32), self.rng.int(1, 128), self.rng.int(1, 128)];
                self.send(xdg.id, 3, &r.map(Arg::Int))
            }
            _ => {
                let serial = self.serial(xdg.id);
                self.send(xdg.id, 4, &[Arg::Uint(serial)])
            }
        }
    }

    fn toplevel(&mut self) -> anyhow::Result<()> {
        let Some(toplevel) = self.pick(Kind::Toplevel) else { return self.new_window() };
        let seat = self.extra.seat.unwrap_or(0);
        let serial = self.rng.next_u64() as u32 % 64;
        match self.rng.below(12) {
            0 => {
                let parent = self.pick_or_null(Kind::Toplevel);
                self.send(toplevel.id, 1, &[Arg::Uint(parent)])
            }
            1 => {
                let title = self.rng.pick(&["", "fuzz", "a title that is longer than most", "ümlaut ✓"]);
                let opcode = self.rng.pick(&[2u16, 3]);
                self.send(toplevel.id, opcode, &[Arg::Str(title)])
            }
            2 => {
                let (x, y) = (self.rng.int(-8, 64), self.rng.int(-8, 64));
                self.send(toplevel.id, 4, &[Arg::Uint(seat), Arg::Uint(serial), Arg::Int(x), Arg::Int(y)])
            }
            3 => self.send(toplevel.id, 5, &[Arg::Uint(seat), Arg::Uint(serial)]),
            4 => {
                let edges = self.rng.below(16) as u32;
                self.send(toplevel.id, 6, &[Arg::Uint(seat), Arg::Uint(serial), Arg::Uint(edges)])
            }
            5 | 6 => {
                let opcode = self.rng.pick(&[7u16, 8]);
                let (w, h) = (self.rng.int(0, 256), self.rng.int(0, 256));
                self.send(toplevel.id, opcode, &[Arg::Int(w), Arg::Int(h)])
            }
            7 => {
                let output = if self.rng.chance(50) { self.extra.output.unwrap_or(0) } else { 0 };
                self.send(toplevel.id, 11, &[Arg::Uint(output)])
            }
            _ => {
                let opcode = self.rng.pick(&[9u16, 10, 12, 13]);
                self.send(toplevel.id, opcode, &[])
            }
        }
    }

    fn positioner(&mut self) -> anyhow::Result<()> {
        let Some(positioner) = self.pick(Kind::Positioner).filter(|_| self.rng.chance(75)) else {
            let id = self.c.create_positioner(&self.g)?;
            self.requests += 1;
            self.add(id, Kind::Positioner, 0);
            return Ok(());
        };
        let p = positioner.id;
        match self.rng.below(9) {
            0 | 1 => {
                let (w, h) = (self.rng.int(1, 64), self.rng.int(1, 64));
                self.send(p, 1, &[Arg::Int(w), Arg::Int(h)])
            }
            2 | 3 => {
                let r = [self.rng.int(-8, 64), self.rng.int(-8, 64), self.rng.int(1, 64), self.rng.int(1, 64)];
                self.send(p, 2, &r.map(Arg::Int))
            }
            4 => {
                let opcode = self.rng.pick(&[3u16, 4]);
                let value = if self.rng.sane(90) { self.rng.range(0, 8) } else { self.rng.int(0, 16) };
                self.send(p, opcode, &[Arg::Uint(value as u32)])
            }
            5 => {
                let adjustment = self.rng.below(64) as u32;
                self.send(p, 5, &[Arg::Uint(adjustment)])
            }
            6 => {
                let (x, y) = (self.rng.int(-32, 32), self.rng.int(-32, 32));
                self.send(p, 6, &[Arg::Int(x), Arg::Int(y)])
            }
            7 => self.send(p, 7, &[]),
            _ => {
                let (w, h) = (self.rng.int(0, 256), self.rng.int(0, 256));
                self.send(p, 8, &[Arg::Int(w), Arg::Int(h)])
            }
        }
    }

    fn popup(&mut self) -> anyhow::Result<()> {
        if let Some(popup) = self.pick(Kind::Popup).filter(|_| self.rng.chance(40)) {
            if self.rng.chance(50) {
                let seat = self.extra.seat.unwrap_or(0);
                let serial = self.rng.below(64) as u32;
                return self.send(popup.id, 1, &[Arg::Uint(seat), Arg::Uint(serial)]);
            }
            let Some(positioner) = self.pick(Kind::Positioner) else { return Ok(()) };
            let token = self.rng.next_u64() as u32;
            return self.send(popup.id, 2, &[Arg::Uint(positioner.id), Arg::Uint(token)]);
        }
        // A positioner that is complete most of the time.
        let positioner = self.c.create_positioner(&self.g)?;
        self.requests += 1;
        self.add(positioner, Kind::Positioner, 0);
        if self.rng.sane(90) {
            let (w, h) = (self.rng.range(1, 32), self.rng.range(1, 32));
            self.send(positioner, 1, &[Arg::Int(w), Arg::Int(h)])?;
            self.send(positioner, 2, &[Arg::Int(0), Arg::Int(0), Arg::Int(w), Arg::Int(h)])?;
        }
        let parent = match self.pick(Kind::XdgSurface) {
            Some(parent) if self.rng.sane(90) => parent.id,
            _ => 0,
        };
        let surface = if let Some(s) = self.pick(Kind::Surface).filter(|_| !self.rng.sane(70)) {
            s.id
        } else {
            self.new_surface()?;
            self.objects.last().map_or(0, |o| o.id)
        };
        let xdg = self.c.new_id();
        self.send(self.g.wm_base, 2, &[Arg::Uint(xdg), Arg::Uint(surface)])?;
        self.add(xdg, Kind::XdgSurface, surface as usize);
        let popup = self.c.new_id();
        self.send(xdg, 2, &[Arg::Uint(popup), Arg::Uint(parent), Arg::Uint(positioner)])?;
        self.add(popup, Kind::Popup, 0);
        if self.rng.chance(60) {
            self.commit_id(surface)?;
        }
        Ok(())
    }

    fn resize_pool(&mut self) -> anyhow::Result<()> {
        let Some(pool) = self.pick(Kind::Pool) else { return Ok(()) };
        let current = self.files.get(pool.link).map_or(0, |f| f.1);
        let size = if self.rng.sane(80) {
            // Grow the file first, as a well-behaved client does.
            let size = (current * 2).clamp(64, 1 << 20);
            if let Some(file) = self.files.get_mut(pool.link) {
                rustix::fs::ftruncate(&file.0, size)?;
                file.1 = size;
            }
            size as i32
        } else {
            self.rng.int(0, current as i32 * 4)
        };
        self.send(pool.id, 2, &[Arg::Int(size)])
    }

    /// Shrinks the file behind a pool or a dma-buf plane, as a hostile client may.
    fn truncate_file(&mut self) -> anyhow::Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        let index = self.rng.below(self.files.len() as u64) as usize;
        let size = self.files[index].1 / self.rng.pick(&[1, 2, 4, 1 << 20]);
        // A sealed file refuses to shrink: that is the point of the seal.
        if rustix::fs::ftruncate(&self.files[index].0, size).is_ok() {
            self.files[index].1 = size;
        }
        Ok(())
    }

    fn dmabuf(&mut self) -> anyhow::Result<()> {
        let Some(dmabuf) = self.extra.dmabuf else { return self.new_buffer() };
        match self.rng.below(10) {
            0 => {
                let id = self.c.new_id();
                self.send(dmabuf, 2, &[Arg::Uint(id)])?;
                self.add(id, Kind::Feedback, 0);
                Ok(())
            }
            1 => {
                let Some(surface) = self.pick(Kind::Surface) else { return Ok(()) };
                let id = self.c.new_id();
                self.send(dmabuf, 3, &[Arg::Uint(id), Arg::Uint(surface.id)])?;
                self.add(id, Kind::Feedback, 0);
                Ok(())
            }
            _ => self.dmabuf_buffer(dmabuf),
        }
    }

    /// params + add per plane + create_immed (or create), planes over memfds,
    /// mostly sized right and sometimes a little (or a lot) wrong.
    fn dmabuf_buffer(&mut self, dmabuf: u32) -> anyhow::Result<()> {
        let format = self.rng.pick(FORMATS);
        let fourcc = if self.rng.sane(95) { format.fourcc } else { self.rng.next_u64() as u32 };
        let (w, h) = (self.rng.int(1, 48), self.rng.int(1, 48));
        let params = self.c.new_id();
        self.send(dmabuf, 1, &[Arg::Uint(params)])?;
        self.add(params, Kind::Params, 0);
        let planes = if self.rng.sane(90) { format.planes.len() } else { self.rng.range(0, 5) as usize };
        let (uw, uh) = (w.max(1) as u32, h.max(1) as u32);
        for index in 0..planes {
            let layout = format.planes.get(index).copied().unwrap_or(format.planes[0]);
            let (_, rows) = layout.size(uw.min(4096), uh.min(4096));
            let row = layout.row_bytes(uw.min(4096)) as i64;
            let stride =
                if self.rng.sane(85) { row + self.rng.pick(&[0, 0, 4, 64]) } else { i64::from(self.rng.int(0, 256)) };
            let offset = if self.rng.sane(85) { 0 } else { i64::from(self.rng.int(0, 4096)) };
            let need = (offset + stride * i64::from(rows)).clamp(0, 1 << 22) as u64;
            let size = if self.rng.sane(85) { need } else { need.saturating_sub(self.rng.below(64)) };
            let file = self.file(size)?;
            let plane = if self.rng.sane(95) { index as u32 } else { self.rng.below(6) as u32 };
            let modifier = if self.rng.sane(95) { 0 } else { self.rng.next_u64() };
            let fd = self.files[file].0.try_clone()?;
            let args = [
                Arg::Fd(fd.as_fd()),
                Arg::Uint(plane),
                Arg::Uint(offset as u32),
                Arg::Uint(stride as u32),
                Arg::Uint((modifier >> 32) as u32),
                Arg::Uint(modifier as u32),
            ];
            self.send(params, 1, &args)?;
        }
        if self.rng.chance(20) {
            // create: the buffer comes in a `created` event, not used here.
            self.send(params, 2, &[Arg::Int(w), Arg::Int(h), Arg::Uint(fourcc), Arg::Uint(0)])
        } else {
            let buffer = self.c.new_id();
            let flags = if self.rng.sane(95) { 0 } else { self.rng.below(8) as u32 };
            self.send(params, 3, &[Arg::Uint(buffer), Arg::Int(w), Arg::Int(h), Arg::Uint(fourcc), Arg::Uint(flags)])?;
            self.add(buffer, Kind::Buffer, 0);
            Ok(())
        }
    }

    fn viewport(&mut self) -> anyhow::Result<()> {
        let Some(viewporter) = self.extra.viewporter else { return Ok(()) };
        if let Some(viewport) = self.pick(Kind::Viewport).filter(|_| self.rng.chance(70)) {
            return if self.rng.chance(50) {
                // wl_fixed: 24.8; -1 everywhere unsets the source.
                let mut r = [0i32; 4];
                for v in &mut r {
                    *v = if self.rng.chance(10) { -256 } else { self.rng.int(0, 64 * 256) };
                }
                self.send(viewport.id, 1, &r.map(Arg::Int))
            } else {
                let (w, h) = if self.rng.chance(10) { (-1, -1) } else { (self.rng.int(1, 128), self.rng.int(1, 128)) };
                self.send(viewport.id, 2, &[Arg::Int(w), Arg::Int(h)])
            };
        }
        let Some(surface) = self.pick(Kind::Surface) else { return Ok(()) };
        let id = self.c.new_id();
        self.send(viewporter, 1, &[Arg::Uint(id), Arg::Uint(surface.id)])?;
        self.add(id, Kind::Viewport, 0);
        Ok(())
    }

    fn single_pixel_buffer(&mut self) -> anyhow::Result<()> {
        let Some(manager) = self.extra.single_pixel else { return Ok(()) };
        let id = self.c.new_id();
        let rgba = [0; 4].map(|_: u32| self.rng.next_u64() as u32);
        self.send(
            manager,
            1,
            &[Arg::Uint(id), Arg::Uint(rgba[0]), Arg::Uint(rgba[1]), Arg::Uint(rgba[2]), Arg::Uint(rgba[3])],
        )?;
        self.add(id, Kind::Buffer, 0);
        Ok(())
    }

    fn roundtrip(&mut self) -> anyhow::Result<()> {
        self.requests += 1;
        self.c.roundtrip()
    }

    fn destroy(&mut self) -> anyhow::Result<()> {
        if self.objects.is_empty() {
            return self.new_surface();
        }
        let stale = self.rng.chance(5);
        let candidates: Vec<usize> = (0..self.objects.len()).filter(|&i| self.objects[i].alive || stale).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let index = self.rng.pick(&candidates);
        let object = self.objects[index];
        // An xdg_surface goes after its role object; a tame sequence keeps to that.
        if object.kind == Kind::XdgSurface && object.alive && self.rng.sane(95) {
            return Ok(());
        }
        self.objects[index].alive = false;
        self.send(object.id, object.kind.destructor(), &[])
    }

    /// Ends the sequence: a roundtrip, and how the connection stands.
    fn finish(&mut self) -> anyhow::Result<SequenceEnd> {
        match self.c.roundtrip() {
            Ok(()) => return Ok(SequenceEnd::Alive),
            Err(err) if format!("{err:#}").contains("timed out") => return Err(err),
            Err(_) => {}
        }
        // Ended: read what is left (the error event may still be unread) up to the close.
        match self.c.expect_end()? {
            Ending::Error(err) => {
                let interface = self.interface(err.object);
                Ok(SequenceEnd::Error { interface, code: err.code, message: err.message })
            }
            Ending::Closed => Ok(SequenceEnd::Closed),
        }
    }

    fn interface(&self, id: u32) -> String {
        let g = &self.g;
        let globals = [
            (DISPLAY, "wl_display"),
            (g.compositor, "wl_compositor"),
            (g.subcompositor, "wl_subcompositor"),
            (g.shm, "wl_shm"),
            (g.wm_base, "xdg_wm_base"),
        ];
        let extra = [
            (self.extra.dmabuf, "zwp_linux_dmabuf_v1"),
            (self.extra.viewporter, "wp_viewporter"),
            (self.extra.single_pixel, "wp_single_pixel_buffer_manager_v1"),
            (self.extra.seat, "wl_seat"),
            (self.extra.output, "wl_output"),
        ];
        let known = globals
            .into_iter()
            .find(|&(g, _)| g == id)
            .or_else(|| extra.into_iter().find_map(|(g, name)| (g == Some(id)).then_some((id, name))))
            .map(|(_, name)| name)
            .or_else(|| self.objects.iter().rev().find(|o| o.id == id).map(|o| o.kind.interface()));
        known.map_or_else(|| format!("object {id}"), str::to_string)
    }
}
