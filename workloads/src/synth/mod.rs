//! Synthetic workloads: named, parameterised, seeded.
//!
//! A synthetic workload is written like an allocator spec,
//! `NAME[:key=value,…]`: `lognormal:median=64,sigma=1.5`, `ramp:ops=50000`,
//! `fragmenter:small=32`. The name is a preset (a modelled behaviour,
//! described in workloads/README.md) or a bare size distribution; the
//! parameters override its defaults. [`SyntheticSpec::spec`] prints every
//! parameter, so the canonical spec plus the seed reproduce the ops exactly.
//!
//! Parameters common to the target-tracking workloads (all but `larson` and
//! `fragmenter`): `ops` (exact count), `live` (live-bytes target), `min` and
//! `max` (size clamp), `lifetime` (exp, uniform, lifo, fifo, random), `phase`
//! (steady, ramp, peak, plateau), `align` (`16`, `unspecified`, or weighted
//! `16:0.9/64:0.1`), `realloc` (probability that an allocation step resizes
//! the youngest block instead).

pub mod events;
pub mod generator;
pub mod sizes;

use std::path::{Path, PathBuf};

use heaplab_core::Spec;
use heaplab_core::spec::{ParamReader, choice_name, format_size};

use self::events::{Event, EventsConfig, EventsGen, MIXES};
use self::generator::{ContiguousGen, FragmenterGen, LarsonGen, Lifetime, Phase, Tracking, TrackingGen};
use self::sizes::{AlignDist, SizeDist};
use crate::error::TraceError;
use crate::op::{Align, Op};

/// The presets and distribution families, with one line each.
pub const PRESETS: &[(&str, &str)] = &[
    ("small-objects", "many small blocks, Zipf over 8..256-byte classes, short exponential lifetimes"),
    ("mixed-sizes", "lognormal mix of small (median 48 B) and medium (median 2 KiB) blocks, some reallocs"),
    ("ramp", "live data grows steadily over the run (Wilson et al.'s ramp)"),
    ("peak", "four build-up-and-release phases (Wilson et al.'s peaks)"),
    ("plateau", "quick build-up, long plateau, release at the end (Wilson et al.'s plateau)"),
    ("larson", "server churn after Larson & Krishnan: a pool of slots, each free replaced by a new block"),
    ("kernel-pages", "page-order requests (4 KiB << order), order 0 dominating, page-aligned"),
    ("kmalloc-mix", "kernel object sizes clustered on kmalloc's classes and just below them"),
    ("fragmenter", "fill with small blocks, free every other one, ask for large blocks: external fragmentation"),
    (
        "vmalloc-vs-contiguous",
        "fill a page pool with single pages, free every other one, ask for order-k pages and for vmalloc of the same size",
    ),
    (
        "kernel-events",
        "a simulated system's fork, execve, stack growth, threads, brk, mmap, munmap, shmat and exit, each request at its kernel level",
    ),
    ("constant", "one size (`size=`)"),
    ("uniform", "sizes uniform on [min, max]"),
    ("normal", "sizes normal (`mean=`, `sd=`)"),
    ("lognormal", "sizes lognormal (`median=`, `sigma=`)"),
    ("exponential", "sizes exponential (`mean=`)"),
    ("pareto", "sizes Pareto (`scale=`, `shape=`), heavy-tailed"),
    ("zipf", "sizes Zipf over classes (`classes=16/32/64`, `s=`)"),
    ("empirical", "sizes from a CSV histogram of size,weight rows (`file=`)"),
];

/// The kmalloc-mix histogram: request sizes and weights. Invented to
/// resemble published kmalloc size histograms (clusters at and just below
/// the classes), not measured on a kernel.
const KMALLOC_MIX: &[(u64, f64)] = &[
    (8, 4.0),
    (12, 2.0),
    (16, 8.0),
    (20, 2.0),
    (24, 6.0),
    (32, 10.0),
    (40, 4.0),
    (48, 5.0),
    (56, 3.0),
    (64, 10.0),
    (72, 2.0),
    (80, 3.0),
    (96, 6.0),
    (104, 1.0),
    (112, 2.0),
    (128, 7.0),
    (152, 1.0),
    (160, 2.0),
    (192, 4.0),
    (200, 1.0),
    (232, 1.0),
    (256, 4.0),
    (320, 1.0),
    (384, 2.0),
    (448, 1.0),
    (512, 3.0),
    (576, 1.0),
    (704, 1.0),
    (1024, 2.0),
    (1536, 1.0),
    (2048, 1.0),
    (4096, 1.0),
    (8192, 0.3),
];

