//! One module per subcommand: its arguments (clap derive, doc comments as
//! help) and its `run`.

pub mod compare;
pub mod list;
pub mod record;
pub mod report;
pub mod run;
pub mod trace;
