//! Serde for the large numeric arrays of fitted models: a plain array of
//! numbers in human-readable formats (JSON), their little-endian bytes in
//! binary ones (CBOR, what the store saves models in).
//!
//! Why: a saved recommender of a 92k-product catalogue holds millions of
//! factors; decoding them one CBOR number at a time was most of a `recommend`
//! call. As one byte string they decode as a copy. Reading accepts both forms,
//! so models saved before (arrays) still load.

use std::marker::PhantomData;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An element type with a fixed little-endian encoding.
pub trait Le: Copy + Serialize + for<'de> Deserialize<'de> {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Appends the encoding.
    fn put(self, out: &mut Vec<u8>);
    /// Decodes `SIZE` bytes (None when the value does not fit the type).
    fn get(b: &[u8]) -> Option<Self>;
}

/// `Le` for a type with `to_le_bytes`/`from_le_bytes` of the same width.
macro_rules! le_native {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(b.try_into().ok()?))
            }
        }
    )*};
}

le_native!(f32, u32);

/// Stored as u64 whatever the platform's width.
impl Le for usize {
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self as u64).to_le_bytes());
    }
    fn get(b: &[u8]) -> Option<Self> {
        usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()
    }
}

/// `#[serde(with = "crate::packed")]`: writes `v` as numbers or as bytes.
#[allow(clippy::ptr_arg)] // serde's `with` passes `&Vec<T>`
pub fn serialize<T: Le, S: Serializer>(v: &Vec<T>, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        return v.serialize(s);
    }
    let mut b = Vec::with_capacity(v.len() * T::SIZE);
    for &x in v {
        x.put(&mut b);
    }
    s.serialize_bytes(&b)
}

/// Reads either form back.
pub fn deserialize<'de, T: Le, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    struct Packed<T>(PhantomData<T>);
    impl<'de, T: Le> Visitor<'de> for Packed<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of numbers or their little-endian bytes")
        }
        fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Vec<T>, E> {
            if !b.len().is_multiple_of(T::SIZE) {
                return Err(E::custom(format!(
                    "a packed array of {}-byte values has {} bytes",
                    T::SIZE,
                    b.len()
                )));
            }
            b.chunks_exact(T::SIZE)
                .map(|c| T::get(c).ok_or_else(|| E::custom("a packed value is out of range")))
                .collect()
        }
        fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Vec<T>, E> {
            self.visit_bytes(&b)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(x) = seq.next_element()? {
                v.push(x);
            }
            Ok(v)
        }
    }
    if d.is_human_readable() {
        d.deserialize_seq(Packed(PhantomData))
    } else {
        d.deserialize_any(Packed(PhantomData))
    }
}
