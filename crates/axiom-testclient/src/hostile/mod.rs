//! The adversarial client: scenarios that abuse the protocol, the buffers and
//! the compositor's resources, written at the wire level where a client
//! library would refuse to send them.

pub mod capture;
pub mod fuzz;
pub mod requests;
pub mod scenarios;
pub mod stress;
pub mod wire;

pub use scenarios::{Expect, Outcome, Scenario, SCENARIOS};
pub use wire::WireClient;
