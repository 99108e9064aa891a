//! The seat's input devices through libinput (keyboards, mice, touchpads,
//! tablets as absolute pointers). Ctrl+Alt+F1..F12 switch virtual terminals.

use smithay::backend::input::{
    AbsolutePositionEvent, Axis, AxisSource, Event, InputEvent, KeyboardKeyEvent, PointerAxisEvent, PointerButtonEvent,
    PointerMotionEvent,
};
use smithay::backend::libinput::{LibinputInputBackend, LibinputSessionInterface};
use smithay::backend::session::libseat::LibSeatSession;
use smithay::backend::session::Session;
use smithay::input::pointer::AxisFrame;
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::input::Libinput;

use crate::Axiom;

/// Starts libinput on the devices udev assigns to `seat`; they come and go with udev.
pub fn start(session: &LibSeatSession, seat: &str, handle: &LoopHandle<'static, Axiom>) -> anyhow::Result<Libinput> {
    let mut libinput = Libinput::new_with_udev(LibinputSessionInterface::from(session.clone()));
    libinput
        .udev_assign_seat(seat)
        .map_err(|()| anyhow::anyhow!("libinput cannot take the input devices of seat {seat}"))?;
    // Terminals switch through the session, with or without a display device.
    let mut session = session.clone();
    handle
        .insert_source(LibinputInputBackend::new(libinput.clone()), move |event, _, state| {
            state.on_libinput(event, &mut session)
        })
        .map_err(|e| anyhow::anyhow!("libinput source: {e}"))?;
    Ok(libinput)
}

impl Axiom {
    fn on_libinput(&mut self, event: InputEvent<LibinputInputBackend>, session: &mut LibSeatSession) {
        match event {
            InputEvent::DeviceAdded { device } => tracing::info!("input device added: {}", device.name()),
            InputEvent::DeviceRemoved { device } => tracing::info!("input device removed: {}", device.name()),
            InputEvent::Keyboard { event } => {
                let vt = self.keyboard_key(event.key_code(), event.state(), event.time_msec());
                if let Some(vt) = vt {
                    tracing::info!("switching to virtual terminal {vt}");
                    if let Err(err) = session.change_vt(vt) {
                        tracing::warn!("cannot switch to virtual terminal {vt}: {err}");
                    }
                }
            }
            InputEvent::PointerMotion { event } => self.pointer_motion_relative(event.delta(), event.time_msec()),
            InputEvent::PointerMotionAbsolute { event } => {
                let location = event.position_transformed(self.output_size());
                self.pointer_motion_absolute(location, event.time_msec());
            }
            InputEvent::PointerButton { event } => {
                self.pointer_button(event.button_code(), event.state(), event.time_msec())
            }
            InputEvent::PointerAxis { event } => {
                let mut frame = AxisFrame::new(event.time_msec()).source(event.source());
                for axis in [Axis::Horizontal, Axis::Vertical] {
                    if let Some(amount) = event.amount(axis) {
                        frame = frame.value(axis, amount);
                    }
                    if let Some(v120) = event.amount_v120(axis) {
                        frame = frame.v120(axis, v120 as i32);
                    }
                    if event.source() == AxisSource::Finger && event.amount(axis) == Some(0.0) {
                        frame = frame.stop(axis);
                    }
                }
                if let Some(pointer) = self.seat.get_pointer() {
                    pointer.axis(self, frame);
                    pointer.frame(self);
                }
            }
            _ => {}
        }
    }
}
