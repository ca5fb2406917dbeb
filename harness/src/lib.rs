//! heaplab's harness: the registry of allocators, and (as the project grows)
//! replay, metrics and result export. The `heaplab` binary is a thin command
//! line over this library.

pub mod compare;
pub mod heapmap;
pub mod metrics;
pub mod pairwise;
pub mod prepare;
pub mod registry;
pub mod replay;
pub mod results;
pub mod run;
pub mod table;
pub mod timing;
pub mod units;
