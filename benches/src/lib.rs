//! Shared pieces of the benchmarks: a sampling harness and a description of the machine
//! a run happened on.
//!
//! The benchmarks themselves live in `benches/`; `benches/README.md` says how to run them
//! and how to read what they print.

pub mod harness;
pub mod machine;
