//! The generators: streams of ops produced on demand from a seed.
//!
//! All of them draw from one ChaCha8 stream seeded explicitly, so the same
//! spec and seed give the same ops, byte for byte, on every run. They number
//! blocks 0, 1, 2, … in allocation order (never reusing an id) and end with
//! an empty heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};

use super::sizes::{AlignSampler, SizeSampler};
use crate::op::{Align, Level, Op};

/// Which live block a free takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// Each block draws an exponential lifetime at birth (mean: the time to
    /// replace the live set); the block due first is freed.
    Exponential,
    /// Like `Exponential`, with lifetimes uniform on `[0, 2·mean]`.
    Uniform,
    /// The youngest block (stack-like).
    Lifo,
    /// The oldest block (queue-like).
    Fifo,
    /// A block chosen uniformly.
    Random,
}

/// The shape of the live-bytes target over the run (Wilson et al. 1995's
/// phase behaviours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The target from the start: steady churn.
    Steady,
    /// The target grows linearly over the run (data accumulating).
    Ramp,
    /// Four peaks: the target rises and falls back four times.
    Peak,
    /// Quick rise over the first tenth, a long plateau, a fall over the last tenth.
    Plateau,
}

impl Phase {
    /// The target as a fraction of the full live size at run fraction `x`.
    pub fn shape(self, x: f64) -> f64 {
        match self {
            Phase::Steady => 1.0,
            Phase::Ramp => x,
            Phase::Peak => {
                let within = (x * 4.0).fract();
                1.0 - (2.0 * within - 1.0).abs()
            }
            Phase::Plateau => (x / 0.1).min(1.0).min((1.0 - x) / 0.1),
        }
    }
}

/// Parameters of the target-tracking generator.
#[derive(Debug, Clone)]
pub struct Tracking {
    /// Ops to produce, exactly.
    pub ops: u64,
    /// Sizes.
    pub sizes: SizeSampler,
    /// Clamp for sizes.
    pub min_size: u64,
    /// Clamp for sizes.
    pub max_size: u64,
    /// Alignments.
    pub aligns: AlignSampler,
    /// Victim choice.
    pub lifetime: Lifetime,
    /// Target shape.
    pub phase: Phase,
    /// Full live-bytes target.
    pub live_bytes: u64,
    /// Probability that an allocation step resizes the youngest live block instead.
    pub realloc: f64,
}

/// Probability of allocating when below the target (and of freeing when
/// above): high enough to follow the target closely, low enough to churn.
const TRACKING_BIAS: f64 = 0.8;

/// Live blocks in the order a free will take them.
#[derive(Debug)]
enum Victims {
    Stack(Vec<u32>),
    Queue(VecDeque<u32>),
    Pool(Vec<u32>),
    Due(BinaryHeap<Reverse<(u64, u32)>>),
}

/// The ops of a [`Tracking`] workload.
#[derive(Debug)]
pub struct TrackingGen {
    config: Tracking,
    rng: ChaCha8Rng,
    step: u64,
    next_id: u32,
    victims: Victims,
    /// Live block sizes, by id.
    sizes: HashMap<u32, u64>,
    live_bytes: u64,
    /// The youngest live block, which a realloc resizes.
    youngest: Option<u32>,
    /// Mean lifetime in ops for the drawn-lifetime models.
    mean_lifetime: f64,
}

