//! Starts the real compositor on a private XDG_RUNTIME_DIR and stops it on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::client::TestClient;

pub struct Compositor {
    child: Child,
    pub runtime_dir: PathBuf,
    pub socket_name: String,
    log_path: PathBuf,
    watchdog: Watchdog,
}

/// How long a compositor may take to print its socket name.
const START_LIMIT: Duration = Duration::from_secs(60);

/// How long one compositor may run. No test comes near it: a compositor still running
/// then is stuck, and a test waiting on it in a blocking call would hang the suite.
const HANG_LIMIT: Duration = Duration::from_secs(300);

impl Compositor {
    /// Starts `binary` (the `axiom` executable) headless at `width`x`height` with extra `args`,
    /// without Xwayland, and waits until it prints its socket name.
    pub fn start(binary: &Path, width: u32, height: u32, args: &[&str]) -> anyhow::Result<Self> {
        let mut all = vec!["--no-xwayland"];
        all.extend_from_slice(args);
        Self::start_with_xwayland(binary, width, height, &all)
    }

    /// As `start`, with Xwayland where it is installed (unless `args` says otherwise).
    pub fn start_with_xwayland(binary: &Path, width: u32, height: u32, args: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(binary, width, height, args, &[])
    }

    /// As `start`, with the compositor's open-file limit (soft and hard) at `fds`, so that
    /// a test can run it out of descriptors.
    pub fn start_with_fd_limit(
        binary: &Path,
        width: u32,
        height: u32,
        args: &[&str],
        fds: u64,
    ) -> anyhow::Result<Self> {
        let mut all = vec!["--no-xwayland"];
        all.extend_from_slice(args);
        Self::spawn_limited(binary, width, height, &all, &[], Some(fds))
    }

    /// Starts `binary` nested: its output is a `width`x`height` window on the X server `display`.
    pub fn start_nested(binary: &Path, width: u32, height: u32, display: &str) -> anyhow::Result<Self> {
        Self::spawn(binary, width, height, &["--backend", "winit", "--no-xwayland"], &[("DISPLAY", display)])
    }

    /// Starts `binary` on the KMS device of this machine (the VM rig's vkms), as root
    /// with libseat's built-in seatd (no seat daemon runs there); the output takes the
    /// connector's preferred mode.
    pub fn start_drm(binary: &Path, args: &[&str]) -> anyhow::Result<Self> {
        Self::start_drm_with_env(binary, args, &[])
    }

    /// `start_drm` with `env` set too.
    pub fn start_drm_with_env(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut all = vec!["--backend", "drm", "--no-xwayland"];
        all.extend_from_slice(args);
        let mut all_env = vec![("LIBSEAT_BACKEND", "builtin")];
        all_env.extend_from_slice(env);
        Self::spawn(binary, 0, 0, &all, &all_env)
    }

    /// Starts the compositor with `env` on top of a clean environment (no desktop named);
    /// `--size` is passed unless `width` is 0.
    fn spawn(binary: &Path, width: u32, height: u32, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::spawn_limited(binary, width, height, args, env, None)
    }

    fn spawn_limited(
        binary: &Path,
        width: u32,
        height: u32,
        args: &[&str],
        env: &[(&str, &str)],
        fd_limit: Option<u64>,
    ) -> anyhow::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let runtime_dir = std::env::temp_dir().join(format!(
            "axiom-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&runtime_dir);
        std::fs::create_dir_all(&runtime_dir)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))?;
        let log_path = runtime_dir.join("axiom.log");
        let log = std::fs::File::create(&log_path)?;

