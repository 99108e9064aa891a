//! The protocol fuzzer, a bounded run: random sequences of valid-looking
//! requests from a client, one connection per sequence. The compositor must
//! survive every sequence (protocol errors are fine), and a well-behaved
//! client must still be served, pixel-exact, after each. A failure names the
//! seed, which `axiom-protocol-fuzz --seed S --sequences 1` replays.

use std::time::Instant;

use axiom_testclient::hostile::fuzz::{self, FuzzReport};
use axiom_testclient::image::Rgba;

use crate::common::{start, Bystander};

const OUT_W: u32 = 160;
const OUT_H: u32 = 120;
/// Sequences of 50-200 requests each: well under a minute on a 2-core machine.
const SEQUENCES: u64 = 300;
const FIRST_SEED: u64 = 0xf022;

const BYSTANDER_COLOUR: Rgba = Rgba::opaque(200, 40, 120);

#[test]
fn random_request_sequences_never_take_the_compositor_down() {
    let mut compositor = start(OUT_W, OUT_H);
    let mut bystander = Bystander::new(&compositor, OUT_W, OUT_H, BYSTANDER_COLOUR);
    let socket = compositor.socket_path();
    let mut report = FuzzReport::default();
    let started = Instant::now();
    for seed in FIRST_SEED..FIRST_SEED + SEQUENCES {
        let sequence = fuzz::run_sequence(&socket, seed);
        let alive = compositor.is_running();
        let sequence = match sequence {
            Ok(sequence) if alive => sequence,
            result => panic!(
                "seed {seed}: the compositor {} ({result:?})\nreplay: axiom-protocol-fuzz --seed {seed} --sequences 1\nlog:\n{}",
                if alive { "stopped answering" } else { "died" },
                compositor.log()
            ),
        };
        report.record(&sequence);
        bystander.check(&format!("seed {seed}"), OUT_W);
    }
    eprintln!("{report}time: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(report.sequences as u64, SEQUENCES);
    // The fuzzer must reach both ends: connections that survive and protocol errors.
    assert!(report.alive > 0 && report.errors() > 0, "{report}");
}
