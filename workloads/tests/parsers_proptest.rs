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
/// freed; sizes and alignments as given.
fn valid_ops(max_len: usize, with_align: bool) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((0u8..4, 0u64..100_000, 0u8..13, any::<prop::sample::Index>()), 0..max_len).prop_map(
        move |steps| {
            let mut ops = Vec::new();
            let mut live: Vec<u32> = Vec::new();
            let mut next = 0u32;
            for (action, size, align, pick) in steps {
                match action {
                    0 | 1 => {
                        let align = if with_align { Align::from_log2(align).unwrap() } else { Align::UNSPECIFIED };
                        ops.push(Op::Alloc { id: next, size, align });
                        live.push(next);
                        next += 1;
                    }
                    2 if !live.is_empty() => ops.push(Op::Free { id: live.swap_remove(pick.index(live.len())) }),
                    3 if !live.is_empty() => ops.push(Op::Realloc { id: live[pick.index(live.len())], size }),
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
    fn corrupted_native_traces_fail_cleanly(ops in valid_ops(300, true), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
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
    fn truncated_native_traces_fail_cleanly(ops in valid_ops(300, true), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&ops, Format::Native);
        let cut = cut.index(bytes.len());
        prop_assert!(read(bytes[..cut].to_vec(), Format::Native).is_err());
    }

    #[test]
    fn native_round_trips_any_valid_trace(ops in valid_ops(500, true)) {
        prop_assert_eq!(read(encode(&ops, Format::Native), Format::Native).unwrap(), ops);
    }

    #[test]
    fn text_formats_round_trip_traces_without_alignment(ops in valid_ops(300, false)) {
        for format in [Format::Rep, Format::Mtrace] {
            prop_assert_eq!(&read(encode(&ops, format), format).unwrap(), &ops, "{}", format);
        }
    }

    #[test]
    fn rep_to_native_to_rep_is_lossless(ops in valid_ops(300, false)) {
        let rep = encode(&ops, Format::Rep);
        let through_native = read(encode(&read(rep.clone(), Format::Rep).unwrap(), Format::Native), Format::Native).unwrap();
        prop_assert_eq!(encode(&through_native, Format::Rep), rep);
    }
}
