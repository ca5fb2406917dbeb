//! Spec strings: an allocator configuration's identity.
//!
//! A spec is `family` or `family:key=value,key=value`, e.g.
//! `freelist:fit=best,order=address` or `buddy:min=4K`. A family whose
//! members have names rather than parameters takes a bare name first:
//! `peer:talc`. The command line
//! accepts specs and every result row carries the canonical one, so two rows
//! with the same spec were produced by the same configuration.
//!
//! Each allocator crate implements [`AllocatorConfig`] for its configuration
//! type: parse a spec, print the canonical spec, build the allocator on an
//! arena. The harness's registry needs nothing else.

use std::fmt;
use std::str::FromStr;

use crate::{Allocator, Arena, BuildError, SetupError, SpecError};

/// A parsed, not yet validated, spec string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    text: String,
    family: String,
    /// A bare name before the parameters (`peer:talc`).
    name: Option<String>,
    params: Vec<(String, String)>,
}

impl Spec {
    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The family: the part before the colon.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// The bare name after the colon, if one was given (`talc` in `peer:talc`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The `key=value` parameters, in the order written.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// A reader that takes parameters one by one and, at the end, rejects the
    /// ones nobody asked for.
    pub fn reader(&self) -> ParamReader<'_> {
        ParamReader { spec: self, taken: vec![false; self.params.len()], name_taken: false, known: Vec::new() }
    }

    /// An error about this spec.
    pub fn error(&self, message: impl Into<String>) -> SpecError {
        SpecError { spec: self.text.clone(), message: message.into() }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl FromStr for Spec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Spec, SpecError> {
        let error = |message: String| SpecError { spec: text.to_string(), message };
        let (family, rest) = match text.split_once(':') {
            Some((family, rest)) => (family, Some(rest)),
            None => (text, None),
        };
        if !is_name(family) {
            return Err(error(format!(
                "expected a family name (letters, digits, `-`, `_`) before the colon, found `{family}`"
            )));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        let mut name = None;
        if let Some(rest) = rest {
            for (index, item) in rest.split(',').enumerate() {
                if index == 0 && is_name(item) {
                    name = Some(item.to_string());
                    continue;
                }
                let Some((key, value)) = item.split_once('=') else {
                    return Err(error(format!("expected `key=value`, found `{item}`")));
                };
                if is_name(key) && value.contains('=') {
                    return Err(error(format!(
                        "expected `key=value`, found `{item}`: a value holds no `=`; a spec inside a parameter is written `name/key:value/…`"
                    )));
                }
                if !is_name(key) || value.is_empty() {
                    return Err(error(format!("expected `key=value`, found `{item}`")));
                }
                if params.iter().any(|(k, _)| k == key) {
                    return Err(error(format!("`{key}` is given twice")));
                }
                params.push((key.to_string(), value.to_string()));
            }
        }
        Ok(Spec { text: text.to_string(), family: family.to_string(), name, params })
    }
}

/// Takes a spec's parameters one at a time, with defaults, and reports the
/// ones it did not recognise.
#[derive(Debug)]
pub struct ParamReader<'a> {
    spec: &'a Spec,
    taken: Vec<bool>,
    name_taken: bool,
    known: Vec<&'static str>,
}

