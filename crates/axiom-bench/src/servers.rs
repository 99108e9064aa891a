//! The compositors under test, each started headless at the same output size
//! on a private XDG_RUNTIME_DIR.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axiom_testclient::Compositor;

pub const OUTPUT: (u32, u32) = (1920, 1080);

pub enum Server {
    Axiom(Compositor),
    Weston { child: Child, runtime_dir: PathBuf },
}

impl Server {
    pub fn axiom(binary: &Path) -> anyhow::Result<Self> {
        // No per-frame debug logging: it would be measured as compositor work.
        std::env::set_var("AXIOM_TEST_LOG", "axiom=info,warn");
        Ok(Server::Axiom(Compositor::start(binary, OUTPUT.0, OUTPUT.1, &[])?))
    }

    /// weston 14, headless with its GL renderer, no idle timeout and no animations.
    pub fn weston() -> anyhow::Result<Self> {
        let runtime_dir = std::env::temp_dir().join(format!("axiom-bench-weston-{}", std::process::id()));
        std::fs::create_dir_all(&runtime_dir)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))?;
        let config = runtime_dir.join("weston.ini");
        std::fs::write(
            &config,
            "[shell]\nanimation=none\nclose-animation=none\nstartup-animation=none\nfocus-animation=none\n",
        )?;
        let child = Command::new("weston")
            .arg(format!("--config={}", config.display()))
            .args(["--backend=headless", "--renderer=gl", "--idle-time=0", "--socket=weston-bench"])
            .arg(format!("--width={}", OUTPUT.0))
            .arg(format!("--height={}", OUTPUT.1))
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("weston (install it: scripts/setup)")?;
        let server = Server::Weston { child, runtime_dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server.socket().exists() {
            if Instant::now() > deadline {
                bail!("weston did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let its shell finish starting (background, panel) before measuring.
        std::thread::sleep(Duration::from_secs(2));
        Ok(server)
    }

    pub fn socket(&self) -> PathBuf {
        match self {
            Server::Axiom(c) => c.socket_path(),
            Server::Weston { runtime_dir, .. } => runtime_dir.join("weston-bench"),
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Server::Axiom(c) => c.pid(),
            Server::Weston { child, .. } => child.id(),
        }
    }

    /// The renderer's adapter line from axiom's log.
    pub fn adapter(&self) -> Option<String> {
        match self {
            Server::Axiom(c) => c
                .log()
                .lines()
                .find(|l| l.contains("renderer ready"))
                .map(|l| l.split("renderer ready").nth(1).unwrap_or_default().trim().to_string()),
            Server::Weston { .. } => None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Server::Weston { child, runtime_dir } = self {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(runtime_dir);
        }
    }
}
