//! One file per protocol family, each wiring smithay's handler traits (or, for
//! protocols smithay lacks, our own dispatch) into [`crate::Axiom`].

pub mod color_representation;
pub mod compositor;
pub mod frame_pacing;
pub mod misc;
pub mod screencopy;
pub mod seat;
pub mod shm;
pub mod strict;
pub mod xdg_shell;
