//! Kafka schema wire types: how each field type (`int32`, `string`, `[]T`, `records`, ...)
//! is read and written, in classic and flexible (compact) versions.
//!
//! A field's Rust type *is* its wire type: `i32` is `int32`, `Option<String>` is a nullable
//! string, `Vec<T>` an array, `Option<Bytes>` nullable bytes or records (a zero-copy slice of
//! the frame). Whether null is allowed depends on the version, so it is passed in at runtime.

use std::fmt::Debug;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::DecodeError;
use super::wire::{put_uvarint, Reader, Uuid};

#[cfg(feature = "arbitrary")]
use super::arbitrary::Gen;

/// Where a value is being read or written: the message version and whether that version is
/// flexible (compact lengths, tagged fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// Version of the top-level message.
    pub version: i16,
    /// Whether `version` is a flexible version of that message.
    pub flexible: bool,
}

/// A type that has a Kafka wire encoding.
pub trait WireType: Sized + Clone + PartialEq + Debug {
    /// Reads one value; `nullable` says whether null is legal for this field in this version.
    fn read(r: &mut Reader, ctx: Ctx, nullable: bool) -> Result<Self, DecodeError>;
    /// Writes one value. A `None` in a version where the field is not nullable is written as
    /// the empty value (Java would throw); encoders cannot fail.
    fn write(&self, out: &mut BytesMut, ctx: Ctx, nullable: bool);
    /// A random value valid in `ctx`, for the differential tests.
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, ctx: Ctx, nullable: bool) -> Self;
}

/// Width of a classic (non-compact) length prefix.
#[derive(Clone, Copy)]
enum Width {
    I16,
    I32,
}

/// Reads a length or count: `None` is null. Lengths are checked against the remaining input,
/// so the caller may allocate `len` bytes; counts of elements too, since every element of
/// every schema takes at least one byte.
fn read_len(
    r: &mut Reader,
    ctx: Ctx,
    width: Width,
    nullable: bool,
) -> Result<Option<usize>, DecodeError> {
    let raw: i64 = if ctx.flexible {
        i64::from(r.uvarint()?) - 1
    } else {
        match width {
            Width::I16 => i64::from(r.i16()?),
            Width::I32 => i64::from(r.i32()?),
        }
    };
    match raw {
        -1 if nullable => Ok(None),
        -1 => Err(DecodeError::UnexpectedNull),
        n if n < 0 => Err(DecodeError::InvalidLength(n)),
        n => {
            let remaining = r.remaining();
            match usize::try_from(n) {
                Ok(len) if len <= remaining => Ok(Some(len)),
                _ => Err(DecodeError::InvalidLength(n)),
            }
        }
    }
}

fn write_len(out: &mut BytesMut, ctx: Ctx, width: Width, len: Option<usize>) {
    if ctx.flexible {
        // Invariant: a frame is at most i32::MAX bytes (its prefix is an i32), so any length
        // inside it fits in a u32 after the +1.
        let n = len.map_or(0, |n| u32::try_from(n + 1).expect("length fits a frame"));
        put_uvarint(out, n);
        return;
    }
    match width {
        // Strings are clamped to i16::MAX bytes by the caller.
        Width::I16 => out.put_i16(len.map_or(-1, |n| n as i16)),
        // Invariant: as above, a length inside a frame fits in an i32.
        Width::I32 => {
            out.put_i32(len.map_or(-1, |n| i32::try_from(n).expect("length fits a frame")))
        }
    }
}

