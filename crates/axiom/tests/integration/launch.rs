//! Run as test suites run headless compositors: `axiom -- CMD` starts CMD once
//! clients can connect and exits with its status; `--ready-fd` and sd_notify name
//! the display once it can be used; SIGTERM ends CMD's whole process group.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::third_party::wait_exit;

const LIMIT: Duration = Duration::from_secs(60);

/// A private XDG_RUNTIME_DIR, removed afterwards.
struct Runtime(PathBuf);

impl Runtime {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("axiom-launch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// axiom, headless and small, with `args`, on this runtime dir.
    fn axiom(&self, args: &[&str]) -> Command {
        self.axiom_sized(&[&["--size", "64x48"], args].concat())
    }

    /// axiom, headless, with `args` (which size its outputs), on this runtime dir.
    fn axiom_sized(&self, args: &[&str]) -> Command {
        let mut command = Command::new(crate::common::axiom_binary());
        command
            .args(["--backend", "headless", "--socket", "wayland-launch"])
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.0)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Whether the socket or its lock is still there.
    fn socket_left(&self) -> bool {
        std::fs::read_dir(&self.0).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("wayland-"))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn finished(mut child: Child) -> ExitStatus {
    wait_exit(&mut child, LIMIT).expect("axiom exits when its program does")
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{} never written", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_programs_exit_status_is_the_compositors() {
    let runtime = Runtime::new("status");
    for (script, want) in [("exit 3", 3), ("exit 0", 0), ("kill -KILL $$", 128 + 9)] {
        let status = finished(runtime.axiom(&["--no-xwayland", "--", "sh", "-c", script]).spawn().unwrap());
        assert_eq!(status.code(), Some(want), "{script}: {status}");
        assert!(!runtime.socket_left(), "{script}: the socket and its lock are removed");
    }
    let status = finished(runtime.axiom(&["--no-xwayland", "--", "/nonexistent/program"]).spawn().unwrap());
    assert_eq!(status.code(), Some(127), "a program that cannot run");
}

#[test]
fn the_program_starts_once_clients_can_connect_with_its_arguments_untouched() {
    let runtime = Runtime::new("args");
    let out = runtime.0.join("out");
    let script = r#"wayland-info > "$1.info"; printf '%s\n' "$WAYLAND_DISPLAY" "${DISPLAY-unset}" "$@" > "$1""#;
    let args = ["a b", "c'd", "\"e\"", "", "--help"];
    let mut command = runtime.axiom(&["--no-xwayland", "--", "sh", "-c", script, "sh"]);
    command.arg(&out).args(args).env("DISPLAY", ":99");
    let status = finished(command.spawn().unwrap());
    assert_eq!(status.code(), Some(0), "{status}");
    let info = std::fs::read_to_string(runtime.0.join("out.info")).unwrap();
    assert!(info.contains("wl_compositor"), "the program's client found the globals:\n{info}");
    let lines: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(str::to_string).collect();
    let mut want = vec!["wayland-launch".to_string(), "unset".into(), out.display().to_string()];
    want.extend(args.iter().map(|a| a.to_string()));
    assert_eq!(lines, want, "WAYLAND_DISPLAY, no outer DISPLAY, and every argument as given");
}

#[test]
fn sigterm_ends_the_programs_whole_process_group_and_the_compositor() {
    let runtime = Runtime::new("sigterm");
    let pidfile = runtime.0.join("pid");
    let mut command = runtime.axiom(&["--no-xwayland", "--", "sh", "-c", r#"sleep 1000 & echo $! > "$1"; wait"#, "sh"]);
    let axiom = command.arg(&pidfile).spawn().unwrap();
    let sleeper: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    let pid = rustix::process::Pid::from_raw(axiom.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = finished(axiom);
    assert_eq!(status.code(), Some(128 + 15), "the program's status: SIGTERM ended it ({status})");
    // The program's child went with its process group.
    wait_gone(sleeper, "the program's child");
    assert!(!runtime.socket_left(), "the socket and its lock are removed");
}

/// The pids of `parent`'s children whose executable is named `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim).unwrap_or("");
            field("Name:") == name && field("PPid:") == parent.to_string()
        })
        .collect()
}

/// Waits until process `pid` is gone (a zombie counts as gone), failing after `LIMIT`.
fn wait_gone(pid: i32, what: &str) {
    let deadline = Instant::now() + LIMIT;
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|state| state != "Z")
        })
    };
    while alive() {
        assert!(Instant::now() < deadline, "{what} ({pid}) outlived the compositor");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// axiom with the write end of a pipe as its fd 3 and `--ready-fd 3`, and sd_notify
/// going to a socket of ours; returns axiom, the pipe's read end and our socket.
fn started_with_ready_fd(runtime: &Runtime, args: &[&str]) -> (Child, OwnedFd, UnixDatagram) {
    let notify_path = runtime.0.join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(LIMIT)).unwrap();
    // Close-on-exec, so that no other test's child inherits it; dup2 onto fd 3 in our
    // child clears that for axiom alone.
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let mut command = runtime.axiom(&[&["--ready-fd", "3"], args].concat());
    command.env("NOTIFY_SOCKET", &notify_path);
    let raw = write.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe.
    unsafe {
        command.pre_exec(move || match libc::dup2(raw, 3) {
            3 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
    let axiom = command.spawn().unwrap();
    drop(write);
    (axiom, read, notify)
}

/// Everything written to `fd` until its writers close it.
fn read_to_end(fd: OwnedFd) -> String {
    let mut file = std::fs::File::from(fd);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).unwrap();
    text
}

#[test]
fn ready_fd_and_sd_notify_name_the_display_once_a_client_can_use_it() {
    let runtime = Runtime::new("ready");
    let (axiom, read, notify) = started_with_ready_fd(&runtime, &["--no-xwayland"]);
    assert_eq!(read_to_end(read), "wayland-launch\n", "one line, then the fd is closed");
    let mut client = axiom_testclient::TestClient::connect(&runtime.0.join("wayland-launch")).unwrap();
    client.roundtrip().expect("a client connecting right after is served");

    let mut message = [0u8; 512];
    let len = notify.recv(&mut message).expect("an sd_notify message");
    let message = String::from_utf8_lossy(&message[..len]);
    let fields: Vec<&str> = message.lines().collect();
    assert!(fields.contains(&"READY=1") && fields.contains(&"WAYLAND_DISPLAY=wayland-launch"), "{message}");

    drop(client);
    let pid = rustix::process::Pid::from_raw(axiom.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(finished(axiom).code(), Some(0), "without a program, a clean stop is status 0");
}

#[test]
fn with_xwayland_the_program_and_the_ready_fd_get_its_display() {
    let runtime = Runtime::new("xwayland");
    let out = runtime.0.join("display");
    // The program lives on a little, for the test to find Xwayland while axiom runs.
    let script = r#"printf '%s\n' "${DISPLAY-unset}" > "$1"; sleep 1"#;
    let (axiom, read, _notify) =
        started_with_ready_fd(&runtime, &["--", "sh", "-c", script, "sh", &out.to_string_lossy()]);
    let line = read_to_end(read);
    let xwayland = children_named(axiom.id(), "Xwayland");
    let status = finished(axiom);
    assert_eq!(status.code(), Some(0), "{status}");
    let display = std::fs::read_to_string(&out).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        words.len() == 2 && words[0] == "wayland-launch" && words[1].starts_with(':'),
        "the ready line names both displays (Xwayland is installed by scripts/setup): {line:?}"
    );
    assert_eq!(display.trim(), words[1], "the program's DISPLAY is Xwayland's");
    assert!(status.signal().is_none());
    assert_eq!(xwayland.len(), 1, "axiom ran one Xwayland: {xwayland:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{}", xwayland[0])).exists() {
        assert!(Instant::now() < deadline, "Xwayland ({}) outlived the compositor", xwayland[0]);
        std::thread::sleep(Duration::from_millis(50));
    }
    let number = &words[1][1..];
    assert!(!Path::new(&format!("/tmp/.X{number}-lock")).exists(), "the X display's lock is removed");
}

#[test]
fn a_program_that_ignores_sigterm_has_its_group_killed_after_a_grace_period() {
    let runtime = Runtime::new("grace");
    let pidfile = runtime.0.join("pid");
    // Ignoring SIGTERM is inherited by the sleep too.
    let script = r#"trap '' TERM; sleep 1000 & echo $! > "$1"; wait"#;
    let mut command = runtime.axiom(&["--no-xwayland", "--", "sh", "-c", script, "sh"]);
    let axiom = command.arg(&pidfile).spawn().unwrap();
    wait_for_file(&pidfile);
    let pid = rustix::process::Pid::from_raw(axiom.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = finished(axiom);
    assert_eq!(status.code(), Some(128 + 9), "killed once the grace period ran out ({status})");
    assert!(!runtime.socket_left(), "the socket and its lock are removed");
}

/// A PNG file as an image.
fn read_png(path: &Path) -> axiom_testclient::Image {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut bytes = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut bytes).unwrap();
    let channels = frame.color_type.samples();
    axiom_testclient::Image::new(frame.width, frame.height, |x, y| {
        let i = (y as usize * frame.width as usize + x as usize) * channels;
        axiom_testclient::Rgba::opaque(bytes[i], bytes[i + 1], bytes[i + 2])
    })
}

#[test]
fn a_gui_test_run_sees_two_outputs_at_their_modes_and_screenshots_them() {
    let runtime = Runtime::new("gui");
    let dir = runtime.0.display().to_string();
    // As a GUI test suite would: a client, wayland-info, screenshots per output.
    let script = r#"cd "$1"; wayland-info > info; weston-simple-shm & for i in $(seq 40); do sleep 0.25; grim -o HEADLESS-1 "first-$i.png"; done; grim -o HEADLESS-2 second.png; kill $!"#;
    let mut command = runtime.axiom_sized(&["--no-xwayland", "--output", "400x300", "--output", "160x120@30", "--"]);
    command.args(["sh", "-c", script, "sh", &dir]);
    let status = finished(command.spawn().unwrap());
    assert_eq!(status.code(), Some(0), "{status}");

    let info = std::fs::read_to_string(runtime.0.join("info")).unwrap();
    for want in [
        "name: HEADLESS-1",
        "name: HEADLESS-2",
        "width: 400 px, height: 300 px, refresh: 60.000 Hz",
        "width: 160 px, height: 120 px, refresh: 30.000 Hz",
    ] {
        assert!(info.contains(want), "wayland-info shows {want:?}:\n{info}");
    }
    // weston-simple-shm's 250x250 window, centred on the first output.
    let background = axiom_testclient::Rgba::opaque(0x20, 0x20, 0x20);
    let drawn = (1..=40).map(|i| read_png(&runtime.0.join(format!("first-{i}.png")))).any(|shot| {
        let window = shot.crop(75, 25, 250, 250);
        let outside = shot.crop(0, 0, 70, 300);
        window.pixels.iter().filter(|p| **p != background).count() > 250 * 250 / 2
            && outside.pixels.iter().all(|p| *p == background)
    });
    assert!(drawn, "weston-simple-shm is on the first output's screenshots");
    let second = read_png(&runtime.0.join("second.png"));
    assert_eq!((second.width, second.height), (160, 120));
    assert!(second.pixels.iter().all(|p| *p == background), "nothing on the second output");
}

/// `--xxx` words of the README's options table.
fn readme_options() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let table = readme.split("## Command-line options").nth(1).unwrap().split("\n\n").nth(1).unwrap().to_string();
    table
        .lines()
        .filter_map(|line| line.strip_prefix("| `--"))
        .filter_map(|rest| rest.split([' ', '`']).next())
        .filter(|name| !name.is_empty())
        .map(|name| format!("--{name}"))
        .collect()
}