impl TrackingGen {
    /// Start generating with `seed`. Without reallocs every block is
    /// allocated and freed, so an odd op count is rounded down.
    pub fn new(mut config: Tracking, seed: u64) -> TrackingGen {
        if config.realloc == 0.0 {
            config.ops &= !1;
        }
        // The mean size, estimated from a separate stream so that the main
        // one is not disturbed, sets the time to replace the live set.
        let mut estimate_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_11fe_71e5);
        let mean_size =
            (0..2000).map(|_| clamp(config.sizes.sample(&mut estimate_rng), &config) as f64).sum::<f64>() / 2000.0;
        let mean_lifetime = (2.0 * config.live_bytes as f64 / mean_size.max(1.0)).max(2.0);
        let victims = match config.lifetime {
            Lifetime::Lifo => Victims::Stack(Vec::new()),
            Lifetime::Fifo => Victims::Queue(VecDeque::new()),
            Lifetime::Random => Victims::Pool(Vec::new()),
            Lifetime::Exponential | Lifetime::Uniform => Victims::Due(BinaryHeap::new()),
        };
        TrackingGen {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            step: 0,
            next_id: 0,
            victims,
            sizes: HashMap::new(),
            live_bytes: 0,
            youngest: None,
            mean_lifetime,
        }
    }

    fn live_count(&self) -> usize {
        self.sizes.len()
    }

    fn alloc(&mut self) -> Op {
        let size = clamp(self.config.sizes.sample(&mut self.rng), &self.config);
        let align = self.config.aligns.sample(&mut self.rng);
        let id = self.next_id;
        self.next_id += 1;
        match &mut self.victims {
            Victims::Stack(stack) => stack.push(id),
            Victims::Queue(queue) => queue.push_back(id),
            Victims::Pool(pool) => pool.push(id),
            Victims::Due(due) => {
                let lifetime = match self.config.lifetime {
                    Lifetime::Uniform => self.rng.random_range(0.0..2.0 * self.mean_lifetime),
                    _ => {
                        let unit: f64 = Exp1.sample(&mut self.rng);
                        self.mean_lifetime * unit
                    }
                };
                due.push(Reverse((self.step + lifetime as u64, id)));
            }
        }
        self.sizes.insert(id, size);
        self.live_bytes += size;
        self.youngest = Some(id);
        Op::alloc(id, size, align)
    }

    /// Resize live block `id` to a new size drawn from the distribution.
    fn resize(&mut self, id: u32) -> Op {
        let size = clamp(self.config.sizes.sample(&mut self.rng), &self.config);
        let old = self.sizes.insert(id, size).expect("resized blocks are live");
        self.live_bytes = self.live_bytes - old + size;
        Op::Realloc { id, size }
    }

    /// The block the next free would take.
    fn peek_victim(&self) -> u32 {
        match &self.victims {
            Victims::Stack(stack) => stack.last().copied(),
            Victims::Queue(queue) => queue.front().copied(),
            Victims::Pool(pool) => pool.first().copied(),
            Victims::Due(due) => due.peek().map(|Reverse((_, id))| *id),
        }
        .expect("peek with live blocks")
    }

    fn free(&mut self) -> Op {
        let id = match &mut self.victims {
            Victims::Stack(stack) => stack.pop(),
            Victims::Queue(queue) => queue.pop_front(),
            Victims::Pool(pool) => {
                let index = self.rng.random_range(0..pool.len());
                Some(pool.swap_remove(index))
            }
            Victims::Due(due) => due.pop().map(|Reverse((_, id))| id),
        }
        .expect("free with live blocks");
        let size = self.sizes.remove(&id).expect("victims are live");
        self.live_bytes -= size;
        if self.youngest == Some(id) {
            self.youngest = None;
        }
        Op::Free { id }
    }
}

fn clamp(sample: f64, config: &Tracking) -> u64 {
    // NaN and negative samples clamp to the minimum.
    let rounded = if sample.is_finite() && sample > 0.0 { sample.round() } else { 0.0 };
    (rounded as u64).clamp(config.min_size, config.max_size)
}

