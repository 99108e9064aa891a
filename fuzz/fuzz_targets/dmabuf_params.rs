//! Fuzzes `zwp_linux_buffer_params_v1` validation: arbitrary planes, sizes,
//! formats, modifiers and fd sizes go through `axiom::dmabuf::params::validate`,
//! whose answer is checked against a model computed in 128-bit arithmetic
//! (so that it cannot overflow). Built with debug assertions, so an overflow
//! inside `validate` panics too.
//!
//! Values are mostly drawn relative to what a plane needs (a stride a few
//! bytes around a row, an fd a few bytes around the plane's end) so that the
//! fuzzer spends its time on the boundaries, with fully random values mixed in.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use axiom::dmabuf::formats::{dmabuf_format, PlaneLayout, DMABUF_FORMATS};
use axiom::dmabuf::params::{validate, ParamsError, PlaneParams, MAX_PLANES, MODIFIER_LINEAR};

#[derive(Debug, Arbitrary)]
enum Format {
    /// One of the formats the compositor knows (and advertises).
    Known(u8),
    Raw(u32),
}

#[derive(Debug, Arbitrary)]
enum Dimension {
    Small(u8),
    Edge(u8),
    Any(i32),
}

const EDGES: &[i32] = &[0, 1, 2, 3, -1, i32::MAX, i32::MIN, i32::MAX - 1, 16383, 16384, 16385, 65535, 65536, 1 << 30];

