//! The shared conformance suite over every variant and class scheme.

use heaplab_segregated::{Config, Scheme};

heaplab_core::conformance_suite!(fits_dl, config: Config::Fits { classes: Scheme::Dlmalloc });
heaplab_core::conformance_suite!(fits_pow2, config: Config::Fits { classes: Scheme::PowersOfTwo });
heaplab_core::conformance_suite!(fits_pow2mid, config: Config::Fits { classes: Scheme::WithMidpoints });
heaplab_core::conformance_suite!(tlsf_sl4, config: Config::Tlsf { sl_bits: 4 });
heaplab_core::conformance_suite!(tlsf_sl5, config: Config::Tlsf { sl_bits: 5 });
heaplab_core::conformance_suite!(tlsf_sl1, config: Config::Tlsf { sl_bits: 1 });
heaplab_core::conformance_suite!(simple_pow2, config: Config::Simple { classes: Scheme::PowersOfTwo, page: 4096 });
heaplab_core::conformance_suite!(
    simple_pow2mid,
    config: Config::Simple { classes: Scheme::WithMidpoints, page: 4096 }
);

// The concurrent part: the layers over TLSF and dlmalloc-style fits.
heaplab_core::concurrent_suite!(layers_tlsf_sl5, config: Config::Tlsf { sl_bits: 5 });
heaplab_core::concurrent_suite!(layers_fits_dl, config: Config::Fits { classes: Scheme::Dlmalloc });
