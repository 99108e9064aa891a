//! Protocol checks smithay 0.7 leaves out, in front of its dispatch, so that a
//! misbehaving client gets the error the XML names instead of being ignored
//! or taking the compositor down (smithay panics on a negative xdg_toplevel
//! size, a subsurface placed next to itself and, in debug builds, negative
//! damage; it loops for ever on a popup that is its own ancestor). The
//! hostile-client tests and the protocol fuzzer cover every case.

use smithay::backend::renderer::utils::with_renderer_surface_state;
use smithay::reexports::wayland_protocols::xdg::shell::server::{
    xdg_popup::XdgPopup,
    xdg_positioner::{self, XdgPositioner},
    xdg_surface::{self, XdgSurface},
    xdg_toplevel::{self, XdgToplevel},
    xdg_wm_base::{self, XdgWmBase},
};
use smithay::reexports::wayland_server::backend::{ClientId, ObjectId};
use smithay::reexports::wayland_server::protocol::{
    wl_region::{self, WlRegion},
    wl_subcompositor::{self, WlSubcompositor},
    wl_subsurface::{self, WlSubsurface},
    wl_surface::{self, WlSurface},
};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, Resource, WEnum};
use smithay::wayland::compositor::{
    get_parent, get_role, with_states, BufferAssignment, CompositorState, RegionUserData, SubsurfaceUserData,
    SurfaceAttributes, SurfaceUserData,
};
use smithay::wayland::shell::xdg::{
    PositionerState, XdgPopupSurfaceData, XdgPositionerUserData, XdgShellState, XdgShellSurfaceUserData,
    XdgSurfaceUserData, XdgToplevelSurfaceData, XdgWmBaseUserData, XDG_POPUP_ROLE, XDG_TOPLEVEL_ROLE,
};

use crate::Axiom;

/// What the checks need to remember about xdg objects.
#[derive(Default)]
pub struct XdgStrict {
    /// xdg_surfaces that were given a role object, with it and their wl_surface.
    roles: Vec<RoleLink>,
    /// The xdg_surface whose get_toplevel/get_popup smithay is handling now.
    constructing: Option<XdgSurface>,
    /// The xdg_wm_base each xdg wl_surface was made through (errors about it go there).
    wm_bases: Vec<(WlSurface, XdgWmBase)>,
    /// Accept buffers committed before the first configure is acked. Only for
    /// embedders whose clients predate that rule (WLCS 1.5's test client).
    pub allow_unconfigured_buffers: bool,
}

struct RoleLink {
    xdg_surface: XdgSurface,
    wl_surface: WlSurface,
    role_object: ObjectId,
}

impl XdgStrict {
    /// Forgets dead xdg surfaces. Called after every dispatch: the links hold their
    /// wl_surfaces, and with them the surfaces' textures and imports.
    pub fn prune(&mut self) {
        self.roles.retain(|r| r.xdg_surface.is_alive());
        self.wm_bases.retain(|(s, _)| s.is_alive());
    }

    fn link_of(&self, xdg_surface: &XdgSurface) -> Option<&RoleLink> {
        self.roles.iter().find(|r| r.xdg_surface == *xdg_surface)
    }

    /// Called from smithay's new_toplevel/new_popup, inside get_toplevel/get_popup.
    pub fn role_created(&mut self, wl_surface: &WlSurface, role_object: ObjectId) {
        if let Some(xdg_surface) = self.constructing.take() {
            self.roles.push(RoleLink { xdg_surface, wl_surface: wl_surface.clone(), role_object });
        }
    }

    fn wm_base_of(&self, surface: &WlSurface) -> Option<XdgWmBase> {
        self.wm_bases.iter().find(|(s, _)| s == surface).map(|(_, w)| w.clone())
    }
}

/// Positions and sizes a client sends are clamped to ±2^20 logical pixels: far
/// beyond any output, and small enough that smithay's and our sums of them
/// (anchor + offset + size, origin - geometry, a chain of 1000 nested
/// subsurfaces: the default surface limit) cannot overflow an i32.
const COORD_LIMIT: i32 = 1 << 20;

fn coord(value: i32) -> i32 {
    value.clamp(-COORD_LIMIT, COORD_LIMIT)
}

/// A size: clamped from above only, so that negative ones still get their error.
fn extent(value: i32) -> i32 {
    value.min(COORD_LIMIT)
}

/// A rectangle (x, y, width, height), clamped as positions and sizes are.
fn clamp_rect(x: i32, y: i32, width: i32, height: i32) -> (i32, i32, i32, i32) {
    (coord(x), coord(y), extent(width), extent(height))
}

fn alive(dh: &DisplayHandle, id: &ObjectId) -> bool {
    dh.backend_handle().object_info(id.clone()).is_ok()
}

