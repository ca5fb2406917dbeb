//! `kernel-events`: the allocations a kernel makes for a simulated system's
//! process events (fork, execve, stack growth, thread creation, brk, mmap, munmap,
//! shmat, exit), each request at the level a real kernel serves it from.
//!
//! Object sizes are the `objsize` column of `/proc/slabinfo` on Linux
//! 6.18.44 (x86-64, SLUB), read on the machines heaplab is developed on;
//! the kernel stack is `THREAD_SIZE`, 16 KiB (order 2) on x86-64 without
//! KASAN. The workloads README lists them and what the model leaves out.

use std::collections::{HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::op::{Align, Level, Op};
use crate::synth::SyntheticSpec;

/// A page frame.
pub const PAGE: u64 = 4096;
/// Entries in one page-table page (x86-64: 512 eight-byte entries).
const PTES_PER_PAGE: u64 = 512;
/// `THREAD_SIZE` on x86-64 without KASAN: order 2.
pub const KERNEL_STACK: u64 = 4 * PAGE;

/// `objsize` of the slab caches the events allocate from, Linux 6.18.44
/// x86-64 `/proc/slabinfo`.
pub mod objects {
    /// `task_struct`.
    pub const TASK_STRUCT: u64 = 5888;
    /// `mm_struct`.
    pub const MM_STRUCT: u64 = 1600;
    /// `vm_area_struct`.
    pub const VM_AREA_STRUCT: u64 = 192;
    /// `anon_vma`.
    pub const ANON_VMA: u64 = 104;
    /// `anon_vma_chain`.
    pub const ANON_VMA_CHAIN: u64 = 64;
    /// `maple_node` (the mm's tree of VMAs).
    pub const MAPLE_NODE: u64 = 256;
    /// `pid`.
    pub const PID: u64 = 192;
    /// `signal_cache` (`struct signal_struct`).
    pub const SIGNAL: u64 = 1152;
    /// `sighand_cache`.
    pub const SIGHAND: u64 = 2112;
    /// `files_cache` (`struct files_struct`).
    pub const FILES: u64 = 704;
    /// `shmem_inode_cache`: a System V segment's inode.
    pub const SHMEM_INODE: u64 = 752;
}

/// The events, in the order of the `mix` weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A new process: `fork()`.
    Fork,
    /// A new program in a process: `execve()`.
    Exec,
    /// A stack grown by a page fault.
    Stack,
    /// A new thread: `clone(CLONE_VM)`.
    Thread,
    /// The heap grown: `brk()` and the faults after it.
    Brk,
    /// An anonymous mapping: `mmap()` and the faults after it.
    Mmap,
    /// A mapping removed: `munmap()` of one of the process's mmaps, its
    /// VMA and pages freed (its page-table pages stay, as the kernel keeps
    /// them while the range's neighbours are mapped).
    Munmap,
    /// A System V shared segment attached: `shmget()` + `shmat()`.
    Shmat,
    /// A process ending: `exit()`.
    Exit,
}

impl Event {
    /// Every event, in `mix` order.
    pub const ALL: [Event; 9] = [
        Event::Fork,
        Event::Exec,
        Event::Stack,
        Event::Thread,
        Event::Brk,
        Event::Mmap,
        Event::Munmap,
        Event::Shmat,
        Event::Exit,
    ];

    /// The name in a `mix`.
    pub fn name(self) -> &'static str {
        match self {
            Event::Fork => "fork",
            Event::Exec => "exec",
            Event::Stack => "stack",
            Event::Thread => "thread",
            Event::Brk => "brk",
            Event::Mmap => "mmap",
            Event::Munmap => "munmap",
            Event::Shmat => "shmat",
            Event::Exit => "exit",
        }
    }
}