impl ParamReader<'_> {
    /// The bare name, for families whose members are named.
    pub fn name(&mut self) -> Option<&str> {
        self.name_taken = true;
        self.spec.name.as_deref()
    }

    /// The raw value of `key`, if given.
    pub fn raw(&mut self, key: &'static str) -> Option<&str> {
        self.known.push(key);
        let index = self.spec.params.iter().position(|(k, _)| k == key)?;
        self.taken[index] = true;
        Some(&self.spec.params[index].1)
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(&mut self, key: &'static str, options: &[(&str, T)], default: T) -> Result<T, SpecError> {
        let Some(value) = self.raw(key) else { return Ok(default) };
        match options.iter().find(|(name, _)| *name == value) {
            Some(&(_, choice)) => Ok(choice),
            None => {
                let value = value.to_string();
                let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
                Err(self.spec.error(format!("`{key}` must be one of {}, found `{value}`", names.join(", "))))
            }
        }
    }

    /// A byte size such as `4096`, `4K` or `16MiB`.
    pub fn size(&mut self, key: &'static str, default: usize) -> Result<usize, SpecError> {
        let Some(value) = self.raw(key) else { return Ok(default) };
        let value = value.to_string();
        parse_size(&value).map_err(|message| self.spec.error(format!("`{key}`: {message}")))
    }

    /// Any value that parses with `FromStr`; `expected` says what it should look like.
    pub fn parse<T: FromStr>(&mut self, key: &'static str, expected: &str, default: T) -> Result<T, SpecError> {
        let Some(value) = self.raw(key) else { return Ok(default) };
        let value = value.to_string();
        value.parse().map_err(|_| self.spec.error(format!("`{key}` must be {expected}, found `{value}`")))
    }

    /// Finish reading: an error names any parameter that was not asked for.
    pub fn finish(self) -> Result<(), SpecError> {
        if let Some(name) = self.spec.name.as_deref().filter(|_| !self.name_taken) {
            return Err(self.spec.error(format!("expected `key=value`, found `{name}`")));
        }
        match self.taken.iter().position(|taken| !taken) {
            None => Ok(()),
            Some(index) => {
                let key = &self.spec.params[index].0;
                let known = if self.known.is_empty() {
                    "it takes no parameters".to_string()
                } else {
                    format!("known: {}", self.known.join(", "))
                };
                Err(self.spec.error(format!("unknown parameter `{key}` for `{}` ({known})", self.spec.family)))
            }
        }
    }
}

/// Parse a byte size: a whole number with an optional binary unit
/// (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB`, case-insensitive, `B` allowed).
pub fn parse_size(text: &str) -> Result<usize, SizeError> {
    let expected = || SizeError::NotASize(text.to_string());
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let number: usize = digits.parse().map_err(|_| expected())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(expected()),
    };
    number.checked_mul(1usize << shift).ok_or_else(|| SizeError::TooLarge(text.to_string()))
}

/// A text [`parse_size`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number with a unit.
    #[error("expected a size such as 4096, 64K or 16MiB, found `{0}`")]
    NotASize(String),
    /// More bytes than a `usize` holds.
    #[error("`{0}` is too large for this platform")]
    TooLarge(String),
}