/// A popup whose positioner never got a size (xdg_wm_base.invalid_positioner), or
/// whose chain of parent popups comes back to itself (invalid_popup_parent: smithay
/// would walk that loop for ever).
pub fn check_new_popup(state: &Axiom, surface: &WlSurface, positioner: &PositionerState) -> bool {
    let error = if positioner.rect_size.w <= 0 || positioner.rect_size.h <= 0 {
        Some((xdg_wm_base::Error::InvalidPositioner, "the positioner has no size"))
    } else if parent_chain_loops(surface) {
        Some((xdg_wm_base::Error::InvalidPopupParent, "the popup is its own ancestor"))
    } else {
        None
    };
    let Some((code, message)) = error else { return true };
    if let Some(wm_base) = state.xdg_strict.wm_base_of(surface) {
        wm_base.post_error(code, message);
    }
    false
}

/// Whether following the parents of popup `surface` leads back to it.
fn parent_chain_loops(surface: &WlSurface) -> bool {
    let parent_of = |popup: &WlSurface| {
        with_states(popup, |states| states.data_map.get::<XdgPopupSurfaceData>()?.lock().ok()?.parent.clone())
    };
    let mut current = parent_of(surface);
    // Every popup is checked when made, so a loop runs through the new one; the bound
    // only guards against a chain we cannot see the end of.
    for _ in 0..1024 {
        match current {
            Some(parent) if parent == *surface => return true,
            Some(parent) if get_role(&parent) == Some(XDG_POPUP_ROLE) => current = parent_of(&parent),
            _ => return false,
        }
    }
    true
}

/// A commit with a buffer on an xdg surface whose first configure is not
/// acked yet: xdg_surface.unconfigured_buffer. Returns false if the client was killed.
pub fn check_commit(state: &Axiom, surface: &WlSurface) -> bool {
    let role = get_role(surface);
    if role != Some(XDG_TOPLEVEL_ROLE) && role != Some(XDG_POPUP_ROLE) {
        return true;
    }
    let (has_buffer, configured) = with_states(surface, |states| {
        let has_buffer = matches!(
            states.cached_state.get::<SurfaceAttributes>().current().buffer,
            Some(BufferAssignment::NewBuffer(_))
        );
        let configured = if role == Some(XDG_TOPLEVEL_ROLE) {
            states.data_map.get::<XdgToplevelSurfaceData>().and_then(|d| d.lock().ok().map(|d| d.configured))
        } else {
            states.data_map.get::<XdgPopupSurfaceData>().and_then(|d| d.lock().ok().map(|d| d.configured))
        };
        (has_buffer, configured.unwrap_or(true))
    });
    if !has_buffer || configured || state.xdg_strict.allow_unconfigured_buffers {
        return true;
    }
    if let Some(link) = state.xdg_strict.roles.iter().find(|r| r.wl_surface == *surface) {
        link.xdg_surface.post_error(
            xdg_surface::Error::UnconfiguredBuffer,
            "a buffer was committed before the first configure was acked",
        );
        return false;
    }
    true
}

impl Dispatch<WlSurface, SurfaceUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        surface: &WlSurface,
        request: wl_surface::Request,
        data: &SurfaceUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        match &request {
            wl_surface::Request::SetBufferTransform { transform: WEnum::Unknown(value) } => {
                surface.post_error(wl_surface::Error::InvalidTransform, format!("invalid transform {value}"));
                return;
            }
            // A rectangle of negative size covers nothing (and trips smithay's size assertions).
            wl_surface::Request::Damage { width, height, .. }
            | wl_surface::Request::DamageBuffer { width, height, .. }
                if *width < 0 || *height < 0 =>
            {
                return;
            }
            _ => {}
        }
        let request = match request {
            wl_surface::Request::Damage { x, y, width, height } => {
                let (x, y, width, height) = clamp_rect(x, y, width, height);
                wl_surface::Request::Damage { x, y, width, height }
            }
            wl_surface::Request::DamageBuffer { x, y, width, height } => {
                let (x, y, width, height) = clamp_rect(x, y, width, height);
                wl_surface::Request::DamageBuffer { x, y, width, height }
            }
            wl_surface::Request::Offset { x, y } => wl_surface::Request::Offset { x: coord(x), y: coord(y) },
            request => request,
        };
        <CompositorState as Dispatch<WlSurface, SurfaceUserData, Self>>::request(
            state, client, surface, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, surface: &WlSurface, data: &SurfaceUserData) {
        <CompositorState as Dispatch<WlSurface, SurfaceUserData, Self>>::destroyed(state, client, surface, data);
    }
}

