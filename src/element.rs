//! Rust types that can be appended as typed values.

use crate::format::dtype::{ByteOrder, Dtype, Kind, Scalar};

mod sealed {
    pub trait Sealed {}
}

/// A Rust primitive with a fixed numpy dtype: `bool` is `|b1`, `i32` is
/// `<i4` (on little-endian hosts), `f64` is `<f8`, and so on.
///
/// Typed appends never cast: the file's dtype must be exactly this one.
pub trait Element: sealed::Sealed + Copy + 'static {
    /// The numpy kind.
    const KIND: Kind;
    /// Bytes per value.
    const SIZE: u64;

    /// The dtype of this type in the host's byte order.
    fn dtype() -> Dtype {
        let order = if Self::SIZE == 1 {
            ByteOrder::NotApplicable
        } else if cfg!(target_endian = "little") {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        };
        Dtype::Scalar(Scalar {
            kind: Self::KIND,
            order,
            size: Self::SIZE,
            unit: None,
        })
    }
}

macro_rules! element {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const KIND: Kind = Kind::$kind;
            const SIZE: u64 = std::mem::size_of::<$t>() as u64;
        }
    )*};
}

element! {
    bool => Bool,
    i8 => Int, i16 => Int, i32 => Int, i64 => Int,
    u8 => UInt, u16 => UInt, u32 => UInt, u64 => UInt,
    f32 => Float, f64 => Float,
}

/// The bytes of `values` in memory order (the host's byte order).
pub(crate) fn as_bytes<T: Element>(values: &[T]) -> &[u8] {
    // SAFETY: every `Element` is a primitive without padding or invalid bit
    // patterns when viewed as bytes (`bool` is one byte holding 0 or 1), the
    // pointer and length come from a valid slice, and u8 has alignment 1.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// Whether `file` is exactly the dtype of `T`: same kind and size, and the
/// host's byte order (or none for one-byte types).
pub(crate) fn matches<T: Element>(file: &Dtype) -> bool {
    let Dtype::Scalar(s) = file else { return false };
    let Dtype::Scalar(want) = T::dtype() else {
        return false;
    };
    s.kind == want.kind
        && s.size == want.size
        && (s.order == want.order
            || s.size == 1
            || s.order == ByteOrder::NotApplicable && want.size == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_of_primitives() {
        assert_eq!(<f32 as Element>::dtype().descr_repr(), "'<f4'");
        assert_eq!(<bool as Element>::dtype().descr_repr(), "'|b1'");
        assert_eq!(<u8 as Element>::dtype().descr_repr(), "'|u1'");
        assert_eq!(<i64 as Element>::dtype().descr_repr(), "'<i8'");
    }

    #[test]
    fn bytes_are_native_order() {
        assert_eq!(as_bytes(&[1u16, 2]), &[1, 0, 2, 0]);
        assert_eq!(as_bytes(&[true, false]), &[1, 0]);
    }

    #[test]
    fn matching_is_exact() {
        let f4 = Dtype::parse_descr("'<f4'").unwrap();
        assert!(matches::<f32>(&f4));
        assert!(!matches::<i32>(&f4));
        assert!(!matches::<f64>(&f4));
        assert!(!matches::<f32>(&Dtype::parse_descr("'>f4'").unwrap()));
        assert!(matches::<u8>(&Dtype::parse_descr("'|u1'").unwrap()));
        assert!(matches::<bool>(&Dtype::parse_descr("'|b1'").unwrap()));
    }
}
