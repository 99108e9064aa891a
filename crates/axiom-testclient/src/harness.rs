//! Starts the real compositor on a private XDG_RUNTIME_DIR and stops it on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::client::TestClient;

pub struct Compositor {
    child: Child,
    pub runtime_dir: PathBuf,
    pub socket_name: String,
    log_path: PathBuf,
}

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

    /// Starts `binary` nested: its output is a `width`x`height` window on the X server `display`.
    pub fn start_nested(binary: &Path, width: u32, height: u32, display: &str) -> anyhow::Result<Self> {
        Self::spawn(binary, width, height, &["--backend", "winit", "--no-xwayland"], &[("DISPLAY", display)])
    }

    /// Starts `binary` on the KMS device of this machine (the VM rig's vkms), as root
    /// with libseat's built-in seatd (no seat daemon runs there); the output takes the
    /// connector's preferred mode.
    pub fn start_drm(binary: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut all = vec!["--backend", "drm", "--no-xwayland"];
        all.extend_from_slice(args);
        Self::spawn(binary, 0, 0, &all, &[("LIBSEAT_BACKEND", "builtin")])
    }

    /// Starts the compositor with `env` on top of a clean environment (no desktop named);
    /// `--size` is passed unless `width` is 0.
    fn spawn(binary: &Path, width: u32, height: u32, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
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
        let mut lines = BufReader::new(stdout).lines();
        let socket_name = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(name) = line.strip_prefix("WAYLAND_DISPLAY=") {
                        break name.to_string();
                    }
                }
                _ => {
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    bail!("axiom exited before it was ready:\n{log}");
                }
            }
        };
        // Keep draining stdout so that the compositor never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, runtime_dir, socket_name, log_path })
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
        let crashed = !self.is_running();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() || crashed {
            eprintln!("--- axiom log ({}) ---\n{}", if crashed { "it had exited" } else { "test failed" }, self.log());
        }
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}