/// Page-order weights for kernel-pages, orders 0..=10 (percent): order 0
/// dominates as in the Linux page allocator's statistics, high orders are rare.
const PAGE_ORDER_WEIGHTS: [f64; 11] = [85.0, 7.0, 4.0, 2.0, 1.0, 0.4, 0.3, 0.15, 0.1, 0.03, 0.02];

const LIFETIMES: [(&str, Lifetime); 5] = [
    ("exp", Lifetime::Exponential),
    ("uniform", Lifetime::Uniform),
    ("lifo", Lifetime::Lifo),
    ("fifo", Lifetime::Fifo),
    ("random", Lifetime::Random),
];
const PHASES: [(&str, Phase); 4] =
    [("steady", Phase::Steady), ("ramp", Phase::Ramp), ("peak", Phase::Peak), ("plateau", Phase::Plateau)];

/// A parsed synthetic workload.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    canonical: String,
    name: String,
    /// The file it reads (`empirical:file=`), to be pinned by its digest.
    input: Option<PathBuf>,
    ops: u64,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Tracking {
        sizes: SizeDist,
        min_size: u64,
        max_size: u64,
        live_bytes: u64,
        lifetime: Lifetime,
        phase: Phase,
        align: AlignDist,
        realloc: f64,
    },
    Larson {
        slots: usize,
        min_size: u64,
        max_size: u64,
        align: Align,
    },
    Fragmenter {
        small: u64,
        large: u64,
        live_bytes: u64,
        align: Align,
    },
    Contiguous {
        pool_bytes: u64,
        order: u32,
        rounds: u32,
    },
    Events {
        config: EventsConfig,
        pool_bytes: u64,
    },
}

/// Defaults a preset gives the common parameters.
struct Defaults {
    live: usize,
    min: usize,
    max: usize,
    lifetime: Lifetime,
    phase: Phase,
    align: &'static str,
    realloc: f64,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            live: 4 << 20,
            min: 1,
            max: 1 << 20,
            lifetime: Lifetime::Exponential,
            phase: Phase::Steady,
            align: "unspecified",
            realloc: 0.0,
        }
    }
}

/// Default number of ops for every workload.
pub const DEFAULT_OPS: u64 = 100_000;

impl SyntheticSpec {
    /// Is `name` a preset or distribution family?
    pub fn is_known(name: &str) -> bool {
        PRESETS.iter().any(|(preset, _)| *preset == name)
    }

    /// Parse `NAME[:key=value,…]`.
    pub fn parse(text: &str) -> Result<SyntheticSpec, TraceError> {
        let error = |message: String| TraceError::Workload { workload: text.to_string(), message };
        let spec: Spec = text.parse().map_err(|e: heaplab_core::SpecError| error(e.message))?;
        let name = spec.family().to_string();
        if !SyntheticSpec::is_known(&name) {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            let closest = heaplab_core::spec::did_you_mean(&name, &names);
            return Err(error(format!(
                "unknown workload `{name}`{closest}; the synthetic ones are {}, and a trace file works too",
                names.join(", ")
            )));
        }
        let mut reader = spec.reader();
        // The fragmenter's length follows from its sizes; every other
        // workload has an exact op count.
        // kernel-events counts events, not ops.
        let scripted = matches!(name.as_str(), "fragmenter" | "vmalloc-vs-contiguous" | "kernel-events");
        let ops = if scripted {
            0
        } else {
            reader.parse("ops", "a whole number", DEFAULT_OPS).map_err(|e| error(e.message))?
        };
        let input = if name == "empirical" { spec.reader().raw("file").map(PathBuf::from) } else { None };
        let (shape, params) = parse_shape(&name, &mut reader).map_err(error)?;
        reader.finish().map_err(|e| error(e.message))?;
        let canonical = if scripted { format!("{name}:{params}") } else { format!("{name}:ops={ops},{params}") };
        Ok(SyntheticSpec { canonical, name, input, ops, shape })
    }

    /// The canonical spec: every parameter written out.
    pub fn spec(&self) -> &str {
        &self.canonical
    }

