//! wl_subsurface.set_position as the protocol has it: the position is state of
//! the parent. It is latched when the parent commits and takes effect when the
//! parent's state is applied (at once for a desynchronized parent, with its own
//! parent's next commit for a synchronized one). smithay 0.7 keeps it in the
//! subsurface's own state instead, so that a desynchronized subsurface moved on
//! its own commit and not on its parent's; the wl_subsurface dispatch
//! (`handlers::strict`) hands the request to `set_position` instead.

use std::sync::Mutex;

use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Client;
use smithay::utils::{Logical, Point};
use smithay::wayland::compositor::{
    add_post_commit_hook, add_pre_commit_hook, get_children, get_parent, with_states, CompositorHandler,
    SubsurfaceCachedState,
};

use crate::Axiom;

#[derive(Default)]
struct Position {
    /// Set by set_position, waiting for the parent's commit.
    requested: Option<Point<i32, Logical>>,
    /// Latched by the parent's commit, waiting for the parent's state to be applied.
    committed: Option<Point<i32, Logical>>,
    /// In effect: kept in the child's current state whenever smithay applies one.
    effective: Option<Point<i32, Logical>>,
}

#[derive(Default)]
struct PositionData(Mutex<Position>);

/// Marks a parent whose commits latch its children's positions.
struct LatchHook;

fn with_position<T>(surface: &WlSurface, f: impl FnOnce(&mut Position) -> T) -> T {
    with_states(surface, |states| {
        states.data_map.insert_if_missing_threadsafe(PositionData::default);
        let data = states.data_map.get::<PositionData>().expect("inserted above");
        let mut position = data.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut position)
    })
}

fn children(parent: &WlSurface) -> impl Iterator<Item = WlSurface> + '_ {
    get_children(parent).into_iter().filter(move |child| child != parent)
}

fn set_current(surface: &WlSurface, location: Point<i32, Logical>) {
    with_states(surface, |states| {
        states.cached_state.get::<SubsurfaceCachedState>().current().location = location;
    });
}

/// Called for every surface whose state was just applied: its children's
/// latched positions take effect. Returns whether a child moved.
pub fn apply_child_positions(parent: &WlSurface) -> bool {
    let mut moved = false;
    for child in children(parent) {
        let Some(location) = with_position(&child, |p| {
            let location = p.committed.take()?;
            p.effective = Some(location);
            Some(location)
        }) else {
            continue;
        };
        set_current(&child, location);
        moved = true;
    }
    moved
}

/// wl_subsurface.set_position on the subsurface `surface`, in the client's
/// coordinates (divided by the client's scale, as smithay does).
pub fn set_position(state: &mut Axiom, client: &Client, surface: &WlSurface, x: i32, y: i32) {
    let scale = state.client_compositor_state(client).client_scale();
    let location: Point<i32, Logical> =
        ((f64::from(x) / scale).round() as i32, (f64::from(y) / scale).round() as i32).into();
    let first = with_position(surface, |p| {
        let first = p.requested.is_none() && p.committed.is_none() && p.effective.is_none();
        p.requested = Some(location);
        first
    });
    if first {
        // smithay applies states of the child that carry its own idea of the position.
        add_post_commit_hook::<Axiom, _>(surface, |_, _, surface| {
            if let Some(location) = with_position(surface, |p| p.effective) {
                set_current(surface, location);
            }
        });
    }
    let Some(parent) = get_parent(surface) else { return };
    let first = with_states(&parent, |states| states.data_map.insert_if_missing_threadsafe(|| LatchHook));
    if first {
        add_pre_commit_hook::<Axiom, _>(&parent, |_, _, parent| {
            for child in children(parent) {
                with_position(&child, |p| {
                    if let Some(location) = p.requested.take() {
                        p.committed = Some(location);
                    }
                });
            }
        });
    }
}
