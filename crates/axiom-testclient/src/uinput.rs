//! A virtual keyboard and mouse through /dev/uinput, for tests of the DRM backend's
//! input in the VM rig: the kernel presents each as a real evdev device, udev tags
//! it, and libinput hands its events to the compositor.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;

use anyhow::Context;

const UI_SET_EVBIT: libc::c_ulong = 0x4004_5564;
const UI_SET_KEYBIT: libc::c_ulong = 0x4004_5565;
const UI_SET_RELBIT: libc::c_ulong = 0x4004_5566;
/// `_IOW('U', 3, struct uinput_setup)`, 92 bytes.
const UI_DEV_SETUP: libc::c_ulong = 0x405c_5503;
const UI_DEV_CREATE: libc::c_ulong = 0x5501;
const UI_DEV_DESTROY: libc::c_ulong = 0x5502;
const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const EV_REL: u16 = 2;
const REL_X: u16 = 0;
const REL_Y: u16 = 1;
const BTN_LEFT: u16 = 0x110;
const BUS_VIRTUAL: u16 = 0x06;

/// `struct uinput_setup` of linux/uinput.h.
#[repr(C)]
struct Setup {
    bustype: u16,
    vendor: u16,
    product: u16,
    version: u16,
    name: [u8; 80],
    ff_effects_max: u32,
}

/// A uinput device of ours, destroyed when dropped.
struct Device {
    file: File,
}

impl Device {
    /// Creates a device named `name` after `capabilities` has set its event and code bits.
    fn create(name: &str, capabilities: impl FnOnce(libc::c_int) -> bool) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new().write(true).open("/dev/uinput").context("/dev/uinput")?;
        let fd = file.as_raw_fd();
        let mut setup =
            Setup { bustype: BUS_VIRTUAL, vendor: 1, product: 1, version: 1, name: [0; 80], ff_effects_max: 0 };
        let len = name.len().min(79);
        setup.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        // SAFETY: uinput ioctls with the argument types linux/uinput.h gives them.
        let ok = capabilities(fd)
            && unsafe { libc::ioctl(fd, UI_DEV_SETUP, &setup) == 0 && libc::ioctl(fd, UI_DEV_CREATE) == 0 };
        anyhow::ensure!(ok, "uinput setup: {}", std::io::Error::last_os_error());
        Ok(Self { file })
    }

    fn event(&mut self, kind: u16, code: u16, value: i32) -> anyhow::Result<()> {
        // struct input_event: a zero timeval (the kernel stamps it), type, code, value.
        let mut bytes = [0u8; 24];
        bytes[16..18].copy_from_slice(&kind.to_ne_bytes());
        bytes[18..20].copy_from_slice(&code.to_ne_bytes());
        bytes[20..24].copy_from_slice(&value.to_ne_bytes());
        self.file.write_all(&bytes).context("writing to /dev/uinput")
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: destroys the device this fd created.
        unsafe { libc::ioctl(self.file.as_raw_fd(), UI_DEV_DESTROY) };
    }
}

/// Sets bit `code` of kind `request` (UI_SET_*BIT) on the device `fd`.
fn set_bit(fd: libc::c_int, request: libc::c_ulong, code: u16) -> bool {
    // SAFETY: a uinput ioctl with an int argument.
    unsafe { libc::ioctl(fd, request, libc::c_int::from(code)) == 0 }
}

pub struct Keyboard {
    device: Device,
}

impl Keyboard {
    /// Creates a keyboard with every key up to KEY_MICMUTE, named `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let device = Device::create(name, |fd| {
            set_bit(fd, UI_SET_EVBIT, EV_KEY) && (1..=248).all(|k| set_bit(fd, UI_SET_KEYBIT, k))
        })?;
        Ok(Self { device })
    }

    /// Presses and releases the key with Linux input event code `code`.
    pub fn tap(&mut self, code: u16) -> anyhow::Result<()> {
        for value in [1, 0] {
            self.device.event(EV_KEY, code, value)?;
            self.device.event(EV_SYN, 0, 0)?;
        }
        Ok(())
    }
}

/// A mouse: relative motion and a left button.
pub struct Mouse {
    device: Device,
}

impl Mouse {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let device = Device::create(name, |fd| {
            set_bit(fd, UI_SET_EVBIT, EV_KEY)
                && set_bit(fd, UI_SET_KEYBIT, BTN_LEFT)
                && set_bit(fd, UI_SET_EVBIT, EV_REL)
                && set_bit(fd, UI_SET_RELBIT, REL_X)
                && set_bit(fd, UI_SET_RELBIT, REL_Y)
        })?;
        Ok(Self { device })
    }

    /// Moves by (dx, dy) device units (the compositor's pointer acceleration applies).
    pub fn move_by(&mut self, dx: i32, dy: i32) -> anyhow::Result<()> {
        self.device.event(EV_REL, REL_X, dx)?;
        self.device.event(EV_REL, REL_Y, dy)?;
        self.device.event(EV_SYN, 0, 0)
    }
}