    /// The preset or family name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the spec reads its sizes from (`empirical:file=PATH`), if any.
    pub fn input_file(&self) -> Option<&Path> {
        self.input.as_deref()
    }

    /// Does the seed change the ops? (The fragmenter and the
    /// vmalloc-vs-contiguous script are fully scripted.)
    pub fn is_seeded(&self) -> bool {
        !matches!(self.shape, Shape::Fragmenter { .. } | Shape::Contiguous { .. })
    }

    /// Do the ops go to levels other than user memory (a native trace of
    /// them keeps the levels)?
    pub fn has_levels(&self) -> bool {
        matches!(self.shape, Shape::Contiguous { .. } | Shape::Events { .. })
    }

    /// The arena the workload is designed for, if it needs a particular one
    /// (the fragmenter must fill memory to show anything).
    pub fn suggested_arena(&self) -> Option<u64> {
        match self.shape {
            Shape::Fragmenter { live_bytes, .. } => Some(live_bytes + live_bytes / 4),
            // The pool it fills, exactly: a fuller one is the point.
            Shape::Contiguous { pool_bytes, .. } | Shape::Events { pool_bytes, .. } => Some(pool_bytes),
            _ => None,
        }
    }

    /// The ops for `seed`, generated on demand.
    pub fn generate(&self, seed: u64) -> Result<Box<dyn Iterator<Item = Op> + Send>, TraceError> {
        let error = |message: String| TraceError::Workload { workload: self.canonical.clone(), message };
        Ok(match &self.shape {
            Shape::Tracking { sizes, min_size, max_size, live_bytes, lifetime, phase, align, realloc } => {
                let config = Tracking {
                    ops: self.ops,
                    sizes: sizes.sampler().map_err(error)?,
                    min_size: *min_size,
                    max_size: *max_size,
                    aligns: align.sampler().map_err(error)?,
                    lifetime: *lifetime,
                    phase: *phase,
                    live_bytes: *live_bytes,
                    realloc: *realloc,
                };
                Box::new(TrackingGen::new(config, seed))
            }
            Shape::Larson { slots, min_size, max_size, align } => {
                Box::new(LarsonGen::new(self.ops, *slots, *min_size, *max_size, *align, seed))
            }
            Shape::Fragmenter { small, large, live_bytes, align } => {
                let count = u32::try_from(live_bytes / small).map_err(|_| error("too many small blocks".into()))?;
                Box::new(FragmenterGen::new(count, *small, *large, *align))
            }
            Shape::Contiguous { pool_bytes, order, rounds } => {
                let pages =
                    u32::try_from(pool_bytes / ContiguousGen::PAGE).map_err(|_| error("too many pages".into()))?;
                Box::new(ContiguousGen::new(pages, *order, *rounds))
            }
            Shape::Events { config, .. } => Box::new(EventsGen::new(config.clone(), seed)),
        })
    }
}

fn size_param(reader: &mut ParamReader<'_>, key: &'static str, default: usize) -> Result<u64, String> {
    reader.size(key, default).map(|v| v as u64).map_err(|e| e.message)
}

fn float_param(reader: &mut ParamReader<'_>, key: &'static str, default: f64) -> Result<f64, String> {
    let value: f64 = reader.parse(key, "a number", default).map_err(|e| e.message)?;
    if value.is_finite() { Ok(value) } else { Err(format!("`{key}` must be a finite number")) }
}

fn single_align(reader: &mut ParamReader<'_>, default: &str) -> Result<Align, String> {
    let text = reader.raw("align").unwrap_or(default).to_string();
    match AlignDist::parse(&text)?.choices.as_slice() {
        [(align, _)] => Ok(*align),
        _ => Err("`align` must be one alignment for this workload".into()),
    }
}

fn align_word(align: Align) -> String {
    AlignDist::fixed(align).spec()
}

