// One textured quad per surface. Sampling is done with textureLoad at the
// exact texel (surfaces are placed on whole pixels), which keeps packed
// formats such as RGB565 exact.

struct Draw {
    // Destination rectangle in output pixels: x, y, width, height.
    dst: vec4<f32>,
    // Source rectangle in texels of plane 0: x, y, width, height.
    src: vec4<f32>,
    output_size: vec2<f32>,
    // SampleMode in render/formats.rs.
    mode: u32,
    // 1: the format has no alpha, treat it as opaque.
    opaque: u32,
};

@group(0) @binding(0) var<uniform> draw: Draw;
@group(1) @binding(0) var plane0: texture_2d<f32>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    let pixel = draw.dst.xy + corner * draw.dst.zw;
    let ndc = pixel / draw.output_size * 2.0 - 1.0;
    var out: VertexOut;
    out.position = vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
    return out;
}

fn unpack_rgb565(texel: vec4<f32>) -> vec4<f32> {
    let lo = u32(round(texel.r * 255.0));
    let hi = u32(round(texel.g * 255.0));
    let v = lo | (hi << 8u);
    let r = f32((v >> 11u) & 31u) / 31.0;
    let g = f32((v >> 5u) & 63u) / 63.0;
    let b = f32(v & 31u) / 31.0;
    return vec4<f32>(r, g, b, 1.0);
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let t = (in.position.xy - draw.dst.xy) / draw.dst.zw;
    let texel = draw.src.xy + t * draw.src.zw;
    let dims = vec2<i32>(textureDimensions(plane0));
    let coord = clamp(vec2<i32>(floor(texel)), vec2<i32>(0), dims - 1);
    var c = textureLoad(plane0, coord, 0);
    if (draw.mode == 1u) {
        c = c.bgra;
    } else if (draw.mode == 2u) {
        c = unpack_rgb565(c);
    }
    if (draw.opaque == 1u) {
        c.a = 1.0;
    }
    // Wayland buffers are premultiplied: blend with One, OneMinusSrcAlpha.
    return c;
}
