//! contrib/wlheadless/axiom.py, the module `wlheadless-run -c axiom` loads.
//! Debian 12 does not package xwayland-run (it arrived in Debian 13), so this
//! runs the module as wlheadless-run does (run_compositor, wait_compositor,
//! spawn_client, then the compositor is terminated) with small stand-ins for the
//! two modules of that project it imports; the axiom command line it builds is
//! the one that runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::third_party::wait_exit;

/// Stand-ins for xwayland-run's `wlheadless.wlheadless_common` and
/// `wlheadless.xwayland`: start processes, and wait for the socket.
const COMMON: &str = r#"
import os, subprocess, time
class WlheadlessCommon:
    def run_compositor(self, command):
        with open(os.environ['AXIOM_TEST_LOG'], 'w') as log:
            log.write(repr(command) + '\n')
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def wait_compositor(self):
        socket = os.path.join(os.environ['XDG_RUNTIME_DIR'], os.environ['WAYLAND_DISPLAY'])
        for _ in range(600):
            if os.path.exists(socket):
                return 0
            time.sleep(0.1)
        return 1
    def run_command(self, command):
        return subprocess.call(command)
"#;
const XWAYLAND: &str = r#"
import subprocess
class Xwayland:
    def spawn_xwayland(self, args):
        return subprocess.Popen(['Xwayland'] + args)
"#;
/// What wlheadless-run does with a compositor module.
const DRIVER: &str = r#"
import importlib, sys
split = sys.argv.index('--')
wlheadless = importlib.import_module('wlheadless.axiom').Wlheadless()
compositor = wlheadless.run_compositor(sys.argv[1:split])
if wlheadless.wait_compositor() != 0:
    sys.exit('the compositor did not start')
status = wlheadless.spawn_client(sys.argv[split + 1:])
compositor.terminate()
sys.exit(status if compositor.wait() == 0 else 100 + compositor.returncode)
"#;

#[test]
fn wlheadless_run_with_our_module_runs_a_client_on_axiom() {
    let dir = std::env::temp_dir().join(format!("axiom-wlheadless-{}", std::process::id()));
    let package = dir.join("wlheadless");
    std::fs::create_dir_all(&package).unwrap();
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/wlheadless/axiom.py");
    std::fs::copy(&module, package.join("axiom.py")).unwrap();
    for (name, text) in [("__init__.py", ""), ("wlheadless_common.py", COMMON), ("xwayland.py", XWAYLAND)] {
        std::fs::write(package.join(name), text).unwrap();
    }
    std::fs::write(dir.join("wlheadless-run.py"), DRIVER).unwrap();

    let binary = crate::common::axiom_binary();
    let path = format!("{}:{}", binary.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let out = dir.join("out");
    let script = r#"printf '%s\n' "$WAYLAND_DISPLAY" "$1" > "$2"; wayland-info >> "$2"; exit 4"#;
    let log = dir.join("command");
    let mut child = Command::new("python3")
        .arg(dir.join("wlheadless-run.py"))
        .args(["--size", "320x200", "--", "sh", "-c", script, "sh", "an argument"])
        .arg(&out)
        .current_dir(&dir)
        .env("PYTHONPATH", &dir)
        .env("PATH", path)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("AXIOM_TEST_LOG", &log)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 must be installed (scripts/setup installs it)");
    let status = wait_exit(&mut child, Duration::from_secs(60)).expect("wlheadless-run finishes");
    let pid = child.id();
    assert_eq!(status.code(), Some(4), "the client's status, and axiom stopped cleanly by SIGTERM ({status})");

    let command = std::fs::read_to_string(&log).unwrap();
    let socket = format!("wayland-{pid}");
    let want =
        format!("['axiom', '--backend', 'headless', '--no-xwayland', '--size', '320x200', '--socket', '{socket}']\n");
    assert_eq!(command, want, "the command line the module runs");
    let out = std::fs::read_to_string(&out).unwrap();
    assert!(out.starts_with(&format!("{socket}\nan argument\n")), "the client's display and arguments:\n{out}");
    assert!(out.contains("width: 320 px, height: 200 px"), "wayland-info sees the output:\n{out}");
    assert!(!runtime.join(&socket).exists(), "the socket is removed");
    let _ = std::fs::remove_dir_all(&dir);
}
