//! One module per command group. Each turns its arguments into admin API
//! calls and prints the answer as JSON (`--json`) or for people.

pub mod apps;
pub mod audit;
pub mod backup;
pub mod fetch;
pub mod gate;
pub mod leaks;
pub mod org;
pub mod package;
pub mod policies;
pub mod principals;
pub mod resources;
pub mod scan;
pub mod serve;
pub mod tasks;
pub mod tokens;