/// Print a byte size the way [`parse_size`] reads it, exact: `4K`, `16M`, `1000`.
pub fn format_size(bytes: usize) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.trailing_zeros() >= shift {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// The word for `value` in a table of choices, as [`ParamReader::choice`]
/// reads it: for printing canonical specs.
///
/// # Panics
/// If `value` is not in the table.
pub fn choice_name<T: PartialEq>(options: &[(&'static str, T)], value: T) -> &'static str {
    options.iter().find(|(_, v)| *v == value).map(|(name, _)| *name).expect("every value is in its table")
}

/// Generic code to run with an allocator configuration, whatever its
/// family: it can build as many allocators as it needs. The harness runs
/// every pass through one, so that the replay loop is compiled for each
/// allocator type, with its calls inlined.
pub trait Visitor {
    /// What the visit produces.
    type Output;
    /// Run with `config`.
    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output;
}

/// A configuration of one allocator family: what the harness's registry
/// needs to parse, list, print and build it.
pub trait AllocatorConfig: Sized + Clone + fmt::Debug + Send + Sync + 'static {
    /// The allocator this configures, with its ledger: what the metrics
    /// pass, `--verify` and the tests use.
    type Allocator: Allocator;
    /// The same allocator without its ledger (see [`crate::ledger`]): the
    /// same placement decisions, op for op, and no counters, for the timed
    /// passes. An allocator that keeps no counters of its own may use
    /// [`Self::Allocator`] again.
    type Timed: Allocator;
    /// The family name, the part of the spec before the colon.
    const FAMILY: &'static str;
    /// One line about the family, for `heaplab list`.
    const SUMMARY: &'static str;

    /// Read a spec whose family is [`Self::FAMILY`].
    fn from_spec(spec: &Spec) -> Result<Self, SpecError>;
    /// The canonical spec: every parameter written out, in a fixed order, so
    /// that equal configurations print equal specs.
    fn spec(&self) -> String;
    /// One line saying what this configuration does.
    fn describe(&self) -> String;
    /// The configurations `heaplab list` shows.
    fn listed() -> Vec<Self>;
    /// Set the allocator up on `arena`, which it then owns.
    fn build(&self, arena: Arena) -> Result<Self::Allocator, BuildError>;
    /// Set the timed build up on `arena`.
    fn build_timed(&self, arena: Arena) -> Result<Self::Timed, BuildError>;

    /// Set the allocator up on `arena` for a replay of `threads` threads
    /// interleaved on one (the metrics pass of a multithreaded workload).
    /// The default ignores the threads: an allocator without per-thread
    /// state replays an interleaving as any other trace.
    fn build_threads(&self, arena: Arena, _threads: usize) -> Result<Self::Allocator, BuildError> {
        self.build(arena)
    }

    /// Run `visitor` with this configuration's thread-safe build; `None`
    /// for a configuration that is not thread-safe (layer it: `locked/SPEC`).
    fn visit_shared<V: crate::concurrent::SharedVisitor>(&self, _visitor: V) -> Option<V::Output> {
        None
    }

    /// Run `visitor` with the configuration [`AllocatorConfig::accept`]
    /// visits, if its allocators may move between threads, so that a layer
    /// can make them thread-safe; `None` if they may not (an allocator with
    /// memory of its own, bound to a thread).
    fn accept_send<V: crate::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        self.accept(crate::concurrent::SendBridge(visitor))
    }

    /// Run `visitor` with exactly this configuration if its allocators may
    /// move between threads. Configuration types whose allocators are
    /// `Send` override it with `Some(visitor.visit(self))`.
    fn as_send<V: crate::concurrent::SendVisitor>(&self, _visitor: V) -> Option<V::Output> {
        None
    }

    /// Run `visitor` with this configuration. A family whose members are
    /// different types (the peers) overrides it to visit the member's own
    /// configuration, so that each is run as its own type.
    fn accept<V: Visitor>(&self, visitor: V) -> V::Output {
        visitor.visit(self)
    }

    /// A build error about this configuration.
    fn build_error(&self, reason: SetupError) -> BuildError {
        BuildError { spec: self.spec(), reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_family_and_params() {
        let spec: Spec = "freelist:fit=best,order=address".parse().unwrap();
        assert_eq!(spec.family(), "freelist");
        assert_eq!(spec.params(), &[("fit".into(), "best".into()), ("order".into(), "address".into())]);
        let bare: Spec = "buddy".parse().unwrap();
        assert!(bare.params().is_empty());
    }

    #[test]
    fn malformed_specs_say_what_was_expected() {
        for (text, expected) in [
            ("", "expected a family name"),
            (":fit=best", "expected a family name"),
            ("freelist:", "expected `key=value`, found ``"),
            ("freelist:fit=", "expected `key=value`"),
            ("freelist:fit=a=b", "expected `key=value`"),
            ("freelist:fit=best,fit=first", "`fit` is given twice"),
            ("peer:talc,x", "expected `key=value`, found `x`"),
            ("kernel:malloc=freelist:fit=best", "a spec inside a parameter is written `name/key:value/…`"),
            ("free list", "expected a family name"),
        ] {
            let error = text.parse::<Spec>().unwrap_err();
            assert!(error.message.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn reader_applies_defaults_and_rejects_unknown_keys() {
        let spec: Spec = "x:mode=b,min=4K".parse().unwrap();
        let mut reader = spec.reader();
        assert_eq!(reader.choice("mode", &[("a", 1), ("b", 2)], 1).unwrap(), 2);
        assert_eq!(reader.size("min", 16).unwrap(), 4096);
        assert_eq!(reader.size("max", 16).unwrap(), 16);
        reader.finish().unwrap();

        let spec: Spec = "x:mode=c,colour=red".parse().unwrap();
        let mut reader = spec.reader();
        let error = reader.choice("mode", &[("a", 1), ("b", 2)], 1).unwrap_err();
        assert_eq!(error.message, "`mode` must be one of a, b, found `c`");
        let error = reader.finish().unwrap_err();
        assert_eq!(error.message, "unknown parameter `colour` for `x` (known: mode)");
    }

    #[test]
    fn a_bare_name_is_read_only_by_families_that_ask_for_it() {
        let spec: Spec = "peer:talc,mode=b".parse().unwrap();
        assert_eq!((spec.family(), spec.name()), ("peer", Some("talc")));
        let mut reader = spec.reader();
        assert_eq!(reader.name(), Some("talc"));
        assert_eq!(reader.choice("mode", &[("a", 1), ("b", 2)], 1).unwrap(), 2);
        reader.finish().unwrap();

        let spec: Spec = "freelist:fit".parse().unwrap();
        let error = spec.reader().finish().unwrap_err();
        assert_eq!(error.message, "expected `key=value`, found `fit`");
    }

    #[test]
    fn sizes_parse_with_binary_units_and_print_back() {
        for (text, bytes) in
            [("0", 0), ("4096", 4096), ("4K", 4096), ("4kib", 4096), ("16MiB", 16 << 20), ("2G", 2 << 30), ("7 B", 7)]
        {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "K", "1.5M", "-1", "12Q", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("99999999999T"), Err(SizeError::TooLarge("99999999999T".into())));
        assert!(parse_size("99999999999T").unwrap_err().to_string().contains("too large for this platform"));
        for bytes in [0, 1, 1000, 4096, 3 << 20, 1 << 30, (1 << 30) + 1024] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
        assert_eq!(format_size(4096), "4K");
        assert_eq!(format_size(1000), "1000");
    }
}

/// ` (did you mean `x`?)` for the known name most like `given`, if one is
/// close (Jaro–Winkler similarity 0.8 or more), else nothing.
pub fn did_you_mean(given: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|name| (strsim::jaro_winkler(given, name), *name))
        .filter(|(similarity, _)| *similarity >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(String::new(), |(_, name)| format!(" (did you mean `{name}`?)"))
}

/// The most specs one sweep expands to.
pub const MAX_EXPANSION: usize = 100_000;

/// A sweep that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{spec}`: {message}")]
pub struct SweepError {
    /// The spec as written.
    pub spec: String,
    /// What was expected, and what was found.
    pub message: String,
}

/// The integers of a range as `--seeds` writes them: `7`, `1..=5` (5
/// included) or `1..5` (5 excluded).
pub fn int_range(text: &str) -> Option<Vec<u64>> {
    let (start, end) = int_bounds(text)?;
    if end - start >= MAX_EXPANSION as u64 {
        return None;
    }
    Some((start..=end).collect())
}

/// The first and last integer of a range written as [`int_range`] reads it
/// (`A..B` excludes B, `A..=B` includes it, `N` is itself), without
/// expanding it; `None` for anything else or an empty range.
pub fn int_bounds(text: &str) -> Option<(u64, u64)> {
    let text = text.trim();
    let (start, end) = if let Some((start, end)) = text.split_once("..=") {
        (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?)
    } else if let Some((start, end)) = text.split_once("..") {
        (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?.checked_sub(1)?)
    } else {
        let value = text.parse::<u64>().ok()?;
        (value, value)
    };
    (start <= end).then_some((start, end))
}

/// Every spec a sweep names, in order: in `family:key=value,…`, a value may
/// list alternatives (`min=16|32|64`) and ranges of integers (`sl=1..=5`,
/// `sl=1..6`, as `--seeds` writes them), and the spec stands for every
/// combination, the last key varying fastest. A spec without either (a
/// plain spec, a `*` pattern, a file name) is itself.
pub fn expand(spec: &str) -> Result<Vec<String>, SweepError> {
    let error = |message: String| SweepError { spec: spec.to_string(), message };
    let Some((family, params)) = spec.split_once(':') else {
        return Ok(vec![spec.to_string()]);
    };
    if !params.contains(['|']) && !params.contains("..") {
        return Ok(vec![spec.to_string()]);
    }
    let mut combinations: Vec<Vec<String>> = vec![Vec::new()];
    for param in params.split(',') {
        let values: Vec<String> = match param.split_once('=') {
            Some((key, value)) if value.contains('|') || value.contains("..") => {
                let mut values = Vec::new();
                for alternative in value.split('|') {
                    if alternative.contains("..") {
                        let range = int_range(alternative).ok_or_else(|| {
                            error(format!(
                                "`{alternative}` in `{key}`: expected a range of integers such as 1..=5 or 1..6, of at most {MAX_EXPANSION}"
                            ))
                        })?;
                        values.extend(range.into_iter().map(|v| format!("{key}={v}")));
                    } else if alternative.is_empty() {
                        return Err(error(format!("an empty alternative in `{key}={value}`")));
                    } else {
                        values.push(format!("{key}={alternative}"));
                    }
                }
                values
            }
            _ => vec![param.to_string()],
        };
        if combinations.len().saturating_mul(values.len()) > MAX_EXPANSION {
            return Err(error(format!("expands to more than {MAX_EXPANSION} specs")));
        }
        combinations = combinations
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |value| {
                    let mut next = prefix.clone();
                    next.push(value.clone());
                    next
                })
            })
            .collect();
    }
    Ok(combinations.into_iter().map(|params| format!("{family}:{}", params.join(","))).collect())
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn sweeps_expand_to_every_combination_in_order() {
        assert_eq!(expand("buddy").unwrap(), ["buddy"]);
        assert_eq!(expand("freelist:*").unwrap(), ["freelist:*"]);
        assert_eq!(
            expand("segregated:kind=tlsf,sl=1..=3").unwrap(),
            ["segregated:kind=tlsf,sl=1", "segregated:kind=tlsf,sl=2", "segregated:kind=tlsf,sl=3"]
        );
        assert_eq!(
            expand("buddy:min=16|64,max_order=5..7").unwrap(),
            [
                "buddy:min=16,max_order=5",
                "buddy:min=16,max_order=6",
                "buddy:min=64,max_order=5",
                "buddy:min=64,max_order=6"
            ]
        );
        assert_eq!(expand("ramp:live=1M|8M").unwrap(), ["ramp:live=1M", "ramp:live=8M"]);
        assert_eq!(expand("x:a=1|3..=4").unwrap(), ["x:a=1", "x:a=3", "x:a=4"]);
        assert!(expand("x:a=1..x").unwrap_err().to_string().contains("expected a range of integers"));
        assert!(expand("x:a=5..=1").is_err());
        assert!(expand("x:a=1||2").unwrap_err().to_string().contains("empty alternative"));
        let error = expand("x:a=0..1000,b=0..1000").unwrap_err();
        assert!(error.to_string().contains("more than 100000 specs"), "{error}");
    }

    #[test]
    fn ranges_are_the_seeds_syntax() {
        assert_eq!(int_range("7"), Some(vec![7]));
        assert_eq!(int_range("1..=3"), Some(vec![1, 2, 3]));
        assert_eq!(int_range("1..3"), Some(vec![1, 2]));
        assert_eq!(int_range("3..3"), None);
        assert_eq!(int_range("0..=200000"), None);
    }
}
