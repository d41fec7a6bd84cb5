//! The `message!` schema DSL: one declaration per Kafka message struct generates the struct,
//! its `Default` (schema defaults), and its versioned decoder and encoder.
//!
//! ```text
//! message! {
//!     /// FetchResponse.
//!     pub struct FetchResponse flexible 12 {   // `flexible N` only on top-level bodies;
//!         /// Throttle time in milliseconds.     // nested structs inherit it.
//!         throttle_time_ms: i32 = 0, versions 1..;
//!         responses: Vec<FetchableTopicResponse> = Vec::new(), versions 0..;
//!     }
//!     tagged {                                  // optional, in ascending tag order
//!         0 => node_endpoints: Vec<NodeEndpoint> = Vec::new(), versions 16..;
//!     }
//! }
//! message! {
//!     pub struct PartitionData {
//!         records: Option<Bytes> = Some(Bytes::new()), versions 0.., nullable 0..;
//!     }
//! }
//! ```
//!
//! A body that has no flexible version says `flexible none` (OffsetDelete).
//!
//! A field's type is its wire type (see [`super::types`]); `versions` and `nullable` are
//! Rust ranges over the message version, read straight from the Kafka JSON schema
//! (`"5+"` is `5..`, `"8-10"` is `8..=10`). Fields outside their versions decode to their
//! default and are not written. Known tagged fields are written in tag order only when they
//! differ from their default, like Kafka; unknown ones are skipped on decode.

use bytes::BytesMut;

use super::error::DecodeError;
use super::types::{Ctx, WireType};
use super::wire::Reader;

/// A top-level request or response body.
pub trait Message: WireType {
    /// The first flexible version of this message (`i16::MAX` if none).
    const FLEXIBLE_FROM: i16;

    /// The context a body at `version` is read and written in.
    fn ctx(version: i16) -> Ctx {
        Ctx {
            version,
            flexible: version >= Self::FLEXIBLE_FROM,
        }
    }

    /// Decodes a body at `version`; the caller checks that the input was consumed.
    fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        Self::read(r, Self::ctx(version), false)
    }

    /// Encodes a body at `version`.
    fn encode(&self, out: &mut BytesMut, version: i16) {
        self.write(out, Self::ctx(version), false)
    }
}

