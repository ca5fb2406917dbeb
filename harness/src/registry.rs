//! Every allocator configuration the build knows, by spec string.
//!
//! The registry is an enum with one variant per allocator family, so that the
//! harness can run each allocator through generic code ([`Visitor`]) and the
//! replay loop is compiled once per allocator, with its calls inlined, rather
//! than going through a `dyn Allocator` on every operation.
//!
//! Adding an allocator family is one line in the `registry!` invocation below:
//! its [`AllocatorConfig`] supplies parsing, listing, description and building.

pub use heaplab_core::Visitor;
use heaplab_core::concurrent::{LayerAs, LayerKind, LayerShared, SendVisitor, SharedBridge, SharedVisitor};
use heaplab_core::{AllocatorConfig, Spec, SpecError};

/// One family as `heaplab list` shows it.
#[derive(Debug, Clone)]
pub struct Family {
    /// The family name, the spec's part before the colon.
    pub name: &'static str,
    /// One line about the family.
    pub summary: &'static str,
    /// The configurations `heaplab list` shows.
    pub configurations: Vec<AllocatorSpec>,
}

macro_rules! registry {
    ($($variant:ident => $config:ty),* $(,)?) => {
        /// A parsed, validated allocator configuration of any family.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum AllocatorSpec {
            $(
                #[doc = concat!("`", stringify!($variant), "` family.")]
                $variant($config),
            )*
            /// A thread-safe layer over a configuration: `LAYER/SPEC`.
            Layered(LayerKind, Box<AllocatorSpec>),
        }

        impl AllocatorSpec {
            /// Parse and validate a spec string.
            pub fn parse(text: &str) -> Result<AllocatorSpec, SpecError> {
                // A layer's family comes first (`cached:mag=64/SPEC`); any
                // other family's slash is inside a parameter
                // (`kernel:…,malloc=buddy/min:16`).
                let head = text.split([':', '/']).next().unwrap_or_default();
                if let Some((layer, inner)) = text.split_once('/')
                    && (LayerKind::FAMILIES.contains(&head) || !layer.contains(':'))
                {
                    return AllocatorSpec::parse_layered(text, layer, inner);
                }
                let spec: Spec = text.parse()?;
                if LayerKind::FAMILIES.contains(&spec.family()) {
                    return Err(spec.error(format!(
                        "a layer goes over an allocator: `{}/SPEC`, for example `{}/segregated:kind=tlsf,sl=5`",
                        spec.as_str(),
                        spec.as_str()
                    )));
                }
                $(
                    if spec.family() == <$config as AllocatorConfig>::FAMILY {
                        return <$config as AllocatorConfig>::from_spec(&spec).map(AllocatorSpec::$variant);
                    }
                )*
                Err(spec.error(format!(
                    "unknown allocator family `{}`{}; the families are {} (`heaplab list` shows every configuration)",
                    spec.family(),
                    heaplab_core::spec::did_you_mean(spec.family(), &family_names()),
                    family_names().join(", ")
                )))
            }

            /// The family name (of the allocator beneath, for a layer).
            pub fn family(&self) -> &'static str {
                match self {
                    $(AllocatorSpec::$variant(_) => <$config as AllocatorConfig>::FAMILY,)*
                    AllocatorSpec::Layered(_, inner) => inner.family(),
                }
            }

            /// The canonical spec string: the configuration's identity in results.
            pub fn spec(&self) -> String {
                match self {
                    $(AllocatorSpec::$variant(config) => config.spec(),)*
                    AllocatorSpec::Layered(kind, inner) => format!("{}/{}", kind.spec(), inner.spec()),
                }
            }

            /// One line saying what the configuration does.
            pub fn describe(&self) -> String {
                match self {
                    $(AllocatorSpec::$variant(config) => config.describe(),)*
                    AllocatorSpec::Layered(kind, inner) => format!("{}, over {}", kind.describe(), inner.spec()),
                }
            }

            /// Run `visitor` with this configuration.
            pub fn visit<V: Visitor>(&self, visitor: V) -> V::Output {
                match self {
                    $(AllocatorSpec::$variant(config) => config.accept(visitor),)*
                    AllocatorSpec::Layered(kind, inner) => inner
                        .visit_send(LayerAs { kind: *kind, visitor })
                        .expect("a layer's configuration was checked to be Send when parsed"),
                }
            }

            /// Run `visitor` with this configuration if a layer can go over it.
            pub fn visit_send<V: SendVisitor>(&self, visitor: V) -> Option<V::Output> {
                match self {
                    $(AllocatorSpec::$variant(config) => config.accept_send(visitor),)*
                    AllocatorSpec::Layered(..) => None,
                }
            }

            /// Run `visitor` with this configuration's thread-safe build;
            /// `None` if it has none (a single-threaded allocator: layer it).
            pub fn visit_shared<V: SharedVisitor>(&self, visitor: V) -> Option<V::Output> {
                match self {
                    $(AllocatorSpec::$variant(config) => config.accept(SharedBridge(visitor)),)*
                    AllocatorSpec::Layered(kind, inner) => inner.visit_send(LayerShared { kind: *kind, visitor }),
                }
            }

            /// Is there a thread-safe build?
            pub fn is_thread_safe(&self) -> bool {
                struct Any;
                impl SharedVisitor for Any {
                    type Output = ();
                    fn visit<B: heaplab_core::concurrent::SharedBuild>(self, _build: &B) {}
                }
                self.visit_shared(Any).is_some()
            }

            fn parse_layered(text: &str, layer: &str, inner: &str) -> Result<AllocatorSpec, SpecError> {
                let whole = |message: String| SpecError { spec: text.to_string(), message };
                let layer_spec: Spec = layer.parse().map_err(|e: SpecError| whole(e.message))?;
                let kind = LayerKind::from_spec(&layer_spec).map_err(|e| whole(e.message))?;
                if inner.contains('/') {
                    return Err(whole("one layer at a time: `cached/SPEC` already locks the allocator beneath".into()));
                }
                let inner = AllocatorSpec::parse(inner).map_err(|e| whole(e.message))?;
                struct Check;
                impl SendVisitor for Check {
                    type Output = ();
                    fn visit<C: AllocatorConfig>(self, _config: &C)
                    where
                        C::Allocator: Send,
                        C::Timed: Send,
                    {
                    }
                }
                if inner.visit_send(Check).is_none() {
                    return Err(whole(format!(
                        "`{}` cannot go under a layer: it is thread-safe on its own (use it as it is) or bound to one thread",
                        inner.spec()
                    )));
                }
                Ok(AllocatorSpec::Layered(kind, Box::new(inner)))
            }
        }

        /// Every family, with the configurations it lists.
        pub fn families() -> Vec<Family> {
            vec![$(
                Family {
                    name: <$config as AllocatorConfig>::FAMILY,
                    summary: <$config as AllocatorConfig>::SUMMARY,
                    configurations: <$config as AllocatorConfig>::listed().into_iter().map(AllocatorSpec::$variant).collect(),
                },
            )*]
        }

        fn family_names() -> Vec<&'static str> {
            vec![$(<$config as AllocatorConfig>::FAMILY),*]
        }
    };
}

