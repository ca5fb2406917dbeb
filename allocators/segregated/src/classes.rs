//! Size classes and the bitmap of non-empty classes.

/// How block sizes map to classes (segregated fits) or which object sizes
/// exist (simple segregated storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Powers of two: class k holds sizes in `[2^k, 2^(k+1))`.
    PowersOfTwo,
    /// Powers of two and their midpoints: boundaries at `2^n` and `3·2^(n−1)`
    /// (Johnstone & Wilson's "2^N & 3·2^N").
    WithMidpoints,
    /// dlmalloc-like: exact 16-byte classes up to 512 bytes, then four
    /// classes per power of two.
    Dlmalloc,
}

/// Smallest block the boundary-tag variants use (and so the smallest size
/// mapped).
const MIN_SIZE: usize = 32;
/// Largest exact class of the dlmalloc-like scheme.
const DL_EXACT_MAX: usize = 512;
/// Classes of the dlmalloc-like scheme below and including `DL_EXACT_MAX`.
const DL_EXACT_CLASSES: usize = (DL_EXACT_MAX - MIN_SIZE) / 16 + 1;

impl Scheme {
    /// The class of a block of `size` bytes (`size >= 32`, a multiple of 16
    /// for the boundary-tag variants; any size for lookups).
    #[inline(always)]
    pub fn class_of(self, size: usize) -> usize {
        let size = size.max(MIN_SIZE);
        match self {
            Scheme::PowersOfTwo => size.ilog2() as usize - 5,
            Scheme::WithMidpoints => {
                let log = size.ilog2() as usize;
                2 * (log - 5) + ((size >> (log - 1)) & 1)
            }
            Scheme::Dlmalloc => {
                if size <= DL_EXACT_MAX {
                    // The exact classes need no logarithm.
                    (size - MIN_SIZE) / 16
                } else {
                    // Four classes per power of two above 512 (2^9).
                    let log = size.ilog2() as usize;
                    DL_EXACT_CLASSES + 4 * (log - 9) + ((size >> (log - 2)) & 3)
                }
            }
        }
    }

    /// The smallest size in class `class`.
    #[inline(always)]
    pub fn class_floor(self, class: usize) -> usize {
        match self {
            Scheme::PowersOfTwo => 1 << (class + 5),
            Scheme::WithMidpoints => {
                let base = 1usize << (class / 2 + 5);
                if class.is_multiple_of(2) { base } else { base + base / 2 }
            }
            Scheme::Dlmalloc => {
                if class < DL_EXACT_CLASSES {
                    MIN_SIZE + 16 * class
                } else {
                    let above = class - DL_EXACT_CLASSES;
                    let base = 1usize << (above / 4 + 9);
                    // The first geometric class starts just above the last exact one.
                    (base + (above % 4) * (base / 4)).max(DL_EXACT_MAX + 1)
                }
            }
        }
    }

    /// Does every block of class `class` hold `size` bytes? (Then the
    /// first block of the class fits without a scan.)
    pub fn all_fit(self, class: usize, size: usize) -> bool {
        self.class_floor(class) >= size
    }

    /// Does every block of `size`'s own class hold it, `size` being a block
    /// size (a multiple of 16)? `all_fit(class_of(size), size)`, at no cost
    /// for the dlmalloc-like scheme's exact classes.
    #[inline(always)]
    pub fn own_class_fits(self, size: usize) -> bool {
        debug_assert!(size.is_multiple_of(16));
        match self {
            Scheme::Dlmalloc if size <= DL_EXACT_MAX => true,
            _ => self.class_floor(self.class_of(size)) >= size,
        }
    }

    /// The spec word.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::PowersOfTwo => "pow2",
            Scheme::WithMidpoints => "pow2mid",
            Scheme::Dlmalloc => "dl",
        }
    }
}

/// A bitmap of non-empty classes: one bit per class, found by bit scan,
/// for up to [`Bitmap::CAPACITY`] classes (every scheme has fewer, for any
/// arena a 64-bit machine can address), with a summary word saying which
/// of its words have a bit set: any search is two bit scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    words: [u64; 4],
    /// Bit `w` set iff `words[w] != 0`.
    summary: u64,
    /// Bits in use.
    bits: usize,
}

impl Bitmap {
    /// Most classes a bitmap holds.
    pub const CAPACITY: usize = 256;

    /// Room for `bits` classes, all clear.
    ///
    /// # Panics
    /// If `bits` exceeds [`Bitmap::CAPACITY`].
    pub fn new(bits: usize) -> Bitmap {
        assert!(bits <= Bitmap::CAPACITY, "{bits} classes do not fit a {}-bit map", Bitmap::CAPACITY);
        Bitmap { words: [0; 4], summary: 0, bits }
    }