        let mut command = Command::new(binary);
        command.env_remove("DISPLAY").envs(env.iter().copied());
        if width > 0 {
            command.arg("--size").arg(format!("{width}x{height}"));
        }
        if let Some(fds) = fd_limit {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit { rlim_cur: fds, rlim_max: fds };
            // SAFETY: setrlimit is async-signal-safe; it only reads `limit`, copied in.
            unsafe {
                command.pre_exec(move || match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                });
            }
        }
        let mut child = command
            .args(args)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env_remove("WAYLAND_DISPLAY")
            .env("RUST_LOG", std::env::var("AXIOM_TEST_LOG").unwrap_or_else(|_| "axiom=debug,warn".into()))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let socket_name = match socket_name_from(stdout).recv_timeout(START_LIMIT) {
            Ok(Some(name)) => name,
            Ok(None) => {
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("axiom exited before it was ready:\n{log}");
            }
            Err(_) => {
                let threads = thread_states(child.id());
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("axiom was not ready after {START_LIMIT:?}:\n{log}\n{threads}");
            }
        };
        let watchdog = Watchdog::start(child.id(), log_path.clone());
        Ok(Self { child, runtime_dir, socket_name, log_path, watchdog })
    }

    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir.join(&self.socket_name)
    }

    pub fn connect(&self) -> anyhow::Result<TestClient> {
        TestClient::connect(&self.socket_path())
    }

    /// A command for a third-party client, pointed at this compositor.
    pub fn client_command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("WAYLAND_DISPLAY", &self.socket_name)
            .env_remove("DISPLAY")
            .env("LANG", "C.UTF-8");
        command
    }

    /// Whether the compositor process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits (up to `limit`) until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        self.watchdog.stop();
        let crashed = !self.is_running();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = self.log();
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
        if std::thread::panicking() || crashed {
            eprintln!("--- axiom log ({}) ---\n{log}", if crashed { "it had exited" } else { "test failed" });
            return;
        }
        // Whatever the test checked, these are bugs.
        let defects = defects_in(&log);
        if !defects.is_empty() {
            panic!("the compositor's log shows a bug:\n{}\n--- axiom log ---\n{log}", defects.join("\n"));
        }
    }
}

/// Log lines that are bugs whatever a test checks: a wgpu error (a validation error
/// means we sent the device something invalid) and a panic.
pub fn defects_in(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("wgpu error:") || l.contains("panicked at")).collect()
}

/// Reads the compositor's stdout on a thread: the socket name it announces (None if it
/// exits first), then the rest, so that it never blocks on a full pipe.
fn socket_name_from(stdout: std::process::ChildStdout) -> mpsc::Receiver<Option<String>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let name = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("WAYLAND_DISPLAY=").map(str::to_string));
        let _ = sender.send(name);
        for _ in lines {}
    });
    receiver
}

/// Kills a compositor that outlives [`HANG_LIMIT`], after writing where each of its
/// threads waits into its log; the test then fails (its connection closes) and prints it.
struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    fn start(pid: u32, log_path: PathBuf) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if stopped.recv_timeout(HANG_LIMIT) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            let threads = thread_states(pid);
            // A thread in uninterruptible sleep waits in the kernel, whose log may say why.
            let kernel_log = if threads.contains("State:\tD") { kernel_log_tail() } else { String::new() };
            let report = format!(
                "\n--- still running after {HANG_LIMIT:?}: killed ---\n{threads}{kernel_log}{}",
                user_stacks(pid)
            );
            if let Ok(mut log) = std::fs::OpenOptions::new().append(true).open(&log_path) {
                let _ = log.write_all(report.as_bytes());
            }
            // SAFETY: kill(2) takes plain integers; the child is not reaped before Drop.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        });
        Self { stop: Some(stop) }
    }

    fn stop(&mut self) {
        self.stop.take();
    }
}

/// Each thread of process `pid`: its name, the kernel function it sleeps in, and its
/// kernel stack where readable (root): enough to tell a stuck ioctl from a stuck loop.
fn thread_states(pid: u32) -> String {
    let mut report = String::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("process {pid} is gone\n");
    };
    for task in tasks.flatten() {
        let path = task.path();
        let read = |file: &str| std::fs::read_to_string(path.join(file)).unwrap_or_default();
        let status = read("status");
        let state = status.lines().find(|l| l.starts_with("State:")).unwrap_or("State: ?");
        report += &format!(
            "thread {} {}: {state}, wchan {}\n{}",
            task.file_name().to_string_lossy(),
            read("comm").trim(),
            read("wchan"),
            read("stack")
        );
    }
    report
}

/// The kernel log's last lines, where this user may read it (a hung ioctl is often
/// explained there).
fn kernel_log_tail() -> String {
    let Ok(output) = Command::new("dmesg").output() else { return String::new() };
    let log = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    format!("--- kernel log ---\n{tail}\n")
}

/// Every thread's stack in the compositor itself, where gdb is installed.
fn user_stacks(pid: u32) -> String {
    let gdb = Command::new("timeout")
        .args(["120", "gdb", "--batch", "-p", &pid.to_string(), "-ex", "thread apply all bt"])
        .output();
    match gdb {
        Ok(output) if output.status.success() => {
            format!("--- gdb ---\n{}\n", String::from_utf8_lossy(&output.stdout))
        }
        _ => String::new(),
    }
}
