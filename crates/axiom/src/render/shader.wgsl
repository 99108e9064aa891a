// One textured quad per surface. Sampling is done with textureLoad: at the exact
// texel where each pixel shows one texel, which keeps packed formats exact, and
// bilinearly between four converted texels where the quad is scaled. Multi-plane
// YUV is converted here, never on the CPU.

struct Draw {
    // Destination rectangle in output pixels: x, y, width, height.
    dst: vec4<f32>,
    // Buffer pixel at quad position t (0 to 1): src.xy + t.x * src.zw + t.y * src_y_axis.xy
    // (render/source_map.rs: viewport crop, buffer transform and scale, y-invert).
    src: vec4<f32>,
    src_y_axis: vec4<f32>,
    output_size: vec2<f32>,
    // Buffer size in pixels.
    buffer_size: vec2<f32>,
    // SampleMode in render/formats.rs (the pipeline is specialised on it: MODE).
    mode: u32,
    // 1: the format has no alpha, treat it as opaque.
    opaque: u32,
    // 0: planes are textures; 1: planes are read from the imported buffer `words`.
    source: u32,
    // 1: bilinear (drawn with fs_filtered).
    filtered: u32,
    // Rows of the 3x4 matrix from (Y, Cb, Cr, 1) code values to RGB (axiom_formats::convert).
    yuv_r: vec4<f32>,
    yuv_g: vec4<f32>,
    yuv_b: vec4<f32>,
    // For source 1, per plane: byte offset, stride, and texel kind (render/buffer_source.rs).
    plane_offset: vec4<u32>,
    plane_stride: vec4<u32>,
    plane_kind: vec4<u32>,
    // Where 4:2:0 chroma samples sit, in pixels from their 2x2 block's top-left (xy).
    chroma: vec4<f32>,
};

// The pipeline's specialisation (render/pipelines.rs): the draw's sample mode and plane source.
override MODE: u32 = 0u;
override SOURCE: u32 = 0u;
// 1: the format has no alpha (fs_sampled's pipelines only; others read draw.opaque).
override OPAQUE: u32 = 0u;

@group(0) @binding(0) var<uniform> draw: Draw;
@group(1) @binding(0) var plane0: texture_2d<f32>;
@group(1) @binding(1) var plane1: texture_2d<f32>;
@group(1) @binding(2) var plane2: texture_2d<f32>;
// Nearest, edges clamped: gathers chroma samples; samples plane 0 in fs_sampled and
// fs_yuv_sampled (render/mod.rs).
@group(1) @binding(4) var chroma_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
};

// vs_sampled's, for fs_sampled (other draws would pay to interpolate `uv` unread).
struct SampledOut {
    @builtin(position) position: vec4<f32>,
    // The buffer point at this pixel, in texture coordinates.
    @location(0) uv: vec2<f32>,
};

fn corner_of(index: u32) -> vec2<f32> {
    return vec2<f32>(f32(index & 1u), f32(index >> 1u));
}

fn clip_position(corner: vec2<f32>) -> vec4<f32> {
    let pixel = draw.dst.xy + corner * draw.dst.zw;
    let ndc = pixel / draw.output_size * 2.0 - 1.0;
    return vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
}

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    return VertexOut(clip_position(corner_of(index)));
}

@vertex
fn vs_sampled(@builtin(vertex_index) index: u32) -> SampledOut {
    let corner = corner_of(index);
    // buffer_point at this corner: the map is affine, so interpolation gives every pixel's.
    let at = draw.src.xy + corner.x * draw.src.zw + corner.y * draw.src_y_axis.xy;
    return SampledOut(clip_position(corner), at / draw.buffer_size);
}

// An 8-bit code value from a unorm channel.
fn code8(x: f32) -> f32 {
    return round(x * 255.0);
}

// A 16-bit little-endian value stored in two unorm8 channels.
fn code16(lo: f32, hi: f32) -> f32 {
    return code8(lo) + code8(hi) * 256.0;
}

fn unpack_rgb565(texel: vec4<f32>) -> vec4<f32> {
    let v = u32(code16(texel.r, texel.g));
    let r = f32((v >> 11u) & 31u) / 31.0;
    let g = f32((v >> 5u) & 63u) / 63.0;
    let b = f32(v & 31u) / 31.0;
    return vec4<f32>(r, g, b, 1.0);
}

fn yuv_to_rgb(y: f32, cb: f32, cr: f32) -> vec4<f32> {
    let v = vec4<f32>(y, cb, cr, 1.0);
    let rgb = vec3<f32>(dot(draw.yuv_r, v), dot(draw.yuv_g, v), dot(draw.yuv_b, v));
    return vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0);
}