/// The named event mixes: weights in [`Event::ALL`] order.
pub const MIXES: &[(&str, [u32; 9])] = &[
    ("balanced", [3, 2, 4, 1, 6, 4, 3, 1, 3]),
    // A shell script's or a build's life: processes come and go.
    ("fork-heavy", [10, 8, 2, 1, 2, 1, 1, 0, 9]),
    // A few long-lived processes mapping, faulting and unmapping memory.
    ("mmap-heavy", [1, 1, 3, 1, 4, 12, 10, 2, 1]),
];

/// What the generator is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsConfig {
    /// Events to simulate before every process exits.
    pub events: u64,
    /// Processes at most alive at once.
    pub procs: u32,
    /// Threads at most in one process, its first included.
    pub threads: u32,
    /// Weights of [`Event::ALL`].
    pub mix: [u32; 9],
    /// Pages at most faulted in by one brk, mmap, shmat or exec.
    pub fault_pages: u32,
    /// Kernel stacks from vmalloc (`CONFIG_VMAP_STACK`) rather than order-2
    /// pages.
    pub vmap_stack: bool,
    /// Each process's own malloc traffic: a synthetic workload whose ops
    /// (user memory, in the process's address space) it runs, `malloc_ops`
    /// of them at each of its events. `None`: no user traffic.
    pub malloc: Option<Box<SyntheticSpec>>,
    /// Ops of its malloc traffic a process runs per event it is picked for.
    pub malloc_ops: u32,
}

/// The blocks of one process's address space: freed by exec and exit.
#[derive(Debug, Default)]
struct Mm {
    /// `mm_struct`, VMAs, anon_vmas, maple nodes, page-table pages, faulted
    /// pages: every block the address space holds.
    blocks: Vec<u32>,
    /// VMAs (what fork copies).
    vmas: u32,
    /// The mmaps still mapped: each one's VMA blocks and pages, which
    /// munmap frees (and exec and exit with the rest).
    maps: Vec<Vec<u32>>,
    /// Pages ever mapped (what page-table pages cover).
    mapped: u64,
    /// Page-table pages allocated.
    tables: u64,
}

/// One simulated process.
#[derive(Debug, Default)]
struct Process {
    /// `signal_struct`, `sighand_struct`, `files_struct` and each thread's
    /// task, pid and kernel stack: freed at exit.
    blocks: Vec<u32>,
    threads: u32,
    mm: Mm,
    /// Shared segments it created: freed when it exits (as if it also
    /// removed them with `IPC_RMID`).
    shm: Vec<u32>,
    /// Its address space, for its malloc traffic (from 1; unique among
    /// the processes alive).
    space: u8,
    /// Its program's malloc traffic, if the workload has one.
    malloc: Option<Traffic>,
}

/// One program's malloc traffic: the ops of a synthetic workload, with its
/// block ids renamed into the workload's.
struct Traffic {
    ops: Box<dyn Iterator<Item = Op> + Send>,
    /// The traffic's live ids → the workload's.
    ids: HashMap<u32, u32>,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traffic").field("live", &self.ids.len()).finish()
    }
}

/// The `kernel-events` stream: ops generated event by event.
#[derive(Debug)]
pub struct EventsGen {
    config: EventsConfig,
    rng: ChaCha8Rng,
    /// Sum of the mix's weights.
    total_weight: u32,
    processes: Vec<Process>,
    next_id: u32,
    events_done: u64,
    /// Ops of the event being emitted.
    pending: VecDeque<Op>,
    /// Every process has exited.
    done: bool,
    /// Address spaces no live process has (a stack: 1 first, then the
    /// last one freed).
    free_spaces: Vec<u8>,
}

impl EventsGen {
    /// Start generating with `seed`: one process (init) exists before the
    /// first event.
    pub fn new(config: EventsConfig, seed: u64) -> EventsGen {
        let total_weight = config.mix.iter().sum::<u32>().max(1);
        let mut generator = EventsGen {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            total_weight,
            processes: Vec::new(),
            next_id: 0,
            events_done: 0,
            pending: VecDeque::new(),
            done: false,
            free_spaces: Vec::new(),
        };
        generator.free_spaces = (1..=generator.config.procs.min(255) as u8).rev().collect();
        let init = generator.new_process(None);
        generator.processes.push(init);
        generator
    }

