//! Hostile clients: protocol abuse gets the error the XML names, and a
//! well-behaved client is served, pixel-exact, after every scenario.

use axiom_testclient::hostile::{scenarios, SCENARIOS};
use axiom_testclient::image::Rgba;

use crate::common::{start, Bystander};

const OUT_W: u32 = 160;
const OUT_H: u32 = 120;

const BYSTANDER_COLOUR: Rgba = Rgba::opaque(12, 200, 34);

#[test]
fn protocol_abuse_gets_the_xml_error_and_others_keep_running() {
    let mut compositor = start(OUT_W, OUT_H);
    let mut bystander = Bystander::new(&compositor, OUT_W, OUT_H, BYSTANDER_COLOUR);
    let mut failures = Vec::new();
    // AXIOM_SCENARIO=<part of a name> runs only the matching scenarios (for debugging one).
    let only = std::env::var("AXIOM_SCENARIO").unwrap_or_default();
    for scenario in SCENARIOS.iter().filter(|s| s.name.contains(&only)) {
        let outcome = scenarios::run(&compositor.socket_path(), scenario);
        eprintln!("{:<75} {:?} -> {}", outcome.name, outcome.expect, outcome.got);
        if !outcome.passed {
            failures.push(format!("{}: expected {:?}, got {}", outcome.name, outcome.expect, outcome.got));
        }
        assert!(compositor.is_running(), "the compositor died in {:?}", scenario.name);
        bystander.check(scenario.name, OUT_W);
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        SCENARIOS.len(),
        failures.join("\n")
    );
}
