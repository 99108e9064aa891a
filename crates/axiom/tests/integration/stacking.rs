//! Subsurfaces (above and below their parent) and popups appear in the right
//! stacking order.

use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::Image;

use crate::common::{centred, save_png, start, BACKGROUND};

const OUT_W: u32 = 320;
const OUT_H: u32 = 240;

#[test]
fn subsurfaces_and_popups_stack_in_order() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let red = Rgba::opaque(255, 0, 0);
    let green = Rgba::opaque(0, 255, 0);
    let blue = Rgba::opaque(0, 0, 255);
    let magenta = Rgba::opaque(255, 0, 255);
    let yellow = Rgba::opaque(255, 255, 0);

    let window = client.create_window("stacking").unwrap();
    // The window geometry excludes the subsurface hanging out at the top-left,
    // so placement (centred) depends on the parent alone.
    window.xdg_surface.set_window_geometry(0, 0, 100, 80);
    let parent = client.create_buffer(&Image::solid(100, 80, red), Format32::Xrgb8888, 400, 0xff).unwrap();
    let above = client.create_buffer(&Image::solid(30, 30, green), Format32::Xrgb8888, 120, 0xff).unwrap();
    let below = client.create_buffer(&Image::solid(40, 40, blue), Format32::Xrgb8888, 160, 0xff).unwrap();
    let under_popup = client.create_buffer(&Image::solid(20, 20, magenta), Format32::Xrgb8888, 80, 0xff).unwrap();
    let (_above_surface, _above_sub) = client.create_subsurface(&window.surface, 10, 10, &above);
    let (_below_surface, below_sub) = client.create_subsurface(&window.surface, -20, -20, &below);
    below_sub.place_below(&window.surface);
    let (_mid_surface, _mid_sub) = client.create_subsurface(&window.surface, 55, 45, &under_popup);
    client.present(&window.surface, &parent).unwrap();

    let popup_buffer = client.create_buffer(&Image::solid(30, 20, yellow), Format32::Xrgb8888, 120, 0xff).unwrap();
    let (_popup_surface, _popup) = client.create_popup(&window, 60, 50, &popup_buffer).unwrap();

    let shot = client.screenshot().unwrap();
    let (ox, oy) = centred(OUT_W, OUT_H, 100, 80);
    let at = |x: i32, y: i32| shot.pixel((ox as i32 + x) as u32, (oy as i32 + y) as u32);
    let checks = [
        ("parent", at(5, 70), red),
        ("subsurface above the parent", at(20, 20), green),
        ("subsurface below: hidden under the parent", at(5, 5), red),
        ("subsurface below: visible outside the parent", at(-10, -10), blue),
        ("subsurface under the popup, outside it", at(57, 47), magenta),
        ("popup above the subsurface", at(65, 55), yellow),
        ("popup", at(85, 65), yellow),
        ("outside everything", at(-25, 30), BACKGROUND),
    ];
    let failures: Vec<String> = checks
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("{what}: got {got:?}, want {want:?}"))
        .collect();
    assert!(failures.is_empty(), "{} (screenshot {})", failures.join("; "), save_png(&shot, "stacking"));
}

#[test]
fn unmapping_repaints_what_was_underneath() {
    // Only damaged areas are repainted: closing windows must still leave exactly
    // what lies beneath them.
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let red = Rgba::opaque(255, 0, 0);
    let green = Rgba::opaque(0, 255, 0);
    let below = client.create_window("below").unwrap();
    let big = client.create_buffer(&Image::solid(100, 60, red), Format32::Xrgb8888, 400, 0xff).unwrap();
    client.present(&below.surface, &big).unwrap();
    let above = client.create_window("above").unwrap();
    let small = client.create_buffer(&Image::solid(40, 40, green), Format32::Xrgb8888, 160, 0xff).unwrap();
    client.present(&above.surface, &small).unwrap();
    let (sx, sy) = centred(OUT_W, OUT_H, 40, 40);
    assert_eq!(client.screenshot().unwrap().pixel(sx + 20, sy + 20), green);

    above.destroy();
    client.roundtrip().unwrap();
    client.commit_and_wait_frame(&below.surface).unwrap();
    let mut expected = Image::solid(OUT_W, OUT_H, BACKGROUND);
    let (bx, by) = centred(OUT_W, OUT_H, 100, 60);
    expected = Image::new(OUT_W, OUT_H, |x, y| {
        if (bx..bx + 100).contains(&x) && (by..by + 60).contains(&y) {
            red
        } else {
            expected.pixel(x, y)
        }
    });
    crate::common::assert_image(&client.screenshot().unwrap(), &expected, 0, "unmap-above");

    below.destroy();
    client.roundtrip().unwrap();
    // Another client's commit drives the next repaint.
    let mut other = compositor.connect().unwrap();
    let tiny = other.create_window("tiny").unwrap();
    let pixel = other.create_buffer(&Image::solid(2, 2, green), Format32::Xrgb8888, 8, 0xff).unwrap();
    other.present(&tiny.surface, &pixel).unwrap();
    let (tx, ty) = centred(OUT_W, OUT_H, 2, 2);
    let expected = Image::new(OUT_W, OUT_H, |x, y| {
        if (tx..tx + 2).contains(&x) && (ty..ty + 2).contains(&y) {
            green
        } else {
            BACKGROUND
        }
    });
    crate::common::assert_image(&other.screenshot().unwrap(), &expected, 0, "unmap-all");
}
