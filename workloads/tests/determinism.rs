//! Same preset + seed → the same ops, on every run and machine. The hashes
//! below were taken when the generators were written; a change to a
//! generator (or to the RNG or distribution crates it uses) that alters any
//! op fails this test, which is the point: results keyed by spec and seed
//! would silently stop being reproducible. If a change is intended, update
//! the hash in the same commit and say so.

use heaplab_workloads::synth::{PRESETS, SyntheticSpec};
use heaplab_workloads::{Level, Op, formats};

/// FNV-1a over every op's fields, little-endian.
fn fingerprint(ops: impl Iterator<Item = Op>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for op in ops {
        match op {
            Op::Alloc { id, size, align, level, .. } => {
                eat(&[0]);
                eat(&id.to_le_bytes());
                eat(&size.to_le_bytes());
                eat(&align.bytes().unwrap_or(0).to_le_bytes());
                // Added with levels: user memory hashes as it did before.
                if level != Level::User {
                    eat(&[level as u8]);
                }
            }
            Op::Free { id } => {
                eat(&[1]);
                eat(&id.to_le_bytes());
            }
            Op::Realloc { id, size } => {
                eat(&[2]);
                eat(&id.to_le_bytes());
                eat(&size.to_le_bytes());
            }
        }
    }
    hash
}

fn generate(text: &str, seed: u64) -> Vec<Op> {
    SyntheticSpec::parse(text).unwrap().generate(seed).unwrap().collect()
}

const PINNED: &[(&str, u64)] = &[
    ("small-objects:ops=20000", 0x804010ac1d05f752),
    ("mixed-sizes:ops=20000", 0xd5244051dfd8eb3f),
    ("ramp:ops=20000", 0x9cb74935647b6fb9),
    ("peak:ops=20000", 0x26e2326c4430f5bb),
    ("plateau:ops=20000", 0x305518008102c837),
    ("larson:ops=20000", 0x424125c03c22a314),
    ("kernel-pages:ops=20000", 0x0912a70f7a57c4cc),
    ("kmalloc-mix:ops=20000", 0xe1cbbb1157860504),
    ("fragmenter:live=64K", 0x8b6654c1439e0f95),
    ("vmalloc-vs-contiguous:pool=256K", 0xd15f62a5e06712c6),
    ("kernel-events:events=500", 0x60b939c1155854f9),
    ("constant:ops=20000,lifetime=random", 0x6b8b3f5b1d5c5779),
    ("uniform:ops=20000,min=8,max=512,lifetime=fifo", 0xca1837add67c15e4),
    ("normal:ops=20000,lifetime=lifo", 0x44603fa236a62ef3),
    ("lognormal:ops=20000,lifetime=uniform,align=16:0.9/4096:0.1", 0xec4d8b1a30a49942),
    ("exponential:ops=20000,realloc=0.1", 0x34ddafe60b77cc4b),
    ("pareto:ops=20000,max=64K", 0xc9ea3b65ab20071e),
    ("zipf:ops=20000", 0xb736c096627c4737),
];

#[test]
fn generated_ops_match_their_pinned_fingerprints() {
    let mut mismatches = Vec::new();
    for &(spec, pinned) in PINNED {
        let hash = fingerprint(generate(spec, 42).into_iter());
        if hash != pinned {
            mismatches.push(format!("(\"{spec}\", {hash:#018x}),"));
        }
    }
    assert!(mismatches.is_empty(), "generator output changed; new fingerprints:\n{}", mismatches.join("\n"));
}

#[test]
fn every_preset_is_pinned() {
    for (name, _) in PRESETS.iter().filter(|(name, _)| *name != "empirical") {
        assert!(
            PINNED.iter().any(|(spec, _)| spec.split(':').next() == Some(name)),
            "{name} has no pinned fingerprint"
        );
    }
}

#[test]
fn seeds_matter_and_runs_repeat() {
    assert_eq!(generate("ramp:ops=5000", 1), generate("ramp:ops=5000", 1));
    assert_ne!(generate("ramp:ops=5000", 1), generate("ramp:ops=5000", 2));
}

#[test]
fn the_same_seed_writes_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str| {
        let path = dir.path().join(name);
        let ops = SyntheticSpec::parse("mixed-sizes:ops=20000").unwrap().generate(7).unwrap().map(Ok);
        formats::write(&path, None, ops, "mixed-sizes seed 7").unwrap();
        std::fs::read(path).unwrap()
    };
    for (a, b) in [("a.hlt", "b.hlt"), ("a.rep", "b.rep"), ("a.hlt.zst", "b.hlt.zst")] {
        assert_eq!(write(a), write(b), "{a}");
    }
}