impl Iterator for TrackingGen {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        if self.step >= self.config.ops {
            return None;
        }
        let remaining = self.config.ops - self.step;
        let live = self.live_count() as u64;
        // Leave enough ops to free everything. Allocs and frees keep the
        // parity of (remaining − live); a realloc flips it, so with reallocs
        // one may be needed to end exactly empty.
        let op = if live > 0 && live + 1 >= remaining {
            if (remaining - live) % 2 == 1 { self.resize(self.peek_victim()) } else { self.free() }
        } else {
            let fraction = self.step as f64 / self.config.ops as f64;
            let target = self.config.live_bytes as f64 * self.config.phase.shape(fraction);
            let below = (self.live_bytes as f64) < target;
            let allocate = self.rng.random_bool(if below { TRACKING_BIAS } else { 1.0 - TRACKING_BIAS });
            if live == 0 || allocate {
                match self.youngest {
                    Some(id) if self.config.realloc > 0.0 && self.rng.random_bool(self.config.realloc) => {
                        self.resize(id)
                    }
                    _ => self.alloc(),
                }
            } else {
                self.free()
            }
        };
        self.step += 1;
        Some(op)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.config.ops - self.step) as usize;
        (left, Some(left))
    }
}

/// The Larson-like server churn: fill `slots` blocks, then repeatedly free a
/// random one and allocate a replacement; free the rest at the end.
#[derive(Debug)]
pub struct LarsonGen {
    ops: u64,
    slots: usize,
    min_size: u64,
    max_size: u64,
    align: Align,
    rng: ChaCha8Rng,
    step: u64,
    next_id: u32,
    live: Vec<u32>,
    /// The slot a free just emptied, to refill next.
    refill: bool,
}

impl LarsonGen {
    /// Start generating with `seed`. Every block is allocated and freed, so
    /// an odd op count is rounded down.
    pub fn new(ops: u64, slots: usize, min_size: u64, max_size: u64, align: Align, seed: u64) -> LarsonGen {
        LarsonGen {
            ops: ops & !1,
            slots: slots.max(1),
            min_size,
            max_size,
            align,
            rng: ChaCha8Rng::seed_from_u64(seed),
            step: 0,
            next_id: 0,
            live: Vec::new(),
            refill: false,
        }
    }
}

impl Iterator for LarsonGen {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        if self.step >= self.ops {
            return None;
        }
        let remaining = self.ops - self.step;
        self.step += 1;
        let draining = !self.live.is_empty() && self.live.len() as u64 + 1 >= remaining;
        if !draining && (self.refill || self.live.len() < self.slots) {
            self.refill = false;
            let id = self.next_id;
            self.next_id += 1;
            self.live.push(id);
            let size = self.rng.random_range(self.min_size..=self.max_size);
            return Some(Op::alloc(id, size, self.align));
        }
        let index = self.rng.random_range(0..self.live.len());
        let id = self.live.swap_remove(index);
        self.refill = true;
        Some(Op::Free { id })
    }
}

/// The classic external-fragmentation demonstration: fill with small
/// blocks, free every other one, ask for large blocks worth the freed
/// space, then free everything.
#[derive(Debug)]
pub struct FragmenterGen {
    ops: std::vec::IntoIter<Op>,
}

impl FragmenterGen {
    /// `count` small blocks of `small` bytes, then large blocks of `large`
    /// bytes worth half of them.
    pub fn new(count: u32, small: u64, large: u64, align: Align) -> FragmenterGen {
        let large_count = (u64::from(count / 2) * small).div_ceil(large.max(1)) as u32;
        let mut ops = Vec::with_capacity(2 * count as usize + 2 * large_count as usize);
        ops.extend((0..count).map(|id| Op::alloc(id, small, align)));
        ops.extend((0..count).step_by(2).map(|id| Op::Free { id }));
        ops.extend((count..count + large_count).map(|id| Op::alloc(id, large, align)));
        ops.extend((1..count).step_by(2).map(|id| Op::Free { id }));
        ops.extend((count..count + large_count).map(|id| Op::Free { id }));
        FragmenterGen { ops: ops.into_iter() }
    }
}

impl Iterator for FragmenterGen {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        self.ops.next()
    }
}

