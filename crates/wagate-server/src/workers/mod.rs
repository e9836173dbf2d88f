//! Background work, one module per kind, each with one entry point (claim → act → record).
//! A worker owns no HTTP types of the API; a handler never loops.

pub mod hooks;
pub mod prune;