/// Read the shape parameters of workload `name`; returns the shape and its
/// canonical parameter text.
fn parse_shape(name: &str, reader: &mut ParamReader<'_>) -> Result<(Shape, String), String> {
    match name {
        "larson" => {
            let slots: usize = reader.parse("slots", "a whole number", 5000).map_err(|e| e.message)?;
            let min_size = size_param(reader, "min", 8)?;
            let max_size = size_param(reader, "max", 1000)?;
            let align = single_align(reader, "unspecified")?;
            if min_size > max_size || slots == 0 {
                return Err("larson needs min <= max and at least one slot".into());
            }
            let params = format!("slots={slots},min={min_size},max={max_size},align={}", align_word(align));
            return Ok((Shape::Larson { slots, min_size, max_size, align }, params));
        }
        "fragmenter" => {
            let small = size_param(reader, "small", 64)?;
            let large = size_param(reader, "large", 4096)?;
            let live_bytes = size_param(reader, "live", 1 << 20)?;
            let align = single_align(reader, "unspecified")?;
            if small == 0 || large == 0 || live_bytes < small {
                return Err("the fragmenter needs small > 0, large > 0 and live >= small".into());
            }
            let params = format!(
                "small={},large={},live={},align={}",
                format_size(small as usize),
                format_size(large as usize),
                format_size(live_bytes as usize),
                align_word(align)
            );
            return Ok((Shape::Fragmenter { small, large, live_bytes, align }, params));
        }
        "vmalloc-vs-contiguous" => {
            let pool_bytes = size_param(reader, "pool", 4 << 20)?;
            let order: u32 = reader.parse("order", "a page order from 1 to 10", 4).map_err(|e| e.message)?;
            if !(1..=10).contains(&order) {
                return Err(format!("`order` must be 1 to 10 (a request of 2 to 1024 pages), found {order}"));
            }
            let pages = pool_bytes / ContiguousGen::PAGE;
            if pages < 4 << order || pages > u64::from(u32::MAX / 2) {
                return Err(format!(
                    "`pool` must hold at least {} pages (four requests of order {order}) and at most 2^31 pages, found {pages}",
                    4 << order
                ));
            }
            // Three quarters of the freed half, so that every vmalloc can be
            // served (its page tables take a few pages too).
            let default_rounds = ((pages / 2 * 3 / 4) >> order) as u32;
            let rounds: u32 = reader.parse("rounds", "a whole number", default_rounds).map_err(|e| e.message)?;
            if rounds == 0 || u64::from(rounds) > pages {
                return Err(format!("`rounds` must be 1 to the pool's {pages} pages, found {rounds}"));
            }
            let params = format!("pool={},order={order},rounds={rounds}", format_size(pool_bytes as usize));
            return Ok((Shape::Contiguous { pool_bytes, order, rounds }, params));
        }
        "kernel-events" => return parse_events(reader),
        _ => {}
    }
    let mut defaults = Defaults::default();
    let (sizes, size_text) = match name {
        "small-objects" => {
            defaults.live = 1 << 20;
            let exponent = float_param(reader, "s", 1.2)?;
            (SizeDist::Zipf { classes: (1..=32).map(|k| 8 * k).collect(), exponent }, format!("s={exponent}"))
        }
        "mixed-sizes" => {
            defaults.live = 8 << 20;
            defaults.realloc = 0.02;
            let small = SizeDist::LogNormal { median: 48.0, sigma: 1.0 };
            let medium = SizeDist::LogNormal { median: 2048.0, sigma: 1.5 };
            (SizeDist::Mixture(vec![(0.75, small), (0.25, medium)]), String::new())
        }
        "ramp" | "peak" | "plateau" => {
            defaults.live = 8 << 20;
            defaults.phase = choice_from(&PHASES, name);
            let median = float_param(reader, "median", 128.0)?;
            let sigma = float_param(reader, "sigma", 1.2)?;
            (SizeDist::LogNormal { median, sigma }, format!("median={median},sigma={sigma}"))
        }
        "kernel-pages" => {
            defaults.live = 16 << 20;
            defaults.max = 4 << 20;
            defaults.align = "4096";
            let sizes = (0..=10).map(|order| 4096u64 << order).collect();
            (SizeDist::Empirical { sizes, weights: PAGE_ORDER_WEIGHTS.to_vec() }, String::new())
        }
        "kmalloc-mix" => {
            let (sizes, weights) = KMALLOC_MIX.iter().copied().unzip();
            (SizeDist::Empirical { sizes, weights }, String::new())
        }
        "constant" => {
            let size = size_param(reader, "size", 64)?;
            (SizeDist::Constant(size), format!("size={size}"))
        }
        "uniform" => {
            // The distribution's bounds are the clamp's: read below.
            (SizeDist::Uniform { min: 0, max: 0 }, String::new())
        }
        "normal" => {
            let mean = float_param(reader, "mean", 256.0)?;
            let sd = float_param(reader, "sd", 64.0)?;
            (SizeDist::Normal { mean, sd }, format!("mean={mean},sd={sd}"))
        }
        "lognormal" => {
            let median = float_param(reader, "median", 64.0)?;
            let sigma = float_param(reader, "sigma", 1.5)?;
            (SizeDist::LogNormal { median, sigma }, format!("median={median},sigma={sigma}"))
        }
        "exponential" => {
            let mean = float_param(reader, "mean", 128.0)?;
            (SizeDist::Exponential { mean }, format!("mean={mean}"))
        }
        "pareto" => {
            let scale = float_param(reader, "scale", 16.0)?;
            let shape = float_param(reader, "shape", 1.5)?;
            (SizeDist::Pareto { scale, shape }, format!("scale={scale},shape={shape}"))
        }
        "zipf" => {
            let text = reader.raw("classes").unwrap_or("16/32/64/128/256/512/1024").to_string();
            let classes: Vec<u64> = text
                .split('/')
                .map(|c| heaplab_core::spec::parse_size(c).map(|v| v as u64))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("`classes`: {e}"))?;
            let exponent = float_param(reader, "s", 1.0)?;
            (SizeDist::Zipf { classes, exponent }, format!("classes={text},s={exponent}"))
        }
        "empirical" => {
            let Some(file) = reader.raw("file").map(PathBuf::from) else {
                return Err("`empirical` needs `file=PATH` (a CSV of size,weight rows)".into());
            };
            let dist = SizeDist::from_csv(&file).map_err(|e| e.to_string())?;
            (dist, format!("file={}", file.display()))
        }
        _ => unreachable!("checked against PRESETS"),
    };
    let live_bytes = size_param(reader, "live", defaults.live)?;
    let min_size = size_param(reader, "min", defaults.min)?;
    let max_size = size_param(reader, "max", defaults.max)?;
    let lifetime = reader.choice("lifetime", &LIFETIMES, defaults.lifetime).map_err(|e| e.message)?;
    let phase = reader.choice("phase", &PHASES, defaults.phase).map_err(|e| e.message)?;
    let align_text = reader.raw("align").unwrap_or(defaults.align).to_string();
    let align = AlignDist::parse(&align_text)?;
    let realloc = float_param(reader, "realloc", defaults.realloc)?;
    if min_size > max_size {
        return Err(format!("`min` ({min_size}) must not exceed `max` ({max_size})"));
    }
    if !(0.0..=1.0).contains(&realloc) {
        return Err(format!("`realloc` is a probability, found {realloc}"));
    }
    let sizes = match sizes {
        SizeDist::Uniform { .. } => SizeDist::Uniform { min: min_size, max: max_size },
        other => other,
    };
    sizes.sampler()?;
    align.sampler()?;
    let mut params = vec![size_text];
    params.push(format!(
        "live={},min={},max={},lifetime={},phase={},align={},realloc={realloc}",
        format_size(live_bytes as usize),
        format_size(min_size as usize),
        format_size(max_size as usize),
        choice_name(&LIFETIMES, lifetime),
        choice_name(&PHASES, phase),
        align.spec()
    ));
    params.retain(|p| !p.is_empty());
    let shape = Shape::Tracking { sizes, min_size, max_size, live_bytes, lifetime, phase, align, realloc };
    Ok((shape, params.join(",")))
}