impl Dispatch<WlSubcompositor, ()> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        subcompositor: &WlSubcompositor,
        request: wl_subcompositor::Request,
        data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let wl_subcompositor::Request::GetSubsurface { surface, parent, .. } = &request {
            // The parent may be neither the surface itself nor one of its descendants.
            let mut ancestor = Some(parent.clone());
            while let Some(current) = ancestor {
                if current == *surface {
                    subcompositor.post_error(
                        wl_subcompositor::Error::BadParent,
                        "a subsurface's parent may not be itself or its descendant",
                    );
                    return;
                }
                ancestor = get_parent(&current);
            }
        }
        <CompositorState as Dispatch<WlSubcompositor, (), Self>>::request(
            state,
            client,
            subcompositor,
            request,
            data,
            dh,
            data_init,
        );
    }
}

impl Dispatch<WlRegion, RegionUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        region: &WlRegion,
        request: wl_region::Request,
        data: &RegionUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        // As for damage: a negative rectangle adds or removes nothing.
        if let wl_region::Request::Add { width, height, .. } | wl_region::Request::Subtract { width, height, .. } =
            &request
        {
            if *width < 0 || *height < 0 {
                return;
            }
        }
        let request = match request {
            wl_region::Request::Add { x, y, width, height } => {
                let (x, y, width, height) = clamp_rect(x, y, width, height);
                wl_region::Request::Add { x, y, width, height }
            }
            wl_region::Request::Subtract { x, y, width, height } => {
                let (x, y, width, height) = clamp_rect(x, y, width, height);
                wl_region::Request::Subtract { x, y, width, height }
            }
            request => request,
        };
        <CompositorState as Dispatch<WlRegion, RegionUserData, Self>>::request(
            state, client, region, request, data, dh, data_init,
        );
    }
}

impl Dispatch<WlSubsurface, SubsurfaceUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        subsurface: &WlSubsurface,
        request: wl_subsurface::Request,
        data: &SubsurfaceUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        // The position is the parent's state, which smithay keeps in the child's.
        if let wl_subsurface::Request::SetPosition { x, y } = &request {
            crate::shell::subsurface::set_position(state, client, data.surface(), coord(*x), coord(*y));
            return;
        }
        // A surface is not its own sibling (smithay would panic reordering it).
        if let wl_subsurface::Request::PlaceAbove { sibling } | wl_subsurface::Request::PlaceBelow { sibling } =
            &request
        {
            if sibling == data.surface() {
                subsurface.post_error(wl_subsurface::Error::BadSurface, "a subsurface cannot be placed next to itself");
                return;
            }
        }
        <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, Self>>::request(
            state, client, subsurface, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, subsurface: &WlSubsurface, data: &SubsurfaceUserData) {
        <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, Self>>::destroyed(
            state, client, subsurface, data,
        );
    }
}

impl Dispatch<XdgPositioner, XdgPositionerUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        positioner: &XdgPositioner,
        request: xdg_positioner::Request,
        data: &XdgPositionerUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        // The XML names no error for a negative parent size; it is meaningless, so ignored.
        if let xdg_positioner::Request::SetParentSize { parent_width, parent_height } = &request {
            if *parent_width < 0 || *parent_height < 0 {
                return;
            }
        }
        // A zero-sized anchor rectangle is valid (only a negative size is an error).
        let request = match request {
            xdg_positioner::Request::SetAnchorRect { x, y, width, height } => {
                let (width, height) =
                    crate::shell::positioner::set_anchor_rect(dh, positioner, extent(width), extent(height));
                xdg_positioner::Request::SetAnchorRect { x: coord(x), y: coord(y), width, height }
            }
            xdg_positioner::Request::SetOffset { x, y } => {
                xdg_positioner::Request::SetOffset { x: coord(x), y: coord(y) }
            }
            xdg_positioner::Request::SetSize { width, height } => {
                xdg_positioner::Request::SetSize { width: extent(width), height: extent(height) }
            }
            xdg_positioner::Request::SetParentSize { parent_width, parent_height } => {
                xdg_positioner::Request::SetParentSize {
                    parent_width: extent(parent_width),
                    parent_height: extent(parent_height),
                }
            }
            request => request,
        };
        <XdgShellState as Dispatch<XdgPositioner, XdgPositionerUserData, Self>>::request(
            state, client, positioner, request, data, dh, data_init,
        );
    }
}

