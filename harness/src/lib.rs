//! heaplab's harness: the registry of allocators, and (as the project grows)
//! replay, metrics and result export. The `heaplab` binary is a thin command
//! line over this library.

pub mod registry;
pub mod units;