/// The lesson of the kernel's levels: fill a pool of page frames with
/// single pages, free every other one, then ask, round after round, for
/// `2^order` physically contiguous pages (`alloc_pages`), which a pool of
/// scattered free pages cannot serve, and for the same bytes virtually
/// contiguous (`vmalloc`), which single pages can; then free everything.
#[derive(Debug)]
pub struct ContiguousGen {
    ops: std::vec::IntoIter<Op>,
}

impl ContiguousGen {
    /// The page size the script speaks in.
    pub const PAGE: u64 = 4096;

    /// `pages` single pages, then `rounds` of one contiguous and one
    /// vmalloc request of `PAGE << order` bytes each; the vmalloc blocks
    /// stay live until the end, each contiguous block (should it be
    /// served) is freed in its round.
    pub fn new(pages: u32, order: u32, rounds: u32) -> ContiguousGen {
        let align = Align::new(Self::PAGE).expect("a power of two");
        let bytes = Self::PAGE << order;
        let mut ops = Vec::with_capacity(2 * pages as usize + 4 * rounds as usize);
        let page = |id| Op::Alloc { id, size: Self::PAGE, align, level: Level::Page, space: 0 };
        ops.extend((0..pages).map(page));
        ops.extend((0..pages).step_by(2).map(|id| Op::Free { id }));
        for round in 0..rounds {
            let (contiguous, virtually) = (pages + 2 * round, pages + 2 * round + 1);
            ops.push(Op::Alloc { id: contiguous, size: bytes, align, level: Level::Page, space: 0 });
            ops.push(Op::Alloc { id: virtually, size: bytes, align, level: Level::Vmalloc, space: 0 });
            ops.push(Op::Free { id: contiguous });
        }
        ops.extend((0..rounds).map(|round| Op::Free { id: pages + 2 * round + 1 }));
        ops.extend((1..pages).step_by(2).map(|id| Op::Free { id }));
        ContiguousGen { ops: ops.into_iter() }
    }
}

impl Iterator for ContiguousGen {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        self.ops.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::sizes::{AlignDist, SizeDist};
    use crate::validate::Validator;

    fn tracking(lifetime: Lifetime, phase: Phase) -> Tracking {
        Tracking {
            ops: 20_000,
            sizes: SizeDist::Uniform { min: 16, max: 112 }.sampler().unwrap(),
            min_size: 1,
            max_size: 1 << 20,
            aligns: AlignDist::fixed(Align::UNSPECIFIED).sampler().unwrap(),
            lifetime,
            phase,
            live_bytes: 64 * 200,
            realloc: 0.05,
        }
    }

    fn check_valid_and_balanced(ops: &[Op]) {
        let mut validator = Validator::new();
        for (index, op) in ops.iter().enumerate() {
            validator.check(op).unwrap_or_else(|e| panic!("op {index}: {e}"));
        }
        assert_eq!(validator.live_blocks(), 0, "the heap ends empty");
    }

    #[test]
    fn every_lifetime_model_gives_exact_valid_balanced_streams() {
        for lifetime in [Lifetime::Exponential, Lifetime::Uniform, Lifetime::Lifo, Lifetime::Fifo, Lifetime::Random] {
            let ops: Vec<Op> = TrackingGen::new(tracking(lifetime, Phase::Steady), 5).collect();
            assert_eq!(ops.len(), 20_000, "{lifetime:?}");
            check_valid_and_balanced(&ops);
            assert!(ops.iter().any(|op| matches!(op, Op::Realloc { .. })));
        }
    }

    #[test]
    fn lifo_frees_the_youngest_and_fifo_the_oldest() {
        let lifo: Vec<Op> =
            TrackingGen::new(Tracking { realloc: 0.0, ..tracking(Lifetime::Lifo, Phase::Steady) }, 1).collect();
        let fifo: Vec<Op> =
            TrackingGen::new(Tracking { realloc: 0.0, ..tracking(Lifetime::Fifo, Phase::Steady) }, 1).collect();
        let mut stack = Vec::new();
        for op in &lifo {
            match *op {
                Op::Alloc { id, .. } => stack.push(id),
                Op::Free { id } => assert_eq!(stack.pop(), Some(id)),
                Op::Realloc { .. } => unreachable!(),
            }
        }
        let mut queue = VecDeque::new();
        for op in &fifo {
            match *op {
                Op::Alloc { id, .. } => queue.push_back(id),
                Op::Free { id } => assert_eq!(queue.pop_front(), Some(id)),
                Op::Realloc { .. } => unreachable!(),
            }
        }
    }

