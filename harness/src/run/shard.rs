//! Shards: one run split over the tasks of a batch engine (a Slurm job
//! array, a Kubernetes Indexed Job, a CI matrix), each task a complete
//! results directory, joined again by `heaplab merge`.
//!
//! The unit is the (workload, seed) group: every allocator of a group runs
//! in the same shard, so the timed figures of one comparison never mix
//! machines. Groups are ranked by canonical workload name, then seed, and
//! the group of rank `r` goes to shard `r mod N + 1`: the assignment
//! depends only on the set of groups (not on the order of the options, nor
//! on a hasher that could change), and shard sizes differ by at most one
//! group.

use heaplab_results::Shard;
use heaplab_workloads::Workload;

/// The most shards a run is split into.
pub const MAX_SHARDS: usize = 100_000;

/// What `--shard` says: a shard, or `auto/N`, which the batch engine's
/// environment completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// `K/N`.
    Fixed(Shard),
    /// `auto/N`.
    Auto(usize),
}

/// Read `K/N` or `auto/N`.
pub fn parse_shard(text: &str) -> Result<ShardArg, String> {
    let expected = || format!("expected K/N (1 ≤ K ≤ N ≤ {MAX_SHARDS}) or auto/N, found `{text}`");
    let (index, count) = text.split_once('/').ok_or_else(expected)?;
    let count: usize = count.trim().parse().map_err(|_| expected())?;
    if count == 0 || count > MAX_SHARDS {
        return Err(expected());
    }
    if index.trim() == "auto" {
        return Ok(ShardArg::Auto(count));
    }
    let index: usize = index.trim().parse().map_err(|_| expected())?;
    if index == 0 || index > count {
        return Err(expected());
    }
    Ok(ShardArg::Fixed(Shard { index, count }))
}

/// The shard `arg` names, `auto/N` taken from the environment (`var`):
/// Slurm's `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN + 1`, with
/// `SLURM_ARRAY_TASK_COUNT` = N, or Kubernetes' `JOB_COMPLETION_INDEX + 1`.
pub fn resolve(arg: ShardArg, var: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let count = match arg {
        ShardArg::Fixed(shard) => return Ok(shard),
        ShardArg::Auto(count) => count,
    };
    let number = |name: &str| -> Result<Option<usize>, String> {
        match var(name) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("--shard auto/{count}: {name} is `{text}`, expected a number")),
        }
    };
    let slurm = number("SLURM_ARRAY_TASK_ID")?;
    let kubernetes = number("JOB_COMPLETION_INDEX")?;
    let index = match (slurm, kubernetes) {
        (Some(id), None) => {
            let min = number("SLURM_ARRAY_TASK_MIN")?.ok_or_else(|| {
                format!("--shard auto/{count}: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_MIN is not")
            })?;
            let tasks = number("SLURM_ARRAY_TASK_COUNT")?;
            if tasks != Some(count) {
                return Err(format!(
                    "--shard auto/{count}: the Slurm array has {} tasks (SLURM_ARRAY_TASK_COUNT), not {count}",
                    tasks.map_or("an unknown number of".to_string(), |t| t.to_string())
                ));
            }
            id.checked_sub(min).map(|k| k + 1).ok_or_else(|| {
                format!("--shard auto/{count}: SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
            })?
        }
        (None, Some(index)) => index + 1,
        (Some(_), Some(_)) => {
            return Err(format!(
                "--shard auto/{count}: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set; give --shard K/{count}"
            ));
        }
        (None, None) => {
            return Err(format!(
                "--shard auto/{count} takes the shard from a Slurm job array (SLURM_ARRAY_TASK_ID) or a Kubernetes \
                 Indexed Job (JOB_COMPLETION_INDEX), and neither is set; give --shard K/{count}"
            ));
        }
    };
    if index > count {
        return Err(format!(
            "--shard auto/{count}: the environment makes this shard {index}, above {count} (an array with a step?)"
        ));
    }
    Ok(Shard { index, count })
}

