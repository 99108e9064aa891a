//! wl_compositor, wl_subcompositor and wl_buffer (wl_shm: `shm.rs`).

use smithay::backend::renderer::utils::on_commit_buffer_handler;
use smithay::reexports::wayland_server::protocol::{
    wl_buffer, wl_callback::WlCallback, wl_compositor::WlCompositor, wl_subcompositor::WlSubcompositor,
    wl_surface::WlSurface,
};
use smithay::reexports::wayland_server::{Client, Resource};
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    add_pre_commit_hook, get_parent, is_sync_subsurface, CompositorClientState, CompositorHandler, CompositorState,
};

use crate::state::ClientState;
use crate::Axiom;

impl CompositorHandler for Axiom {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor_state
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        // Every client we accept is inserted with ClientState, except Xwayland, which smithay inserts.
        if let Some(xwayland) = client.get_data::<smithay::xwayland::XWaylandClientData>() {
            return &xwayland.compositor_state;
        }
        &client.get_data::<ClientState>().expect("every client is inserted with ClientState").compositor_state
    }

    fn new_surface(&mut self, surface: &WlSurface) {
        // A dma-buf still being written is not shown before its writers finish.
        add_pre_commit_hook::<Self, _>(surface, |state, _, surface| {
            crate::dmabuf::sync::hold_commit_for_writers(state, surface)
        });
        // An explicitly synced one, not before its acquire point is signalled.
        add_pre_commit_hook::<Self, _>(surface, |state, _, surface| {
            super::drm_syncobj::hold_commit_for_acquire_point(state, surface)
        });
        // FIFO and commit timers: the clocks must tick to release what smithay holds.
        add_pre_commit_hook::<Self, _>(surface, |state, _, surface| state.note_paced_commit(surface));
        let Some(client) = surface.client() else { return };
        let Some(usage) = crate::limits::usage(&client) else { return };
        if let Err(exceeded) = usage.add_surface(&self.limits, surface) {
            crate::limits::disconnect(&self.display_handle, &client, &exceeded);
        }
    }

    fn commit(&mut self, surface: &WlSurface) {
        if !super::strict::check_commit(self, surface) {
            return;
        }
        // Keeps the attached buffer alive (and releases the previous one) and records damage.
        on_commit_buffer_handler::<Self>(surface);
        super::color_representation::commit(surface);

        if !is_sync_subsurface(surface) {
            let mut root = surface.clone();
            while let Some(parent) = get_parent(&root) {
                root = parent;
            }
            if let Some(window) = self.window_for_surface(&root) {
                window.on_commit();
            }
            self.cursor_committed(&root);
        }

        crate::shell::handle_commit(self, surface);
        self.popups.commit(surface);
        self.schedule_repaint();
    }
}

impl BufferHandler for Axiom {
    fn buffer_destroyed(&mut self, buffer: &wl_buffer::WlBuffer) {
        self.renderer.forget_buffer(&buffer.id());
    }
}

// wl_surface, wl_subcompositor, wl_subsurface and wl_region go through `strict.rs` first.
smithay::reexports::wayland_server::delegate_global_dispatch!(Axiom: [WlCompositor: ()] => CompositorState);
smithay::reexports::wayland_server::delegate_global_dispatch!(Axiom: [WlSubcompositor: ()] => CompositorState);
smithay::reexports::wayland_server::delegate_dispatch!(Axiom: [WlCompositor: ()] => CompositorState);
smithay::reexports::wayland_server::delegate_dispatch!(Axiom: [WlCallback: ()] => CompositorState);