/// Classic strings carry an i16 length; a longer string is cut at a char boundary rather than
/// writing a corrupt frame.
fn clamp_str(s: &str, ctx: Ctx) -> &str {
    if ctx.flexible || s.len() <= i16::MAX as usize {
        return s;
    }
    let mut end = i16::MAX as usize;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn read_str(r: &mut Reader, ctx: Ctx, nullable: bool) -> Result<Option<String>, DecodeError> {
    let Some(len) = read_len(r, ctx, Width::I16, nullable)? else {
        return Ok(None);
    };
    let raw = r.take(len)?;
    match std::str::from_utf8(&raw) {
        Ok(s) => Ok(Some(s.to_owned())),
        Err(_) => Err(DecodeError::InvalidUtf8),
    }
}

fn write_str(s: Option<&str>, out: &mut BytesMut, ctx: Ctx) {
    match s {
        None => write_len(out, ctx, Width::I16, None),
        Some(s) => {
            let s = clamp_str(s, ctx);
            write_len(out, ctx, Width::I16, Some(s.len()));
            out.put_slice(s.as_bytes());
        }
    }
}

fn read_bytes(r: &mut Reader, ctx: Ctx, nullable: bool) -> Result<Option<Bytes>, DecodeError> {
    match read_len(r, ctx, Width::I32, nullable)? {
        None => Ok(None),
        Some(len) => r.take(len).map(Some),
    }
}

fn write_bytes(b: Option<&Bytes>, out: &mut BytesMut, ctx: Ctx) {
    write_len(out, ctx, Width::I32, b.map(Bytes::len));
    if let Some(b) = b {
        out.put_slice(b);
    }
}

/// Elements reserved up front for an array; beyond this the Vec grows only as elements
/// actually decode (each consumed input), so a lying count cannot reserve memory.
const MAX_PREALLOC: usize = 1024;

fn read_array<T: WireType>(
    r: &mut Reader,
    ctx: Ctx,
    nullable: bool,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(count) = read_len(r, ctx, Width::I32, nullable)? else {
        return Ok(None);
    };
    let mut items = Vec::with_capacity(count.min(MAX_PREALLOC));
    for _ in 0..count {
        items.push(T::read(r, ctx, false)?);
    }
    Ok(Some(items))
}

fn write_array<T: WireType>(items: Option<&[T]>, out: &mut BytesMut, ctx: Ctx) {
    write_len(out, ctx, Width::I32, items.map(<[T]>::len));
    for item in items.unwrap_or_default() {
        item.write(out, ctx, false);
    }
}

macro_rules! fixed_width {
    ($($ty:ty => $read:ident, $put:ident;)*) => {$(
        impl WireType for $ty {
            fn read(r: &mut Reader, _: Ctx, _: bool) -> Result<Self, DecodeError> {
                r.$read()
            }
            fn write(&self, out: &mut BytesMut, _: Ctx, _: bool) {
                out.$put(*self);
            }
            #[cfg(feature = "arbitrary")]
            fn random(g: &mut Gen, _: Ctx, _: bool) -> Self {
                g.int() as $ty
            }
        }
    )*};
}

fixed_width! {
    i8 => i8, put_i8;
    i16 => i16, put_i16;
    u16 => u16, put_u16;
    i32 => i32, put_i32;
    u32 => u32, put_u32;
    i64 => i64, put_i64;
}

impl WireType for bool {
    /// Like Kafka, any non-zero byte is true.
    fn read(r: &mut Reader, _: Ctx, _: bool) -> Result<Self, DecodeError> {
        Ok(r.i8()? != 0)
    }
    fn write(&self, out: &mut BytesMut, _: Ctx, _: bool) {
        out.put_u8(u8::from(*self));
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, _: Ctx, _: bool) -> Self {
        g.below(2) == 1
    }
}

impl WireType for f64 {
    fn read(r: &mut Reader, _: Ctx, _: bool) -> Result<Self, DecodeError> {
        r.f64()
    }
    fn write(&self, out: &mut BytesMut, _: Ctx, _: bool) {
        out.put_f64(*self);
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, _: Ctx, _: bool) -> Self {
        // Finite only: NaN != NaN would break the round-trip comparisons.
        g.int() as i32 as f64 / 8.0
    }
}

impl WireType for Uuid {
    fn read(r: &mut Reader, _: Ctx, _: bool) -> Result<Self, DecodeError> {
        r.uuid()
    }
    fn write(&self, out: &mut BytesMut, _: Ctx, _: bool) {
        out.put_slice(&self.0);
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, _: Ctx, _: bool) -> Self {
        if g.below(4) == 0 {
            return Uuid::NIL;
        }
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&g.next_u64().to_be_bytes());
        raw[8..].copy_from_slice(&g.next_u64().to_be_bytes());
        Uuid(raw)
    }
}

