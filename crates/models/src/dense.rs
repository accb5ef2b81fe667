//! Large zeroed `f32` buffers that the kernel may back with huge pages.
//!
//! Why: a dense item × item model (EASE and its session variant) builds
//! several `items²` matrices per fit, each written for the first time right
//! away. With 4 KiB pages every first write to a new page is a page fault, and
//! on the virtual machines this runs on those faults were a large share of the
//! fit: ml-100k's 1 682² matrix is 11 MB, about 2 800 faults, and its Gram
//! matrix took as long on two threads as on one. Linux's usual setting for
//! transparent huge pages is `madvise`: a mapping gets 2 MiB pages only when
//! it asks. [`DenseBuf`] is an anonymous mapping that asks (through
//! `memmap2`'s safe `advise`, so no `unsafe` here). On ml-100k (two
//! threads) it took a decayed session-EASE fit's two Gram matrices from
//! 85–97 to 52–55 ms, and `auto`'s final ensemble fit from 0.19–0.22 to
//! 0.134–0.146 s (BENCHMARKS.md, top-N, round 9). Elsewhere, or if
//! the kernel says no, it is an ordinary zeroed buffer.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// Buffers smaller than this are plain vectors (a mapping costs a system call).
const MAPPED_FROM_BYTES: usize = 1 << 21;

/// A zeroed `f32` buffer; see the module documentation.
pub struct DenseBuf {
    inner: Inner,
}

enum Inner {
    Mapped(memmap2::MmapMut, usize),
    Plain(Vec<f32>),
}

impl DenseBuf {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        let bytes = len.saturating_mul(std::mem::size_of::<f32>());
        if bytes >= MAPPED_FROM_BYTES
            && let Ok(map) = memmap2::MmapMut::map_anon(bytes)
        {
            // Advice only: where huge pages are unavailable the mapping works
            // with small pages, so a refusal is not an error.
            #[cfg(target_os = "linux")]
            let _ = map.advise(memmap2::Advice::HugePage);
            return DenseBuf {
                inner: Inner::Mapped(map, len),
            };
        }
        DenseBuf {
            inner: Inner::Plain(vec![0.0; len]),
        }
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[f32]) -> Self {
        let mut b = Self::zeroed(values.len());
        b.copy_from_slice(values);
        b
    }
}

impl Deref for DenseBuf {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.inner {
            Inner::Mapped(map, len) => &bytemuck::cast_slice(&map[..])[..*len],
            Inner::Plain(v) => v,
        }
    }
}

impl DerefMut for DenseBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        match &mut self.inner {
            Inner::Mapped(map, len) => &mut bytemuck::cast_slice_mut(&mut map[..])[..*len],
            Inner::Plain(v) => v,
        }
    }
}

impl Clone for DenseBuf {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl PartialEq for DenseBuf {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for DenseBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DenseBuf")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_start_at_zero_and_hold_what_is_written() {
        for len in [0, 3, 1 << 20] {
            let mut b = DenseBuf::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&v| v == 0.0));
            if len > 0 {
                b[len - 1] = 2.5;
                b[0] = -1.0;
                let c = b.clone();
                assert_eq!(c, b);
                assert_eq!((c[0], c[len - 1]), (-1.0, 2.5));
            }
        }
        assert!(matches!(DenseBuf::zeroed(1 << 20).inner, Inner::Mapped(..)));
        assert!(matches!(DenseBuf::zeroed(3).inner, Inner::Plain(..)));
    }
}