    /// Set or clear bit `index`.
    #[inline(always)]
    pub fn set(&mut self, index: usize, value: bool) {
        debug_assert!(index < self.bits);
        let word = (index / 64) & 3;
        let bit = 1u64 << (index % 64);
        if value {
            if self.words[word] == 0 {
                self.summary |= 1 << word;
            }
            self.words[word] |= bit;
        } else {
            self.words[word] &= !bit;
            if self.words[word] == 0 {
                self.summary &= !(1 << word);
            }
        }
    }

    /// Is bit `index` set?
    #[inline]
    pub fn get(&self, index: usize) -> bool {
        index < self.bits && self.words[(index / 64) & 3] & (1 << (index % 64)) != 0
    }

    /// The first set bit at or after `index`.
    #[inline(always)]
    pub fn first_at_or_after(&self, index: usize) -> Option<usize> {
        let word = index / 64;
        if word >= 4 {
            return None;
        }
        let bits = self.words[word] & (!0u64 << (index % 64));
        if bits != 0 {
            return Some(word * 64 + bits.trailing_zeros() as usize);
        }
        // word + 1 <= 4: the shift stays below 64.
        let later = self.summary & (!0u64 << (word + 1));
        if later == 0 {
            return None;
        }
        let word = later.trailing_zeros() as usize;
        Some(word * 64 + self.words[word & 3].trailing_zeros() as usize)
    }

    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two_map_at_their_edges() {
        let s = Scheme::PowersOfTwo;
        for (size, class) in
            [(32, 0), (48, 0), (63, 0), (64, 1), (127, 1), (128, 2), (4096, 7), (4095, 6), (1 << 30, 25)]
        {
            assert_eq!(s.class_of(size), class, "{size}");
        }
        assert_eq!((s.class_floor(0), s.class_floor(7)), (32, 4096));
    }

    #[test]
    fn midpoints_split_each_power_of_two() {
        let s = Scheme::WithMidpoints;
        for (size, class) in
            [(32, 0), (47, 0), (48, 1), (63, 1), (64, 2), (95, 2), (96, 3), (128, 4), (192, 5), (256, 6)]
        {
            assert_eq!(s.class_of(size), class, "{size}");
        }
        for class in 0..20 {
            assert_eq!(s.class_of(s.class_floor(class)), class);
            assert_eq!(s.class_of(s.class_floor(class + 1) - 1), class);
        }
    }

    #[test]
    fn dlmalloc_classes_are_exact_then_geometric() {
        let s = Scheme::Dlmalloc;
        for (size, class) in
            [(32, 0), (48, 1), (512, 30), (513, 31), (639, 31), (640, 32), (768, 33), (896, 34), (1024, 35), (1280, 36)]
        {
            assert_eq!(s.class_of(size), class, "{size}");
        }
        for class in 0..60 {
            assert_eq!(s.class_of(s.class_floor(class)), class, "floor of {class}");
            assert_eq!(s.class_of(s.class_floor(class + 1) - 1), class, "ceiling of {class}");
        }
        assert!(s.all_fit(3, 80) && !s.all_fit(31, 600));
        for size in (32..4096).step_by(16) {
            for scheme in [Scheme::PowersOfTwo, Scheme::WithMidpoints, Scheme::Dlmalloc] {
                assert_eq!(
                    scheme.own_class_fits(size),
                    scheme.all_fit(scheme.class_of(size), size),
                    "{scheme:?} {size}"
                );
            }
        }
    }

    #[test]
    fn every_scheme_fits_the_bitmap_for_any_arena() {
        for scheme in [Scheme::PowersOfTwo, Scheme::WithMidpoints, Scheme::Dlmalloc] {
            assert!(scheme.class_of(isize::MAX as usize) < Bitmap::CAPACITY, "{scheme:?}");
        }
    }

    #[test]
    fn the_bitmap_finds_the_smallest_non_empty_class_in_one_scan_per_word() {
        let mut bitmap = Bitmap::new(200);
        assert_eq!(bitmap.first_at_or_after(0), None);
        for bit in [3, 64, 130, 199] {
            bitmap.set(bit, true);
        }
        assert_eq!(bitmap.first_at_or_after(0), Some(3));
        assert_eq!(bitmap.first_at_or_after(4), Some(64));
        assert_eq!(bitmap.first_at_or_after(65), Some(130));
        assert_eq!(bitmap.first_at_or_after(131), Some(199));
        assert_eq!(bitmap.first_at_or_after(200), None);
        bitmap.set(64, false);
        assert_eq!(bitmap.first_at_or_after(4), Some(130));
        assert_eq!(bitmap.count(), 3);
    }
}