    #[test]
    fn live_bytes_follow_the_phase_shape() {
        // Four peaks over 20,000 ops: tops at 2,500 + 5,000k, valleys at
        // 5,000k. The ramp is half-way at half-time.
        let live_at = |phase: Phase, at: usize| {
            let mut live = HashMap::new();
            let mut bytes = 0i64;
            for op in TrackingGen::new(Tracking { realloc: 0.0, ..tracking(Lifetime::Random, phase) }, 9).take(at) {
                match op {
                    Op::Alloc { id, size, .. } => {
                        live.insert(id, size);
                        bytes += size as i64;
                    }
                    Op::Free { id } => bytes -= live.remove(&id).unwrap() as i64,
                    Op::Realloc { .. } => {}
                }
            }
            bytes as f64 / (64.0 * 200.0)
        };
        assert!((live_at(Phase::Ramp, 10_000) - 0.5).abs() < 0.1, "{}", live_at(Phase::Ramp, 10_000));
        assert!((live_at(Phase::Peak, 7_500) - 1.0).abs() < 0.1, "{}", live_at(Phase::Peak, 7_500));
        assert!(live_at(Phase::Peak, 5_000) < 0.1, "{}", live_at(Phase::Peak, 5_000));
        assert!((live_at(Phase::Plateau, 10_000) - 1.0).abs() < 0.1);
    }

    #[test]
    fn larson_keeps_its_slots_full_and_drains() {
        let ops: Vec<Op> = LarsonGen::new(10_000, 100, 8, 1000, Align::UNSPECIFIED, 3).collect();
        assert_eq!(ops.len(), 10_000);
        check_valid_and_balanced(&ops);
        let mut live = 0i64;
        for op in &ops[..9_000] {
            live += if matches!(op, Op::Alloc { .. }) { 1 } else { -1 };
            assert!((0..=100).contains(&live));
        }
        assert!(live >= 99);
    }

    #[test]
    fn the_contiguous_script_scatters_free_pages_then_asks_both_levels() {
        let ops: Vec<Op> = ContiguousGen::new(8, 1, 2).collect();
        let mut validator = Validator::new();
        for op in &ops {
            validator.check(op).unwrap();
        }
        assert_eq!(validator.live_blocks(), 0, "everything is freed");
        // 8 pages, 4 frees, 2 rounds of 3, 2 vmalloc frees, 4 page frees.
        assert_eq!(ops.len(), 8 + 4 + 6 + 2 + 4);
        let level_of = |id| {
            ops.iter().find_map(|op| match *op {
                Op::Alloc { id: i, level, size, .. } if i == id => Some((level, size)),
                _ => None,
            })
        };
        assert_eq!(level_of(0), Some((Level::Page, 4096)));
        assert_eq!(level_of(8), Some((Level::Page, 8192)));
        assert_eq!(level_of(9), Some((Level::Vmalloc, 8192)));
    }

    #[test]
    fn the_fragmenter_leaves_holes_then_asks_for_large_blocks() {
        let ops: Vec<Op> = FragmenterGen::new(8, 64, 128, Align::UNSPECIFIED).collect();
        check_valid_and_balanced(&ops);
        let kinds: String = ops
            .iter()
            .map(|op| {
                if matches!(op, Op::Alloc { size: 128, .. }) {
                    'L'
                } else if matches!(op, Op::Alloc { .. }) {
                    'a'
                } else {
                    'f'
                }
            })
            .collect();
        assert_eq!(kinds, "aaaaaaaaffffLLffffff");
    }
}
