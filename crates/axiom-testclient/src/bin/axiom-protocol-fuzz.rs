//! Protocol fuzzer against a running compositor: random sequences of
//! valid-looking requests, one connection per sequence, until time is up.
//!
//! ```sh
//! WAYLAND_DISPLAY=wayland-1 axiom-protocol-fuzz --seconds 60 --seed 1
//! ```
//!
//! Exits non-zero, naming the seed of the sequence, if the compositor stops
//! answering or accepting connections. `--seed S --sequences 1` replays one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use axiom_testclient::hostile::fuzz;

const USAGE: &str = "usage: axiom-protocol-fuzz [--seconds N] [--sequences N] [--seed S] [--socket PATH]
  --seconds N     run for N seconds (default 60)
  --sequences N   run exactly N sequences instead (seeds S, S+1, ...)
  --seed S        first seed (default: from the clock; printed)
  --socket PATH   the compositor's socket (default: $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY)";

struct Args {
    seconds: u64,
    sequences: Option<usize>,
    seed: u64,
    socket: PathBuf,
}

fn parse() -> anyhow::Result<Args> {
    let mut seconds = 60;
    let mut sequences = None;
    let mut seed = None;
    let mut socket = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--seconds" => seconds = value()?.parse().context("--seconds")?,
            "--sequences" => sequences = Some(value()?.parse().context("--sequences")?),
            "--seed" => seed = Some(value()?.parse().context("--seed")?),
            "--socket" => socket = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let socket = match socket {
        Some(path) => path,
        None => {
            let display = std::env::var_os("WAYLAND_DISPLAY").context("WAYLAND_DISPLAY is not set")?;
            let display = PathBuf::from(display);
            if display.is_absolute() {
                display
            } else {
                PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR").context("XDG_RUNTIME_DIR is not set")?).join(display)
            }
        }
    };
    let seed = seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    Ok(Args { seconds, sequences, seed, socket })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("{err:#}");
            return ExitCode::from(2);
        }
    };
    println!("seed: {}", args.seed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut report = fuzz::FuzzReport::default();
    let mut failure = None;
    while args.sequences.map_or(Instant::now() < deadline, |n| report.sequences < n) {
        let seed = args.seed.wrapping_add(report.sequences as u64);
        match fuzz::run_sequence(&args.socket, seed).and_then(|sequence| {
            report.record(&sequence);
            fuzz::check_alive(&args.socket).with_context(|| format!("after the sequence of seed {seed}"))
        }) {
            Ok(()) => {}
            Err(err) => {
                failure = Some((seed, err));
                break;
            }
        }
    }
    print!("{report}");
    let secs = started.elapsed().as_secs_f64();
    println!("time: {secs:.1} s ({:.0} requests/s)", report.requests as f64 / secs.max(1e-3));
    match failure {
        None => ExitCode::SUCCESS,
        Some((seed, err)) => {
            eprintln!("compositor failure: {err:#}");
            eprintln!("replay: axiom-protocol-fuzz --seed {seed} --sequences 1");
            ExitCode::FAILURE
        }
    }
}