    fn alloc(&mut self, size: u64, align: u64, level: Level) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let align = Align::new(align).expect("a power of two");
        self.pending.push_back(Op::Alloc { id, size, align, level, space: 0 });
        id
    }

    /// A program's malloc traffic, seeded from the generator's stream
    /// (drawn only when the workload has traffic, so that one without it
    /// is unchanged).
    fn traffic(&mut self) -> Option<Traffic> {
        let spec = self.config.malloc.as_ref()?;
        let seed = self.rng.random::<u64>();
        let ops = spec.generate(seed).expect("a malloc workload checked when the spec was parsed");
        Some(Traffic { ops, ids: HashMap::new() })
    }

    /// Run `malloc_ops` ops of process `index`'s traffic in its space.
    fn run_traffic(&mut self, index: usize) {
        let space = self.processes[index].space;
        let Some(mut traffic) = self.processes[index].malloc.take() else { return };
        for _ in 0..self.config.malloc_ops {
            let Some(op) = traffic.ops.next() else { break };
            let op = match op {
                Op::Alloc { id, size, align, .. } => {
                    let global = self.next_id;
                    self.next_id += 1;
                    traffic.ids.insert(id, global);
                    Op::Alloc { id: global, size, align, level: Level::User, space }
                }
                Op::Free { id } => Op::Free { id: traffic.ids.remove(&id).expect("a valid traffic frees a live id") },
                Op::Realloc { id, size } => Op::Realloc { id: traffic.ids[&id], size },
            };
            self.pending.push_back(op);
        }
        self.processes[index].malloc = Some(traffic);
    }

    /// Free what a program's traffic still holds (its heap goes with its
    /// address space at exec and exit).
    fn end_traffic(&mut self, traffic: Option<Traffic>) {
        if let Some(traffic) = traffic {
            let mut live: Vec<u32> = traffic.ids.into_values().collect();
            live.sort_unstable();
            self.free(live);
        }
    }

    fn object(&mut self, size: u64) -> u32 {
        self.alloc(size, 8, Level::Kmalloc)
    }

    fn page(&mut self) -> u32 {
        self.alloc(PAGE, PAGE, Level::Page)
    }

    fn free(&mut self, blocks: Vec<u32>) {
        self.pending.extend(blocks.into_iter().map(|id| Op::Free { id }));
    }

    /// A thread's kernel-side blocks: its task, its pid and its kernel stack.
    fn thread_blocks(&mut self, into: &mut Vec<u32>) {
        into.push(self.object(objects::TASK_STRUCT));
        into.push(self.object(objects::PID));
        let stack = if self.config.vmap_stack {
            self.alloc(KERNEL_STACK, PAGE, Level::Vmalloc)
        } else {
            self.alloc(KERNEL_STACK, PAGE, Level::Page)
        };
        into.push(stack);
    }

    /// A VMA with its anon_vma, its chain link and, every fourth VMA, a
    /// node of the mm's maple tree.
    fn vma(&mut self, mm: &mut Mm) {
        mm.blocks.push(self.object(objects::VM_AREA_STRUCT));
        mm.blocks.push(self.object(objects::ANON_VMA));
        mm.blocks.push(self.object(objects::ANON_VMA_CHAIN));
        if mm.vmas.is_multiple_of(4) {
            mm.blocks.push(self.object(objects::MAPLE_NODE));
        }
        mm.vmas += 1;
    }

    /// `pages` pages faulted in, with the page-table pages they need: a
    /// PTE page per 512 pages mapped, and the PGD, PUD and PMD pages of
    /// the first fault.
    fn fault(&mut self, mm: &mut Mm, pages: u64) {
        for _ in 0..pages {
            mm.blocks.push(self.page());
        }
        mm.mapped += pages;
        let needed = 3 + mm.mapped.div_ceil(PTES_PER_PAGE);
        while mm.tables < needed {
            mm.blocks.push(self.page());
            mm.tables += 1;
        }
    }

    /// A fresh address space as execve builds it: the mm, its VMAs (text,
    /// data, bss, heap, stack, vdso) and the pages faulted in to start.
    fn new_mm(&mut self) -> Mm {
        let mut mm = Mm::default();
        mm.blocks.push(self.object(objects::MM_STRUCT));
        for _ in 0..6 {
            self.vma(&mut mm);
        }
        let pages = self.fault_count();
        self.fault(&mut mm, pages);
        mm
    }

    /// A process: from `parent`'s address space (fork copies its VMAs and
    /// page tables, not its pages: they are shared copy-on-write) or, for
    /// init, a fresh one.
    fn new_process(&mut self, parent: Option<usize>) -> Process {
        // Address spaces only for malloc traffic (at most 255 processes).
        let space = if self.config.malloc.is_some() {
            self.free_spaces.pop().expect("a space per process at most alive")
        } else {
            0
        };
        let mut process = Process { threads: 1, space, ..Process::default() };
        let mut blocks = Vec::new();
        self.thread_blocks(&mut blocks);
        blocks.push(self.object(objects::SIGNAL));
        blocks.push(self.object(objects::SIGHAND));
        blocks.push(self.object(objects::FILES));
        process.blocks = blocks;
        process.mm = match parent {
            None => self.new_mm(),
            Some(parent) => {
                let (vmas, mapped, tables) = {
                    let mm = &self.processes[parent].mm;
                    (mm.vmas, mm.mapped, mm.tables)
                };
                let mut mm = Mm::default();
                mm.blocks.push(self.object(objects::MM_STRUCT));
                for _ in 0..vmas {
                    self.vma(&mut mm);
                }
                for _ in 0..tables {
                    mm.blocks.push(self.page());
                }
                mm.tables = tables;
                mm.mapped = mapped;
                mm
            }
        };
        process.malloc = self.traffic();
        process
    }

    fn fault_count(&mut self) -> u64 {
        u64::from(self.rng.random_range(1..=self.config.fault_pages))
    }

    fn pick_event(&mut self) -> Event {
        let mut ticket = self.rng.random_range(0..self.total_weight);
        for (event, weight) in Event::ALL.into_iter().zip(self.config.mix) {
            if ticket < weight {
                return event;
            }
            ticket -= weight;
        }
        Event::Stack
    }

    /// Ops for one event. An event that cannot happen now (a fork at the
    /// process limit, an exit of the last process, a thread past the
    /// limit) turns into a stack fault, so that every event allocates.
    fn step(&mut self) {
        let victim = self.rng.random_range(0..self.processes.len());
        let mut event = self.pick_event();
        let full = self.processes.len() as u32 >= self.config.procs;
        if (event == Event::Fork && full)
            || (event == Event::Exit && self.processes.len() == 1)
            || (event == Event::Thread && self.processes[victim].threads >= self.config.threads)
        {
            event = Event::Stack;
        }
        match event {
            Event::Fork => {
                let child = self.new_process(Some(victim));
                self.processes.push(child);
            }
            Event::Exec => {
                let old = std::mem::take(&mut self.processes[victim].mm);
                self.free_mm(old);
                let traffic = self.processes[victim].malloc.take();
                self.end_traffic(traffic);
                let mm = self.new_mm();
                self.processes[victim].mm = mm;
                self.processes[victim].malloc = self.traffic();
            }
            Event::Stack => {
                let mut mm = std::mem::take(&mut self.processes[victim].mm);
                let pages = self.rng.random_range(1..=4);
                self.fault(&mut mm, pages);
                self.processes[victim].mm = mm;
            }
            Event::Thread => {
                let mut blocks = Vec::new();
                self.thread_blocks(&mut blocks);
                // Its user stack: a mapping and its first page.
                let mut mm = std::mem::take(&mut self.processes[victim].mm);
                self.vma(&mut mm);
                self.fault(&mut mm, 1);
                let process = &mut self.processes[victim];
                process.mm = mm;
                process.blocks.extend(blocks);
                process.threads += 1;
            }
            Event::Brk => {
                // brk grows the heap's VMA and faults pages into it.
                let mut mm = std::mem::take(&mut self.processes[victim].mm);
                let pages = self.fault_count();
                self.fault(&mut mm, pages);
                self.processes[victim].mm = mm;
            }
            Event::Mmap => {
                // A new VMA and its pages, kept apart for munmap; the
                // page-table pages stay the mm's.
                let mut mm = std::mem::take(&mut self.processes[victim].mm);
                let mut map = Mm { mapped: mm.mapped, tables: mm.tables, vmas: mm.vmas, ..Mm::default() };
                self.vma(&mut map);
                let pages = self.fault_count();
                for _ in 0..pages {
                    map.blocks.push(self.page());
                }
                mm.vmas = map.vmas;
                mm.mapped += pages;
                let needed = 3 + mm.mapped.div_ceil(PTES_PER_PAGE);
                while mm.tables < needed {
                    mm.blocks.push(self.page());
                    mm.tables += 1;
                }
                mm.maps.push(map.blocks);
                self.processes[victim].mm = mm;
            }
            Event::Munmap => {
                let maps = self.processes[victim].mm.maps.len();
                if maps == 0 {
                    // Nothing to unmap: the process faults a stack page.
                    let mut mm = std::mem::take(&mut self.processes[victim].mm);
                    self.fault(&mut mm, 1);
                    self.processes[victim].mm = mm;
                } else {
                    let which = self.rng.random_range(0..maps);
                    let map = self.processes[victim].mm.maps.swap_remove(which);
                    self.free(map);
                }
            }
            Event::Shmat => {
                let mut segment = vec![self.object(objects::SHMEM_INODE)];
                let pages = self.fault_count();
                segment.extend((0..pages).map(|_| self.page()));
                let mut mm = std::mem::take(&mut self.processes[victim].mm);
                self.vma(&mut mm);
                let process = &mut self.processes[victim];
                process.mm = mm;
                process.shm.extend(segment);
            }
            Event::Exit => {
                let process = self.processes.swap_remove(victim);
                self.exit(process);
                return;
            }
        }
        self.run_traffic(victim);
    }

    fn free_mm(&mut self, mm: Mm) {
        self.free(mm.blocks);
        for map in mm.maps {
            self.free(map);
        }
    }

    fn exit(&mut self, mut process: Process) {
        let traffic = process.malloc.take();
        self.end_traffic(traffic);
        self.free_mm(process.mm);
        self.free(process.shm);
        self.free(process.blocks);
        if process.space != 0 {
            self.free_spaces.push(process.space);
        }
    }
}