impl Dispatch<XdgWmBase, XdgWmBaseUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        wm_base: &XdgWmBase,
        request: xdg_wm_base::Request,
        data: &XdgWmBaseUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let xdg_wm_base::Request::GetXdgSurface { surface, .. } = &request {
            let role = get_role(surface);
            if role.is_some() && role != Some(XDG_TOPLEVEL_ROLE) && role != Some(XDG_POPUP_ROLE) {
                wm_base.post_error(xdg_wm_base::Error::Role, format!("the surface already has role {role:?}"));
                return;
            }
            // xdg_surface: creating one from a wl_surface with a buffer attached or committed is an error.
            let pending = with_states(surface, |states| {
                matches!(
                    states.cached_state.get::<SurfaceAttributes>().pending().buffer,
                    Some(BufferAssignment::NewBuffer(_))
                )
            });
            let committed = with_renderer_surface_state(surface, |s| s.buffer().is_some()).unwrap_or(false);
            if pending || committed {
                wm_base.post_error(
                    xdg_wm_base::Error::InvalidSurfaceState,
                    "the surface already has a buffer attached or committed",
                );
                return;
            }
            state.xdg_strict.prune();
            state.xdg_strict.wm_bases.push((surface.clone(), wm_base.clone()));
        }
        <XdgShellState as Dispatch<XdgWmBase, XdgWmBaseUserData, Self>>::request(
            state, client, wm_base, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, wm_base: &XdgWmBase, data: &XdgWmBaseUserData) {
        <XdgShellState as Dispatch<XdgWmBase, XdgWmBaseUserData, Self>>::destroyed(state, client, wm_base, data);
    }
}

impl Dispatch<XdgSurface, XdgSurfaceUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        xdg_surface: &XdgSurface,
        request: xdg_surface::Request,
        data: &XdgSurfaceUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let link = state.xdg_strict.link_of(xdg_surface);
        match &request {
            xdg_surface::Request::GetToplevel { .. } | xdg_surface::Request::GetPopup { .. } if link.is_some() => {
                xdg_surface.post_error(xdg_surface::Error::AlreadyConstructed, "the xdg_surface already has a role");
                return;
            }
            xdg_surface::Request::Destroy if link.is_some_and(|l| alive(dh, &l.role_object)) => {
                xdg_surface.post_error(
                    xdg_surface::Error::DefunctRoleObject,
                    "the xdg_surface was destroyed before its role object",
                );
                return;
            }
            xdg_surface::Request::SetWindowGeometry { width, height, .. } if *width <= 0 || *height <= 0 => {
                xdg_surface.post_error(
                    xdg_surface::Error::InvalidSize,
                    format!("window geometry {width}x{height} is not positive"),
                );
                return;
            }
            xdg_surface::Request::GetToplevel { .. } | xdg_surface::Request::GetPopup { .. } => {
                state.xdg_strict.prune();
                state.xdg_strict.constructing = Some(xdg_surface.clone());
                if let xdg_surface::Request::GetPopup { positioner, .. } = &request {
                    crate::shell::positioner::constructing_popup(positioner);
                }
            }
            _ => {}
        }
        let request = match request {
            xdg_surface::Request::SetWindowGeometry { x, y, width, height } => {
                xdg_surface::Request::SetWindowGeometry {
                    x: coord(x),
                    y: coord(y),
                    width: extent(width),
                    height: extent(height),
                }
            }
            request => request,
        };
        <XdgShellState as Dispatch<XdgSurface, XdgSurfaceUserData, Self>>::request(
            state,
            client,
            xdg_surface,
            request,
            data,
            dh,
            data_init,
        );
        state.xdg_strict.constructing = None;
    }

    fn destroyed(state: &mut Self, client: ClientId, xdg_surface: &XdgSurface, data: &XdgSurfaceUserData) {
        <XdgShellState as Dispatch<XdgSurface, XdgSurfaceUserData, Self>>::destroyed(state, client, xdg_surface, data);
    }
}

impl Dispatch<XdgToplevel, XdgShellSurfaceUserData> for Axiom {
    fn request(
        state: &mut Self,
        client: &Client,
        toplevel: &XdgToplevel,
        request: xdg_toplevel::Request,
        data: &XdgShellSurfaceUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        // smithay turns these into a Size, which panics on negative values.
        if let xdg_toplevel::Request::SetMaxSize { width, height }
        | xdg_toplevel::Request::SetMinSize { width, height } = &request
        {
            if *width < 0 || *height < 0 {
                toplevel.post_error(xdg_toplevel::Error::InvalidSize, format!("negative size {width}x{height}"));
                return;
            }
        }
        <XdgShellState as Dispatch<XdgToplevel, XdgShellSurfaceUserData, Self>>::request(
            state, client, toplevel, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut Self, client: ClientId, toplevel: &XdgToplevel, data: &XdgShellSurfaceUserData) {
        <XdgShellState as Dispatch<XdgToplevel, XdgShellSurfaceUserData, Self>>::destroyed(
            state, client, toplevel, data,
        );
    }
}

// Everything else of xdg-shell and wl_compositor goes to smithay unchanged.
smithay::reexports::wayland_server::delegate_global_dispatch!(Axiom: [XdgWmBase: ()] => XdgShellState);
smithay::reexports::wayland_server::delegate_dispatch!(Axiom: [XdgPopup: XdgShellSurfaceUserData] => XdgShellState);