registry! {
    FreeList => heaplab_freelist::Config,
    Segregated => heaplab_segregated::Config,
    Buddy => heaplab_buddy::Config,
    Slab => heaplab_slab::Config,
    Kernel => heaplab_kernel::Config,
    Peer => heaplab_peers::Config,
    Bump => heaplab_core::bump::BumpConfig,
}

/// Every listed configuration.
pub fn listed_specs() -> Vec<AllocatorSpec> {
    families().into_iter().flat_map(|family| family.configurations).collect()
}

/// Does `text` match the shell-style `pattern` (`*` any run, `?` any one character)?
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy matching with backtracking to the last star: O(len²) worst case.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Expand a selection: a pattern with `*` or `?` picks the listed
/// configurations it matches (an error if none), anything else is parsed as
/// one spec.
pub fn select(selection: &str) -> Result<Vec<AllocatorSpec>, SpecError> {
    if selection.contains(['*', '?']) {
        let matched: Vec<AllocatorSpec> =
            listed_specs().into_iter().filter(|spec| glob_match(selection, &spec.spec())).collect();
        if matched.is_empty() {
            return Err(SpecError {
                spec: selection.to_string(),
                message: format!(
                    "the pattern matches no listed configuration; the families are {}",
                    family_names().join(", ")
                ),
            });
        }
        Ok(matched)
    } else {
        Ok(vec![AllocatorSpec::parse(selection)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_spec_parses_back_to_itself() {
        let listed = listed_specs();
        assert!(listed.len() >= 13);
        for spec in listed {
            assert_eq!(AllocatorSpec::parse(&spec.spec()).unwrap(), spec);
        }
    }

    #[test]
    fn a_slash_is_a_layer_only_after_a_layer_family() {
        let kernel = AllocatorSpec::parse("kernel:user=malloc,malloc=buddy/min:16").unwrap();
        assert_eq!(kernel.family(), "kernel");
        assert!(kernel.spec().contains("malloc=buddy/min:16/"), "{}", kernel.spec());
        let layered = AllocatorSpec::parse("cached:mag=64,depot=4,max=1K/segregated:kind=tlsf,sl=5").unwrap();
        assert!(matches!(layered, AllocatorSpec::Layered(..)));
        assert!(AllocatorSpec::parse("bogus/buddy").unwrap_err().to_string().contains("unknown layer"));
    }

    #[test]
    fn unknown_families_name_the_known_ones() {
        let error = AllocatorSpec::parse("dlmalloc:x=1").unwrap_err();
        assert!(
            error.message.starts_with(
                "unknown allocator family `dlmalloc`; the families are freelist, segregated, buddy, slab, kernel, peer, bump"
            ),
            "{error}"
        );
    }

    #[test]
    fn globs_match_like_a_shell() {
        for (pattern, text, matches) in [
            ("freelist:*", "freelist:fit=best,order=lifo", true),
            ("*best*", "freelist:fit=best,order=lifo", true),
            ("*=lifo", "freelist:fit=best,order=lifo", true),
            ("*=fifo", "freelist:fit=best,order=lifo", false),
            ("bump", "bump", true),
            ("bum?", "bump", true),
            ("b*p*", "bump", true),
            ("buddy:*", "bump", false),
            ("", "", true),
            ("*", "", true),
        ] {
            assert_eq!(glob_match(pattern, text), matches, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn selections_expand_patterns_and_parse_specs() {
        assert_eq!(select("freelist:*").unwrap().len(), 12);
        assert_eq!(select("freelist:fit=worst,*").unwrap().len(), 3);
        assert_eq!(select("freelist:fit=best").unwrap()[0].spec(), "freelist:fit=best,order=address");
        assert!(select("nothing:*").unwrap_err().message.contains("matches no listed configuration"));
    }

    use proptest::prelude::*;

    /// A listed spec or a workload spec, edited as a hand or a script slips:
    /// a character replaced, dropped or doubled, a separator inserted.
    fn slipped_spec() -> impl Strategy<Value = String> {
        let mut specs: Vec<String> = listed_specs().iter().map(AllocatorSpec::spec).collect();
        specs
            .extend(["ramp:ops=100,live=1M", "lognormal:median=64,sigma=1.5", "fragmenter:small=32"].map(String::from));
        let slips = prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..4,
                prop::sample::select(vec![':', ',', '=', '|', '.', '*', '0', 'K', 'é', ' ']),
            ),
            1..4,
        );
        (prop::sample::select(specs), slips).prop_map(|(spec, slips)| {
            let mut chars: Vec<char> = spec.chars().collect();
            for (at, kind, c) in slips {
                let at = at.index(chars.len().max(1)).min(chars.len().saturating_sub(1));
                match kind {
                    0 if !chars.is_empty() => chars[at] = c,
                    1 if !chars.is_empty() => {
                        chars.remove(at);
                    }
                    2 if !chars.is_empty() => chars.insert(at, chars[at]),
                    _ => chars.insert(at, c),
                }
            }
            chars.into_iter().collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Slipped specs never panic the parsers, and a refused one is named
        /// in its error.
        #[test]
        fn slipped_specs_never_panic_and_their_errors_name_them(text in slipped_spec()) {
            if let Err(error) = AllocatorSpec::parse(&text) {
                prop_assert_eq!(&error.spec, &text);
                prop_assert!(!error.message.is_empty());
            }
            if let Err(error) = heaplab_workloads::synth::SyntheticSpec::parse(&text) {
                prop_assert!(error.to_string().contains(text.trim()) || text.trim().is_empty(), "{error} for `{text}`");
            }
        }
    }
}
