//! A virtual keyboard through /dev/uinput, for tests of the DRM backend's input
//! in the VM rig: the kernel presents it as a real evdev device, udev tags it,
//! and libinput hands its keys to the compositor.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;

use anyhow::Context;

const UI_SET_EVBIT: libc::c_ulong = 0x4004_5564;
const UI_SET_KEYBIT: libc::c_ulong = 0x4004_5565;
/// `_IOW('U', 3, struct uinput_setup)`, 92 bytes.
const UI_DEV_SETUP: libc::c_ulong = 0x405c_5503;
const UI_DEV_CREATE: libc::c_ulong = 0x5501;
const UI_DEV_DESTROY: libc::c_ulong = 0x5502;
const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
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

pub struct Keyboard {
    device: File,
}

impl Keyboard {
    /// Creates a keyboard with every key up to KEY_MICMUTE, named `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let device = std::fs::OpenOptions::new().write(true).open("/dev/uinput").context("/dev/uinput")?;
        let fd = device.as_raw_fd();
        let mut setup =
            Setup { bustype: BUS_VIRTUAL, vendor: 1, product: 1, version: 1, name: [0; 80], ff_effects_max: 0 };
        let len = name.len().min(79);
        setup.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        // SAFETY: uinput ioctls with the argument types linux/uinput.h gives them.
        let ok = unsafe {
            libc::ioctl(fd, UI_SET_EVBIT, libc::c_int::from(EV_KEY)) == 0
                && (1..=248).all(|key: libc::c_int| libc::ioctl(fd, UI_SET_KEYBIT, key) == 0)
                && libc::ioctl(fd, UI_DEV_SETUP, &setup) == 0
                && libc::ioctl(fd, UI_DEV_CREATE) == 0
        };
        anyhow::ensure!(ok, "uinput setup: {}", std::io::Error::last_os_error());
        Ok(Self { device })
    }

    /// Presses and releases the key with Linux input event code `code`.
    pub fn tap(&mut self, code: u16) -> anyhow::Result<()> {
        for value in [1, 0] {
            self.event(EV_KEY, code, value)?;
            self.event(EV_SYN, 0, 0)?;
        }
        Ok(())
    }

    fn event(&mut self, kind: u16, code: u16, value: i32) -> anyhow::Result<()> {
        // struct input_event: a zero timeval (the kernel stamps it), type, code, value.
        let mut bytes = [0u8; 24];
        bytes[16..18].copy_from_slice(&kind.to_ne_bytes());
        bytes[18..20].copy_from_slice(&code.to_ne_bytes());
        bytes[20..24].copy_from_slice(&value.to_ne_bytes());
        self.device.write_all(&bytes).context("writing to /dev/uinput")
    }
}

impl Drop for Keyboard {
    fn drop(&mut self) {
        // SAFETY: destroys the device this fd created.
        unsafe { libc::ioctl(self.device.as_raw_fd(), UI_DEV_DESTROY) };
    }
}
