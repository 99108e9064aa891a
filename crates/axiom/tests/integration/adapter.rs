//! Adapter choice: the GL backend draws the same pixels as Vulkan, and with no
//! adapter at all the compositor exits with a message naming the package.

use std::process::Command;

use axiom_testclient::image::{test_pattern, Format32};

use crate::common::{assert_image, centred, start_with};

#[test]
fn gl_backend_shows_exact_pixels_too() {
    let compositor = start_with(160, 120, &["--graphics-api", "gl"]);
    let mut client = compositor.connect().unwrap();
    let pattern = test_pattern(31, 23);
    for format in Format32::ALL {
        let window = client.create_window("gl").unwrap();
        let buffer = client.create_buffer(&pattern, format, 31 * 4, 0).unwrap();
        client.present(&window.surface, &buffer).unwrap();
        let (x, y) = centred(160, 120, 31, 23);
        let shot = client.screenshot_region(x as i32, y as i32, 31, 23).unwrap();
        assert_image(&shot, &pattern, 0, &format!("gl-{format:?}"));
        window.destroy();
    }
    assert!(compositor.log().contains("backend=Gl"), "{}", compositor.log());
}

#[test]
fn no_adapter_means_a_clear_message_and_failure() {
    let runtime = std::env::temp_dir().join(format!("axiom-noadapter-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    let output = Command::new(crate::common::axiom_binary())
        .args(["--backend", "headless", "--graphics-api", "vulkan", "--size", "64x64"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&runtime);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail without an adapter");
    assert!(stderr.contains("mesa-vulkan-drivers"), "message must name the package:\n{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("WAYLAND_DISPLAY="), "must not claim to be ready");
}
