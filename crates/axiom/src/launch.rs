//! What happens once clients can connect (the Wayland socket listens and, where
//! Xwayland starts, its display is up): whoever waits is told the display names
//! (`--ready-fd`, sd_notify), and the program given after `--` runs with them,
//! in a process group of its own (given the terminal, where we have it); its exit
//! status becomes the compositor's, as with xvfb-run and cage.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::io::FdFlags;
use rustix::process::{Pid, PidfdFlags, Signal};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
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
    /// The program's process group, until nothing of it is left.
    group: Option<Pid>,
    /// The terminal was handed to the program's group, to take back at the end.
    terminal_handed_over: bool,
    /// Told to stop: the program has had SIGTERM, and `STOP_GRACE` to end.
    terminating: bool,
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
    /// Takes over `ready_fd`, claimed at start-up (`claim_ready_fd`).
    pub fn new(wayland_display: String, ready_fd: Option<RawFd>, command: Vec<String>) -> anyhow::Result<Self> {
        let ready_fd = ready_fd.map(take_fd).transpose()?;
        Ok(Self {
            wayland_display,
            ready_fd,
            command,
            announced: false,
            program: None,
            group: None,
            terminal_handed_over: false,
            terminating: false,
            status: None,
        })
    }

    /// Whether readiness has been announced.
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// The exit status once the compositor has stopped: the program's, where one ran,
    /// else 0. What is left of the program's process group (the program itself where
    /// the compositor stopped first, its background jobs, members that ignore SIGTERM)
    /// gets SIGTERM and `STOP_GRACE` to end; then the group is killed.
    pub fn finish(&mut self) -> u8 {
        let deadline = Instant::now() + STOP_GRACE;
        if let Some(group) = self.group.take() {
            let _ = rustix::process::kill_process_group(group, Signal::TERM);
            let alive = |program: &mut Option<Child>| match program {
                Some(child) => !matches!(child.try_wait(), Ok(Some(_)) | Err(_)),
                None => rustix::process::test_kill_process_group(group).is_ok(),
            };
            while alive(&mut self.program) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(mut program) = self.program.take() {
                if matches!(program.try_wait(), Ok(None)) {
                    tracing::warn!("the program did not stop within {STOP_GRACE:?}: killing its process group");
                    let _ = rustix::process::kill_process_group(group, Signal::KILL);
                }
                self.status = self.status.or(program.wait().ok().map(exit_code));
            }
            while rustix::process::test_kill_process_group(group).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if rustix::process::test_kill_process_group(group).is_ok() {
                tracing::warn!("the program's process group outlived it by {STOP_GRACE:?}: killing it");
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
            }
        }
        if std::mem::take(&mut self.terminal_handed_over) {
            take_terminal_back();
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
        // Told to stop already (both in one dispatch): the program would only be killed.
        if command.is_empty() || self.stopping {
            return;
        }
        let foreground = owns_terminal();
        match spawn(&command, &names, foreground) {
            Ok(program) => {
                if let Some(launch) = self.launch.as_mut() {
                    launch.group = Pid::from_raw(program.id() as i32);
                    launch.terminal_handed_over = foreground;
                }
                self.watch_program(program)
            }
            Err(err) => {
                tracing::error!("cannot run {:?}: {err}", command[0]);
                // As a shell does: 126 for a file it may not run, 127 for one it cannot find.
                let status = if err.kind() == std::io::ErrorKind::PermissionDenied { 126 } else { 127 };
                if let Some(launch) = self.launch.as_mut() {
                    launch.status = Some(status);
                }
                self.stop();
            }
        }
    }

    /// SIGTERM or SIGINT: with a program running, it gets SIGTERM (its whole process
    /// group) and `STOP_GRACE` to end, clients still being served meanwhile; its end
    /// stops the compositor. Without one, or told twice, the compositor stops now.
    pub fn stop_on_signal(&mut self) {
        let Some(launch) = self.launch.as_mut().filter(|l| l.program.is_some() && !l.terminating) else {
            self.stop();
            return;
        };
        launch.terminating = true;
        if let Some(group) = launch.group {
            let _ = rustix::process::kill_process_group(group, Signal::TERM);
        }
        let killer = self.loop_handle.insert_source(Timer::from_duration(STOP_GRACE), |_, _, state| {
            if let Some(group) = state.launch.as_ref().filter(|l| l.program.is_some()).and_then(|l| l.group) {
                tracing::warn!("the program did not stop within {STOP_GRACE:?}: killing its process group");
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
            }
            TimeoutAction::Drop
        });
        if let Err(err) = killer {
            tracing::warn!("cannot time the program's stop ({err}): stopping now");
            self.stop();
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
            self.stop();
        }
    }
}

/// Checks, before the compositor opens any fd of its own (which could take the
/// number of one never passed), that the `--ready-fd` we were given is open, and
/// keeps it from every child.
pub fn claim_ready_fd(fd: RawFd) -> anyhow::Result<()> {
    // SAFETY: only inspected here; owned by `take_fd` later.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = rustix::io::fcntl_getfd(borrowed).map_err(|e| anyhow::anyhow!("--ready-fd {fd}: {e}"))?;
    rustix::io::fcntl_setfd(borrowed, flags | FdFlags::CLOEXEC)?;
    Ok(())
}

/// Takes ownership of the fd `claim_ready_fd` checked.
fn take_fd(fd: RawFd) -> anyhow::Result<OwnedFd> {
    claim_ready_fd(fd)?;
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

/// Whether standard input is a terminal whose foreground process group is ours:
/// then the program's group is given it, so that the program may read it and set
/// its modes (a background group would be stopped by SIGTTIN or SIGTTOU).
fn owns_terminal() -> bool {
    // SAFETY: plain queries of fd 0.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Gives the terminal on standard input back to our process group (as a background
/// group asking, SIGTTOU is held off).
fn take_terminal_back() {
    // SAFETY: signal-mask and terminal calls on fd 0 with valid arguments.
    unsafe {
        let mut ttou: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut ttou);
        libc::sigaddset(&mut ttou, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &ttou, &mut previous);
        libc::tcsetpgrp(0, libc::getpgrp());
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
    }
}

/// Starts the program with the display names in its environment (and no other
/// display's), in a process group of its own (the terminal's foreground group where
/// `foreground`), with no signal blocked, ended by SIGTERM if the compositor dies first.
fn spawn(command: &[String], names: &Names<'_>, foreground: bool) -> std::io::Result<Child> {
    let mut program = Command::new(&command[0]);
    program.args(&command[1..]).env("WAYLAND_DISPLAY", names.wayland).env_remove("NOTIFY_SOCKET").process_group(0);
    match &names.x11 {
        Some(x11) => program.env("DISPLAY", x11),
        None => program.env_remove("DISPLAY"),
    };
    // SAFETY: only async-signal-safe calls between fork and exec (std has made the
    // process group already). The event loop blocks the signals it handles, and a
    // child inherits the mask: the program must not.
    unsafe {
        program.pre_exec(move || {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            let errno = libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            if errno != 0 {
                return Err(std::io::Error::from_raw_os_error(errno));
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if foreground {
                // A background group taking the terminal would get SIGTTOU: held off meanwhile.
                let mut ttou: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut ttou);
                libc::sigaddset(&mut ttou, libc::SIGTTOU);
                libc::sigprocmask(libc::SIG_BLOCK, &ttou, std::ptr::null_mut());
                libc::tcsetpgrp(0, libc::getpid());
                libc::sigprocmask(libc::SIG_UNBLOCK, &ttou, std::ptr::null_mut());
            }
            Ok(())
        });
    }
    program.spawn()
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