impl WireType for String {
    fn read(r: &mut Reader, ctx: Ctx, _: bool) -> Result<Self, DecodeError> {
        // A non-Option string is never nullable.
        read_str(r, ctx, false).map(Option::unwrap_or_default)
    }
    fn write(&self, out: &mut BytesMut, ctx: Ctx, _: bool) {
        write_str(Some(self), out, ctx);
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, _: Ctx, _: bool) -> Self {
        g.string()
    }
}

impl WireType for Option<String> {
    fn read(r: &mut Reader, ctx: Ctx, nullable: bool) -> Result<Self, DecodeError> {
        read_str(r, ctx, nullable)
    }
    fn write(&self, out: &mut BytesMut, ctx: Ctx, nullable: bool) {
        match self {
            None if !nullable => write_str(Some(""), out, ctx),
            _ => write_str(self.as_deref(), out, ctx),
        }
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, _: Ctx, nullable: bool) -> Self {
        if nullable && g.below(4) == 0 {
            None
        } else {
            Some(g.string())
        }
    }
}

impl WireType for Bytes {
    fn read(r: &mut Reader, ctx: Ctx, _: bool) -> Result<Self, DecodeError> {
        read_bytes(r, ctx, false).map(Option::unwrap_or_default)
    }
    fn write(&self, out: &mut BytesMut, ctx: Ctx, _: bool) {
        write_bytes(Some(self), out, ctx);
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, _: Ctx, _: bool) -> Self {
        g.bytes()
    }
}

/// Nullable bytes, and `records`: the value is a zero-copy slice of the received frame.
impl WireType for Option<Bytes> {
    fn read(r: &mut Reader, ctx: Ctx, nullable: bool) -> Result<Self, DecodeError> {
        read_bytes(r, ctx, nullable)
    }
    fn write(&self, out: &mut BytesMut, ctx: Ctx, nullable: bool) {
        match self {
            None if !nullable => write_bytes(Some(&Bytes::new()), out, ctx),
            _ => write_bytes(self.as_ref(), out, ctx),
        }
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, _: Ctx, nullable: bool) -> Self {
        if nullable && g.below(4) == 0 {
            None
        } else {
            Some(g.bytes())
        }
    }
}

impl<T: WireType> WireType for Vec<T> {
    fn read(r: &mut Reader, ctx: Ctx, _: bool) -> Result<Self, DecodeError> {
        read_array(r, ctx, false).map(Option::unwrap_or_default)
    }
    fn write(&self, out: &mut BytesMut, ctx: Ctx, _: bool) {
        write_array(Some(self), out, ctx);
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, ctx: Ctx, _: bool) -> Self {
        let len = g.below(4);
        (0..len).map(|_| T::random(g, ctx, false)).collect()
    }
}

impl<T: WireType> WireType for Option<Vec<T>> {
    fn read(r: &mut Reader, ctx: Ctx, nullable: bool) -> Result<Self, DecodeError> {
        read_array(r, ctx, nullable)
    }
    fn write(&self, out: &mut BytesMut, ctx: Ctx, nullable: bool) {
        match self {
            None if !nullable => write_array::<T>(Some(&[]), out, ctx),
            _ => write_array(self.as_deref(), out, ctx),
        }
    }
    #[cfg(feature = "arbitrary")]
    fn random(g: &mut Gen, ctx: Ctx, nullable: bool) -> Self {
        if nullable && g.below(4) == 0 {
            None
        } else {
            Some(Vec::random(g, ctx, false))
        }
    }
}