/// The (workload, seed) groups of a run, in matrix order: each workload in
/// the order given, with every seed if it is seeded.
pub fn groups(workloads: &[Workload], seeds: &[u64]) -> Vec<(String, Option<u64>)> {
    let mut groups = Vec::new();
    for workload in workloads {
        let name = workload.name();
        if workload.is_seeded() {
            groups.extend(seeds.iter().map(|&seed| (name.clone(), Some(seed))));
        } else {
            groups.push((name, None));
        }
    }
    groups
}

/// The shard (from 1) of each of `groups`, of `count` shards.
pub fn assign(groups: &[(String, Option<u64>)], count: usize) -> Vec<usize> {
    let mut ranked: Vec<usize> = (0..groups.len()).collect();
    ranked.sort_by(|&a, &b| groups[a].cmp(&groups[b]));
    let mut shard = vec![0; groups.len()];
    for (rank, &group) in ranked.iter().enumerate() {
        shard[group] = rank % count.max(1) + 1;
    }
    shard
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn shards_parse_and_refuse_what_is_not_one() {
        assert_eq!(parse_shard("2/3"), Ok(ShardArg::Fixed(Shard { index: 2, count: 3 })));
        assert_eq!(parse_shard("auto/8"), Ok(ShardArg::Auto(8)));
        for bad in ["0/3", "4/3", "3", "a/3", "1/0", "auto/0", "1/100001"] {
            assert!(parse_shard(bad).unwrap_err().contains("expected K/N"), "{bad}");
        }
    }

    #[test]
    fn auto_takes_the_shard_from_slurm_or_kubernetes_and_refuses_what_does_not_fit() {
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "12"), ("SLURM_ARRAY_TASK_MIN", "10"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
        assert_eq!(resolve(ShardArg::Auto(3), &slurm), Ok(Shard { index: 3, count: 3 }));
        assert!(resolve(ShardArg::Auto(4), &slurm).unwrap_err().contains("has 3 tasks"));
        assert_eq!(resolve(ShardArg::Auto(5), env(&[("JOB_COMPLETION_INDEX", "0")])), Ok(Shard { index: 1, count: 5 }));
        assert!(resolve(ShardArg::Auto(5), env(&[("JOB_COMPLETION_INDEX", "5")])).unwrap_err().contains("above 5"));
        assert!(resolve(ShardArg::Auto(2), env(&[])).unwrap_err().contains("neither is set"));
        let both = env(&[("SLURM_ARRAY_TASK_ID", "1"), ("JOB_COMPLETION_INDEX", "0")]);
        assert!(resolve(ShardArg::Auto(2), both).unwrap_err().contains("both"));
        assert!(resolve(ShardArg::Auto(2), env(&[("JOB_COMPLETION_INDEX", "x")])).unwrap_err().contains("`x`"));
        let fixed = Shard { index: 1, count: 2 };
        assert_eq!(resolve(ShardArg::Fixed(fixed), env(&[("JOB_COMPLETION_INDEX", "1")])), Ok(fixed));
    }

    #[test]
    fn the_assignment_is_balanced_and_ignores_the_order_of_the_options() {
        let groups: Vec<(String, Option<u64>)> =
            ["ramp", "peak", "larson"].iter().flat_map(|w| (1..=5).map(move |s| (w.to_string(), Some(s)))).collect();
        for count in 1..=20 {
            let shards = assign(&groups, count);
            let sizes: Vec<usize> = (1..=count).map(|k| shards.iter().filter(|&&s| s == k).count()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{count}: {sizes:?}");
            let mut reversed = groups.clone();
            reversed.reverse();
            let mut again = assign(&reversed, count);
            again.reverse();
            assert_eq!(shards, again, "the same group lands on the same shard, whatever the order");
        }
        // Pinned: a change of the rule would move every sharded sweep.
        assert_eq!(assign(&groups[..4], 3), [1, 2, 3, 1]);
        assert_eq!(assign(&[("b".into(), None), ("a".into(), None)], 2), [2, 1]);
    }
}
