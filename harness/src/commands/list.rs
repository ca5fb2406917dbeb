//! `heaplab list`: the allocator configurations this build knows.

use std::io::{self, Write};

use clap::Args;
use heaplab::registry::{self, AllocatorSpec};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Specs to validate, shell-style patterns to filter by, or sweeps to
    /// expand (`segregated:kind=tlsf,sl=1..=5`, `buddy:min=16|32`).
    #[arg(value_name = "SPEC|PATTERN")]
    selections: Vec<String>,

    /// Print only canonical specs, one per line (for scripts).
    #[arg(long)]
    names: bool,
}

/// List, filter or validate allocator specs.
pub fn run(args: &ListArgs) -> anyhow::Result<()> {
    let mut selected: Vec<AllocatorSpec> = Vec::new();
    if args.selections.is_empty() {
        selected = registry::listed_specs();
    } else {
        for selection in &args.selections {
            for expanded in heaplab_core::spec::expand(selection)? {
                selected.extend(registry::select(&expanded)?);
            }
        }
    }
    let mut out = io::stdout().lock();
    if args.names {
        for spec in &selected {
            writeln!(out, "{}", spec.spec())?;
        }
        return Ok(());
    }
    for family in registry::families() {
        let members: Vec<&AllocatorSpec> = selected.iter().filter(|spec| spec.family() == family.name).collect();
        if members.is_empty() {
            continue;
        }
        let width = members.iter().map(|spec| spec.spec().len()).max().unwrap_or(0);
        writeln!(out, "{}: {}", family.name, family.summary)?;
        for spec in members {
            writeln!(out, "  {:width$}  {}", spec.spec(), spec.describe())?;
        }
        writeln!(out)?;
    }
    if args.selections.is_empty() {
        use heaplab_core::concurrent::{CacheParams, LayerKind};
        writeln!(out, "layers: thread-safe layers over any allocator in the arena, for `run --threads`: LAYER/SPEC")?;
        let layers = [LayerKind::Locked, LayerKind::Cached(CacheParams::default())];
        let width = layers.iter().map(|l| l.spec().len() + 5).max().unwrap_or(0);
        for layer in layers {
            writeln!(out, "  {:width$}  {}", format!("{}/SPEC", layer.spec()), layer.describe())?;
        }
        let safe: Vec<String> = selected.iter().filter(|s| s.is_thread_safe()).map(|s| s.spec()).collect();
        writeln!(out, "  thread-safe as they are (their own thread caches): {}", safe.join(", "))?;
        writeln!(
            out,
            "  `cached` parameters: mag (blocks per magazine), depot (full magazines kept per class), max (largest cached request)"
        )?;
    }
    Ok(())
}