/// The workloads a `kernel-events` process can run as its malloc traffic:
/// the user-memory presets and the size families (`empirical` reads a file,
/// whose path the nested syntax cannot carry).
const MALLOC_TRAFFIC: [&str; 13] = [
    "small-objects",
    "mixed-sizes",
    "ramp",
    "peak",
    "plateau",
    "larson",
    "constant",
    "uniform",
    "normal",
    "lognormal",
    "exponential",
    "pareto",
    "zipf",
];

/// `kernel-events`: `events`, `procs`, `threads`, `mix` (a named mix or
/// `fork:3/exec:2/…` weights), `pages` (most faulted by one event), `stack`
/// (`pages` or `vmap`) and `pool` (the pool it is meant for).
fn parse_events(reader: &mut ParamReader<'_>) -> Result<(Shape, String), String> {
    let events: u64 = reader.parse("events", "a whole number", 4000).map_err(|e| e.message)?;
    let procs: u32 = reader.parse("procs", "a whole number", 32).map_err(|e| e.message)?;
    let threads: u32 = reader.parse("threads", "a whole number", 4).map_err(|e| e.message)?;
    let fault_pages: u32 = reader.parse("pages", "a whole number", 16).map_err(|e| e.message)?;
    let pool_bytes = size_param(reader, "pool", 16 << 20)?;
    let vmap_stack = reader.choice("stack", &[("pages", false), ("vmap", true)], false).map_err(|e| e.message)?;
    let mix_text = reader.raw("mix").unwrap_or("balanced").to_string();
    let mix = parse_mix(&mix_text)?;
    // Bounds that keep one run's live set and length finite and sensible.
    if !(1..=100_000_000).contains(&events) {
        return Err(format!("`events` must be 1 to 100000000, found {events}"));
    }
    if !(1..=4096).contains(&procs) || !(1..=1024).contains(&threads) || !(1..=65536).contains(&fault_pages) {
        return Err(format!(
            "kernel-events needs procs 1 to 4096, threads 1 to 1024 and pages 1 to 65536, found procs={procs}, threads={threads}, pages={fault_pages}"
        ));
    }
    if pool_bytes < 1 << 20 {
        return Err(format!("`pool` must be at least 1M, found {}", format_size(pool_bytes as usize)));
    }
    let mut params = format!(
        "events={events},procs={procs},threads={threads},mix={mix_text},pages={fault_pages},stack={},pool={}",
        if vmap_stack { "vmap" } else { "pages" },
        format_size(pool_bytes as usize)
    );
    // Each process's malloc traffic: a user-memory workload written
    // `name/key:value/…` (`=` and `,` are the outer spec's).
    let malloc_text = reader.raw("malloc").unwrap_or("none").to_string();
    let malloc_ops: u32 = reader.parse("malloc_ops", "a whole number", 32).map_err(|e| e.message)?;
    if malloc_text == "none" && reader.raw("malloc_ops").is_some() {
        return Err("`malloc_ops` is the length of `malloc=` traffic: give `malloc=` too".into());
    }
    let malloc = if malloc_text == "none" {
        None
    } else {
        let mut parts = malloc_text.split('/');
        let name = parts.next().unwrap_or_default();
        if !MALLOC_TRAFFIC.contains(&name) {
            return Err(format!(
                "`malloc={malloc_text}`: a process's traffic is one of the user-memory workloads {} (parameters written name/key:value/…), found `{name}`",
                MALLOC_TRAFFIC.join(", ")
            ));
        }
        let inner: Vec<String> = parts.map(|part| part.replacen(':', "=", 1)).collect();
        let text = if inner.is_empty() { name.to_string() } else { format!("{name}:{}", inner.join(",")) };
        let spec = SyntheticSpec::parse(&text).map_err(|error| format!("`malloc={malloc_text}`: {error}"))?;
        if procs > 255 {
            return Err(format!("with malloc traffic, `procs` is at most 255 (one address space each), found {procs}"));
        }
        if malloc_ops == 0 || malloc_ops > 1_000_000 {
            return Err(format!("`malloc_ops` must be 1 to 1000000, found {malloc_ops}"));
        }
        drop(spec.generate(0).map_err(|error| format!("`malloc={malloc_text}`: {error}"))?);
        let canonical = spec.spec().to_string();
        let nested = match canonical.split_once(':') {
            Some((name, inner)) => format!("{name}/{}", inner.replace('=', ":").replace(',', "/")),
            None => canonical,
        };
        params.push_str(&format!(",malloc={nested},malloc_ops={malloc_ops}"));
        Some(Box::new(spec))
    };
    let config = EventsConfig { events, procs, threads, mix, fault_pages, vmap_stack, malloc, malloc_ops };
    Ok((Shape::Events { config, pool_bytes }, params))
}

