//! The Wayland socket clients connect to, as an event source that never ends the
//! event loop. smithay's `ListeningSocketSource` returns accept()'s errors to
//! the loop, which then stops: one client holding the process's last fd would
//! take the compositor down for everybody. Here a failed accept is logged and
//! the connection waiting in the backlog is refused: with the fd table full, a
//! spare fd kept open for this is given up to accept it and close it at once,
//! so that the client sees its connection closed instead of hanging, and the
//! level-triggered socket does not wake the loop again and again.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{Interest, LoopHandle, Mode, PostAction, RegistrationToken};
use smithay::reexports::wayland_server::ListeningSocket;

use crate::Axiom;

/// Listens on `name` (or the first free `wayland-N`) under XDG_RUNTIME_DIR and
/// inserts each client that connects. Returns the source's token (removing it
/// removes the socket and its lock) and the socket's name.
pub fn listen(handle: &LoopHandle<'static, Axiom>, name: Option<&str>) -> anyhow::Result<(RegistrationToken, String)> {
    let socket = match name {
        Some(name) => ListeningSocket::bind(name)?,
        None => ListeningSocket::bind_auto("wayland", 1..33)?,
    };
    let name = socket
        .socket_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("the Wayland socket has no name"))?;
    let mut refusals = Refusals::default();
    let token = handle
        .insert_source(Generic::new(socket, Interest::READ, Mode::Level), move |_, socket, state| {
            loop {
                match socket.accept() {
                    Ok(Some(stream)) => {
                        if let Err(err) = state.display_handle.insert_client(stream, state.new_client_state()) {
                            tracing::warn!("cannot accept a client: {err}");
                        }
                    }
                    Ok(None) => return Ok(PostAction::Continue),
                    Err(err) if refusals.refuse(socket, &err) => return Ok(PostAction::Continue),
                    // The connection could not even be refused: listen again a little later
                    // rather than wake up for it at once, over and over.
                    Err(_) => {
                        state.listen_again_after(PAUSE);
                        return Ok(PostAction::Disable);
                    }
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("socket source: {e}"))?;
    Ok((token, name))
}

/// How long the socket goes unwatched when a waiting connection cannot be refused.
const PAUSE: Duration = Duration::from_millis(100);

impl Axiom {
    fn listen_again_after(&mut self, pause: Duration) {
        let Some(token) = self.listener else { return };
        let again = self.loop_handle.insert_source(Timer::from_duration(pause), move |_, _, state| {
            if let Err(err) = state.loop_handle.enable(&token) {
                tracing::warn!("cannot listen on the Wayland socket again: {err}");
            }
            TimeoutAction::Drop
        });
        if let Err(err) = again {
            tracing::warn!("cannot schedule listening again: {err}");
        }
    }
}

/// Connections refused because accept() failed, and the spare fd that lets us refuse
/// them when the fd table is full.
struct Refusals {
    spare: Option<OwnedFd>,
    count: u64,
    last_logged: Option<Instant>,
}

impl Default for Refusals {
    fn default() -> Self {
        Self { spare: open_spare(), count: 0, last_logged: None }
    }
}

/// Refusals are logged at most this often (a client retrying would flood the log).
const LOG_INTERVAL: Duration = Duration::from_secs(5);

impl Refusals {
    /// Logs a failed accept and refuses the connection behind it; false if it is
    /// still waiting (the fd table is full and no spare fd was left to free).
    fn refuse(&mut self, socket: &ListeningSocket, err: &std::io::Error) -> bool {
        let fds_exhausted = matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        let mut refused = !fds_exhausted;
        if fds_exhausted && self.spare.take().is_some() {
            // Frees one fd to take the waiting connection and close it.
            refused = matches!(socket.accept(), Ok(Some(_)));
            self.spare = open_spare();
        }
        self.count += 1;
        if self.last_logged.is_none_or(|t| t.elapsed() >= LOG_INTERVAL) {
            self.last_logged = Some(Instant::now());
            tracing::warn!(
                "cannot accept a client ({err}){}: connection refused ({} so far); serving the others",
                if fds_exhausted { ", out of file descriptors" } else { "" },
                self.count
            );
        }
        refused
    }
}

fn open_spare() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}
