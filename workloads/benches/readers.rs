//! Trace reader speed, `cargo bench -p heaplab-workloads`: the `.rep` text
//! reader in MB/s and the native reader in ops/s, over a 1,000,000-op
//! `mixed-sizes` trace held in memory (so the disk is not measured). The
//! native format's bytes per op are printed before the runs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heaplab_workloads::formats::TraceReader;
use heaplab_workloads::formats::native::NativeWriter;
use heaplab_workloads::formats::rep::write_rep;
use heaplab_workloads::synth::SyntheticSpec;
use heaplab_workloads::{Format, Op};

fn trace() -> Vec<Op> {
    SyntheticSpec::parse("mixed-sizes:ops=1000000").unwrap().generate(1).unwrap().collect()
}

/// Read every op, summing ids so that nothing is optimised away.
fn read_all(bytes: &'static [u8], format: Format) -> u64 {
    TraceReader::from_reader(bytes, "bench", Some(format)).unwrap().fold(0, |sum, op| sum + u64::from(op.unwrap().id()))
}

fn readers(c: &mut Criterion) {
    let ops = trace();
    let mut rep = Vec::new();
    write_rep(&mut rep, &ops).unwrap();
    let mut writer = NativeWriter::new(Vec::new(), "bench").unwrap();
    for op in &ops {
        writer.push(op).unwrap();
    }
    let native = writer.finish().unwrap().0;
    eprintln!(
        "{} ops: .rep {} bytes ({:.2} per op), native {} bytes ({:.2} per op)",
        ops.len(),
        rep.len(),
        rep.len() as f64 / ops.len() as f64,
        native.len(),
        native.len() as f64 / ops.len() as f64
    );
    let rep: &'static [u8] = rep.leak();
    let native: &'static [u8] = native.leak();

    let mut group = c.benchmark_group("read");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(rep.len() as u64));
    group.bench_function("rep (bytes)", |b| b.iter(|| read_all(black_box(rep), Format::Rep)));
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.bench_function("native (ops)", |b| b.iter(|| read_all(black_box(native), Format::Native)));
    group.finish();
}

criterion_group!(benches, readers);
criterion_main!(benches);