/// A named mix, or weights `event:weight/…` over the events (those not
/// named weigh 0).
fn parse_mix(text: &str) -> Result<[u32; 9], String> {
    if let Some((_, weights)) = MIXES.iter().find(|(name, _)| *name == text) {
        return Ok(*weights);
    }
    let names: Vec<&str> = MIXES.iter().map(|(name, _)| *name).collect();
    let expected = || {
        let events: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
        format!("`mix` is one of {} or weights like fork:3/exit:2 over {}", names.join(", "), events.join(", "))
    };
    if !text.contains(':') {
        return Err(format!("{}, found `{text}`", expected()));
    }
    let mut weights = [0u32; 9];
    for part in text.split('/') {
        let Some((name, weight)) = part.split_once(':') else {
            return Err(format!("{}, found `{part}`", expected()));
        };
        let Some(index) = Event::ALL.iter().position(|e| e.name() == name) else {
            return Err(format!("{}, found the event `{name}`", expected()));
        };
        weights[index] = weight
            .parse()
            .map_err(|_| format!("`mix`: the weight of {name} must be a whole number, found `{weight}`"))?;
    }
    if weights.iter().all(|&w| w == 0) {
        return Err("`mix` needs at least one event of non-zero weight".into());
    }
    Ok(weights)
}

