//! heaplab's harness: the registry of allocators, trace preparation and
//! replay, the metrics, the run pipeline ([`run`]) and what it measured as
//! result rows ([`export`]), the comparison of result sets ([`compare`],
//! [`pairwise`]) and heap maps. The results files' schema is
//! `heaplab-results`; the `heaplab` binary is a thin command line over this
//! library.

pub mod compare;
pub mod exec;
pub mod export;
pub mod heapmap;
pub mod inputs;
pub mod merge;
pub mod metrics;
pub mod prepare;
pub mod publish;
pub mod registry;
pub mod replay;
pub mod run;
pub mod step;
pub mod table;
pub mod timing;
pub mod units;
