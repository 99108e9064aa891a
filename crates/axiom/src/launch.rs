//! What happens once clients can connect (the Wayland socket listens and, where
//! Xwayland starts, its display is up): whoever waits is told the display names
//! (`--ready-fd`, sd_notify), and the program given after `--` runs with them,
//! in a process group of its own; its exit status becomes the compositor's, as
//! with xvfb-run and cage.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::io::FdFlags;
use rustix::process::{Pid, PidfdFlags, Signal};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, Mode, PostAction};

use crate::Axiom;

/// How long a program told to stop has before its process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What to do once ready, and the program while it runs.
pub struct Launch {
    wayland_display: String,
    ready_fd: Option<OwnedFd>,
    command: Vec<String>,
    announced: bool,
    program: Option<Child>,
    /// The compositor's exit status, once the program has ended or could not start.
    pub status: Option<u8>,
}

/// The display names clients need: the Wayland socket, and the X display where
/// Xwayland runs.
pub struct Names<'a> {
    pub wayland: &'a str,
    pub x11: Option<String>,
}

impl Launch {
    /// Takes over `ready_fd` (closed on exec, so that no child keeps it open).
    pub fn new(wayland_display: String, ready_fd: Option<RawFd>, command: Vec<String>) -> anyhow::Result<Self> {
        let ready_fd = ready_fd.map(take_fd).transpose()?;
        Ok(Self { wayland_display, ready_fd, command, announced: false, program: None, status: None })
    }

    /// Whether readiness has been announced.
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// The exit status once the compositor has stopped: the program's, where one ran,
    /// after SIGTERM to its process group and `STOP_GRACE` to end (then the group is
    /// killed); else 0.
    pub fn finish(&mut self) -> u8 {
        if let Some(mut program) = self.program.take() {
            // Told already where SIGTERM stopped us; not where the compositor stopped by itself.
            signal_group(&program, Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            let status = loop {
                match program.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                    Ok(None) => {
                        tracing::warn!("the program did not stop within {STOP_GRACE:?}: killing its process group");
                        signal_group(&program, Signal::KILL);
                        break program.wait().ok();
                    }
                    Err(err) => {
                        tracing::warn!("waiting for the program: {err}");
                        break None;
                    }
                }
            };
            self.status = self.status.or(status.map(exit_code));
        }
        self.status.unwrap_or(0)
    }
}

impl Axiom {
    /// Called once clients can connect, with Xwayland's display where it runs (and
    /// again, harmlessly, if Xwayland reports late): writes the names to the ready
    /// fd, notifies systemd, and starts the program.
    pub fn announce_ready(&mut self, x11_display: Option<u32>) {
        let Some(launch) = self.launch.as_mut() else { return };
        if std::mem::replace(&mut launch.announced, true) {
            return;
        }
        let wayland = launch.wayland_display.clone();
        let names = Names { wayland: &wayland, x11: x11_display.map(|n| format!(":{n}")) };
        if let Some(fd) = launch.ready_fd.take() {
            write_ready_line(fd, &names);
        }
        notify_systemd(&names);
        let command = std::mem::take(&mut launch.command);
        if command.is_empty() {
            return;
        }
        match spawn(&command, &names) {
            Ok(program) => self.watch_program(program),
            Err(err) => {
                tracing::error!("cannot run {:?}: {err}", command[0]);
                // As a shell does for a command it cannot run.
                if let Some(launch) = self.launch.as_mut() {
                    launch.status = Some(127);
                }
                self.stop();
            }
        }
    }

    /// Sends SIGTERM to the program's process group, as the compositor itself is
    /// told to stop.
    pub fn terminate_program(&mut self) {
        if let Some(program) = self.launch.as_ref().and_then(|l| l.program.as_ref()) {
            signal_group(program, Signal::TERM);
        }
    }

