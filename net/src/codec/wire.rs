//! Kafka wire primitives: a bounded, zero-copy [`Reader`] over one frame and the matching
//! big-endian / varint writers.
//!
//! Every read checks the remaining input first and returns [`DecodeError`] instead of
//! panicking; byte slices are `Bytes::split_to` views of the frame, never copies.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::DecodeError;

/// A Kafka UUID (topic id), 16 raw bytes; the all-zero value is Kafka's "no id".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "unset" (`Uuid.ZERO_UUID`).
    pub const NIL: Uuid = Uuid([0; 16]);
}

/// Bounded cursor over one received frame.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// A reader over `buf`; slices it hands out share `buf`'s allocation.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails with `TrailingBytes` unless the input was consumed exactly.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            remaining => Err(DecodeError::TrailingBytes { remaining }),
        }
    }

    fn need(&self, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            return Err(DecodeError::UnexpectedEof {
                needed,
                remaining: self.buf.len(),
            });
        }
        Ok(())
    }

    /// Reads a signed byte.
    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    /// Reads a big-endian i16.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    /// Reads a big-endian i32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// Reads a big-endian i64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a big-endian IEEE-754 f64.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_f64())
    }

    /// Reads a 16-byte UUID.
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        self.need(16)?;
        let mut raw = [0u8; 16];
        self.buf.copy_to_slice(&mut raw);
        Ok(Uuid(raw))
    }

    /// Reads an unsigned LEB128 varint of at most 5 bytes (Kafka `UNSIGNED_VARINT`).
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let v = self.uvarint_n(5)?;
        u32::try_from(v).map_err(|_| DecodeError::VarintTooLong)
    }

    /// Reads an unsigned LEB128 varint of at most 10 bytes.
    pub fn uvarlong(&mut self) -> Result<u64, DecodeError> {
        self.uvarint_n(10)
    }

    /// Reads a zigzag varint (Kafka `VARINT`, used inside record batches).
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let v = self.uvarint()?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// Reads a zigzag varlong (Kafka `VARLONG`).
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let v = self.uvarlong()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn uvarint_n(&mut self, max_bytes: u32) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// Takes the next `len` bytes as a zero-copy slice of the frame.
    pub fn take(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }

    /// Splits off the next `len` bytes as their own reader (for a tagged field's value).
    pub fn sub(&mut self, len: usize) -> Result<Reader, DecodeError> {
        self.take(len).map(Reader::new)
    }
}

/// Writes an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut BytesMut, value: u32) {
    put_uvarlong(out, u64::from(value));
}

/// Writes an unsigned LEB128 varlong.
pub fn put_uvarlong(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Writes a zigzag varint.
pub fn put_varint(out: &mut BytesMut, value: i32) {
    put_uvarint(out, ((value << 1) ^ (value >> 31)) as u32);
}

/// Writes a zigzag varlong.
pub fn put_varlong(out: &mut BytesMut, value: i64) {
    put_uvarlong(out, ((value << 1) ^ (value >> 63)) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = BytesMut::new();
            put_varlong(&mut out, v);
            assert_eq!(Reader::new(out.freeze()).varlong(), Ok(v));
        }
        for v in [0i32, 1, -1, i32::MAX, i32::MIN] {
            let mut out = BytesMut::new();
            put_varint(&mut out, v);
            assert_eq!(Reader::new(out.freeze()).varint(), Ok(v));
        }
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert_eq!(r.uvarint(), Err(DecodeError::VarintTooLong));
        // 5 bytes whose value exceeds u32 are rejected too.
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x7f]));
        assert_eq!(r.uvarint(), Err(DecodeError::VarintTooLong));
    }

    #[test]
    fn take_is_zero_copy() {
        let frame = Bytes::from_static(b"abcdef");
        let mut r = Reader::new(frame.clone());
        r.i8().unwrap();
        let slice = r.take(3).unwrap();
        assert_eq!(slice.as_ptr(), frame[1..].as_ptr());
    }
}