#[test]
fn help_lists_exactly_the_readmes_long_options_and_version_prints() {
    let help = Command::new(crate::common::axiom_binary()).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let mut listed: Vec<String> = help
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--"))
        .filter_map(|rest| rest.split([' ', '<']).next())
        .map(|name| format!("--{name}"))
        .filter(|name| name != "--help" && name != "--version")
        .collect();
    let mut documented = readme_options();
    listed.sort();
    documented.sort();
    assert_eq!(listed, documented, "--help and the README's options table list the same options");
    // clap writes a short option as `-x, --xxx`: only its own -h and -V may have one.
    let shorts: Vec<&str> = help
        .lines()
        .map(str::trim_start)
        .filter(|line| line.len() > 4 && line.starts_with('-') && line.as_bytes()[2] == b',')
        .filter(|line| !line.starts_with("-h,") && !line.starts_with("-V,"))
        .collect();
    assert!(shorts.is_empty(), "long options only: {shorts:?}");

    let version = Command::new(crate::common::axiom_binary()).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), format!("axiom {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn what_the_program_leaves_running_in_its_group_is_stopped_with_it() {
    let runtime = Runtime::new("leftovers");
    let pidfile = runtime.0.join("pid");
    let script = r#"sleep 1000 & echo $! > "$1"; exit 0"#;
    let status =
        finished(runtime.axiom(&["--no-xwayland", "--", "sh", "-c", script, "sh"]).arg(&pidfile).spawn().unwrap());
    assert_eq!(status.code(), Some(0), "the program's status ({status})");
    wait_gone(std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap(), "the program's background job");
}