impl Dimension {
    fn value(&self) -> i32 {
        match *self {
            Dimension::Small(v) => i32::from(v),
            Dimension::Edge(i) => EDGES[usize::from(i) % EDGES.len()],
            Dimension::Any(v) => v,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Stride {
    /// The plane's row size plus a small delta.
    Row(i8),
    Any(u32),
}

#[derive(Debug, Arbitrary)]
enum Offset {
    Small(u16),
    Edge(bool),
    Any(u32),
}

#[derive(Debug, Arbitrary)]
enum Modifier {
    Linear,
    Any(u64),
}

#[derive(Debug, Arbitrary)]
enum FdSize {
    /// Not a buffer (a pipe): the size cannot be known.
    Unknown,
    /// The end of the plane (offset + stride * rows) plus a small delta.
    End(i16),
    Any(u64),
}

#[derive(Debug, Arbitrary)]
struct Plane {
    offset: Offset,
    stride: Stride,
    modifier: Modifier,
}

#[derive(Debug, Arbitrary)]
enum Advertised {
    /// As the compositor does: LINEAR only, for every known format.
    Linear,
    Everything,
    Nothing,
}

#[derive(Debug, Arbitrary)]
enum MaxDimension {
    Usual,
    Any(u32),
}

#[derive(Debug, Arbitrary)]
struct Input {
    planes: [Option<Plane>; MAX_PLANES],
    width: Dimension,
    height: Dimension,
    format: Format,
    fd_sizes: [FdSize; MAX_PLANES],
    advertised: Advertised,
    max_dimension: MaxDimension,
}

/// Layout of plane `index` of `fourcc` for sizing strides, or a packed 32-bit one.
fn layout(fourcc: u32, index: usize) -> Option<PlaneLayout> {
    dmabuf_format(fourcc).and_then(|f| f.planes.get(index)).copied()
}

/// (rows, bytes of a row) of a plane, in u128, for a size that may be invalid.
fn plane_extent(layout: Option<PlaneLayout>, width: i32, height: i32) -> (u128, u128) {
    let (block_w, block_h, bpb) = layout.map(|l| (l.block_w, l.block_h, l.bytes_per_block)).unwrap_or((1, 1, 4));
    let (w, h) = (u128::from(width.max(0).unsigned_abs()), u128::from(height.max(0).unsigned_abs()));
    let (bw, bh) = (u128::from(block_w), u128::from(block_h));
    (h.div_ceil(bh), w.div_ceil(bw) * u128::from(bpb))
}

fn clamp_u32(v: i128) -> u32 {
    v.clamp(0, i128::from(u32::MAX)) as u32
}

fn clamp_u64(v: i128) -> u64 {
    v.clamp(0, i128::from(u64::MAX)) as u64
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Kind {
    Incomplete,
    InvalidFormat,
    InvalidDimensions,
    OutOfBounds,
    Unsupported,
}

fn kind(e: &ParamsError) -> Kind {
    match e {
        ParamsError::Incomplete(_) => Kind::Incomplete,
        ParamsError::InvalidFormat(_) => Kind::InvalidFormat,
        ParamsError::InvalidDimensions(_) => Kind::InvalidDimensions,
        ParamsError::OutOfBounds(_) => Kind::OutOfBounds,
        ParamsError::Unsupported(_) => Kind::Unsupported,
    }
}

fuzz_target!(|input: Input| {
    let fourcc = match input.format {
        Format::Known(i) => DMABUF_FORMATS[usize::from(i) % DMABUF_FORMATS.len()].fourcc as u32,
        Format::Raw(v) => v,
    };
    let (width, height) = (input.width.value(), input.height.value());
    let max_dimension = match input.max_dimension {
        MaxDimension::Usual => 16384,
        MaxDimension::Any(v) => v,
    };

    // Concrete planes and fd sizes, sized around what each plane needs.
    let mut planes = [None; MAX_PLANES];
    let mut sizes = [None; MAX_PLANES];
    for index in 0..MAX_PLANES {
        let (rows, row_bytes) = plane_extent(layout(fourcc, index), width, height);
        let plane = input.planes[index].as_ref().map(|p| {
            let offset = match p.offset {
                Offset::Small(v) => u32::from(v),
                Offset::Edge(high) => {
                    if high {
                        u32::MAX
                    } else {
                        0
                    }
                }
                Offset::Any(v) => v,
            };
            let stride = match p.stride {
                Stride::Row(delta) => clamp_u32(row_bytes.min(u32::MAX as u128) as i128 + i128::from(delta)),
                Stride::Any(v) => v,
            };
            let modifier = match p.modifier {
                Modifier::Linear => MODIFIER_LINEAR,
                Modifier::Any(v) => v,
            };
            PlaneParams { offset, stride, modifier }
        });
        let end = plane.map(|p| u128::from(p.offset) + u128::from(p.stride) * rows).unwrap_or(0);
        sizes[index] = match input.fd_sizes[index] {
            FdSize::Unknown => None,
            FdSize::End(delta) => Some(clamp_u64(end.min(u64::MAX as u128) as i128 + i128::from(delta))),
            FdSize::Any(v) => Some(v),
        };
        planes[index] = plane;
    }
    let is_advertised = |f: u32, m: u64| match input.advertised {
        Advertised::Linear => dmabuf_format(f).is_some() && m == MODIFIER_LINEAR,
        Advertised::Everything => true,
        Advertised::Nothing => false,
    };

    let result = validate(&planes, width, height, fourcc, is_advertised, |i| sizes[i], max_dimension);

    // The model, in the order validate checks (the order decides which error
    // a request with several faults gets).
    let expected: Result<u128, Kind> = (|| {
        let format = dmabuf_format(fourcc).ok_or(Kind::InvalidFormat)?;
        let count = format.planes.len();
        if (0..MAX_PLANES).any(|i| planes[i].is_some() != (i < count)) {
            return Err(Kind::Incomplete);
        }
        let modifier = planes[0].unwrap().modifier;
        if planes.iter().flatten().any(|p| p.modifier != modifier) || !is_advertised(fourcc, modifier) {
            return Err(Kind::InvalidFormat);
        }
        if width <= 0 || height <= 0 {
            return Err(Kind::InvalidDimensions);
        }
        let mut bytes = 0u128;
        for (index, layout) in format.planes.iter().enumerate() {
            let p = planes[index].unwrap();
            let (rows, row_bytes) = plane_extent(Some(*layout), width, height);
            let span = u128::from(p.stride) * rows;
            let end = u128::from(p.offset) + span;
            let size = sizes[index].ok_or(Kind::Unsupported)?;
            if end > u128::from(size) {
                return Err(Kind::OutOfBounds);
            }
            if u128::from(p.stride) < row_bytes {
                return Err(Kind::Unsupported);
            }
            bytes += span;
        }
        if width as u32 > max_dimension || height as u32 > max_dimension {
            return Err(Kind::Unsupported);
        }
        Ok(bytes)
    })();

    match (&result, expected) {
        (Ok(buffer), Ok(bytes)) => {
            assert!(buffer.width > 0 && buffer.height > 0, "{buffer:?}");
            assert_eq!((buffer.width as i32, buffer.height as i32), (width, height));
            assert!(buffer.width <= max_dimension && buffer.height <= max_dimension);
            assert_eq!(buffer.format.fourcc as u32, fourcc);
            assert_eq!(buffer.modifier, planes[0].unwrap().modifier);
            assert_eq!(u128::from(buffer.bytes), bytes, "bytes charged are the sum of plane spans");
            let mut fd_total = 0u128;
            for (index, layout) in buffer.format.planes.iter().enumerate() {
                let p = planes[index].unwrap();
                let size = u128::from(sizes[index].unwrap());
                fd_total += size;
                let (rows, row_bytes) = plane_extent(Some(*layout), width, height);
                assert!(rows > 0 && row_bytes > 0);
                assert!(u128::from(p.stride) >= row_bytes, "plane {index}: stride below a row");
                // The last byte read: the start of the last row plus one row.
                let last = u128::from(p.offset) + u128::from(p.stride) * (rows - 1) + row_bytes;
                assert!(last <= size, "plane {index} reads up to {last}, past its fd of {size} bytes");
            }
            assert!(u128::from(buffer.bytes) <= fd_total);
        }
        (Err(err), Err(want)) => assert_eq!(kind(err), want, "{err}"),
        (got, want) => panic!("validate gave {got:?}, the model {want:?}; planes {planes:?}, sizes {sizes:?}"),
    }
});