// Texel `p` of plane `plane`, as textureLoad of that plane's texture format returns it.
fn fetch(plane: u32, p: vec2<i32>) -> vec4<f32> {
    if (SOURCE == 1u) {
        return fetch_buffer(plane, p);
    }
    switch plane {
        case 1u: {
            return textureLoad(plane1, p, 0);
        }
        case 2u: {
            return textureLoad(plane2, p, 0);
        }
        default: {
            return textureLoad(plane0, p, 0);
        }
    }
}

// Cb and Cr code values of chroma sample `q` (on the chroma grid), by format.
fn chroma_codes(q: vec2<i32>) -> vec2<f32> {
    switch MODE {
        case 4u: { // P010: 16-bit samples, 10 significant bits at the top
            let c = fetch(1u, q);
            return vec2<f32>(floor(code16(c.r, c.g) / 64.0), floor(code16(c.b, c.a) / 64.0));
        }
        case 5u: { // YUV420: Cb and Cr planes
            return vec2<f32>(code8(fetch(1u, q).r), code8(fetch(2u, q).r));
        }
        case 6u: { // YUYV: Y0 Cb Y1 Cr per texel
            let t = fetch(0u, q);
            return vec2<f32>(code8(t.g), code8(t.a));
        }
        default: { // NV12: interleaved Cb Cr
            let c = fetch(1u, q);
            return vec2<f32>(code8(c.r), code8(c.g));
        }
    }
}

// YUYV: between the two texels' chroma around the pixel, on its own row.
fn chroma_422(p: vec2<i32>) -> vec2<f32> {
    let at = f32(p.x) / 2.0;
    let q = i32(floor(at));
    let last = (i32(draw.buffer_size.x) + 1) / 2 - 1;
    let a = chroma_codes(vec2<i32>(clamp(q, 0, last), p.y));
    let b = chroma_codes(vec2<i32>(clamp(q + 1, 0, last), p.y));
    return mix(a, b, at - floor(at));
}

// 8-bit chroma planes in textures (NV12, YUV420): one gather a channel reads the four
// samples around the point (four loads each cost a software rasteriser as much),
// weighted here exactly (a sampler's own interpolation may round to 8 bits, as
// lavapipe's does). The gather point lies midway between the four samples' centres,
// far from any footprint edge; edges are clamped by the sampler.
fn chroma_sampled(at: vec2<f32>) -> vec2<f32> {
    let first = floor(at);
    let f = at - first;
    let uv = (first + 1.0) / vec2<f32>(textureDimensions(plane1));
    // Gathered in the order (0, 1), (1, 1), (1, 0), (0, 0) from the first sample.
    let w = vec4<f32>((1.0 - f.x) * f.y, f.x * f.y, f.x * (1.0 - f.y), (1.0 - f.x) * (1.0 - f.y));
    let cb = round(textureGather(0, plane1, chroma_sampler, uv) * 255.0);
    if (MODE == 5u) {
        return vec2<f32>(dot(cb, w), dot(round(textureGather(0, plane2, chroma_sampler, uv) * 255.0), w));
    }
    return vec2<f32>(dot(cb, w), dot(round(textureGather(1, plane1, chroma_sampler, uv) * 255.0), w));
}

// Chroma samples read one by one (P010's 16-bit samples, planes in a buffer) and
// interpolated here.
fn chroma_loaded(at: vec2<f32>) -> vec2<f32> {
    let last = (vec2<i32>(draw.buffer_size) + 1) / 2 - 1;
    let q = vec2<i32>(floor(at));
    let f = at - floor(at);
    let a = chroma_codes(clamp(q, vec2<i32>(0), last));
    let b = chroma_codes(clamp(q + vec2<i32>(1, 0), vec2<i32>(0), last));
    let c = chroma_codes(clamp(q + vec2<i32>(0, 1), vec2<i32>(0), last));
    let d = chroma_codes(clamp(q + vec2<i32>(1, 1), vec2<i32>(0), last));
    return mix(mix(a, b, f.x), mix(c, d, f.x), f.y);
}

fn sample(p: vec2<i32>) -> vec4<f32> {
    switch MODE {
        case 1u: {
            return fetch(0u, p).bgra;
        }
        case 2u: {
            return unpack_rgb565(fetch(0u, p));
        }
        case 3u, 5u: { // NV12, YUV420: 8-bit luma plane
            // 4:2:0 chroma sits at (2i, 2j) + draw.chroma.xy pixels; `chroma_420` is
            // chroma_sampled or chroma_loaded, by the module's plane source
            // (render/buffer_source.rs: a branch on SOURCE here costs lavapipe half again
            // the frame, as it runs both paths).
            let c = chroma_420((vec2<f32>(p) - draw.chroma.xy) / 2.0);
            return yuv_to_rgb(code8(fetch(0u, p).r), c.x, c.y);
        }
        case 4u: { // P010: its 16-bit chroma samples are read one by one
            let t = fetch(0u, p);
            let c = chroma_loaded((vec2<f32>(p) - draw.chroma.xy) / 2.0);
            return yuv_to_rgb(floor(code16(t.r, t.g) / 64.0), c.x, c.y);
        }
        case 6u: { // YUYV
            let t = fetch(0u, vec2<i32>(p.x / 2, p.y));
            let y = select(t.r, t.b, (p.x & 1) == 1);
            let c = chroma_422(p);
            return yuv_to_rgb(code8(y), c.x, c.y);
        }
        case 7u: { // solid colour (premultiplied)
            return draw.yuv_r;
        }
        default: {
            return fetch(0u, p);
        }
    }
}