impl Iterator for EventsGen {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        loop {
            if let Some(op) = self.pending.pop_front() {
                return Some(op);
            }
            if self.done {
                return None;
            }
            if self.events_done < self.config.events {
                self.events_done += 1;
                self.step();
            } else {
                // The system shuts down: every process exits.
                for process in std::mem::take(&mut self.processes) {
                    self.exit(process);
                }
                self.done = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::validate::Validator;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any mix, limits and seed: a valid trace (no double free, no
        /// free of an unknown block) that frees everything it allocated.
        #[test]
        fn every_event_sequence_is_a_valid_trace_that_frees_everything(
            mix in proptest::array::uniform9(0u32..5),
            events in 1u64..400,
            procs in 1u32..8,
            threads in 1u32..4,
            fault_pages in 1u32..40,
            vmap_stack: bool,
            traffic in proptest::option::of(0usize..3),
            malloc_ops in 1u32..50,
            seed: u64,
        ) {
            let malloc = traffic.map(|which| {
                let text = ["small-objects:live=16K", "larson:slots=50", "mixed-sizes:live=32K,realloc=0.2"][which];
                Box::new(SyntheticSpec::parse(text).unwrap())
            });
            let config = EventsConfig { events, procs, threads, mix, fault_pages, vmap_stack, malloc, malloc_ops };
            let mut validator = Validator::new();
            let mut allocs = 0usize;
            // Each user block's space, and the spaces with live user blocks.
            let mut space_of = HashMap::new();
            for (index, op) in EventsGen::new(config, seed).enumerate() {
                prop_assert!(validator.check(&op).is_ok(), "op {index}: {op:?}");
                allocs += usize::from(matches!(op, Op::Alloc { .. }));
                match op {
                    Op::Alloc { id, level, space, .. } => {
                        prop_assert_eq!(space != 0, level == Level::User, "op {}: {:?}", index, op);
                        prop_assert!(u32::from(space) <= procs, "op {}: space {} of {} processes", index, space, procs);
                        prop_assert!(traffic.is_some() || space == 0);
                        if space != 0 {
                            space_of.insert(id, space);
                        }
                    }
                    Op::Free { id } => {
                        space_of.remove(&id);
                    }
                    Op::Realloc { .. } => {}
                }
            }
            prop_assert_eq!(validator.live_blocks(), 0);
            prop_assert!(space_of.is_empty());
            prop_assert!(allocs > 0);
        }
    }

    fn config(mix: &str) -> EventsConfig {
        EventsConfig {
            events: 2_000,
            procs: 16,
            threads: 4,
            mix: MIXES.iter().find(|(name, _)| *name == mix).unwrap().1,
            fault_pages: 16,
            vmap_stack: false,
            malloc: None,
            malloc_ops: 0,
        }
    }

    #[test]
    fn each_process_runs_its_malloc_traffic_in_its_own_space_and_frees_it_at_exit() {
        let malloc = Some(Box::new(SyntheticSpec::parse("small-objects:live=8K").unwrap()));
        let with_traffic = EventsConfig { malloc, malloc_ops: 16, procs: 4, ..config("fork-heavy") };
        let ops: Vec<Op> = EventsGen::new(with_traffic, 9).collect();
        let mut live: HashMap<u8, usize> = HashMap::new();
        let mut space_of = HashMap::new();
        let mut most_spaces = 0;
        let mut emptied = 0;
        for op in &ops {
            match *op {
                Op::Alloc { id, space, level: Level::User, .. } => {
                    assert!((1..=4).contains(&space), "{op:?}");
                    *live.entry(space).or_default() += 1;
                    space_of.insert(id, space);
                }
                Op::Free { id } => {
                    if let Some(space) = space_of.remove(&id) {
                        let count = live.get_mut(&space).unwrap();
                        *count -= 1;
                        if *count == 0 {
                            live.remove(&space);
                            emptied += 1;
                        }
                    }
                }
                _ => {}
            }
            most_spaces = most_spaces.max(live.len());
        }
        assert!(most_spaces >= 3, "several processes hold malloc memory at once: {most_spaces}");
        assert!(emptied > 20, "exec and exit free a program's heap: {emptied}");
        assert!(live.is_empty());
        // Without traffic the workload is what it was: the same ops.
        let plain: Vec<Op> = EventsGen::new(EventsConfig { procs: 4, ..config("fork-heavy") }, 9).collect();
        assert!(plain.iter().all(|op| !matches!(op, Op::Alloc { level: Level::User, .. })));
    }

    #[test]
    fn every_mix_gives_a_valid_trace_that_ends_empty() {
        for (name, _) in MIXES {
            let mut validator = Validator::new();
            let mut levels = [0usize; 4];
            for (index, op) in EventsGen::new(config(name), 7).enumerate() {
                validator.check(&op).unwrap_or_else(|e| panic!("{name}, op {index}: {e}"));
                if let Op::Alloc { level, .. } = op {
                    levels[level as usize] += 1;
                }
            }
            assert_eq!(validator.live_blocks(), 0, "{name}: everything is freed");
            assert_eq!(levels[Level::User as usize], 0, "{name}: {levels:?}");
            assert!(levels[Level::Kmalloc as usize] > 0 && levels[Level::Page as usize] > 0, "{name}: {levels:?}");
        }
    }

    #[test]
    fn a_fork_allocates_the_tasks_objects_a_stack_and_copies_the_page_tables() {
        // Only forks: init's exec'd address space, then each fork.
        let mix = [1, 0, 0, 0, 0, 0, 0, 0, 0];
        let config = EventsConfig { events: 1, mix, ..config("balanced") };
        let ops: Vec<Op> = EventsGen::new(config, 1).collect();
        let allocs: Vec<(u64, Level)> = ops
            .iter()
            .filter_map(|op| match *op {
                Op::Alloc { size, level, .. } => Some((size, level)),
                _ => None,
            })
            .collect();
        let count = |size: u64, level: Level| allocs.iter().filter(|&&a| a == (size, level)).count();
        // init and its child: a task, a pid, a stack, an mm each.
        assert_eq!(count(objects::TASK_STRUCT, Level::Kmalloc), 2);
        assert_eq!(count(KERNEL_STACK, Level::Page), 2);
        assert_eq!(count(objects::MM_STRUCT, Level::Kmalloc), 2);
        // init's six VMAs, copied, and the two pids (a `pid` is 192 bytes
        // too in this kernel).
        assert_eq!(objects::PID, objects::VM_AREA_STRUCT);
        assert_eq!(count(objects::VM_AREA_STRUCT, Level::Kmalloc), 12 + 2);
        // Page tables copied: the child has as many as init (4: PGD, PUD,
        // PMD and one PTE page for at most 16 pages).
        let pages = count(PAGE, Level::Page);
        assert!((4 + 1 + 4..=4 + 16 + 4).contains(&pages), "{pages}");
        assert_eq!(ops.iter().filter(|op| matches!(op, Op::Free { .. })).count(), allocs.len());
    }

    #[test]
    fn munmap_frees_a_mapping_while_the_process_lives() {
        // Only mmap and munmap: every free before the shutdown is a munmap.
        let mix = [0, 0, 0, 0, 0, 1, 1, 0, 0];
        let ops: Vec<Op> = EventsGen::new(EventsConfig { events: 200, mix, ..config("balanced") }, 2).collect();
        let last_alloc = ops.iter().rposition(|op| matches!(op, Op::Alloc { .. })).unwrap();
        let early_frees = ops[..last_alloc].iter().filter(|op| matches!(op, Op::Free { .. })).count();
        assert!(early_frees > 100, "{early_frees}");
        // A mapping is freed whole: its VMA's objects with its pages.
        let mut validator = Validator::new();
        for op in &ops {
            validator.check(op).unwrap();
        }
        assert_eq!(validator.live_blocks(), 0);
    }

    #[test]
    fn vmapped_stacks_go_to_vmalloc() {
        let config = EventsConfig { vmap_stack: true, ..config("fork-heavy") };
        let ops: Vec<Op> = EventsGen::new(config, 3).collect();
        assert!(ops.iter().any(|op| matches!(op, Op::Alloc { size: KERNEL_STACK, level: Level::Vmalloc, .. })));
        assert!(!ops.iter().any(|op| matches!(op, Op::Alloc { size: KERNEL_STACK, level: Level::Page, .. })));
    }

    #[test]
    fn the_process_limit_holds() {
        let config = EventsConfig { procs: 3, ..config("fork-heavy") };
        let mut tasks = 0i64;
        let mut task_ids = std::collections::HashSet::new();
        let mut most = 0;
        for op in EventsGen::new(config, 5) {
            match op {
                Op::Alloc { id, size: objects::SIGNAL, .. } => {
                    task_ids.insert(id);
                    tasks += 1;
                }
                Op::Free { id } if task_ids.remove(&id) => tasks -= 1,
                _ => {}
            }
            most = most.max(tasks);
        }
        assert_eq!(most, 3);
    }
}
