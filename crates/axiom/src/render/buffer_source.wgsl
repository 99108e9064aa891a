// Planes read straight from an imported buffer (the dmabuf-vulkan ladder's
// step 2): the client's bytes, at its offsets and strides, decoded into what
// textureLoad of the matching texture format would return.

@group(1) @binding(3) var<storage, read> words: array<u32>;

// The 32 bits starting at byte address `a` (any alignment), little endian.
fn load_u32(a: u32) -> u32 {
    let shift = (a & 3u) * 8u;
    let lo = words[a >> 2u];
    if (shift == 0u) {
        return lo;
    }
    let hi = words[(a >> 2u) + 1u];
    return (lo >> shift) | (hi << (32u - shift));
}

fn byte_of(v: u32, i: u32) -> f32 {
    return f32((v >> (i * 8u)) & 0xffu) / 255.0;
}

fn fetch_buffer(plane: u32, p: vec2<i32>) -> vec4<f32> {
    let row = draw.plane_offset[plane] + u32(p.y) * draw.plane_stride[plane];
    let x = u32(p.x);
    switch draw.plane_kind[plane] {
        case 0u: { // R8
            return vec4<f32>(byte_of(load_u32(row + x), 0u), 0.0, 0.0, 1.0);
        }
        case 1u: { // RG8
            let v = load_u32(row + x * 2u);
            return vec4<f32>(byte_of(v, 0u), byte_of(v, 1u), 0.0, 1.0);
        }
        case 2u: { // RGBA8
            let v = load_u32(row + x * 4u);
            return vec4<f32>(byte_of(v, 0u), byte_of(v, 1u), byte_of(v, 2u), byte_of(v, 3u));
        }
        case 3u: { // BGRA8
            let v = load_u32(row + x * 4u);
            return vec4<f32>(byte_of(v, 2u), byte_of(v, 1u), byte_of(v, 0u), byte_of(v, 3u));
        }
        case 4u: { // RGB10A2
            let v = load_u32(row + x * 4u);
            return vec4<f32>(f32(v & 1023u) / 1023.0, f32((v >> 10u) & 1023u) / 1023.0, f32((v >> 20u) & 1023u) / 1023.0, f32(v >> 30u) / 3.0);
        }
        default: { // RGBA16F
            let a = row + x * 8u;
            return vec4<f32>(unpack2x16float(load_u32(a)), unpack2x16float(load_u32(a + 4u)));
        }
    }
}