fn choice_from<T: Copy>(table: &[(&str, T)], name: &str) -> T {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).expect("name in table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_specs_parse_back_to_themselves() {
        for (name, _) in PRESETS.iter().filter(|(name, _)| *name != "empirical") {
            let spec = SyntheticSpec::parse(name).unwrap();
            let again = SyntheticSpec::parse(spec.spec()).unwrap();
            assert_eq!(again, spec, "{name}");
        }
        let spec = SyntheticSpec::parse("lognormal:median=100,ops=5,lifetime=fifo,align=16:0.5/64:0.5").unwrap();
        assert_eq!(
            spec.spec(),
            "lognormal:ops=5,median=100,sigma=1.5,live=4M,min=1,max=1M,lifetime=fifo,phase=steady,align=16:0.5/64:0.5,realloc=0"
        );
    }

    #[test]
    fn bad_workloads_say_what_was_expected() {
        for (text, message) in [
            ("nosuch", "unknown workload `nosuch`"),
            ("rmap", "unknown workload `rmap` (did you mean `ramp`?)"),
            ("lognormal:sigma=-1", "sigma must be a positive number"),
            ("lognormal:colour=red", "unknown parameter `colour`"),
            ("uniform:min=10,max=5", "must not exceed"),
            ("ramp:lifetime=forever", "`lifetime` must be one of exp, uniform, lifo, fifo, random"),
            ("ramp:realloc=2", "`realloc` is a probability"),
            ("zipf:classes=16/x", "`classes`"),
            ("empirical", "needs `file=PATH`"),
            ("empirical:file=/nonexistent.csv", "/nonexistent.csv"),
            ("larson:align=16/64", "one alignment"),
            ("fragmenter:small=0", "small > 0"),
            ("kernel-events:mix=forky", "`mix` is one of balanced, fork-heavy, mmap-heavy"),
            ("kernel-events:mix=fork:1/spawn:2", "found the event `spawn`"),
            ("kernel-events:mix=fork:x", "the weight of fork must be a whole number"),
            ("kernel-events:mix=fork:0", "non-zero weight"),
            ("kernel-events:procs=0", "procs 1 to 4096"),
            ("kernel-events:procs=300,malloc=small-objects", "`procs` is at most 255"),
            ("kernel-events:malloc=fragmenter", "one of the user-memory workloads small-objects"),
            ("kernel-events:malloc=kmalloc-mix", "found `kmalloc-mix`"),
            ("kernel-events:malloc_ops=8", "give `malloc=` too"),
            ("kernel-events:malloc=small-objects/live:x", "`malloc=small-objects/live:x`"),
            ("kernel-events:stack=heap", "`stack` must be one of pages, vmap"),
            ("ramp:ops=many", "`ops` must be a whole number"),
        ] {
            let error = SyntheticSpec::parse(text).unwrap_err().to_string();
            assert!(error.contains(message), "{text}: {error}");
        }
    }

    #[test]
    fn the_fragmenter_suggests_an_arena_it_can_fill() {
        assert_eq!(SyntheticSpec::parse("fragmenter").unwrap().suggested_arena(), Some(1_310_720));
        assert_eq!(SyntheticSpec::parse("ramp").unwrap().suggested_arena(), None);
    }

    #[test]
    fn every_preset_generates_exactly_its_ops() {
        for (name, _) in PRESETS.iter().filter(|(name, _)| {
            !matches!(*name, "empirical" | "fragmenter" | "vmalloc-vs-contiguous" | "kernel-events")
        }) {
            let spec = SyntheticSpec::parse(&format!("{name}:ops=5000")).unwrap();
            assert_eq!(spec.generate(1).unwrap().count(), 5000, "{name}");
        }
    }
}
