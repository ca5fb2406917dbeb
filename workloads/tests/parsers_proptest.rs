//! Property tests: no parser panics on any input, and every format reads
//! back what it wrote.

use heaplab_workloads::formats::{Format, TraceReader, native::NativeWriter};
use heaplab_workloads::{Align, Op};
use proptest::prelude::*;

/// Read `bytes` as `format` to the end or the first error; must not panic.
fn read(bytes: Vec<u8>, format: Format) -> Result<Vec<Op>, String> {
    let reader =
        TraceReader::from_reader(std::io::Cursor::new(bytes), "prop", Some(format)).map_err(|e| e.to_string())?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

/// A valid op sequence: ids in allocation order, never reused, every block
/// freed; sizes and alignments as given. A resize to 0 bytes has no .rep
/// spelling (mdriver frees on `r ID 0`, and the writer refuses it), so only
/// traces for native alone ask for `zero_resizes`.
fn valid_ops(max_len: usize, with_align: bool, zero_resizes: bool) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((0u8..4, 0u64..100_000, 0u8..13, any::<prop::sample::Index>()), 0..max_len).prop_map(
        move |steps| {
            let mut ops = Vec::new();
            let mut live: Vec<u32> = Vec::new();
            let mut next = 0u32;
            for (action, size, align, pick) in steps {
                match action {
                    0 | 1 => {
                        let align = if with_align { Align::from_log2(align).unwrap() } else { Align::UNSPECIFIED };
                        ops.push(Op::alloc(next, size, align));
                        live.push(next);
                        next += 1;
                    }
                    2 if !live.is_empty() => ops.push(Op::Free { id: live.swap_remove(pick.index(live.len())) }),
                    3 if !live.is_empty() => {
                        let size = if zero_resizes { size } else { size.max(1) };
                        ops.push(Op::Realloc { id: live[pick.index(live.len())], size })
                    }
                    _ => {}
                }
            }
            ops.extend(live.into_iter().map(|id| Op::Free { id }));
            ops
        },
    )
}

fn encode(ops: &[Op], format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        Format::Native => {
            let mut writer = NativeWriter::new(&mut out, "prop").unwrap();
            for op in ops {
                writer.push(op).unwrap();
            }
            writer.finish().unwrap();
        }
        Format::Rep => heaplab_workloads::formats::rep::write_rep(&mut out, ops).unwrap(),
        Format::Mtrace => heaplab_workloads::formats::mtrace::write_mtrace(&mut out, ops.iter().copied()).unwrap(),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_any_parser(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        for format in Format::ALL {
            let _ = read(bytes.clone(), format);
        }
    }

    #[test]
    fn random_text_lines_never_panic_the_text_parsers(lines in prop::collection::vec("[arf@=+<>!#-]? ?[0-9a-fx()nil -]{0,24}", 0..40)) {
        let text = lines.join("\n").into_bytes();
        let _ = read(text.clone(), Format::Rep);
        let _ = read(text, Format::Mtrace);
    }

    #[test]
    fn corrupted_native_traces_fail_cleanly(ops in valid_ops(300, true, true), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let mut bytes = encode(&ops, Format::Native);
        for (index, mask) in flips {
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
        }
        // A flipped byte must be caught (checksum, length, magic) or, in the
        // astronomically unlikely event it is not, still not panic.
        prop_assert!(read(bytes, Format::Native).is_err());
    }

    #[test]
    fn truncated_native_traces_fail_cleanly(ops in valid_ops(300, true, true), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&ops, Format::Native);
        let cut = cut.index(bytes.len());
        prop_assert!(read(bytes[..cut].to_vec(), Format::Native).is_err());
    }

    #[test]
    fn native_round_trips_any_valid_trace(ops in valid_ops(500, true, true)) {
        prop_assert_eq!(read(encode(&ops, Format::Native), Format::Native).unwrap(), ops);
    }

    #[test]
    fn text_formats_round_trip_traces_without_alignment(ops in valid_ops(300, false, false)) {
        for format in [Format::Rep, Format::Mtrace] {
            prop_assert_eq!(&read(encode(&ops, format), format).unwrap(), &ops, "{}", format);
        }
    }

    #[test]
    fn rep_to_native_to_rep_is_lossless(ops in valid_ops(300, false, false)) {
        let rep = encode(&ops, Format::Rep);
        let through_native = read(encode(&read(rep.clone(), Format::Rep).unwrap(), Format::Native), Format::Native).unwrap();
        prop_assert_eq!(encode(&through_native, Format::Rep), rep);
    }
}

/// One edit of a valid file, as damage, a bad editor or a hostile user
/// makes it.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, Vec<u8>),
    DuplicateLine(prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<prop::sample::Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::DuplicateLine),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::Flip(at, mask) => {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        Mutation::Delete(at, count) => {
            let at = at.index(bytes.len());
            let end = (at + count).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Insert(at, inserted) => {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
        Mutation::DuplicateLine(at) => {
            let mut lines: Vec<Vec<u8>> = bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let at = at.index(lines.len());
            lines.insert(at, lines[at].clone());
            *bytes = lines.concat();
        }
        Mutation::SwapLines(a, b) => {
            let mut lines: Vec<Vec<u8>> = bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
            *bytes = lines.concat();
        }
        Mutation::Truncate(at) => {
            let at = at.index(bytes.len());
            bytes.truncate(at);
        }
    }
}

/// A valid trace in `format`, maybe zstd-compressed before or after the
/// damage, then damaged: reading it must not panic, and an error must name
/// the file.
fn read_mutated(ops: &[Op], format: Format, compress: u8, mutations: &[Mutation]) -> Result<(), TestCaseError> {
    let mut bytes = encode(ops, format);
    if compress == 1 {
        bytes = zstd::encode_all(bytes.as_slice(), 3).unwrap();
    }
    for mutation in mutations {
        apply(&mut bytes, mutation);
    }
    if compress == 2 {
        bytes = zstd::encode_all(bytes.as_slice(), 3).unwrap();
    }
    if let Err(error) = read(bytes, format) {
        prop_assert!(error.starts_with("prop"), "an error that does not name the file: {error}");
    }
    Ok(())
}

fn any_format() -> impl Strategy<Value = Format> {
    prop::sample::select(Format::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// A few thousand damaged traces in every test run.
    #[test]
    fn mutated_valid_traces_never_panic_and_their_errors_name_the_file(
        ops in valid_ops(120, false, false),
        format in any_format(),
        compress in 0u8..3,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        read_mutated(&ops, format, compress, &mutations)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200_000, ..ProptestConfig::default() })]

    /// The long run: `cargo test -p heaplab-workloads --test parsers_proptest -- --ignored`.
    #[test]
    #[ignore = "200,000 damaged traces; run with --ignored"]
    fn many_mutated_valid_traces_never_panic(
        ops in valid_ops(400, true, false),
        format in any_format(),
        compress in 0u8..3,
        mutations in prop::collection::vec(mutation(), 1..12),
    ) {
        read_mutated(&ops, format, compress, &mutations)?;
    }
}
