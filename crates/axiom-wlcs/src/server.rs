//! The compositor thread: Axiom as the headless backend builds it, plus a
//! calloop channel that carries WLCS's commands into its event loop.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use smithay::backend::input::ButtonState;
use smithay::reexports::calloop::channel::{self, Channel, Event};
use smithay::reexports::calloop::EventLoop;
use smithay::reexports::wayland_server::{Client, Resource};
use smithay::utils::{Logical, Point};

use axiom::cli::Options;
use axiom::input::now_msec;
use axiom::Axiom;

/// How long WLCS's thread waits for the compositor to carry out a command: far
/// above any real dispatch, so only a wedged compositor hits it, and the test
/// then fails instead of hanging.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Command {
    /// `fd` is the client end's fd number, by which WLCS later names the client.
    NewClient {
        stream: UnixStream,
        fd: RawFd,
    },
    PositionWindow {
        fd: RawFd,
        surface_id: u32,
        location: Point<i32, Logical>,
    },
    PointerMoveAbsolute(Point<f64, Logical>),
    PointerMoveRelative(Point<f64, Logical>),
    PointerButton {
        button: u32,
        pressed: bool,
    },
    TouchDown {
        slot: u32,
        location: Point<f64, Logical>,
    },
    TouchMove {
        slot: u32,
        location: Point<f64, Logical>,
    },
    TouchUp {
        slot: u32,
    },
}

enum Message {
    /// A command and where to say that it is done.
    Run(Command, mpsc::Sender<()>),
    Stop,
}

/// A way to send commands to a running compositor; pointers and touches hold one each.
#[derive(Clone)]
pub struct Handle {
    sender: channel::Sender<Message>,
}

impl Handle {
    /// Runs `command` on the compositor thread and waits until it has been carried out.
    pub fn call(&self, command: Command) -> Result<(), String> {
        let (done, wait) = mpsc::channel();
        self.sender.send(Message::Run(command, done)).map_err(|_| "the compositor has stopped".to_string())?;
        wait.recv_timeout(COMMAND_TIMEOUT).map_err(|err| format!("the compositor did not answer: {err}"))
    }

    /// Like `call`, for WLCS hooks that cannot report a failure: it is printed.
    pub fn send(&self, command: Command) {
        if let Err(err) = self.call(command) {
            eprintln!("axiom-wlcs: {err}");
        }
    }
}

pub struct Server {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl Server {
    /// Starts a compositor on a new thread and waits until it is ready for clients.
    pub fn start() -> anyhow::Result<Self> {
        init_logging();
        let (sender, messages) = channel::channel();
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::Builder::new().name("axiom".into()).spawn(move || serve(messages, ready_tx))?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Self { handle: Handle { sender }, thread }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(anyhow::anyhow!("the compositor thread died while starting")),
        }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    pub fn call(&self, command: Command) -> Result<(), String> {
        self.handle.call(command)
    }

    pub fn send(&self, command: Command) {
        self.handle.send(command)
    }

    /// Stops the event loop and waits until the compositor, its clients and its renderer are gone.
    pub fn stop(self) {
        // A send error means the thread has already ended.
        let _ = self.handle.sender.send(Message::Stop);
        if self.thread.join().is_err() {
            eprintln!("axiom-wlcs: the compositor thread panicked");
        }
    }
}

/// Logs only when asked for: the runner's own output is what people read.
fn init_logging() {
    static LOGGING: Once = Once::new();
    if std::env::var_os("RUST_LOG").is_some() {
        LOGGING.call_once(axiom::logging::init);
    }
}

fn serve(messages: Channel<Message>, ready: mpsc::Sender<anyhow::Result<()>>) {
    let (mut event_loop, mut state) = match init(messages) {
        Ok(started) => started,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    if let Err(err) = event_loop.run(None, &mut state, Axiom::after_dispatch) {
        eprintln!("axiom-wlcs: event loop: {err}");
    }
}

fn init(messages: Channel<Message>) -> anyhow::Result<(EventLoop<'static, Axiom>, Axiom)> {
    // Small enough to keep lavapipe's repaints cheap, large enough for every WLCS layout.
    let options = Options::try_parse_from(["axiom", "--size", "1024x768"])?;
    let (event_loop, mut state) = axiom::backend::headless::init(&options)?;
    // WLCS 1.5's client attaches a buffer in the same burst as the first commit,
    // without waiting for the configure (xdg_surface.unconfigured_buffer).
    state.xdg_strict.allow_unconfigured_buffers = true;

    // WLCS names clients by the fd of their end of the socket pair.
    let mut clients: HashMap<RawFd, Client> = HashMap::new();
    event_loop
        .handle()
        .insert_source(messages, move |event, _, state| match event {
            Event::Msg(Message::Run(command, done)) => {
                run(state, &mut clients, command);
                let _ = done.send(());
            }
            Event::Msg(Message::Stop) | Event::Closed => state.loop_signal.stop(),
        })
        .map_err(|err| anyhow::anyhow!("command channel: {}", err.error))?;
    Ok((event_loop, state))
}

fn run(state: &mut Axiom, clients: &mut HashMap<RawFd, Client>, command: Command) {
    let time = now_msec();
    match command {
        Command::NewClient { stream, fd } => match state.display_handle.insert_client(stream, state.new_client_state())
        {
            // A closed client's fd number is reused by the next one: the old entry goes.
            Ok(client) => drop(clients.insert(fd, client)),
            Err(err) => eprintln!("axiom-wlcs: cannot insert a client: {err}"),
        },
        Command::PositionWindow { fd, surface_id, location } => {
            let Some(client) = clients.get(&fd) else { return };
            let window = state
                .space
                .elements()
                .find(|w| {
                    w.toplevel().is_some_and(|t| {
                        let surface = t.wl_surface();
                        surface.id().protocol_id() == surface_id && surface.client().as_ref() == Some(client)
                    })
                })
                .cloned();
            match window {
                Some(window) => {
                    state.space.map_element(window, location, false);
                    state.refresh_pointer_focus();
                    state.schedule_repaint();
                }
                None => eprintln!("axiom-wlcs: no mapped window for surface {surface_id}"),
            }
        }
        Command::PointerMoveAbsolute(location) => state.pointer_motion_absolute(location, time),
        Command::PointerMoveRelative(delta) => state.pointer_motion_relative(delta, time),
        Command::PointerButton { button, pressed } => {
            let button_state = if pressed { ButtonState::Pressed } else { ButtonState::Released };
            state.pointer_button(button, button_state, time);
        }
        Command::TouchDown { slot, location } => state.touch_down(slot, location, time),
        Command::TouchMove { slot, location } => state.touch_motion(slot, location, time),
        Command::TouchUp { slot } => state.touch_up(slot, time),
    }
}
