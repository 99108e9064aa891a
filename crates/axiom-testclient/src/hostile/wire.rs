//! A Wayland connection at the wire level: requests are written as bytes, so
//! that an adversarial client can send what no client library would (ids of
//! objects it never created, unknown opcodes, broken messages), and events
//! are kept raw, so that the `wl_display.error` the server answers with can be
//! read exactly.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags,
};

/// The display is object 1 on every connection.
pub const DISPLAY: u32 = 1;
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// One argument of a request.
pub enum Arg<'a> {
    Uint(u32),
    Int(i32),
    /// A string, sent with its terminating NUL.
    Str(&'a str),
    /// A file descriptor, sent as ancillary data.
    Fd(BorrowedFd<'a>),
}

/// An event as it came off the socket.
#[derive(Debug, Clone)]
pub struct Event {
    pub object: u32,
    pub opcode: u16,
    pub payload: Vec<u8>,
}

impl Event {
    /// The `index`-th 32-bit word of the payload.
    pub fn word(&self, index: usize) -> Option<u32> {
        let bytes = self.payload.get(index * 4..index * 4 + 4)?;
        Some(u32::from_ne_bytes(bytes.try_into().ok()?))
    }

    /// The string starting at word `index` (length word, bytes, NUL, padding).
    pub fn string(&self, index: usize) -> Option<String> {
        let len = self.word(index)? as usize;
        let start = (index + 1) * 4;
        let bytes = self.payload.get(start..start + len.checked_sub(1)?)?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// `wl_display.error` as received: the object it names, the code and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub object: u32,
    pub code: u32,
    pub message: String,
}

/// How the server ended (or did not end) the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// `wl_display.error`, then the socket closed.
    Error(ProtocolError),
    /// Closed without an error event (e.g. for a message that cannot be parsed).
    Closed,
}

pub struct WireClient {
    socket: UnixStream,
    next_id: u32,
    /// Every event received so far.
    pub events: Vec<Event>,
    /// Globals: (name, interface, version).
    pub globals: Vec<(u32, String, u32)>,
    registry: u32,
    closed: bool,
    /// Bytes of a message not yet complete.
    pending: Vec<u8>,
}

impl WireClient {
    /// Connects and reads the registry's globals.
    pub fn connect(path: &Path) -> anyhow::Result<Self> {
        let socket = UnixStream::connect(path).with_context(|| format!("connect to {}", path.display()))?;
        let mut client = Self {
            socket,
            next_id: 2,
            events: Vec::new(),
            globals: Vec::new(),
            registry: 0,
            closed: false,
            pending: Vec::new(),
        };
        client.registry = client.new_id();
        client.send(DISPLAY, 1, &[Arg::Uint(client.registry)])?;
        client.roundtrip()?;
        Ok(client)
    }

    /// A fresh client-side object id.
    pub fn new_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Binds the global named `interface` at `version`; returns the new object's id.
    pub fn bind(&mut self, interface: &str, version: u32) -> anyhow::Result<u32> {
        let Some(&(name, _, _)) = self.globals.iter().find(|(_, i, _)| i == interface) else {
            bail!("no global {interface}");
        };
        let id = self.new_id();
        let registry = self.registry;
        self.send(registry, 0, &[Arg::Uint(name), Arg::Str(interface), Arg::Uint(version), Arg::Uint(id)])?;
        Ok(id)
    }

    /// Sends one request: `object`, `opcode` and its arguments, fds as ancillary data.
    pub fn send(&mut self, object: u32, opcode: u16, args: &[Arg<'_>]) -> anyhow::Result<()> {
        let mut body = Vec::new();
        let mut fds = Vec::new();
        for arg in args {
            match arg {
                Arg::Uint(v) => body.extend_from_slice(&v.to_ne_bytes()),
                Arg::Int(v) => body.extend_from_slice(&v.to_ne_bytes()),
                Arg::Str(s) => {
                    body.extend_from_slice(&(s.len() as u32 + 1).to_ne_bytes());
                    body.extend_from_slice(s.as_bytes());
                    body.push(0);
                    while body.len() % 4 != 0 {
                        body.push(0);
                    }
                }
                Arg::Fd(fd) => fds.push(*fd),
            }
        }
        let size = 8 + body.len() as u32;
        let mut message = Vec::with_capacity(size as usize);
        message.extend_from_slice(&object.to_ne_bytes());
        message.extend_from_slice(&((size << 16) | u32::from(opcode)).to_ne_bytes());
        message.extend_from_slice(&body);
        self.send_raw(&message, &fds)
    }

    /// Writes `bytes` as they are, with `fds` attached.
    pub fn send_raw(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> anyhow::Result<()> {
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(28))];
        let mut ancillary = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !ancillary.push(SendAncillaryMessage::ScmRights(fds)) {
            bail!("too many fds for one message");
        }
        let sent = sendmsg(self.socket.as_fd(), &[IoSlice::new(bytes)], &mut ancillary, SendFlags::NOSIGNAL)
            .context("sendmsg")?;
        if sent != bytes.len() {
            bail!("short write: {sent} of {} bytes", bytes.len());
        }
        Ok(())
    }

    /// Sends wl_display.sync and reads events until its callback is done.
    pub fn roundtrip(&mut self) -> anyhow::Result<()> {
        let callback = self.new_id();
        self.send(DISPLAY, 0, &[Arg::Uint(callback)])?;
        self.wait_event(callback, 0).context("roundtrip")
    }

    /// Reads events until one with `opcode` on `object` has arrived (e.g. a frame callback's `done`).
    pub fn wait_event(&mut self, object: u32, opcode: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            if self.events.iter().any(|e| e.object == object && e.opcode == opcode) {
                return Ok(());
            }
            if let Some(ending) = self.ending() {
                bail!("connection ended while waiting for event {opcode} on object {object}: {ending:?}");
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for event {opcode} on object {object}");
            }
            self.read_events(deadline)?;
        }
    }

    /// Reads and forgets the events already waiting, without blocking.
    pub fn drain(&mut self) -> anyhow::Result<()> {
        for _ in 0..16 {
            let before = (self.events.len(), self.pending.len(), self.closed);
            self.read_events(Instant::now())?;
            if (self.events.len(), self.pending.len(), self.closed) == before {
                break;
            }
        }
        self.events.clear();
        if let Some(ending) = self.ending() {
            bail!("connection ended: {ending:?}");
        }
        Ok(())
    }

    /// Waits until the server closes the connection, and says how.
    pub fn expect_end(&mut self) -> anyhow::Result<Ending> {
        // A sync makes sure the request before has been processed (errors out if not).
        let _ = self.roundtrip();
        let deadline = Instant::now() + WAIT_LIMIT;
        while !self.closed {
            if Instant::now() > deadline {
                bail!("the server kept the connection open");
            }
            self.read_events(deadline)?;
        }
        Ok(self.ending().unwrap_or(Ending::Closed))
    }

    /// The protocol error the server sent, if any.
    pub fn protocol_error(&self) -> Option<ProtocolError> {
        self.events.iter().find(|e| e.object == DISPLAY && e.opcode == 0).map(|e| ProtocolError {
            object: e.word(0).unwrap_or(0),
            code: e.word(1).unwrap_or(u32::MAX),
            message: e.string(2).unwrap_or_default(),
        })
    }

    fn ending(&self) -> Option<Ending> {
        match self.protocol_error() {
            Some(err) => Some(Ending::Error(err)),
            None if self.closed => Some(Ending::Closed),
            None => None,
        }
    }

    /// The first word of the latest event `opcode` on `object` (e.g. a configure serial).
    pub fn last_event_word(&self, object: u32, opcode: u16) -> Option<u32> {
        self.events.iter().rev().find(|e| e.object == object && e.opcode == opcode).and_then(|e| e.word(0))
    }

    fn read_events(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let timeout = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        self.socket.set_read_timeout(Some(timeout))?;
        let mut buffer = vec![0u8; 65536];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(28))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let received = match recvmsg(
            self.socket.as_fd(),
            &mut [IoSliceMut::new(&mut buffer)],
            &mut ancillary,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => r.bytes,
            Err(rustix::io::Errno::AGAIN) => return Ok(()),
            Err(rustix::io::Errno::CONNRESET) => 0,
            Err(err) => return Err(err).context("recvmsg"),
        };
        // Fds of events (keymaps and the like) are not needed: close them.
        for message in ancillary.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                fds.for_each(|fd: OwnedFd| drop(fd));
            }
        }
        if received == 0 {
            self.closed = true;
            return Ok(());
        }
        self.pending.extend_from_slice(&buffer[..received]);
        self.parse();
        Ok(())
    }

    /// Moves every complete message of `pending` into `events`.
    fn parse(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let mut bytes = &pending[..];
        while bytes.len() >= 8 {
            let object = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let header = u32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            let size = (header >> 16) as usize;
            if size < 8 || size > bytes.len() {
                break;
            }
            let event = Event { object, opcode: (header & 0xffff) as u16, payload: bytes[8..size].to_vec() };
            if event.object == self.registry && event.opcode == 0 {
                if let (Some(name), Some(interface)) = (event.word(0), event.string(1)) {
                    let words = (interface.len() + 1).div_ceil(4);
                    let version = event.word(2 + words).unwrap_or(1);
                    self.globals.push((name, interface, version));
                }
            }
            self.events.push(event);
            bytes = &bytes[size..];
        }
        self.pending = bytes.to_vec();
    }
}