/// Tagged fields must be declared in ascending tag order; checked at compile time.
pub(crate) const fn tags_ascending(tags: &[u32]) -> bool {
    let mut i = 1;
    while i < tags.len() {
        if tags[i - 1] >= tags[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `flexible N` is N; `flexible none` is `i16::MAX` (no version is flexible).
macro_rules! flexible_from {
    (none) => {
        i16::MAX
    };
    ($version:literal) => {
        $version
    };
}

macro_rules! message {
    (
        $(#[$meta:meta])*
        pub struct $name:ident $(flexible $flex:tt)? {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty = $default:expr, versions $versions:expr
                    $(, nullable $nullable:expr)? ;
            )*
        }
        $(
        tagged {
            $(
                $(#[$tmeta:meta])*
                $tag:literal => $tfield:ident : $tty:ty = $tdefault:expr, versions $tversions:expr
                    $(, nullable $tnullable:expr)? ;
            )*
        }
        )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $($( $(#[$tmeta])* pub $tfield: $tty, )*)?
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    $($( $tfield: $tdefault, )*)?
                }
            }
        }

        const _: () = assert!(
            $crate::codec::schema::tags_ascending(&[$($($tag),*)?]),
            concat!("tagged fields of ", stringify!($name), " are not in ascending order"),
        );

        impl $crate::codec::types::WireType for $name {
            #[allow(unused_variables, unused_mut, clippy::nonminimal_bool, clippy::match_single_binding)]
            fn read(
                r: &mut $crate::codec::wire::Reader,
                ctx: $crate::codec::types::Ctx,
                _nullable: bool,
            ) -> Result<Self, $crate::codec::error::DecodeError> {
                use $crate::codec::types::WireType;
                let version = ctx.version;
                let mut this = Self::default();
                $(
                    if ($versions).contains(&version) {
                        let nullable = false $(|| ($nullable).contains(&version))?;
                        this.$field = <$ty as WireType>::read(r, ctx, nullable)?;
                    }
                )*
                if ctx.flexible {
                    // Each iteration consumes at least two bytes, so a lying count only
                    // runs the loop until the input ends.
                    let count = r.uvarint()?;
                    for _ in 0..count {
                        let tag = r.uvarint()?;
                        let size = r.uvarint()? as usize;
                        let mut value = r.sub(size)?;
                        match tag {
                            $($(
                                $tag if ($tversions).contains(&version) => {
                                    let nullable = false $(|| ($tnullable).contains(&version))?;
                                    this.$tfield = <$tty as WireType>::read(&mut value, ctx, nullable)?;
                                    if value.remaining() != 0 {
                                        return Err($crate::codec::error::DecodeError::TaggedFieldSize { tag });
                                    }
                                }
                            )*)?
                            // Unknown (or out-of-version) tagged fields are skipped.
                            _ => {}
                        }
                    }
                }
                Ok(this)
            }

            #[allow(unused_variables, unused_mut, clippy::nonminimal_bool, clippy::match_single_binding)]
            fn write(
                &self,
                out: &mut ::bytes::BytesMut,
                ctx: $crate::codec::types::Ctx,
                _nullable: bool,
            ) {
                use $crate::codec::types::WireType;
                let version = ctx.version;
                $(
                    if ($versions).contains(&version) {
                        let nullable = false $(|| ($nullable).contains(&version))?;
                        WireType::write(&self.$field, out, ctx, nullable);
                    }
                )*
                if ctx.flexible {
                    let mut count: u32 = 0;
                    $($(
                        if ($tversions).contains(&version) && self.$tfield != $tdefault {
                            count += 1;
                        }
                    )*)?
                    $crate::codec::wire::put_uvarint(out, count);
                    $($(
                        if ($tversions).contains(&version) && self.$tfield != $tdefault {
                            let nullable = false $(|| ($tnullable).contains(&version))?;
                            let mut value = ::bytes::BytesMut::new();
                            WireType::write(&self.$tfield, &mut value, ctx, nullable);
                            $crate::codec::wire::put_uvarint(out, $tag);
                            // Invariant: a tagged value lives inside a frame, whose length
                            // is an i32.
                            let size = u32::try_from(value.len()).expect("tagged field fits a frame");
                            $crate::codec::wire::put_uvarint(out, size);
                            out.extend_from_slice(&value);
                        }
                    )*)?
                }
            }

            #[cfg(feature = "arbitrary")]
            #[allow(unused_variables, unused_mut, clippy::nonminimal_bool, clippy::match_single_binding)]
            fn random(
                g: &mut $crate::codec::arbitrary::Gen,
                ctx: $crate::codec::types::Ctx,
                _nullable: bool,
            ) -> Self {
                use $crate::codec::types::WireType;
                let version = ctx.version;
                let mut this = Self::default();
                $(
                    if ($versions).contains(&version) {
                        let nullable = false $(|| ($nullable).contains(&version))?;
                        this.$field = <$ty as WireType>::random(g, ctx, nullable);
                    }
                )*
                $($(
                    if ctx.flexible && ($tversions).contains(&version) && g.below(2) == 0 {
                        let nullable = false $(|| ($tnullable).contains(&version))?;
                        this.$tfield = <$tty as WireType>::random(g, ctx, nullable);
                    }
                )*)?
                this
            }
        }

        $(
            impl $crate::codec::schema::Message for $name {
                const FLEXIBLE_FROM: i16 = $crate::codec::schema::flexible_from!($flex);
            }

            impl $name {
                /// Decodes this body at `version` (the caller checks for trailing bytes).
                pub fn decode(
                    r: &mut $crate::codec::wire::Reader,
                    version: i16,
                ) -> Result<Self, $crate::codec::error::DecodeError> {
                    <Self as $crate::codec::schema::Message>::decode(r, version)
                }

                /// Encodes this body at `version`.
                pub fn encode(&self, out: &mut ::bytes::BytesMut, version: i16) {
                    <Self as $crate::codec::schema::Message>::encode(self, out, version)
                }
            }
        )?
    };
}

pub(crate) use flexible_from;
pub(crate) use message;
