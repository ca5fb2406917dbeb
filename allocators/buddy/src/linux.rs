//! The Linux page allocator's per-order fragmentation figures, computed as
//! mm/vmstat.c computes them: integer arithmetic, results in thousandths.
//!
//! Both take `nr_free` per order (`free_area[order].nr_free`, blocks of
//! `2^order` pages) and summarise it as mm/vmstat.c's `contig_page_info`:
//! F = free pages `Σ nr_free[o]·2^o`, B = free blocks `Σ nr_free[o]`, and for a
//! requested order r, S = suitable blocks `Σ_{o ≥ r} nr_free[o]·2^(o−r)`.

struct ContigInfo {
    free_pages: u64,
    free_blocks_total: u64,
    free_blocks_suitable: u64,
}

fn contig_info(nr_free: &[usize], suitable_order: u32) -> ContigInfo {
    let mut info = ContigInfo { free_pages: 0, free_blocks_total: 0, free_blocks_suitable: 0 };
    for (order, &blocks) in nr_free.iter().enumerate() {
        let (order, blocks) = (order as u32, blocks as u64);
        info.free_blocks_total += blocks;
        info.free_pages += blocks << order;
        if order >= suitable_order {
            info.free_blocks_suitable += blocks << (order - suitable_order);
        }
    }
    info
}

/// The fragmentation index for a request of `order` (`__fragmentation_index`):
/// `1000 − (1000 + F·1000/2^order) / B`, with integer division; −1000 when a
/// suitable block exists (the request would succeed, so failure would not be
/// due to fragmentation); 0 when there is no free block at all. Values near
/// 1000 mean a failure would be due to fragmentation, near 0 to lack of
/// memory; the index is negative when the free memory is in few blocks that
/// are all too small.
pub fn fragmentation_index(nr_free: &[usize], order: u32) -> i64 {
    let info = contig_info(nr_free, order);
    if info.free_blocks_total == 0 {
        return 0;
    }
    if info.free_blocks_suitable > 0 {
        return -1000;
    }
    let requested = 1u64 << order;
    1000 - ((1000 + info.free_pages * 1000 / requested) / info.free_blocks_total) as i64
}

/// The unusable free space index for `order` (`unusable_free_index`): the
/// share of free pages, in thousandths, that sit in blocks too small for the
/// request, `(F − S·2^order)·1000 / F`; 1000 when nothing is free.
pub fn unusable_free_index(nr_free: &[usize], order: u32) -> i64 {
    let info = contig_info(nr_free, order);
    if info.free_pages == 0 {
        return 1000;
    }
    ((info.free_pages - (info.free_blocks_suitable << order)) * 1000 / info.free_pages) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders(nr_free: &[usize]) -> Vec<usize> {
        let mut all = nr_free.to_vec();
        all.resize(11, 0);
        all
    }

    #[test]
    fn the_design_notes_known_answers_hold_to_the_digit() {
        let nr_free = orders(&[10, 4, 2]);
        let fragmentation: Vec<i64> = (0..=10).map(|o| fragmentation_index(&nr_free, o)).collect();
        assert_eq!(fragmentation, [-1000, -1000, -1000, 735, 836, 887, 913, 925, 932, 935, 936]);
        let unusable: Vec<i64> = (0..=10).map(|o| unusable_free_index(&nr_free, o)).collect();
        assert_eq!(unusable, [0, 384, 692, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);

        let nr_free = orders(&[1000]);
        let fragmentation: Vec<i64> = (0..=10).map(|o| fragmentation_index(&nr_free, o)).collect();
        assert_eq!(fragmentation, [-1000, 499, 749, 874, 937, 968, 984, 992, 996, 998, 999]);

        let nr_free = orders(&[0, 0, 0, 1]);
        let fragmentation: Vec<i64> = (0..=10).map(|o| fragmentation_index(&nr_free, o)).collect();
        assert_eq!(fragmentation, [-1000, -1000, -1000, -1000, -500, -250, -125, -62, -31, -15, -7]);
    }

    #[test]
    fn an_empty_zone_is_neither_fragmented_nor_usable() {
        let nr_free = orders(&[]);
        assert_eq!(fragmentation_index(&nr_free, 3), 0);
        assert_eq!(unusable_free_index(&nr_free, 3), 1000);
    }
}