    /// Stops the compositor when the program exits, with its status.
    fn watch_program(&mut self, program: Child) {
        let pid = Pid::from_child(&program);
        let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty());
        if let Some(launch) = self.launch.as_mut() {
            launch.program = Some(program);
        }
        let pidfd = match pidfd {
            Ok(pidfd) => pidfd,
            Err(err) => {
                tracing::error!("cannot watch the program (pidfd_open: {err}); stopping");
                self.terminate_program();
                self.stop();
                return;
            }
        };
        let watched =
            self.loop_handle.insert_source(Generic::new(pidfd, Interest::READ, Mode::Level), |_, _, state| {
                let Some(launch) = state.launch.as_mut() else { return Ok(PostAction::Remove) };
                let Some(program) = launch.program.as_mut() else { return Ok(PostAction::Remove) };
                match program.try_wait() {
                    Ok(Some(status)) => {
                        tracing::info!("the program exited ({status}): stopping");
                        launch.status = Some(exit_code(status));
                        launch.program = None;
                        state.stop();
                        Ok(PostAction::Remove)
                    }
                    Ok(None) => Ok(PostAction::Continue),
                    Err(err) => Err(err),
                }
            });
        if let Err(err) = watched {
            tracing::error!("cannot watch the program: {err}; stopping");
            self.terminate_program();
            self.stop();
        }
    }
}

/// Takes ownership of an fd inherited from whoever started us, checking it is open.
fn take_fd(fd: RawFd) -> anyhow::Result<OwnedFd> {
    // SAFETY: only checked here; owned below once known to be open.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = rustix::io::fcntl_getfd(borrowed).map_err(|e| anyhow::anyhow!("--ready-fd {fd}: {e}"))?;
    rustix::io::fcntl_setfd(borrowed, flags | FdFlags::CLOEXEC)?;
    // SAFETY: the fd is open, was given to us to use, and nothing else in the process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One line: the Wayland socket's name, then the X display where Xwayland runs
/// (`wayland-1 :0`); then the fd is closed, so that a reader sees the end.
fn write_ready_line(fd: OwnedFd, names: &Names<'_>) {
    let line = match &names.x11 {
        Some(x11) => format!("{} {x11}\n", names.wayland),
        None => format!("{}\n", names.wayland),
    };
    if let Err(err) = rustix::io::write(fd.as_fd(), line.as_bytes()) {
        tracing::warn!("--ready-fd: {err}");
    }
}

/// Tells systemd (or anyone listening on `NOTIFY_SOCKET`) that clients can connect,
/// and the display names.
fn notify_systemd(names: &Names<'_>) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let mut message = format!("READY=1\nSTATUS=clients can connect: WAYLAND_DISPLAY={}", names.wayland);
    if let Some(x11) = &names.x11 {
        message.push_str(&format!(" DISPLAY={x11}"));
    }
    message.push_str(&format!("\nWAYLAND_DISPLAY={}\n", names.wayland));
    if let Some(x11) = &names.x11 {
        message.push_str(&format!("DISPLAY={x11}\n"));
    }
    if let Err(err) = send_datagram(&path, message.as_bytes()) {
        tracing::warn!("sd_notify to {path:?}: {err}");
    }
}

fn send_datagram(path: &std::ffi::OsStr, message: &[u8]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = path.as_bytes();
    // A leading '@' names an abstract socket.
    let address = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(path)?,
    };
    UnixDatagram::unbound()?.send_to_addr(message, &address).map(|_| ())
}

/// Starts the program with the display names in its environment (and no other
/// display's), in a process group of its own, with no signal blocked.
fn spawn(command: &[String], names: &Names<'_>) -> std::io::Result<Child> {
    let mut program = Command::new(&command[0]);
    program.args(&command[1..]).env("WAYLAND_DISPLAY", names.wayland).env_remove("NOTIFY_SOCKET").process_group(0);
    match &names.x11 {
        Some(x11) => program.env("DISPLAY", x11),
        None => program.env_remove("DISPLAY"),
    };
    // SAFETY: only async-signal-safe calls between fork and exec. The event loop blocks
    // the signals it handles, and a child inherits the mask: the program must not.
    unsafe {
        program.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) {
                0 => Ok(()),
                errno => Err(std::io::Error::from_raw_os_error(errno)),
            }
        });
    }
    program.spawn()
}

/// Sends `signal` to the program's process group (it leads one).
fn signal_group(program: &Child, signal: Signal) {
    if let Some(pid) = Pid::from_raw(program.id() as i32) {
        if let Err(err) = rustix::process::kill_process_group(pid, signal) {
            tracing::debug!("signalling the program's process group: {err}");
        }
    }
}

/// The status a shell reports: the exit code, or 128 + N for death by signal N.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_a_shells() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