#[test]
fn a_program_runs_headless_even_from_a_desktops_terminal() {
    // DISPLAY names a desktop (one that does not exist): `auto` would be the nested backend.
    let runtime = Runtime::new("auto");
    let mut command = Command::new(crate::common::axiom_binary());
    command
        .args(["--size", "64x48", "--no-xwayland", "--", "sh", "-c", "exit 5"])
        .env("XDG_RUNTIME_DIR", &runtime.0)
        .env("DISPLAY", ":nonexistent")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    assert_eq!(finished(command.spawn().unwrap()).code(), Some(5), "headless, running the program");
}

#[test]
fn a_program_started_from_a_terminal_gets_it_and_may_set_its_modes() {
    // script(1) runs axiom on a new pseudo-terminal as its foreground job. A background
    // group changing the terminal's modes would be stopped by SIGTTOU, and this would hang.
    let runtime = Runtime::new("tty");
    let axiom = crate::common::axiom_binary();
    let inner = format!(
        "{} --backend headless --size 64x48 --no-xwayland -- sh -c 'stty -echo && stty echo && exit 7'",
        axiom.display()
    );
    let mut command = Command::new("script");
    command
        .args(["-qec", &inner, "/dev/null"])
        .env("XDG_RUNTIME_DIR", &runtime.0)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = finished(command.spawn().expect("script(1) is in Debian's bsdutils"));
    assert_eq!(status.code(), Some(7), "the program set the terminal's modes and its status came back ({status})");
}
