//! `heaplab merge`: join the shards of one run ([`heaplab::merge`]).

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use heaplab_results::ResultsDir;

/// Arguments of `heaplab merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' results directories (`heaplab run --shard K/N` wrote
    /// them), every shard once, in any order.
    #[arg(required = true, value_name = "DIR")]
    shards: Vec<PathBuf>,

    /// The merged run's name: it is written to OUT/NAME/.
    #[arg(long)]
    name: String,

    /// Where the merged run goes.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

/// Check the shards, then write the merged run.
pub fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let merged = heaplab::merge::merge(&args.shards)?;
    let mut meta = merged.meta;
    meta.run_name = args.name.clone();
    meta.date_utc = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    meta.command_line = std::env::args().collect();
    let dir = args.out.join(&args.name);
    let results = ResultsDir::create(&dir, &meta).with_context(|| format!("creating {}", dir.display()))?;
    results.write(&merged.cells).with_context(|| format!("writing {}", dir.display()))?;
    let hosts: Vec<&str> = {
        let mut hosts: Vec<&str> = meta.merged.iter().map(|m| m.hostname.as_str()).collect();
        hosts.sort();
        hosts.dedup();
        hosts
    };
    eprintln!(
        "merged {} shards ({} cells, from {} host{}) into {}",
        meta.merged.len(),
        merged.cells.len(),
        hosts.len(),
        if hosts.len() == 1 { "" } else { "s" },
        dir.display()
    );
    Ok(())
}
