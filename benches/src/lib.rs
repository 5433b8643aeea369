//! Shared pieces of the benchmarks: a sampling harness, a description of the machine a
//! run happened on, and the keys and connections several benchmarks set up alike.
//!
//! The benchmarks themselves live in `benches/`; `benches/README.md` says how to run them
//! and how to read what they print.

pub mod harness;
pub mod machine;
pub mod setup;