// Texel `p`, clamped to the buffer, with the alpha of an opaque format forced to one.
fn texel(p: vec2<i32>) -> vec4<f32> {
    var c = sample(clamp(p, vec2<i32>(0), vec2<i32>(draw.buffer_size) - 1));
    if (draw.opaque == 1u) {
        c.a = 1.0;
    }
    return c;
}

// Where pixel `position` reads the buffer, in buffer pixels.
fn buffer_point(position: vec2<f32>) -> vec2<f32> {
    let t = (position - draw.dst.xy) / draw.dst.zw;
    return draw.src.xy + t.x * draw.src.zw + t.y * draw.src_y_axis.xy;
}

// The output has 8 bits a channel: round here, so that every driver stores the same
// value (float-to-unorm conversion may round either way at exact halves). Wayland
// buffers are premultiplied: blended with One, OneMinusSrcAlpha.
fn output(c: vec4<f32>) -> vec4<f32> {
    return round(c * 255.0) / 255.0;
}

// The texel each pixel shows. (Filtered draws use fs_filtered: as a separate entry
// point its code is not compiled into every pipeline, which costs a software
// rasteriser's compiler seconds.)
@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    return output(texel(vec2<i32>(floor(buffer_point(in.position.xy)))));
}

// Premultiplied colour between the four texel centres around the point.
@fragment
fn fs_filtered(in: VertexOut) -> @location(0) vec4<f32> {
    let at = buffer_point(in.position.xy) - 0.5;
    let p = vec2<i32>(floor(at));
    let f = at - floor(at);
    let top = mix(texel(p), texel(p + vec2<i32>(1, 0)), f.x);
    let bottom = mix(texel(p + vec2<i32>(0, 1)), texel(p + vec2<i32>(1, 1)), f.x);
    return output(mix(top, bottom, f.y));
}

// An 8-bit RGB(A) texture drawn texel for texel: a plain sample at the interpolated
// point. A software rasteriser runs this far faster than fs_main (llvmpipe draws it
// with its linear path, eight bits a channel, where fs_main's integer loads and
// per-pixel arithmetic run in 32-bit floats); the result is the same texel.
@fragment
fn fs_sampled(in: SampledOut) -> @location(0) vec4<f32> {
    let c = textureSample(plane0, chroma_sampler, in.uv);
    if (OPAQUE == 1u) {
        return vec4<f32>(c.rgb, 1.0);
    }
    return c;
}

// Alpha one, over a quad whose texels were copied as the buffer holds them, X byte
// included (render/paint.rs): the pipeline writes alpha only.
@fragment
fn fs_opaque_alpha(in: VertexOut) -> @location(0) vec4<f32> {
    return vec4<f32>(0.0, 0.0, 0.0, 1.0);
}

// vs_yuv_sampled's, for fs_yuv_sampled.
struct YuvOut {
    @builtin(position) position: vec4<f32>,
    // The luma plane's point at this pixel, in texture coordinates.
    @location(0) luma: vec2<f32>,
    // Where its 4:2:0 chroma lies on the chroma grid (chroma_420's point).
    @location(1) chroma: vec2<f32>,
};

@vertex
fn vs_yuv_sampled(@builtin(vertex_index) index: u32) -> YuvOut {
    let corner = corner_of(index);
    let at = draw.src.xy + corner.x * draw.src.zw + corner.y * draw.src_y_axis.xy;
    // sample()'s (p - chroma.xy) / 2 for the texel p under `at`, at - 0.5 where each
    // pixel shows one texel: affine, so interpolation gives every pixel's.
    return YuvOut(clip_position(corner), at / draw.buffer_size, (at - 0.5 - draw.chroma.xy) / 2.0);
}

// NV12 and YUV420 drawn texel for texel: the luma sample, chroma gathered around the
// interpolated point.
@fragment
fn fs_yuv_sampled(in: YuvOut) -> @location(0) vec4<f32> {
    let y = textureSample(plane0, chroma_sampler, in.luma).r;
    let c = chroma_420(in.chroma);
    return output(yuv_to_rgb(code8(y), c.x, c.y));
}
